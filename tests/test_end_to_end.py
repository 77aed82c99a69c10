"""The three pipelines end to end on the embedded stack, as `make run` runs them.

Each command runs in a subprocess with its own state folder, exactly as a user
calls the command line; the input is the last years of the real gold prices.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import goldsignals, isolated_env, python, real_price_slice

pytestmark = pytest.mark.e2e

ROWS = 1500


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("goldsignals_home")
    prices = real_price_slice(home, ROWS)
    env = isolated_env(
        home, GOLDSIGNALS_PRICE_SOURCE="csv", GOLDSIGNALS_PRICE_CSV=str(prices)
    )

    goldsignals(env, "stack")
    goldsignals(env, "run", "all")
    return env


def test_run_all_writes_signal_for_last_price_date(state: dict[str, str]) -> None:
    last_date = pd.read_csv(state["GOLDSIGNALS_PRICE_CSV"])["Date"].iloc[-1]

    output = goldsignals(state, "signals").stdout

    assert last_date in output
    assert any(word in output for word in ("BUY", "SELL", "HOLD"))


def test_run_all_again_adds_no_duplicate(state: dict[str, str]) -> None:
    db = Path(state["GOLDSIGNALS_HOME"]) / "data" / "signals.db"
    count = "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("
    query = f"{count}'select count(*) from signals').fetchone()[0])"
    before = python(state, query, str(db))

    goldsignals(state, "run", "all")

    assert python(state, query, str(db)) == before == "1"


def test_mlflow_client_lists_runs_metrics_and_versions(state: dict[str, str]) -> None:
    uri = f"sqlite:///{state['GOLDSIGNALS_HOME']}/mlflow/mlflow.db"
    code = (
        "from mlflow.tracking import MlflowClient\n"
        f"c = MlflowClient(tracking_uri={uri!r})\n"
        "e = c.get_experiment_by_name('goldsignals')\n"
        "r = c.search_runs([e.experiment_id])[0]\n"
        "v = c.search_model_versions(\"name='gold-direction-classifier'\")\n"
        "print(sorted(r.data.metrics)); print(r.data.params['estimator'])\n"
        "print(len(v), v[0].run_id == r.info.run_id)\n"
    )

    metrics, estimator, versions = python(state, code).splitlines()[-3:]

    for name in ("f1", "precision", "recall", "accuracy", "roc_auc"):
        assert f"'{name}'" in metrics
    assert estimator == "sklearn.ensemble._forest.RandomForestClassifier"
    assert versions.startswith("1 ")


def test_zenml_records_three_completed_pipelines(state: dict[str, str]) -> None:
    code = (
        "from zenml.client import Client\n"
        "runs = Client().list_pipeline_runs(size=50)\n"
        "print(sorted({(r.pipeline.name, str(r.status)) for r in runs}))\n"
    )

    output = python(state, code).splitlines()[-1]

    for name in ("gold_feature_engineering", "gold_training", "gold_inference"):
        assert f"('{name}', 'completed')" in output.lower()
    assert "failed" not in output.lower()


def test_stack_registration_twice_changes_nothing(state: dict[str, str]) -> None:
    output = goldsignals(state, "stack").stdout

    assert "unchanged orchestrator gs_local_orchestrator" in output
    assert "unchanged experiment_tracker gs_mlflow_tracker_embedded" in output
    assert "created" not in output
    assert "active stack is goldsignals_embedded" in output


def test_state_stays_in_home(state: dict[str, str]) -> None:
    home = Path(state["GOLDSIGNALS_HOME"])

    assert (home / "zenml").is_dir()
    assert (home / "mlflow" / "mlflow.db").is_file()
    assert not (Path.cwd() / "mlruns").exists()
