"""ZenML step ``data_loader``: the price history of the configured ticker."""

from __future__ import annotations

import logging
from typing import Annotated

import pandas as pd
from zenml import get_step_context, log_metadata, step

from goldsignals.config import Settings, get_settings
from goldsignals.price_store import SqlHistory
from goldsignals.prices import LoadedPrices, load_prices, yahoo_fetcher
from goldsignals.signal_store import create_signal_engine
from goldsignals.tickers import TICKER_KEY

logger = logging.getLogger(__name__)


@step(enable_cache=False)
def data_loader() -> Annotated[pd.DataFrame, "gold_prices"]:
    """Load prices: incremental Yahoo fetch (or a CSV) merged into the history.

    Ticker, source, file locations, retries, the allowed age of stale
    prices and the largest daily move of a close come from the
    ``GOLDSIGNALS_*`` settings. The history is the
    ``prices`` table of the signals database; only complete bars are stored
    (a session still open is held back). The step's metadata records
    the source, the last price date and whether the data is stale (Yahoo
    unreachable).

    Returns:
        Standard price frame: index ``date`` (exchange dates, ascending,
        unique), float64 columns open, high, low, close, volume.
    """
    settings = get_settings()
    engine = create_signal_engine(settings.signals_url)
    history = SqlHistory(engine, settings.ticker, legacy=settings.history_path)
    try:
        loaded = _load(settings, history)
    finally:
        engine.dispose()

    log_metadata(
        metadata={
            "ticker": settings.ticker,
            "source": loaded.source,
            "last_price_date": loaded.last_date.isoformat(),
            "stale": loaded.stale,
            "rows": len(loaded.prices),
            "fetched_rows": loaded.fetched_rows,
            "history": history.name,
        }
    )
    # On the run too: training and inference check the ticker of what they read.
    log_metadata(
        metadata={TICKER_KEY: settings.ticker},
        run_id_name_or_prefix=get_step_context().pipeline_run.id,
    )
    return loaded.prices


def _load(settings: Settings, history: SqlHistory) -> LoadedPrices:
    return load_prices(
        ticker=settings.ticker,
        source=settings.price_source,
        history=history,
        price_csv=settings.price_csv,
        seed_csv=settings.seed_csv,
        seed_ticker=settings.seed_ticker,
        history_start=settings.history_start,
        fetcher=yahoo_fetcher(
            timeout=settings.yahoo_timeout_seconds,
            cache_dir=settings.home / "cache" / "yfinance",
        ),
        retries=settings.yahoo_retries,
        backoff_seconds=settings.yahoo_backoff_seconds,
        max_age_days=settings.max_price_age_days,
        max_daily_move=settings.max_daily_move,
    )
