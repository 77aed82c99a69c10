"""ZenML step ``inference_predict``: signals for the newest dates."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from zenml import get_step_context, step

from goldsignals.config import get_settings
from goldsignals.features import latest_rows
from goldsignals.inference import ModelRef, predict_signals
from steps import require_input_ticker


@step(enable_cache=False)
def inference_predict(
    model: Any,
    model_reference: dict[str, Any],
    features: pd.DataFrame,
    hold_band: float = 0.05,
    latest_dates: int = 1,
) -> Annotated[pd.DataFrame, "signals"]:
    """Predict BUY, SELL or HOLD for the newest ``latest_dates`` exchange dates.

    Args:
        model: Served model from ``select_best_model``.
        model_reference: Its registry coordinates.
        features: Feature frame from the feature engineering pipeline.
        hold_band: HOLD when the up probability is within this of 0.5.
        latest_dates: How many of the newest dates get a signal.

    Returns:
        Signal rows with the signals table's columns.

    Raises:
        TickerMismatchError: The features were built for another ticker.
    """
    require_input_ticker("features")
    rows = latest_rows(features, count=latest_dates)
    return predict_signals(
        model,
        rows,
        ticker=get_settings().ticker,
        model_ref=ModelRef(**model_reference),
        hold_band=hold_band,
        zenml_run_id=str(get_step_context().pipeline_run.id),
        last_price_date=features.index.max().date(),
    )
