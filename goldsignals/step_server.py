"""A warm process that runs the ZenML steps of Airflow tasks on this host.

A step run as a fresh ``python -m zenml.entrypoints.entrypoint`` spends about
5 s importing ZenML, its SQL store, MLflow, scikit-learn, pandas and TA-Lib
before its first line, and about 1.5 s tearing the interpreter down after its
last. The step server pays the imports once, when ``goldsignals airflow
start`` starts it next to the scheduler. For each step it forks a child that
runs the ZenML entrypoint with the task's own arguments and environment, in
its own session and a fresh temporary directory; the child's output and exit
status go back over a Unix socket to the Airflow task (the subprocess
operator of ``dags/goldsignals_dag_generator.py``), which streams them into
the task log exactly as for a subprocess.

The server declines a request, and the task falls back to a fresh
subprocess, when the request is not a ZenML step entrypoint of this Python
environment, when a variable read at import time differs from the server's,
or when the project's code or installed packages changed since the imports
(the server then replaces itself with a fresh copy of itself; the package
index it keeps, :func:`goldsignals.startup.remember_package_index`, is only
valid as long as the packages are unchanged). The socket is
readable by its owner only, and only peers of the same user are served.

Protocol, one connection per step: the client sends one JSON line
``{"command": [...], "environment": {...}, "marker": "..."}``; the server
answers one JSON line, ``{"accepted": true, "pid": N}`` or ``{"accepted":
false, "reason": "..."}``; after an acceptance the child's output follows and
ends with a line holding ``<marker> <exit status>``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from goldsignals.startup import remember_package_index

logger = logging.getLogger(__name__)

ENTRYPOINT_MODULE = "zenml.entrypoints.entrypoint"
SOCKET_ENV = "GOLDSIGNALS_STEP_SERVER_SOCKET"
"""Tells the Airflow task processes where the step server listens."""
SOCKET_NAME = "step-server.sock"
MAX_REQUEST_BYTES = 4 * 1024 * 1024
REQUEST_SECONDS = 10.0
"""How long a child waits for the whole request line."""
REAP_SECONDS = 0.2
"""The accept loop wakes this often to collect finished children."""
MAX_UNIX_PATH = 100
"""Longer socket paths are reached through ``/proc/self/fd`` (AF_UNIX: 108)."""

PRELOAD: tuple[str, ...] = (
    "zenml",
    "zenml.client",
    "zenml.zen_stores.sql_zen_store",
    "zenml.zen_stores.rest_zen_store",
    "zenml.zen_stores.migrations.utils",
    "zenml.entrypoints.entrypoint",
    "zenml.entrypoints.step_entrypoint_configuration",
    "zenml.execution.step.utils",
    "zenml.orchestrators.step_launcher",
    "zenml.orchestrators.step_runner",
    "zenml.pipelines.run_utils",
    "zenml.alerter",
    "zenml.annotators",
    "zenml.container_registries",
    "zenml.data_validators",
    "zenml.deployers",
    "zenml.feature_stores",
    "zenml.image_builders",
    "zenml.log_stores",
    "zenml.login",
    "zenml.sandboxes",
    "zenml.secret",
    "zenml.step_operators",
    "opentelemetry.sdk._logs",
    "opentelemetry.instrumentation.logging",
    "zenml.integrations.airflow.orchestrators",
    "zenml.integrations.airflow.flavors",
    "zenml.integrations.mlflow.experiment_trackers",
    "zenml.integrations.mlflow.model_registries",
    "zenml.integrations.mlflow.flavors",
    "mlflow",
    "mlflow.sklearn",
    "pandas",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "sklearn.ensemble",
    "sqlalchemy",
    "alembic",
    "psycopg2",
    "talib",
    "pandera.pandas",
    "pandera.backends.pandas.register",
    "yfinance",
    "steps.data_loader",
    "steps.data_preprocessor",
    "steps.feature_generation",
    "steps.data_splitter",
    "steps.data_scaler",
    "steps.model_trainer",
    "steps.model_evaluator",
    "steps.select_best_model",
    "steps.inference_predict",
    "steps.signal_writer",
)
"""Imported once by the server; every forked step starts with them loaded."""

IMPORT_TIME_VARIABLES: tuple[str, ...] = (
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "ZENML_DEBUG",
    "ZENML_LOGGING_VERBOSITY",
    "ZENML_STORAGE_LOGGING_VERBOSITY",
    "ZENML_LOGGING_COLORS_DISABLED",
    "ZENML_LOGGING_FORMAT",
    "ZENML_ENABLE_RICH_TRACEBACK",
    "ZENML_CONTAINER",
    "ZENML_ANALYTICS_OPT_IN",
    "MPLBACKEND",
    "MPLCONFIGDIR",
)
"""Variables the preloaded modules read when imported: a step whose
environment gives another value runs as a fresh subprocess instead."""

CODE_FOLDERS = ("goldsignals", "steps", "zenml_pipelines")


def socket_path(run_dir: Path) -> Path:
    """Where the step server of an Airflow home listens (``<home>/run``)."""
    return run_dir / SOCKET_NAME


@contextlib.contextmanager
def reachable_path(path: Path) -> Iterator[str]:
    """A path to ``path`` short enough for AF_UNIX, valid inside the block.

    A long path is reached through an ``O_PATH`` descriptor of its folder
    (``/proc/self/fd/<fd>/<name>``), which Linux resolves for bind and
    connect alike.
    """
    if len(os.fsencode(path)) <= MAX_UNIX_PATH:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


def code_fingerprint(root: Path, site_packages: Sequence[Path]) -> int:
    """Newest modification time (ns) of the project's code and packages.

    Covers the Python files and YAML configurations of the project's
    packages under ``root`` and the site-packages folders themselves (whose
    time changes when a package is installed, upgraded or removed).
    """
    paths = [
        path
        for name in CODE_FOLDERS
        for path in (root / name).rglob("*")
        if path.suffix in (".py", ".yaml")
    ]
    newest = 0
    for path in [*paths, *site_packages]:
        with contextlib.suppress(FileNotFoundError):
            newest = max(newest, path.stat().st_mtime_ns)
    return newest


def _site_packages() -> list[Path]:
    import site

    return [Path(path) for path in site.getsitepackages()]


def _project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def preload(modules: Sequence[str] = PRELOAD) -> list[str]:
    """Import ``modules`` and activate ZenML's integrations; return failures.

    A module that fails to import is logged and skipped: its step then
    imports it in the child and reports the error as a fresh process would.
    """
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            logger.exception(
                "Could not preload %s; its steps import it themselves", name
            )
            failed.append(name)
    from zenml.integrations.registry import integration_registry

    integration_registry.activate_integrations()
    remember_package_index()
    return failed


def decline_reason(
    request: dict[str, Any],
    *,
    python: str,
    environment: dict[str, str],
    entrypoint: str = ENTRYPOINT_MODULE,
) -> str | None:
    """Why a request cannot be served by this server (None: it can).

    Args:
        request: The decoded request.
        python: This server's interpreter (``sys.executable``).
        environment: This server's environment at start.
        entrypoint: The only module the server runs (``python -m``).
    """
    command = request.get("command")
    env = request.get("environment")
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        return "the request's command is not a list of strings"
    if not isinstance(env, dict) or not isinstance(request.get("marker"), str):
        return "the request lacks its environment or exit marker"
    if command[1:3] != ["-m", entrypoint]:
        return f"only `python -m {entrypoint}` is served, not {command[:3]}"
    bin_dir = os.path.dirname(os.path.abspath(python))
    if os.path.dirname(os.path.abspath(command[0])) != bin_dir:
        return f"{command[0]} is not an interpreter of {bin_dir}"
    for name in IMPORT_TIME_VARIABLES:
        if env.get(name) != environment.get(name):
            return f"{name} differs from the step server's"
    return None


def _read_request(conn: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("the client closed the connection before its request")
        data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError(f"request longer than {MAX_REQUEST_BYTES} bytes")
    try:
        request = json.loads(data)
    except RecursionError as exc:
        raise ValueError("the request nests too deeply") from exc
    if not isinstance(request, dict):
        raise TypeError("the request is not a JSON object")
    return request


def _step_name(request: dict[str, Any]) -> str:
    command = request["command"]
    if "--step_name" in command[:-1]:
        return str(command[command.index("--step_name") + 1])
    return "?"


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def peer_uid(conn: socket.socket) -> int:
    """User id of the process at the other end of a Unix socket."""
    credentials = conn.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
    )
    _, uid, _ = struct.unpack("3i", credentials)
    return int(uid)


def _finish_like_the_interpreter() -> None:
    """Do what Python does at exit, up to freeing the heap.

    ``threading._shutdown`` runs the thread-exit hooks (which stop executor
    workers such as MLflow's artifact upload pool) and joins every
    non-daemon thread, then the ``atexit`` handlers run; the interpreter's
    own teardown of modules and objects (about 1.5 s for a step's heap) is
    skipped by the caller's ``os._exit``.
    """
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()


def _title(command: Sequence[str]) -> None:
    with contextlib.suppress(ImportError):
        from setproctitle import setproctitle

        setproctitle(" ".join(command))


def run_child(conn: socket.socket, request: dict[str, Any], *, entrypoint: str) -> int:
    """In the forked child: become the step process and run ``entrypoint``.

    Returns:
        The step's exit status (the caller ends the process with it).
    """
    command: list[str] = request["command"]
    os.setsid()
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)
    _title(command)
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
    random.seed()
    workdir = tempfile.mkdtemp(prefix="zenml-step-")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(conn.fileno(), 1)
    os.dup2(conn.fileno(), 2)
    os.close(null)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ.clear()
    os.environ.update(request["environment"])
    os.chdir(workdir)
    _send(conn, {"accepted": True, "pid": os.getpid()})

    status = 1
    try:
        sys.argv = [command[0], *command[3:]]
        importlib.import_module(entrypoint).main()
        status = 0
    except SystemExit as exc:
        status = (
            exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        )
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        _finish_like_the_interpreter()
        shutil.rmtree(workdir, ignore_errors=True)
        os.write(1, f"{request['marker']} {status}\n".encode())
    return status


class StepServer:
    """Accepts step requests on a Unix socket and forks one child per step."""

    def __init__(
        self,
        path: Path,
        *,
        entrypoint: str = ENTRYPOINT_MODULE,
        root: Path | None = None,
    ) -> None:
        """Prepare to serve on ``path`` (nothing is bound yet).

        Args:
            path: The socket to listen on.
            entrypoint: The module whose ``main()`` each child runs.
            root: Project folder whose code the fingerprint covers.
        """
        self.path = path
        self.entrypoint = entrypoint
        self.python = sys.executable
        self.environment = dict(os.environ)
        self.root = root or _project_root()
        self.site_packages = _site_packages()
        self.fingerprint = code_fingerprint(self.root, self.site_packages)
        self.children: dict[int, float] = {}
        self.stopping = False

    def serve(self) -> None:
        """Bind, then accept requests until SIGTERM or SIGINT."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        listener = self._listen()
        logger.info("Step server (pid %d) listening on %s", os.getpid(), self.path)
        try:
            while not self.stopping:
                self._reap()
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except InterruptedError:
                    continue
                self._handle(conn, listener)
        finally:
            listener.close()
            self.path.unlink(missing_ok=True)
        logger.info("Step server stopped; %d step(s) still running", len(self.children))

    def _listen(self) -> socket.socket:
        """Bind and listen under a temporary name, then rename into place.

        The socket appears at ``path`` only once it accepts connections.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        binding = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        binding.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o177)
        try:
            with reachable_path(binding) as address:
                listener.bind(address)
        finally:
            os.umask(old_mask)
        listener.listen(16)
        listener.settimeout(REAP_SECONDS)
        os.replace(binding, self.path)
        return listener

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _handle(self, conn: socket.socket, listener: socket.socket) -> None:
        """Check the peer and the code, then fork; the child reads the request.

        The server itself never waits for a client, so a slow or silent one
        delays no other task.
        """
        with conn:
            uid = peer_uid(conn)
            if uid != os.getuid():
                logger.warning("Refused a connection of user id %d", uid)
                return
            if code_fingerprint(self.root, self.site_packages) != self.fingerprint:
                _send(conn, {"accepted": False, "reason": "code changed; restarting"})
                self._restart(listener)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                os._exit(self._serve_one(conn))
        self.children[pid] = time.monotonic()

    def _serve_one(self, conn: socket.socket) -> int:
        """In the child: read, check and run one request; return the status."""
        status = 1
        try:
            conn.settimeout(REQUEST_SECONDS)
            request = _read_request(conn)
            reason = decline_reason(
                request,
                python=self.python,
                environment=self.environment,
                entrypoint=self.entrypoint,
            )
            if reason is not None:
                logger.info("Declined a request: %s", reason)
                _send(conn, {"accepted": False, "reason": reason})
                return 0
            conn.settimeout(None)
            logger.info("Step %s runs as pid %d", _step_name(request), os.getpid())
            status = run_child(conn, request, entrypoint=self.entrypoint)
        except (OSError, ValueError, TypeError) as exc:
            logger.warning("Refused a request: %s", exc)
        except BaseException:
            logger.exception("The step server's child failed")
        return status

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            started = self.children.pop(pid, time.monotonic())
            logger.info(
                "Pid %d ended with status %d after %.1f s",
                pid,
                os.waitstatus_to_exitcode(status),
                time.monotonic() - started,
            )

    def _restart(self, listener: socket.socket) -> None:
        """Replace this process with a fresh server (new imports, same pid)."""
        logger.info("Code or packages changed since start; restarting the step server")
        listener.close()
        self.path.unlink(missing_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # The same command line the server was started with (sys.orig_argv):
        # `python -m goldsignals.step_server --socket ...` for the service.
        os.execv(self.python, [self.python, *sys.orig_argv[1:]])


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m goldsignals.step_server --socket PATH``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, required=True, help="socket path")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    started = time.monotonic()
    failed = preload()
    threads = [
        t.name for t in threading.enumerate() if t is not threading.main_thread()
    ]
    if threads:
        raise SystemExit(
            f"error: preloading started threads {threads}; forking would be unsafe. "
            "Steps run as subprocesses until this is fixed."
        )
    logger.info(
        "Preloaded %d modules in %.1f s (%d failed)",
        len(PRELOAD) - len(failed),
        time.monotonic() - started,
        len(failed),
    )
    StepServer(args.socket.resolve()).serve()


if __name__ == "__main__":
    main()
