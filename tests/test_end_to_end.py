"""The three pipelines end to end on the embedded stack, as `make run` runs them.

Each command runs in a subprocess with its own state folder, exactly as a user
calls the command line; the input is the last years of the real gold prices
but the final day, which a last test adds as "the next day" to see the
realised outcome of the earlier signal filled in.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import goldsignals, isolated_env, python, real_price_slice

pytestmark = pytest.mark.e2e

ROWS = 1500


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("goldsignals_home")
    prices = real_price_slice(home, ROWS + 1)
    full = pd.read_csv(prices)
    full.to_csv(home / "prices_next_day.csv", index=False)
    full.iloc[:-1].to_csv(prices, index=False)
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
    assert "unchanged stack goldsignals_embedded" in output
    assert "created" not in output
    assert "active stack is goldsignals_embedded" in output


def test_state_stays_in_home(state: dict[str, str]) -> None:
    home = Path(state["GOLDSIGNALS_HOME"])

    assert (home / "zenml").is_dir()
    assert (home / "mlflow" / "mlflow.db").is_file()
    assert not (Path.cwd() / "mlruns").exists()


def _signal_rows(state: dict[str, str]) -> list[sqlite3.Row]:
    db = Path(state["GOLDSIGNALS_HOME"]) / "data" / "signals.db"
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute(
            "SELECT * FROM signals ORDER BY as_of_date"
        ).fetchall()


def _mlflow(state: dict[str, str], body: str) -> str:
    uri = f"sqlite:///{state['GOLDSIGNALS_HOME']}/mlflow/mlflow.db"
    code = (
        "import json\n"
        "from mlflow.tracking import MlflowClient\n"
        f"c = MlflowClient(tracking_uri={uri!r})\n"
        "name = 'gold-direction-classifier'\n" + body
    )
    return python(state, code).splitlines()[-1]


def test_signal_row_traces_to_model_run_and_data(state: dict[str, str]) -> None:
    row = _signal_rows(state)[-1]
    champion = json.loads(
        _mlflow(
            state,
            "v = c.get_model_version_by_alias(name, 'champion')\n"
            "print(json.dumps([str(v.version), v.run_id]))\n",
        )
    )
    zenml_runs = python(
        state,
        "from zenml.client import Client\n"
        "r = Client().list_pipeline_runs(pipeline_name='gold_inference', size=50)\n"
        "print(' '.join(str(x.id) for x in r))\n",
    ).splitlines()[-1]
    last_date = pd.read_csv(state["GOLDSIGNALS_PRICE_CSV"])["Date"].iloc[-1]

    assert [row["model_version"], row["mlflow_run_id"]] == champion
    assert row["model_alias"] == "champion"
    assert row["zenml_run_id"] in zenml_runs.split()
    assert (row["as_of_date"], row["last_price_date"]) == (last_date, last_date)
    assert len(row["feature_hash"]) == 64
    int(row["feature_hash"], 16)


def test_training_run_logs_walk_forward_backtest_and_plots(
    state: dict[str, str],
) -> None:
    output = _mlflow(
        state,
        "v = c.get_model_version_by_alias(name, 'champion')\n"
        "r = c.get_run(v.run_id)\n"
        "files = [f.path for f in c.list_artifacts(v.run_id, 'evaluation')]\n"
        "print(json.dumps([sorted(r.data.metrics), files, r.data.tags]))\n",
    )
    metrics, files, tags = json.loads(output)

    for name in (
        "wf_classifier_f1_mean",
        "wf_always_up_f1_mean",
        "wf_yesterday_roc_auc_mean",
        "sharpe",
        "max_drawdown",
        "bt_buy_and_hold_sharpe",
        "bt_classifier_turnover",
    ):
        assert name in metrics
    assert sorted(Path(f).name for f in files) == [
        "drawdown.png",
        "equity_curve.png",
        "evaluation.json",
        "signals.png",
    ]
    assert tags["gate"] == "champion"
    assert tags["gate_reason"].startswith("no champion yet")


def _weak_training_config(
    state: dict[str, str], floor: float, min_roc_auc: float
) -> Path:
    import yaml

    from zenml_pipelines import config_path

    config = yaml.safe_load(config_path("training").read_text())
    steps = config["steps"]
    steps["model_trainer"]["parameters"] = {
        "estimator": "sklearn.dummy.DummyClassifier",
        # random_state changes nothing but the fingerprint: each config
        # registers its own version.
        "params": {
            "strategy": "constant",
            "constant": 0,
            "random_state": int(floor * 10 + min_roc_auc * 100),
        },
    }
    steps["model_evaluator"]["parameters"]["floor"] = floor
    steps["model_evaluator"]["parameters"]["min_roc_auc"] = min_roc_auc
    path = Path(state["GOLDSIGNALS_HOME"]) / f"weak_{floor}_{min_roc_auc}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("floor", "min_roc_auc", "reason"),
    [
        (0.5, 0.5, "f1 0.0000 is below the floor 0.5000"),
        (0.0, 0.5, "ranks no better than chance"),
        (0.0, 0.0, "does not beat the champion's"),  # sharpe ... does not beat
    ],
)
def test_weaker_retrain_stays_challenger(
    state: dict[str, str], floor: float, min_roc_auc: float, reason: str
) -> None:
    """An always-SELL model in a rising market: worse F1, no skill, worse Sharpe."""
    config = _weak_training_config(state, floor, min_roc_auc)

    goldsignals(state, "run", "training", "--config", str(config))

    champion, newest, why = json.loads(
        _mlflow(
            state,
            "v = str(c.get_model_version_by_alias(name, 'champion').version)\n"
            "n = max(c.search_model_versions(f\"name='{name}'\"),\n"
            "        key=lambda m: int(m.version))\n"
            "print(json.dumps([v, str(n.version), n.tags.get('challenger_reason')]))\n",
        )
    )
    assert champion == "1"
    assert newest != "1"
    assert reason in why


def test_rolling_back_the_first_champion_is_refused(state: dict[str, str]) -> None:
    result = goldsignals(state, "model", "rollback", "--reason", "test", check=False)

    assert result.returncode == 2
    assert "first champion" in result.stderr
    assert "v1" in goldsignals(state, "model", "champion").stdout


def test_next_day_fills_the_realised_outcome(state: dict[str, str]) -> None:
    prices = pd.read_csv(Path(state["GOLDSIGNALS_HOME"]) / "prices_next_day.csv")
    env = {
        **state,
        "GOLDSIGNALS_PRICE_CSV": str(
            Path(state["GOLDSIGNALS_HOME"]) / "prices_next_day.csv"
        ),
    }

    goldsignals(env, "run", "feature-engineering")
    goldsignals(env, "run", "inference")

    rows = _signal_rows(env)
    close = prices.set_index("Date")["Close"]
    earlier, newest = rows[-2], rows[-1]
    expected = close.iloc[-1] / close.iloc[-2] - 1
    assert (earlier["as_of_date"], newest["as_of_date"]) == tuple(close.index[-2:])
    assert earlier["realised_return"] == pytest.approx(expected)
    if earlier["signal"] == "HOLD":
        assert earlier["outcome_correct"] is None
    else:
        wanted = (earlier["signal"] == "BUY") == bool(expected > 0)
        assert bool(earlier["outcome_correct"]) is wanted
    assert newest["realised_return"] is None
    assert "Track record: 1 signals" in goldsignals(env, "signals").stdout


def _training_config(state: dict[str, str], name: str, **parameters: object) -> Path:
    """The training YAML with some model_evaluator parameters replaced."""
    import yaml

    from zenml_pipelines import config_path

    config = yaml.safe_load(config_path("training").read_text())
    config["steps"]["model_evaluator"]["parameters"].update(parameters)
    path = Path(state["GOLDSIGNALS_HOME"]) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _version_count(state: dict[str, str]) -> str:
    return _mlflow(state, "print(len(c.search_model_versions(f\"name='{name}'\")))")


def test_misspelt_gate_metric_is_named_and_registers_nothing(
    state: dict[str, str],
) -> None:
    config = _training_config(state, "misspelt", primary_metric="shrape")
    before = _version_count(state)

    result = goldsignals(state, "run", "training", "--config", str(config), check=False)

    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert "primary_metric 'shrape'" in last_line
    assert "choose one of" in last_line
    assert "sharpe" in last_line
    assert _version_count(state) == before


def test_invalid_parameter_names_no_earlier_run(state: dict[str, str]) -> None:
    config = _training_config(state, "bad_floor", floor="abc")

    result = goldsignals(state, "run", "training", "--config", str(config), check=False)

    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: pipeline gold_training did not start")
    assert "floor" in last_line
    assert "(run gold_training-" not in last_line


def test_another_tickers_features_are_refused(state: dict[str, str]) -> None:
    """Last in this module: it leaves another ticker's features the newest."""
    before = [tuple(row) for row in _signal_rows(state)]
    other = {**state, "GOLDSIGNALS_TICKER": "QA", "GOLDSIGNALS_MODEL_NAME": "qa"}

    goldsignals(other, "run", "feature-engineering")
    inference = goldsignals(state, "run", "inference", check=False)
    training = goldsignals(state, "run", "training", check=False)

    for result in (inference, training):
        assert result.returncode == 2
        last_line = result.stderr.strip().splitlines()[-1]
        assert "was built for ticker QA, not GC=F" in last_line
    assert [tuple(row) for row in _signal_rows(state)] == before
