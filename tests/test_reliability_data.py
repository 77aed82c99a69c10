"""Reliability of the price data (issue 6, data cases 1-8).

Only the network call to Yahoo is faked: either the ``Fetcher`` handed to
``load_prices`` or ``yfinance.Ticker`` under the real ``fetch_yahoo``. Waits
between retries are recorded, never slept.

Which test covers which case (tests in other modules are named with theirs):

1. Two-level (``Price``, ``Ticker``) columns, no ``Adj Close``:
   ``test_case01_download_layouts_load_like_classic_layout``; a header
   naming another ticker:
   ``test_case01_price_file_of_another_ticker_rejected_history_unchanged``,
   ``test_case01_seed_file_of_another_ticker_seeds_nothing``; also
   ``test_prices.py::test_normalize_prices_flattens_single_ticker_columns``
   and ``test_prices.py::test_read_price_csv_multiheader_matches_main_file``.
2. Empty frame (holiday or network failure):
   ``test_case02_holiday_run_adds_no_row_and_logs_why``,
   ``test_case02_yahoo_empty_frame_on_holiday_is_no_new_bars``,
   ``test_case02_network_failure_retries_with_backoff_then_uses_fresh_history``,
   ``test_case02_network_failure_retries_then_fails_when_history_is_stale``,
   ``test_case02_max_price_age_zero_accepts_old_history``,
   ``test_case02_seed_fallback_fails_when_seed_is_stale``,
   ``test_case02_network_failure_then_recovery_stores_new_bars``,
   ``test_case02_long_empty_answer_is_a_failed_download_not_a_holiday``,
   ``test_case02_empty_answer_and_empty_history_never_trains_on_nothing``,
   ``test_case02_stale_error_names_the_stored_end_and_the_seed``;
   also ``test_prices.py::test_load_prices_history_never_shrinks`` and
   ``test_prices.py::test_load_prices_empty_fetch_is_not_stale`` (weekend).
3. ``YFRateLimitError``:
   ``test_case03_rate_limit_retries_then_fails_without_partial_write``,
   ``test_case03_rate_limit_then_success_stores_the_bars``.
4. All-NaN final row and partial bar of an open session:
   ``test_case04_final_all_nan_row_not_stored_and_its_date_fetched_again``,
   ``test_case04_partial_bar_of_open_session_held_back_then_stored_final``,
   ``test_case04_price_file_bar_of_open_session_held_back``,
   ``test_case04_price_file_bar_dated_weeks_ahead_is_a_mistyped_date``,
   ``test_case04_seed_bar_dated_years_ahead_is_refused_not_stored``,
   ``test_case04_last_closed_session_follows_new_york_close``.
5. Duplicate dates: ``test_case05_duplicate_dates_last_row_wins_never_values``,
   ``test_case05_refetched_dates_replace_stored_rows_without_duplicate_warning``;
   also ``test_prices.py::test_normalize_prices_duplicates_keep_last_row``,
   ``test_prices.py::test_normalize_prices_duplicates_warn_with_dates`` and
   ``test_prices.py::test_merge_history_new_rows_win_and_stored_dates_stay``.
6. Timezone-aware dates across daylight-saving time:
   ``test_case06_dst_offsets_keep_every_exchange_date_once``; also
   ``test_prices.py::test_read_price_csv_tzaware_keeps_every_date_across_dst``
   and ``test_prices.py::``
   ``test_normalize_prices_tzaware_index_keeps_local_exchange_date``.
7. Weekend, holiday and ``null`` rows:
   ``test_case07_weekend_and_null_rows_dropped_with_counts_in_log``,
   ``test_case07_web_export_null_rows_counted_in_log``,
   ``test_case07_price_file_null_rows_counted_when_loaded``.
8. Non-positive prices, bars outside high-low and price jumps:
   ``test_case08_non_positive_price_rejected_naming_dates_history_unchanged``,
   ``test_case08_close_far_outside_high_low_rejected_naming_dates``,
   ``test_case08_close_outside_high_low_within_tolerance_repaired``,
   ``test_case08_tenfold_last_bar_of_price_file_rejected_history_unchanged``,
   ``test_case08_jump_inside_downloaded_batch_rejected_naming_dates``,
   ``test_case08_jump_against_stored_close_rejected_in_the_table``,
   ``test_case08_real_history_passes_the_jump_guard``,
   ``test_case08_raised_move_limit_stores_a_real_jump``; also
   ``test_cleaning.py::test_validate_prices_non_positive_price_names_first_date``,
   ``test_cleaning.py::test_clean_prices_repairs_by_stated_rule`` and the
   ``test_cleaning.py::test_check_prices_*`` tests of the jump rule.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yfinance
from yfinance.exceptions import YFRateLimitError

from goldsignals.cleaning import MAX_DAILY_MOVE, MAX_OHLC_GAP, clean_prices
from goldsignals.errors import (
    PriceDataError,
    PriceSourceUnavailableError,
    PriceValidationError,
)
from goldsignals.price_store import SqlHistory
from goldsignals.prices import (
    PRICE_COLUMNS,
    Fetcher,
    LoadedPrices,
    empty_prices,
    last_closed_session,
    load_prices,
    normalize_prices,
    read_history,
    read_price_csv,
    write_history,
    yahoo_fetcher,
)
from goldsignals.signal_store import (
    count_signals,
    create_signal_engine,
    read_latest_signals,
    write_signals,
)
from tests.helpers import signal_row

START = datetime.date(2024, 1, 1)
NEW_YORK = "America/New_York"
MAIN_FILE = "gold_futures_daily.csv"
WEB_EXPORT_FILE = "quirks/yahoo_web_csv_null_rows_zero_volume_gc_f_head.csv"

Calls = list[tuple[datetime.date, datetime.date | None]]


def _at(stamp: str) -> datetime.datetime:
    """A New York wall-clock time, e.g. ``"2024-03-08 11:00"``."""
    return pd.Timestamp(stamp, tz=NEW_YORK).to_pydatetime()


def _bars(dates: list[str], close: float = 100.0) -> pd.DataFrame:
    """Standard price frame of consistent bars around ``close``."""
    index = pd.DatetimeIndex(dates, name="date").as_unit("ns")
    values = {"open": close, "high": close + 1, "low": close - 1, "close": close}
    frame = pd.DataFrame(values | {"volume": 10.0}, index=index)
    return frame[list(PRICE_COLUMNS)].astype("float64")


def _load_file(
    prices: Path, history: Path, now: datetime.datetime, ticker: str = "GC=F"
) -> LoadedPrices:
    """Load a price file into ``history`` as the ``csv`` source does."""
    return load_prices(
        ticker=ticker,
        source="csv",
        history=history,
        price_csv=prices,
        history_start=START,
        now=now,
    )


def _fetcher(answers: list[pd.DataFrame | Exception], calls: Calls) -> Fetcher:
    """A fake Yahoo: each call gives the next answer (the last one repeats)."""

    def fetch(
        ticker: str, start: datetime.date, end: datetime.date | None
    ) -> pd.DataFrame:
        calls.append((start, end))
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return fetch


def _offline(ticker: str = "GC=F") -> PriceSourceUnavailableError:
    return PriceSourceUnavailableError(f"download of {ticker} failed: no network")


def _load(
    history: Path, fetcher: Fetcher, now: datetime.datetime, **options: Any
) -> LoadedPrices:
    return load_prices(
        ticker="GC=F",
        source="yfinance",
        history=history,
        history_start=START,
        now=now,
        fetcher=fetcher,
        **options,
    )


def _days(frame: pd.DataFrame) -> list[str]:
    return [f"{day:%Y-%m-%d}" for day in frame.index]


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


class _FakeTicker:
    """Stands in for ``yfinance.Ticker``: ``history`` gives the next answer."""

    def __init__(self, answers: list[Any], calls: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.calls = calls

    def history(self, **kwargs: Any) -> pd.DataFrame:
        self.calls.append(kwargs)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return pd.DataFrame(answer)


def _fake_yahoo(monkeypatch: pytest.MonkeyPatch, answers: list[Any]) -> list[Any]:
    """Replace yfinance's network entry points; return the recorded calls."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(yfinance, "Ticker", lambda ticker: _FakeTicker(answers, calls))
    monkeypatch.setattr(yfinance, "set_tz_cache_location", lambda folder: None)
    return calls


def _yahoo_frame(dates: list[str], close: list[float]) -> pd.DataFrame:
    """What ``Ticker.history`` returns: title-case columns, New York dates."""
    index = pd.DatetimeIndex(dates, name="Date").tz_localize(NEW_YORK)
    values = np.asarray(close, dtype="float64")
    return pd.DataFrame(
        {"Open": values, "High": values + 1, "Low": values - 1, "Close": values}
        | {"Adj Close": values, "Volume": 5.0, "Dividends": 0.0},
        index=index,
    )


def _two_level(classic: pd.DataFrame, *, ticker_first: bool) -> pd.DataFrame:
    """``yf.download`` layout: alphabetical prices, no Adj Close, two levels."""
    prices = classic[["Close", "High", "Low", "Open", "Volume"]]
    if ticker_first:
        columns = pd.MultiIndex.from_product([["GC=F"], prices.columns])
    else:
        columns = pd.MultiIndex.from_product(
            [prices.columns, ["GC=F"]], names=["Price", "Ticker"]
        )
    return prices.set_axis(columns, axis="columns")


@pytest.mark.parametrize(
    "layout", ["price_ticker_levels", "unnamed_ticker_price_levels"]
)
def test_case01_download_layouts_load_like_classic_layout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, layout: str
) -> None:
    classic = _yahoo_frame(["2024-01-02", "2024-01-03"], [2060.5, 2040.25])
    download = _two_level(classic, ticker_first=layout.startswith("unnamed"))
    _fake_yahoo(monkeypatch, [classic, download])
    fetcher = yahoo_fetcher(cache_dir=tmp_path)
    evening = _at("2024-01-03 18:00")

    expected = _load(tmp_path / "classic.parquet", fetcher, evening)
    loaded = _load(tmp_path / "download.parquet", fetcher, evening)

    assert "adj close" not in [name.lower() for name in download.columns.unique(0)]
    assert list(loaded.prices.columns) == list(PRICE_COLUMNS)
    pd.testing.assert_frame_equal(loaded.prices, expected.prices)
    assert loaded.prices["close"].tolist() == [2060.5, 2040.25]


MULTIHEADER_FILE = "quirks/yf_download_multiheader_daily_gc_f_head.csv"


def test_case01_price_file_of_another_ticker_rejected_history_unchanged(
    shared_data: Path, tmp_path: Path
) -> None:
    history = tmp_path / "SI_F.parquet"
    gold = shared_data / MULTIHEADER_FILE

    with pytest.raises(
        PriceDataError,
        match=r"price file .*multiheader.*: the prices are of GC=F, not of SI=F; "
        r"give a file of SI=F prices, or set the ticker .* to GC=F",
    ):
        _load_file(gold, history, _at("2026-08-07 18:00"), ticker="SI=F")

    assert not history.exists()


def test_case01_seed_file_of_another_ticker_seeds_nothing(
    shared_data: Path, tmp_path: Path
) -> None:
    history = tmp_path / "SI_F.parquet"
    down = _fetcher([PriceSourceUnavailableError("offline")] * 4, [])

    with pytest.raises(PriceDataError, match=r"the prices are of GC=F, not of SI=F"):
        load_prices(
            ticker="SI=F",
            source="yfinance",
            history=history,
            seed_csv=shared_data / MULTIHEADER_FILE,
            seed_ticker="SI=F",
            history_start=START,
            now=_at("2026-08-07 18:00"),
            fetcher=down,
            max_age_days=0,
            sleep=lambda _: None,
        )

    assert not history.exists()


def test_case04_seed_bar_dated_years_ahead_is_refused_not_stored(
    shared_data: Path, tmp_path: Path
) -> None:
    history = tmp_path / "GC_F.parquet"
    seed = tmp_path / "seed.csv"
    seed.write_text(
        (shared_data / MAIN_FILE).read_text() + "2062-08-07,4240,4250,4230,4245,100\n"
    )
    down = _fetcher([PriceSourceUnavailableError("offline")], [])

    with pytest.raises(
        PriceDataError, match=r"seed file .*seed\.csv has 1 bar\(s\) dated after"
    ):
        load_prices(
            ticker="GC=F",
            source="yfinance",
            history=history,
            seed_csv=seed,
            history_start=START,
            now=_at("2026-08-07 18:00"),
            fetcher=down,
            sleep=lambda _: None,
        )

    assert not history.exists()


def test_case04_price_file_bar_dated_weeks_ahead_is_a_mistyped_date(
    tmp_path: Path,
) -> None:
    history = tmp_path / "GC_F.parquet"
    prices = tmp_path / "prices.csv"
    frame = _bars(["2024-03-06", "2024-03-07", "2024-04-19"])
    frame.rename_axis("Date").rename(columns=str.title).to_csv(prices)

    with pytest.raises(
        PriceDataError,
        match=r"price file .*prices\.csv has 1 bar\(s\) dated after 2024-03-17, later "
        r"than any session open now \(the last closed one is 2024-03-07\): "
        r"\['2024-04-19'\]; fix the dates",
    ):
        _load_file(prices, history, _at("2024-03-08 11:00"))

    assert not history.exists()


def test_case02_holiday_run_adds_no_row_and_logs_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = tmp_path / "GC_F.parquet"
    stored = _bars(["2024-07-02", "2024-07-03"])
    write_history(history, stored)
    before = _snapshot(history)
    calls: Calls = []

    with caplog.at_level(logging.INFO):
        loaded = _load(
            history, _fetcher([empty_prices()], calls), _at("2024-07-04 18:00")
        )

    assert calls == [(datetime.date(2024, 7, 4), datetime.date(2024, 7, 5))]
    assert (loaded.source, loaded.stale, loaded.fetched_rows) == ("yahoo", False, 0)
    pd.testing.assert_frame_equal(loaded.prices, stored)
    assert _snapshot(history) == before
    assert (
        "No new bars of GC=F since 2024-07-04 through 2024-07-04: market holiday "
        "or weekend" in caplog.text
    )
    assert all(record.levelno < logging.WARNING for record in caplog.records)


@pytest.mark.parametrize(
    "answer",
    [
        pd.DataFrame(columns=["Open", "High", "Low", "Close", "Adj Close", "Volume"]),
        pd.DataFrame(),
    ],
    ids=["yfinance_empty_df", "bare_empty_frame"],
)
def test_case02_yahoo_empty_frame_on_holiday_is_no_new_bars(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answer: pd.DataFrame
) -> None:
    history = tmp_path / "GC_F.parquet"
    stored = _bars(["2024-12-24"])
    write_history(history, stored)
    _fake_yahoo(monkeypatch, [answer])

    loaded = _load(history, yahoo_fetcher(cache_dir=tmp_path), _at("2024-12-25 18:00"))

    assert (loaded.source, loaded.stale, loaded.fetched_rows) == ("yahoo", False, 0)
    pd.testing.assert_frame_equal(loaded.prices, stored)


def test_case02_network_failure_retries_with_backoff_then_uses_fresh_history(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = tmp_path / "GC_F.parquet"
    stored = _bars(["2024-01-04", "2024-01-05"])
    write_history(history, stored)
    calls: Calls = []
    waits: list[float] = []

    with caplog.at_level(logging.INFO):
        loaded = _load(
            history,
            _fetcher([_offline()], calls),
            _at("2024-01-09 18:00"),
            sleep=waits.append,
        )

    assert len(calls) == 4
    assert waits == [2.0, 4.0, 8.0]
    assert (loaded.source, loaded.stale, loaded.last_date) == (
        "history",
        True,
        datetime.date(2024, 1, 5),
    )
    pd.testing.assert_frame_equal(loaded.prices, stored)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "after 4 attempts" in warnings[0]
    assert "stored history ending 2024-01-05, 4 days old (stale)" in warnings[0]


def test_case02_network_failure_retries_then_fails_when_history_is_stale(
    tmp_path: Path,
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2026-08-05", "2026-08-06"]))
    before = _snapshot(history)
    calls: Calls = []
    waits: list[float] = []

    with pytest.raises(PriceSourceUnavailableError) as caught:
        _load(
            history,
            _fetcher([_offline()], calls),
            _at("2026-12-03 18:00"),
            sleep=waits.append,
        )

    message = str(caught.value)
    assert "cannot be reached for GC=F after 4 attempts" in message
    assert "from 2026-08-06, 119 days before today (2026-12-03" in message
    assert "more than GOLDSIGNALS_MAX_PRICE_AGE_DAYS=7" in message
    assert "set GOLDSIGNALS_MAX_PRICE_AGE_DAYS=0" in message
    assert isinstance(caught.value.__cause__, PriceSourceUnavailableError)
    assert (len(calls), waits) == (4, [2.0, 4.0, 8.0])
    assert _snapshot(history) == before


def test_case02_stale_error_names_the_stored_end_and_the_seed(
    tmp_path: Path,
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2026-06-29", "2026-06-30"]))
    seed = _seed_file(tmp_path / "seed.csv", _bars(["2026-08-05", "2026-08-06"]))

    with pytest.raises(PriceSourceUnavailableError) as caught:
        _load(
            history,
            _fetcher([_offline()], []),
            _at("2026-12-03 18:00"),
            seed_csv=seed,
            sleep=lambda _: None,
        )

    message = str(caught.value)
    assert "the stored history (ending 2026-06-30) with the seed file" in message
    assert "is from 2026-08-06" in message


def test_case02_max_price_age_zero_accepts_old_history(tmp_path: Path) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2026-08-06"]))

    loaded = _load(
        history,
        _fetcher([_offline()], []),
        _at("2026-12-03 18:00"),
        max_age_days=0,
        sleep=lambda seconds: None,
    )

    assert (loaded.source, loaded.stale) == ("history", True)
    assert loaded.last_date == datetime.date(2026, 8, 6)


def _seed_file(path: Path, frame: pd.DataFrame) -> Path:
    frame.rename_axis("Date").rename(columns=str.title).to_csv(path)
    return path


def test_case02_seed_fallback_fails_when_seed_is_stale(tmp_path: Path) -> None:
    history = tmp_path / "GC_F.parquet"
    seed = _seed_file(tmp_path / "seed.csv", _bars(["2026-08-05", "2026-08-06"]))

    with pytest.raises(
        PriceSourceUnavailableError,
        match=r"seed file .*seed\.csv is from 2026-08-06, 119 days before today"
        r".*GOLDSIGNALS_MAX_PRICE_AGE_DAYS=7",
    ):
        _load(
            history,
            _fetcher([_offline()], []),
            _at("2026-12-03 18:00"),
            seed_csv=seed,
            sleep=lambda seconds: None,
        )

    assert not history.exists()


def test_case02_network_failure_then_recovery_stores_new_bars(
    tmp_path: Path,
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-04"]))
    new = _bars(["2024-01-05", "2024-01-08"], close=101.0)
    calls: Calls = []
    waits: list[float] = []

    loaded = _load(
        history,
        _fetcher([_offline(), _offline(), new], calls),
        _at("2024-01-08 18:00"),
        sleep=waits.append,
    )

    assert (len(calls), waits) == (3, [2.0, 4.0])
    assert (loaded.source, loaded.stale, loaded.fetched_rows) == ("yahoo", False, 2)
    pd.testing.assert_frame_equal(read_history(history), loaded.prices)


def test_case02_long_empty_answer_is_a_failed_download_not_a_holiday(
    tmp_path: Path,
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-05"]))
    calls: Calls = []

    with pytest.raises(
        PriceSourceUnavailableError,
        match=r"(?s)no bars of GC=F for 2024-01-06 through 2024-01-19, 10 weekdays"
        r".*from 2024-01-05, 14 days before today",
    ):
        _load(
            history,
            _fetcher([empty_prices()], calls),
            _at("2024-01-19 18:00"),
            sleep=lambda seconds: None,
        )

    assert len(calls) == 4


def test_case02_empty_answer_and_empty_history_never_trains_on_nothing(
    tmp_path: Path,
) -> None:
    history = tmp_path / "GC_F.parquet"

    with pytest.raises(PriceSourceUnavailableError, match="GOLDSIGNALS_SEED_CSV"):
        _load(
            history,
            _fetcher([empty_prices()], []),
            _at("2024-01-03 18:00"),
            sleep=lambda seconds: None,
        )

    assert not history.exists()


def test_case03_rate_limit_retries_then_fails_without_partial_write(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-04", "2024-01-05"]))
    seed = _seed_file(tmp_path / "seed.csv", _bars(["2024-01-02", "2024-01-03"]))
    before = _snapshot(history)
    calls = _fake_yahoo(monkeypatch, [YFRateLimitError()])
    waits: list[float] = []

    with pytest.raises(
        PriceSourceUnavailableError,
        match=r"(?s)rate-limits the download of GC=F.*from 2024-01-05, 17 days",
    ) as caught:
        _load(
            history,
            yahoo_fetcher(cache_dir=tmp_path),
            _at("2024-01-22 18:00"),
            seed_csv=seed,
            sleep=waits.append,
        )

    cause = caught.value.__cause__
    assert cause is not None
    assert isinstance(cause.__cause__, YFRateLimitError)
    assert (len(calls), waits) == (4, [2.0, 4.0, 8.0])
    assert _snapshot(history) == before


def test_case03_rate_limit_then_success_stores_the_bars(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-04"], 2040.0))
    answer = _yahoo_frame(["2024-01-05"], [2050.0])
    calls = _fake_yahoo(monkeypatch, [YFRateLimitError(), answer])
    waits: list[float] = []

    loaded = _load(
        history,
        yahoo_fetcher(cache_dir=tmp_path),
        _at("2024-01-05 18:00"),
        sleep=waits.append,
    )

    assert (len(calls), waits) == (2, [2.0])
    assert loaded.last_date == datetime.date(2024, 1, 5)
    assert read_history(history)["close"].tolist() == [2040.0, 2050.0]


def test_case04_final_all_nan_row_not_stored_and_its_date_fetched_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-03"]))
    blank = _bars(["2024-01-05"]) * np.nan
    first = pd.concat([_bars(["2024-01-04"], 101.0), blank])
    second = _bars(["2024-01-05", "2024-01-08"], 102.0)
    calls: Calls = []
    fetcher = _fetcher([first, second], calls)

    with caplog.at_level(logging.INFO, logger="goldsignals.prices"):
        loaded = _load(history, fetcher, _at("2024-01-05 18:00"))
    cleaned, _ = clean_prices(loaded.prices)
    again = _load(history, fetcher, _at("2024-01-08 18:00"))

    assert "Dropped 1 rows without prices: ['2024-01-05']" in caplog.text
    assert loaded.last_date == datetime.date(2024, 1, 4)
    assert cleaned.index[-1] == pd.Timestamp("2024-01-04")
    assert calls[1][0] == datetime.date(2024, 1, 5)
    assert read_history(history)["close"].tolist() == [100.0, 101.0, 102.0, 102.0]
    assert again.last_date == datetime.date(2024, 1, 8)


def test_case04_partial_bar_of_open_session_held_back_then_stored_final(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-03-06"]))
    during = pd.concat([_bars(["2024-03-07"], 101.0), _bars(["2024-03-08"], 150.0)])
    after_close = _bars(["2024-03-08"], 102.0)
    calls: Calls = []
    fetcher = _fetcher([during, after_close], calls)

    with caplog.at_level(logging.INFO, logger="goldsignals.prices"):
        morning = _load(history, fetcher, _at("2024-03-08 11:00"))
    cleaned, _ = clean_prices(morning.prices)
    evening = _load(history, fetcher, _at("2024-03-08 17:00"))

    assert calls == [
        (datetime.date(2024, 3, 7), datetime.date(2024, 3, 8)),
        (datetime.date(2024, 3, 8), datetime.date(2024, 3, 9)),
    ]
    assert "Held back 1 bars dated after 2024-03-07" in caplog.text
    assert morning.last_date == datetime.date(2024, 3, 7)
    assert cleaned.index[-1] == pd.Timestamp("2024-03-07")
    assert evening.last_date == datetime.date(2024, 3, 8)
    assert read_history(history)["close"].tolist() == [100.0, 101.0, 102.0]


def test_case04_price_file_bar_of_open_session_held_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = tmp_path / "GC_F.parquet"
    prices = tmp_path / "prices.csv"
    frame = _bars(["2024-03-06", "2024-03-07", "2024-03-08"])
    frame.rename_axis("Date").rename(columns=str.title).to_csv(prices)

    with caplog.at_level(logging.INFO, logger="goldsignals.prices"):
        loaded = load_prices(
            ticker="GC=F",
            source="csv",
            history=history,
            price_csv=prices,
            history_start=START,
            now=_at("2024-03-08 11:00"),
        )

    assert loaded.last_date == datetime.date(2024, 3, 7)
    assert _days(read_history(history)) == ["2024-03-06", "2024-03-07"]
    assert "Held back 1 bars dated after 2024-03-07" in caplog.text


@pytest.mark.parametrize(
    ("now", "session"),
    [
        (_at("2024-03-08 16:59"), "2024-03-07"),
        (_at("2024-03-08 17:00"), "2024-03-08"),
        (_at("2024-03-09 00:30"), "2024-03-08"),
        (datetime.datetime(2024, 3, 8, 21, 30, tzinfo=datetime.UTC), "2024-03-07"),
        (datetime.datetime(2024, 3, 11, 21, 30, tzinfo=datetime.UTC), "2024-03-11"),
        (datetime.datetime(2024, 3, 9, 3, 0, tzinfo=datetime.UTC), "2024-03-08"),
    ],
)
def test_case04_last_closed_session_follows_new_york_close(
    now: datetime.datetime, session: str
) -> None:
    assert last_closed_session(now) == datetime.date.fromisoformat(session)


def test_case05_duplicate_dates_last_row_wins_never_values(tmp_path: Path) -> None:
    raw = pd.concat(
        [
            _bars(["2024-01-02", "2024-01-03", "2024-01-04"], 100.0),
            _bars(["2024-01-03"], 105.0),
            _bars(["2024-01-04"]) * np.nan,
            _bars(["2024-01-05", "2024-01-08"], 100.0),
        ]
    )
    history = tmp_path / "GC_F.parquet"

    frame = normalize_prices(raw)
    loaded = _load(history, _fetcher([raw], []), _at("2024-01-08 18:00"))

    dates = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
    assert _days(frame) == dates
    assert frame["close"].tolist() == [100.0, 105.0, 100.0, 100.0, 100.0]
    pd.testing.assert_frame_equal(loaded.prices, frame)
    pd.testing.assert_frame_equal(read_history(history), frame)


def test_case05_refetched_dates_replace_stored_rows_without_duplicate_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-02", "2024-01-03", "2024-01-04"]))
    seed = _seed_file(tmp_path / "seed.csv", _bars(["2024-01-02", "2024-01-03"], 90.0))
    refetched = _bars(["2024-01-04", "2024-01-05"], 101.0)

    with caplog.at_level(logging.WARNING):
        loaded = _load(history, _fetcher([refetched], []), _at("2024-01-05 18:00"))
        stale = _load(
            history,
            _fetcher([_offline()], []),
            _at("2024-01-08 18:00"),
            seed_csv=seed,
            retries=0,
        )

    assert loaded.prices["close"].tolist() == [100.0, 100.0, 101.0, 101.0]
    pd.testing.assert_frame_equal(stale.prices, loaded.prices)
    assert "duplicated dates" not in caplog.text
    assert len(caplog.records) == 1


@pytest.mark.parametrize("zone", [NEW_YORK, "UTC"])
def test_case06_dst_offsets_keep_every_exchange_date_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, zone: str
) -> None:
    stamps = [
        "2024-10-31 00:00-04:00",
        "2024-11-01 00:00-04:00",
        "2024-11-03 23:00-05:00",
        "2024-11-05 00:00-05:00",
        "2025-03-07 00:00-05:00",
        "2025-03-10 01:00-04:00",
        "2025-03-11 00:00-04:00",
    ]
    index = pd.DatetimeIndex(pd.to_datetime(stamps, utc=True), name="Date")
    answer = _yahoo_frame(["2024-01-02"] * 7, [2000.0 + day for day in range(7)])
    _fake_yahoo(monkeypatch, [answer.set_axis(index.tz_convert(zone))])

    loaded = _load(
        tmp_path / "GC_F.parquet",
        yahoo_fetcher(cache_dir=tmp_path),
        _at("2025-03-11 18:00"),
    )
    cleaned, report = clean_prices(loaded.prices)

    assert _days(cleaned) == [
        "2024-10-31",
        "2024-11-01",
        "2024-11-04",
        "2024-11-05",
        "2025-03-07",
        "2025-03-10",
        "2025-03-11",
    ]
    assert cleaned["close"].tolist() == [2000.0 + day for day in range(7)]
    assert report.weekend_rows_dropped == 0


def test_case07_weekend_and_null_rows_dropped_with_counts_in_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    weekend, holiday, sunday = ["2024-01-13", "2024-01-14"], "2024-01-15", "2024-01-21"
    frame = _bars(["2024-01-12", *weekend, holiday, "2024-01-16", sunday, "2024-01-22"])
    frame.loc[[holiday, sunday]] = np.nan

    with caplog.at_level(logging.INFO, logger="goldsignals.cleaning"):
        cleaned, report = clean_prices(frame)

    assert _days(cleaned) == [
        "2024-01-12",
        "2024-01-16",
        "2024-01-22",
    ]
    assert (report.empty_rows_dropped, report.weekend_rows_dropped) == (2, 2)
    assert (
        "dropped 2 rows without prices (first: 2024-01-15, 2024-01-21) and 2 "
        "weekend rows (first: 2024-01-13, 2024-01-14)" in caplog.text
    )


def test_case07_web_export_null_rows_counted_in_log(
    shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = read_price_csv(shared_data / WEB_EXPORT_FILE)

    with caplog.at_level(logging.INFO, logger="goldsignals.cleaning"):
        cleaned, _ = clean_prices(raw)

    assert len(cleaned) == 24
    assert (
        "dropped 6 rows without prices (first: 2000-09-03, 2000-09-04, "
        "2000-09-10, 2000-09-17, 2000-09-24) and 0 weekend rows" in caplog.text
    )


def test_case07_price_file_null_rows_counted_when_loaded(
    shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="goldsignals.prices"):
        loaded = load_prices(
            ticker="GC=F",
            source="csv",
            history=tmp_path / "GC_F.parquet",
            price_csv=shared_data / WEB_EXPORT_FILE,
            history_start=START,
        )

    assert len(loaded.prices) == 24
    assert "Dropped 6 rows without prices: ['2000-09-03', '2000-09-04'" in caplog.text


def test_case08_non_positive_price_rejected_naming_dates_history_unchanged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-03"]))
    before = _snapshot(history)
    answer = _yahoo_frame(["2024-01-04", "2024-01-05"], [2050.0, 2060.0])
    answer.loc[answer.index[0], "Close"] = 0.0
    answer.loc[answer.index[1], "Low"] = -1.0
    _fake_yahoo(monkeypatch, [answer])

    with pytest.raises(
        PriceValidationError,
        match=r"(?s)Yahoo download of GC=F was not added.*"
        r"low must be greater than 0: 1 row, first: 2024-01-05 \(-1\.0\).*"
        r"close must be greater than 0: 1 row, first: 2024-01-04 \(0\.0\)",
    ):
        _load(history, yahoo_fetcher(cache_dir=tmp_path), _at("2024-01-05 18:00"))

    assert _snapshot(history) == before


def test_case08_close_far_outside_high_low_rejected_naming_dates(
    tmp_path: Path,
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-03"]))
    before = _snapshot(history)
    download = _bars(["2024-01-04", "2024-01-05"], 2050.0)
    download.loc["2024-01-05", "close"] = 205.0

    with pytest.raises(
        PriceValidationError,
        match=r"1 bars have open or close outside \[low, high\] by more than 10% "
        r"of the close, too far to repair, first: 2024-01-05 \(open 2050, "
        r"high 2051, low 2049, close 205",
    ):
        clean_prices(download, repair_ohlc=True)
    with pytest.raises(PriceValidationError, match=r"not added.*2024-01-05"):
        _load(history, _fetcher([download], []), _at("2024-01-05 18:00"))

    assert _snapshot(history) == before


@pytest.mark.parametrize(
    ("share", "repaired"), [(MAX_OHLC_GAP * 0.99, True), (MAX_OHLC_GAP * 1.01, False)]
)
def test_case08_close_outside_high_low_within_tolerance_repaired(
    share: float, repaired: bool
) -> None:
    frame = _bars(["2024-01-04", "2024-01-05"])
    frame.loc["2024-01-05", ["open", "close"]] = 100.0
    frame.loc["2024-01-05", "high"] = 100.0 - 100.0 * share
    frame.loc["2024-01-05", "low"] = 100.0 - 100.0 * share - 1.0

    if not repaired:
        with pytest.raises(PriceValidationError, match="first: 2024-01-05"):
            clean_prices(frame)
        return
    cleaned, report = clean_prices(frame)

    assert report.first_repaired_dates == ("2024-01-05",)
    assert cleaned.loc["2024-01-05", "high"] == 100.0
    assert cleaned.loc["2024-01-05", "close"] == 100.0


def _tenfold_last_bar(source: Path, target: Path) -> Path:
    """Copy a price file with open, high, low and close of its last row x10."""
    rows = pd.read_csv(source)
    rows.loc[rows.index[-1], ["Open", "High", "Low", "Close"]] *= 10
    rows.to_csv(target, index=False)
    return target


def test_case08_tenfold_last_bar_of_price_file_rejected_history_unchanged(
    shared_data: Path, tmp_path: Path
) -> None:
    engine = create_signal_engine(f"sqlite:///{tmp_path / 'signals.db'}")
    history = SqlHistory(engine, "GC=F")
    real = shared_data / MAIN_FILE
    spiked = _tenfold_last_bar(real, tmp_path / "spike.csv")
    evening = _at("2026-08-07 18:00")
    options: dict[str, Any] = {"history": history, "history_start": START}
    load_prices(ticker="GC=F", source="csv", price_csv=real, now=evening, **options)
    write_signals(engine, [signal_row()])
    stored, signals = history.read(), read_latest_signals(engine)

    with pytest.raises(
        PriceValidationError,
        match=r"(?s)price file .*spike\.csv was not added to the price history "
        r"table prices \(GC=F\).*1 close moved more than 25% from the close "
        r"before, first: 2026-08-05 close 4245\.8 to 2026-08-06 close 42420 "
        r"\(\+899\.1%\).*raise GOLDSIGNALS_MAX_DAILY_MOVE \(now 0\.25\)"
        r".*Fix or remove these rows in the source",
    ):
        load_prices(
            ticker="GC=F", source="csv", price_csv=spiked, now=evening, **options
        )

    pd.testing.assert_frame_equal(SqlHistory(engine, "GC=F").read(), stored)
    pd.testing.assert_frame_equal(read_latest_signals(engine), signals)
    assert count_signals(engine) == 1
    engine.dispose()


def test_case08_jump_inside_downloaded_batch_rejected_naming_dates(
    tmp_path: Path,
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-03"], 2050.0))
    before = _snapshot(history)
    download = _bars(["2024-01-04", "2024-01-05", "2024-01-08"], 2050.0)
    download.loc["2024-01-05", ["open", "high", "low", "close"]] *= 10

    with pytest.raises(
        PriceValidationError,
        match=r"(?s)Yahoo download of GC=F was not added.*2 closes moved more "
        r"than 25% from the close before, first: 2024-01-04 close 2050 to "
        r"2024-01-05 close 20500 \(\+900\.0%\), 2024-01-05 close 20500 to "
        r"2024-01-08 close 2050 \(-90\.0%\)",
    ):
        _load(history, _fetcher([download], []), _at("2024-01-08 18:00"))

    assert _snapshot(history) == before


def test_case08_jump_against_stored_close_rejected_in_the_table(
    tmp_path: Path,
) -> None:
    engine = create_signal_engine(f"sqlite:///{tmp_path / 'signals.db'}")
    history = SqlHistory(engine, "GC=F")
    history.write(_bars(["2024-01-02", "2024-01-03"], 2050.0))
    tick = _bars(["2024-01-04"], 205.0)

    with pytest.raises(
        PriceValidationError,
        match=r"(?s)Yahoo download of GC=F was not added.*1 close moved more "
        r"than 25%.*2024-01-03 close 2050 to 2024-01-04 close 205 \(-90\.0%\)",
    ):
        _load(history, _fetcher([tick], []), _at("2024-01-04 18:00"))

    assert history.last_date() == datetime.date(2024, 1, 3)
    engine.dispose()


def test_case08_real_history_passes_the_jump_guard(
    shared_data: Path, tmp_path: Path
) -> None:
    history = tmp_path / "GC_F.parquet"
    real = read_price_csv(shared_data / MAIN_FILE)
    largest = float(real["close"].pct_change().abs().max())

    loaded = load_prices(
        ticker="GC=F",
        source="csv",
        history=history,
        price_csv=shared_data / MAIN_FILE,
        history_start=START,
        now=_at("2026-08-07 18:00"),
    )

    pd.testing.assert_frame_equal(loaded.prices, real)
    assert largest == pytest.approx(0.1137, abs=1e-4)
    assert 2 * largest <= MAX_DAILY_MOVE


def test_case08_raised_move_limit_stores_a_real_jump(tmp_path: Path) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-03"], 100.0))
    jump = _bars(["2024-01-04"], 140.0)

    loaded = _load(
        history, _fetcher([jump], []), _at("2024-01-04 18:00"), max_daily_move=0.5
    )

    assert loaded.prices["close"].tolist() == [100.0, 140.0]
