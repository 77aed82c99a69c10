"""Turn up-move probabilities into BUY, SELL or HOLD signal rows."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from goldsignals.errors import FeatureError, ModelConfigError
from goldsignals.features import FEATURE_COLUMNS
from goldsignals.modeling import up_probability

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    """The registered model version that produced a batch of signals."""

    name: str
    version: str
    run_id: str | None
    metric: str
    metric_value: float | None
    alias: str | None = None


def feature_row_hash(row: pd.Series[Any]) -> str:
    """SHA-256 of one feature row: its date, the feature names and values.

    Values are hashed as float64 bytes, so the same numbers always give the
    same hash and any change in a single feature gives another.
    """
    values = row[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")
    digest = hashlib.sha256(f"{row.name:%Y-%m-%d}|".encode())
    digest.update("|".join(FEATURE_COLUMNS).encode())
    digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def classify_probabilities(
    probabilities: np.ndarray[Any, Any], *, hold_band: float
) -> list[str]:
    """Map up-move probabilities to signals.

    ``BUY`` when p >= 0.5 + hold_band, ``SELL`` when p <= 0.5 - hold_band,
    otherwise ``HOLD``. With ``hold_band`` 0, p = 0.5 exactly is ``HOLD``.

    Raises:
        ModelConfigError: If ``hold_band`` is outside [0, 0.5).
    """
    if not 0.0 <= hold_band < 0.5:
        raise ModelConfigError(
            f"hold_band {hold_band!r} must lie in [0, 0.5); it is the distance "
            "from 0.5 within which the signal is HOLD"
        )
    signals = np.full(len(probabilities), "HOLD", dtype=object)
    signals[probabilities > 0.5 + hold_band] = "BUY"
    signals[probabilities < 0.5 - hold_band] = "SELL"
    if hold_band > 0:
        signals[np.isclose(probabilities, 0.5 + hold_band)] = "BUY"
        signals[np.isclose(probabilities, 0.5 - hold_band)] = "SELL"
    return [str(value) for value in signals]


def predict_signals(
    model: Any,
    rows: pd.DataFrame,
    *,
    ticker: str,
    model_ref: ModelRef,
    hold_band: float,
    zenml_run_id: str | None = None,
    last_price_date: date | None = None,
) -> pd.DataFrame:
    """Predict one signal per row of the newest feature rows.

    Args:
        model: Served model (scaler + classifier) taking unscaled features.
        rows: Feature rows indexed by exchange date (``date``).
        ticker: Ticker the features belong to.
        model_ref: Registry coordinates of ``model``.
        hold_band: Half-width of the HOLD band around 0.5.
        zenml_run_id: Id of the ZenML run writing the signals.
        last_price_date: Last date of the price history the features were
            built from (default: the newest row's date).

    Returns:
        One row per date with the signals table's columns.
    """
    missing = [name for name in FEATURE_COLUMNS if name not in rows.columns]
    if missing or rows.empty:
        raise FeatureError(
            f"cannot predict: {len(rows)} feature rows, missing columns {missing}; "
            "rerun the feature engineering pipeline"
        )

    probabilities = up_probability(model, rows)
    signals = classify_probabilities(probabilities, hold_band=hold_band)

    frame = pd.DataFrame(
        {
            "ticker": ticker,
            "as_of_date": [stamp.date() for stamp in rows.index],
            "model_version": model_ref.version,
            "signal": signals,
            "probability": probabilities.astype("float64"),
            "model_name": model_ref.name,
            "mlflow_run_id": model_ref.run_id,
            "zenml_run_id": zenml_run_id,
            "model_alias": model_ref.alias,
            "last_price_date": last_price_date or rows.index.max().date(),
            "feature_hash": [feature_row_hash(row) for _, row in rows.iterrows()],
        }
    )
    logger.info(
        "Predicted %d signals for %s with %s v%s: %s",
        len(frame),
        ticker,
        model_ref.name,
        model_ref.version,
        frame["signal"].value_counts().to_dict(),
    )
    return frame
