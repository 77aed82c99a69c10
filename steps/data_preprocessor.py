"""ZenML step ``data_preprocessor``: validated, cleaned prices."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from goldsignals.cleaning import clean_prices


@step(enable_cache=False)
def data_preprocessor(
    prices: pd.DataFrame, repair_ohlc: bool = True
) -> Annotated[pd.DataFrame, "clean_prices"]:
    """Drop empty and weekend rows, validate, repair out-of-range bars.

    The counts and first dates of dropped rows and repaired bars are logged
    and recorded in the step's metadata; a bar further than
    ``goldsignals.cleaning.MAX_OHLC_GAP`` outside high-low fails the run.

    Args:
        prices: Standard price frame from ``data_loader``.
        repair_ohlc: Repair bars whose open or close lies outside high-low
            (otherwise such bars fail the run).

    Returns:
        Standard price frame without NaN prices.
    """
    cleaned, report = clean_prices(prices, repair_ohlc=repair_ohlc)
    log_metadata(metadata={k: str(v) for k, v in asdict(report).items()})
    return cleaned
