"""The DAG generator: cheap, side-effect-free parsing and the subprocess operator.

DAG zips are built here the way ZenML's Airflow orchestrator builds them (the
generator file as ``dag.py`` plus a ``config.json``) and parsed by Airflow's own
DagBag in a fresh interpreter in which any network connection raises and the
metadata database is unusable, so a DAG that touched either would fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from dags import goldsignals_dag_generator as generator

if importlib.util.find_spec("airflow") is None:
    pytest.skip("Airflow is not installed", allow_module_level=True)

STEPS = ("data_loader", "data_preprocessor", "feature_generation")
OPERATORS = {
    "subprocess": "ZenMLStepSubprocessOperator",
    "airflow.providers.docker.operators.docker.DockerOperator": "DockerOperator",
    "airflow.providers.cncf.kubernetes.operators.pod.KubernetesPodOperator": (
        "KubernetesPodOperator"
    ),
}
PARSE = r"""
import json, socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("network access while parsing a DAG")
socket.socket.connect = refuse
socket.create_connection = refuse
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "schedule": getattr(dag.timetable, "expression", type(dag.timetable).__name__),
        "tags": sorted(dag.tags),
        "description": dag.description,
        "doc_md": dag.doc_md,
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
        "tasks": {
            t.task_id: {
                "type": type(t).__name__,
                "retries": t.retries,
                "upstream": sorted(t.upstream_task_ids),
                "outlets": [o.name for o in t.outlets],
            }
            for t in dag.tasks
        },
    }
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": dags,
    "heavy": sorted(m for m in ("zenml", "mlflow", "sklearn", "goldsignals")
                    if m in sys.modules),
}))
"""


def _task(step: str, upstream: list[str], operator: str) -> dict[str, Any]:
    return {
        "id": step,
        "zenml_step_name": step,
        "upstream_steps": upstream,
        "docker_image": "goldsignals:latest",
        "command": ["python", "-m", "zenml.entrypoints.entrypoint"],
        "arguments": ["--step_name", step],
        "environment": {"ZENML_STORE_URL": "sqlite:////nowhere/zenml.db"},
        "operator_source": operator,
        "operator_args": {},
    }


def _write_dag(folder: Path, dag_id: str, operator: str, **dag_args: Any) -> None:
    tasks = [
        _task(step, list(STEPS[:i][-1:]), operator) for i, step in enumerate(STEPS)
    ]
    config = {
        "id": dag_id,
        "tasks": tasks,
        "schedule": "30 22 * * 1-5",
        "start_date": "2026-01-01T00:00:00+00:00",
        "catchup": False,
        "tags": ["goldsignals", "daily"],
        "dag_args": {
            "description": "A test DAG",
            "doc_md": "Shown in the UI.",
            "max_active_runs": 1,
            "default_args": {"retries": 2, "retry_delay": 120.0},
            **dag_args,
        },
    }
    with zipfile.ZipFile(folder / f"{dag_id}.zip", "w") as archive:
        archive.write(generator.__file__, arcname="dag.py")
        archive.writestr(generator.CONFIG_FILENAME, json.dumps(config))


def _parse(folder: Path, tmp_path: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////nonexistent/dir/af.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    result = subprocess.run(
        [sys.executable, "-c", PARSE, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("dags")
    folder = tmp_path / "dags"
    folder.mkdir()
    for index, operator in enumerate(OPERATORS):
        _write_dag(folder, f"dag_{index}", operator, outlet_assets=["features"])
    _write_dag(folder, "consumer", "subprocess", schedule_assets=["features"])
    return _parse(folder, tmp_path)


def test_generated_dags_import_without_errors(parsed: dict[str, Any]) -> None:
    assert parsed["errors"] == {}
    assert sorted(parsed["dags"]) == ["consumer", "dag_0", "dag_1", "dag_2"]


def test_generated_dags_parse_without_heavy_imports(parsed: dict[str, Any]) -> None:
    assert parsed["heavy"] == []


@pytest.mark.parametrize(("index", "operator"), list(enumerate(OPERATORS.values())))
def test_generated_dag_uses_configured_operator(
    parsed: dict[str, Any], index: int, operator: str
) -> None:
    tasks = parsed["dags"][f"dag_{index}"]["tasks"]

    assert {task["type"] for task in tasks.values()} == {operator}
    assert tasks["data_preprocessor"]["upstream"] == ["data_loader"]


def test_generated_dag_carries_schedule_and_ui_fields(parsed: dict[str, Any]) -> None:
    dag = parsed["dags"]["dag_0"]

    assert dag["schedule"] == "30 22 * * 1-5"
    assert dag["tags"] == ["daily", "goldsignals"]
    assert (dag["description"], dag["doc_md"]) == ("A test DAG", "Shown in the UI.")
    assert (dag["max_active_runs"], dag["catchup"]) == (1, False)
    assert {task["retries"] for task in dag["tasks"].values()} == {2}


def test_generated_dag_outlets_only_on_final_task(parsed: dict[str, Any]) -> None:
    tasks = parsed["dags"]["dag_0"]["tasks"]

    assert tasks["feature_generation"]["outlets"] == ["features"]
    assert tasks["data_loader"]["outlets"] == []


def test_generated_dag_scheduled_on_asset(parsed: dict[str, Any]) -> None:
    assert parsed["dags"]["consumer"]["schedule"] == "AssetTriggeredTimetable"


def test_step_command_uses_worker_python() -> None:
    task = generator.TaskConfiguration.model_validate(_task("s", [], "subprocess"))

    command = generator.step_command(task, "/venv/bin/python")

    assert command[:3] == ["/venv/bin/python", "-m", "zenml.entrypoints.entrypoint"]
    assert command[-2:] == ["--step_name", "s"]


def test_step_environment_sets_run_id_and_keeps_telemetry_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ZENML_ANALYTICS_OPT_IN", raising=False)
    task = generator.TaskConfiguration.model_validate(_task("s", [], "subprocess"))

    environment = generator.step_environment(task, "manual__1")

    assert environment["ZENML_AIRFLOW_RUN_ID"] == "manual__1"
    assert environment["ZENML_ANALYTICS_OPT_IN"] == "false"
    assert environment["ZENML_STORE_URL"] == "sqlite:////nowhere/zenml.db"


class _Lines:
    """Collects what the operator would write to the task log."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)


def test_run_step_streams_output_and_returns_status() -> None:
    script = "import os; print('hello from', os.getcwd()); raise SystemExit(3)"
    log = _Lines()

    status = generator.run_step([sys.executable, "-c", script], {}, log)

    assert status == 3
    assert len(log.lines) == 1
    assert log.lines[0].startswith("hello from ")
    assert "zenml-step-" in log.lines[0]
    assert not Path(log.lines[0].split()[-1]).exists()


def test_dags_config_rejects_bad_cron(tmp_path: Path) -> None:
    from zenml_pipelines.airflow_dags import (
        DAGS_CONFIG,
        DagsConfigError,
        load_dags_config,
    )

    text = DAGS_CONFIG.read_text().replace('cron: "0 6 * * 6"', 'cron: "0 6 * * 8"')
    path = tmp_path / "dags.yaml"
    path.write_text(text)

    with pytest.raises(DagsConfigError, match=r"cron '0 6 \* \* 8' is not a valid"):
        load_dags_config(path)


def test_dags_config_missing_pipeline_named(tmp_path: Path) -> None:
    from zenml_pipelines.airflow_dags import (
        DAGS_CONFIG,
        DagsConfigError,
        load_dags_config,
    )

    text = DAGS_CONFIG.read_text()
    path = tmp_path / "dags.yaml"
    path.write_text(text[: text.index("  training:")])

    with pytest.raises(DagsConfigError, match=r"no DAG entry for pipeline\(s\)"):
        load_dags_config(path)
