"""The signals store against a real PostgreSQL server started by the tests."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ProgrammingError

from goldsignals import postgres_host
from goldsignals.errors import SignalStoreError
from goldsignals.postgres_host import PostgresHost
from goldsignals.signal_store import (
    count_signals,
    create_signal_engine,
    downgrade_schema,
    migrate_schema,
    read_latest_signals,
    signals_table,
    write_signals,
)
from tests.helpers import (
    latest_view_definition,
    latest_view_rows,
    read_only_engine,
    rewritten_day_rows,
    signal_row,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(postgres: PostgresHost) -> str:
    name = f"signals_{uuid.uuid4().hex[:8]}"
    postgres_host.psql(postgres, f"CREATE DATABASE {name}")
    return postgres.url(name)


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    engine = create_signal_engine(database)
    yield engine
    engine.dispose()


def test_migrations_up_from_empty_and_down_again(database: str) -> None:
    engine = sa.create_engine(database)

    migrate_schema(engine)
    inspector = sa.inspect(engine)
    assert inspector.has_table("signals")
    assert "latest_signals" in inspector.get_view_names()
    downgrade_schema(engine)

    inspector = sa.inspect(engine)
    assert not inspector.has_table("signals")
    assert inspector.get_view_names() == []
    engine.dispose()


def test_write_signals_twice_keeps_one_row(engine: Engine) -> None:
    write_signals(engine, [signal_row(probability=0.7)])
    write_signals(engine, [signal_row(probability=0.2, signal="SELL")])

    stored = read_latest_signals(engine)

    assert count_signals(engine) == 1
    assert stored.loc[0, "signal"] == "SELL"


def test_concurrent_writers_same_day_leave_one_row_per_key(database: str) -> None:
    def write(worker: int) -> int:
        engine = create_signal_engine(database)
        try:
            rows = [
                signal_row(version="1", probability=worker / 10),
                signal_row(version="2"),
            ]
            return write_signals(engine, rows)
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=6) as pool:
        written = list(pool.map(write, range(6)))

    engine = sa.create_engine(database)
    with engine.connect() as connection:
        keys = connection.execute(
            sa.text("SELECT ticker, as_of_date, model_version FROM signals")
        ).fetchall()
    engine.dispose()
    assert written == [2] * 6
    assert sorted(str(key[2]) for key in keys) == ["1", "2"]


def test_read_only_role_can_read_but_not_write(
    postgres: PostgresHost, database: str, engine: Engine
) -> None:
    write_signals(engine, [signal_row()])
    name = sa.make_url(database).database
    read_only = read_only_engine(postgres, name)

    with read_only.connect() as connection:
        seen = connection.execute(sa.text("SELECT count(*) FROM latest_signals"))
        assert seen.scalar_one() == 1
    with pytest.raises(SignalStoreError, match="permission denied for table signals"):
        write_signals(read_only, [signal_row(version="9")])
    with (
        read_only.begin() as connection,
        pytest.raises(ProgrammingError, match="permission denied"),
    ):
        connection.execute(sa.text("DELETE FROM signals"))
    read_only.dispose()


def test_latest_signals_view_same_day_keeps_later_written(engine: Engine) -> None:
    write_signals(engine, [signal_row(version="1")])

    write_signals(engine, [signal_row(version="2", signal="SELL")])
    after_new_champion = latest_view_rows(engine)
    write_signals(engine, [signal_row(version="1")])

    assert after_new_champion == [("GC=F", "2026-08-06", "2")]
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


def test_latest_signals_migration_keeps_rows_and_round_trips(database: str) -> None:
    engine = sa.create_engine(database)
    migrate_schema(engine, "0003")
    with engine.begin() as connection:
        connection.execute(signals_table.insert(), rewritten_day_rows())
    before = (latest_view_definition(engine), latest_view_rows(engine))
    indexes = sa.inspect(engine).get_indexes("signals")
    columns = sa.inspect(engine).get_columns("latest_signals")

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
    assert [(c["name"], str(c["type"])) for c in upgraded_columns] == [
        (c["name"], str(c["type"])) for c in columns
    ]
    assert downgraded == before
    assert downgraded_indexes == indexes
    assert len(before[1]) == 4
    assert again == upgraded
    assert stored == 5


def test_latest_signals_view_reads_index_in_order(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = connection.execute(
            sa.text("EXPLAIN (COSTS OFF) SELECT * FROM latest_signals")
        ).scalars()
        steps = [str(step).strip(" ->") for step in plan]

    assert "Index Scan using ix_signals_ticker_latest on signals s" in steps
    assert not [step for step in steps if "Sort" in step]


def test_latest_signals_migration_reader_can_select_not_write(
    postgres: PostgresHost, database: str
) -> None:
    engine = sa.create_engine(database)
    migrate_schema(engine, "0003")
    with engine.begin() as connection:
        connection.execute(signals_table.insert(), rewritten_day_rows())
    read_only = read_only_engine(postgres, sa.make_url(database).database)

    migrate_schema(engine)
    engine.dispose()

    assert latest_view_rows(read_only) == [
        ("GC=F", "2026-08-06", "1"),
        ("GLD", "2026-08-05", "2"),
    ]
    with pytest.raises(SignalStoreError, match="permission denied for table signals"):
        write_signals(read_only, [signal_row(version="9")])
    with (
        read_only.begin() as connection,
        pytest.raises(ProgrammingError, match="permission denied"),
    ):
        connection.execute(sa.text("DELETE FROM signals"))
    read_only.dispose()
