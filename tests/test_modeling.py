"""Estimator from configuration, training, evaluation, signal thresholds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from goldsignals.errors import FeatureError, ModelConfigError
from goldsignals.features import FEATURE_COLUMNS
from goldsignals.inference import ModelRef, classify_probabilities, predict_signals
from goldsignals.modeling import (
    ModelConfig,
    build_estimator,
    bundle_model,
    evaluate_classifier,
    train_classifier,
)
from goldsignals.splitting import chronological_split, fit_scaler, scale_features
from tests.leakage import RecordingClassifier, assert_no_test_rows


def _frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2020-01-01", periods=rows, name="date")
    frame = pd.DataFrame(
        rng.normal(size=(rows, len(FEATURE_COLUMNS))),
        index=index,
        columns=list(FEATURE_COLUMNS),
    )
    frame["forward_return"] = frame[FEATURE_COLUMNS[0]] * 0.01
    frame["target"] = (frame["forward_return"] > 0).astype("float64")
    return frame


def test_build_estimator_default_is_random_forest() -> None:
    estimator = build_estimator(ModelConfig(params={"n_estimators": 5}))

    assert type(estimator).__name__ == "RandomForestClassifier"
    assert estimator.get_params()["n_estimators"] == 5


def test_build_estimator_other_classifier_by_import_path() -> None:
    config = ModelConfig(
        estimator="sklearn.linear_model.LogisticRegression", params={"C": 0.5}
    )

    assert isinstance(build_estimator(config), LogisticRegression)


def test_build_estimator_unknown_parameter_named() -> None:
    config = ModelConfig(params={"n_trees": 5})

    with pytest.raises(ModelConfigError, match=r"no parameter\(s\) \['n_trees'\]"):
        build_estimator(config)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("RandomForest", "not an import path"),
        ("sklearn.ensemble.NoSuchForest", "cannot be imported"),
        ("sklearn.linear_model.LinearRegression", "not a scikit-learn classifier"),
        ("os.getcwd", "not a scikit-learn estimator class"),
    ],
)
def test_build_estimator_bad_path_rejected(path: str, message: str) -> None:
    with pytest.raises(ModelConfigError, match=message):
        build_estimator(ModelConfig(estimator=path))


def test_build_estimator_never_calls_what_is_no_estimator_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    called: list[object] = []
    monkeypatch.setattr(os, "getcwd", lambda *args: called.append(args))

    with pytest.raises(ModelConfigError):
        build_estimator(ModelConfig(estimator="os.getcwd"))

    assert called == []


def test_train_classifier_single_class_rejected() -> None:
    frame = _frame(50)
    frame["target"] = 1.0

    with pytest.raises(ModelConfigError, match="single class"):
        train_classifier(build_estimator(ModelConfig()), frame)


def test_train_classifier_fits_on_training_rows_only(
    fit_recorder: type[RecordingClassifier],
) -> None:
    split = chronological_split(_frame(300), test_fraction=0.2, gap=1)
    scaler = fit_scaler(split.train)
    estimator = build_estimator(
        ModelConfig(estimator="tests.leakage.RecordingClassifier")
    )

    train_classifier(estimator, scale_features(scaler, split.train))

    assert_no_test_rows(fit_recorder.fitted, split.test.index)
    assert fit_recorder.fitted[0].equals(split.train.index)
    assert scaler.n_samples_seen_ == len(split.train)


def test_leakage_check_catches_a_fit_on_train_and_test(
    fit_recorder: type[RecordingClassifier],
) -> None:
    split = chronological_split(_frame(300), test_fraction=0.2, gap=1)
    leaky = pd.concat([split.train, split.test])

    train_classifier(fit_recorder(), scale_features(fit_scaler(leaky), leaky))

    first = f"{split.test.index[0]:%Y-%m-%d}"
    with pytest.raises(
        AssertionError,
        match=f"saw {len(split.test)} test-window rows, the first on {first}",
    ):
        assert_no_test_rows(fit_recorder.fitted, split.test.index)


def test_evaluate_classifier_learnable_signal_scores_high() -> None:
    train, test = _frame(400, seed=1), _frame(100, seed=2)
    scaler = fit_scaler(train)
    classifier = train_classifier(
        build_estimator(ModelConfig(params={"n_estimators": 20, "random_state": 0})),
        scale_features(scaler, train),
    )

    metrics = evaluate_classifier(bundle_model(scaler, classifier), test)

    assert set(metrics) >= {"f1", "precision", "recall", "accuracy", "roc_auc"}
    assert metrics["accuracy"] > 0.9
    assert metrics["test_rows"] == 100


def test_classify_probabilities_band_edges() -> None:
    probabilities = np.array([0.9, 0.55, 0.54, 0.5, 0.46, 0.45, 0.1])

    signals = classify_probabilities(probabilities, hold_band=0.05)

    assert signals == ["BUY", "BUY", "HOLD", "HOLD", "HOLD", "SELL", "SELL"]


def test_classify_probabilities_bad_band_rejected() -> None:
    with pytest.raises(ModelConfigError, match=r"hold_band 0\.5"):
        classify_probabilities(np.array([0.7]), hold_band=0.5)


def test_predict_signals_rows_carry_lineage() -> None:
    train = _frame(200)
    scaler = fit_scaler(train)
    classifier = train_classifier(
        build_estimator(ModelConfig(params={"n_estimators": 5})),
        scale_features(scaler, train),
    )
    ref = ModelRef(name="m", version="3", run_id="r", metric="f1", metric_value=0.6)

    rows = predict_signals(
        bundle_model(scaler, classifier),
        train.tail(2),
        ticker="GC=F",
        model_ref=ref,
        hold_band=0.0,
        zenml_run_id="z",
    )

    assert list(rows["as_of_date"]) == [d.date() for d in train.index[-2:]]
    assert set(rows["model_version"]) == {"3"}
    assert rows["probability"].between(0, 1).all()


def test_predict_signals_missing_features_named() -> None:
    frame = _frame(5).drop(columns=[FEATURE_COLUMNS[0]])
    ref = ModelRef(name="m", version="1", run_id=None, metric="f1", metric_value=None)

    with pytest.raises(FeatureError, match=FEATURE_COLUMNS[0]):
        predict_signals(object(), frame, ticker="GC=F", model_ref=ref, hold_band=0.1)
