"""Tests of goldsignals.prices: layouts, normalisation, Yahoo boundary, history."""

from __future__ import annotations

import datetime
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import yfinance
from yfinance.exceptions import YFPricesMissingError

from goldsignals import prices
from goldsignals.errors import (
    PriceDataError,
    PriceSourceUnavailableError,
    PriceValidationError,
)
from goldsignals.prices import (
    PRICE_COLUMNS,
    fetch_yahoo,
    load_prices,
    merge_history,
    normalize_prices,
    read_history,
    read_price_csv,
    write_history,
)

MAIN_FILE = "gold_futures_daily.csv"
MULTIHEADER_FILE = "quirks/yf_download_multiheader_daily_gc_f_head.csv"
TZAWARE_FILE = "quirks/yf_Ticker_history_tzaware_daily_gc_f_1y.csv"
ADJCLOSE_FILE = "quirks/yf_download_auto_adjust_False_AdjClose_gc_f_1y.csv"
WEB_EXPORT_FILE = "quirks/yahoo_web_csv_null_rows_zero_volume_gc_f_head.csv"
ALL_FILES = (MAIN_FILE, MULTIHEADER_FILE, TZAWARE_FILE, ADJCLOSE_FILE, WEB_EXPORT_FILE)
START = datetime.date(2024, 1, 1)

Calls = list[tuple[datetime.date, datetime.date | None]]


def _assert_standard(frame: pd.DataFrame) -> None:
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "date"
    assert frame.index.dtype == "datetime64[ns]"
    assert frame.index.tz is None
    assert frame.index.is_unique
    assert frame.index.is_monotonic_increasing
    assert (frame.index == frame.index.normalize()).all()
    assert tuple(frame.columns) == PRICE_COLUMNS
    assert (frame.dtypes == "float64").all()


def _bars(dates: list[str], close: float = 100.0) -> pd.DataFrame:
    index = pd.DatetimeIndex(dates, name="date").as_unit("ns")
    values = np.full(len(index), close)
    columns = dict.fromkeys(PRICE_COLUMNS, values)
    return pd.DataFrame(columns, index=index).assign(volume=10.0)


def _recording_fetcher(frames: list[pd.DataFrame], calls: Calls) -> prices.Fetcher:
    def fetch(
        ticker: str, start: datetime.date, end: datetime.date | None
    ) -> pd.DataFrame:
        calls.append((start, end))
        return frames.pop(0)

    return fetch


def _unreachable_fetcher(calls: Calls) -> prices.Fetcher:
    def fetch(
        ticker: str, start: datetime.date, end: datetime.date | None
    ) -> pd.DataFrame:
        calls.append((start, end))
        raise PriceSourceUnavailableError(f"no network for {ticker}")

    return fetch


def _evening(day: datetime.date) -> datetime.datetime:
    """23:00 UTC of ``day``: after the 17:00 New York close, summer or winter."""
    return datetime.datetime.combine(day, datetime.time(23), tzinfo=datetime.UTC)


def _load(history: Path, fetcher: prices.Fetcher, **options: Any) -> Any:
    options.setdefault("sleep", lambda seconds: None)
    options.setdefault("ticker", "GC=F")
    return load_prices(
        source="yfinance",
        history=history,
        history_start=START,
        fetcher=fetcher,
        **options,
    )


def _write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ALL_FILES)
def test_read_price_csv_every_layout_gives_standard_frame(
    shared_data: Path, name: str
) -> None:
    frame = read_price_csv(shared_data / name)

    _assert_standard(frame)
    assert len(frame) > 0


def test_read_price_csv_main_file_rows_and_range(shared_data: Path) -> None:
    frame = read_price_csv(shared_data / MAIN_FILE)

    assert len(frame) == 6273
    assert frame.index[0] == pd.Timestamp("2001-08-07")
    assert frame.index[-1] == pd.Timestamp("2026-08-06")
    assert not frame.isna().any().any()


def test_read_price_csv_multiheader_matches_main_file(shared_data: Path) -> None:
    multiheader = read_price_csv(shared_data / MULTIHEADER_FILE)
    main = read_price_csv(shared_data / MAIN_FILE)

    assert len(multiheader) == 10
    assert multiheader.index[0] == pd.Timestamp("2010-01-04")
    pd.testing.assert_frame_equal(multiheader, main.loc[multiheader.index])


def test_read_price_csv_adjclose_layout_matches_main_file(shared_data: Path) -> None:
    classic = read_price_csv(shared_data / ADJCLOSE_FILE)
    main = read_price_csv(shared_data / MAIN_FILE)
    shared = classic.index.intersection(main.index)

    assert len(shared) == 240
    ohlc = ["open", "high", "low", "close"]
    difference = (classic.loc[shared, ohlc] - main.loc[shared, ohlc]).abs()
    assert difference.max().max() < 1e-3


def test_read_price_csv_tzaware_keeps_every_date_across_dst(
    shared_data: Path,
) -> None:
    frame = read_price_csv(shared_data / TZAWARE_FILE)
    main = read_price_csv(shared_data / MAIN_FILE)
    business_days = pd.bdate_range("2024-09-26", "2025-09-26")

    assert len(frame) == 253
    dates = pd.DatetimeIndex(frame.index)
    assert (dates.day_of_week < 5).all()
    assert list(dates) == list(main.loc["2024-09-26":"2025-09-26"].index)
    holidays = [day.date().isoformat() for day in business_days.difference(dates)]
    assert holidays == [
        "2024-11-28",
        "2024-12-25",
        "2025-01-01",
        "2025-01-20",
        "2025-02-17",
        "2025-04-18",
        "2025-05-26",
        "2025-06-19",
        "2025-09-01",
    ]
    for day in ("2024-11-01", "2024-11-04", "2025-03-07", "2025-03-10"):
        assert pd.Timestamp(day) in frame.index


def test_read_price_csv_tzaware_partial_last_row_is_a_plain_row(
    shared_data: Path,
) -> None:
    frame = read_price_csv(shared_data / TZAWARE_FILE)
    main = read_price_csv(shared_data / MAIN_FILE)
    last = frame.iloc[-1]

    assert frame.index[-1] == pd.Timestamp("2025-09-26")
    assert (last["open"], last["volume"]) == (3781.5, 82594.0)
    assert main.loc["2025-09-26", "close"] == pytest.approx(3775.3, abs=1e-3)
    assert last["close"] != pytest.approx(main.loc["2025-09-26", "close"], abs=1e-3)


def test_read_price_csv_web_export_null_rows_become_nan(shared_data: Path) -> None:
    frame = read_price_csv(shared_data / WEB_EXPORT_FILE)
    empty = frame.index[frame.isna().all(axis=1)]

    assert len(frame) == 30
    assert [day.date().isoformat() for day in empty] == [
        "2000-09-03",
        "2000-09-04",
        "2000-09-10",
        "2000-09-17",
        "2000-09-24",
        "2000-10-01",
    ]
    assert (frame["volume"] == 0).sum() == 17


def test_read_price_csv_bom_and_tz_offsets_in_small_file(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    text = (
        "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"
        "2024-11-01 00:00:00-04:00,1,2,0.5,1.5,10,0.0,0.0\n"
        "2024-11-04 00:00:00-05:00,2,3,1.5,2.5,20,0.0,0.0\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())

    frame = read_price_csv(path)

    _assert_standard(frame)
    assert list(frame.index) == [pd.Timestamp("2024-11-01"), pd.Timestamp("2024-11-04")]


def test_read_price_csv_missing_file_names_path_and_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"

    with pytest.raises(PriceDataError, match=r"nowhere\.csv.*GOLDSIGNALS_PRICE_CSV"):
        read_price_csv(missing)


def test_read_price_csv_folder_is_named_as_a_folder(tmp_path: Path) -> None:
    with pytest.raises(PriceDataError, match=r"is a folder, not a file.*PRICE_CSV"):
        read_price_csv(tmp_path)


def test_read_price_csv_without_header_row_says_add_one(tmp_path: Path) -> None:
    headless = tmp_path / "headless.csv"
    headless.write_text(
        "2010-01-04,1117.7,1122.3,1097.1,1117.7,184\n"
        "2010-01-05,1118.1,1126.5,1115.0,1118.1,53\n"
    )

    with pytest.raises(
        PriceDataError,
        match=r"headless\.csv has no header row \(its first line starts with the "
        r"date '2010-01-04'\); add a first line naming the columns",
    ):
        read_price_csv(headless)


@pytest.mark.parametrize("separator", [";", "\t"])
def test_read_price_csv_other_separator_is_named(
    tmp_path: Path, separator: str
) -> None:
    rows = ["Date,Open,High,Low,Close,Volume", "2024-11-01,1,2,0.5,1.5,10"]
    text = "\n".join(row.replace(",", separator) for row in rows) + "\n"
    path = _write_csv(tmp_path / "semicolons.csv", text)

    with pytest.raises(PriceDataError, match=re.escape(f"separated by {separator!r}")):
        read_price_csv(path)


def test_read_price_csv_empty_file_raises(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "empty.csv", "")

    with pytest.raises(PriceDataError, match="is empty"):
        read_price_csv(path)


def test_read_price_csv_header_only_raises(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "header.csv", "Date,Open,High,Low,Close,Volume\n")

    with pytest.raises(PriceDataError, match="no rows"):
        read_price_csv(path)


def test_read_price_csv_bad_dates_named(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close\n2020-01-02,1,1,1,1\n2020-13-45,1,1,1,1\n"
    path = _write_csv(tmp_path / "dates.csv", text + "yesterday,1,1,1,1\n")

    with pytest.raises(PriceDataError, match=r"2 dates.*'2020-13-45', 'yesterday'"):
        read_price_csv(path)


def test_read_price_csv_bad_number_named(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close\n2020-01-02,1,1,abc,1\n"
    path = _write_csv(tmp_path / "numbers.csv", text)

    with pytest.raises(PriceDataError, match=r"'low'.*2020-01-02: 'abc'"):
        read_price_csv(path)


def test_read_price_csv_multiheader_several_tickers_rejected(tmp_path: Path) -> None:
    text = (
        "Price,Close,Close,High,High,Low,Low,Open,Open\n"
        "Ticker,GC=F,SI=F,GC=F,SI=F,GC=F,SI=F,GC=F,SI=F\n"
        "Date,,,,,,,,\n"
        "2010-01-04,1,2,1,2,1,2,1,2\n"
    )
    path = _write_csv(tmp_path / "two.csv", text)

    with pytest.raises(PriceDataError, match=r"several tickers \(GC=F, SI=F\)"):
        read_price_csv(path)


def test_normalize_prices_flattens_single_ticker_columns() -> None:
    columns = pd.MultiIndex.from_product(
        [["Close", "High", "Low", "Open", "Volume"], ["GC=F"]],
        names=["Price", "Ticker"],
    )
    index = pd.DatetimeIndex(["2024-01-03", "2024-01-02"], name="Date")
    raw = pd.DataFrame(np.arange(10.0).reshape(2, 5), index=index, columns=columns)

    frame = normalize_prices(raw)

    _assert_standard(frame)
    assert frame.loc["2024-01-03", "close"] == 0.0
    assert frame.loc["2024-01-02", "volume"] == 9.0


def test_normalize_prices_several_tickers_raises() -> None:
    columns = pd.MultiIndex.from_product(
        [["Open", "High", "Low", "Close"], ["GC=F", "GLD"]], names=["Price", "Ticker"]
    )
    raw = pd.DataFrame(np.ones((1, 8)), index=pd.DatetimeIndex(["2024-01-02"]))
    raw.columns = columns

    with pytest.raises(PriceDataError, match=r"several tickers \(GC=F, GLD\)"):
        normalize_prices(raw)


def test_normalize_prices_missing_column_names_missing_and_found() -> None:
    raw = pd.DataFrame(
        {"Open": [1.0], "Close": [1.0], "Volume": [3.0]},
        index=pd.DatetimeIndex(["2024-01-02"]),
    )

    with pytest.raises(
        PriceDataError, match=r"missing: high, low; columns found: open, close, volume"
    ):
        normalize_prices(raw)


def test_normalize_prices_missing_volume_becomes_nan() -> None:
    raw = pd.DataFrame(
        {"Open": [1], "High": [2], "Low": [1], "Close": [2]},
        index=pd.DatetimeIndex(["2024-01-02"]),
    )

    frame = normalize_prices(raw)

    _assert_standard(frame)
    assert np.isnan(frame["volume"].iloc[0])


def test_normalize_prices_duplicates_keep_last_row() -> None:
    raw = pd.DataFrame(
        {"open": [1.0, 2.0, 3.0], "high": 4.0, "low": 0.5, "close": [1.0, 2.0, 3.0]},
        index=pd.DatetimeIndex(["2024-01-03", "2024-01-02", "2024-01-03"]),
    )

    frame = normalize_prices(raw)

    assert list(frame.index) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    assert frame.loc["2024-01-03", "close"] == 3.0


def test_normalize_prices_drops_adj_close_and_actions_case_insensitive() -> None:
    raw = pd.DataFrame(
        {
            "OPEN": [1.0],
            "high": [2.0],
            "Low": [0.5],
            "Close": [1.5],
            "Adj Close": [1.4],
            "Volume": [7],
            "Dividends": [0.0],
            "Stock Splits": [0.0],
        },
        index=pd.DatetimeIndex(["2024-01-02"]),
    )

    frame = normalize_prices(raw)

    _assert_standard(frame)
    assert frame.iloc[0].tolist() == [1.0, 2.0, 0.5, 1.5, 7.0]


def test_normalize_prices_null_strings_become_nan() -> None:
    raw = pd.DataFrame(
        {"Open": ["null", "1"], "High": ["null", "2"], "Low": ["null", "1"]}
        | {"Close": ["null", "2"], "Volume": ["null", "5"]},
        index=pd.Index(["2024-01-06", "2024-01-08"]),
    )

    frame = normalize_prices(raw)

    _assert_standard(frame)
    assert frame.loc["2024-01-06"].isna().all()
    assert frame.loc["2024-01-08", "close"] == 2.0


@pytest.mark.parametrize(
    ("zone", "days"),
    [
        ("America/New_York", ["2024-11-01", "2024-11-04", "2025-03-07", "2025-03-10"]),
        ("Asia/Tokyo", ["2024-01-04", "2024-01-05"]),
        ("Pacific/Auckland", ["2024-04-05", "2024-04-08"]),
    ],
)
def test_normalize_prices_tzaware_index_keeps_local_exchange_date(
    zone: str, days: list[str]
) -> None:
    index = pd.DatetimeIndex(days).tz_localize(zone)
    raw = pd.DataFrame(
        {"Open": 1.0, "High": 2.0, "Low": 0.5, "Close": 1.5, "Volume": 1.0},
        index=index,
    )

    frame = normalize_prices(raw)

    _assert_standard(frame)
    assert [day.date().isoformat() for day in frame.index] == days


def test_normalize_prices_date_column_becomes_index() -> None:
    raw = pd.DataFrame(
        {
            "Date": ["2024-01-03", "2024-01-02"],
            "Open": [1.0, 2.0],
            "High": [1.0, 2.0],
            "Low": [1.0, 2.0],
            "Close": [1.0, 2.0],
        }
    )

    frame = normalize_prices(raw)

    _assert_standard(frame)
    assert frame.loc["2024-01-02", "open"] == 2.0


class _FakeTicker:
    def __init__(self, behaviour: Any, seen: dict[str, Any]) -> None:
        self.behaviour = behaviour
        self.seen = seen

    def history(self, **kwargs: Any) -> pd.DataFrame:
        self.seen.update(kwargs)
        if isinstance(self.behaviour, BaseException):
            raise self.behaviour
        return pd.DataFrame(self.behaviour)


def _fake_yfinance(
    monkeypatch: pytest.MonkeyPatch, behaviour: Any
) -> tuple[dict[str, Any], list[str]]:
    seen: dict[str, Any] = {}
    cache_dirs: list[str] = []
    monkeypatch.setattr(yfinance, "Ticker", lambda ticker: _FakeTicker(behaviour, seen))
    monkeypatch.setattr(yfinance, "set_tz_cache_location", cache_dirs.append)
    return seen, cache_dirs


def test_fetch_yahoo_network_error_names_ticker_and_range(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    failure = requests.ConnectionError("Could not resolve host")
    _fake_yfinance(monkeypatch, failure)

    with pytest.raises(
        PriceSourceUnavailableError,
        match=r"GC=F for 2026-08-01 through 2026-08-07 failed: Could not resolve",
    ) as caught:
        fetch_yahoo(
            "GC=F",
            datetime.date(2026, 8, 1),
            datetime.date(2026, 8, 8),
            cache_dir=tmp_path,
        )
    assert caught.value.__cause__ is failure


def test_fetch_yahoo_normalizes_history_and_uses_cache_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    index = pd.DatetimeIndex(["2024-11-01", "2024-11-04"], name="Date")
    history = pd.DataFrame(
        {"Open": 1.0, "High": 2.0, "Low": 0.5, "Close": 1.5, "Adj Close": 1.5}
        | {"Volume": 3, "Dividends": 0.0, "Stock Splits": 0.0},
        index=index.tz_localize("America/New_York"),
    )
    seen, cache_dirs = _fake_yfinance(monkeypatch, history)

    frame = fetch_yahoo(
        "GC=F", datetime.date(2024, 11, 1), timeout=3.0, cache_dir=tmp_path
    )

    _assert_standard(frame)
    assert len(frame) == 2
    assert cache_dirs == [str(tmp_path)]
    assert seen["interval"] == "1d"
    assert (seen["auto_adjust"], seen["timeout"]) == (False, 3.0)
    assert seen["start"] == datetime.date(2024, 11, 1)


def test_fetch_yahoo_default_cache_dir_is_under_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOLDSIGNALS_HOME", str(tmp_path))
    _, cache_dirs = _fake_yfinance(monkeypatch, YFPricesMissingError("GC=F", ""))

    fetch_yahoo("GC=F", datetime.date(2024, 11, 2), datetime.date(2024, 11, 4))

    assert cache_dirs == [str(tmp_path / "cache" / "yfinance")]


def test_fetch_yahoo_no_bars_in_range_returns_empty_frame(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_yfinance(monkeypatch, YFPricesMissingError("GC=F", "(1d 2024-11-02)"))

    frame = fetch_yahoo(
        "GC=F",
        datetime.date(2024, 11, 2),
        datetime.date(2024, 11, 4),
        cache_dir=tmp_path,
    )

    _assert_standard(frame)
    assert frame.empty


def test_read_history_missing_file_is_empty_standard_frame(tmp_path: Path) -> None:
    frame = read_history(tmp_path / "absent.parquet")

    _assert_standard(frame)
    assert frame.empty


def test_write_history_round_trips_without_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "prices" / "GC_F.parquet"
    frame = _bars(["2024-01-02", "2024-01-03"])

    write_history(path, frame)

    pd.testing.assert_frame_equal(read_history(path), frame)
    assert [child.name for child in path.parent.iterdir()] == ["GC_F.parquet"]


def test_read_history_corrupt_file_raises(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "GC_F.parquet", "not parquet")

    with pytest.raises(PriceDataError, match=r"GC_F\.parquet cannot be read"):
        read_history(path)


def test_merge_history_new_rows_win_and_stored_dates_stay() -> None:
    stored = _bars(["2024-01-02", "2024-01-03"], close=1.0)
    new = _bars(["2024-01-03", "2024-01-04"], close=2.0)

    merged = merge_history(stored, new)

    _assert_standard(merged)
    assert merged["close"].tolist() == [1.0, 2.0, 2.0]


def test_merge_history_empty_new_row_does_not_erase_stored_prices() -> None:
    stored = _bars(["2024-01-02"], close=1.0)
    blank = _bars(["2024-01-02"]) * np.nan

    merged = merge_history(stored, blank)

    assert merged["close"].tolist() == [1.0]


def test_load_prices_incremental_asks_only_after_last_stored_date(
    tmp_path: Path,
) -> None:
    history = tmp_path / "GC_F.parquet"
    calls: Calls = []
    first = _bars(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
    second = _bars(["2024-01-08", "2024-01-09"], close=101.0)
    fetcher = _recording_fetcher([first, second], calls)

    _load(history, fetcher, now=_evening(datetime.date(2024, 1, 5)))
    loaded = _load(history, fetcher, now=_evening(datetime.date(2024, 1, 9)))

    assert calls == [
        (START, datetime.date(2024, 1, 6)),
        (datetime.date(2024, 1, 6), datetime.date(2024, 1, 10)),
    ]
    assert (loaded.source, loaded.stale, loaded.fetched_rows) == ("yahoo", False, 2)
    assert loaded.last_date == datetime.date(2024, 1, 9)
    assert len(loaded.prices) == 6
    pd.testing.assert_frame_equal(read_history(history), loaded.prices)


def test_load_prices_up_to_date_history_does_not_call_fetcher(tmp_path: Path) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-04", "2024-01-05"]))
    calls: Calls = []

    loaded = _load(
        history, _recording_fetcher([], calls), now=_evening(datetime.date(2024, 1, 5))
    )

    assert calls == []
    assert (loaded.source, loaded.stale, loaded.fetched_rows) == ("history", False, 0)


def test_load_prices_unreachable_continues_from_history_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = tmp_path / "GC_F.parquet"
    stored = _bars(["2024-01-04", "2024-01-05"])
    write_history(history, stored)
    calls: Calls = []

    with caplog.at_level(logging.INFO):
        loaded = _load(
            history,
            _unreachable_fetcher(calls),
            now=_evening(datetime.date(2024, 1, 9)),
        )

    warnings = [
        record for record in caplog.records if record.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "cannot be reached for GC=F" in message
    assert "stored history ending 2024-01-05" in message
    assert calls == [(datetime.date(2024, 1, 6), datetime.date(2024, 1, 10))] * 4
    assert (loaded.source, loaded.stale, loaded.fetched_rows) == ("history", True, 0)
    pd.testing.assert_frame_equal(loaded.prices, stored)


def test_load_prices_empty_history_unreachable_seeds_from_csv(
    tmp_path: Path, shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = tmp_path / "GC_F.parquet"
    calls: Calls = []

    with caplog.at_level(logging.INFO):
        loaded = _load(
            history,
            _unreachable_fetcher(calls),
            seed_csv=shared_data / MAIN_FILE,
            now=_evening(datetime.date(2026, 8, 10)),
        )

    warnings = [
        record for record in caplog.records if record.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1
    assert "seeding it from" in warnings[0].getMessage()
    assert calls == [(START, datetime.date(2026, 8, 11))] * 4
    assert (loaded.source, loaded.stale, loaded.fetched_rows) == (
        "seed_csv",
        True,
        6273,
    )
    assert loaded.last_date == datetime.date(2026, 8, 6)
    pd.testing.assert_frame_equal(read_history(history), loaded.prices)


def test_load_prices_empty_history_unreachable_without_seed_raises(
    tmp_path: Path,
) -> None:
    fetcher = _unreachable_fetcher([])

    with pytest.raises(
        PriceSourceUnavailableError,
        match=r"GC=F.*GOLDSIGNALS_SEED_CSV.*GOLDSIGNALS_PRICE_CSV",
    ):
        _load(
            tmp_path / "GC_F.parquet", fetcher, now=_evening(datetime.date(2024, 1, 9))
        )
    assert not (tmp_path / "GC_F.parquet").exists()


def test_seed_file_of_gold_never_seeds_another_ticker(
    tmp_path: Path, shared_data: Path
) -> None:
    history = tmp_path / "SI_F.parquet"
    fetcher = _unreachable_fetcher([])

    with pytest.raises(
        PriceSourceUnavailableError,
        match=r"no prices of SI=F.*holds GC=F prices.*GOLDSIGNALS_SEED_TICKER",
    ):
        _load(
            history,
            fetcher,
            ticker="SI=F",
            seed_csv=shared_data / MAIN_FILE,
            now=_evening(datetime.date(2026, 8, 10)),
        )
    assert not history.exists()


def test_load_prices_missing_seed_file_names_setting(tmp_path: Path) -> None:
    fetcher = _unreachable_fetcher([])
    seed = tmp_path / "absent.csv"

    with pytest.raises(
        PriceSourceUnavailableError,
        match=r"GOLDSIGNALS_SEED_CSV=.*absent\.csv does not exist",
    ):
        _load(tmp_path / "GC_F.parquet", fetcher, seed_csv=seed)


def test_load_prices_empty_fetch_is_not_stale(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-05"]))
    fetcher = _recording_fetcher([prices.empty_prices()], [])

    with caplog.at_level(logging.INFO):
        loaded = _load(history, fetcher, now=_evening(datetime.date(2024, 1, 7)))

    assert (loaded.source, loaded.stale, loaded.fetched_rows) == ("yahoo", False, 0)
    assert "No new bars of GC=F since 2024-01-06" in caplog.text
    assert all(record.levelno < logging.WARNING for record in caplog.records)


def test_load_prices_history_never_shrinks(tmp_path: Path) -> None:
    history = tmp_path / "GC_F.parquet"
    stored = _bars(["2024-01-02", "2024-01-03", "2024-01-04"], close=100.0)
    write_history(history, stored)
    fetched = _bars(["2024-01-04", "2024-01-05"], close=101.0)
    csv_path = _write_csv(
        tmp_path / "small.csv",
        "Date,Open,High,Low,Close\n2024-01-03,102,102,102,102\n",
    )

    _load(
        history,
        _recording_fetcher([fetched], []),
        now=_evening(datetime.date(2024, 1, 5)),
    )
    loaded = load_prices(
        ticker="GC=F",
        source="csv",
        history=history,
        price_csv=csv_path,
        history_start=START,
    )

    assert set(stored.index) <= set(loaded.prices.index)
    assert loaded.prices["close"].tolist() == [100.0, 102.0, 101.0, 101.0]
    assert (loaded.source, loaded.fetched_rows) == ("csv", 1)
    pd.testing.assert_frame_equal(read_history(history), loaded.prices)


def test_load_prices_csv_source_without_file_names_setting(tmp_path: Path) -> None:
    with pytest.raises(PriceDataError, match="GOLDSIGNALS_PRICE_CSV"):
        load_prices(
            ticker="GC=F",
            source="csv",
            history=tmp_path / "GC_F.parquet",
            history_start=START,
        )


def _csv_of(frame: pd.DataFrame, path: Path) -> Path:
    frame.rename_axis("Date").rename(columns=str.title).to_csv(path)
    return path


def test_load_prices_rejected_csv_leaves_history_untouched(tmp_path: Path) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-04", "2024-01-05"]))
    bad = _bars(["2024-01-08", "2024-01-09"]).assign(close=[101.0, -5.0])
    price_file = _csv_of(bad, tmp_path / "bad.csv")

    with pytest.raises(
        PriceValidationError, match=r"(?s)bad\.csv was not added.*2024-01-09"
    ):
        load_prices(
            ticker="GC=F",
            source="csv",
            history=history,
            price_csv=price_file,
            history_start=START,
        )

    assert list(read_history(history).index.strftime("%Y-%m-%d")) == [
        "2024-01-04",
        "2024-01-05",
    ]


def test_load_prices_fixed_csv_replaces_rejected_rows(tmp_path: Path) -> None:
    history = tmp_path / "GC_F.parquet"
    bad = _bars(["2024-01-08", "2024-01-09"]).assign(close=[101.0, -5.0])
    options: dict[str, Any] = {
        "ticker": "GC=F",
        "source": "csv",
        "history": history,
        "price_csv": _csv_of(bad, tmp_path / "prices.csv"),
        "history_start": START,
    }
    with pytest.raises(PriceValidationError):
        load_prices(**options)

    _csv_of(bad.assign(close=[101.0, 102.0]), tmp_path / "prices.csv")
    loaded = load_prices(**options)

    assert list(loaded.prices["close"]) == [101.0, 102.0]


def test_load_prices_rejected_download_not_stored(tmp_path: Path) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-04"]))
    download = _bars(["2024-01-05"]).assign(open=0.0)
    fetcher = _recording_fetcher([download], [])

    with pytest.raises(PriceValidationError, match="Yahoo download of GC=F"):
        _load(history, fetcher, now=_evening(datetime.date(2024, 1, 5)))

    assert len(read_history(history)) == 1


def test_load_prices_unreachable_fills_gaps_from_seed(tmp_path: Path) -> None:
    history = tmp_path / "GC_F.parquet"
    write_history(history, _bars(["2024-01-05"], close=101.0))
    seed = _csv_of(
        _bars(["2024-01-03", "2024-01-04", "2024-01-05"]), tmp_path / "s.csv"
    )

    loaded = _load(
        history,
        _unreachable_fetcher([]),
        seed_csv=seed,
        now=_evening(datetime.date(2024, 1, 8)),
    )

    assert (loaded.source, loaded.stale) == ("history", True)
    assert list(loaded.prices["close"]) == [100.0, 100.0, 101.0]
    assert len(read_history(history)) == 3


def test_normalize_prices_duplicates_warn_with_dates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = pd.concat([_bars(["2024-01-04", "2024-01-05"]), _bars(["2024-01-05"], 7.0)])

    with caplog.at_level(logging.WARNING):
        frame = prices.normalize_prices(raw)

    assert frame.loc["2024-01-05", "close"] == 7.0
    assert "first duplicated dates: ['2024-01-05']" in caplog.text
