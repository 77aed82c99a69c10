"""DAG generator for ZenML's Airflow orchestrator, with a subprocess operator.

ZenML's Airflow orchestrator zips this single file (as ``dag.py``) together
with a ``config.json`` that describes one pipeline: its tasks, each task's
ZenML step command, the schedule and the DAG arguments. Airflow imports the zip
and this module turns the configuration into a DAG.

Besides the container operators of the stock generator (Docker, Kubernetes pod:
any operator given by import path), it runs a step as a subprocess of the
Airflow worker's Python environment when the operator is ``subprocess``: no
image and no container engine are needed, the step's output streams into the
task log and the task fails with the step's exit status. When the task's
environment names a step server (``GOLDSIGNALS_STEP_SERVER_SOCKET``, set by
``goldsignals airflow start``), the step runs in a child forked from that warm
process instead, with the same command, environment, output and exit status
but without the interpreter start and imports; a missing or declining server
means a fresh subprocess.

Parsing is cheap: at import this module reads ``config.json`` and builds the DAG
object; it touches no database, network or ZenML store (ZenML runs only inside
the step subprocess). Extra keys understood in ``dag_args``:

- ``schedule_assets``: asset URIs; the DAG runs when they are updated
  (replaces the cron schedule).
- ``outlet_assets``: asset URIs that the DAG's final tasks update on success.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, Field

ENV_ZENML_AIRFLOW_RUN_ID = "ZENML_AIRFLOW_RUN_ID"
ENV_ZENML_LOCAL_STORES_PATH = "ZENML_LOCAL_STORES_PATH"
CONFIG_FILENAME = "config.json"
SUBPROCESS_OPERATOR = "subprocess"
OFFLINE_ENVIRONMENT = {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "ZENML_LOGGING_COLORS_DISABLED": "true",
}
CUSTOM_DAG_ARGS = ("schedule_assets", "outlet_assets")
STEP_SERVER_SOCKET_ENV = "GOLDSIGNALS_STEP_SERVER_SOCKET"
MAX_UNIX_PATH = 100
STEP_SERVER_CONNECT_SECONDS = 5.0
STEP_KILL_GRACE_SECONDS = 5.0


class TaskConfiguration(BaseModel):
    """One ZenML step as an Airflow task (fields as ZenML fills them)."""

    id: str
    zenml_step_name: str
    upstream_steps: list[str]

    docker_image: str
    command: list[str]
    arguments: list[str]

    environment: dict[str, str] = {}

    operator_source: str
    operator_args: dict[str, Any] = {}


class DagConfiguration(BaseModel):
    """One ZenML pipeline as an Airflow DAG (fields as ZenML fills them)."""

    id: str
    tasks: list[TaskConfiguration]

    local_stores_path: str | None = None

    schedule: datetime.timedelta | str = Field(union_mode="left_to_right")
    start_date: datetime.datetime
    end_date: datetime.datetime | None = None
    catchup: bool = False

    tags: list[str] = []
    dag_args: dict[str, Any] = {}


def step_environment(task: TaskConfiguration, run_id: str) -> dict[str, str]:
    """Environment of a step subprocess: the worker's, ZenML's, the run id.

    Telemetry stays off unless the worker's environment says otherwise.
    """
    environment = {**OFFLINE_ENVIRONMENT, **os.environ, **task.environment}
    environment[ENV_ZENML_AIRFLOW_RUN_ID] = run_id
    return environment


def step_command(task: TaskConfiguration, python: str) -> list[str]:
    """The step's entrypoint command, run by ``python`` instead of ``python``."""
    command = list(task.command)
    if command and command[0] in ("python", "python3"):
        command[0] = python
    return command + list(task.arguments)


def run_step(
    command: list[str],
    environment: dict[str, str],
    log: Any,
    on_start: Callable[[int], None] | None = None,
) -> int:
    """Run one step to completion, streaming its output lines to ``log``.

    Each step runs in a fresh temporary working directory and its own
    process group, so concurrent runs share no files and a killed task takes
    its step down with it.

    Returns:
        The step's exit status.
    """
    with (
        tempfile.TemporaryDirectory(prefix="zenml-step-") as workdir,
        subprocess.Popen(
            command,
            cwd=workdir,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        ) as process,
    ):
        if on_start is not None:
            on_start(process.pid)
        assert process.stdout is not None
        for line in process.stdout:
            log.info("%s", line.rstrip())
        return process.wait()


@contextlib.contextmanager
def _unix_address(path: str) -> Iterator[str]:
    """``path``, or ``/proc/self/fd/<folder>/<name>`` when too long for AF_UNIX."""
    if len(os.fsencode(path)) <= MAX_UNIX_PATH:
        yield path
        return
    folder = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{os.path.basename(path)}"
    finally:
        os.close(folder)


def run_step_on_server(
    socket_path: str,
    command: list[str],
    environment: dict[str, str],
    log: Any,
    on_start: Callable[[int], None] | None = None,
) -> int | None:
    """Run one step in a child of the step server, streaming its output.

    Returns:
        The step's exit status; None when the server cannot be reached or
        declines the step (the caller then runs it as a subprocess).
    """
    marker = f"goldsignals-step-exit-{secrets.token_hex(8)}"
    request = {"command": command, "environment": environment, "marker": marker}
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(STEP_SERVER_CONNECT_SECONDS)
        with _unix_address(socket_path) as address:
            conn.connect(address)
        conn.sendall(json.dumps(request).encode() + b"\n")
        stream = conn.makefile("rb")
        reply = json.loads(stream.readline() or b"{}")
    except (OSError, ValueError) as exc:
        log.info(
            "Step server %s not usable (%s); running a subprocess", socket_path, exc
        )
        conn.close()
        return None
    if not reply.get("accepted"):
        log.info(
            "Step server declined the step (%s); running a subprocess",
            reply.get("reason", "no answer"),
        )
        conn.close()
        return None

    conn.settimeout(None)
    pid = int(reply["pid"])
    log.info("Step runs in pid %d, forked from the step server", pid)
    if on_start is not None:
        on_start(pid)
    with conn, stream:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            head, found, status = line.partition(marker)
            if head:
                log.info("%s", head.rstrip())
            if found:
                return int(status)
    log.error("Step process %d ended without an exit status (killed?)", pid)
    return -signal.SIGKILL


def stop_step_group(pid: int, *, grace: float = STEP_KILL_GRACE_SECONDS) -> None:
    """End a step's process group: SIGTERM, then SIGKILL after ``grace`` s.

    ZenML answers SIGTERM by interrupting the step, and with step retries
    configured it sleeps and runs the step again; the SIGKILL makes sure a
    step whose task was stopped or marked failed never runs again.
    """
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def import_class_by_path(class_path: str) -> type[Any]:
    """Import ``module.Class`` given as one dotted string."""
    module_name, class_name = class_path.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def docker_operator_kwargs(
    dag_config: DagConfiguration, task: TaskConfiguration
) -> dict[str, Any]:
    """Arguments of Airflow's DockerOperator for one step."""
    environment = {**task.environment, ENV_ZENML_AIRFLOW_RUN_ID: "{{ run_id }}"}
    mounts: list[Any] = []
    if dag_config.local_stores_path:
        from docker.types import Mount

        environment[ENV_ZENML_LOCAL_STORES_PATH] = dag_config.local_stores_path
        path = dag_config.local_stores_path
        mounts = [Mount(target=path, source=path, type="bind")]
    return {
        "image": task.docker_image,
        "command": task.command + task.arguments,
        "mounts": mounts,
        "environment": environment,
    }


def kubernetes_pod_operator_kwargs(
    dag_config: DagConfiguration, task: TaskConfiguration
) -> dict[str, Any]:
    """Arguments of Airflow's KubernetesPodOperator for one step."""
    from kubernetes.client.models import V1EnvVar

    environment = {**task.environment, ENV_ZENML_AIRFLOW_RUN_ID: "{{ run_id }}"}
    return {
        "name": f"{dag_config.id}-{task.id}".replace("_", "-"),
        "image": task.docker_image,
        "cmds": task.command,
        "arguments": task.arguments,
        "env_vars": [V1EnvVar(name=k, value=v) for k, v in environment.items()],
    }


def operator_kwargs(
    operator_class: type[Any], dag_config: DagConfiguration, task: TaskConfiguration
) -> dict[str, Any]:
    """Keyword arguments for ``operator_class``, then the task's own arguments."""
    kwargs: dict[str, Any] = {"task_id": task.id}
    name = f"{operator_class.__module__}.{operator_class.__name__}"
    if "docker" in name.lower():
        kwargs.update(docker_operator_kwargs(dag_config, task))
    elif "kubernetes" in name.lower():
        kwargs.update(kubernetes_pod_operator_kwargs(dag_config, task))
    kwargs.update(task.operator_args)
    return kwargs


def _build_dag(dag_config: DagConfiguration) -> Any:
    from airflow.sdk import DAG, Asset, BaseOperator
    from airflow.sdk.exceptions import AirflowException

    class ZenMLStepSubprocessOperator(BaseOperator):
        """Run one ZenML step as a subprocess of this Python environment."""

        ui_color = "#f0e4c2"

        def __init__(
            self,
            *,
            task_config: dict[str, Any],
            python: str | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            self.task_config = task_config
            self.python = python or sys.executable
            self._pid: int | None = None

        def execute(self, context: Any) -> None:
            task = TaskConfiguration.model_validate(self.task_config)
            command = step_command(task, self.python)
            self.log.info("Running ZenML step %s: %s", task.zenml_step_name, command)
            environment = step_environment(task, str(context["run_id"]))
            status = None
            server = environment.get(STEP_SERVER_SOCKET_ENV)
            if server:
                status = run_step_on_server(
                    server, command, environment, self.log, self._remember
                )
            if status is None:
                status = run_step(command, environment, self.log, self._remember)
            if status != 0:
                raise AirflowException(
                    f"ZenML step {task.zenml_step_name} exited with status {status}; "
                    "its output is above in this log"
                )

        def _remember(self, pid: int) -> None:
            self._pid = pid

        def on_kill(self) -> None:
            if self._pid is not None:
                self.log.info("Stopping the step's processes (group %d)", self._pid)
                stop_step_group(self._pid)

    dag_args = dict(dag_config.dag_args)
    schedule_assets = dag_args.pop("schedule_assets", None)
    outlet_assets = [Asset(uri) for uri in dag_args.pop("outlet_assets", [])]
    schedule: Any = dag_config.schedule
    if schedule_assets:
        schedule = [Asset(uri) for uri in schedule_assets]

    operators: dict[str, Any] = {}
    downstream = {up for task in dag_config.tasks for up in task.upstream_steps}
    with DAG(
        dag_id=dag_config.id,
        schedule=schedule,
        start_date=dag_config.start_date,
        end_date=dag_config.end_date,
        catchup=dag_config.catchup,
        tags=dag_config.tags,
        is_paused_upon_creation=False,
        **dag_args,
    ) as dag:
        for task in dag_config.tasks:
            outlets = outlet_assets if task.zenml_step_name not in downstream else []
            if task.operator_source == SUBPROCESS_OPERATOR:
                operator = ZenMLStepSubprocessOperator(
                    task_id=task.id,
                    task_config=task.model_dump(),
                    outlets=outlets,
                    **task.operator_args,
                )
            else:
                operator_class = import_class_by_path(task.operator_source)
                kwargs = operator_kwargs(operator_class, dag_config, task)
                operator = operator_class(outlets=outlets, **kwargs)
            operators[task.zenml_step_name] = operator
            for upstream in task.upstream_steps:
                operator.set_upstream(operators[upstream])
    return dag


def _load_from_zip() -> Any:
    try:
        archive = zipfile.ZipFile(os.path.dirname(__file__), "r")
    except (IsADirectoryError, NotADirectoryError, FileNotFoundError, PermissionError):
        return None
    with archive:
        config = DagConfiguration.model_validate_json(archive.read(CONFIG_FILENAME))
    return _build_dag(config)


dag = _load_from_zip()
