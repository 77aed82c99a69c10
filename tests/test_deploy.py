"""The production-like path on this host, as the README tells a user to run it.

`goldsignals postgres start`, `mlflow start` and `airflow start --database
postgres` (what `make up` runs) start real services in a fresh state folder;
`goldsignals deploy-stack` (what `make deploy-stack` runs) registers the
Airflow stack against them, twice; then the three DAGs are triggered through
Airflow's REST API, and the signal is read back from Postgres through the view
and the command line, with the model in the MLflow server's registry.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from goldsignals.config import Settings
from goldsignals.deploy import DeploymentError, plan_deployment
from tests import airflow_api
from tests.helpers import (
    ROOT,
    free_port,
    goldsignals,
    isolated_env,
    python,
    real_price_slice,
    server_folder,
)

OWNER_PASSWORD = "owner:pass\\word"
READER_PASSWORD = "reader-pass-word"
DAG_IDS = ("gold_feature_engineering", "gold_inference", "gold_training")


def test_a_signals_url_with_a_password_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        signals_db_url="postgresql+psycopg2://u:secret@db.example:5432/goldsignals",
    )

    with pytest.raises(DeploymentError, match="contains a password") as caught:
        plan_deployment(settings, zenml_url=None)

    assert "secret" not in str(caught.value)
    assert "PGPASSFILE" in str(caught.value)


def test_a_tracking_uri_that_is_no_server_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, mlflow_tracking_uri="sqlite:///x.db")

    with pytest.raises(DeploymentError, match=r"x\.db is not a tracking server"):
        plan_deployment(settings, zenml_url=None)


def _nothing_listening(home: Path, **extra: str) -> dict[str, str]:
    """An environment whose services all sit on free ports, nothing running."""
    ports = {
        f"GOLDSIGNALS_{name}_PORT": str(free_port())
        for name in ("POSTGRES", "MLFLOW", "AIRFLOW", "ZENML_SERVER")
    }
    return isolated_env(home, **{**ports, **extra})


def test_deploy_stack_with_services_down_names_each_and_changes_nothing(
    tmp_path: Path,
) -> None:
    env = _nothing_listening(
        tmp_path, GOLDSIGNALS_AIRFLOW_DAGS_DIR=str(tmp_path / "dags")
    )

    result = goldsignals(env, "deploy-stack", check=False)

    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: Postgres at postgresql+psycopg2://goldsignals@")
    mlflow = f"http://127.0.0.1:{env['GOLDSIGNALS_MLFLOW_PORT']}"
    airflow = f"http://127.0.0.1:{env['GOLDSIGNALS_AIRFLOW_PORT']}"
    assert f"MLflow server does not answer at {mlflow}" in error
    assert f"Airflow api-server does not answer at {airflow}" in error
    zenml = f"http://127.0.0.1:{env['GOLDSIGNALS_ZENML_SERVER_PORT']}"
    assert f"ZenML server does not answer at {zenml}" in error
    assert "make up" in error
    assert not (tmp_path / "deployment.env").exists()
    assert not (tmp_path / "dags").exists()


def test_deploy_stack_plans_anew_from_changed_ports(tmp_path: Path) -> None:
    stale = "http://127.0.0.1:5000"
    (tmp_path / "deployment.env").write_text(
        f"GOLDSIGNALS_MLFLOW_TRACKING_URI={stale}\n"
        "GOLDSIGNALS_SIGNALS_DB_URL=postgresql+psycopg2://goldsignals@127.0.0.1:5433/x\n"
    )
    env = _nothing_listening(tmp_path)

    result = goldsignals(env, "deploy-stack", check=False)

    assert result.returncode == 2
    mlflow = f"http://127.0.0.1:{env['GOLDSIGNALS_MLFLOW_PORT']}"
    postgres = f"127.0.0.1:{env['GOLDSIGNALS_POSTGRES_PORT']}/goldsignals"
    assert f"MLflow server does not answer at {mlflow}" in result.stderr
    assert postgres in result.stderr
    assert stale not in result.stderr


def test_deploy_stack_probes_the_zenml_server_it_is_given(tmp_path: Path) -> None:
    zenml = f"http://127.0.0.1:{free_port()}"
    env = _nothing_listening(tmp_path, GOLDSIGNALS_ZENML_SERVER_URL=zenml)

    result = goldsignals(env, "deploy-stack", check=False)

    assert result.returncode == 2
    assert f"ZenML server does not answer at {zenml}" in result.stderr
    assert "8237" not in result.stderr


def _active_stack(env: dict[str, str]) -> dict[str, str]:
    code = (
        "import json\n"
        "from zenml.client import Client\n"
        "from zenml.enums import StackComponentType as T\n"
        "s = Client().active_stack_model\n"
        "tracker = s.components[T.EXPERIMENT_TRACKER][0]\n"
        "print(json.dumps({'id': str(s.id), 'name': s.name,\n"
        "    'tracking_uri': tracker.configuration['tracking_uri']}))\n"
    )
    return dict(json.loads(python(env, code).splitlines()[-1]))


@pytest.fixture(scope="module")
def deployed() -> Iterator[dict[str, str]]:
    home = server_folder("goldsignals-deploy-")
    env = isolated_env(
        home,
        GOLDSIGNALS_POSTGRES_PORT=str(free_port()),
        GOLDSIGNALS_MLFLOW_PORT=str(free_port()),
        GOLDSIGNALS_AIRFLOW_PORT=str(free_port()),
        GOLDSIGNALS_ZENML_SERVER_PORT=str(free_port()),
        GOLDSIGNALS_AIRFLOW_DAGS_DIR=str(home / "dags"),
        GOLDSIGNALS_DB_PASSWORD=OWNER_PASSWORD,
        GOLDSIGNALS_DB_READER_PASSWORD=READER_PASSWORD,
        GOLDSIGNALS_PRICE_SOURCE="csv",
        GOLDSIGNALS_PRICE_CSV=str(real_price_slice(home, 1500)),
        AIRFLOW_HOME=str(home / "airflow"),
        HOME=str(home / "user_home"),
    )
    try:
        goldsignals(env, "postgres", "start")
        goldsignals(env, "mlflow", "start")
        goldsignals(env, "zenml-server", "start")
        goldsignals(env, "airflow", "start", "--database", "postgres")
        env["first_deploy"] = goldsignals(env, "deploy-stack").stdout
        env["first_stack"] = json.dumps(_active_stack(env))
        env["second_deploy"] = goldsignals(env, "deploy-stack").stdout
        env["second_stack"] = json.dumps(_active_stack(env))

        yield env
    finally:
        goldsignals(env, "zenml-server", "disconnect", check=False)
        for service in ("airflow", "zenml-server", "mlflow", "postgres"):
            goldsignals(env, service, "stop", check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def daily_run(deployed: dict[str, str]) -> dict[str, str]:
    base = f"http://127.0.0.1:{deployed['GOLDSIGNALS_AIRFLOW_PORT']}"
    token = airflow_api.login(base, Path(deployed["AIRFLOW_HOME"]))
    airflow_api.wait_for_dags(base, token, DAG_IDS)
    airflow_api.set_paused(base, token, "gold_inference", True)
    states = {}
    for dag_id in ("gold_feature_engineering", "gold_training", "gold_inference"):
        if dag_id == "gold_inference":
            airflow_api.set_paused(base, token, dag_id, False)
        run_id = airflow_api.trigger(base, token, dag_id)
        states[dag_id] = airflow_api.wait_for_run(base, token, dag_id, run_id)
    return states


def _owner_engine(env: dict[str, str], database: str) -> sa.Engine:
    url = sa.URL.create(
        "postgresql+psycopg2",
        username="goldsignals",
        password=OWNER_PASSWORD,
        host="127.0.0.1",
        port=int(env["GOLDSIGNALS_POSTGRES_PORT"]),
        database=database,
    )
    return sa.create_engine(url)


@pytest.mark.airflow
@pytest.mark.postgres
def test_deploy_stack_twice_gives_the_same_stack(deployed: dict[str, str]) -> None:
    first = json.loads(deployed["first_stack"])
    second = json.loads(deployed["second_stack"])

    assert first == second
    assert first["name"] == "goldsignals_airflow_host"
    assert first["tracking_uri"] == (
        f"http://127.0.0.1:{deployed['GOLDSIGNALS_MLFLOW_PORT']}"
    )
    assert "created stack goldsignals_airflow_host" in deployed["first_deploy"]
    for kind in ("orchestrator", "artifact_store", "experiment_tracker"):
        assert f"unchanged {kind}" in deployed["second_deploy"]
    assert "unchanged secret goldsignals_mlflow" in deployed["second_deploy"]
    assert "unchanged stack goldsignals_airflow_host" in deployed["second_deploy"]
    assert deployed["first_deploy"].count("compiled ") == 3
    # Unchanged DAGs are kept: a new snapshot would break a run in flight.
    assert deployed["second_deploy"].count("unchanged DAG ") == 3
    assert "compiled " not in deployed["second_deploy"]


@pytest.mark.airflow
@pytest.mark.postgres
def test_deployment_and_dag_files_hold_no_password(deployed: dict[str, str]) -> None:
    home = Path(deployed["GOLDSIGNALS_HOME"])
    texts = [(home / "deployment.env").read_text()]
    for path in (home / "dags").glob("*.zip"):
        with zipfile.ZipFile(path) as archive:
            texts += [archive.read(name).decode() for name in archive.namelist()]
    texts.append((home / "airflow" / "airflow.cfg").read_text())

    assert len(texts) == 1 + 3 * 2 + 1
    for text in texts:
        assert OWNER_PASSWORD not in text
        assert READER_PASSWORD not in text
    port = deployed["GOLDSIGNALS_POSTGRES_PORT"]
    url = f"postgresql+psycopg2://goldsignals@127.0.0.1:{port}/goldsignals"
    assert f"GOLDSIGNALS_SIGNALS_DB_URL={url}" in texts[0]


@pytest.mark.airflow
@pytest.mark.postgres
def test_no_password_on_any_command_line(deployed: dict[str, str]) -> None:
    # -ww: without it ps cuts each line at $COLUMNS (80 when unset, as in a
    # pipe), hiding the end of long command lines, passwords included.
    listing = subprocess.run(
        ["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True
    ).stdout

    assert "mlflow server" in listing
    assert OWNER_PASSWORD not in listing
    assert READER_PASSWORD not in listing


@pytest.mark.airflow
@pytest.mark.postgres
def test_daily_path_through_airflow_writes_signals_into_postgres(
    deployed: dict[str, str], daily_run: dict[str, str]
) -> None:
    last_date = pd.read_csv(deployed["GOLDSIGNALS_PRICE_CSV"])["Date"].iloc[-1]
    reader = sa.create_engine(
        sa.URL.create(
            "postgresql+psycopg2",
            username="goldsignals_reader",
            password=READER_PASSWORD,
            host="127.0.0.1",
            port=int(deployed["GOLDSIGNALS_POSTGRES_PORT"]),
            database="goldsignals",
        )
    )

    with reader.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT as_of_date, signal, model_version FROM latest_signals")
        ).all()
        stored, newest = connection.execute(
            sa.text("SELECT count(*), max(date) FROM prices WHERE ticker = 'GC=F'")
        ).one()
    reader.dispose()
    table = goldsignals(deployed, "signals").stdout

    assert daily_run == dict.fromkeys(daily_run, "success")
    assert [(str(r.as_of_date), r.model_version) for r in rows] == [(last_date, "1")]
    assert (stored, str(newest)) == (1500, last_date)
    assert rows[0].signal in ("BUY", "SELL", "HOLD")
    assert last_date in table
    assert rows[0].signal in table


@pytest.mark.airflow
@pytest.mark.postgres
def test_deployed_steps_fork_from_the_step_server(
    deployed: dict[str, str], daily_run: dict[str, str]
) -> None:
    logs = Path(deployed["AIRFLOW_HOME"]) / "logs"
    texts = [path.read_text() for path in logs.glob("dag_id=gold_*/**/*.log")]

    assert len(texts) >= 10
    assert all("forked from the step server" in text for text in texts)


@pytest.mark.airflow
@pytest.mark.postgres
def test_model_and_runs_are_in_the_mlflow_server(
    deployed: dict[str, str], daily_run: dict[str, str]
) -> None:
    base = f"http://127.0.0.1:{deployed['GOLDSIGNALS_MLFLOW_PORT']}/api/2.0/mlflow"
    with urllib.request.urlopen(
        f"{base}/registered-models/get?name=gold-direction-classifier", timeout=10
    ) as response:
        model = json.loads(response.read())["registered_model"]
    run_id = model["latest_versions"][0]["run_id"]
    with urllib.request.urlopen(f"{base}/runs/get?run_id={run_id}", timeout=10) as r:
        run = json.loads(r.read())["run"]

    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert model["latest_versions"][0]["version"] == "1"
    assert 0.0 <= metrics["f1"] <= 1.0
    assert {"precision", "recall", "roc_auc"} <= set(metrics)


@pytest.mark.airflow
@pytest.mark.postgres
def test_airflow_metadata_lives_in_postgres(
    deployed: dict[str, str], daily_run: dict[str, str]
) -> None:
    engine = _owner_engine(deployed, "airflow")

    with engine.connect() as connection:
        runs = connection.execute(
            sa.text("SELECT dag_id, state FROM dag_run WHERE run_type = 'manual'")
        ).all()
    engine.dispose()

    assert {(r.dag_id, r.state) for r in runs} == {(d, "success") for d in DAG_IDS}
    assert not (Path(deployed["AIRFLOW_HOME"]) / "airflow.db").exists()


@pytest.mark.airflow
@pytest.mark.postgres
def test_zenml_dashboard_lists_the_runs_airflow_executed(
    deployed: dict[str, str], daily_run: dict[str, str]
) -> None:
    base = f"http://127.0.0.1:{deployed['GOLDSIGNALS_ZENML_SERVER_PORT']}"
    found = {}
    for name in ("gold_feature_engineering", "gold_training", "gold_inference"):
        with urllib.request.urlopen(
            f"{base}/api/v1/runs?pipeline_name={name}", timeout=10
        ) as response:
            runs = json.loads(response.read())["items"]
        found[name] = [
            (run["body"]["status"], run["resources"]["stack"]["name"]) for run in runs
        ]
    with urllib.request.urlopen(base, timeout=10) as response:
        page = response.read().decode()

    for name, runs in found.items():
        assert ("completed", "goldsignals_airflow_host") in runs, (name, runs)
    assert "<title>ZenML Dashboard</title>" in page


@pytest.mark.airflow
@pytest.mark.postgres
def test_embedded_stack_is_refused_while_deployed(deployed: dict[str, str]) -> None:
    result = goldsignals(
        deployed,
        "stack",
        "--config",
        str(ROOT / "stack_configs/embedded.yaml"),
        check=False,
    )

    assert result.returncode == 2
    assert "goldsignals undeploy" in result.stderr
    assert _active_stack(deployed)["name"] == "goldsignals_airflow_host"


@pytest.mark.airflow
@pytest.mark.postgres
def test_dag_steps_leave_the_client_settings_alone(
    deployed: dict[str, str], daily_run: dict[str, str]
) -> None:
    """A DAG run after `zenml-server disconnect` must not reconnect the client."""
    config = Path(deployed["GOLDSIGNALS_HOME"]) / "zenml" / "config.yaml"
    base = f"http://127.0.0.1:{deployed['GOLDSIGNALS_AIRFLOW_PORT']}"
    goldsignals(deployed, "zenml-server", "disconnect")
    try:
        token = airflow_api.login(base, Path(deployed["AIRFLOW_HOME"]))
        run_id = airflow_api.trigger(base, token, "gold_inference")
        state = airflow_api.wait_for_run(base, token, "gold_inference", run_id)
        after_run = config.read_text()
    finally:
        goldsignals(deployed, "zenml-server", "connect")

    assert state == "success"
    assert "type: sql" in after_run
    assert (Path(deployed["GOLDSIGNALS_HOME"]) / "zenml-steps").is_dir()


@pytest.mark.airflow
@pytest.mark.postgres
def test_run_on_the_airflow_stack_says_to_trigger_the_dag(
    deployed: dict[str, str],
) -> None:
    result = goldsignals(deployed, "run", "inference", check=False)

    assert result.returncode == 2
    assert "trigger their DAGs in the Airflow UI" in result.stderr
    assert "goldsignals undeploy" in result.stderr


@pytest.mark.airflow
@pytest.mark.postgres
def test_every_service_listens_on_loopback_only(deployed: dict[str, str]) -> None:
    import psutil

    ports = {
        int(deployed[f"GOLDSIGNALS_{name}_PORT"])
        for name in ("POSTGRES", "MLFLOW", "ZENML_SERVER", "AIRFLOW")
    }
    home = deployed["GOLDSIGNALS_HOME"]
    listeners = [
        c for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN
    ]
    roots = {c.pid for c in listeners if c.laddr.port in ports and c.pid}
    for process in psutil.process_iter(["pid", "cmdline", "environ"]):
        text = " ".join(process.info["cmdline"] or [])
        environment = process.info["environ"] or {}
        if home in text or environment.get("GOLDSIGNALS_HOME") == home:
            roots.add(process.info["pid"])
    ours = set(roots)
    for pid in roots:
        with contextlib.suppress(psutil.NoSuchProcess):
            ours |= {child.pid for child in psutil.Process(pid).children(True)}
    listening = [c for c in listeners if c.pid in ours]

    assert ports <= {c.laddr.port for c in listening}
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}


@pytest.mark.airflow
@pytest.mark.postgres
def test_undeploy_forgets_the_deployment_and_its_dags(
    deployed: dict[str, str], daily_run: dict[str, str]
) -> None:
    """Last in the module: it ends the deployment the other tests use."""
    home = Path(deployed["GOLDSIGNALS_HOME"])

    output = goldsignals(deployed, "undeploy").stdout

    assert not (home / "deployment.env").exists()
    assert list((home / "dags").glob("*.zip")) == []
    assert "ZenML client is back on its local store" in output
    assert "type: sql" in (home / "zenml" / "config.yaml").read_text()
    # The signals went to Postgres; the embedded SQLite file has none.
    assert "No signals yet" in goldsignals(deployed, "signals").stdout
