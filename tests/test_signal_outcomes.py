"""Realised outcomes of issued signals and the live track record.

Also the lineage migration applied to a table that already holds rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from goldsignals.signal_store import (
    create_signal_engine,
    downgrade_schema,
    migrate_schema,
    read_latest_signals,
    track_record,
    write_signals,
)
from tests.helpers import signal_row

DAYS = pd.to_datetime(["2026-08-03", "2026-08-04", "2026-08-05", "2026-08-06"])
CLOSES = pd.Series([100.0, 102.0, 99.96, 101.0], index=DAYS)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_signal_engine(f"sqlite:///{tmp_path / 'signals.db'}")
    yield engine
    engine.dispose()


def _outcomes(engine: Engine) -> dict[str, tuple[float | None, bool | None]]:
    frame = read_latest_signals(engine, limit=100)
    return {
        str(row.as_of_date): (
            None if pd.isna(row.realised_return) else round(row.realised_return, 6),
            None if pd.isna(row.outcome_correct) else bool(row.outcome_correct),
        )
        for row in frame.itertuples()
    }


def test_outcomes_filled_once_the_next_close_is_known(engine: Engine) -> None:
    rows = [
        signal_row(dt.date(2026, 8, 3), signal="BUY"),
        signal_row(dt.date(2026, 8, 4), signal="BUY"),
        signal_row(dt.date(2026, 8, 5), signal="HOLD", probability=0.5),
    ]
    write_signals(engine, rows, closes=CLOSES.iloc[:2])
    after_two_days = _outcomes(engine)

    write_signals(engine, [signal_row(dt.date(2026, 8, 6))], closes=CLOSES)

    assert after_two_days == {
        "2026-08-03": (0.02, True),
        "2026-08-04": (None, None),
        "2026-08-05": (None, None),
    }
    assert _outcomes(engine) == {
        "2026-08-03": (0.02, True),
        "2026-08-04": (-0.02, False),
        "2026-08-05": (round(101.0 / 99.96 - 1, 6), None),
        "2026-08-06": (None, None),
    }


def test_rewriting_a_day_keeps_its_outcome(engine: Engine) -> None:
    write_signals(engine, [signal_row(dt.date(2026, 8, 3))], closes=CLOSES)

    write_signals(engine, [signal_row(dt.date(2026, 8, 3), probability=0.7)])

    assert _outcomes(engine)["2026-08-03"] == (0.02, True)


def test_track_record_follows_the_newest_signal_per_day(engine: Engine) -> None:
    write_signals(
        engine,
        [
            signal_row(dt.date(2026, 8, 3), signal="SELL"),
            signal_row(dt.date(2026, 8, 4), signal="SELL"),
            signal_row(dt.date(2026, 8, 5), signal="HOLD", probability=0.5),
        ],
    )
    write_signals(
        engine, [signal_row(dt.date(2026, 8, 3), signal="BUY")], closes=CLOSES
    )

    record = track_record(engine)

    assert (record.signals, record.calls) == (3, 2)
    assert record.hit_rate == pytest.approx(1.0)
    assert record.cumulative_return == pytest.approx(1.02 * 1.02 - 1)
    assert (record.first_date, record.last_date) == (
        dt.date(2026, 8, 3),
        dt.date(2026, 8, 5),
    )


def test_track_record_without_outcomes_is_empty(engine: Engine) -> None:
    write_signals(engine, [signal_row(dt.date(2026, 8, 6))])

    record = track_record(engine)

    assert (record.signals, record.calls, record.cumulative_return) == (0, 0, 0.0)


def test_lineage_migration_keeps_existing_rows(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate_schema(engine, "0001")
    old = [signal_row(dt.date(2026, 8, day)) for day in (3, 4, 5)]
    insert = sa.text(
        "INSERT INTO signals (ticker, as_of_date, model_version, signal, "
        "probability, model_name, mlflow_run_id, zenml_run_id, created_at) "
        "VALUES (:ticker, :as_of_date, :model_version, :signal, :probability, "
        ":model_name, :mlflow_run_id, :zenml_run_id, '2026-08-07 00:00:00')"
    )
    with engine.begin() as connection:
        connection.execute(insert, old)

    migrate_schema(engine)
    upgraded = read_latest_signals(engine, limit=10)
    downgrade_schema(engine, "0001")
    with engine.connect() as connection:
        after_downgrade = connection.execute(
            sa.text("SELECT count(*) FROM signals")
        ).scalar_one()
    engine.dispose()

    assert sorted(str(day) for day in upgraded["as_of_date"]) == [
        "2026-08-03",
        "2026-08-04",
        "2026-08-05",
    ]
    assert upgraded["feature_hash"].isna().all()
    assert after_downgrade == 3
