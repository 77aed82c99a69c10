"""The price history in the ``prices`` table (SQLite and a real Postgres)."""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from goldsignals import postgres_host
from goldsignals.errors import SignalStoreError
from goldsignals.postgres_host import PostgresHost
from goldsignals.price_store import ParquetHistory, SqlHistory, empty_frame
from goldsignals.prices import PRICE_COLUMNS, load_prices
from goldsignals.signal_store import create_signal_engine
from tests.helpers import read_only_engine


def _bars(dates: list[str], close: float = 100.0) -> pd.DataFrame:
    index = pd.DatetimeIndex(dates, name="date").as_unit("ns")
    values = {"open": close, "high": close + 1, "low": close - 1, "close": close}
    frame = pd.DataFrame(values | {"volume": 10.0}, index=index)
    return frame[list(PRICE_COLUMNS)].astype("float64")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_signal_engine(f"sqlite:///{tmp_path / 'signals.db'}")
    yield engine
    engine.dispose()


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(sa.text("SELECT count(*) FROM prices")).scalar_one()
        )


def test_sql_history_round_trip_keeps_the_standard_frame(engine: Engine) -> None:
    history = SqlHistory(engine, "GC=F")
    frame = _bars(["2024-01-02", "2024-01-03", "2024-01-04"])
    frame.loc["2024-01-03", "volume"] = float("nan")

    assert history.read().equals(empty_frame())
    history.write(frame)

    pd.testing.assert_frame_equal(SqlHistory(engine, "GC=F").read(), frame)
    assert SqlHistory(engine, "SI=F").read().empty


def test_sql_history_writes_only_new_or_changed_bars(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    days = [str(day.date()) for day in pd.bdate_range("2020-01-01", periods=300)]
    SqlHistory(engine, "GC=F").write(_bars(days))
    history = SqlHistory(engine, "GC=F")
    stored = history.read()
    changed = pd.concat([stored, _bars(["2021-02-26"], 120.0)])
    changed.loc[pd.Timestamp(days[-1]), "close"] = 100.5

    with caplog.at_level(logging.INFO, logger="goldsignals.price_store"):
        history.write(changed)

    assert "Wrote 2 new or changed bars" in caplog.text
    assert _count(engine) == 301
    assert SqlHistory(engine, "GC=F").read().loc[days[-1], "close"] == 100.5


def test_sql_history_never_deletes_a_stored_date(engine: Engine) -> None:
    SqlHistory(engine, "GC=F").write(_bars(["2024-01-02", "2024-01-03"]))

    SqlHistory(engine, "GC=F").write(_bars(["2024-01-03"], 101.0))

    assert _count(engine) == 2


def test_sql_history_write_is_all_or_nothing(engine: Engine) -> None:
    SqlHistory(engine, "GC=F").write(_bars(["2024-01-02"]))
    bad = _bars(["2024-01-02", "2024-01-03", "2024-01-04"], 101.0)
    bad.loc["2024-01-04", "close"] = 0.0

    with pytest.raises(SignalStoreError, match="nothing was stored"):
        SqlHistory(engine, "GC=F").write(bad)

    stored = SqlHistory(engine, "GC=F").read()
    assert [f"{day:%Y-%m-%d}" for day in stored.index] == ["2024-01-02"]
    assert stored["close"].tolist() == [100.0]


@pytest.mark.parametrize("store", ["sql", "parquet"])
def test_history_bar_before_is_the_newest_earlier_bar_with_a_close(
    engine: Engine, tmp_path: Path, store: str
) -> None:
    frame = _bars(["2024-01-02", "2024-01-03", "2024-01-05"])
    frame.loc["2024-01-03", "close"] = 101.0
    history: SqlHistory | ParquetHistory = (
        SqlHistory(engine, "GC=F")
        if store == "sql"
        else ParquetHistory(tmp_path / "GC_F.parquet")
    )
    history.write(frame)
    SqlHistory(engine, "SI=F").write(_bars(["2024-01-04"], 20.0))

    bar = history.bar_before(datetime.date(2024, 1, 5))
    bar_after_gap = history.bar_before(datetime.date(2024, 1, 4))

    pd.testing.assert_frame_equal(bar, frame.loc[["2024-01-03"]])
    pd.testing.assert_frame_equal(bar_after_gap, bar)
    assert history.bar_before(datetime.date(2024, 1, 2)).empty


def test_sql_history_takes_over_an_earlier_parquet_history(
    engine: Engine, tmp_path: Path
) -> None:
    legacy = tmp_path / "GC_F.parquet"
    ParquetHistory(legacy).write(_bars(["2024-01-02", "2024-01-03"]))
    fetched = _bars(["2024-01-04"])

    def fetch(ticker: str, start: datetime.date, end: object) -> pd.DataFrame:
        assert start == datetime.date(2024, 1, 4)
        return fetched

    loaded = load_prices(
        ticker="GC=F",
        source="yfinance",
        history=SqlHistory(engine, "GC=F", legacy=legacy),
        history_start=datetime.date(2000, 1, 1),
        now=datetime.datetime(2024, 1, 5, 12, tzinfo=datetime.UTC),
        fetcher=fetch,
    )

    assert loaded.fetched_rows == 1
    assert _count(engine) == 3


@pytest.mark.postgres
def test_postgres_prices_readable_by_the_read_only_role(
    postgres: PostgresHost,
) -> None:
    name = f"prices_{uuid.uuid4().hex[:8]}"
    postgres_host.psql(postgres, f"CREATE DATABASE {name}")
    engine = create_signal_engine(postgres.url(name))
    SqlHistory(engine, "GC=F").write(_bars(["2024-01-02", "2024-01-03"]))
    read_only = read_only_engine(postgres, name)

    with read_only.connect() as connection:
        rows = connection.execute(sa.text("SELECT count(*) FROM prices")).scalar_one()
    with pytest.raises(SignalStoreError, match="permission denied"):
        SqlHistory(read_only, "GC=F").write(_bars(["2024-01-04"]))

    assert rows == 2
    pd.testing.assert_frame_equal(
        SqlHistory(engine, "GC=F").read(), _bars(["2024-01-02", "2024-01-03"])
    )
    read_only.dispose()
    engine.dispose()
