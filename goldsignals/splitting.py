"""Chronological train/test split and feature scaling fitted on train only.

The frames here come from ``goldsignals.features.build_feature_frame``: an
ascending ``date`` index of exchange dates, the float64 ``FEATURE_COLUMNS``,
``forward_return`` and ``target``. Rows are never shuffled: the test rows are
the newest labelled dates, and a gap of rows keeps train labels out of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
from sklearn.preprocessing import StandardScaler

from goldsignals.errors import FeatureError
from goldsignals.features import (
    FEATURE_COLUMNS,
    FORWARD_RETURN_COLUMN,
    TARGET_COLUMN,
    labelled_rows,
)

logger = logging.getLogger(__name__)

MIN_ROWS_PER_SIDE = 2
FRAME_COLUMNS = (*FEATURE_COLUMNS, FORWARD_RETURN_COLUMN, TARGET_COLUMN)


@dataclass(frozen=True)
class SplitFrames:
    """Train and test rows of a chronological split.

    Attributes:
        train: The older labelled rows, ascending ``date`` index, columns
            ``FEATURE_COLUMNS``, ``forward_return`` and ``target`` (float64).
        test: The newest labelled rows, same columns; every test date is
            later than every train date.
    """

    train: pd.DataFrame
    test: pd.DataFrame


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Raise FeatureError naming the ``columns`` missing from ``frame``."""
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise FeatureError(
            f"frame lacks columns {missing}; pass a frame built by "
            "goldsignals.features.build_feature_frame"
        )


def _check_split_arguments(test_fraction: float, gap: int) -> None:
    """Raise FeatureError for a test fraction outside (0, 1) or a negative gap."""
    if not 0.0 < test_fraction < 1.0:
        raise FeatureError(
            f"test_fraction {test_fraction!r} must lie strictly between 0 and 1, "
            "for example 0.2"
        )
    if gap < 0:
        raise FeatureError(f"gap {gap!r} must be 0 or more rows; use the label horizon")


def _check_side_sizes(
    labelled: int, train: int, test: int, gap: int, min_rows: int
) -> None:
    """Raise FeatureError when either side of the split would be too small."""
    if min(train, test) < min_rows:
        raise FeatureError(
            f"{labelled} labelled rows give {train} train rows, a gap of {gap} "
            f"and {test} test rows; each side needs at least {min_rows} "
            "rows to train and evaluate a model: supply more history or change "
            "test_fraction"
        )


def chronological_split(
    frame: pd.DataFrame,
    *,
    test_fraction: float = 0.2,
    gap: int = 1,
    min_rows: int = MIN_ROWS_PER_SIDE,
) -> SplitFrames:
    """Split the labelled rows of a feature frame by date, without shuffling.

    Args:
        frame: A feature frame (ascending ``date`` index, ``FEATURE_COLUMNS``,
            ``forward_return``, ``target``); rows without a target are ignored.
        test_fraction: Share of the labelled rows, the newest, used as test
            (rounded to whole rows).
        gap: Rows dropped between train and test; equal to the label horizon
            it keeps every train label free of test-window prices.
        min_rows: Fewest rows each side may have (at least
            ``MIN_ROWS_PER_SIDE``).

    Returns:
        The train and test frames, with every column of ``frame``.

    Raises:
        FeatureError: Columns are missing, dates are not ascending,
            ``test_fraction`` is outside (0, 1), ``gap`` is negative, or a
            side would get fewer than ``MIN_ROWS_PER_SIDE`` rows.
    """
    _check_split_arguments(test_fraction, gap)
    _require_columns(frame, FRAME_COLUMNS)
    if not frame.index.is_monotonic_increasing:
        raise FeatureError("frame dates must be ascending; sort the frame by date")

    labelled = labelled_rows(frame)
    test_rows = round(len(labelled) * test_fraction)
    train_rows = len(labelled) - test_rows - gap
    floor = max(min_rows, MIN_ROWS_PER_SIDE)
    _check_side_sizes(len(labelled), train_rows, test_rows, gap, floor)
    split = SplitFrames(
        train=labelled.iloc[:train_rows], test=labelled.iloc[-test_rows:]
    )

    logger.info(
        "Split %d labelled rows: %d train (to %s), %d gap, %d test (from %s)",
        len(labelled),
        train_rows,
        split.train.index[-1],
        gap,
        test_rows,
        split.test.index[0],
    )
    return split


def fit_scaler(train: pd.DataFrame) -> StandardScaler:
    """Fit a standard scaler on the feature columns of the train rows only.

    Args:
        train: Train rows holding the float64 ``FEATURE_COLUMNS``.

    Returns:
        A fitted ``StandardScaler`` whose ``transform`` returns a DataFrame
        with the ``FEATURE_COLUMNS`` names and the index of its input.

    Raises:
        FeatureError: Feature columns are missing or ``train`` has no rows.
    """
    _require_columns(train, FEATURE_COLUMNS)
    if train.empty:
        raise FeatureError("train frame has no rows; cannot fit the scaler")

    scaler = StandardScaler().set_output(transform="pandas")
    scaler.fit(train[list(FEATURE_COLUMNS)])

    logger.info(
        "Fitted scaler on %d train rows x %d features", len(train), len(FEATURE_COLUMNS)
    )
    return scaler


def scale_features(scaler: StandardScaler, frame: pd.DataFrame) -> pd.DataFrame:
    """Scale the feature columns of ``frame`` with a scaler fitted on train rows.

    Args:
        scaler: A scaler from ``fit_scaler``.
        frame: Rows holding the ``FEATURE_COLUMNS``, possibly more columns.

    Returns:
        A copy of ``frame`` (same index, same column order) whose
        ``FEATURE_COLUMNS`` are scaled to float64; other columns untouched.

    Raises:
        FeatureError: Feature columns are missing from ``frame``.
    """
    _require_columns(frame, FEATURE_COLUMNS)

    scaled = frame.copy()
    scaled[list(FEATURE_COLUMNS)] = scaler.transform(frame[list(FEATURE_COLUMNS)])

    logger.info(
        "Scaled %d feature columns of %d rows", len(FEATURE_COLUMNS), len(frame)
    )
    return scaled
