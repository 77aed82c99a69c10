"""Cleaning of the standard price frame before features are built.

The input and output are standard price frames (see :mod:`goldsignals.prices`):
a ``datetime64[ns]`` index named ``date`` holding exchange dates, tz-naive,
and the float64 columns ``open``, ``high``, ``low``, ``close``, ``volume``.
The cleaned frame has no NaN, no weekend dates and consistent bars.

Rules, in order: rows without any of open, high, low, close (``null`` rows of
holidays) and rows dated Saturday or Sunday are dropped, counted and logged
with their first dates; a price of 0 or below, a repeated or out-of-order
date, or a bar with only some prices is rejected (PRICE_SCHEMA); a bar whose
open or close lies outside [low, high] by at most MAX_OHLC_GAP of its close is
repaired by widening it, one beyond that is rejected. Every rejection names
the first dates and values.

Before new prices join the stored history, :func:`check_prices` also rejects
a close that moves more than a limit (MAX_DAILY_MOVE by default) from the
close before it: a wrong tick, not a market move.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from goldsignals.errors import PriceValidationError, SettingsError

logger = logging.getLogger(__name__)

OHLC_COLUMNS = ("open", "high", "low", "close")
MAX_OHLC_GAP = 0.10
"""Share of the close by which open or close may lie outside [low, high] (or
low above high) and still be repaired: the real GC=F history reaches 0.078
(2006-06-30); a bar beyond it is a wrong price, not a rounding difference."""
MAX_DAILY_MOVE = 0.25
"""Default of the largest share by which a close may move from the close
before it (``GOLDSIGNALS_MAX_DAILY_MOVE``). The largest daily move of the real
GC=F history 2001-2026 is 11.4 % (2026-01-30: 5318.40 to 4713.90); 25 % is
more than twice that, while a price off by a factor of 10 moves +900 % or
-90 %."""
_LISTED = 5
_FIX_HINT = (
    "Fix or remove these rows in the source named above (a price file given "
    "by GOLDSIGNALS_PRICE_CSV or GOLDSIGNALS_SEED_CSV; for a Yahoo download, "
    "run again once Yahoo has corrected it, or use GOLDSIGNALS_PRICE_SOURCE=csv "
    "with a corrected file); rows that fail these rules are never stored."
)


@dataclass(frozen=True)
class CleaningReport:
    """What :func:`clean_prices` changed.

    Attributes:
        empty_rows_dropped: Rows without any of open, high, low, close.
        first_empty_dates: ISO dates of the first of them.
        weekend_rows_dropped: Rows dated Saturday or Sunday.
        first_weekend_dates: ISO dates of the first of them.
        ohlc_repaired: Bars whose open or close lay outside [low, high], or
            whose low lay above their high.
        first_repaired_dates: ISO dates of the first repaired bars.
        newest_repaired_dates: ISO dates of the newest repaired bars (those
            of a new download or file come last).
        missing_volume_filled: Rows whose missing volume became 0.0.
    """

    empty_rows_dropped: int
    first_empty_dates: tuple[str, ...]
    weekend_rows_dropped: int
    first_weekend_dates: tuple[str, ...]
    ohlc_repaired: int
    first_repaired_dates: tuple[str, ...]
    missing_volume_filled: int
    newest_repaired_dates: tuple[str, ...] = ()


def _ascending(dates: pd.Series) -> pd.Series:
    """Mark each date that is not earlier than the date before it."""
    return ~(dates < dates.shift())


def _complete_bar(frame: pd.DataFrame) -> pd.Series:
    """Mark rows that have all of open, high, low, close or none of them."""
    missing = frame[list(OHLC_COLUMNS)].isna()
    return missing.all(axis="columns") | ~missing.any(axis="columns")


PRICE_SCHEMA = pa.DataFrameSchema(
    columns={
        **{
            name: pa.Column(float, pa.Check.gt(0), nullable=True)
            for name in OHLC_COLUMNS
        },
        "volume": pa.Column(float, pa.Check.ge(0), nullable=True),
    },
    index=pa.Index(
        pa.DateTime,
        name="date",
        unique=True,
        checks=pa.Check(_ascending, name="ascending_dates"),
    ),
    checks=pa.Check(_complete_bar, name="complete_bar"),
    strict=True,
    name="standard price frame",
)
"""Rules of the standard price frame; all-NaN rows pass, partial bars do not."""

_RULES = {
    "greater_than(0)": "{column} must be greater than 0",
    "greater_than_or_equal_to(0)": "{column} must not be negative",
    "field_uniqueness": "each date may appear once (duplicated dates)",
    "ascending_dates": "dates must be ascending (out of order)",
    "complete_bar": "a bar needs all of open, high, low, close (partial bars)",
    "column_in_dataframe": "a column is missing",
    "column_in_schema": "a column is not part of the price frame",
    "field_name('date')": "the index must be named 'date'",
}
_DATE_ONLY_CHECKS = frozenset({"field_uniqueness", "ascending_dates", "complete_bar"})


def validate_prices(frame: pd.DataFrame) -> pd.DataFrame:
    """Check a standard price frame against every rule of PRICE_SCHEMA.

    Args:
        frame: A standard price frame (see the module docstring).

    Returns:
        The same frame when it follows every rule.

    Raises:
        PriceValidationError: One line per broken rule naming the first bad
            dates (ISO) and values, followed by what to do.
    """
    try:
        return PRICE_SCHEMA.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise PriceValidationError(_violations_message(exc.failure_cases)) from exc


def check_prices(
    frame: pd.DataFrame,
    *,
    max_daily_move: float = MAX_DAILY_MOVE,
    before: pd.DataFrame | None = None,
) -> None:
    """Raise if ``frame`` may not join the stored history; change nothing.

    The loader calls it before a price file, the seed file or a download
    joins the stored history, so that rejected rows never get stored. After
    the rules of PRICE_SCHEMA (which the other rules need), every bar too far
    outside [low, high] and every close that moves more than
    ``max_daily_move`` from the close before it (the previous row with
    prices, however many days earlier) is gathered and reported at once.

    Args:
        frame: A standard price frame (see the module docstring).
        max_daily_move: Largest allowed ``abs(close / previous close - 1)``.
        before: Stored bars dated before ``frame``; the newest of them with
            a close is the previous close of ``frame``'s first bar. None or
            empty: that bar has none.

    Raises:
        PriceValidationError: A rule of PRICE_SCHEMA is broken, a bar lies
            further than MAX_OHLC_GAP outside [low, high], or a close moves
            more than ``max_daily_move``; each named with its dates and
            values.
        SettingsError: ``max_daily_move`` is not above 0.
    """
    if not max_daily_move > 0:
        raise SettingsError(
            f"max_daily_move {max_daily_move!r} must be above 0 (0.25 allows a "
            "close to move 25 % in a day); set GOLDSIGNALS_MAX_DAILY_MOVE"
        )
    filled = frame.dropna(how="all", subset=list(OHLC_COLUMNS))
    weekdays = _weekdays(filled)
    validate_prices(weekdays)

    problems = [
        _far_outside(weekdays),
        _jumps(_with_previous_close(weekdays, before), max_daily_move),
    ]
    found = [problem for problem in problems if problem]
    if found:
        raise PriceValidationError("\n".join([*found, _FIX_HINT]))


def clean_prices(
    frame: pd.DataFrame, *, repair_ohlc: bool = True
) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop empty and weekend rows, validate, repair bars and fill volume.

    A bar whose open or close lies outside [low, high] by at most MAX_OHLC_GAP
    of its close is repaired by ``high = max(open, high, close)`` and
    ``low = min(open, low, close)``; a bar further outside is rejected. The
    dropped rows and repaired bars are counted in one log line with their
    first dates.

    Args:
        frame: A standard price frame (see the module docstring).
        repair_ohlc: Repair inconsistent bars; when False they are an error.

    Returns:
        The cleaned standard price frame (no NaN, weekdays only) and a report
        of the changes.

    Raises:
        PriceValidationError: A rule of PRICE_SCHEMA is broken (including a
            partial bar), a bar lies further than MAX_OHLC_GAP outside
            [low, high], or bars are inconsistent and ``repair_ohlc`` is False.
    """
    filled = frame.dropna(how="all", subset=list(OHLC_COLUMNS))
    weekdays = _weekdays(filled)
    validate_prices(weekdays)
    _reject_far_outside(weekdays)

    inconsistent = _inconsistent_bars(weekdays)
    if inconsistent.any() and not repair_ohlc:
        raise PriceValidationError(_inconsistent_message(weekdays, inconsistent))

    repaired = _repair_bars(weekdays, inconsistent)
    report = CleaningReport(
        empty_rows_dropped=len(frame) - len(filled),
        first_empty_dates=_first_dropped(frame, filled),
        weekend_rows_dropped=len(filled) - len(weekdays),
        first_weekend_dates=_first_dropped(filled, weekdays),
        ohlc_repaired=int(inconsistent.sum()),
        first_repaired_dates=_iso_dates(weekdays.index[inconsistent][:_LISTED]),
        missing_volume_filled=int(repaired["volume"].isna().sum()),
        newest_repaired_dates=_iso_dates(weekdays.index[inconsistent][-_LISTED:]),
    )
    _log_report(len(repaired), report)
    return repaired.fillna({"volume": 0.0}), report


def _first_dropped(before: pd.DataFrame, after: pd.DataFrame) -> tuple[str, ...]:
    dropped = before.index.difference(after.index, sort=False)
    return _iso_dates(dropped[:_LISTED])


def _log_report(rows: int, report: CleaningReport) -> None:
    logger.info(
        "Cleaned prices: %d rows left; dropped %d rows without prices%s and %d "
        "weekend rows%s; repaired %d bars with open or close outside high-low "
        "or low above high%s%s; filled %d missing volumes with 0",
        rows,
        report.empty_rows_dropped,
        _first(report.first_empty_dates),
        report.weekend_rows_dropped,
        _first(report.first_weekend_dates),
        report.ohlc_repaired,
        _first(report.first_repaired_dates),
        _newest(report),
        report.missing_volume_filled,
    )


def _newest(report: CleaningReport) -> str:
    if report.ohlc_repaired <= _LISTED:
        return ""
    return f" (newest: {', '.join(report.newest_repaired_dates)})"


def _first(dates: tuple[str, ...]) -> str:
    return f" (first: {', '.join(dates)})" if dates else ""


def _weekdays(frame: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(frame.index, pd.DatetimeIndex):
        validate_prices(frame)
    return frame[pd.DatetimeIndex(frame.index).day_of_week < 5]


def _inconsistent_bars(frame: pd.DataFrame) -> pd.Series:
    low, high = frame["low"], frame["high"]
    open_outside = (frame["open"] < low) | (frame["open"] > high)
    close_outside = (frame["close"] < low) | (frame["close"] > high)
    return open_outside | close_outside | (low > high)


def _ohlc_gaps(frame: pd.DataFrame) -> pd.Series:
    """How far each bar lies outside [low, high], as a share of its close."""
    top = frame[["open", "close"]].max(axis=1)
    bottom = frame[["open", "close"]].min(axis=1)
    misses = [top - frame["high"], frame["low"] - bottom, frame["low"] - frame["high"]]
    return pd.concat(misses, axis=1).max(axis=1).clip(lower=0) / frame["close"]


def _reject_far_outside(frame: pd.DataFrame) -> None:
    problem = _far_outside(frame)
    if problem:
        raise PriceValidationError(f"{problem} {_FIX_HINT}")


def _far_outside(frame: pd.DataFrame) -> str | None:
    """Describe the bars too far outside [low, high] to repair, if any."""
    gaps = _ohlc_gaps(frame)
    far = gaps > MAX_OHLC_GAP
    if not far.any():
        return None

    bars = frame.loc[far].assign(gap=gaps[far]).head(_LISTED)
    examples = ", ".join(
        f"{_iso(date)} (open {row.open:g}, high {row.high:g}, low {row.low:g}, "
        f"close {row.close:g}: {row.gap:.0%} outside)"
        for date, row in zip(bars.index, bars.itertuples(), strict=True)
    )
    return (
        f"{int(far.sum())} bars have open or close outside [low, high] by more "
        f"than {MAX_OHLC_GAP:.0%} of the close, too far to repair, first: "
        f"{examples}."
    )


def _with_previous_close(frame: pd.DataFrame, before: pd.DataFrame | None) -> pd.Series:
    """The closes of ``frame``, after the newest close of ``before``, if any."""
    closes = frame["close"]
    if before is None or closes.empty:
        return closes
    earlier = before["close"].dropna()
    earlier = earlier[earlier.index < closes.index[0]]
    return pd.concat([earlier.tail(1), closes]) if len(earlier) else closes


def _jumps(closes: pd.Series, limit: float) -> str | None:
    """Describe the closes that move more than ``limit`` from the one before."""
    moves = closes / closes.shift() - 1.0
    jumped = np.flatnonzero((moves.abs() > limit).to_numpy())
    if not jumped.size:
        return None

    dates, shown = closes.index, jumped[:_LISTED]
    examples = ", ".join(
        f"{_iso(dates[at - 1])} close {closes.iloc[at - 1]:g} to "
        f"{_iso(dates[at])} close {closes.iloc[at]:g} ({moves.iloc[at]:+.1%})"
        for at in shown
    )
    largest = float(moves.abs().iloc[jumped].max())
    return (
        f"{_counted(jumped.size, 'close')} moved more than {limit * 100:g}% "
        f"from the close before, first: {examples}. Such a move is most likely "
        "a wrong price; if it is real, raise GOLDSIGNALS_MAX_DAILY_MOVE (now "
        f"{limit:g}) above {largest:.4g}."
    )


def _repair_bars(frame: pd.DataFrame, inconsistent: pd.Series) -> pd.DataFrame:
    repaired = frame.copy()
    bars = frame.loc[inconsistent]
    repaired.loc[inconsistent, "high"] = bars[["open", "high", "close"]].max(axis=1)
    repaired.loc[inconsistent, "low"] = bars[["open", "low", "close"]].min(axis=1)
    return repaired


def _inconsistent_message(frame: pd.DataFrame, inconsistent: pd.Series) -> str:
    bars = frame.loc[inconsistent].head(_LISTED)
    examples = ", ".join(
        f"{_iso(date)} (open {row.open:g}, high {row.high:g}, low {row.low:g}, "
        f"close {row.close:g})"
        for date, row in zip(bars.index, bars.itertuples(), strict=True)
    )
    return (
        f"{int(inconsistent.sum())} bars have open or close outside [low, high], "
        f"first: {examples}. Clean with repair_ohlc=True, or fix these rows in "
        "the source file."
    )


def _violations_message(cases: pd.DataFrame) -> str:
    subjects = cases["column"].where(cases["schema_context"] != "DataFrameSchema")
    keyed = cases.assign(subject=subjects.fillna("frame"))
    rules = keyed[["subject", "check"]].drop_duplicates()

    lines = [
        f"- {_rule_text(subject, check)}: {_examples(keyed, subject, check)}"
        for subject, check in rules.itertuples(index=False)
    ]
    header = f"prices break {len(lines)} rule(s) of the standard price frame:"
    return "\n".join([header, *lines, _FIX_HINT])


def _rule_text(subject: object, check: object) -> str:
    template = _RULES.get(str(check), "{column} fails " + str(check))
    return template.format(column=subject)


def _examples(cases: pd.DataFrame, subject: object, check: object) -> str:
    rows = cases[(cases["subject"] == subject) & (cases["check"] == check)]
    if rows["index"].isna().all():
        return ", ".join(str(value) for value in rows["failure_case"][:_LISTED])

    dated = rows.drop_duplicates(subset="index")
    shown = [_example(date, value, check) for date, value in _pairs(dated)]
    return f"{_rows(len(dated))}, first: {', '.join(shown)}"


def _pairs(rows: pd.DataFrame) -> list[tuple[object, object]]:
    head = rows.head(_LISTED)
    return list(zip(head["index"], head["failure_case"], strict=True))


def _example(date: object, value: object, check: object) -> str:
    if str(check) in _DATE_ONLY_CHECKS:
        return _iso(date)
    return f"{_iso(date)} ({value})"


def _rows(count: int) -> str:
    return _counted(count, "row")


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _iso(date: object) -> str:
    if isinstance(date, datetime.date):
        return date.strftime("%Y-%m-%d")
    return str(date)


def _iso_dates(dates: pd.Index) -> tuple[str, ...]:
    return tuple(_iso(date) for date in dates)
