"""Tests of goldsignals.cleaning: the price schema and the cleaning step."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goldsignals.cleaning import (
    CleaningReport,
    check_prices,
    clean_prices,
    validate_prices,
)
from goldsignals.errors import PriceValidationError, SettingsError
from goldsignals.prices import PRICE_COLUMNS, read_price_csv

MAIN_FILE = "gold_futures_daily.csv"
WEB_EXPORT_FILE = "quirks/yahoo_web_csv_null_rows_zero_volume_gc_f_head.csv"


def _bars(dates: list[str]) -> pd.DataFrame:
    """Consistent bars (open 10, high 12, low 9, close 11, volume 5)."""
    index = pd.DatetimeIndex(dates, name="date").as_unit("ns")
    values = {"open": 10.0, "high": 12.0, "low": 9.0, "close": 11.0, "volume": 5.0}
    return pd.DataFrame({name: values[name] for name in PRICE_COLUMNS}, index=index)


def _inconsistent(frame: pd.DataFrame) -> pd.Series:
    low, high = frame["low"], frame["high"]
    outside_open = (frame["open"] < low) | (frame["open"] > high)
    return outside_open | (frame["close"] < low) | (frame["close"] > high)


@pytest.fixture(scope="module")
def real_prices(shared_data: Path) -> pd.DataFrame:
    return read_price_csv(shared_data / MAIN_FILE)


def test_clean_prices_repairs_low_above_high_and_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bars = _bars(["2024-01-02", "2024-01-03"])
    bars.loc["2024-01-03", ["open", "high", "low", "close"]] = [10.0, 10.0, 10.5, 10.2]

    with caplog.at_level("INFO"):
        cleaned, report = clean_prices(bars)

    assert report.ohlc_repaired == 1
    assert report.first_repaired_dates == ("2024-01-03",)
    assert (cleaned["low"] <= cleaned["high"]).all()
    assert "low above high (first: 2024-01-03)" in caplog.text


def test_clean_prices_real_file_repairs_440_bars(real_prices: pd.DataFrame) -> None:
    cleaned, report = clean_prices(real_prices)

    assert report == CleaningReport(
        empty_rows_dropped=0,
        first_empty_dates=(),
        weekend_rows_dropped=0,
        first_weekend_dates=(),
        ohlc_repaired=440,
        first_repaired_dates=(
            "2003-04-29",
            "2003-04-30",
            "2003-05-01",
            "2003-05-02",
            "2003-05-07",
        ),
        missing_volume_filled=0,
        newest_repaired_dates=(
            "2011-09-19",
            "2011-09-27",
            "2011-09-28",
            "2011-10-27",
            "2011-11-14",
        ),
    )
    assert _inconsistent(real_prices).sum() == 440
    assert not _inconsistent(cleaned).any()
    assert len(cleaned) == 6273


def test_clean_prices_real_file_repair_touches_only_bad_bars(
    real_prices: pd.DataFrame,
) -> None:
    bad = _inconsistent(real_prices)

    cleaned, _ = clean_prices(real_prices)

    pd.testing.assert_frame_equal(cleaned[~bad], real_prices[~bad])
    pd.testing.assert_series_equal(cleaned["open"], real_prices["open"])
    pd.testing.assert_series_equal(cleaned["close"], real_prices["close"])
    assert real_prices.index[bad][-1] == pd.Timestamp("2011-11-14")


def test_clean_prices_web_export_drops_null_rows(shared_data: Path) -> None:
    raw = read_price_csv(shared_data / WEB_EXPORT_FILE)

    cleaned, report = clean_prices(raw)

    assert (report.empty_rows_dropped, report.weekend_rows_dropped) == (6, 0)
    assert len(cleaned) == 24
    assert (pd.DatetimeIndex(cleaned.index).day_of_week < 5).all()
    assert not cleaned.isna().any().any()


def test_clean_prices_drops_weekend_rows_with_prices() -> None:
    frame = _bars(["2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08"])

    cleaned, report = clean_prices(frame)

    assert report.weekend_rows_dropped == 2
    assert [day.date().isoformat() for day in cleaned.index] == [
        "2024-01-05",
        "2024-01-08",
    ]


def test_clean_prices_fills_missing_volume_with_zero() -> None:
    frame = _bars(["2024-01-02", "2024-01-03"])
    frame.loc["2024-01-03", "volume"] = np.nan

    cleaned, report = clean_prices(frame)

    assert report.missing_volume_filled == 1
    assert cleaned["volume"].tolist() == [5.0, 0.0]
    assert (cleaned.dtypes == "float64").all()


def test_clean_prices_repairs_by_stated_rule() -> None:
    frame = _bars(["2024-01-02", "2024-01-03", "2024-01-04"])
    frame.loc["2024-01-03", "open"] = 12.5
    frame.loc["2024-01-04", "close"] = 8.5

    cleaned, report = clean_prices(frame)

    assert report.ohlc_repaired == 2
    assert report.first_repaired_dates == ("2024-01-03", "2024-01-04")
    assert cleaned["high"].tolist() == [12.0, 12.5, 12.0]
    assert cleaned["low"].tolist() == [9.0, 9.0, 8.5]


def test_clean_prices_repair_disabled_raises_with_first_dates(
    real_prices: pd.DataFrame,
) -> None:
    with pytest.raises(
        PriceValidationError, match=r"440 bars .* first: 2003-04-29 \(open 333"
    ):
        clean_prices(real_prices, repair_ohlc=False)


def test_clean_prices_partial_bar_raises_naming_date() -> None:
    frame = _bars(["2024-01-02", "2024-01-03"])
    frame.loc["2024-01-03", "high"] = np.nan

    with pytest.raises(PriceValidationError, match=r"partial bars\): 1 row, first: "):
        clean_prices(frame)


def test_clean_prices_logs_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="goldsignals.cleaning"):
        clean_prices(_bars(["2024-01-02"]))

    lines = [r for r in caplog.records if r.name == "goldsignals.cleaning"]
    assert len(lines) == 1
    assert "repaired 0 bars" in lines[0].getMessage()


def test_validate_prices_non_positive_price_names_first_date() -> None:
    frame = _bars(["2024-01-02", "2024-01-03", "2024-01-04"])
    frame.loc["2024-01-03", "low"] = 0.0
    frame.loc["2024-01-04", "low"] = -1.0

    with pytest.raises(
        PriceValidationError,
        match=r"low must be greater than 0: 2 rows, first: 2024-01-03 \(0\.0\)",
    ):
        validate_prices(frame)


def test_validate_prices_duplicate_dates_named() -> None:
    frame = _bars(["2024-01-02", "2024-01-03", "2024-01-03"])

    with pytest.raises(
        PriceValidationError, match=r"duplicated dates\): 1 row, first: 2024-01-03"
    ):
        validate_prices(frame)


def test_validate_prices_unsorted_dates_named() -> None:
    frame = _bars(["2024-01-02", "2024-01-04", "2024-01-03", "2024-01-05"])

    with pytest.raises(
        PriceValidationError, match=r"out of order\): 1 row, first: 2024-01-03"
    ):
        validate_prices(frame)


def test_validate_prices_negative_volume_named() -> None:
    frame = _bars(["2024-01-02"])
    frame["volume"] = -3.0

    with pytest.raises(
        PriceValidationError, match=r"volume must not be negative: .*2024-01-02"
    ):
        validate_prices(frame)


def test_validate_prices_reports_every_rule_and_the_fix() -> None:
    frame = _bars(["2024-01-03", "2024-01-02", "2024-01-02"])
    frame.iloc[0, 0] = -1.0

    with pytest.raises(PriceValidationError) as caught:
        validate_prices(frame)

    message = str(caught.value)
    assert "break 3 rule(s)" in message
    assert "open must be greater than 0: 1 row, first: 2024-01-03 (-1.0)" in message
    assert "fix or remove these rows in the source" in message.lower()


def test_validate_prices_rejects_extra_column() -> None:
    frame = _bars(["2024-01-02"]).assign(adj_close=1.0)

    with pytest.raises(PriceValidationError, match=r"not part of .*: adj_close"):
        validate_prices(frame)


def test_validate_prices_accepts_all_nan_rows() -> None:
    frame = _bars(["2024-01-02", "2024-01-03"])
    frame.loc["2024-01-03"] = np.nan

    assert validate_prices(frame) is not None


def _closes(dates: list[str], closes: list[float]) -> pd.DataFrame:
    """Consistent bars whose open, high, low and close all equal ``closes``."""
    frame = _bars(dates)
    for name in ("open", "high", "low", "close"):
        frame[name] = closes
    return frame


def test_check_prices_close_jump_names_dates_closes_and_move() -> None:
    frame = _closes(
        ["2024-01-02", "2024-01-03", "2024-01-04"], [2000.0, 20000.0, 2000.0]
    )

    with pytest.raises(
        PriceValidationError,
        match=r"(?s)2 closes moved more than 25% from the close before, first: "
        r"2024-01-02 close 2000 to 2024-01-03 close 20000 \(\+900\.0%\), "
        r"2024-01-03 close 20000 to 2024-01-04 close 2000 \(-90\.0%\)\. .*"
        r"raise GOLDSIGNALS_MAX_DAILY_MOVE \(now 0\.25\) above 9\.\n"
        r"Fix or remove these rows in the source",
    ):
        check_prices(frame)


def test_check_prices_first_close_checked_against_stored_bar_before() -> None:
    stored = _closes(["2024-01-01", "2024-01-02"], [1990.0, 2000.0])
    new = _closes(["2024-01-03", "2024-01-04"], [200.0, 201.0])

    with pytest.raises(
        PriceValidationError,
        match=r"1 close moved .* 2024-01-02 close 2000 to 2024-01-03 close 200 "
        r"\(-90\.0%\)",
    ):
        check_prices(new, before=stored)
    check_prices(new)


@pytest.mark.parametrize(("close", "rejected"), [(125.0, False), (125.01, True)])
def test_check_prices_move_up_to_the_limit_passes(close: float, rejected: bool) -> None:
    frame = _closes(["2024-01-02", "2024-01-03"], [100.0, close])

    if rejected:
        with pytest.raises(PriceValidationError, match=r"\(\+25\.0%\)"):
            check_prices(frame, max_daily_move=0.25)
        return
    check_prices(frame, max_daily_move=0.25)


def test_check_prices_raised_limit_accepts_the_move() -> None:
    frame = _closes(["2024-01-02", "2024-01-03"], [100.0, 1000.0])

    check_prices(frame, max_daily_move=9.5)


def test_check_prices_gathers_far_outside_bars_and_jumps_in_one_error() -> None:
    frame = _closes(["2024-01-02", "2024-01-03", "2024-01-04"], [100.0, 100.0, 50.0])
    frame.loc["2024-01-03", "close"] = 80.0

    with pytest.raises(PriceValidationError) as caught:
        check_prices(frame)

    message = str(caught.value)
    assert "1 bars have open or close outside [low, high]" in message
    assert "first: 2024-01-03 (open 100, high 100, low 100, close 80" in message
    assert "2024-01-03 close 80 to 2024-01-04 close 50 (-37.5%)" in message


@pytest.mark.parametrize("limit", [0.0, -0.25])
def test_check_prices_non_positive_limit_named(limit: float) -> None:
    with pytest.raises(SettingsError, match=rf"max_daily_move {limit} must be above 0"):
        check_prices(_bars(["2024-01-02"]), max_daily_move=limit)
