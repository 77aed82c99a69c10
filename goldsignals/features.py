"""Causal technical-indicator features and forward-looking direction labels.

Input everywhere is the standard price frame: a ``DatetimeIndex`` named ``date``
(tz-naive exchange dates, ascending, unique) and float64 columns ``open``,
``high``, ``low``, ``close`` and ``volume``. Every feature of date ``t`` uses
only the rows up to and including ``t``; only the labels look ``horizon`` rows
ahead. TA-Lib computes the classic indicators, pandas the returns and the
realised volatility.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
import talib

from goldsignals.errors import FeatureError

logger = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
RETURN_WINDOWS = (1, 2, 5, 10, 20)
RETURN_LAGS = (1, 2, 3, 4, 5)
VOLATILITY_WINDOWS = (5, 20, 60)
SMA_WINDOWS = (5, 10, 20, 50, 200)
EMA_WINDOWS = (20, 50)
ROC_WINDOWS = (5, 10, 20)
INDICATOR_PERIOD = 14
BOLLINGER_PERIOD = 20
OBV_WINDOW = 10
TRADING_DAYS_PER_YEAR = 252
LONGEST_WINDOW = max(SMA_WINDOWS)
MIN_LABELLED_ROWS = 50

TARGET_COLUMN = "target"
FORWARD_RETURN_COLUMN = "forward_return"
FEATURE_COLUMNS: tuple[str, ...] = (
    "log_return_1",
    "log_return_2",
    "log_return_5",
    "log_return_10",
    "log_return_20",
    "log_return_lag_1",
    "log_return_lag_2",
    "log_return_lag_3",
    "log_return_lag_4",
    "log_return_lag_5",
    "volatility_5",
    "volatility_20",
    "volatility_60",
    "high_low_range",
    "close_open_return",
    "close_sma_5",
    "close_sma_10",
    "close_sma_20",
    "close_sma_50",
    "close_sma_200",
    "close_ema_20",
    "close_ema_50",
    "sma_10_50_ratio",
    "macd",
    "macd_signal",
    "macd_hist",
    "rsi_14",
    "stoch_k",
    "stoch_d",
    "adx_14",
    "roc_5",
    "roc_10",
    "roc_20",
    "bb_percent_b",
    "bb_width",
    "atr_14_norm",
    "obv_change_10",
)

Columns = dict[str, "pd.Series[float]"]
FloatArray = npt.NDArray[np.float64]


def _check_prices(prices: pd.DataFrame) -> None:
    """Raise FeatureError unless ``prices`` is a usable standard price frame."""
    missing = [name for name in PRICE_COLUMNS if name not in prices.columns]
    if missing:
        raise FeatureError(
            f"price frame lacks columns {missing}; pass the standard price frame "
            f"with columns {list(PRICE_COLUMNS)}"
        )
    if not (prices.index.is_monotonic_increasing and prices.index.is_unique):
        raise FeatureError(
            "price dates must be ascending and unique; sort the frame by date "
            "and drop duplicated dates first"
        )
    nan_count = int(prices[list(PRICE_COLUMNS)].isna().to_numpy().sum())
    if nan_count:
        raise FeatureError(
            f"price frame holds {nan_count} NaN values; clean the prices first"
        )


def _as_series(values: FloatArray, index: pd.Index) -> pd.Series[float]:
    """Wrap a TA-Lib output array as a float64 Series on ``index``."""
    return pd.Series(values, index=index)


def _safe_ratio(
    numerator: pd.Series[float], denominator: pd.Series[float], *, fill: float
) -> pd.Series[float]:
    """Divide, using ``fill`` where the denominator is 0 (NaN stays NaN)."""
    ratio = numerator / denominator.where(denominator != 0)
    return ratio.mask(denominator == 0, fill)


def _arrays(prices: pd.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return the high, low and close columns as float64 arrays for TA-Lib."""
    high, low, close = (
        prices[name].to_numpy(dtype=np.float64) for name in ("high", "low", "close")
    )
    return high, low, close


def _return_features(prices: pd.DataFrame) -> Columns:
    """Log returns over several days, lagged daily returns, realised volatility."""
    log_close = np.log(prices["close"])
    daily = log_close.diff()
    columns: Columns = {f"log_return_{n}": log_close.diff(n) for n in RETURN_WINDOWS}
    for lag in RETURN_LAGS:
        columns[f"log_return_lag_{lag}"] = daily.shift(lag)
    for window in VOLATILITY_WINDOWS:
        rolling_std = daily.rolling(window).std()
        columns[f"volatility_{window}"] = rolling_std * np.sqrt(TRADING_DAYS_PER_YEAR)
    return columns


def _bar_features(prices: pd.DataFrame) -> Columns:
    """Shape of the day's own bar: high-low range and open-to-close return."""
    return {
        "high_low_range": (prices["high"] - prices["low"]) / prices["close"],
        "close_open_return": (prices["close"] - prices["open"]) / prices["open"],
    }


def _average_features(prices: pd.DataFrame) -> Columns:
    """Close over its simple and exponential moving averages, SMA(10)/SMA(50)."""
    close = prices["close"]
    values = close.to_numpy(dtype=np.float64)
    sma = {n: _as_series(talib.SMA(values, n), close.index) for n in SMA_WINDOWS}
    ema = {n: _as_series(talib.EMA(values, n), close.index) for n in EMA_WINDOWS}
    columns: Columns = {f"close_sma_{n}": close / sma[n] for n in SMA_WINDOWS}
    columns.update({f"close_ema_{n}": close / ema[n] for n in EMA_WINDOWS})
    columns["sma_10_50_ratio"] = sma[10] / sma[50]
    return columns


def _macd_features(prices: pd.DataFrame) -> Columns:
    """MACD(12, 26, 9) line, signal and histogram as fractions of the close."""
    close = prices["close"]
    outputs = talib.MACD(
        close.to_numpy(dtype=np.float64), fastperiod=12, slowperiod=26, signalperiod=9
    )
    names = ("macd", "macd_signal", "macd_hist")
    return {
        name: _as_series(values, close.index) / close
        for name, values in zip(names, outputs, strict=True)
    }


def _oscillator_features(prices: pd.DataFrame) -> Columns:
    """RSI, Stochastic %K/%D and ADX (0-100 scale), ROC as a fraction."""
    high, low, close = _arrays(prices)
    index = prices.index
    slow_k, slow_d = talib.STOCH(
        high, low, close, fastk_period=INDICATOR_PERIOD, slowk_period=3, slowd_period=3
    )
    columns: Columns = {
        "rsi_14": _as_series(talib.RSI(close, INDICATOR_PERIOD), index),
        "stoch_k": _as_series(slow_k, index),
        "stoch_d": _as_series(slow_d, index),
        "adx_14": _as_series(talib.ADX(high, low, close, INDICATOR_PERIOD), index),
    }
    for n in ROC_WINDOWS:
        columns[f"roc_{n}"] = _as_series(talib.ROCP(close, n), index)
    return columns


def _band_features(prices: pd.DataFrame) -> Columns:
    """Bollinger %B and band width, ATR(14) as a fraction of the close."""
    high, low, close = _arrays(prices)
    index = prices.index
    bands = talib.BBANDS(close, BOLLINGER_PERIOD, nbdevup=2.0, nbdevdn=2.0)
    upper, middle, lower = (_as_series(band, index) for band in bands)
    atr = _as_series(talib.ATR(high, low, close, INDICATOR_PERIOD), index)
    return {
        "bb_percent_b": _safe_ratio(prices["close"] - lower, upper - lower, fill=0.5),
        "bb_width": (upper - lower) / middle,
        "atr_14_norm": atr / prices["close"],
    }


def _volume_features(prices: pd.DataFrame) -> Columns:
    """Net on-balance volume of the last days over their total volume (-1..1).

    Zero total volume (days without volume data) gives 0, not NaN.
    """
    _, _, close = _arrays(prices)
    volume = prices["volume"]
    obv = _as_series(talib.OBV(close, volume.to_numpy(dtype=np.float64)), prices.index)
    total = volume.rolling(OBV_WINDOW).sum()
    return {"obv_change_10": _safe_ratio(obv.diff(OBV_WINDOW), total, fill=0.0)}


_FEATURE_GROUPS: tuple[Callable[[pd.DataFrame], Columns], ...] = (
    _return_features,
    _bar_features,
    _average_features,
    _macd_features,
    _oscillator_features,
    _band_features,
    _volume_features,
)


def compute_indicators(prices: pd.DataFrame) -> pd.DataFrame:
    """Compute the causal technical features of every price row.

    Args:
        prices: The standard price frame (``date`` index, float64 ``open``,
            ``high``, ``low``, ``close``, ``volume``).

    Returns:
        A frame on the same index with the float64 columns ``FEATURE_COLUMNS``
        in that order. The feature of date ``t`` uses rows up to ``t`` only;
        the first rows (up to ``LONGEST_WINDOW - 1``) hold NaN while the
        indicators warm up. Returns and ratios are fractions, RSI, Stochastic
        and ADX are on their usual 0-100 scale, volatility is annualised.

    Raises:
        FeatureError: Columns are missing, prices hold NaN, or dates are not
            ascending and unique.
    """
    _check_prices(prices)

    columns: Columns = {}
    for group in _FEATURE_GROUPS:
        columns.update(group(prices))
    features = pd.DataFrame(columns, index=prices.index)[list(FEATURE_COLUMNS)]

    logger.info(
        "Computed %d features for %d price rows", features.shape[1], len(features)
    )
    return features.astype(np.float64)


def _check_horizon(horizon: int) -> None:
    """Raise FeatureError unless ``horizon`` is a positive number of rows."""
    if horizon < 1:
        raise FeatureError(
            f"horizon {horizon!r} is not a positive number of trading days; "
            "use 1 or more"
        )


def make_labels(close: pd.Series[float], *, horizon: int = 1) -> pd.DataFrame:
    """Label each date with the return and direction ``horizon`` rows ahead.

    Args:
        close: Float64 close prices on the ``date`` index, ascending.
        horizon: How many trading days (rows) ahead the label looks.

    Returns:
        A frame on the index of ``close`` with float64 columns
        ``forward_return`` (``close[t + horizon] / close[t] - 1``) and
        ``target`` (1.0 if that return is positive, else 0.0). Both are NaN
        in the last ``horizon`` rows, whose future is unknown.

    Raises:
        FeatureError: ``horizon`` is smaller than 1.
    """
    _check_horizon(horizon)

    forward_return = close.shift(-horizon) / close - 1.0
    target = (forward_return > 0).astype(np.float64).where(forward_return.notna())
    labels = pd.DataFrame(
        {FORWARD_RETURN_COLUMN: forward_return, TARGET_COLUMN: target},
        index=close.index,
    )

    logger.info(
        "Labelled %d of %d rows with horizon %d",
        int(target.notna().sum()),
        len(labels),
        horizon,
    )
    return labels


def minimum_rows(horizon: int) -> int:
    """Return how many price rows ``build_feature_frame`` needs at least."""
    return LONGEST_WINDOW + horizon + MIN_LABELLED_ROWS


def _check_row_count(rows: int, horizon: int) -> None:
    """Raise FeatureError when ``rows`` price rows cannot fill the feature frame."""
    needed = minimum_rows(horizon)
    if rows < needed:
        raise FeatureError(
            f"{rows} price rows are too few to build features: at least "
            f"{needed} are needed ({LONGEST_WINDOW}-day warm-up, {horizon} "
            f"unlabelled and {MIN_LABELLED_ROWS} labelled rows); load more history"
        )


def build_feature_frame(prices: pd.DataFrame, *, horizon: int = 1) -> pd.DataFrame:
    """Build the model frame: features and labels, warm-up rows dropped.

    Args:
        prices: The standard price frame (see ``compute_indicators``).
        horizon: How many trading days ahead the labels look.

    Returns:
        A frame on the ``date`` index with the float64 columns
        ``FEATURE_COLUMNS`` (no NaN), ``forward_return`` and ``target``. The
        last ``horizon`` rows have NaN labels: they are the rows to predict.

    Raises:
        FeatureError: ``horizon`` is smaller than 1, the prices are unusable,
            or they have fewer than ``minimum_rows(horizon)`` rows.
    """
    _check_horizon(horizon)
    _check_row_count(len(prices), horizon)

    features = compute_indicators(prices)
    labels = make_labels(prices["close"], horizon=horizon)
    complete = features.notna().all(axis=1)
    frame = pd.concat([features, labels], axis=1).loc[complete]

    logger.info(
        "Built feature frame: %d rows kept, %d warm-up rows dropped, %d to predict",
        len(frame),
        int((~complete).sum()),
        int(frame[TARGET_COLUMN].isna().sum()),
    )
    return frame


def labelled_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of a feature frame whose ``target`` is known."""
    return frame.loc[frame[TARGET_COLUMN].notna()]


def latest_rows(frame: pd.DataFrame, *, count: int = 1) -> pd.DataFrame:
    """Return the ``count`` newest rows of a feature frame, labelled or not.

    Args:
        frame: A frame from ``build_feature_frame`` (ascending ``date`` index).
        count: How many of the newest dates to return.

    Returns:
        The last ``count`` rows with every column, in date order.

    Raises:
        FeatureError: ``count`` is below 1 or above the number of rows.
    """
    if not 1 <= count <= len(frame):
        raise FeatureError(
            f"count {count!r} must be between 1 and the {len(frame)} rows of "
            "the feature frame"
        )
    return frame.iloc[-count:]
