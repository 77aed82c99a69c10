"""Tests of walk-forward evaluation, baselines and the evaluation report.

The leakage check the issue asks for (a centred rolling mean of the close must
be caught as non-causal) lives in tests/test_features.py
(``test_causality_check_catches_leaky_feature[centred-mean]``). That no
test-window row reaches a fit is checked with tests/leakage.py, here and in
tests/test_modeling.py.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from goldsignals.backtest import BacktestConfig, performance_table, run_backtest
from goldsignals.cleaning import clean_prices
from goldsignals.evaluation import (
    ALWAYS_UP,
    MODEL,
    MODELS,
    SCORE_COLUMNS,
    TEST_FOLD,
    YESTERDAY,
    EvaluationError,
    Fold,
    always_up_scores,
    classification_scores,
    evaluate_model,
    fit_model,
    score_fold,
    summarise_folds,
    walk_forward_folds,
    yesterday_scores,
)
from goldsignals.features import (
    FEATURE_COLUMNS,
    FORWARD_RETURN_COLUMN,
    TARGET_COLUMN,
    build_feature_frame,
)
from goldsignals.modeling import (
    ModelConfig,
    build_estimator,
    evaluate_classifier,
    up_probability,
)
from goldsignals.report import (
    BUY_AND_HOLD,
    EvaluationReport,
    ReportConfig,
    build_report,
    classifier_performance,
    load_report_config,
    mlflow_metrics,
    render_markdown,
    report_json,
    report_on_split,
    strategy_signals,
    write_report,
)
from goldsignals.splitting import chronological_split
from tests.helpers import goldsignals, isolated_env, real_price_slice
from tests.leakage import RecordingClassifier, assert_no_test_rows
from zenml_pipelines import CONFIG_DIR

SMALL_FOREST = {
    "n_estimators": 50,
    "max_depth": 6,
    "min_samples_leaf": 20,
    "max_features": "sqrt",
    "class_weight": "balanced",
    "n_jobs": 1,
    "random_state": 42,
}


def _frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """A feature frame whose target is the sign of the first feature."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2015-01-01", periods=rows, name="date")
    frame = pd.DataFrame(
        rng.normal(size=(rows, len(FEATURE_COLUMNS))),
        index=index,
        columns=list(FEATURE_COLUMNS),
    )
    frame[FORWARD_RETURN_COLUMN] = frame[FEATURE_COLUMNS[0]] * 0.01
    frame[TARGET_COLUMN] = (frame[FORWARD_RETURN_COLUMN] > 0).astype(np.float64)
    return frame


def _baseline_rows() -> pd.DataFrame:
    """Eight days with known daily returns and next-day directions."""
    frame = _frame(8)
    frame["log_return_1"] = [0.01, -0.02, 0.005, 0.01, -0.01, -0.03, 0.02, -0.01]
    frame[TARGET_COLUMN] = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    return frame


@pytest.mark.parametrize("horizon", [1, 3])
def test_walk_forward_folds_expand_in_time_order_with_gap(horizon: int) -> None:
    frame = _frame(300)
    position = {date: row for row, date in enumerate(frame.index)}

    folds = walk_forward_folds(frame, n_splits=4, horizon=horizon)

    assert [fold.name for fold in folds] == ["1", "2", "3", "4"]
    for before, fold in zip([None, *folds[:-1]], folds, strict=True):
        assert fold.train.index[0] == frame.index[0]
        assert fold.train.index.max() < fold.test.index.min()
        gap = position[fold.test.index[0]] - position[fold.train.index[-1]] - 1
        assert gap == horizon
        if before is not None:
            assert fold.test.index[0] > before.test.index[-1]
            assert len(fold.train) > len(before.train)
    assert folds[-1].test.index[-1] == frame.index[-1]


def test_walk_forward_folds_stay_inside_the_training_window() -> None:
    split = chronological_split(_frame(400), test_fraction=0.2, gap=1)

    folds = walk_forward_folds(split.train, n_splits=5, horizon=1)

    test_start = split.test.index.min()
    for fold in folds:
        assert fold.train.index.isin(split.train.index).all()
        assert fold.test.index.isin(split.train.index).all()
        assert fold.test.index.max() < test_start


@pytest.mark.parametrize(
    ("rows", "n_splits", "message"),
    [(300, 1, "n_splits >= 2"), (6, 5, "6 training rows cannot make 5")],
)
def test_walk_forward_folds_bad_request_named(
    rows: int, n_splits: int, message: str
) -> None:
    with pytest.raises(EvaluationError, match=message):
        walk_forward_folds(_frame(rows), n_splits=n_splits, horizon=1)


def test_yesterday_baseline_known_scores() -> None:
    rows = _baseline_rows()
    truth = rows[TARGET_COLUMN].to_numpy(dtype=np.int64)

    scores = classification_scores(truth, yesterday_scores(rows), label="yesterday")

    assert yesterday_scores(rows).tolist() == [1, 0, 1, 1, 0, 0, 1, 0]
    assert scores["precision"] == pytest.approx(3 / 4)
    assert scores["recall"] == pytest.approx(3 / 5)
    assert scores["f1"] == pytest.approx(6 / 9)
    assert scores["roc_auc"] == pytest.approx((3 / 5 + 2 / 3) / 2)


def test_always_up_baseline_known_scores() -> None:
    rows = _baseline_rows()
    truth = rows[TARGET_COLUMN].to_numpy(dtype=np.int64)

    scores = classification_scores(truth, always_up_scores(rows), label="always up")

    assert scores["precision"] == pytest.approx(5 / 8)
    assert scores["recall"] == 1.0
    assert scores["f1"] == pytest.approx(10 / 13)
    assert scores["roc_auc"] == 0.5


def test_single_class_roc_auc_is_nan_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    truth = np.ones(6, dtype=np.int64)

    with caplog.at_level(logging.WARNING, logger="goldsignals.evaluation"):
        scores = classification_scores(truth, np.full(6, 0.7), label="fold 9")

    assert math.isnan(scores["roc_auc"])
    assert scores["precision"] == 1.0
    assert "ROC AUC of fold 9 is undefined: its 6 rows all have target [1]" in (
        caplog.text
    )


def test_score_fold_single_class_train_gives_nan_classifier(
    caplog: pytest.LogCaptureFixture,
) -> None:
    train = _frame(50).assign(**{TARGET_COLUMN: 1.0})
    fold = Fold(name="1", train=train, test=_baseline_rows())

    with caplog.at_level(logging.WARNING, logger="goldsignals.evaluation"):
        records, probability = score_fold(fold, LogisticRegression())

    assert probability is None
    classifier, always_up, _ = records
    assert all(math.isnan(classifier[metric]) for metric in ("f1", "roc_auc"))
    assert always_up["f1"] == pytest.approx(10 / 13)
    assert "cannot be trained" in caplog.text


def test_evaluate_model_scores_every_fold_and_model() -> None:
    split = chronological_split(_frame(500), test_fraction=0.2, gap=1)
    model = fit_model(LogisticRegression(), split.train)

    result = evaluate_model(split, model, n_splits=5, horizon=1)

    scores = result.scores
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert scores["fold"].tolist() == [
        fold for fold in ["1", "2", "3", "4", "5", TEST_FOLD] for _ in MODELS
    ]
    assert scores["model"].tolist() == list(MODELS) * 6
    assert (scores.loc[scores["fold"] != TEST_FOLD, "end"] < split.test.index[0]).all()
    test_rows = scores.loc[scores["fold"] == TEST_FOLD]
    assert (test_rows["start"] == split.test.index[0]).all()
    assert (test_rows["train_rows"] == len(split.train)).all()
    learnt = scores.loc[scores["model"] == MODEL, "roc_auc"]
    assert (learnt > 0.9).all()
    assert result.test_probability.index.equals(split.test.index)


def test_evaluate_model_test_scores_match_training_pipeline_metrics() -> None:
    split = chronological_split(_frame(300, seed=4), test_fraction=0.2, gap=1)
    model = fit_model(LogisticRegression(C=0.01), split.train)

    result = evaluate_model(split, model, n_splits=3, horizon=1)

    expected = evaluate_classifier(model, split.test)
    row = result.scores.loc[
        (result.scores["fold"] == TEST_FOLD) & (result.scores["model"] == MODEL)
    ].iloc[0]
    for metric in ("f1", "precision", "recall", "roc_auc"):
        assert row[metric] == pytest.approx(expected[metric])


def test_evaluate_model_test_fold_scores_the_fitted_model_not_a_refit() -> None:
    split = chronological_split(_frame(500, seed=4), test_fraction=0.2, gap=1)
    inverted = _frame(400, seed=9)
    inverted[TARGET_COLUMN] = 1.0 - inverted[TARGET_COLUMN]
    model = fit_model(LogisticRegression(), inverted)

    result = evaluate_model(split, model, n_splits=3, horizon=1)

    served = up_probability(model, split.test)
    np.testing.assert_array_equal(result.test_probability.to_numpy(), served)
    auc = result.scores.loc[result.scores["model"] == MODEL].set_index("fold")
    assert auc.loc[TEST_FOLD, "roc_auc"] < 0.1
    assert (auc.drop(index=TEST_FOLD)["roc_auc"] > 0.9).all()


def test_report_on_split_backtests_the_served_model(
    real_prices: pd.DataFrame,
) -> None:
    prices, _ = clean_prices(real_prices.tail(900))
    config = ReportConfig(n_splits=3)
    frame = build_feature_frame(prices, horizon=1)
    split = chronological_split(frame, test_fraction=0.2, gap=1)
    unseeded = {**SMALL_FOREST, "n_estimators": 10, "random_state": None}
    model = fit_model(build_estimator(ModelConfig(params=unseeded)), split.train)

    report = report_on_split(prices, split, model, config)

    served = up_probability(model, split.test)
    np.testing.assert_array_equal(report.signals["probability"].to_numpy(), served)
    champion_way = classifier_performance(prices, split.test, served, config)
    backtest = report.performance.loc[MODEL]
    assert backtest["sharpe"] == pytest.approx(champion_way["sharpe"])
    assert backtest["total_return"] == pytest.approx(champion_way["total_return"])


def test_evaluate_model_fits_folds_on_training_rows_only(
    fit_recorder: type[RecordingClassifier],
) -> None:
    split = chronological_split(_frame(500), test_fraction=0.2, gap=1)
    model = fit_model(fit_recorder(), split.train)
    fit_recorder.fitted.clear()

    evaluate_model(split, model, n_splits=5, horizon=1)

    folds = walk_forward_folds(split.train, n_splits=5, horizon=1)
    assert_no_test_rows(fit_recorder.fitted, split.test.index)
    assert [len(dates) for dates in fit_recorder.fitted] == [
        len(fold.train) for fold in folds
    ]
    for dates, fold in zip(fit_recorder.fitted, folds, strict=True):
        assert dates.equals(fold.train.index)


def test_build_report_fits_on_training_rows_only(
    real_prices: pd.DataFrame, fit_recorder: type[RecordingClassifier]
) -> None:
    prices, _ = clean_prices(real_prices.tail(900))
    model = ModelConfig(estimator="tests.leakage.RecordingClassifier")

    report = build_report(prices, ReportConfig(model=model, n_splits=3))

    assert len(fit_recorder.fitted) == 1 + 3
    assert_no_test_rows(fit_recorder.fitted, report.signals.index)


def test_summarise_folds_mean_std_without_test_fold() -> None:
    scores = pd.DataFrame(
        {
            "fold": ["1", "2", "3", TEST_FOLD],
            "model": [ALWAYS_UP] * 4,
            "f1": [0.2, 0.4, 0.6, 0.0],
            "precision": [0.5, 0.5, 0.5, 0.0],
            "recall": [1.0, 1.0, 1.0, 1.0],
            "roc_auc": [0.5, 0.5, math.nan, 0.5],
        }
    )

    summary = summarise_folds(scores)

    row = summary.loc[ALWAYS_UP]
    assert row["folds"] == 3
    assert row["f1_mean"] == pytest.approx(0.4)
    assert row["f1_std"] == pytest.approx(0.2)
    assert row["precision_std"] == 0.0
    assert row["roc_auc_mean"] == 0.5


def test_strategy_signals_hold_band_and_baselines() -> None:
    rows = _baseline_rows().iloc[:4]
    probability = pd.Series([0.7, 0.52, 0.45, 0.3], index=rows.index)

    signals = strategy_signals(rows, probability, hold_band=0.05)

    assert signals[MODEL].tolist() == ["BUY", "HOLD", "SELL", "SELL"]
    assert signals[ALWAYS_UP].tolist() == ["BUY"] * 4
    assert signals[YESTERDAY].tolist() == ["BUY", "SELL", "BUY", "BUY"]


def test_load_report_config_reads_the_pipeline_yamls() -> None:
    def step(name: str, step: str) -> Any:
        tree = yaml.safe_load((CONFIG_DIR / name).read_text())
        return tree["steps"][step]["parameters"] if step else tree["parameters"]

    features = step("feature_engineering.yaml", "")
    trainer = step("training.yaml", "model_trainer")
    predict = step("inference.yaml", "inference_predict")

    config = load_report_config(CONFIG_DIR, backtest=BacktestConfig(short=False))

    assert config.horizon == features["horizon"]
    assert config.test_fraction == features["test_fraction"]
    assert (
        config.min_rows == step("feature_engineering.yaml", "data_splitter")["min_rows"]
    )
    assert config.model.estimator == trainer["estimator"]
    assert config.model.params == trainer["params"]
    assert config.hold_band == predict["hold_band"]
    assert config.backtest.short is False


def test_load_report_config_missing_values_take_step_defaults(tmp_path: Path) -> None:
    (tmp_path / "feature_engineering.yaml").write_text("parameters:\n  horizon: 3\n")
    (tmp_path / "training.yaml").write_text("enable_cache: false\n")
    (tmp_path / "inference.yaml").write_text("steps: {}\n")

    config = load_report_config(tmp_path)

    assert config == dataclasses.replace(ReportConfig(), horizon=3)


def test_load_report_config_unreadable_file_named(tmp_path: Path) -> None:
    (tmp_path / "feature_engineering.yaml").write_text("- just\n- a list\n")

    with pytest.raises(EvaluationError, match=r"feature_engineering\.yaml is not a"):
        load_report_config(tmp_path)


def _tenfold_spike() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prices whose third close is ten times the second, and 5 test rows."""
    index = pd.bdate_range("2026-08-03", periods=6, name="date")
    close = np.array([2000.0, 2010.0, 20100.0, 2005.0, 2000.0, 2010.0])
    values = {"open": close, "high": close, "low": close, "close": close}
    prices = pd.DataFrame(values | {"volume": 10.0}, index=index)
    return prices, _frame(5).set_axis(index[:5])


def test_classifier_performance_short_through_tenfold_close_loses_all() -> None:
    prices, test = _tenfold_spike()
    sell = np.zeros(len(test))

    stats = classifier_performance(prices, test, sell, ReportConfig())

    assert all(type(value) is float for value in stats.values())
    assert all(math.isfinite(value) or math.isnan(value) for value in stats.values())
    assert (stats["total_return"], stats["annual_return"]) == (-1.0, -1.0)
    assert stats["max_drawdown"] == -1.0


def test_mlflow_metrics_of_a_total_loss_are_finite_floats() -> None:
    index = pd.bdate_range("2026-08-03", periods=5, name="date")
    short = pd.Series(-1.0, index=index)
    asset = pd.Series([0.005, 9.0, -0.9, -0.0025, 0.005], index=index)
    runs = {name: run_backtest(short, asset, cost_bps=2.0) for name in MODELS}
    summary = pd.DataFrame(
        {"f1": [0.5, math.nan, 0.4], "folds": 5.0}, index=pd.Index(MODELS)
    )
    empty = pd.DataFrame()
    report = EvaluationReport(
        ReportConfig(), empty, summary, performance_table(runs), empty, empty, ""
    )

    metrics = mlflow_metrics(report)

    assert all(type(value) is float for value in metrics.values())
    assert all(math.isfinite(value) for value in metrics.values())
    assert metrics["annual_return"] == -1.0
    assert metrics[f"bt_{MODEL}_max_drawdown"] == -1.0
    assert f"wf_{MODELS[1]}_f1" not in metrics


@pytest.fixture(scope="module")
def real_report(real_prices: pd.DataFrame) -> EvaluationReport:
    """The full report on the real history with a 50-tree forest."""
    clean, _ = clean_prices(real_prices)
    config = ReportConfig(model=ModelConfig(params=SMALL_FOREST))
    return build_report(clean, config)


def test_real_report_scores_are_finite_and_in_range(
    real_report: EvaluationReport,
) -> None:
    scores = real_report.scores
    metrics = scores[["f1", "precision", "recall", "roc_auc"]].to_numpy()

    assert np.isfinite(metrics).all()
    assert ((metrics >= 0) & (metrics <= 1)).all()
    assert scores["fold"].unique().tolist() == ["1", "2", "3", "4", "5", TEST_FOLD]
    walk_forward = scores.loc[scores["fold"] != TEST_FOLD]
    assert (
        walk_forward["end"].max()
        < scores.loc[scores["fold"] == TEST_FOLD, "start"].min()
    )
    assert (scores.loc[scores["model"] == ALWAYS_UP, "roc_auc"] == 0.5).all()
    assert real_report.summary.index.tolist() == list(MODELS)
    assert (real_report.summary["folds"] == 5).all()


def test_real_report_backtest_is_consistent_with_prices(
    real_prices: pd.DataFrame, real_report: EvaluationReport
) -> None:
    performance = real_report.performance
    test = real_report.signals.index
    after_last = real_prices.index[real_prices.index.get_loc(test[-1]) + 1]
    close = real_prices["close"]
    first_return = close[real_prices.index[real_prices.index.get_loc(test[0]) + 1]]
    first_return = first_return / close[test[0]] - 1.0
    cost = real_report.config.backtest.cost_bps * 1e-4
    entry = (1.0 + first_return - cost) / (1.0 + first_return)

    hold = performance.loc[BUY_AND_HOLD]

    assert np.isfinite(performance.to_numpy()).all()
    assert performance.index.tolist() == [*MODELS, BUY_AND_HOLD]
    assert hold["total_return"] == pytest.approx(
        entry * close[after_last] / close[test[0]] - 1.0, abs=1e-9
    )
    assert performance.loc[ALWAYS_UP].equals(hold)
    assert performance[["hit_rate", "exposure"]].stack().between(0, 1).all()
    assert performance["max_drawdown"].between(-1, 0).all()
    assert (performance["days"] == len(test)).all()
    curves = real_report.curves
    assert curves.index[0] == test[0]
    assert curves.index[-1] == after_last
    assert (curves.iloc[0] == 1.0).all()
    np.testing.assert_allclose(curves.iloc[-1] - 1.0, performance["total_return"])


def test_real_report_markdown_json_and_files(
    real_report: EvaluationReport, tmp_path: Path
) -> None:
    markdown = render_markdown(real_report)

    paths = write_report(real_report, tmp_path)

    assert markdown.count("\n| ") >= 18 + 3 + 4
    assert "## Backtest on the test window" in markdown
    assert [path.name for path in paths] == [
        "evaluation.json",
        "equity_curve.png",
        "drawdown.png",
        "signals.png",
    ]
    assert all(path.stat().st_size > 0 for path in paths)
    written = json.loads(paths[0].read_text())
    assert written == json.loads(json.dumps(report_json(real_report), allow_nan=False))
    assert len(written["scores"]) == 18
    assert written["config"]["model"]["params"]["n_estimators"] == 50


def test_evaluate_command_prints_tables_and_writes_files(tmp_path: Path) -> None:
    prices = real_price_slice(tmp_path, 900)
    out = tmp_path / "report"
    env = isolated_env(tmp_path / "home")

    result = goldsignals(
        env,
        "evaluate",
        "--prices",
        str(prices),
        "--flat",
        "--cost-bps",
        "5",
        "--out",
        str(out),
    )

    assert "## Walk-forward scores" in result.stdout
    assert "SELL = flat, cost 5 bps" in result.stdout
    assert f"wrote {out / 'evaluation.json'}" in result.stdout
    assert sorted(path.name for path in out.iterdir()) == [
        "drawdown.png",
        "equity_curve.png",
        "evaluation.json",
        "signals.png",
    ]


def test_evaluate_command_without_price_file_names_the_variable(
    tmp_path: Path,
) -> None:
    env = isolated_env(tmp_path / "home")
    env.pop("GOLDSIGNALS_SEED_CSV", None)
    env.pop("GOLDSIGNALS_DEFAULT_SEED_CSV", None)

    result = goldsignals(env, "evaluate", check=False)

    assert result.returncode == 2
    assert "GOLDSIGNALS_SEED_CSV" in result.stderr
