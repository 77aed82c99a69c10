"""MLflow tracking server on this host: Postgres backend, artifacts on disk.

Bound to 127.0.0.1, one web worker, and the server's background job runner
off (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: it starts several worker
processes, about 2.4 GB resident, which nothing here needs).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from goldsignals.errors import GoldSignalsError
from goldsignals.processes import (
    ensure_port_free,
    read_pid,
    spawn_server,
    stop_server,
    wait_until_answering,
)

logger = logging.getLogger(__name__)


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
    ensure_port_free(
        "127.0.0.1",
        host.port,
        service="MLflow server",
        setting="GOLDSIGNALS_MLFLOW_PORT",
        error=MlflowHostError,
    )
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
    process = spawn_server(
        command, environment, host.home / "server.log", host.pid_file
    )
    wait_until_answering(
        "MLflow server",
        f"{host.url}/health",
        process,
        host.home / "server.log",
        timeout=timeout,
        error=MlflowHostError,
    )
    logger.info("MLflow server at %s (pid %d)", host.url, process.pid)
    return process.pid


def stop(host: MlflowHost, *, timeout: float = 20.0) -> bool:
    """Stop the server's process group. Returns whether it was running."""
    return stop_server(host.pid_file, timeout=timeout)
