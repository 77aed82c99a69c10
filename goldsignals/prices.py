"""Price ingestion: Yahoo Finance downloads, price files and the local history.

Every function here returns the *standard price frame*: a ``pd.DatetimeIndex``
named ``date`` (``datetime64[ns]``, tz-naive, midnight of the exchange date,
ascending, unique) and exactly the float64 columns ``open``, ``high``,
``low``, ``close`` and ``volume``. Rows whose values are all NaN are allowed
(the Yahoo web export has them on weekends); :mod:`goldsignals.cleaning`
drops them, and the stored history never takes them in.

A daily bar is *complete* once its session has closed: a bar dated D (the
exchange date in America/New_York, where COMEX gold futures trade) is complete
from 17:00 New York time on D. :func:`load_prices` stores only complete bars;
a bar of a session still open is held back and fetched again, final, by the
first run after the close.

Whatever their source (a download, ``GOLDSIGNALS_PRICE_CSV`` or the seed
file), new prices join the stored history only if they pass
:func:`goldsignals.cleaning.check_prices`: positive, ordered, consistent bars
whose close moves at most ``max_daily_move`` (25 % by default) from the close
before it, the previous row of the new prices or the newest stored bar.
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import tenacity
import yfinance as yf
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError

from goldsignals.cleaning import MAX_DAILY_MOVE, check_prices
from goldsignals.errors import (
    PriceDataError,
    PriceSourceUnavailableError,
    PriceValidationError,
)
from goldsignals.price_store import ParquetHistory, PriceHistory

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

DEFAULT_SEED_TICKER = "GC=F"
"""The ticker of the shared seed file (gold futures)."""
EXCHANGE_TIMEZONE = zoneinfo.ZoneInfo("America/New_York")
"""Timezone of the exchange dates (COMEX, where ``GC=F`` trades)."""
SESSION_CLOSE = datetime.time(17, 0)
"""Wall-clock time in EXCHANGE_TIMEZONE from which the day's bar is complete."""
LONGEST_CLOSURE_WEEKDAYS = 4
"""Most weekdays in a row an exchange closes (4 after 11 September 2001): an
empty answer of Yahoo for more weekdays than this is a failed download, not a
holiday."""
OPEN_SESSION_DAYS = 10
"""Most calendar days between the last closed session and a session open now:
the longest closure (LONGEST_CLOSURE_WEEKDAYS) and the weekends around it."""
_MAX_BACKOFF_SECONDS = 60.0
_LATE_EVENING_HOURS = (22, 23)


@dataclass(frozen=True)
class LoadedPrices:
    """The prices of one run and where they came from.

    Attributes:
        prices: The standard price frame (see the module docstring) holding the
            whole stored history after this run's update.
        source: ``"yahoo"`` (fetched now), ``"csv"`` (read from the price
            file), ``"history"`` (stored history only: up to date or Yahoo
            unreachable) or ``"seed_csv"`` (empty history seeded from a file).
        last_date: Exchange date of the newest row of ``prices`` with prices.
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


def normalize_prices(raw: pd.DataFrame, ticker: str | None = None) -> pd.DataFrame:
    """Turn a frame shaped like yfinance output into the standard price frame.

    Accepts the two-level (``Price``, ``Ticker``) columns of ``yf.download`` for
    one ticker, the classic ``Open,High,Low,Close,Adj Close,Volume`` layout and
    ``Ticker.history`` output (extra ``Dividends``/``Stock Splits``,
    timezone-aware index), with the ``Price`` and ``Ticker`` levels in either
    order and column names in any case. Dates become the local exchange date
    (the date in the index's own timezone, never UTC); a bar stamped 22:00 or
    23:00 on the hour belongs to the next date (Yahoo's daylight-saving slip
    of midnight). ``null`` strings become NaN. A duplicated date keeps its last
    row with prices, whatever the values.

    Args:
        raw: Prices indexed by date (a DatetimeIndex or date strings) or with a
            ``Date`` column; values may be numbers or numeric strings.
        ticker: The ticker the prices must be of, when the columns name one.

    Returns:
        The standard price frame (see the module docstring); ``volume`` is NaN
        when the input has none.

    Raises:
        PriceDataError: Several tickers, a missing open/high/low/close column,
            an unreadable date, a value that is not a number, or columns that
            name a ticker other than ``ticker``.
    """
    frame = _lowercase_columns(_flatten_columns(raw, ticker))
    frame = _date_column_as_index(frame)
    _require_columns(frame)

    values = {name: _column_values(frame, name) for name in PRICE_COLUMNS}
    prices = pd.DataFrame(values, index=_exchange_dates(frame.index))
    return _dedupe_sorted(prices)


def read_price_csv(path: Path, ticker: str | None = None) -> pd.DataFrame:
    """Read a price file in any layout yfinance or the Yahoo web site writes.

    Handles a UTF-8 byte-order mark, the three-row header (``Price``,
    ``Ticker``, ``Date``) of ``yf.download().to_csv()``, timezone-aware dates
    and ``null`` rows.

    Args:
        path: The CSV file.
        ticker: The ticker the file must hold, when its header names one.

    Returns:
        The standard price frame (see the module docstring).

    Raises:
        PriceDataError: The file is missing, empty or unreadable, or holds bad
            dates, values or columns; the message names the file.
    """
    table = _read_cells(path)
    raw = _cells_to_frame(table, path)

    try:
        frame = normalize_prices(raw, ticker)
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
            rate limiting (``YFRateLimitError``) included, chained; the message
            names the ticker and the date range. :func:`load_prices` retries.
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
    except YFRateLimitError as exc:
        message = f"Yahoo Finance rate-limits the download of {ticker} for {span}"
        raise PriceSourceUnavailableError(f"{message}: {exc}") from exc
    except Exception as exc:
        message = f"Yahoo Finance download of {ticker} for {span} failed: {exc}"
        raise PriceSourceUnavailableError(message) from exc

    if raw.empty:
        return empty_prices()
    frame = normalize_prices(raw, ticker)
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


def read_history(history: PriceHistory | Path) -> pd.DataFrame:
    """Read the stored price history.

    Args:
        history: The store, or the path of a parquet history.

    Returns:
        The standard price frame; empty when nothing is stored.

    Raises:
        PriceDataError: The stored history cannot be read.
    """
    return normalize_prices(as_history(history).read())


def as_history(history: PriceHistory | Path) -> PriceHistory:
    """A store for ``history``: a path means a parquet file."""
    return ParquetHistory(history) if isinstance(history, Path) else history


def merge_history(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Unite the stored history with new prices; new rows win on shared dates.

    A date repeated within ``new`` keeps its last row with prices (logged as a
    warning); a stored date present in ``new`` is replaced silently, as any
    refetch does. New rows without any of open, high, low, close are left
    out: they would erase a stored price, or, stored as the last date, make
    the next fetch skip their date. So the history never loses a date nor a
    price.

    Args:
        stored: The standard price frame of the stored history.
        new: The standard price frame of new prices.

    Returns:
        The standard price frame of every date of both frames.
    """
    new = new[~_blank_rows(new)]
    if new.empty:
        return stored
    new = _dedupe_sorted(new)
    if stored.empty:
        return new

    kept = stored[~stored.index.isin(new.index)]
    merged = pd.concat([kept, new]).sort_index(kind="stable")
    return merged.set_axis(pd.DatetimeIndex(merged.index.to_numpy(), name="date"))


def write_history(history: PriceHistory | Path, frame: pd.DataFrame) -> None:
    """Make ``frame`` the stored history, atomically (see the store)."""
    store = as_history(history)
    store.write(frame)
    logger.info("Stored history %s: %s", store.name, describe_span(frame))


def store_checked(
    history: PriceHistory | Path,
    frame: pd.DataFrame,
    origin: str,
    *,
    max_daily_move: float = MAX_DAILY_MOVE,
) -> None:
    """Write ``frame`` as the history only if it passes ``check_prices``.

    Every close of ``frame`` is checked against the close before it.

    Raises:
        PriceValidationError: Naming ``origin``; the stored history is left
            as it was.
    """
    store = as_history(history)
    try:
        check_prices(frame, max_daily_move=max_daily_move)
    except PriceValidationError as exc:
        raise PriceValidationError(
            f"{origin} was not added to the price history {store.name}: {exc}"
        ) from exc
    write_history(store, frame)


def last_closed_session(now: datetime.datetime) -> datetime.date:
    """Exchange date of the newest session that has closed at ``now``.

    The session of exchange date D ends at SESSION_CLOSE (17:00) New York time
    on D; until then D's bar is partial and the newest complete bar is dated
    before D.

    Args:
        now: A timezone-aware time; a naive one is read as this machine's
            local time.

    Returns:
        The New York date of ``now`` from 17:00 on, else the date before.
    """
    local = now.astimezone(EXCHANGE_TIMEZONE)
    if local.time() >= SESSION_CLOSE:
        return local.date()
    return local.date() - datetime.timedelta(days=1)


def load_prices(
    *,
    ticker: str,
    source: Literal["yfinance", "csv"],
    history: PriceHistory | Path,
    price_csv: Path | None = None,
    seed_csv: Path | None = None,
    seed_ticker: str = DEFAULT_SEED_TICKER,
    history_start: datetime.date,
    now: datetime.datetime | None = None,
    fetcher: Fetcher = fetch_yahoo,
    retries: int = 3,
    backoff_seconds: float = 2.0,
    max_age_days: int = 7,
    max_daily_move: float = MAX_DAILY_MOVE,
    sleep: Callable[[float], None] = time.sleep,
) -> LoadedPrices:
    """Update the stored history from the price source and return it.

    :func:`update_prices` brings the history up to date (see there); then the
    whole history is read back.

    Args:
        ticker: Yahoo ticker, e.g. ``GC=F``.
        source: ``"yfinance"`` or ``"csv"``.
        history: The stored history of ``ticker`` (a path: a parquet file).
        price_csv: The price file read when ``source`` is ``"csv"``.
        seed_csv: A price file that seeds an empty history if Yahoo fails.
        seed_ticker: The ticker whose prices ``seed_csv`` holds; the file
            seeds and fills only that ticker's history.
        history_start: First date asked of Yahoo for an empty history.
        now: The current time, timezone-aware (default: this machine's clock).
        fetcher: Downloads ``(ticker, start, end exclusive)`` as a standard
            price frame; raises PriceSourceUnavailableError when it cannot.
        retries: Attempts after the first failed one; 0 tries once.
        backoff_seconds: Wait before the first retry; it doubles at each
            further retry, up to 60 s.
        max_age_days: Calendar days the newest price may lag today's exchange
            date when Yahoo cannot be reached; 0 accepts any age.
        max_daily_move: Largest share by which a new close may move from the
            close before it (``GOLDSIGNALS_MAX_DAILY_MOVE``); it applies to
            downloads, price files and the seed file alike.
        sleep: Waits between attempts (tests pass a recorder).

    Returns:
        The whole updated history and where it came from.

    Raises:
        PriceDataError: ``csv`` without ``price_csv``, or a bad price file.
        PriceSourceUnavailableError: Yahoo failed on every attempt and the
            stored or seed prices are older than ``max_age_days``, or there are
            no prices at all (empty history and no seed file).
        PriceValidationError: The new prices break a rule of the price schema
            or a close moves more than ``max_daily_move``; the stored history
            is left as it was.
    """
    store = as_history(history)
    update = update_prices(
        ticker=ticker,
        source=source,
        history=store,
        price_csv=price_csv,
        seed_csv=seed_csv,
        seed_ticker=seed_ticker,
        history_start=history_start,
        now=now,
        fetcher=fetcher,
        retries=retries,
        backoff_seconds=backoff_seconds,
        max_age_days=max_age_days,
        max_daily_move=max_daily_move,
        sleep=sleep,
    )
    prices = read_history(store)
    logger.info("Read stored history %s: %s", store.name, describe_span(prices))
    return LoadedPrices(
        prices, update.source, _last_date(prices), update.stale, update.fetched_rows
    )


@dataclass(frozen=True)
class PriceUpdate:
    """What :func:`update_prices` did (the prices stay in the store).

    Attributes:
        source: As in LoadedPrices.
        stale: True when Yahoo could not be reached and older prices are used.
        fetched_rows: Rows obtained from the source in this run.
    """

    source: str
    stale: bool
    fetched_rows: int


def update_prices(
    *,
    ticker: str,
    source: Literal["yfinance", "csv"],
    history: PriceHistory | Path,
    price_csv: Path | None = None,
    seed_csv: Path | None = None,
    seed_ticker: str = DEFAULT_SEED_TICKER,
    history_start: datetime.date,
    now: datetime.datetime | None = None,
    fetcher: Fetcher = fetch_yahoo,
    retries: int = 3,
    backoff_seconds: float = 2.0,
    max_age_days: int = 7,
    max_daily_move: float = MAX_DAILY_MOVE,
    sleep: Callable[[float], None] = time.sleep,
) -> PriceUpdate:
    """Bring the stored history up to date from the price source.

    ``csv`` merges ``price_csv`` into the history. ``yfinance`` asks the
    fetcher only for the days after the newest stored price (from
    ``history_start`` when the history is empty) through the last closed
    session (:func:`last_closed_session`). Bars dated later (a session still
    open) and rows without prices are held back, never stored. On that daily
    path only the newest stored date is looked up and only the new bars are
    checked and written, so its cost does not grow with the stored history.

    A failed download is tried ``retries`` more times, waiting
    ``backoff_seconds``, doubled at each retry (2, 4, 8 s by default); so is an
    empty answer for more than LONGEST_CLOSURE_WEEKDAYS weekdays, which no
    holiday explains. When every attempt fails, the run continues from the
    stored history (stale), or seeds an empty history from ``seed_csv``, only
    if its newest price is at most ``max_age_days`` calendar days older than
    today's exchange date. A run that fails stores nothing; the history never
    shrinks. Arguments and errors as for :func:`load_prices`.
    """
    store = as_history(history)
    clock = now or datetime.datetime.now(datetime.UTC)
    if source == "csv":
        session = last_closed_session(clock)
        return _load_from_csv(store, price_csv, ticker, session, max_daily_move)
    if source != "yfinance":
        raise PriceDataError(
            f"price source {source!r} is unknown; set GOLDSIGNALS_PRICE_SOURCE to "
            "'yfinance' or 'csv'"
        )
    plan = _YahooPlan(
        ticker=ticker,
        history=store,
        seed_csv=seed_csv,
        seed_ticker=seed_ticker,
        history_start=history_start,
        fetcher=fetcher,
        now=clock,
        retries=retries,
        backoff_seconds=backoff_seconds,
        max_age_days=max_age_days,
        max_daily_move=max_daily_move,
        sleep=sleep,
    )
    return plan.update()


def append_checked(
    history: PriceHistory,
    new: pd.DataFrame,
    origin: str,
    *,
    max_daily_move: float = MAX_DAILY_MOVE,
) -> None:
    """Store new bars only if they pass ``check_prices``.

    Of the stored history only the bar before the first new date is read:
    its close is the previous close of the first new bar.

    Raises:
        PriceValidationError: Naming ``origin``; the stored history is left
            as it was.
    """
    first = new.index.min()
    before = None if new.empty else history.bar_before(pd.Timestamp(first).date())
    try:
        check_prices(new, max_daily_move=max_daily_move, before=before)
    except PriceValidationError as exc:
        raise PriceValidationError(
            f"{origin} was not added to the price history {history.name}: {exc}"
        ) from exc
    history.append(new)
    logger.info("Stored %s in %s", describe_span(new), history.name)


@dataclass(frozen=True, kw_only=True)
class _YahooPlan:
    """What update_prices needs to update a history from Yahoo Finance."""

    ticker: str
    history: PriceHistory
    seed_csv: Path | None
    seed_ticker: str
    history_start: datetime.date
    fetcher: Fetcher
    now: datetime.datetime
    retries: int
    backoff_seconds: float
    max_age_days: int
    max_daily_move: float
    sleep: Callable[[float], None]

    def update(self) -> PriceUpdate:
        """Fetch the missing days, falling back to the history or the seed."""
        last = self.history.last_date()
        start = self.history_start if last is None else last + datetime.timedelta(1)
        session = last_closed_session(self.now)
        if start > session:
            logger.info(
                "History of %s is up to date (last closed session %s); Yahoo not asked",
                self.ticker,
                session.isoformat(),
            )
            return PriceUpdate("history", stale=False, fetched_rows=0)

        try:
            new = self._fetch_with_retries(start, session)
        except PriceSourceUnavailableError as exc:
            return self._fall_back(exc)
        return self._from_fetch(new, start, session, last)

    def _fetch_with_retries(
        self, start: datetime.date, session: datetime.date
    ) -> pd.DataFrame:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(PriceSourceUnavailableError),
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=tenacity.wait_exponential(
                multiplier=self.backoff_seconds, max=_MAX_BACKOFF_SECONDS
            ),
            sleep=self.sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(self._fetch_complete_bars, start, session)

    def _fetch_complete_bars(
        self, start: datetime.date, session: datetime.date
    ) -> pd.DataFrame:
        """One download; an empty answer longer than any closure is a failure."""
        end = session + datetime.timedelta(days=1)
        bars = _complete_bars(self.fetcher(self.ticker, start, end), session)

        weekdays = int(np.busday_count(start, end))
        if bars.empty and weekdays > LONGEST_CLOSURE_WEEKDAYS:
            raise PriceSourceUnavailableError(
                f"Yahoo Finance answered no bars of {self.ticker} for "
                f"{start.isoformat()} through {session.isoformat()}, {weekdays} "
                f"weekdays, more than any market closure "
                f"({LONGEST_CLOSURE_WEEKDAYS}); taken as a failed download"
            )
        return bars

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.info(
            "Attempt %d of %d to download %s failed (%s); retrying in %.1f s",
            state.attempt_number,
            self.retries + 1,
            self.ticker,
            _first_line(failure) if failure else "no answer",
            wait,
        )

    def _from_fetch(
        self,
        new: pd.DataFrame,
        start: datetime.date,
        session: datetime.date,
        last: datetime.date | None,
    ) -> PriceUpdate:
        if new.empty and last is None:
            reason = f"Yahoo Finance has no prices of {self.ticker}"
            return self._seed(f"{reason} since {self.history_start}", cause=None)
        if new.empty:
            logger.info(
                "No new bars of %s since %s through %s: market holiday or weekend; "
                "the history ends %s",
                self.ticker,
                start.isoformat(),
                session.isoformat(),
                last,
            )
            return PriceUpdate("yahoo", stale=False, fetched_rows=0)

        logger.info("Fetched %s of %s", describe_span(new), self.ticker)
        bars = merge_history(empty_prices(), new)
        origin = f"the Yahoo download of {self.ticker}"
        append_checked(self.history, bars, origin, max_daily_move=self.max_daily_move)
        return PriceUpdate("yahoo", stale=False, fetched_rows=len(new))

    def _fall_back(self, exc: PriceSourceUnavailableError) -> PriceUpdate:
        reason = (
            f"Yahoo Finance cannot be reached for {self.ticker} after "
            f"{self.retries + 1} attempts ({_first_line(exc)})"
        )
        stored = read_history(self.history)
        if _blank_rows(stored).all():
            return self._seed(reason, cause=exc)

        filled = self._with_seed_gaps(stored)
        what = "the stored history"
        if len(filled) > len(stored):
            what += f" (ending {_last_date(stored).isoformat()}) with the seed file"
            what += f" {self.seed_csv}"
        age = self._require_fresh(filled, what, reason, exc)
        if len(filled) > len(stored):
            self._store(filled, f"seed file {self.seed_csv}")
            added = len(filled) - len(stored)
            logger.info("Filled %d dates of the history from %s", added, self.seed_csv)

        logger.warning(
            "%s; the run continues from the stored history ending %s, %d days old "
            "(stale)",
            reason,
            _last_date(filled).isoformat(),
            age,
        )
        return PriceUpdate("history", stale=True, fetched_rows=0)

    def _store(self, frame: pd.DataFrame, origin: str) -> None:
        store_checked(self.history, frame, origin, max_daily_move=self.max_daily_move)

    def _with_seed_gaps(self, stored: pd.DataFrame) -> pd.DataFrame:
        """Add the seed file's dates that the history lacks (stored rows win)."""
        seeds_this_ticker = self.ticker == self.seed_ticker
        if (
            self.seed_csv is None
            or not seeds_this_ticker
            or not self.seed_csv.is_file()
        ):
            return stored
        return merge_history(self._read_seed(self.seed_csv), stored)

    def _read_seed(self, path: Path) -> pd.DataFrame:
        """The seed file's complete bars, checked as a price file's are."""
        seed = read_price_csv(path, self.seed_ticker)
        session = last_closed_session(self.now)
        return _complete_file_bars(seed, session, f"seed file {path}")

    def _require_fresh(
        self, prices: pd.DataFrame, what: str, reason: str, cause: Exception | None
    ) -> int:
        """Return the age in days of the newest price; raise when too old."""
        last = _last_date(prices)
        today = self.now.astimezone(EXCHANGE_TIMEZONE).date()
        age = (today - last).days
        if self.max_age_days == 0 or age <= self.max_age_days:
            return age

        raise PriceSourceUnavailableError(
            f"{reason}, and the newest price of {self.ticker} in {what} is from "
            f"{last.isoformat()}, {age} days before today ({today.isoformat()}, "
            f"New York), more than GOLDSIGNALS_MAX_PRICE_AGE_DAYS="
            f"{self.max_age_days}; nothing was stored. Restore the connection to "
            "Yahoo Finance and run again, or set GOLDSIGNALS_MAX_PRICE_AGE_DAYS=0 "
            "to run on old prices (for example on an offline machine)"
        ) from cause

    def _seed(self, reason: str, cause: Exception | None) -> PriceUpdate:
        if self.seed_csv is not None and self.ticker != self.seed_ticker:
            raise PriceSourceUnavailableError(
                f"no prices of {self.ticker}: {reason} and the stored history "
                f"{self.history.name} is empty; the seed file holds "
                f"{self.seed_ticker} prices (GOLDSIGNALS_SEED_TICKER), not "
                f"{self.ticker}'s. Give {self.ticker} prices with "
                "GOLDSIGNALS_PRICE_SOURCE=csv and GOLDSIGNALS_PRICE_CSV, or set "
                f"GOLDSIGNALS_SEED_TICKER={self.ticker} if the seed file is one"
            ) from cause
        if self.seed_csv is None:
            raise PriceSourceUnavailableError(
                f"no prices of {self.ticker}: {reason} and the stored history "
                f"{self.history.name} is empty; set GOLDSIGNALS_SEED_CSV to a price "
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

        seeded = merge_history(empty_prices(), self._read_seed(self.seed_csv))
        if seeded.empty:
            raise PriceSourceUnavailableError(
                f"no prices of {self.ticker}: {reason}, the stored history is "
                f"empty and the seed file {self.seed_csv} has no prices; point "
                "GOLDSIGNALS_SEED_CSV at a price file with prices"
            ) from cause
        what = f"the seed file {self.seed_csv}"
        age = self._require_fresh(seeded, what, reason, cause)

        logger.warning(
            "%s and the stored history is empty; seeding it from %s (newest price "
            "%s, %d days old)",
            reason,
            self.seed_csv,
            _last_date(seeded).isoformat(),
            age,
        )
        self._store(seeded, f"seed file {self.seed_csv}")
        return PriceUpdate("seed_csv", stale=True, fetched_rows=len(seeded))


def _load_from_csv(
    history: PriceHistory,
    price_csv: Path | None,
    ticker: str,
    session: datetime.date,
    max_daily_move: float,
) -> PriceUpdate:
    """Merge a price file into the history, as the Yahoo path merges a download.

    Bars dated after ``session`` (the last closed session) are held back and
    rows without prices dropped, both logged with their dates. The merged
    history is checked whole, each close against the one before it.
    """
    if price_csv is None:
        raise PriceDataError(
            "price source is 'csv' but no price file is given; set "
            "GOLDSIGNALS_PRICE_CSV to a price file such as "
            "../shared/data/gold_futures_daily.csv"
        )

    frame = read_price_csv(price_csv, ticker)
    new = _complete_file_bars(frame, session, f"price file {price_csv}")
    merged = merge_history(read_history(history), new)
    store_checked(
        history, merged, f"price file {price_csv}", max_daily_move=max_daily_move
    )
    return PriceUpdate("csv", stale=False, fetched_rows=len(new))


def _flatten_columns(raw: pd.DataFrame, ticker: str | None) -> pd.DataFrame:
    if not isinstance(raw.columns, pd.MultiIndex):
        return raw

    level = _ticker_level(raw.columns)
    tickers = [str(name) for name in raw.columns.unique(level=level)]
    if len(tickers) > 1:
        raise PriceDataError(
            f"prices of several tickers ({', '.join(tickers)}) in one frame; "
            "download or pass one ticker at a time"
        )
    found = tickers[0].strip().upper()
    if ticker is not None and found and found != ticker.strip().upper():
        raise PriceDataError(
            f"the prices are of {found}, not of {ticker}; give a file of {ticker} "
            "prices, or set the ticker (GOLDSIGNALS_TICKER, or GOLDSIGNALS_SEED_TICKER "
            f"for the seed file) to {found}"
        )
    return raw.droplevel(level, axis="columns")


def _ticker_level(columns: pd.MultiIndex) -> int:
    """The level named ``Ticker``, else the one that holds no price names."""
    names = list(columns.names)
    if "Ticker" in names:
        return names.index("Ticker")
    for level in range(columns.nlevels):
        values = {str(name).strip().lower() for name in columns.unique(level=level)}
        if not values & set(REQUIRED_COLUMNS):
            return level
    return columns.nlevels - 1


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

    on_the_hour = (local.minute == 0) & (local.second == 0)
    slipped = on_the_hour & np.isin(local.hour, _LATE_EVENING_HOURS)
    dates = local.normalize() + pd.to_timedelta(slipped.astype("int64"), unit="D")
    return pd.DatetimeIndex(dates.to_numpy(), name="date").as_unit("ns")


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
    """Keep one row per date, the last one with prices; values never matter."""
    blank = _blank_rows(frame)
    shadowed = blank & frame.index.isin(frame.index[~blank])
    kept = frame[~shadowed]
    doubled = kept.index.duplicated(keep="last")

    if shadowed.any() or doubled.any():
        repeated = pd.DatetimeIndex(frame.index[frame.index.duplicated()])
        logger.warning(
            "Dropped %d rows of duplicated dates, keeping the last row with "
            "prices of each; first duplicated dates: %s",
            shadowed.sum() + doubled.sum(),
            _iso_list(repeated.unique().sort_values()),
        )
    ordered = kept[~doubled].sort_index(kind="stable")
    dates = pd.DatetimeIndex(ordered.index.to_numpy(), name="date")
    return ordered.set_axis(dates)


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    """Mark rows without any of open, high, low, close."""
    return frame[list(REQUIRED_COLUMNS)].isna().all(axis=1).to_numpy()


def _complete_file_bars(
    frame: pd.DataFrame, session: datetime.date, source: str
) -> pd.DataFrame:
    """A price or seed file's complete bars; a bar dated too late is an error.

    A bar of the session still open is dated at most OPEN_SESSION_DAYS after
    the last closed one; a later date is a mistyped one, which holding back
    would keep hidden until that day (and, in a seed file, make old prices
    look fresh).
    """
    limit = pd.Timestamp(session + datetime.timedelta(days=OPEN_SESSION_DAYS))
    future = pd.DatetimeIndex(frame.index) > limit
    if future.any():
        raise PriceDataError(
            f"{source} has {future.sum()} bar(s) dated after "
            f"{limit:%Y-%m-%d}, later than any session open now (the last closed "
            f"one is {session.isoformat()}): {_iso_list(frame.index[future])}; "
            "fix the dates in the file"
        )
    return _complete_bars(frame, session)


def _complete_bars(frame: pd.DataFrame, session: datetime.date) -> pd.DataFrame:
    """Hold back bars dated after ``session`` and drop rows without prices."""
    later = pd.DatetimeIndex(frame.index) > pd.Timestamp(session)
    if later.any():
        logger.info(
            "Held back %d bars dated after %s, the last closed session: partial "
            "until %s New York time, they are fetched by a run after the close: %s",
            later.sum(),
            session.isoformat(),
            SESSION_CLOSE.strftime("%H:%M"),
            _iso_list(frame.index[later]),
        )

    blank = _blank_rows(frame) & ~later
    if blank.any():
        logger.info(
            "Dropped %d rows without prices: %s",
            blank.sum(),
            _iso_list(frame.index[blank]),
        )
    return frame[~later & ~blank]


def _iso_list(dates: pd.Index) -> list[str]:
    return [f"{stamp:%Y-%m-%d}" for stamp in dates[:_LISTED]]


def _read_cells(path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise PriceDataError(f"price file {path} is a folder, not a file; {_ENV_HINT}")
    if not path.is_file():
        raise PriceDataError(f"price file {path} does not exist; {_ENV_HINT}")

    try:
        table = pd.read_csv(
            path, header=None, dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
    except pd.errors.EmptyDataError as exc:
        raise PriceDataError(f"price file {path} is empty; {_ENV_HINT}") from exc
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise PriceDataError(f"price file {path} is not a CSV file: {exc}") from exc
    _require_commas(table, path)
    _require_header(table, path)
    return table


def _require_commas(table: pd.DataFrame, path: Path) -> None:
    """Fail on a one-column table whose header holds another separator."""
    header = str(table.iat[0, 0]) if table.shape[1] == 1 and len(table) else ""
    found = [separator for separator in (";", "\t", "|") if separator in header]
    if found:
        raise PriceDataError(
            f"price file {path} is separated by {found[0]!r}, not commas (header "
            f"{header[:60]!r}); save it as comma-separated CSV"
        )


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


def _require_header(table: pd.DataFrame, path: Path) -> None:
    """Fail on a file whose first line is a row of prices, not names."""
    first = str(table.iat[0, 0]).strip() if len(table) else ""
    if first and not first.isalpha() and _parses_as_date(first):
        raise PriceDataError(
            f"price file {path} has no header row (its first line starts with "
            f"the date {first!r}); add a first line naming the columns, e.g. "
            "Date,Open,High,Low,Close,Volume"
        )


def _parses_as_date(text: str) -> bool:
    try:
        pd.Timestamp(text)
    except (ValueError, TypeError):
        return False
    return True


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
    """Exchange date of the newest row with prices (rows without are skipped)."""
    priced = frame.index[~_blank_rows(frame)]
    return pd.Timestamp(priced[-1]).date()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
