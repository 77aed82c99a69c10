"""Champion and challenger in a real MLflow registry (SQLite tracking store)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from goldsignals.errors import ModelConfigError, ModelNotFoundError
from goldsignals.registry import (
    CHALLENGER,
    CHAMPION,
    GateRules,
    champion_gate,
    champion_history,
    champion_version,
    check_gate_metrics,
    find_version_with_tag,
    gate_verdict,
    gate_version,
    move_champion,
    roll_back_champion,
    select_serving_version,
)

NAME = "gold-test"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> MlflowClient:
    folder = tmp_path_factory.mktemp("mlflow")
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.create_experiment("t", artifact_location=folder.as_uri())
    client.create_registered_model(NAME)
    for f1 in (0.50, 0.60, 0.55):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "f1", f1)
        client.create_model_version(NAME, source=str(folder), run_id=run.info.run_id)
    return client


def _gate(challenger_sharpe: float, champion_sharpe: float | None, f1: float) -> bool:
    champion = None if champion_sharpe is None else {"sharpe": champion_sharpe}
    return champion_gate(
        {"sharpe": challenger_sharpe, "f1": f1, "roc_auc": 0.52},
        champion,
        primary="sharpe",
        floor_metric="f1",
        floor=0.5,
    ).promote


@pytest.mark.parametrize(
    ("challenger", "champion", "f1", "promote"),
    [
        (0.8, 0.5, 0.55, True),
        (0.5, 0.5, 0.55, False),
        (0.4, 0.5, 0.55, False),
        (2.0, 0.5, 0.49, False),
        (0.1, None, 0.55, True),
        (0.1, None, 0.45, False),
        (math.nan, 0.5, 0.55, False),
        (0.1, math.nan, 0.55, True),
    ],
)
def test_champion_gate(
    challenger: float, champion: float | None, f1: float, promote: bool
) -> None:
    assert _gate(challenger, champion, f1) is promote


def test_gate_refuses_undefined_or_missing_metrics() -> None:
    gate = {"primary": "sharpe", "floor_metric": "f1", "floor": 0.5}

    no_sharpe = champion_gate({"f1": 0.6, "roc_auc": 0.55}, None, **gate)
    no_auc = champion_gate({"f1": 0.6, "sharpe": 1.0}, {"sharpe": 0.1}, **gate)
    nan_f1 = champion_gate(
        {"f1": math.nan, "sharpe": 1.0, "roc_auc": 0.6}, None, **gate
    )

    assert not no_sharpe.promote
    assert no_sharpe.reason == "sharpe of the new version is undefined"
    assert not no_auc.promote
    assert not nan_f1.promote


def test_gate_refuses_a_model_no_better_than_chance() -> None:
    always_up = {"f1": 0.707, "sharpe": 1.06, "roc_auc": 0.5}

    decision = champion_gate(
        always_up, {"sharpe": 0.29}, primary="sharpe", floor_metric="f1", floor=0.5
    )

    assert not decision.promote
    assert "ranks no better than chance" in decision.reason
    first = champion_gate(
        always_up, None, primary="sharpe", floor_metric="f1", floor=0.5
    )
    assert first.promote


def test_gate_reason_names_the_metrics() -> None:
    decision = champion_gate(
        {"sharpe": 0.3, "f1": 0.6, "roc_auc": 0.55},
        {"sharpe": 0.7},
        primary="sharpe",
        floor_metric="f1",
        floor=0.5,
    )

    assert decision.reason == "sharpe 0.3000 does not beat the champion's 0.7000"


def test_without_champion_the_best_by_metric_is_served(client: MlflowClient) -> None:
    ref = select_serving_version(client, name=NAME, metric="f1")

    assert (ref.version, ref.alias) == ("2", None)


def test_champion_is_served_and_rolled_back_with_history(
    client: MlflowClient,
) -> None:
    move_champion(client, NAME, "1", actor="tester", reason="first")
    move_champion(client, NAME, "3", actor="tester", reason="better sharpe")
    served = select_serving_version(client, name=NAME, metric="f1")

    roll_back_champion(client, NAME, actor="oncall", reason="bad signals")

    assert (served.version, served.alias, served.metric_value) == ("3", CHAMPION, 0.55)
    assert champion_version(client, NAME) == "1"
    history = champion_history(client, NAME)
    assert [(m["from_version"], m["to_version"]) for m in history] == [
        ("", "1"),
        ("1", "3"),
        ("3", "1"),
    ]
    assert history[-1]["by"] == "oncall"
    assert history[-1]["reason"] == "rollback from v3: bad signals"
    tags = client.get_model_version(NAME, "1").tags
    assert (tags["champion_by"], tags["champion_previous"]) == ("oncall", "3")


def test_rollback_walks_back_one_promotion_at_a_time(tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    client.create_registered_model("chain")
    for _ in range(3):
        client.create_model_version("chain", source=str(tmp_path))
    for version in ("1", "2", "3"):
        move_champion(client, "chain", version, actor="t", reason=f"train {version}")

    roll_back_champion(client, "chain", actor="oncall", reason="a")
    after_one = champion_version(client, "chain")
    roll_back_champion(client, "chain", actor="oncall", reason="b")
    after_two = champion_version(client, "chain")

    assert (after_one, after_two) == ("2", "1")
    with pytest.raises(ModelNotFoundError, match="the first champion"):
        roll_back_champion(client, "chain", actor="oncall", reason="c")
    move_champion(client, "chain", "3", actor="t", reason="retrain")
    roll_back_champion(client, "chain", actor="oncall", reason="d")
    assert champion_version(client, "chain") == "1"


def test_rollback_of_the_first_champion_is_refused(
    tmp_path: Path,
) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    client.create_registered_model("solo")
    client.create_model_version("solo", source=str(tmp_path))

    with pytest.raises(ModelNotFoundError, match="no champion alias"):
        roll_back_champion(client, "solo", actor="x", reason="y")
    move_champion(client, "solo", "1", actor="x", reason="first")
    with pytest.raises(ModelNotFoundError, match="the first champion"):
        roll_back_champion(client, "solo", actor="x", reason="y")


RULES = GateRules(primary="sharpe", floor_metric="f1", floor=0.5)
FINGERPRINT = "training_fingerprint"


def _registry(tmp_path: Path, versions: int) -> MlflowClient:
    """A fresh SQLite registry with ``versions`` versions of ``gated``."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    client.create_registered_model("gated")
    for number in range(1, versions + 1):
        tags = {FINGERPRINT: f"fp{number}"}
        client.create_model_version("gated", source=str(tmp_path), tags=tags)
    return client


def _run_gate(client: MlflowClient, version: str, sharpe: float) -> str:
    """Gate ``version`` against a champion whose Sharpe is 1.0; the verdict."""
    challenger = {"f1": 0.6, "sharpe": sharpe, "roc_auc": 0.55}
    decision = gate_version(
        client,
        "gated",
        version,
        challenger,
        champion_metrics=lambda champion: {"sharpe": 1.0},
        rules=RULES,
        actor="tester",
    )
    return decision.verdict


def _outage(*args: Any, **kwargs: Any) -> None:
    raise MlflowException("tracking server unreachable")


def _moves(client: MlflowClient) -> list[tuple[str, str]]:
    history = champion_history(client, "gated")
    return [(move["from_version"], move["to_version"]) for move in history]


def test_gate_version_records_the_verdict_of_both_outcomes(tmp_path: Path) -> None:
    client = _registry(tmp_path, versions=2)
    before = gate_verdict(client, "gated", "1")

    first = _run_gate(client, "1", sharpe=0.5)
    weaker = _run_gate(client, "2", sharpe=0.5)

    assert before is None
    assert (first, weaker) == (CHAMPION, CHALLENGER)
    assert gate_verdict(client, "gated", "1") == CHAMPION
    assert gate_verdict(client, "gated", "2") == CHALLENGER
    assert champion_version(client, "gated") == "1"
    reason = client.get_model_version("gated", "2").tags["challenger_reason"]
    assert reason == "sharpe 0.5000 does not beat the champion's 1.0000"


def test_gate_version_failed_alias_move_leaves_no_verdict_and_retry_gates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _registry(tmp_path, versions=2)
    _run_gate(client, "1", sharpe=0.5)
    monkeypatch.setattr(client, "set_registered_model_alias", _outage)
    with pytest.raises(MlflowException, match="unreachable"):
        _run_gate(client, "2", sharpe=2.0)
    monkeypatch.undo()

    retried = find_version_with_tag(client, name="gated", key=FINGERPRINT, value="fp2")
    pending = gate_verdict(client, "gated", "2")
    verdict = _run_gate(client, "2", sharpe=2.0)

    assert (retried, pending, verdict) == ("2", None, CHAMPION)
    assert champion_version(client, "gated") == "2"
    assert _moves(client) == [("", "1"), ("1", "2")]


def test_gate_version_retry_after_alias_moved_keeps_it_without_a_new_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _registry(tmp_path, versions=2)
    _run_gate(client, "1", sharpe=0.5)
    monkeypatch.setattr(client, "set_model_version_tag", _outage)
    with pytest.raises(MlflowException, match="unreachable"):
        _run_gate(client, "2", sharpe=2.0)
    monkeypatch.undo()
    pending = gate_verdict(client, "gated", "2")

    def no_champion_scoring(champion: str) -> Mapping[str, float]:
        raise AssertionError(f"v{champion} should not be scored again")

    decision = gate_version(
        client,
        "gated",
        "2",
        {"f1": 0.6, "sharpe": 2.0, "roc_auc": 0.55},
        champion_metrics=no_champion_scoring,
        rules=RULES,
        actor="tester",
    )

    assert pending is None
    assert decision.promote
    assert decision.reason == "v2 already holds the champion alias"
    assert gate_verdict(client, "gated", "2") == CHAMPION
    assert champion_version(client, "gated") == "2"
    assert _moves(client) == [("", "1")]


def test_check_gate_metrics_names_every_misspelt_metric_and_the_choices() -> None:
    rules = GateRules(primary="shrape", floor_metric="f_1", floor=0.5)
    metrics = {"f1": 0.6, "sharpe": 0.4, "roc_auc": 0.55, "wf_classifier_f1": 0.5}

    with pytest.raises(ModelConfigError) as caught:
        check_gate_metrics(rules, metrics)

    message = str(caught.value)
    assert "primary_metric 'shrape' and floor_metric 'f_1'" in message
    assert "choose one of f1, roc_auc, sharpe" in message


def test_check_gate_metrics_known_metrics_pass() -> None:
    rules = GateRules(primary="sharpe", floor_metric="f1", floor=0.5)

    check_gate_metrics(rules, {"f1": 0.6, "sharpe": float("nan")})
