"""Airflow 3 on this host: configuration, start and stop by process id.

``airflow.cfg`` is written into the Airflow home inside the state folder, so
that every ``airflow`` command run with that ``AIRFLOW_HOME`` sees the same
configuration: LocalExecutor, a parallelism that fits a small host, every
service bound to 127.0.0.1, login required (Airflow's simple auth manager
generates the admin password into a file), telemetry off.
"""

from __future__ import annotations

import configparser
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from goldsignals.errors import GoldSignalsError
from goldsignals.processes import (
    answers_ok,
    ensure_port_free,
    read_pid,
    stop_process_group,
)
from goldsignals.step_server import SOCKET_ENV, socket_path

logger = logging.getLogger(__name__)

SERVICES: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),
    "scheduler": ("scheduler", "--skip-serve-logs"),
    "dag-processor": ("dag-processor",),
}
STEP_SERVER = "step-server"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


class AirflowHostError(GoldSignalsError, RuntimeError):
    """Airflow could not be configured, started or stopped on this host."""


@dataclass(frozen=True)
class AirflowHost:
    """Where and how Airflow runs on this host.

    Attributes:
        home: ``AIRFLOW_HOME``.
        dags_dir: Folder of the DAG files.
        host: Address every service binds to.
        port: Port of the api-server (web UI, REST and execution API).
        parallelism: Task slots of the LocalExecutor.
        metadata_url: SQLAlchemy URL of Airflow's metadata database; when
            unset, the one already in ``airflow.cfg`` is kept (SQLite in the
            Airflow home for a new configuration).
        step_server: Start the step server (:mod:`goldsignals.step_server`)
            with the services, so that tasks fork their ZenML steps from a
            warm process instead of starting a fresh interpreter each.
    """

    home: Path
    dags_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    parallelism: int = 4
    metadata_url: str | None = None
    step_server: bool = True

    @property
    def base_url(self) -> str:
        """URL of the web UI and REST API."""
        return f"http://{self.host}:{self.port}"

    @property
    def passwords_file(self) -> Path:
        """The file in which Airflow writes the generated admin password."""
        return self.home / PASSWORDS_FILE

    @property
    def pid_dir(self) -> Path:
        """Folder of one ``<service>.pid`` file per started service."""
        return self.home / "run"

    @property
    def step_server_socket(self) -> Path:
        """Where the step server listens."""
        return socket_path(self.pid_dir)

    @property
    def services(self) -> dict[str, list[str]]:
        """Name -> command of every service ``start`` starts, in order."""
        commands = {name: _airflow(self, *args) for name, args in SERVICES.items()}
        if self.step_server:
            commands[STEP_SERVER] = [
                sys.executable,
                "-m",
                "goldsignals.step_server",
                "--socket",
                str(self.step_server_socket),
            ]
        return commands


def _sections(
    airflow: AirflowHost, keys: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    metadata = (
        airflow.metadata_url
        or keys["sql_alchemy_conn"]
        or f"sqlite:///{airflow.home / 'airflow.db'}"
    )
    return {
        "core": {
            "dags_folder": str(airflow.dags_dir),
            "executor": "LocalExecutor",
            "parallelism": str(airflow.parallelism),
            "max_active_tasks_per_dag": str(max(1, airflow.parallelism // 2)),
            "load_examples": "False",
            "simple_auth_manager_users": "admin:admin",
            "simple_auth_manager_all_admins": "False",
            "simple_auth_manager_passwords_file": str(airflow.passwords_file),
            "execution_api_server_url": f"{airflow.base_url}/execution/",
            "dag_ignore_file_syntax": "glob",
        },
        "database": {"sql_alchemy_conn": metadata},
        "logging": {"base_log_folder": str(airflow.home / "logs")},
        "api": {
            "host": airflow.host,
            "port": str(airflow.port),
            "base_url": airflow.base_url,
            "secret_key": keys["secret_key"],
            "expose_config": "False",
            "workers": "1",
        },
        "api_auth": {"jwt_secret": keys["jwt_secret"]},
        "scheduler": {"enable_health_check": "False"},
        "dag_processor": {"refresh_interval": "20", "min_file_process_interval": "20"},
        "usage_data_collection": {"enabled": "False"},
    }


def _existing_keys(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return {
        "secret_key": parser.get("api", "secret_key", fallback=""),
        "jwt_secret": parser.get("api_auth", "jwt_secret", fallback=""),
        "sql_alchemy_conn": parser.get("database", "sql_alchemy_conn", fallback=""),
    }


def write_config(airflow: AirflowHost) -> Path:
    """Write ``airflow.cfg`` (mode 600); secrets are generated once and kept.

    The metadata database stays the one the file names unless
    ``airflow.metadata_url`` chooses another.

    Returns:
        The path of the written file.
    """
    path = airflow.home / "airflow.cfg"
    airflow.home.mkdir(parents=True, exist_ok=True)
    keys = _existing_keys(path)
    for name in ("secret_key", "jwt_secret"):
        keys[name] = keys[name] or secrets.token_urlsafe(32)

    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(_sections(airflow, keys))
    with os.fdopen(
        os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w"
    ) as f:
        f.write("# Written by `goldsignals airflow`; edits are overwritten.\n")
        parser.write(f)
    return path


def airflow_environment(airflow: AirflowHost) -> dict[str, str]:
    """Environment of every Airflow process: ``AIRFLOW_HOME``, no telemetry.

    With the step server on, it also names the server's socket, which the
    task processes inherit from the scheduler.
    """
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow.home),
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
        "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg"),
    }
    environment.pop(SOCKET_ENV, None)
    if airflow.step_server:
        environment[SOCKET_ENV] = str(airflow.step_server_socket)
    return environment


def _airflow(airflow: AirflowHost, *args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("airflow")), *args]


def migrate_database(airflow: AirflowHost) -> None:
    """Create or upgrade Airflow's metadata database."""
    result = subprocess.run(
        _airflow(airflow, "db", "migrate"),
        env=airflow_environment(airflow),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AirflowHostError(
            f"`airflow db migrate` failed for {airflow.home}: "
            f"{result.stderr.strip().splitlines()[-1:]}"
        )


def running_services(airflow: AirflowHost) -> dict[str, int]:
    """The services whose pid file names a live process."""
    alive: dict[str, int] = {}
    for name in (*SERVICES, STEP_SERVER):
        if (pid := read_pid(airflow.pid_dir / f"{name}.pid")) is not None:
            alive[name] = pid
    return alive


def check_port_free(airflow: AirflowHost) -> None:
    """Raise unless the api-server's port can be bound.

    Raises:
        AirflowHostError: Naming the port and the setting that changes it.
    """
    ensure_port_free(
        airflow.host,
        airflow.port,
        service="Airflow api-server",
        setting="GOLDSIGNALS_AIRFLOW_PORT",
        error=AirflowHostError,
    )


def protect_password_file(airflow: AirflowHost) -> None:
    """Make the generated password file readable by its owner only."""
    if airflow.passwords_file.exists():
        airflow.passwords_file.chmod(0o600)


def start(airflow: AirflowHost) -> dict[str, int]:
    """Start api-server, scheduler, dag-processor and step server.

    Services already running are left alone. Output goes to
    ``<home>/logs/<service>.out``.

    Returns:
        Service name -> process id.
    """
    airflow.pid_dir.mkdir(parents=True, exist_ok=True)
    (airflow.home / "logs").mkdir(parents=True, exist_ok=True)
    pids = running_services(airflow)
    if "api-server" not in pids:
        check_port_free(airflow)

    for name, command in airflow.services.items():
        if name in pids:
            continue
        log = airflow.home / "logs" / f"{name}.out"
        out = os.fdopen(
            os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab"
        )
        log.chmod(0o600)
        process = subprocess.Popen(
            command,
            env=airflow_environment(airflow),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        (airflow.pid_dir / f"{name}.pid").write_text(str(process.pid))
        pids[name] = process.pid
        logger.info("Started Airflow %s (pid %d)", name, process.pid)
    return pids


def wait_until_healthy(airflow: AirflowHost, *, timeout: float = 120.0) -> None:
    """Wait for the api-server's health endpoint and the step server's socket.

    Raises:
        AirflowHostError: If either is not there within ``timeout`` seconds,
            or the step server exited.
    """
    url = f"{airflow.base_url}/api/v2/monitor/health"
    deadline = time.monotonic() + timeout
    while not answers_ok(url):
        if time.monotonic() > deadline:
            raise AirflowHostError(
                f"Airflow's api-server did not answer at {url} within "
                f"{timeout:.0f} s; see {airflow.home / 'logs' / 'api-server.out'}"
            )
        time.sleep(1.0)
    while airflow.step_server and not airflow.step_server_socket.exists():
        log = airflow.home / "logs" / f"{STEP_SERVER}.out"
        if STEP_SERVER not in running_services(airflow):
            raise AirflowHostError(
                f"the step server exited; see {log}. Set "
                "GOLDSIGNALS_AIRFLOW_STEP_SERVER=false to run every step as a "
                "fresh subprocess instead"
            )
        if time.monotonic() > deadline:
            raise AirflowHostError(
                f"the step server did not listen on {airflow.step_server_socket} "
                f"within {timeout:.0f} s; see {log}"
            )
        time.sleep(0.5)


STOP_ORDER = ("scheduler", "dag-processor", STEP_SERVER, "api-server")
"""The api-server goes last: tasks that end while the scheduler stops still
report their state through its execution API."""


def stop(airflow: AirflowHost, *, timeout: float = 30.0) -> list[str]:
    """Stop the started services by process id (their whole process group).

    Pid files of services that died on their own, and a step server socket
    left by a killed server, are removed too.

    Returns:
        Names of the services that were stopped.
    """
    running = running_services(airflow)
    stopped = []
    for name in STOP_ORDER:
        if name in running:
            stop_process_group(running[name], timeout=timeout)
            stopped.append(name)
            logger.info("Stopped Airflow %s (pid %d)", name, running[name])
        (airflow.pid_dir / f"{name}.pid").unlink(missing_ok=True)
    airflow.step_server_socket.unlink(missing_ok=True)
    return stopped
