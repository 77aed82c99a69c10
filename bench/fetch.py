"""The daily incremental fetch on stored histories of different lengths.

``goldsignals.prices.load_prices`` runs exactly as ``data_loader`` runs it
for Yahoo: read the stored parquet history, ask the fetcher for the days
after its last date, check and merge the new bar, write the history back.
Only the fetcher is faked (as in ``tests/test_prices.py``): it returns one
new trading day without touching the network.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import psutil

from bench.cases import history_slice
from bench.measure import MB, BenchError, Measurement
from goldsignals.prices import (
    PRICE_COLUMNS,
    Fetcher,
    load_prices,
    read_price_csv,
    write_history,
)

logger = logging.getLogger(__name__)

FETCH = "incremental fetch"


def next_weekday(day: dt.date) -> dt.date:
    """The first Monday-to-Friday date after ``day``."""
    following = day + dt.timedelta(days=1)
    while following.weekday() >= 5:
        following += dt.timedelta(days=1)
    return following


def after_close(day: dt.date) -> dt.datetime:
    """23:00 UTC of ``day``: after the New York close, so ``day`` is closed."""
    return dt.datetime.combine(day, dt.time(23, 0), tzinfo=dt.UTC)


def one_day_fetcher(
    day: dt.date, close: float, asked: list[tuple[dt.date, dt.date | None]]
) -> Fetcher:
    """A fetcher that returns a single bar dated ``day`` at ``close``.

    Every ``(start, end)`` it is asked for is appended to ``asked``.
    """

    def fetch(ticker: str, start: dt.date, end: dt.date | None) -> pd.DataFrame:
        asked.append((start, end))
        index = pd.DatetimeIndex([pd.Timestamp(day)], name="date").as_unit("ns")
        values = {name: [close] for name in PRICE_COLUMNS}
        return pd.DataFrame(values, index=index).assign(volume=[1000.0])

    return fetch


def _load_once(
    history: Path,
    stored: bytes,
    day: dt.date,
    close: float,
    asked: list[tuple[dt.date, dt.date | None]],
) -> float:
    """Restore the stored history, then time one load; returns CPU seconds."""
    history.write_bytes(stored)
    cpu = time.process_time()
    loaded = load_prices(
        ticker="GC=F",
        source="yfinance",
        history_path=history,
        history_start=dt.date(2000, 1, 1),
        now=after_close(day),
        fetcher=one_day_fetcher(day, close, asked),
    )
    if loaded.fetched_rows != 1 or loaded.last_date != day:
        raise BenchError(
            f"incremental fetch of {day} into {history} gave {loaded.fetched_rows} "
            f"rows ending {loaded.last_date}"
        )
    return time.process_time() - cpu


def measure_fetch(source: Path, work: Path, *, years: int, calls: int) -> Measurement:
    """Median of ``calls`` incremental loads on a ``years``-year history.

    Before each call the stored history is restored (not timed), so every
    call appends the same new day to the same stored rows.
    """
    csv, _ = history_slice(source, years, work / f"prices_{years}y.csv")
    history = work / f"history_{years}y.parquet"
    prices = read_price_csv(csv)
    write_history(history, prices)
    stored = history.read_bytes()
    day = next_weekday(pd.Timestamp(prices.index[-1]).date())
    close = float(prices["close"].iloc[-1])

    asked: list[tuple[dt.date, dt.date | None]] = []
    _load_once(history, stored, day, close, asked)
    walls, cpus = [], []
    for _ in range(calls):
        started = time.perf_counter()
        cpus.append(_load_once(history, stored, day, close, asked))
        walls.append(time.perf_counter() - started)
    asked_days = {(end - start).days if end else None for start, end in asked}
    rss = psutil.Process().memory_info().rss / MB
    logger.info(
        "Incremental fetch on %d stored rows: median %.4f s over %d calls",
        len(prices),
        statistics.median(walls),
        calls,
    )
    return Measurement(
        FETCH,
        f"{years}-year stored history",
        statistics.median(walls),
        statistics.median(cpus),
        rss,
        {
            "stored_rows": len(prices),
            "parquet_bytes": len(stored),
            "calls": calls,
            "wall_min_s": min(walls),
            "wall_max_s": max(walls),
            "asked_from": str(asked[-1][0]),
            "asked_days": sorted(d for d in asked_days if d is not None),
            "rss_is": "resident set of the measuring process after the calls",
        },
    )


def measure_incremental_fetch(
    source: Path, work: Path, *, years: Sequence[int], calls: int
) -> list[Measurement]:
    """:func:`measure_fetch` for each history length in ``years``."""
    work.mkdir(parents=True, exist_ok=True)
    return [measure_fetch(source, work, years=y, calls=calls) for y in years]
