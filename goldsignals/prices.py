"""Price ingestion: Yahoo Finance downloads, price files and the local history.

Every function here returns the *standard price frame*: a ``pd.DatetimeIndex``
named ``date`` (``datetime64[ns]``, tz-naive, midnight of the exchange date,
ascending, unique) and exactly the float64 columns ``open``, ``high``,
``low``, ``close`` and ``volume``. Rows whose values are all NaN are allowed
(the Yahoo web export has them on weekends); :mod:`goldsignals.cleaning`
drops them.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yfinance as yf
from yfinance.exceptions import YFPricesMissingError

from goldsignals.cleaning import check_prices
from goldsignals.errors import (
    PriceDataError,
    PriceSourceUnavailableError,
    PriceValidationError,
)

logger = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
REQUIRED_COLUMNS = ("open", "high", "low", "close")

Fetcher = Callable[[str, datetime.date, datetime.date | None], pd.DataFrame]
"""Downloads daily bars of a ticker from ``start`` (inclusive) to ``end``
(exclusive, ``None`` for now) as a standard price frame."""

_NULL_STRINGS = frozenset({"", "null", "nan", "none", "na", "n/a"})
_TZ_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}:?\d{2})$")
_DATE_HEADERS = frozenset({"date", "datetime"})
_ENV_HINT = "check the path (GOLDSIGNALS_PRICE_CSV or GOLDSIGNALS_SEED_CSV)"
_LISTED = 5


@dataclass(frozen=True)
class LoadedPrices:
    """The prices of one run and where they came from.

    Attributes:
        prices: The standard price frame (see the module docstring) holding the
            whole stored history after this run's update.
        source: ``"yahoo"`` (fetched now), ``"csv"`` (read from the price
            file), ``"history"`` (stored history only: up to date or Yahoo
            unreachable) or ``"seed_csv"`` (empty history seeded from a file).
        last_date: Exchange date of the last row of ``prices``.
        stale: True when Yahoo could not be reached and older prices are used.
        fetched_rows: Rows obtained from the source in this run.
    """

    prices: pd.DataFrame
    source: str
    last_date: datetime.date
    stale: bool
    fetched_rows: int


def empty_prices() -> pd.DataFrame:
    """Return a standard price frame without rows.

    Returns:
        Empty float64 columns ``open``..``volume`` on an empty
        ``datetime64[ns]`` index named ``date``.
    """
    index = pd.DatetimeIndex([], name="date").as_unit("ns")
    columns = {name: np.array([], dtype="float64") for name in PRICE_COLUMNS}
    return pd.DataFrame(columns, index=index)


def describe_span(frame: pd.DataFrame) -> str:
    """Describe the rows and the date range of a price frame for log lines.

    Args:
        frame: A standard price frame.

    Returns:
        For example ``"6273 rows, 2001-08-07..2026-08-06"`` or ``"0 rows"``.
    """
    if frame.empty:
        return "0 rows"
    dates = pd.DatetimeIndex(frame.index)
    first, last = dates[0].date().isoformat(), dates[-1].date().isoformat()
    return f"{len(frame)} rows, {first}..{last}"


def normalize_prices(raw: pd.DataFrame) -> pd.DataFrame:
    """Turn a frame shaped like yfinance output into the standard price frame.

    Accepts the two-level (``Price``, ``Ticker``) columns of ``yf.download`` for
    one ticker, the classic ``Open,High,Low,Close,Adj Close,Volume`` layout and
    ``Ticker.history`` output (extra ``Dividends``/``Stock Splits``,
    timezone-aware index), with column names in any case. Dates become the
    local exchange date (the date in the index's own timezone, never UTC);
    ``null`` strings become NaN; a duplicated date keeps its last row.

    Args:
        raw: Prices indexed by date (a DatetimeIndex or date strings) or with a
            ``Date`` column; values may be numbers or numeric strings.

    Returns:
        The standard price frame (see the module docstring); ``volume`` is NaN
        when the input has none.

    Raises:
        PriceDataError: Several tickers, a missing open/high/low/close column,
            an unreadable date or a value that is not a number.
    """
    frame = _lowercase_columns(_flatten_columns(raw))
    frame = _date_column_as_index(frame)
    _require_columns(frame)

    values = {name: _column_values(frame, name) for name in PRICE_COLUMNS}
    prices = pd.DataFrame(values, index=_exchange_dates(frame.index))
    return _dedupe_sorted(prices)


def read_price_csv(path: Path) -> pd.DataFrame:
    """Read a price file in any layout yfinance or the Yahoo web site writes.

    Handles a UTF-8 byte-order mark, the three-row header (``Price``,
    ``Ticker``, ``Date``) of ``yf.download().to_csv()``, timezone-aware dates
    and ``null`` rows.

    Args:
        path: The CSV file.

    Returns:
        The standard price frame (see the module docstring).

    Raises:
        PriceDataError: The file is missing, empty or unreadable, or holds bad
            dates, values or columns; the message names the file.
    """
    table = _read_cells(path)
    raw = _cells_to_frame(table, path)

    try:
        frame = normalize_prices(raw)
    except PriceDataError as exc:
        raise PriceDataError(f"price file {path}: {exc}") from exc

    logger.info("Read price file %s: %s", path, describe_span(frame))
    return frame


def fetch_yahoo(
    ticker: str,
    start: datetime.date,
    end: datetime.date | None = None,
    *,
    timeout: float = 20.0,
    cache_dir: Path | None = None,
) -> pd.DataFrame:
    """Download daily bars of ``ticker`` from Yahoo Finance (the network boundary).

    Args:
        ticker: Yahoo ticker, e.g. ``GC=F``.
        start: First exchange date asked for (inclusive).
        end: Exchange date where the download stops (exclusive); None for now.
        timeout: Seconds to wait for each answer of Yahoo.
        cache_dir: Folder of yfinance's timezone and cookie caches; by default
            ``cache/yfinance`` in the state folder (``GOLDSIGNALS_HOME``).

    Returns:
        The standard price frame of the bars in the range, empty when Yahoo has
        no bars there (weekend, holiday, already up to date).

    Raises:
        PriceSourceUnavailableError: Any failure of yfinance or the network,
            chained; the message names the ticker and the date range.
    """
    _point_yfinance_caches(cache_dir)
    span = _requested_days(start, end)

    try:
        raw = yf.Ticker(ticker).history(
            start=start, end=end, interval="1d", auto_adjust=False, timeout=timeout
        )
    except YFPricesMissingError as exc:
        logger.info("Yahoo Finance has no bars of %s for %s: %s", ticker, span, exc)
        return empty_prices()
    except Exception as exc:
        message = f"Yahoo Finance download of {ticker} for {span} failed: {exc}"
        raise PriceSourceUnavailableError(message) from exc

    frame = normalize_prices(raw)
    logger.debug("Fetched %s of %s from Yahoo Finance", describe_span(frame), ticker)
    return frame


def yahoo_fetcher(*, timeout: float = 20.0, cache_dir: Path | None = None) -> Fetcher:
    """Bind the settings of :func:`fetch_yahoo` into a fetcher for load_prices.

    Args:
        timeout: Seconds to wait for each answer of Yahoo.
        cache_dir: Folder of yfinance's caches (see :func:`fetch_yahoo`).

    Returns:
        A function ``(ticker, start, end) -> standard price frame``.
    """
    return functools.partial(fetch_yahoo, timeout=timeout, cache_dir=cache_dir)


def read_history(path: Path) -> pd.DataFrame:
    """Read the stored price history.

    Args:
        path: The parquet file written by :func:`write_history`.

    Returns:
        The standard price frame; empty when the file does not exist.

    Raises:
        PriceDataError: The file exists but cannot be read.
    """
    if not path.exists():
        return empty_prices()

    try:
        stored = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        message = f"stored history {path} cannot be read ({exc}); delete it to refetch"
        raise PriceDataError(message) from exc
    return normalize_prices(stored)


def merge_history(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Unite the stored history with new prices; new rows win on shared dates.

    A new row of only NaN does not replace a stored row, so the history never
    loses a date nor a price.

    Args:
        stored: The standard price frame of the stored history.
        new: The standard price frame of new prices.

    Returns:
        The standard price frame of every date of both frames.
    """
    blank = new[list(PRICE_COLUMNS)].isna().all(axis=1) & new.index.isin(stored.index)
    new = new[~blank]
    if new.empty:
        return stored
    if stored.empty:
        return new
    return _dedupe_sorted(pd.concat([stored, new]))


def write_history(path: Path, frame: pd.DataFrame) -> None:
    """Store the price history atomically as parquet.

    Writes a temporary file in the same folder, then renames it over ``path``,
    so a crash never leaves a half-written history.

    Args:
        path: The parquet file; its folder is created when missing.
        frame: The standard price frame to store.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    os.chmod(temporary, 0o644)

    try:
        frame.to_parquet(temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    logger.info("Stored history %s: %s", path, describe_span(frame))


def store_checked(path: Path, frame: pd.DataFrame, origin: str) -> None:
    """Write ``frame`` as the history only if it passes the price schema.

    Raises:
        PriceValidationError: Naming ``origin``; the stored history is left
            as it was.
    """
    try:
        check_prices(frame)
    except PriceValidationError as exc:
        raise PriceValidationError(
            f"{origin} was not added to the price history {path}: {exc}"
        ) from exc
    write_history(path, frame)


def load_prices(
    *,
    ticker: str,
    source: Literal["yfinance", "csv"],
    history_path: Path,
    price_csv: Path | None = None,
    seed_csv: Path | None = None,
    history_start: datetime.date,
    today: datetime.date | None = None,
    fetcher: Fetcher = fetch_yahoo,
) -> LoadedPrices:
    """Update the stored history from the price source and return it.

    ``csv`` merges ``price_csv`` into the history. ``yfinance`` asks the
    fetcher only for the days after the last stored date (from
    ``history_start`` when the history is empty) through ``today``; when Yahoo
    cannot be reached the run continues from the stored history (stale), and an
    empty history is seeded from ``seed_csv``. The history never shrinks.

    Args:
        ticker: Yahoo ticker, e.g. ``GC=F``.
        source: ``"yfinance"`` or ``"csv"``.
        history_path: Parquet file of the stored history of ``ticker``.
        price_csv: The price file read when ``source`` is ``"csv"``.
        seed_csv: A price file that seeds an empty history if Yahoo fails.
        history_start: First date asked of Yahoo for an empty history.
        today: The current date (default: the local date of this machine).
        fetcher: Downloads ``(ticker, start, end exclusive)`` as a standard
            price frame; raises PriceSourceUnavailableError when it cannot.

    Returns:
        The whole updated history and where it came from.

    Raises:
        PriceDataError: ``csv`` without ``price_csv``, or a bad price file.
        PriceSourceUnavailableError: No prices at all: Yahoo failed, the history
            is empty and no seed file is set.
    """
    stored = read_history(history_path)
    logger.info("Read stored history %s: %s", history_path, describe_span(stored))

    if source == "csv":
        return _load_from_csv(stored, price_csv, history_path)
    if source != "yfinance":
        raise PriceDataError(
            f"price source {source!r} is unknown; set GOLDSIGNALS_PRICE_SOURCE to "
            "'yfinance' or 'csv'"
        )
    source_plan = _YahooPlan(ticker, history_path, seed_csv, history_start, fetcher)
    return source_plan.load(stored, today or datetime.date.today())


@dataclass(frozen=True)
class _YahooPlan:
    """What load_prices needs to update a history from Yahoo Finance."""

    ticker: str
    history_path: Path
    seed_csv: Path | None
    history_start: datetime.date
    fetcher: Fetcher

    def load(self, stored: pd.DataFrame, today: datetime.date) -> LoadedPrices:
        """Fetch the missing days, falling back to the history or the seed."""
        start = self._first_missing_day(stored)
        if start > today:
            logger.info("History of %s is up to date; Yahoo not asked", self.ticker)
            return self._result(stored, "history", stale=False, fetched_rows=0)

        try:
            new = self.fetcher(self.ticker, start, today + datetime.timedelta(days=1))
        except PriceSourceUnavailableError as exc:
            return self._fall_back(stored, exc)

        if new.empty:
            logger.info("No new bars of %s since %s", self.ticker, start.isoformat())
        else:
            logger.info("Fetched %s of %s", describe_span(new), self.ticker)
        return self._from_fetch(stored, new)

    def _first_missing_day(self, stored: pd.DataFrame) -> datetime.date:
        if stored.empty:
            return self.history_start
        return _last_date(stored) + datetime.timedelta(days=1)

    def _from_fetch(self, stored: pd.DataFrame, new: pd.DataFrame) -> LoadedPrices:
        merged = merge_history(stored, new)
        if not new.empty:
            origin = f"the Yahoo download of {self.ticker}"
            store_checked(self.history_path, merged, origin)
        return self._result(merged, "yahoo", stale=False, fetched_rows=len(new))

    def _fall_back(
        self, stored: pd.DataFrame, exc: PriceSourceUnavailableError
    ) -> LoadedPrices:
        reason = f"Yahoo Finance cannot be reached for {self.ticker}"
        if stored.empty:
            return self._seed(f"{reason} ({_first_line(exc)})", cause=exc)

        logger.warning(
            "%s; the run continues from the stored history ending %s (stale). "
            "Cause: %s",
            reason,
            _last_date(stored).isoformat(),
            _first_line(exc),
        )
        filled = self._fill_from_seed(stored)
        return self._result(filled, "history", stale=True, fetched_rows=0)

    def _fill_from_seed(self, stored: pd.DataFrame) -> pd.DataFrame:
        """Add the seed file's dates that the history lacks (stored rows win)."""
        if self.seed_csv is None or not self.seed_csv.is_file():
            return stored
        merged = merge_history(read_price_csv(self.seed_csv), stored)
        added = len(merged) - len(stored)
        if added == 0:
            return stored
        store_checked(self.history_path, merged, f"seed file {self.seed_csv}")
        logger.info("Filled %d dates of the history from %s", added, self.seed_csv)
        return merged

    def _seed(self, reason: str, cause: Exception | None) -> LoadedPrices:
        if self.seed_csv is None:
            raise PriceSourceUnavailableError(
                f"no prices of {self.ticker}: {reason} and the stored history "
                f"{self.history_path} is empty; set GOLDSIGNALS_SEED_CSV to a price "
                "file that seeds the history, or GOLDSIGNALS_PRICE_CSV with "
                "GOLDSIGNALS_PRICE_SOURCE=csv (e.g. ../shared/data/"
                "gold_futures_daily.csv)"
            ) from cause
        if not self.seed_csv.is_file():
            raise PriceSourceUnavailableError(
                f"no prices of {self.ticker}: {reason}, the stored history is "
                f"empty and the seed file GOLDSIGNALS_SEED_CSV={self.seed_csv} "
                "does not exist; point it at a price file such as "
                "../shared/data/gold_futures_daily.csv"
            ) from cause

        logger.warning(
            "%s and the stored history is empty; seeding it from %s",
            reason,
            self.seed_csv,
        )
        seeded = read_price_csv(self.seed_csv)
        store_checked(self.history_path, seeded, f"seed file {self.seed_csv}")
        return self._result(seeded, "seed_csv", stale=True, fetched_rows=len(seeded))

    def _result(
        self, prices: pd.DataFrame, source: str, *, stale: bool, fetched_rows: int
    ) -> LoadedPrices:
        if prices.empty:
            reason = f"Yahoo Finance has no prices of {self.ticker}"
            return self._seed(f"{reason} since {self.history_start}", cause=None)
        return LoadedPrices(prices, source, _last_date(prices), stale, fetched_rows)


def _load_from_csv(
    stored: pd.DataFrame, price_csv: Path | None, history_path: Path
) -> LoadedPrices:
    if price_csv is None:
        raise PriceDataError(
            "price source is 'csv' but no price file is given; set "
            "GOLDSIGNALS_PRICE_CSV to a price file such as "
            "../shared/data/gold_futures_daily.csv"
        )

    new = read_price_csv(price_csv)
    merged = merge_history(stored, new)
    store_checked(history_path, merged, f"price file {price_csv}")
    return LoadedPrices(merged, "csv", _last_date(merged), False, len(new))


def _flatten_columns(raw: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(raw.columns, pd.MultiIndex):
        return raw

    names = list(raw.columns.names)
    level = names.index("Ticker") if "Ticker" in names else raw.columns.nlevels - 1
    tickers = [str(name) for name in raw.columns.unique(level=level)]
    if len(tickers) > 1:
        raise PriceDataError(
            f"prices of several tickers ({', '.join(tickers)}) in one frame; "
            "download or pass one ticker at a time"
        )
    return raw.droplevel(level, axis="columns")


def _lowercase_columns(frame: pd.DataFrame) -> pd.DataFrame:
    names = [str(name).strip().lower() for name in frame.columns]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise PriceDataError(f"columns appear twice (ignoring case): {doubled}")
    return frame.set_axis(names, axis="columns")


def _date_column_as_index(frame: pd.DataFrame) -> pd.DataFrame:
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame
    found = [name for name in frame.columns if name in _DATE_HEADERS]
    return frame.set_index(found[0]) if found else frame


def _require_columns(frame: pd.DataFrame) -> None:
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        raise PriceDataError(
            f"price columns missing: {', '.join(missing)}; columns found: "
            f"{', '.join(map(str, frame.columns)) or 'none'}"
        )


def _column_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    column = frame[name]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return _parse_numbers(column, name)


def _parse_numbers(column: pd.Series, name: str) -> np.ndarray:
    text = column.astype("string").str.strip()
    blank = text.isna() | text.str.lower().isin(_NULL_STRINGS)
    numbers = pd.to_numeric(text.mask(blank).astype("object"), errors="coerce")

    bad = text[pd.isna(numbers) & ~blank]
    if not bad.empty:
        examples = ", ".join(
            f"{date}: {value!r}" for date, value in bad[:_LISTED].items()
        )
        raise PriceDataError(
            f"column {name!r} holds {len(bad)} values that are not numbers, first "
            f"{examples}; fix or remove these rows"
        )
    return np.asarray(numbers, dtype="float64")


def _exchange_dates(index: pd.Index) -> pd.DatetimeIndex:
    if isinstance(index, pd.DatetimeIndex):
        local = index.tz_localize(None) if index.tz is not None else index
    else:
        local = _parse_dates(index)
    dates = local.normalize().to_numpy()
    return pd.DatetimeIndex(dates, name="date").as_unit("ns")


def _parse_dates(index: pd.Index) -> pd.DatetimeIndex:
    text = pd.Series(index.astype("string"), dtype="string").str.strip()
    wall_clock = text.str.replace(_TZ_OFFSET, r"\1", regex=True)
    parsed = pd.to_datetime(wall_clock, format="ISO8601", errors="coerce")

    bad = text[parsed.isna()]
    if not bad.empty:
        raise PriceDataError(
            f"{len(bad)} dates are not YYYY-MM-DD dates, first: "
            f"{[str(value) for value in bad[:_LISTED]]}; fix or remove these rows"
        )
    return pd.DatetimeIndex(parsed)


def _dedupe_sorted(frame: pd.DataFrame) -> pd.DataFrame:
    doubled = frame.index.duplicated(keep="last")
    if doubled.any():
        logger.warning(
            "Dropped %d rows of duplicated dates, keeping the last row of each; "
            "first duplicated dates: %s",
            doubled.sum(),
            _iso_list(frame.index[doubled]),
        )
    ordered = frame[~doubled].sort_index(kind="stable")
    dates = pd.DatetimeIndex(ordered.index.to_numpy(), name="date")
    return ordered.set_axis(dates)


def _iso_list(dates: pd.Index) -> list[str]:
    return [f"{stamp:%Y-%m-%d}" for stamp in dates[:_LISTED]]


def _read_cells(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise PriceDataError(f"price file {path} does not exist; {_ENV_HINT}")

    try:
        return pd.read_csv(
            path, header=None, dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
    except pd.errors.EmptyDataError as exc:
        raise PriceDataError(f"price file {path} is empty; {_ENV_HINT}") from exc
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise PriceDataError(f"price file {path} is not a CSV file: {exc}") from exc


def _cells_to_frame(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    multiheader = len(table) > 1 and _first_cell(table, 0) == "price"
    multiheader = multiheader and _first_cell(table, 1) == "ticker"
    columns = _header(table, multiheader)

    body = table.iloc[2 if multiheader else 1 :]
    if not body.empty and _is_index_name_row(body.iloc[0]):
        body = body.iloc[1:]
    if body.empty:
        raise PriceDataError(f"price file {path} has a header but no rows")
    dates = pd.Index(body.iloc[:, 0].to_numpy(), name="date")
    return pd.DataFrame(body.iloc[:, 1:].to_numpy(), index=dates, columns=columns)


def _header(table: pd.DataFrame, multiheader: bool) -> pd.Index:
    prices = [str(name) for name in table.iloc[0, 1:]]
    if not multiheader:
        return pd.Index(prices)
    tickers = [str(name) for name in table.iloc[1, 1:]]
    return pd.MultiIndex.from_arrays([prices, tickers], names=["Price", "Ticker"])


def _first_cell(table: pd.DataFrame, row: int) -> str:
    return str(table.iloc[row, 0]).strip().lower()


def _is_index_name_row(row: pd.Series) -> bool:
    rest = [str(value).strip() for value in row.iloc[1:] if pd.notna(value)]
    return str(row.iloc[0]).strip().lower() in _DATE_HEADERS and not any(rest)


def _point_yfinance_caches(cache_dir: Path | None) -> None:
    folder = cache_dir or _default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    yf.set_tz_cache_location(str(folder))
    # Replaces history(raise_errors=True), deprecated in yfinance 1.7, which hides
    # the network error behind "possibly delisted; no timezone found".
    yf.config.debug.hide_exceptions = False


def _default_cache_dir() -> Path:
    from goldsignals.config import get_settings

    return get_settings().home / "cache" / "yfinance"


def _requested_days(start: datetime.date, end: datetime.date | None) -> str:
    if end is None:
        return f"{start.isoformat()} through now"
    return f"{start.isoformat()} through {end - datetime.timedelta(days=1)}"


def _last_date(frame: pd.DataFrame) -> datetime.date:
    return pd.Timestamp(frame.index[-1]).date()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
