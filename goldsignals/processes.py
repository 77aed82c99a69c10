"""Background services started by goldsignals: liveness and stopping by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts until reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_pid(path: Path) -> int | None:
    """The live process id recorded in ``path``, if any."""
    if path.exists() and pid_alive(pid := int(path.read_text())):
        return pid
    return None


def stop_process_group(pid: int, *, timeout: float) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL it after ``timeout``.

    A group that is already gone (its leader ended since it was looked up)
    counts as stopped.
    """
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def answers_ok(url: str) -> bool:
    """Whether ``url`` answers HTTP 200 within 5 seconds."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_until_answering(
    name: str,
    url: str,
    process: subprocess.Popen[bytes],
    log_file: Path,
    *,
    timeout: float,
    error: type[Exception],
) -> None:
    """Wait until ``url`` answers HTTP 200, while the server ``process`` lives.

    Raises:
        error: If the process exits first, or ``url`` stays silent for
            ``timeout`` seconds; the message names ``log_file``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise error(
                f"the {name} exited with status {process.returncode}; see {log_file}"
            )
        if answers_ok(url):
            return
        time.sleep(0.5)
    raise error(
        f"the {name} did not answer at {url} within {timeout:.0f} s; see {log_file}"
    )


_STARTED: dict[int, subprocess.Popen[bytes]] = {}
"""Servers this process started, so that stopping one also reaps it."""


def spawn_server(
    command: list[str], environment: dict[str, str], log_file: Path, pid_file: Path
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, output to ``log_file``, pid recorded.

    The log is readable by its owner only (servers may print credentials).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    with os.fdopen(os.open(log_file, flags, 0o600), "ab") as log:
        log_file.chmod(0o600)
        process = subprocess.Popen(
            command, env=environment, stdout=log, stderr=log, start_new_session=True
        )
    _STARTED[process.pid] = process
    pid_file.write_text(str(process.pid))
    return process


def stop_server(pid_file: Path, *, timeout: float) -> bool:
    """Stop the server whose pid ``pid_file`` records. Returns whether it ran."""
    pid = read_pid(pid_file)
    if pid is None:
        return False
    stop_process_group(pid, timeout=timeout)
    started = _STARTED.pop(pid, None)
    if started is not None:
        started.wait(timeout=timeout)
    pid_file.unlink(missing_ok=True)
    return True


def ensure_port_free(
    host: str, port: int, *, service: str, setting: str, error: type[Exception]
) -> None:
    """Raise ``error`` unless ``host:port`` can be bound by a new server.

    Sockets still in TIME-WAIT from a server stopped a moment ago do not
    count (``SO_REUSEADDR``, as the servers themselves bind); a listener does.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise error(
                f"{host}:{port}, the port of the {service}, is already in use "
                f"({exc.strerror}); stop what listens there or set {setting}"
            ) from exc
