"""The daily incremental fetch on stored histories of different lengths.

``data_loader`` calls ``goldsignals.prices.load_prices``, which is two steps,
timed here apart on the ``prices`` table (SQLite, as in the embedded stack):

- ``update_prices``, the incremental fetch: look up the newest stored date,
  ask the fetcher for the days after it, check the new bar, write it in one
  transaction. It should cost the same whatever the stored history's length.
- ``read_history``: read the whole history back for the features, which
  grows with it by nature.

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
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.cases import history_slice
from bench.measure import MB, BenchError, Measurement
from goldsignals.price_store import SqlHistory, prices_table
from goldsignals.prices import (
    PRICE_COLUMNS,
    Fetcher,
    read_history,
    read_price_csv,
    update_prices,
    write_history,
)
from goldsignals.signal_store import create_signal_engine

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
    engine: Engine,
    day: dt.date,
    close: float,
    asked: list[tuple[dt.date, dt.date | None]],
) -> tuple[float, float, float, float]:
    """Remove ``day``, then time one update and one read of the history.

    Returns:
        Wall and CPU seconds of the update, then of the read.
    """
    with engine.begin() as connection:
        connection.execute(sa.delete(prices_table).where(prices_table.c.date == day))
    history = SqlHistory(engine, "GC=F")
    wall, cpu = time.perf_counter(), time.process_time()
    update = update_prices(
        ticker="GC=F",
        source="yfinance",
        history=history,
        history_start=dt.date(2000, 1, 1),
        now=after_close(day),
        fetcher=one_day_fetcher(day, close, asked),
    )
    update_wall, update_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    prices = read_history(history)
    read_wall, read_cpu = time.perf_counter() - wall, time.process_time() - cpu

    newest = pd.Timestamp(prices.index[-1]).date()
    if update.fetched_rows != 1 or newest != day:
        raise BenchError(
            f"incremental fetch of {day} into {history.name} gave "
            f"{update.fetched_rows} rows ending {newest}"
        )
    return update_wall, update_cpu, read_wall, read_cpu


def measure_fetch(source: Path, work: Path, *, years: int, calls: int) -> Measurement:
    """Median of ``calls`` incremental loads on a ``years``-year history.

    Before each call the new day is deleted again (not timed), so every call
    appends the same new day to the same stored rows.
    """
    csv, _ = history_slice(source, years, work / f"prices_{years}y.csv")
    database = work / f"signals_{years}y.db"
    database.unlink(missing_ok=True)
    engine = create_signal_engine(f"sqlite:///{database}")
    prices = read_price_csv(csv)
    write_history(SqlHistory(engine, "GC=F"), prices)
    day = next_weekday(pd.Timestamp(prices.index[-1]).date())
    close = float(prices["close"].iloc[-1])

    asked: list[tuple[dt.date, dt.date | None]] = []
    _load_once(engine, day, close, asked)
    timings = [_load_once(engine, day, close, asked) for _ in range(calls)]
    engine.dispose()
    walls = [timing[0] for timing in timings]
    cpus = [timing[1] for timing in timings]
    asked_days = {(end - start).days if end else None for start, end in asked}
    rss = psutil.Process().memory_info().rss / MB
    logger.info(
        "Incremental update on %d stored rows: median %.4f s over %d calls",
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
            "database_bytes": database.stat().st_size,
            "calls": calls,
            "wall_min_s": min(walls),
            "wall_max_s": max(walls),
            "read_wall_s": statistics.median(timing[2] for timing in timings),
            "read_cpu_s": statistics.median(timing[3] for timing in timings),
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
