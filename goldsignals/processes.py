"""Background services started by goldsignals: liveness and stopping by pid."""

from __future__ import annotations

import contextlib
import os
import signal
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
    """SIGTERM the process group led by ``pid``; SIGKILL it after ``timeout``."""
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)


def answers_ok(url: str) -> bool:
    """Whether ``url`` answers HTTP 200 within 5 seconds."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
