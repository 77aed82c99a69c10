"""ZenML step ``feature_generation``: technical indicators and labels."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from goldsignals.features import build_feature_frame


@step(enable_cache=False)
def feature_generation(
    prices: pd.DataFrame, horizon: int = 1
) -> Annotated[pd.DataFrame, "feature_frame"]:
    """Compute causal indicators and the next-``horizon``-day direction label.

    Args:
        prices: Clean standard price frame.
        horizon: Label horizon in trading days.

    Returns:
        Frame indexed by exchange date with FEATURE_COLUMNS,
        ``forward_return`` and ``target``; the last ``horizon`` rows have no
        label yet and are the rows inference predicts.
    """
    frame = build_feature_frame(prices, horizon=horizon)
    log_metadata(
        metadata={
            "rows": len(frame),
            "first_date": f"{frame.index.min():%Y-%m-%d}",
            "last_date": f"{frame.index.max():%Y-%m-%d}",
            "horizon": horizon,
        }
    )
    return frame
