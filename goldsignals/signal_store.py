"""The signals table: one row per ticker, as-of date and model version.

Written through SQLAlchemy Core, so the same code serves the embedded SQLite
file and Postgres. A batch is written in one transaction as an upsert on the
unique key, so writing the same day again replaces rows and never duplicates.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from goldsignals.errors import SignalStoreError

logger = logging.getLogger(__name__)

SIGNAL_VALUES = ("BUY", "SELL", "HOLD")
KEY_COLUMNS = ("ticker", "as_of_date", "model_version")
OUTCOME_COLUMNS = ("realised_return", "outcome_correct")
POSITIONS = {"BUY": 1.0, "SELL": -1.0, "HOLD": 0.0}
VERSION_TABLE = "goldsignals_alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 7_404_653  # Postgres advisory lock key of schema upgrades

metadata = sa.MetaData()

# The query side of the table; its schema is owned by the Alembic migrations in
# goldsignals/migrations, which also create the view latest_signals.
signals_table = sa.Table(
    "signals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticker", sa.String(32), nullable=False),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("signal", sa.String(4), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("mlflow_run_id", sa.String(64), nullable=True),
    sa.Column("zenml_run_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_alias", sa.String(64), nullable=True),
    sa.Column("last_price_date", sa.Date, nullable=True),
    sa.Column("feature_hash", sa.String(64), nullable=True),
    sa.Column("realised_return", sa.Float, nullable=True),
    sa.Column("outcome_correct", sa.Boolean, nullable=True),
    sa.UniqueConstraint(*KEY_COLUMNS, name="uq_signals_ticker_date_version"),
    sa.CheckConstraint(
        "signal IN ('BUY', 'SELL', 'HOLD')", name="ck_signals_signal_value"
    ),
    sa.CheckConstraint(
        "probability >= 0 AND probability <= 1", name="ck_signals_probability"
    ),
)


def redacted_url(url: str) -> str:
    """Return ``url`` with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r":[^:/@]*@", ":***@", url)


def parse_database_url(url: str) -> sa.URL:
    """Parse ``url``; raise SignalStoreError naming it when it is no database URL."""
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise SignalStoreError(
            f"signals database URL {redacted_url(url)!r} is not a database URL; "
            "set GOLDSIGNALS_SIGNALS_DB_URL to a sqlite:////path/signals.db or "
            "postgresql+psycopg2://user@host:port/database URL, or unset it"
        ) from exc


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate_schema(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (the newest by default).

    On Postgres an advisory lock serialises concurrent upgrades, so several
    writers starting at once apply each migration exactly once.
    """
    _run_migration(engine, "upgrade", revision)


def downgrade_schema(engine: Engine, revision: str = "base") -> None:
    """Downgrade the schema to ``revision`` (``base`` removes every object)."""
    _run_migration(engine, "downgrade", revision)


def _run_migration(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command

    # Alembic announces its context at INFO on every check; keep only warnings.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            lock = sa.text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": _MIGRATION_LOCK})
        getattr(command, direction)(_alembic_config(connection), revision)


def create_signal_engine(url: str, *, create: bool = True) -> Engine:
    """Create an engine for ``url`` and bring its schema to the newest version.

    For a SQLite file, its folder is created first.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:////abs/signals.db`` or
            ``postgresql+psycopg2://user:pw@127.0.0.1:5432/goldsignals``.
        create: Whether a missing SQLite file may be created; readers pass
            False, so that a mistyped path is an error, not a new database.

    Raises:
        SignalStoreError: If the database cannot be reached, or a SQLite
            file is missing and ``create`` is False; the message names host
            and database (or the file) but never the password.
    """
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database)
        if not create and not path.is_file():
            raise SignalStoreError(
                f"no signals database at {path}: fix GOLDSIGNALS_SIGNALS_DB_URL "
                "(environment, .env or deployment.env), or write signals first "
                "(`make run`)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)

    # A database that is down or unreachable fails the connection in seconds.
    connect_args = (
        {"connect_timeout": 5} if parsed.drivername.startswith("postgresql") else {}
    )
    try:
        engine = sa.create_engine(
            url, future=True, pool_pre_ping=True, connect_args=connect_args
        )
    except (ImportError, NoSuchModuleError) as exc:
        raise SignalStoreError(
            f"no database driver for {redacted_url(url)} ({exc}); use a "
            "sqlite:/// or postgresql+psycopg2:// URL"
        ) from exc
    try:
        migrate_schema(engine)
    except SQLAlchemyError as exc:
        raise SignalStoreError(
            f"cannot open the signals database {redacted_url(url)}: "
            f"{_cause(exc)}; check that it runs (the server of `make up` in host "
            "mode) and that GOLDSIGNALS_SIGNALS_DB_URL (environment, .env, or "
            "deployment.env in the state folder) is right"
        ) from exc
    return engine


def _cause(exc: SQLAlchemyError) -> str:
    """The driver's first line of explanation, without any password."""
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()[:1]
    return f"{type(original).__name__}: {first[0] if first else ''}".rstrip(": ")


def _validate_rows(rows: list[dict[str, Any]]) -> None:
    problems = [
        f"{row.get('as_of_date')}: signal {row.get('signal')!r}"
        for row in rows
        if row.get("signal") not in SIGNAL_VALUES
    ]
    problems += [
        f"{row.get('as_of_date')}: probability {row.get('probability')!r}"
        for row in rows
        if not 0.0 <= float(row.get("probability", -1.0)) <= 1.0
    ]
    if problems:
        raise SignalStoreError(
            "refusing to write signals with bad values ("
            + "; ".join(problems[:5])
            + "); signals must be BUY, SELL or HOLD with a probability in [0, 1]"
        )


def _upsert_statement(engine: Engine, rows: list[dict[str, Any]]) -> Any:
    dialect = engine.dialect.name
    if dialect == "postgresql":
        insert: Any = postgresql.insert(signals_table)
    elif dialect == "sqlite":
        insert = sqlite.insert(signals_table)
    else:
        raise SignalStoreError(
            f"the signals store supports SQLite and Postgres, not {dialect!r}; "
            "set GOLDSIGNALS_SIGNALS_DB_URL to one of those"
        )
    statement = insert.values(rows)
    updated = {
        column.name: statement.excluded[column.name]
        for column in signals_table.columns
        if column.name not in (*KEY_COLUMNS, *OUTCOME_COLUMNS, "id")
    }
    return statement.on_conflict_do_update(index_elements=KEY_COLUMNS, set_=updated)


def fill_outcomes(
    connection: sa.Connection, ticker: str, closes: pd.Series[float]
) -> int:
    """Record the realised return of ``ticker``'s signals whose next close is known.

    A signal as of day t earns close(t+1) / close(t) - 1, t+1 being the next
    date in ``closes``; it was right when BUY met a rise or SELL a fall (a
    HOLD is neither). Signals already filled, or whose day is not in
    ``closes``, are left alone.

    Args:
        connection: Connection inside the caller's transaction.
        ticker: Ticker whose signals to fill.
        closes: Closing prices on an ascending date index.

    Returns:
        How many signal rows were filled.
    """
    days = pd.DatetimeIndex(closes.index).normalize()
    next_return = pd.Series(closes.to_numpy(), index=days).pct_change().shift(-1)
    table = signals_table
    pending = connection.execute(
        sa.select(table.c.id, table.c.as_of_date, table.c.signal).where(
            table.c.ticker == ticker, table.c.realised_return.is_(None)
        )
    ).all()
    updates = []
    for row in pending:
        value = next_return.get(pd.Timestamp(row.as_of_date))
        if value is None or pd.isna(value):
            continue
        position = POSITIONS[row.signal]
        correct = None if position == 0 else bool(position * value > 0)
        updates.append({"row_id": row.id, "realised": float(value), "correct": correct})
    if updates:
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values(
                realised_return=sa.bindparam("realised"),
                outcome_correct=sa.bindparam("correct"),
            )
        )
        connection.execute(statement, updates)
    logger.info("Filled the realised outcome of %d %s signals", len(updates), ticker)
    return len(updates)


def write_signals(
    engine: Engine,
    rows: Iterable[Mapping[str, Any]],
    *,
    closes: pd.Series[float] | None = None,
) -> int:
    """Upsert signal rows in one transaction; nothing is written on error.

    Args:
        engine: Engine from :func:`create_signal_engine`.
        rows: Mappings with the table's columns (``id`` and ``created_at``
            are filled in here).
        closes: Closing prices of the batch's ticker; when given, earlier
            signals whose next close is now known get their outcome in the
            same transaction (see :func:`fill_outcomes`).

    Returns:
        The number of rows written (inserted or replaced).

    Raises:
        SignalStoreError: If a row is invalid or the database rejects the
            batch; the transaction is rolled back.
    """
    created_at = datetime.now(UTC)
    batch = [{**row, "created_at": created_at} for row in rows]
    if not batch:
        logger.info("No signal rows to write")
        return 0
    _validate_rows(batch)

    try:
        with engine.begin() as connection:
            connection.execute(_upsert_statement(engine, batch))
            if closes is not None:
                for ticker in sorted({str(row["ticker"]) for row in batch}):
                    fill_outcomes(connection, ticker, closes)
    except SQLAlchemyError as exc:
        raise SignalStoreError(
            f"writing {len(batch)} signal rows to "
            f"{redacted_url(str(engine.url))} failed and was rolled back: "
            f"{_cause(exc)}"
        ) from exc

    logger.info("Wrote %d signal rows to %s", len(batch), engine.url.database)
    return len(batch)


def read_latest_signals(
    engine: Engine, *, ticker: str | None = None, limit: int = 10
) -> pd.DataFrame:
    """Read the newest signals, newest as-of date first.

    Args:
        engine: Engine of the signals database.
        ticker: Only this ticker, or every ticker when ``None``.
        limit: At most this many rows.

    Returns:
        One row per stored signal with the table's columns except ``id``.
    """
    columns = [c for c in signals_table.columns if c.name != "id"]
    query = sa.select(*columns).order_by(
        signals_table.c.as_of_date.desc(), signals_table.c.created_at.desc()
    )
    if ticker is not None:
        query = query.where(signals_table.c.ticker == ticker)

    with engine.connect() as connection:
        result = connection.execute(query.limit(limit))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def count_signals(engine: Engine, *, as_of: date | None = None) -> int:
    """Count stored signal rows, optionally for one as-of date."""
    query = sa.select(sa.func.count()).select_from(signals_table)
    if as_of is not None:
        query = query.where(signals_table.c.as_of_date == as_of)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


@dataclass(frozen=True)
class TrackRecord:
    """How the signals actually issued have done so far.

    Attributes:
        signals: Signals whose next close is known (one per ticker and date:
            the newest written).
        calls: Those that were BUY or SELL.
        hit_rate: Share of calls that were right (NaN without calls).
        cumulative_return: Compounded return of following every signal
            (long on BUY, short on SELL, flat on HOLD), before costs.
        first_date: First as-of date counted, if any.
        last_date: Last as-of date counted, if any.
    """

    signals: int
    calls: int
    hit_rate: float
    cumulative_return: float
    first_date: date | None
    last_date: date | None


def track_record(engine: Engine, *, ticker: str | None = None) -> TrackRecord:
    """Live hit rate and cumulative return of the issued signals."""
    table = signals_table
    query = sa.select(
        table.c.ticker,
        table.c.as_of_date,
        table.c.signal,
        table.c.realised_return,
        table.c.outcome_correct,
        table.c.created_at,
    ).where(table.c.realised_return.is_not(None))
    if ticker is not None:
        query = query.where(table.c.ticker == ticker)
    with engine.connect() as connection:
        result = connection.execute(query)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    if frame.empty:
        return TrackRecord(0, 0, float("nan"), 0.0, None, None)
    frame = frame.sort_values("created_at").drop_duplicates(
        ["ticker", "as_of_date"], keep="last"
    )
    positions = frame["signal"].map(POSITIONS).to_numpy(dtype="float64")
    earned = positions * frame["realised_return"].to_numpy(dtype="float64")
    calls = frame.loc[frame["signal"] != "HOLD", "outcome_correct"].astype(bool)
    return TrackRecord(
        signals=len(frame),
        calls=len(calls),
        hit_rate=float(calls.mean()) if len(calls) else float("nan"),
        cumulative_return=float(np.prod(1.0 + earned) - 1.0),
        first_date=min(frame["as_of_date"]),
        last_date=max(frame["as_of_date"]),
    )
