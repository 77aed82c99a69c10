"""The step server: forked steps, their output, exit status and refusals.

A real server process runs ``tests.fake_step_entrypoint`` in place of ZenML's
entrypoint (the Airflow integration test runs real ZenML steps through it);
the client is the one the DAG files use.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dags import goldsignals_dag_generator as generator
from goldsignals import step_server
from tests.helpers import ROOT

FAKE = "tests.fake_step_entrypoint"
SERVE = (
    "import sys; from pathlib import Path; import tests.fake_step_entrypoint; "
    "from goldsignals.step_server import StepServer; "
    "StepServer(Path(sys.argv[1]), entrypoint=sys.argv[2], "
    "root=Path(sys.argv[3])).serve()"
)


@dataclass
class Log:
    """Collects what the client logs, as an Airflow task logger would."""

    lines: list[str] = field(default_factory=list)

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    error = info


@dataclass
class Server:
    """A running step server and the folders it uses."""

    process: subprocess.Popen[bytes]
    socket: Path
    root: Path
    log: Path

    def command(self, *args: str, module: str = FAKE) -> list[str]:
        return [sys.executable, "-m", module, *args]

    def run(self, *args: str, module: str = FAKE, **env: str) -> tuple[int | None, Log]:
        log = Log()
        command = self.command(*args, module=module)
        status = generator.run_step_on_server(
            str(self.socket), command, {**os.environ, **env}, log
        )
        return status, log


def _start(folder: Path, socket_path: Path) -> Server:
    root = folder / "code"
    (root / "steps").mkdir(parents=True)
    (root / "steps" / "step.py").write_text("X = 1\n")
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(socket_path), FAKE, str(root)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return Server(process, socket_path, root, log)


def _stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = _start(tmp_path, tmp_path / "run" / "step.sock")
    yield running
    _stop(running)


def test_step_server_streams_output_and_environment(server: Server) -> None:
    status, log = server.run(
        "echo", "GOLDSIGNALS_TEST_VALUE", GOLDSIGNALS_TEST_VALUE="42"
    )

    assert status == 0
    assert "var=42" in log.lines
    assert "argv=echo GOLDSIGNALS_TEST_VALUE" in log.lines
    cwd = next(line for line in log.lines if line.startswith("cwd="))
    assert Path(cwd[4:]).name.startswith("zenml-step-")
    assert not Path(cwd[4:]).exists()


def test_step_server_reports_the_exit_status(server: Server) -> None:
    assert server.run("exit", "3")[0] == 3
    assert server.run("exit", "0")[0] == 0

    status, log = server.run("raise")

    assert status == 1
    assert any("the fake step failed" in line for line in log.lines)


def test_step_server_serves_concurrent_steps(server: Server) -> None:
    results: list[int | None] = []

    def one() -> None:
        results.append(server.run("sleep", "1.5")[0])

    threads = [threading.Thread(target=one) for _ in range(3)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [0, 0, 0]
    assert time.monotonic() - started < 4.5


def test_step_server_silent_client_delays_no_other(server: Server) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(str(server.socket))
        silent.sendall(b'{"command": ')
        started = time.monotonic()

        status, _ = server.run("exit", "0")

        assert status == 0
        assert time.monotonic() - started < step_server.REQUEST_SECONDS / 2


def test_step_server_refuses_garbage(server: Server) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(server.socket))
        client.sendall(b"not json\n")
        answer = client.recv(100)

    assert answer == b""
    assert server.run("exit", "0")[0] == 0


def test_step_server_child_killed_is_a_failure(server: Server) -> None:
    pids: list[int] = []

    def kill_soon(pid: int) -> None:
        pids.append(pid)
        threading.Timer(0.5, os.killpg, (pid, signal.SIGKILL)).start()

    status = generator.run_step_on_server(
        str(server.socket),
        server.command("sleep", "30"),
        dict(os.environ),
        Log(),
        kill_soon,
    )

    assert status is not None
    assert status != 0
    assert pids
    assert pids[0] != server.process.pid


def test_step_server_declines_other_commands(server: Server) -> None:
    status, log = server.run("echo", "X", module="some.other.module")

    assert status is None
    assert any("declined" in line and "only `python -m" in line for line in log.lines)


def test_step_server_declines_a_changed_import_time_variable(server: Server) -> None:
    status, log = server.run("echo", "X", ZENML_LOGGING_VERBOSITY="DEBUG")

    assert status is None
    assert any("ZENML_LOGGING_VERBOSITY differs" in line for line in log.lines)


def test_step_server_absent_means_subprocess(tmp_path: Path) -> None:
    log = Log()

    status = generator.run_step_on_server(
        str(tmp_path / "nothing.sock"), [sys.executable, "-c", "pass"], {}, log
    )

    assert status is None
    assert any("not usable" in line for line in log.lines)


def test_step_server_socket_is_private(server: Server) -> None:
    assert server.socket.stat().st_mode & 0o777 == 0o600


def test_step_server_restarts_when_code_changes(server: Server) -> None:
    time.sleep(0.01)
    (server.root / "steps" / "step.py").write_text("X = 2\n")

    status, log = server.run("echo", "X")

    assert status is None
    assert any("code changed" in line for line in log.lines)
    # The restarted server runs the same command line, with fresh imports.
    deadline = time.monotonic() + 60
    while (status := server.run("exit", "0")[0]) != 0:
        assert server.process.poll() is None, server.log.read_text()
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.5)
    # Served again: only a restarted server has taken the new fingerprint.
    assert server.process.poll() is None


def test_step_server_survives_a_deeply_nested_request(server: Server) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(server.socket))
        client.sendall(b"[" * 200_000 + b"\n")
        assert client.recv(100) == b""

    assert server.run("exit", "0")[0] == 0


def test_step_server_long_socket_path(tmp_path: Path) -> None:
    folder = tmp_path / ("x" * 60) / ("y" * 60)
    running = _start(tmp_path, folder / "step.sock")
    try:
        assert len(os.fsencode(running.socket)) > step_server.MAX_UNIX_PATH
        assert running.run("exit", "0")[0] == 0
    finally:
        _stop(running)
        shutil.rmtree(folder, ignore_errors=True)


def test_decline_reason_accepts_a_step_of_this_environment() -> None:
    env = {"ZENML_DEBUG": "false"}
    request = {
        "command": [sys.executable, "-m", step_server.ENTRYPOINT_MODULE, "--x"],
        "environment": env,
        "marker": "m",
    }

    assert (
        step_server.decline_reason(request, python=sys.executable, environment=env)
        is None
    )
    other = {**request, "command": ["/other/venv/bin/python", *request["command"][1:]]}
    reason = step_server.decline_reason(other, python=sys.executable, environment=env)
    assert reason is not None
    assert "is not an interpreter of" in reason


def test_code_fingerprint_follows_project_files(tmp_path: Path) -> None:
    (tmp_path / "goldsignals").mkdir()
    module = tmp_path / "goldsignals" / "a.py"
    module.write_text("A = 1\n")
    before = step_server.code_fingerprint(tmp_path, [])

    time.sleep(0.01)
    module.write_text("A = 2\n")

    assert step_server.code_fingerprint(tmp_path, []) > before


STUBBORN = (
    "import signal, time\n"
    "say = lambda *a: print('interrupted; retrying', flush=True)\n"
    "signal.signal(signal.SIGTERM, say)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.mark.parametrize(
    ("code", "killed_by"),
    [(STUBBORN, -9), ("import time; print('ready', flush=True); time.sleep(60)", -15)],
)
def test_stop_step_group_escalates_when_sigterm_is_not_the_end(
    code: str, killed_by: int
) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        started = time.monotonic()

        generator.stop_step_group(process.pid, grace=1.0)

        assert process.wait(timeout=10) == killed_by
        assert time.monotonic() - started < 5
