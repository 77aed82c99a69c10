"""MLflow tracking server on this host: Postgres backend, artifacts on disk.

Bound to 127.0.0.1, one web worker, and the server's background job runner
off (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: it starts several worker
processes, about 2.4 GB resident, which nothing here needs).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from goldsignals.errors import GoldSignalsError
from goldsignals.processes import answers_ok, read_pid, stop_process_group

logger = logging.getLogger(__name__)


_STARTED: dict[int, subprocess.Popen[bytes]] = {}
"""Servers started by this process, kept so they are reaped when stopped."""


class MlflowHostError(GoldSignalsError, RuntimeError):
    """The MLflow server could not be started or did not answer."""


@dataclass(frozen=True)
class MlflowHost:
    """Where and how the MLflow server runs.

    Attributes:
        home: Folder of its pid file, log and artifacts.
        backend_store_uri: SQLAlchemy URL of its Postgres database.
        port: Port on 127.0.0.1.
    """

    home: Path
    backend_store_uri: str
    port: int = 5000

    @property
    def url(self) -> str:
        """Tracking URI of the server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        """Process id of the running server."""
        return self.home / "server.pid"


def running_pid(host: MlflowHost) -> int | None:
    """The server's process id, if it runs."""
    return read_pid(host.pid_file)


def start(host: MlflowHost, *, timeout: float = 90.0) -> int:
    """Start the server (no-op when running) and wait for ``/health``.

    Returns:
        Its process id.
    """
    if (pid := running_pid(host)) is not None:
        return pid
    (host.home / "artifacts").mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        host.backend_store_uri,
        "--artifacts-destination",
        str(host.home / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(host.port),
        "--workers",
        "1",
    ]
    environment = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    with (host.home / "server.log").open("ab") as log:
        process = subprocess.Popen(
            command, env=environment, stdout=log, stderr=log, start_new_session=True
        )
    _STARTED[process.pid] = process
    host.pid_file.write_text(str(process.pid))
    _wait_for_health(host, process, timeout)
    logger.info("MLflow server at %s (pid %d)", host.url, process.pid)
    return process.pid


def _wait_for_health(
    host: MlflowHost, process: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise MlflowHostError(
                f"the MLflow server exited with status {process.returncode}; "
                f"see {host.home / 'server.log'}"
            )
        if answers_ok(f"{host.url}/health"):
            return
        time.sleep(1.0)
    raise MlflowHostError(
        f"the MLflow server did not answer at {host.url}/health within "
        f"{timeout:.0f} s; see {host.home / 'server.log'}"
    )


def stop(host: MlflowHost, *, timeout: float = 20.0) -> bool:
    """Stop the server's process group. Returns whether it was running."""
    pid = running_pid(host)
    if pid is None:
        return False
    stop_process_group(pid, timeout=timeout)
    started = _STARTED.pop(pid, None)
    if started is not None:
        started.wait(timeout=timeout)
    host.pid_file.unlink(missing_ok=True)
    return True
