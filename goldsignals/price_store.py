"""Where the price history is kept: the ``prices`` table or a parquet file.

Both stores hold standard price frames (see :mod:`goldsignals.prices`) and
share one contract: ``read`` returns the whole history of the ticker (empty
when there is none), ``last_date`` its newest date, ``bar_before`` the newest
bar before a date, ``write`` makes a given frame the new history and
``append`` adds or replaces the bars of a frame, each atomically, so a failed
run leaves the old history exactly as it was.

The product keeps the history in the ``prices`` table of the signals
database (SQLite in the state folder, Postgres in host mode): it lives next
to the signals, the read-only role can query it, and a daily run writes only
the bars that are new or changed, in one transaction. A parquet file (the
store of earlier versions) is read once to fill an empty table.
"""

from __future__ import annotations

import datetime
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from goldsignals.errors import PriceDataError, SignalStoreError

logger = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")

_metadata = sa.MetaData()
prices_table = sa.Table(
    "prices",
    _metadata,
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    *(sa.Column(name, sa.Float) for name in PRICE_COLUMNS),
)
"""The table of migration 0003 (its constraints live in the migration)."""


class PriceHistory(Protocol):
    """A stored price history of one ticker."""

    @property
    def name(self) -> str:
        """Where the history lives, for messages (no password)."""

    def read(self) -> pd.DataFrame:
        """The whole stored history (an empty frame when there is none)."""

    def write(self, frame: pd.DataFrame) -> None:
        """Make ``frame`` the stored history, atomically."""

    def last_date(self) -> datetime.date | None:
        """The newest stored date (None: nothing is stored)."""

    def bar_before(self, day: datetime.date) -> pd.DataFrame:
        """The bar of the newest stored date before ``day`` with a close.

        Returns:
            A standard price frame of that one bar, or without rows.
        """

    def append(self, frame: pd.DataFrame) -> None:
        """Add the bars of ``frame``, replacing stored bars of its dates."""


def empty_frame() -> pd.DataFrame:
    """A standard price frame without rows."""
    index = pd.DatetimeIndex([], name="date").as_unit("ns")
    return pd.DataFrame({name: [] for name in PRICE_COLUMNS}, index=index).astype(
        "float64"
    )


def as_standard_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``date`` index of datetime64[ns] and float64 columns."""
    dates = pd.DatetimeIndex(pd.to_datetime(frame.index), name="date").as_unit("ns")
    values = frame.loc[:, list(PRICE_COLUMNS)].astype("float64")
    return values.set_axis(dates)


class ParquetHistory:
    """A history kept in one parquet file (written by rename, atomically)."""

    def __init__(self, path: Path) -> None:
        """Keep the history in ``path``."""
        self.path = path

    @property
    def name(self) -> str:
        """The file's path."""
        return str(self.path)

    def read(self) -> pd.DataFrame:
        """Read the file; empty when it does not exist.

        Raises:
            PriceDataError: The file exists but cannot be read.
        """
        if not self.path.exists():
            return empty_frame()
        try:
            stored = pd.read_parquet(self.path)
        except (OSError, ValueError) as exc:
            raise PriceDataError(
                f"stored history {self.path} cannot be read ({exc}); delete it "
                "to refetch"
            ) from exc
        return as_standard_frame(stored)

    def write(self, frame: pd.DataFrame) -> None:
        """Write a temporary file beside ``path``, then rename it over it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        os.close(handle)
        os.chmod(temporary, 0o644)

        try:
            frame.to_parquet(temporary)
            os.replace(temporary, self.path)
        finally:
            Path(temporary).unlink(missing_ok=True)

    def last_date(self) -> datetime.date | None:
        """The newest date in the file (reads the whole file)."""
        frame = self.read()
        return None if frame.empty else pd.Timestamp(frame.index.max()).date()

    def bar_before(self, day: datetime.date) -> pd.DataFrame:
        """The newest bar before ``day`` with a close (reads the whole file)."""
        frame = self.read()
        earlier = frame.index < pd.Timestamp(day)
        return frame[earlier & frame["close"].notna()].tail(1)

    def append(self, frame: pd.DataFrame) -> None:
        """Rewrite the file with the bars of ``frame`` added (dates replaced)."""
        stored = self.read()
        kept = stored[~stored.index.isin(frame.index)]
        self.write(pd.concat([kept, as_standard_frame(frame)]).sort_index())


class SqlHistory:
    """The history of ``ticker`` in the ``prices`` table of a database.

    ``write`` compares the frame with the stored rows and upserts only the
    dates that are new or whose bar changed, in one transaction; it never
    deletes a stored date.
    """

    def __init__(self, engine: Engine, ticker: str, *, legacy: Path | None = None):
        """Keep the history of ``ticker`` in ``engine``'s ``prices`` table.

        Args:
            engine: An engine whose schema is migrated (create_signal_engine).
            ticker: The instrument.
            legacy: A parquet history of an earlier version; read once when
                the table holds no row of ``ticker``.
        """
        self.engine = engine
        self.ticker = ticker
        self.legacy = legacy
        self._stored: pd.DataFrame | None = None

    @property
    def name(self) -> str:
        """Table, ticker and database URL (password hidden)."""
        url = self.engine.url.render_as_string(hide_password=True)
        return f"table prices ({self.ticker}) of {url}"

    def read(self) -> pd.DataFrame:
        """Read the ticker's rows, ordered by date.

        Raises:
            SignalStoreError: The database cannot be read.
        """
        query = (
            sa.select(prices_table)
            .where(prices_table.c.ticker == self.ticker)
            .order_by(prices_table.c.date)
        )
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(query).mappings().all()
        except SQLAlchemyError as exc:
            raise SignalStoreError(f"cannot read {self.name}: {exc}") from exc
        if not rows:
            self._stored = empty_frame()
            return self._legacy_history()
        frame = pd.DataFrame(rows).set_index("date").drop(columns="ticker")
        self._stored = as_standard_frame(frame)
        return self._stored

    def write(self, frame: pd.DataFrame) -> None:
        """Upsert the dates of ``frame`` that are new or changed, atomically.

        Raises:
            SignalStoreError: The database refused the write; nothing of it
                was stored.
        """
        self._upsert_rows(self._changed_rows(frame))

    def _upsert_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            with self.engine.begin() as connection:
                for start in range(0, len(rows), 1000):
                    connection.execute(self._upsert(rows[start : start + 1000]))
        except SQLAlchemyError as exc:
            raise SignalStoreError(
                f"cannot write {len(rows)} price rows to {self.name}: {exc}; "
                "nothing was stored"
            ) from exc
        self._stored = None
        logger.info("Wrote %d new or changed bars to %s", len(rows), self.name)

    def last_date(self) -> datetime.date | None:
        """``max(date)`` of the ticker's rows: one indexed lookup.

        An empty table first takes over the earlier parquet history, if any.

        Raises:
            SignalStoreError: The database cannot be read.
        """
        query = sa.select(sa.func.max(prices_table.c.date)).where(
            prices_table.c.ticker == self.ticker
        )
        try:
            with self.engine.connect() as connection:
                newest = connection.execute(query).scalar_one()
        except SQLAlchemyError as exc:
            raise SignalStoreError(f"cannot read {self.name}: {exc}") from exc
        if newest is None and self.legacy is not None and self.legacy.exists():
            self.write(self._legacy_history())
            return self.last_date() if self._has_rows() else None
        return _as_date(newest)

    def bar_before(self, day: datetime.date) -> pd.DataFrame:
        """The newest bar before ``day``: one indexed lookup.

        Every row has a close (the table's prices are NOT NULL).

        Raises:
            SignalStoreError: The database cannot be read.
        """
        query = (
            sa.select(prices_table)
            .where(prices_table.c.ticker == self.ticker)
            .where(prices_table.c.date < day)
            .order_by(prices_table.c.date.desc())
            .limit(1)
        )
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(query).mappings().all()
        except SQLAlchemyError as exc:
            raise SignalStoreError(f"cannot read {self.name}: {exc}") from exc
        if not rows:
            return empty_frame()
        return as_standard_frame(pd.DataFrame(rows).set_index("date"))

    def append(self, frame: pd.DataFrame) -> None:
        """Upsert the bars of ``frame`` in one transaction (nothing is read).

        Raises:
            SignalStoreError: The database refused the write; nothing of it
                was stored.
        """
        bars = as_standard_frame(frame)
        rows = [
            {"ticker": self.ticker, "date": _date(day), **_values(row)}
            for day, row in zip(bars.index, bars.to_dict("records"), strict=True)
        ]
        self._upsert_rows(rows)

    def _has_rows(self) -> bool:
        query = sa.select(sa.func.count()).where(prices_table.c.ticker == self.ticker)
        with self.engine.connect() as connection:
            return bool(connection.execute(query).scalar_one())

    def _legacy_history(self) -> pd.DataFrame:
        if self.legacy is None or not self.legacy.exists():
            return empty_frame()
        frame = ParquetHistory(self.legacy).read()
        logger.info(
            "Read %d rows of the earlier parquet history %s; they are moved into %s",
            len(frame),
            self.legacy,
            self.name,
        )
        return frame

    def _changed_rows(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        if self._stored is None:
            self.read()
        stored = self._stored if self._stored is not None else empty_frame()
        new = as_standard_frame(frame)
        common = new.index.intersection(stored.index)
        same = np.zeros(len(new), dtype=bool)
        if len(common):
            left = new.loc[common].to_numpy()
            right = stored.loc[common].to_numpy()
            equal = ((left == right) | (np.isnan(left) & np.isnan(right))).all(axis=1)
            same[new.index.get_indexer(common)] = equal
        changed = new[~same]
        return [
            {"ticker": self.ticker, "date": _date(day), **_values(row)}
            for day, row in zip(changed.index, changed.to_dict("records"), strict=True)
        ]

    def _upsert(self, rows: list[dict[str, Any]]) -> Any:
        dialect = self.engine.dialect.name
        module: Any = postgresql if dialect == "postgresql" else sqlite
        statement = module.insert(prices_table).values(rows)
        return statement.on_conflict_do_update(
            index_elements=["ticker", "date"],
            set_={name: statement.excluded[name] for name in PRICE_COLUMNS},
        )


def _date(day: pd.Timestamp) -> datetime.date:
    return pd.Timestamp(day).date()


def _as_date(value: object) -> datetime.date | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value)[:10])


def _values(row: Mapping[Any, Any]) -> dict[str, float | None]:
    return {
        str(name): None if pd.isna(value) else float(value)
        for name, value in row.items()
    }
