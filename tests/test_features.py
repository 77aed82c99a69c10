"""Tests of goldsignals.features on synthetic prices and the real gold history."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest

from goldsignals.errors import FeatureError
from goldsignals.features import (
    FEATURE_COLUMNS,
    FORWARD_RETURN_COLUMN,
    LONGEST_WINDOW,
    MIN_LABELLED_ROWS,
    TARGET_COLUMN,
    build_feature_frame,
    compute_indicators,
    labelled_rows,
    latest_rows,
    make_labels,
    minimum_rows,
)

FrameFunction = Callable[[pd.DataFrame], pd.DataFrame]


def _synthetic_prices(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """Build a random-walk standard price frame on business days."""
    rng = np.random.default_rng(seed)
    close = 1000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, rows)))
    open_ = close * (1.0 + rng.normal(0.0, 0.003, rows))
    spread = close * rng.uniform(0.001, 0.01, rows)
    volume = rng.integers(0, 5000, rows).astype(np.float64)
    index = pd.bdate_range("2010-01-04", periods=rows, name="date")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": volume,
        },
        index=index,
    )


def _causality_violations(
    compute: FrameFunction, prices: pd.DataFrame, cut_positions: Sequence[int]
) -> list[str]:
    """List the columns whose past values change when later rows are removed.

    For every cut position ``t``, ``compute`` runs on the rows up to ``t`` and
    its output must equal (NaN-aware) the full-history output up to ``t``.
    """
    full = compute(prices)
    violations: list[str] = []
    for position in cut_positions:
        cut_date = prices.index[position]
        truncated = compute(prices.iloc[: position + 1])
        expected = full.loc[full.index <= cut_date]
        if not truncated.index.equals(expected.index):
            violations.append(f"row dates up to {cut_date.date()}")
            continue
        same = np.isclose(
            truncated.to_numpy(),
            expected.to_numpy(),
            rtol=1e-9,
            atol=1e-12,
            equal_nan=True,
        ).all(axis=0)
        violations += [
            f"{name} up to {cut_date.date()}" for name in full.columns[~same]
        ]
    return violations


def _cut_positions(rows: int) -> list[int]:
    """Cut positions spread over the history, inside and after the warm-up."""
    return [30, LONGEST_WINDOW + 5, rows // 4, rows // 2, (3 * rows) // 4, rows - 2]


@pytest.fixture(scope="module")
def real_features(real_prices: pd.DataFrame) -> pd.DataFrame:
    """Indicators of the full real history."""
    return compute_indicators(real_prices)


def test_feature_columns_count_and_uniqueness() -> None:
    assert 30 <= len(FEATURE_COLUMNS) <= 40
    assert len(set(FEATURE_COLUMNS)) == len(FEATURE_COLUMNS)
    assert FORWARD_RETURN_COLUMN not in FEATURE_COLUMNS
    assert TARGET_COLUMN not in FEATURE_COLUMNS


def test_compute_indicators_columns_index_and_dtypes(
    real_prices: pd.DataFrame, real_features: pd.DataFrame
) -> None:
    assert tuple(real_features.columns) == FEATURE_COLUMNS
    assert real_features.index.equals(real_prices.index)
    assert real_features.index.name == "date"
    assert (real_features.dtypes == np.float64).all()


def test_compute_indicators_warm_up_is_a_prefix(real_features: pd.DataFrame) -> None:
    complete = real_features.notna().all(axis=1).to_numpy()

    first_complete = int(np.argmax(complete))

    assert first_complete == LONGEST_WINDOW - 1
    assert complete[first_complete:].all()
    assert real_features.iloc[: LONGEST_WINDOW - 1].isna().any(axis=1).all()
    assert np.isfinite(real_features.iloc[first_complete:].to_numpy()).all()


def test_compute_indicators_bounded_features_stay_in_range(
    real_features: pd.DataFrame,
) -> None:
    features = real_features.dropna()

    assert features["rsi_14"].between(0.0, 100.0).all()
    assert features["adx_14"].between(0.0, 100.0).all()
    assert features["obv_change_10"].between(-1.0, 1.0).all()
    assert (
        (features[["volatility_5", "volatility_20", "volatility_60"]] > 0).all().all()
    )
    assert (features["bb_width"] > 0).all()


def test_compute_indicators_match_direct_formulas(
    real_prices: pd.DataFrame, real_features: pd.DataFrame
) -> None:
    close = real_prices["close"].to_numpy()
    t = 3000
    daily = np.diff(np.log(close[t - 20 : t + 1]))
    row = real_features.iloc[t]

    assert row["log_return_5"] == pytest.approx(np.log(close[t] / close[t - 5]))
    assert row["log_return_lag_2"] == pytest.approx(np.log(close[t - 2] / close[t - 3]))
    assert row["close_sma_200"] == pytest.approx(
        close[t] / close[t - 199 : t + 1].mean()
    )
    assert row["volatility_20"] == pytest.approx(daily.std(ddof=1) * np.sqrt(252))
    assert row["roc_10"] == pytest.approx(close[t] / close[t - 10] - 1.0)


def test_compute_indicators_unchanged_when_future_rows_removed(
    real_prices: pd.DataFrame,
) -> None:
    cuts = _cut_positions(len(real_prices))

    violations = _causality_violations(compute_indicators, real_prices, cuts)

    assert violations == []


def test_build_feature_frame_features_unchanged_when_future_rows_removed(
    real_prices: pd.DataFrame,
) -> None:
    def features_only(prices: pd.DataFrame) -> pd.DataFrame:
        return build_feature_frame(prices)[list(FEATURE_COLUMNS)]

    cuts = [minimum_rows(1) + 10, len(real_prices) // 2, len(real_prices) - 2]

    assert _causality_violations(features_only, real_prices, cuts) == []


@pytest.mark.parametrize(
    "leaky_feature",
    [
        pytest.param(
            lambda p: p[["close"]].rolling(5, center=True).mean(), id="centred-mean"
        ),
        pytest.param(lambda p: p[["close"]] - p["close"].mean(), id="global-mean"),
        pytest.param(lambda p: p[["close"]].shift(-1), id="next-close"),
    ],
)
def test_causality_check_catches_leaky_feature(
    real_prices: pd.DataFrame, leaky_feature: FrameFunction
) -> None:
    cuts = _cut_positions(len(real_prices))

    violations = _causality_violations(leaky_feature, real_prices, cuts)

    assert violations
    assert all(violation.startswith("close up to") for violation in violations)


def test_compute_indicators_zero_volume_gives_zero_obv_change() -> None:
    prices = _synthetic_prices(300).assign(volume=0.0)

    features = compute_indicators(prices)

    obv = features["obv_change_10"].iloc[LONGEST_WINDOW:]
    assert (obv == 0.0).all()


def test_compute_indicators_rejects_missing_columns() -> None:
    prices = _synthetic_prices(50).drop(columns=["volume"])

    with pytest.raises(FeatureError, match=r"lacks columns \['volume'\]"):
        compute_indicators(prices)


def test_compute_indicators_rejects_unsorted_dates() -> None:
    prices = _synthetic_prices(50).iloc[::-1]

    with pytest.raises(FeatureError, match="ascending and unique"):
        compute_indicators(prices)


def test_compute_indicators_rejects_nan_prices() -> None:
    prices = _synthetic_prices(50)
    prices.iloc[10, 3] = np.nan

    with pytest.raises(FeatureError, match="holds 1 NaN values"):
        compute_indicators(prices)


@pytest.mark.parametrize("horizon", [1, 3, 5])
def test_make_labels_match_close_ratio(horizon: int) -> None:
    close = _synthetic_prices(40)["close"]

    labels = make_labels(close, horizon=horizon)

    values = close.to_numpy()
    expected = values[horizon:] / values[:-horizon] - 1.0
    known = labels.iloc[:-horizon]
    np.testing.assert_allclose(known[FORWARD_RETURN_COLUMN], expected)
    np.testing.assert_array_equal(known[TARGET_COLUMN], (expected > 0).astype(float))


@pytest.mark.parametrize("horizon", [1, 3, 5])
def test_make_labels_last_horizon_rows_are_nan(horizon: int) -> None:
    close = _synthetic_prices(40)["close"]

    labels = make_labels(close, horizon=horizon)

    assert labels.iloc[-horizon:].isna().all().all()
    assert labels.iloc[:-horizon].notna().all().all()
    assert list(labels.columns) == [FORWARD_RETURN_COLUMN, TARGET_COLUMN]
    assert labels.index.equals(close.index)
    assert (labels.dtypes == np.float64).all()


def test_make_labels_target_depends_only_on_close_t_and_t_plus_horizon() -> None:
    close = _synthetic_prices(40)["close"]
    t, horizon = 20, 3
    others = np.ones(len(close), dtype=bool)
    others[[t, t + horizon]] = False
    noise = np.random.default_rng(1).uniform(0.5, 1.5, len(close))
    perturbed = close.where(~others, close * noise)

    before = make_labels(close, horizon=horizon).iloc[t]
    after = make_labels(perturbed, horizon=horizon).iloc[t]

    assert after[FORWARD_RETURN_COLUMN] == before[FORWARD_RETURN_COLUMN]
    assert after[TARGET_COLUMN] == before[TARGET_COLUMN]


@pytest.mark.parametrize(("future_move", "expected"), [(1.01, 1.0), (0.99, 0.0)])
def test_make_labels_target_follows_close_at_horizon(
    future_move: float, expected: float
) -> None:
    close = _synthetic_prices(40)["close"].copy()
    t, horizon = 20, 3
    close.iloc[t + horizon] = close.iloc[t] * future_move

    labels = make_labels(close, horizon=horizon)

    assert labels[TARGET_COLUMN].iloc[t] == expected


def test_make_labels_flat_price_is_target_zero() -> None:
    close = pd.Series(
        [100.0, 100.0, 101.0], index=pd.bdate_range("2020-01-01", periods=3)
    )

    labels = make_labels(close)

    assert labels[TARGET_COLUMN].tolist()[:2] == [0.0, 1.0]


@pytest.mark.parametrize("horizon", [0, -1])
def test_make_labels_rejects_bad_horizon(horizon: int) -> None:
    close = _synthetic_prices(10)["close"]

    with pytest.raises(FeatureError, match=f"horizon {horizon} is not a positive"):
        make_labels(close, horizon=horizon)


@pytest.fixture(scope="module")
def real_frame(real_prices: pd.DataFrame) -> pd.DataFrame:
    """Feature frame of the full real history, horizon 1."""
    return build_feature_frame(real_prices)


def test_build_feature_frame_real_data_has_no_nan_features(
    real_frame: pd.DataFrame,
) -> None:
    assert real_frame[list(FEATURE_COLUMNS)].notna().all().all()
    assert np.isfinite(real_frame[list(FEATURE_COLUMNS)].to_numpy()).all()


def test_build_feature_frame_columns_index_and_dtypes(
    real_prices: pd.DataFrame, real_frame: pd.DataFrame
) -> None:
    expected_columns = [*FEATURE_COLUMNS, FORWARD_RETURN_COLUMN, TARGET_COLUMN]

    assert list(real_frame.columns) == expected_columns
    assert (real_frame.dtypes == np.float64).all()
    assert real_frame.index.name == "date"
    assert real_frame.index.is_monotonic_increasing
    assert real_frame.index.equals(real_prices.index[LONGEST_WINDOW - 1 :])
    assert set(real_frame[TARGET_COLUMN].dropna().unique()) == {0.0, 1.0}


@pytest.mark.parametrize("horizon", [1, 3])
def test_build_feature_frame_unlabelled_tail_equals_horizon(
    real_prices: pd.DataFrame, horizon: int
) -> None:
    frame = build_feature_frame(real_prices, horizon=horizon)

    unknown = frame[TARGET_COLUMN].isna()

    assert int(unknown.sum()) == horizon
    assert unknown.iloc[-horizon:].all()
    assert frame.index[-1] == real_prices.index[-1]


def test_build_feature_frame_rejects_too_short_input(real_prices: pd.DataFrame) -> None:
    needed = minimum_rows(1)
    short = real_prices.iloc[: needed - 1]

    with pytest.raises(FeatureError, match=f"{needed - 1} price rows .* {needed} "):
        build_feature_frame(short)


def test_build_feature_frame_accepts_minimum_rows() -> None:
    prices = _synthetic_prices(minimum_rows(2))

    frame = build_feature_frame(prices, horizon=2)

    assert len(labelled_rows(frame)) >= MIN_LABELLED_ROWS


def test_build_feature_frame_rejects_bad_horizon(real_prices: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match="horizon 0 is not a positive"):
        build_feature_frame(real_prices, horizon=0)


def test_labelled_rows_drops_only_unknown_targets(real_frame: pd.DataFrame) -> None:
    labelled = labelled_rows(real_frame)

    assert len(labelled) == len(real_frame) - 1
    assert labelled[TARGET_COLUMN].notna().all()
    assert labelled.index.equals(real_frame.index[:-1])


@pytest.mark.parametrize("count", [1, 3])
def test_latest_rows_returns_newest_dates(real_frame: pd.DataFrame, count: int) -> None:
    latest = latest_rows(real_frame, count=count)

    assert latest.index.equals(real_frame.index[-count:])
    assert list(latest.columns) == list(real_frame.columns)
    assert latest[TARGET_COLUMN].isna().iloc[-1]


@pytest.mark.parametrize("count", [0, -2, 10**6])
def test_latest_rows_rejects_bad_count(real_frame: pd.DataFrame, count: int) -> None:
    with pytest.raises(FeatureError, match=f"count {count} must be between 1"):
        latest_rows(real_frame, count=count)
