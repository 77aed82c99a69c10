"""ZenML step ``signal_writer``: upsert the signals into the database."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from goldsignals.config import get_settings
from goldsignals.signal_store import create_signal_engine, write_signals
from steps import require_input_ticker


@step(enable_cache=False)
def signal_writer(
    signals: pd.DataFrame, prices: pd.DataFrame
) -> Annotated[int, "signals_written"]:
    """Write the batch and the outcomes now known, in one transaction.

    The same day written again replaces its rows. Earlier signals whose next
    close is in ``prices`` get their realised return and whether they were
    right.

    Args:
        signals: Rows from ``inference_predict``.
        prices: The clean price history of the feature engineering run.

    Returns:
        How many rows were written.
    """
    require_input_ticker("prices")
    engine = create_signal_engine(get_settings().signals_url)
    try:
        rows = [
            {str(column): value for column, value in row.items()}
            for row in signals.to_dict(orient="records")
        ]
        written = write_signals(engine, rows, closes=prices["close"])
    finally:
        engine.dispose()
    log_metadata(metadata={"signals_written": written})
    return written
