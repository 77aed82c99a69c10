"""Tests of goldsignals.splitting on small frames and the real gold history."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from goldsignals.errors import FeatureError
from goldsignals.features import (
    FEATURE_COLUMNS,
    FORWARD_RETURN_COLUMN,
    TARGET_COLUMN,
    build_feature_frame,
    labelled_rows,
)
from goldsignals.splitting import (
    MIN_ROWS_PER_SIDE,
    SplitFrames,
    chronological_split,
    fit_scaler,
    scale_features,
)

OTHER_COLUMNS = [FORWARD_RETURN_COLUMN, TARGET_COLUMN]


def _small_frame(rows: int, *, unlabelled: int = 1) -> pd.DataFrame:
    """Build a random feature frame whose last ``unlabelled`` targets are NaN."""
    rng = np.random.default_rng(0)
    index = pd.bdate_range("2020-01-01", periods=rows, name="date")
    frame = pd.DataFrame(
        rng.normal(size=(rows, len(FEATURE_COLUMNS))),
        index=index,
        columns=list(FEATURE_COLUMNS),
    )
    frame[FORWARD_RETURN_COLUMN] = rng.normal(0.0, 0.01, rows)
    frame[TARGET_COLUMN] = (frame[FORWARD_RETURN_COLUMN] > 0).astype(np.float64)
    frame.iloc[rows - unlabelled :, -2:] = np.nan
    return frame


def _rows_between(frame: pd.DataFrame, split: SplitFrames) -> int:
    """Count labelled rows dated strictly between train and test."""
    dates = labelled_rows(frame).index
    after_train = dates > split.train.index[-1]
    return int((after_train & (dates < split.test.index[0])).sum())


@pytest.fixture(scope="module")
def real_frame(real_prices: pd.DataFrame) -> pd.DataFrame:
    """Feature frame of the full real history, horizon 1."""
    return build_feature_frame(real_prices)


@pytest.fixture(scope="module")
def real_split(real_frame: pd.DataFrame) -> SplitFrames:
    """Default chronological split of the real feature frame."""
    return chronological_split(real_frame)


def test_chronological_split_train_dates_precede_test_dates(
    real_split: SplitFrames,
) -> None:
    assert real_split.train.index.max() < real_split.test.index.min()


@pytest.mark.parametrize("gap", [0, 1, 5])
def test_chronological_split_drops_gap_rows(real_frame: pd.DataFrame, gap: int) -> None:
    split = chronological_split(real_frame, gap=gap)

    labelled = len(labelled_rows(real_frame))

    assert _rows_between(real_frame, split) == gap
    assert len(split.train) + gap + len(split.test) == labelled


def test_chronological_split_keeps_date_order(
    real_frame: pd.DataFrame, real_split: SplitFrames
) -> None:
    labelled = labelled_rows(real_frame)

    assert real_split.train.index.is_monotonic_increasing
    assert real_split.test.index.is_monotonic_increasing
    assert real_split.train.index.equals(labelled.index[: len(real_split.train)])
    assert real_split.test.index.equals(labelled.index[-len(real_split.test) :])


@pytest.mark.parametrize("test_fraction", [0.1, 0.2, 0.5])
def test_chronological_split_respects_test_fraction(
    real_frame: pd.DataFrame, test_fraction: float
) -> None:
    labelled = len(labelled_rows(real_frame))

    split = chronological_split(real_frame, test_fraction=test_fraction)

    assert abs(len(split.test) / labelled - test_fraction) <= 0.5 / labelled
    assert len(split.train) == labelled - len(split.test) - 1


def test_chronological_split_keeps_train_labels_out_of_test_window(
    real_prices: pd.DataFrame,
) -> None:
    horizon = 3
    frame = build_feature_frame(real_prices, horizon=horizon)

    split = chronological_split(frame, gap=horizon)

    last_train = frame.index.searchsorted(split.train.index[-1])
    label_end = frame.index[last_train + horizon]
    assert label_end < split.test.index[0]


def test_chronological_split_excludes_unlabelled_rows() -> None:
    frame = _small_frame(100, unlabelled=3)

    split = chronological_split(frame)

    assert split.train[TARGET_COLUMN].notna().all()
    assert split.test[TARGET_COLUMN].notna().all()
    assert split.test.index[-1] == frame.index[-4]
    assert list(split.train.columns) == list(frame.columns)


@pytest.mark.parametrize("test_fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_chronological_split_rejects_bad_test_fraction(test_fraction: float) -> None:
    with pytest.raises(FeatureError, match=f"test_fraction {test_fraction!r} must"):
        chronological_split(_small_frame(100), test_fraction=test_fraction)


def test_chronological_split_rejects_negative_gap() -> None:
    with pytest.raises(FeatureError, match="gap -1 must be 0 or more"):
        chronological_split(_small_frame(100), gap=-1)


@pytest.mark.parametrize(
    ("rows", "test_fraction", "gap"),
    [(6, 0.2, 1), (10, 0.9, 1), (10, 0.3, 6)],
)
def test_chronological_split_rejects_too_few_rows(
    rows: int, test_fraction: float, gap: int
) -> None:
    frame = _small_frame(rows)

    with pytest.raises(FeatureError, match=f"needs at least {MIN_ROWS_PER_SIDE}"):
        chronological_split(frame, test_fraction=test_fraction, gap=gap)


def test_chronological_split_rejects_missing_columns() -> None:
    frame = _small_frame(100).drop(columns=["rsi_14", TARGET_COLUMN])

    with pytest.raises(FeatureError, match=r"lacks columns \['rsi_14', 'target'\]"):
        chronological_split(frame)


def test_chronological_split_rejects_unsorted_frame() -> None:
    frame = _small_frame(100).sample(frac=1.0, random_state=0)

    with pytest.raises(FeatureError, match="must be ascending"):
        chronological_split(frame)


def test_split_frames_is_frozen(real_split: SplitFrames) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        real_split.train = real_split.test  # type: ignore[misc]


def test_fit_scaler_uses_train_rows_only(real_split: SplitFrames) -> None:
    train = real_split.train[list(FEATURE_COLUMNS)]
    both = pd.concat([train, real_split.test[list(FEATURE_COLUMNS)]])

    scaler = fit_scaler(real_split.train)

    np.testing.assert_allclose(scaler.mean_, train.mean().to_numpy())
    np.testing.assert_allclose(scaler.scale_, train.std(ddof=0).to_numpy())
    assert not np.allclose(scaler.mean_, both.mean().to_numpy())
    assert list(scaler.feature_names_in_) == list(FEATURE_COLUMNS)


def test_fit_scaler_rejects_missing_columns() -> None:
    train = _small_frame(20).drop(columns=["adx_14"])

    with pytest.raises(FeatureError, match=r"lacks columns \['adx_14'\]"):
        fit_scaler(train)


def test_fit_scaler_rejects_empty_train() -> None:
    with pytest.raises(FeatureError, match="train frame has no rows"):
        fit_scaler(_small_frame(20).iloc[:0])


def test_scale_features_keeps_index_columns_and_other_columns(
    real_split: SplitFrames,
) -> None:
    scaler = fit_scaler(real_split.train)

    scaled = scale_features(scaler, real_split.test)

    assert scaled.index.equals(real_split.test.index)
    assert list(scaled.columns) == list(real_split.test.columns)
    assert (scaled.dtypes == np.float64).all()
    pd.testing.assert_frame_equal(scaled[OTHER_COLUMNS], real_split.test[OTHER_COLUMNS])
    assert not np.allclose(scaled["rsi_14"], real_split.test["rsi_14"])


def test_scale_features_standardises_train_rows(real_split: SplitFrames) -> None:
    scaler = fit_scaler(real_split.train)

    scaled = scale_features(scaler, real_split.train)[list(FEATURE_COLUMNS)]

    np.testing.assert_allclose(scaled.mean(), 0.0, atol=1e-9)
    np.testing.assert_allclose(scaled.std(ddof=0), 1.0, rtol=1e-9)


def test_scale_features_leaves_input_unchanged(real_split: SplitFrames) -> None:
    before = real_split.test.copy()

    scale_features(fit_scaler(real_split.train), real_split.test)

    pd.testing.assert_frame_equal(real_split.test, before)


def test_scale_features_rejects_missing_columns(real_split: SplitFrames) -> None:
    scaler = fit_scaler(real_split.train)
    frame = real_split.test.drop(columns=["macd", "stoch_d"])

    with pytest.raises(FeatureError, match=r"lacks columns \['macd', 'stoch_d'\]"):
        scale_features(scaler, frame)


def test_chronological_split_min_rows_floor_named() -> None:
    index = pd.bdate_range("2024-01-01", periods=100, name="date")
    frame = pd.DataFrame(0.0, index=index, columns=[*FEATURE_COLUMNS, "forward_return"])
    frame["target"] = 1.0

    with pytest.raises(FeatureError, match="each side needs at least 60 rows"):
        chronological_split(frame, test_fraction=0.2, gap=1, min_rows=60)
