"""Signals table: idempotent upserts in one transaction, validation, queries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from goldsignals.errors import SignalStoreError
from goldsignals.signal_store import (
    count_signals,
    create_signal_engine,
    downgrade_schema,
    migrate_schema,
    read_latest_signals,
    redacted_url,
    signals_table,
    write_signals,
)
from tests.helpers import (
    latest_view_definition,
    latest_view_rows,
    rewritten_day_rows,
    signal_row,
)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_signal_engine(f"sqlite:///{tmp_path / 'db' / 'signals.db'}")
    yield engine
    engine.dispose()


def test_write_signals_same_day_twice_replaces_row(engine: Engine) -> None:
    day = dt.date(2026, 8, 6)

    write_signals(engine, [signal_row(day, probability=0.61)])
    write_signals(engine, [signal_row(day, probability=0.30, signal="SELL")])

    stored = read_latest_signals(engine)
    assert count_signals(engine) == 1
    assert stored.loc[0, "signal"] == "SELL"
    assert stored.loc[0, "probability"] == pytest.approx(0.30)


def test_write_signals_new_model_version_adds_row(engine: Engine) -> None:
    day = dt.date(2026, 8, 6)

    write_signals(engine, [signal_row(day, version="1"), signal_row(day, version="2")])

    assert count_signals(engine, as_of=day) == 2


def test_write_signals_bad_row_writes_nothing(engine: Engine) -> None:
    rows = [
        signal_row(dt.date(2026, 8, 5)),
        signal_row(dt.date(2026, 8, 6), signal="MAYBE"),
    ]

    with pytest.raises(SignalStoreError, match=r"2026-08-06: signal 'MAYBE'"):
        write_signals(engine, rows)

    assert count_signals(engine) == 0


def test_write_signals_probability_out_of_range_rejected(engine: Engine) -> None:
    with pytest.raises(SignalStoreError, match=r"probability 1\.5"):
        write_signals(engine, [signal_row(dt.date(2026, 8, 6), probability=1.5)])


def test_write_signals_database_error_rolls_back_batch(engine: Engine) -> None:
    rows = [
        signal_row(dt.date(2026, 8, 5)),
        signal_row(dt.date(2026, 8, 6), ticker=None),
    ]

    with pytest.raises(SignalStoreError, match="rolled back"):
        write_signals(engine, rows)

    assert count_signals(engine) == 0


def test_write_signals_empty_batch_is_noop(engine: Engine) -> None:
    assert write_signals(engine, []) == 0


def test_read_latest_signals_newest_first_and_filtered(engine: Engine) -> None:
    days = [dt.date(2026, 8, d) for d in (3, 4, 5)]
    write_signals(engine, [signal_row(day) for day in days])
    write_signals(engine, [signal_row(days[0], ticker="GLD")])

    newest = read_latest_signals(engine, ticker="GC=F", limit=2)

    assert list(newest["as_of_date"]) == [days[2], days[1]]
    assert set(newest["ticker"]) == {"GC=F"}


def test_create_signal_engine_unreachable_names_host_not_password() -> None:
    url = "postgresql+psycopg2://gs:s3cret@127.0.0.1:1/goldsignals?connect_timeout=2"

    with pytest.raises(SignalStoreError, match=r"127\.0\.0\.1:1/goldsignals") as info:
        create_signal_engine(url)

    assert "s3cret" not in str(info.value)


def test_redacted_url_hides_password() -> None:
    assert "***" in redacted_url("postgresql://u:pw@h/db")


def test_create_signal_engine_missing_driver_named() -> None:
    url = "postgresql+nosuchdriver://u:pw@127.0.0.1/db"

    with pytest.raises(SignalStoreError, match=r"no database driver.*sqlite:///"):
        create_signal_engine(url)


def test_latest_signals_view_same_day_keeps_later_written(engine: Engine) -> None:
    old, new = dt.date(2026, 8, 5), dt.date(2026, 8, 6)
    write_signals(engine, [signal_row(old), signal_row(new, version="1")])

    write_signals(engine, [signal_row(new, version="2", signal="SELL")])
    after_new_champion = latest_view_rows(engine)
    write_signals(engine, [signal_row(new, version="1")])

    assert after_new_champion == [("GC=F", "2026-08-06", "2")]
    assert latest_view_rows(engine) == [("GC=F", "2026-08-06", "1")]


def test_latest_signals_view_same_write_keeps_later_row(engine: Engine) -> None:
    day = dt.date(2026, 8, 6)

    write_signals(engine, [signal_row(day, version="2"), signal_row(day, version="1")])

    assert latest_view_rows(engine) == [("GC=F", "2026-08-06", "1")]


def test_latest_signals_view_two_tickers_one_row_each(engine: Engine) -> None:
    old, new = dt.date(2026, 8, 5), dt.date(2026, 8, 6)
    write_signals(engine, [signal_row(old), signal_row(new)])
    write_signals(engine, [signal_row(old, ticker="GLD", version="1")])
    write_signals(engine, [signal_row(old, ticker="GLD", version="2")])

    assert latest_view_rows(engine) == [
        ("GC=F", "2026-08-06", "1"),
        ("GLD", "2026-08-05", "2"),
    ]


def test_latest_signals_view_reads_index_in_order(engine: Engine) -> None:
    with engine.connect() as connection:
        plan = connection.execute(
            sa.text("EXPLAIN QUERY PLAN SELECT * FROM latest_signals")
        ).fetchall()

    steps = [str(step[3]) for step in plan]
    assert "SCAN s USING INDEX ix_signals_ticker_latest" in steps
    assert not [step for step in steps if "TEMP B-TREE" in step]


def test_latest_signals_migration_keeps_rows_and_round_trips(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate_schema(engine, "0003")
    with engine.begin() as connection:
        connection.execute(signals_table.insert(), rewritten_day_rows())
    before = (latest_view_definition(engine), latest_view_rows(engine))
    indexes = sa.inspect(engine).get_indexes("signals")
    columns = [c["name"] for c in sa.inspect(engine).get_columns("latest_signals")]

    migrate_schema(engine)
    upgraded = latest_view_rows(engine)
    upgraded_columns = sa.inspect(engine).get_columns("latest_signals")
    downgrade_schema(engine, "0003")
    downgraded = (latest_view_definition(engine), latest_view_rows(engine))
    downgraded_indexes = sa.inspect(engine).get_indexes("signals")
    migrate_schema(engine)
    again = latest_view_rows(engine)
    stored = count_signals(engine)
    engine.dispose()

    assert upgraded == [("GC=F", "2026-08-06", "1"), ("GLD", "2026-08-05", "2")]
    assert [c["name"] for c in upgraded_columns] == columns
    assert downgraded == before
    assert downgraded_indexes == indexes
    assert len(before[1]) == 4
    assert again == upgraded
    assert stored == 5


def test_migrations_down_and_up_again(engine: Engine) -> None:
    downgrade_schema(engine)

    assert not sa.inspect(engine).has_table("signals")

    migrate_schema(engine)
    assert sa.inspect(engine).has_table("signals")
    assert "latest_signals" in sa.inspect(engine).get_view_names()
