"""ZenML server (the dashboard) on this host, in its own virtual environment.

``zenml[server]`` pins a fastapi range disjoint from Airflow 3.3.2's, so the
server runs from ``.venv-zenml-server``, installed from the pins in
``constraints-zenml-server.txt``. It is uvicorn serving ZenML's FastAPI app,
as ``zenml login --local`` runs it, on the SQLite file of the local store that
the embedded stack already uses: connecting the client shows every earlier run
in the dashboard, and disconnecting goes back to the same data.

The server runs without authentication (``NO_AUTH``, as ``zenml login
--local``) and therefore only on 127.0.0.1: with any other scheme ZenML writes
an API token into the environment of every step, which the Airflow
orchestrator stores in plain text in the compiled DAG's ``config.json``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from goldsignals.config import OFFLINE_ENVIRONMENT, PROJECT_ROOT, Settings
from goldsignals.errors import GoldSignalsError
from goldsignals.processes import (
    answers_ok,
    ensure_port_free,
    read_pid,
    spawn_server,
    stop_server,
    wait_until_answering,
)

logger = logging.getLogger(__name__)

CONSTRAINTS = PROJECT_ROOT / "constraints-zenml-server.txt"
DEFAULT_VENV = PROJECT_ROOT / ".venv-zenml-server"
SERVER_APP = "zenml.zen_server.zen_server_api:app"

"""Servers started by this process, kept so they are reaped when stopped."""


class ZenmlServerError(GoldSignalsError, RuntimeError):
    """The ZenML server could not be installed, started or reached."""


@dataclass(frozen=True)
class ZenmlServer:
    """Where and how the ZenML server runs.

    Attributes:
        venv: Virtual environment holding ``zenml[server]``.
        home: Folder of its pid file, log and ZenML configuration.
        database: SQLite file of the ZenML store it serves.
        port: Port on ``host``.
        host: Loopback address to bind; the server has no authentication.
        constraints: Pinned requirements the environment is installed from.
    """

    venv: Path
    home: Path
    database: Path
    port: int = 8237
    host: str = "127.0.0.1"
    constraints: Path = CONSTRAINTS

    def __post_init__(self) -> None:
        """Refuse to expose a server without authentication beyond this host."""
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ZenmlServerError(
                f"ZenML server host {self.host!r} is not a loopback address; the "
                "server runs without authentication, bind it to 127.0.0.1"
            )

    @property
    def url(self) -> str:
        """Base URL of the API and the dashboard."""
        return f"http://{self.host}:{self.port}"

    @property
    def python(self) -> Path:
        """Interpreter of the server's environment."""
        return self.venv / "bin" / "python"

    @property
    def pid_file(self) -> Path:
        """Process id of the running server."""
        return self.home / "server.pid"

    @property
    def log_file(self) -> Path:
        """Output of the server process (uvicorn and ZenML log lines)."""
        return self.home / "server.log"


def local_store_database(local_stores: Path) -> Path:
    """SQLite file of the ZenML client's default store under ``local_stores``.

    Args:
        local_stores: ``ZENML_LOCAL_STORES_PATH`` of the client (the state
            folder, as ``goldsignals.config.apply_environment`` sets it).
    """
    return local_stores / "default_zen_store" / "zenml.db"


def from_settings(settings: Settings) -> ZenmlServer:
    """The server of a state folder, serving the client's local store.

    Call after ``apply_environment``, which sets ``ZENML_LOCAL_STORES_PATH``.
    """
    stores = Path(os.environ.get("ZENML_LOCAL_STORES_PATH", settings.home))
    return ZenmlServer(
        venv=settings.zenml_server_venv,
        home=settings.home / "zenml-server",
        database=local_store_database(stores),
        port=settings.zenml_server_port,
    )


def _stamp(server: ZenmlServer) -> Path:
    digest = hashlib.md5(server.constraints.read_bytes()).hexdigest()[:12]
    return server.venv / f".installed-{digest}"


def ensure_environment(server: ZenmlServer) -> bool:
    """Create the server's environment unless it matches the constraints.

    A stamp named after a hash of the constraints file marks a finished
    install; a changed file installs again into the same environment.

    Returns:
        Whether anything was installed.
    """
    if not server.constraints.is_file():
        raise ZenmlServerError(
            f"constraints file {server.constraints} is missing; restore it from "
            "the repository"
        )
    stamp = _stamp(server)
    if stamp.exists() and server.python.exists():
        return False

    started = time.monotonic()
    server.home.mkdir(parents=True, exist_ok=True)
    pip = [str(server.python), "-m", "pip", "install", "--quiet"]
    _install_step(server, [sys.executable, "-m", "venv", str(server.venv)])
    _install_step(server, [*pip, "--upgrade", "pip"])
    _install_step(server, [*pip, "-c", str(server.constraints), "zenml[server]"])

    for old in server.venv.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    logger.info(
        "Installed the ZenML server environment %s in %.0f s",
        server.venv,
        time.monotonic() - started,
    )
    return True


def _install_step(server: ZenmlServer, command: list[str]) -> None:
    log_path = server.home / "install.log"
    with log_path.open("ab") as log:
        result = subprocess.run(command, stdout=log, stderr=log, check=False)
    if result.returncode != 0:
        raise ZenmlServerError(
            f"{' '.join(command[:5])} ... failed with status {result.returncode} "
            f"while installing {server.venv}; see {log_path}, check that the "
            "package registry can be reached, then run the command again"
        )


def running_pid(server: ZenmlServer) -> int | None:
    """The server's process id, if it runs."""
    return read_pid(server.pid_file)


def server_environment(server: ZenmlServer) -> dict[str, str]:
    """Environment of the server process.

    The caller's ``ZENML_*`` variables are dropped: a client's store URL or
    configuration path must not leak into the server.
    """
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    return {
        **inherited,
        **OFFLINE_ENVIRONMENT,
        "ZENML_SERVER": "true",
        "ZENML_CONFIG_PATH": str(server.home / "config"),
        "ZENML_LOCAL_STORES_PATH": str(server.database.parent.parent),
        "ZENML_STORE_URL": f"sqlite:///{server.database}",
        "ZENML_SERVER_AUTH_SCHEME": "NO_AUTH",
        "ZENML_SERVER_AUTO_ACTIVATE": "true",
        "ZENML_SERVER_DEPLOYMENT_TYPE": "local",
        "ZENML_SERVER_ALLOW_LOCAL_FILE_ACCESS": "true",
        "ZENML_SERVER_DISPLAY_ANNOUNCEMENTS": "false",
        "ZENML_SERVER_DISPLAY_UPDATES": "false",
        "XDG_CACHE_HOME": str(server.home / "cache"),
    }


def start(server: ZenmlServer, *, timeout: float = 90.0) -> int:
    """Start the server (no-op when running) and wait for ``/health``.

    Returns:
        Its process id.
    """
    if (pid := running_pid(server)) is not None:
        return pid
    if not server.python.exists():
        raise ZenmlServerError(
            f"no ZenML server environment at {server.venv}; create it with "
            "`goldsignals zenml-server start` (it installs what is missing)"
        )
    ensure_port_free(
        server.host,
        server.port,
        service="ZenML server",
        setting="GOLDSIGNALS_ZENML_SERVER_PORT",
        error=ZenmlServerError,
    )

    server.home.mkdir(parents=True, exist_ok=True)
    server.database.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(server.python),
        "-m",
        "uvicorn",
        SERVER_APP,
        "--host",
        server.host,
        "--port",
        str(server.port),
        "--no-server-header",
    ]
    started = time.monotonic()
    process = spawn_server(
        command, server_environment(server), server.log_file, server.pid_file
    )

    try:
        wait_until_answering(
            "ZenML server",
            f"{server.url}/health",
            process,
            server.log_file,
            timeout=timeout,
            error=ZenmlServerError,
        )
    except ZenmlServerError:
        stop(server)
        raise
    logger.info(
        "ZenML server at %s (pid %d), up in %.1f s",
        server.url,
        process.pid,
        time.monotonic() - started,
    )
    return process.pid


def stop(server: ZenmlServer, *, timeout: float = 20.0) -> bool:
    """Stop the server's process group. Returns whether it was running."""
    return stop_server(server.pid_file, timeout=timeout)


def connect(server: ZenmlServer) -> Path:
    """Point this process's ZenML client (``ZENML_CONFIG_PATH``) at the server.

    The choice is stored in the client's global configuration, so every later
    command and every step process reading that configuration uses the server.
    No credentials are stored: the server needs none.

    Returns:
        The folder of the client's global configuration.
    """
    if not answers_ok(f"{server.url}/health"):
        raise ZenmlServerError(
            f"no ZenML server answers at {server.url}; start it with "
            "`goldsignals zenml-server start`"
        )
    from zenml.config.global_config import GlobalConfiguration
    from zenml.zen_stores.rest_zen_store import RestZenStoreConfiguration

    config = GlobalConfiguration()
    config.analytics_opt_in = False
    config.set_store(RestZenStoreConfiguration(url=server.url))
    logger.info("ZenML client connected to %s", server.url)
    return Path(config.config_directory)


def require_client_store(url: str) -> None:
    """Fail unless this process's ZenML client already uses the server ``url``.

    For a ZenML server that goldsignals does not start (the compose file's,
    named by ``GOLDSIGNALS_ZENML_SERVER_URL``): the client reaches it through
    ZenML's own settings (``ZENML_STORE_URL``, or ``zenml login``).

    Raises:
        ZenmlServerError: The client's store is another one.
    """
    from zenml.config.global_config import GlobalConfiguration

    store = GlobalConfiguration().store_configuration.url
    if store.rstrip("/") != url.rstrip("/"):
        raise ZenmlServerError(
            f"the ZenML client uses {store}, not the server {url} named by "
            f"GOLDSIGNALS_ZENML_SERVER_URL; set ZENML_STORE_URL={url} (or run "
            f"`zenml login {url}`) and run deploy-stack again"
        )


def disconnect() -> bool:
    """Point this process's ZenML client back at its local SQLite store.

    Returns:
        Whether the client was connected to a server.
    """
    from zenml.config.global_config import GlobalConfiguration
    from zenml.enums import StoreType

    config = GlobalConfiguration()
    if config.store_configuration.type != StoreType.REST:
        return False
    config.set_default_store()
    logger.info("ZenML client back on %s", config.store_configuration.url)
    return True
