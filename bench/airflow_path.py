"""The Airflow path: the DAGs run by a real Airflow 3 on this host.

On a fresh state folder: ``goldsignals stack --config
stack_configs/airflow_local.yaml``, ``goldsignals compile``, then, before any
Airflow service runs, the DAGs are serialised into Airflow's database
(``airflow dags reserialize``) and all three paused (``airflow dags pause``),
so the scheduler starts no run of its own. ``goldsignals airflow start`` then
starts api-server, scheduler and dag-processor on a free port.

The runs, one at a time, through the REST API:

1. ``gold_feature_engineering`` is unpaused: the scheduler starts its latest
   cron tick (catchup off), which makes the features training needs. With
   ``gold_inference`` still paused, its asset event starts nothing.
2. ``gold_training`` is unpaused: its latest tick runs the weekly retrain,
   which logs and registers the first model version (measured from the
   unpause to the run's end).
3. ``gold_inference`` is unpaused and ``gold_feature_engineering`` triggered
   through the REST API: the daily path, from the trigger to the end of the
   asset-triggered ``gold_inference`` run, whose signal row is checked in the
   signals database. Both cron DAGs have run their latest tick already, so no
   scheduled run interferes (unless a cron tick falls inside the benchmark).

CPU and memory of every window come from sampling the whole Airflow process
tree (services, executor workers, task runners, step processes). Per task,
the wall time (task instance ``start_date`` to ``end_date``) is compared with
the step's own run time in ZenML; the difference is the per-task overhead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import socket
import sqlite3
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.cases import AIRFLOW, Case, goldsignals, zenml_runs
from bench.embedded import register_stack
from bench.measure import (
    MB,
    BenchError,
    Measurement,
    ProcessTrace,
    TreeSampler,
    Window,
    run_measured,
)

logger = logging.getLogger(__name__)

AIRFLOW_SECTION = "airflow"
TASKS_SECTION = "airflow tasks"
FEATURES = "gold_feature_engineering"
TRAINING = "gold_training"
INFERENCE = "gold_inference"
DAG_IDS = (FEATURES, TRAINING, INFERENCE)
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
FIRST_FEATURES = "gold_feature_engineering first run (scheduled tick, on unpause)"
RETRAIN = "gold_training weekly retrain (scheduled tick, unpause to end)"
DAILY = "daily path: trigger gold_feature_engineering to gold_inference end"
SETUP = "setup: compile + reserialize + pause"
START = "goldsignals airflow start (to healthy)"
PRELOAD = "step server preload (once per start; CPU and RSS of the server)"
RUN_TIMEOUT = 900.0
SETTLE_SECONDS = 1.0
"""Wait after a run's end before closing its window: the step server collects
a finished step (and so its CPU time) within 0.2 s."""
SUBPROCESS = "fresh subprocess per step"
"""Label of the variant measured with the step server turned off."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_time(value: str | None) -> float | None:
    """An Airflow ISO timestamp as seconds since the epoch."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value).timestamp()


class AirflowApi:
    """A small client of Airflow's REST API (JWT of the generated admin)."""

    def __init__(self, base: str, airflow_home: Path) -> None:
        """Log in as ``admin`` with the password Airflow generated."""
        self.base = base
        self.token: str | None = None
        password = json.loads((airflow_home / PASSWORDS_FILE).read_text())["admin"]
        body = {"username": "admin", "password": password}
        self.token = str(self.call("/auth/token", body)["access_token"])

    def call(self, path: str, body: Any = None, method: str | None = None) -> Any:
        """Send a request (POST when ``body`` is given); return the JSON."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, headers=headers, method=method
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def dag(self, dag_id: str) -> dict[str, Any]:
        """The DAG's record."""
        result: dict[str, Any] = self.call(f"/api/v2/dags/{dag_id}")
        return result

    def set_paused(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause ``dag_id``."""
        self.call(f"/api/v2/dags/{dag_id}", {"is_paused": paused}, "PATCH")

    def trigger(self, dag_id: str) -> str:
        """Start a manual run now; return its run id."""
        body = {"logical_date": None}
        return str(self.call(f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of ``dag_id``."""
        result = self.call(f"/api/v2/dags/{dag_id}/dagRuns?limit=100")
        runs: list[dict[str, Any]] = result["dag_runs"]
        return runs

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One run."""
        result: dict[str, Any] = self.call(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The task instances of one run."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        tasks: list[dict[str, Any]] = self.call(path)["task_instances"]
        return tasks


def wait_for_first_run(api: AirflowApi, dag_id: str, timeout: float) -> str:
    """Wait until ``dag_id`` has a run; return its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.runs(dag_id)
        if runs:
            return str(runs[0]["dag_run_id"])
        time.sleep(0.5)
    raise BenchError(f"no run of {dag_id} started within {timeout:.0f} s")


def wait_for_end(
    api: AirflowApi, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT
) -> dict[str, Any]:
    """Wait until the run succeeded; return it.

    Raises:
        BenchError: The run failed or did not end within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.run(dag_id, run_id)
        if run["state"] == "success":
            return run
        if run["state"] == "failed":
            raise BenchError(
                f"{dag_id} run {run_id} failed; see the task logs under "
                "the state folder's airflow/logs (use --keep-state)"
            )
        time.sleep(0.5)
    raise BenchError(f"{dag_id} run {run_id} did not end within {timeout:.0f} s")


@dataclass(frozen=True)
class MeasuredRun:
    """An Airflow run measured through a sampler window.

    Attributes:
        label: Name of the measurement.
        dag_id: The DAG.
        run: The run's record from the REST API, after its end.
        started: Epoch seconds of the unpause or trigger that started it.
        window: Tree usage from ``started`` to the observed end.
    """

    label: str
    dag_id: str
    run: dict[str, Any]
    started: float
    window: Window


def _prepare(case: Case) -> list[Measurement]:
    """Stack, DAGs, configuration, database; DAGs serialised and paused."""
    stack = register_stack(case, "airflow_local.yaml", section=AIRFLOW_SECTION)
    steps = [
        goldsignals(case, "compile"),
        goldsignals(case, "airflow", "config"),
        _airflow(case, "db", "migrate"),
        _airflow(case, "dags", "reserialize"),
        _airflow(case, "dags", "pause", "--treat-dag-id-as-regex", "-y", "^gold_"),
    ]
    setup = Measurement(
        AIRFLOW_SECTION,
        SETUP,
        sum(step.wall_s for step in steps),
        sum(step.cpu_s for step in steps),
        max(step.rss_mb for step in steps),
        {"commands_s": [round(step.wall_s, 2) for step in steps]},
    )
    return [stack, setup]


def _airflow(case: Case, *args: str) -> Any:
    return run_measured(
        [str(AIRFLOW), *args],
        env=case.env,
        cwd=case.home,
        log=case.log("airflow_" + "_".join(args)),
        timeout=600.0,
    )


def _service_pids(case: Case) -> list[int]:
    folder = case.home / "airflow" / "run"
    return [int(path.read_text()) for path in sorted(folder.glob("*.pid"))]


def _released_run(
    api: AirflowApi, sampler: TreeSampler, dag_id: str, label: str
) -> MeasuredRun:
    """Unpause a paused cron DAG and measure the run of its latest tick."""
    window = sampler.open_window()
    started = time.time()
    api.set_paused(dag_id, False)
    run_id = wait_for_first_run(api, dag_id, timeout=120.0)
    run = wait_for_end(api, dag_id, run_id)
    time.sleep(SETTLE_SECONDS)
    return MeasuredRun(label, dag_id, run, started, sampler.close_window(window))


def _daily_path(
    api: AirflowApi, sampler: TreeSampler
) -> tuple[MeasuredRun, MeasuredRun]:
    """Trigger the feature DAG; wait for the asset-triggered inference run."""
    api.set_paused(INFERENCE, False)
    known = {run["dag_run_id"] for run in api.runs(INFERENCE)}
    window = sampler.open_window()
    started = time.time()
    features_id = api.trigger(FEATURES)
    features = wait_for_end(api, FEATURES, features_id)
    deadline = time.monotonic() + 120.0
    new: list[str] = []
    while not new and time.monotonic() < deadline:
        new = [
            r["dag_run_id"] for r in api.runs(INFERENCE) if r["dag_run_id"] not in known
        ]
        time.sleep(0.5)
    if not new:
        raise BenchError(f"no {INFERENCE} run followed {FEATURES} run {features_id}")
    inference = wait_for_end(api, INFERENCE, new[0])
    time.sleep(SETTLE_SECONDS)
    sampler.close_window(window)
    return (
        MeasuredRun("daily: " + FEATURES, FEATURES, features, started, window),
        MeasuredRun(DAILY, INFERENCE, inference, started, window),
    )


def _signal_row(case: Case) -> dict[str, Any]:
    database = case.home / "data" / "signals.db"
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute(
            "SELECT as_of_date, signal, zenml_run_id FROM signals "
            "ORDER BY as_of_date DESC LIMIT 1"
        ).fetchall()
    if not rows:
        raise BenchError(f"the daily path wrote no signal row into {database}")
    return dict(rows[0])


def _span(start: str | None, end: str | None) -> float:
    begin, finish = parse_time(start), parse_time(end)
    return finish - begin if begin is not None and finish is not None else 0.0


def run_breakdown(
    run: dict[str, Any],
    tasks: Sequence[dict[str, Any]],
    zenml_run: dict[str, Any] | None,
) -> dict[str, float]:
    """Where a run's time goes: steps, per-task overhead, between tasks.

    Returns:
        ``run_s`` (run start to end), ``tasks_s`` (sum of task walls),
        ``steps_s`` (sum of ZenML step times), ``task_overhead_s`` (tasks
        minus steps) and ``between_tasks_s`` (run minus tasks: scheduling
        and task start-up outside the task instances' own times).
    """
    run_s = _span(run["start_date"], run["end_date"])
    tasks_s = sum(_span(task["start_date"], task["end_date"]) for task in tasks)
    steps = (zenml_run or {}).get("steps", {}).values()
    steps_s = sum(
        step["end"] - step["start"]
        for step in steps
        if step["start"] is not None and step["end"] is not None
    )
    return {
        "run_s": run_s,
        "tasks_s": tasks_s,
        "steps_s": steps_s,
        "task_overhead_s": tasks_s - steps_s,
        "between_tasks_s": run_s - tasks_s,
    }


def _run_measurement(measured: MeasuredRun, detail: dict[str, Any]) -> Measurement:
    run, window = measured.run, measured.window
    end = parse_time(run["end_date"])
    if end is None:
        raise BenchError(f"{measured.dag_id} run {run['dag_run_id']} has no end")
    detail = {
        "dag_run_id": run["dag_run_id"],
        "run_type": run.get("run_type"),
        "release_to_run_start_s": (parse_time(run["start_date"]) or end)
        - measured.started,
        **detail,
        "largest_process": window.peak_command,
        "step_peak_rss_mb": window.step_peak_rss / MB,
    }
    return Measurement(
        AIRFLOW_SECTION,
        measured.label,
        end - measured.started,
        window.cpu_s,
        window.peak_rss / MB,
        detail,
    )


def _step_process(
    traces: Sequence[ProcessTrace], step: str, start: float, end: float
) -> ProcessTrace | None:
    for trace in traces:
        if trace.step_name == step and start - 0.5 <= trace.created <= end:
            return trace
    return None


def task_measurements(
    tasks: Sequence[dict[str, Any]],
    zenml_run: dict[str, Any] | None,
    traces: Sequence[ProcessTrace],
    prefix: str,
) -> list[Measurement]:
    """Per task: wall, ZenML step time, overhead and where the overhead goes.

    The step process (found among the sampled processes by its step name
    and start time) splits the overhead into: task start to the step
    process's start, the process's start to ZenML's step start (interpreter,
    imports, ZenML's step preparation), ZenML's step end to the process's
    last sample (finishing and interpreter exit), and from there to the
    task's end.
    """
    steps = zenml_run["steps"] if zenml_run else {}
    rows = []
    for task in sorted(tasks, key=lambda t: t["start_date"] or ""):
        start, end = parse_time(task["start_date"]), parse_time(task["end_date"])
        if start is None or end is None:
            continue
        step = steps.get(task["task_id"], {})
        detail: dict[str, Any] = {"state": task["state"], "try": task.get("try_number")}
        if step.get("start") is not None and step.get("end") is not None:
            detail["step_s"] = step["end"] - step["start"]
            detail["overhead_s"] = (end - start) - detail["step_s"]
        process = _step_process(traces, task["task_id"], start, end)
        cpu = rss = None
        if process is not None:
            cpu, rss = process.cpu, process.peak_rss / MB
            detail["task_start_to_process_s"] = process.created - start
            if step.get("start") is not None:
                detail["process_to_step_start_s"] = step["start"] - process.created
                detail["step_end_to_process_end_s"] = process.last_seen - step["end"]
            detail["process_end_to_task_end_s"] = end - process.last_seen
        name = f"{prefix}.{task['task_id']}"
        rows.append(Measurement(TASKS_SECTION, name, end - start, cpu, rss, detail))
    return rows


def _daily_detail(
    features: MeasuredRun,
    inference: MeasuredRun,
    parts: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """Where the daily path's time goes: trigger, runs, asset hand-over."""
    f_start = parse_time(features.run["start_date"]) or features.started
    f_end = parse_time(features.run["end_date"]) or f_start
    i_start = parse_time(inference.run["start_date"]) or f_end
    detail: dict[str, Any] = {
        "trigger_to_features_start_s": f_start - features.started,
        "features_end_to_inference_start_s": i_start - f_end,
    }
    for label in ("features", "inference"):
        for key, value in parts[f"daily {label}"].items():
            detail[f"{label}_{key}"] = value
    for key in ("steps_s", "task_overhead_s", "between_tasks_s"):
        detail[key] = detail[f"features_{key}"] + detail[f"inference_{key}"]
    return detail


def measure_airflow(case: Case, *, step_server: bool = True) -> list[Measurement]:
    """Set up Airflow on the case, run the three DAGs as described above.

    Args:
        case: A fresh state folder.
        step_server: Run the steps in children of the step server (the
            product's default); False measures a fresh subprocess per step,
            with every name labelled SUBPROCESS.

    Returns:
        Setup, start, the step server's preload, the three measured runs and
        one measurement per task.

    Raises:
        BenchError: A command or a run failed, or no signal row was written.
    """
    port = free_port()
    case = case.with_env(
        GOLDSIGNALS_AIRFLOW_PORT=str(port),
        GOLDSIGNALS_AIRFLOW_STEP_SERVER=str(step_server).lower(),
    )
    rows = _prepare(case)
    start = goldsignals(case, "airflow", "start", timeout=300.0)
    rows.append(
        Measurement(AIRFLOW_SECTION, START, start.wall_s, start.cpu_s, start.rss_mb)
    )
    if step_server:
        rows.append(_preload(case))
    pids = _service_pids(case)
    sampler = TreeSampler(lambda: pids).start()
    try:
        api = AirflowApi(f"http://127.0.0.1:{port}", case.home / "airflow")
        paused = {dag_id: api.dag(dag_id)["is_paused"] for dag_id in DAG_IDS}
        if not all(paused.values()):
            raise BenchError(f"the DAGs should all be paused before the runs: {paused}")
        first = _released_run(api, sampler, FEATURES, FIRST_FEATURES)
        retrain = _released_run(api, sampler, TRAINING, RETRAIN)
        features, inference = _daily_path(api, sampler)
        runs = {
            "first features": first,
            "retrain": retrain,
            "daily features": features,
            "daily inference": inference,
        }
        signal = _signal_row(case)
        tasks = {
            label: api.task_instances(run.dag_id, str(run.run["dag_run_id"]))
            for label, run in runs.items()
        }
    finally:
        sampler.stop()
        goldsignals(case, "airflow", "stop")

    zenml = {
        str(run["orchestrator_run_id"]): run
        for run in zenml_runs(case)
        if run["orchestrator_run_id"]
    }
    _check_signal_lineage(signal, zenml.get(str(inference.run["dag_run_id"])))
    parts = {
        label: run_breakdown(run.run, tasks[label], zenml.get(run.run["dag_run_id"]))
        for label, run in runs.items()
    }
    daily = {**_daily_detail(features, inference, parts), "signal": signal}
    rows += [
        _run_measurement(first, parts["first features"]),
        _run_measurement(retrain, parts["retrain"]),
        _run_measurement(inference, daily),
    ]
    traces = sampler.step_traces()
    for label, run in runs.items():
        zenml_run = zenml.get(str(run.run["dag_run_id"]))
        rows += task_measurements(tasks[label], zenml_run, traces, label)
    return rows if step_server else [_as_variant(row) for row in rows]


def _as_variant(row: Measurement) -> Measurement:
    """The row labelled as measured with a fresh subprocess per step."""
    if row.section == TASKS_SECTION:
        return dataclasses.replace(row, name=f"{SUBPROCESS}: {row.name}")
    return dataclasses.replace(row, name=f"{row.name} ({SUBPROCESS})")


PRELOAD_LINE = re.compile(r"Preloaded (\d+) modules in ([\d.]+) s")


def _preload(case: Case) -> Measurement:
    """The step server's one-time imports, as its log reports them.

    Its resident set (shared with every forked step) is sampled once.
    """
    log = case.home / "airflow" / "logs" / "step-server.out"
    pid_file = case.home / "airflow" / "run" / "step-server.pid"
    found = PRELOAD_LINE.search(log.read_text()) if log.exists() else None
    if found is None or not pid_file.exists():
        raise BenchError(f"the step server did not report its preload in {log}")
    process = psutil.Process(int(pid_file.read_text()))
    times = process.cpu_times()
    return Measurement(
        AIRFLOW_SECTION,
        PRELOAD,
        float(found.group(2)),
        times.user + times.system,
        process.memory_info().rss / MB,
        {"modules": int(found.group(1))},
    )


def _check_signal_lineage(signal: dict[str, Any], run: dict[str, Any] | None) -> None:
    if run is None or signal["zenml_run_id"] != run["id"]:
        raise BenchError(
            f"the newest signal row {signal} was not written by the ZenML run of "
            f"the measured {INFERENCE} Airflow run ({run and run['id']})"
        )
