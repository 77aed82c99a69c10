"""ZenML step ``signal_writer``: upsert the signals into the database."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from goldsignals.config import get_settings
from goldsignals.signal_store import create_signal_engine, write_signals


@step(enable_cache=False)
def signal_writer(signals: pd.DataFrame) -> Annotated[int, "signals_written"]:
    """Write the batch in one transaction; same day again replaces rows.

    Args:
        signals: Rows from ``inference_predict``.

    Returns:
        How many rows were written.
    """
    engine = create_signal_engine(get_settings().signals_url)
    try:
        written = write_signals(engine, signals.to_dict(orient="records"))
    finally:
        engine.dispose()
    log_metadata(metadata={"signals_written": written})
    return written
