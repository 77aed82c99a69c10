"""Tests of goldsignals.backtest (hand-computed cases) and goldsignals.plots."""

from __future__ import annotations

import math
import statistics
import struct
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from goldsignals.backtest import (
    STAT_COLUMNS,
    BacktestConfig,
    BacktestError,
    backtest_signals,
    buy_and_hold,
    drawdown,
    earned_returns,
    equity_curve,
    max_drawdown,
    next_day_returns,
    performance,
    performance_table,
    run_backtest,
    signal_positions,
    sortino_ratio,
)
from goldsignals.plots import write_figures

DATES = pd.bdate_range("2024-01-01", periods=5, name="date")
RETURNS = pd.Series([0.01, -0.02, 0.03, -0.01, 0.02], index=DATES)
SIGNALS = pd.Series(["BUY", "SELL", "SELL", "HOLD", "BUY"], index=DATES)
COST_BPS = 10.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _returns(values: list[float]) -> pd.Series[float]:
    return pd.Series(values, index=pd.bdate_range("2024-01-01", periods=len(values)))


@pytest.mark.parametrize(
    ("short", "expected"), [(True, [1, -1, -1, 0, 1]), (False, [1, 0, 0, 0, 1])]
)
def test_signal_positions_sell_short_or_flat(short: bool, expected: list[int]) -> None:
    positions = signal_positions(SIGNALS, short=short)

    assert positions.tolist() == [float(value) for value in expected]
    assert positions.index.equals(DATES)


def test_signal_positions_unknown_signal_named() -> None:
    with pytest.raises(BacktestError, match=r"\['WAIT'\] are not BUY, SELL or HOLD"):
        signal_positions(pd.Series(["BUY", "WAIT"]), short=True)


def test_next_day_returns_close_to_next_close() -> None:
    close = pd.Series([100.0, 110.0, 99.0])

    returns = next_day_returns(close)

    assert returns.iloc[:2].tolist() == pytest.approx([0.1, -0.1])
    assert math.isnan(returns.iloc[2])


def test_run_backtest_short_costs_entry_once_and_flip_twice() -> None:
    daily = backtest_signals(SIGNALS, RETURNS, BacktestConfig(cost_bps=COST_BPS))

    assert daily["trade"].tolist() == [1.0, 2.0, 0.0, 1.0, 1.0]
    assert daily["cost"].tolist() == pytest.approx([0.001, 0.002, 0.0, 0.001, 0.001])
    assert daily["return"].tolist() == pytest.approx(
        [0.009, 0.018, -0.03, -0.001, 0.019]
    )


def test_run_backtest_flat_sell_trades_less() -> None:
    config = BacktestConfig(short=False, cost_bps=COST_BPS)

    daily = backtest_signals(SIGNALS, RETURNS, config)

    assert daily["trade"].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert daily["return"].tolist() == pytest.approx([0.009, -0.001, 0.0, 0.0, 0.019])


def test_performance_short_matches_hand_computation() -> None:
    net = [0.009, 0.018, -0.03, -0.001, 0.019]
    total = 1.009 * 1.018 * 0.97 * 0.999 * 1.019 - 1.0
    mean, std = statistics.mean(net), statistics.stdev(net)
    downside = math.sqrt((0.03**2 + 0.001**2) / 5)

    stats = performance(
        backtest_signals(SIGNALS, RETURNS, BacktestConfig(cost_bps=COST_BPS))
    )

    assert stats["total_return"] == pytest.approx(total, abs=1e-12)
    assert stats["annual_return"] == pytest.approx((1 + total) ** (252 / 5) - 1)
    assert stats["annual_volatility"] == pytest.approx(std * math.sqrt(252))
    assert stats["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
    assert stats["sortino"] == pytest.approx(mean * math.sqrt(252) / downside)
    assert stats["max_drawdown"] == pytest.approx(0.97 * 0.999 - 1.0)
    assert stats["max_drawdown_days"] == 3
    assert stats["hit_rate"] == 0.75
    assert stats["exposure"] == 0.8
    assert stats["turnover"] == 1.0
    assert stats["days"] == 5


def test_performance_flat_matches_hand_computation() -> None:
    config = BacktestConfig(short=False, cost_bps=COST_BPS)

    stats = performance(backtest_signals(SIGNALS, RETURNS, config))

    assert stats["total_return"] == pytest.approx(1.009 * 0.999 * 1.019 - 1.0)
    assert stats["max_drawdown"] == pytest.approx(0.999 - 1.0)
    assert stats["max_drawdown_days"] == 4
    assert stats["hit_rate"] == 1.0
    assert stats["exposure"] == 0.4
    assert stats["turnover"] == pytest.approx(0.6)


def test_buy_and_hold_pays_one_entry_cost() -> None:
    daily = buy_and_hold(RETURNS, cost_bps=COST_BPS)

    stats = performance(daily)

    assert daily["trade"].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert stats["total_return"] == pytest.approx(
        1.009 * 0.98 * 1.03 * 0.99 * 1.02 - 1.0, abs=1e-12
    )
    assert stats["exposure"] == 1.0
    assert stats["hit_rate"] == 0.6
    assert stats["turnover"] == 0.2


def test_buy_and_hold_without_cost_is_the_close_ratio() -> None:
    close = pd.Series([100.0, 103.0, 101.0, 104.0, 102.0, 107.0])
    returns = next_day_returns(close).iloc[:-1]

    stats = performance(buy_and_hold(returns, cost_bps=0.0))

    assert stats["total_return"] == pytest.approx(107.0 / 100.0 - 1.0, abs=1e-12)


def test_max_drawdown_length_ends_at_recovery() -> None:
    depth, days = max_drawdown(_returns([0.1, -0.5, 1.0, 0.1]))

    assert depth == pytest.approx(-0.5)
    assert days == 2


def test_max_drawdown_counts_a_first_day_loss() -> None:
    depth, days = max_drawdown(_returns([-0.1, 0.05]))

    assert depth == pytest.approx(-0.1)
    assert days == 2


def test_max_drawdown_without_loss_is_zero() -> None:
    assert max_drawdown(_returns([0.01, 0.0, 0.02])) == (0.0, 0)


def test_performance_undefined_ratios_are_nan() -> None:
    daily = backtest_signals(
        pd.Series(["HOLD"] * 3, index=DATES[:3]),
        RETURNS.iloc[:3],
        BacktestConfig(),
    )

    stats = performance(daily)

    assert math.isnan(stats["sharpe"])
    assert math.isnan(stats["sortino"])
    assert math.isnan(stats["hit_rate"])
    assert stats["total_return"] == 0.0
    assert stats["exposure"] == 0.0


def test_sortino_without_losing_day_is_nan() -> None:
    assert math.isnan(sortino_ratio(_returns([0.01, 0.02])))


def test_equity_curve_and_drawdown_start_at_one_and_zero() -> None:
    curve = equity_curve(_returns([0.1, -0.5, 1.0]))

    assert curve.tolist() == pytest.approx([1.0, 1.1, 0.55, 1.1])
    assert drawdown(curve).tolist() == pytest.approx([0.0, 0.0, -0.5, 0.0])


def test_earned_returns_cap_a_loss_at_the_equity_and_stop_after_ruin() -> None:
    earned = earned_returns(_returns([0.1, -3.0, 0.5, -0.2]))

    assert earned.tolist() == [0.1, -1.0, 0.0, 0.0]


def test_performance_short_losing_over_100_percent_is_a_total_loss() -> None:
    positions = _returns([-1.0] * 5)
    asset = _returns([0.01, 9.0, -0.9, 0.02, 0.01])
    daily = run_backtest(positions, asset, cost_bps=2.0)

    stats = performance(daily)

    assert all(type(value) is float for value in stats.values())
    assert all(math.isfinite(value) or math.isnan(value) for value in stats.values())
    assert stats["total_return"] == -1.0
    assert stats["annual_return"] == -1.0
    assert stats["max_drawdown"] == -1.0
    assert stats["max_drawdown_days"] == 5
    assert equity_curve(daily["return"]).tolist()[2:] == [0.0] * 4


@pytest.mark.parametrize(
    ("positions", "returns", "cost", "message"),
    [
        ([1.0, 1.0], [0.01], 0.0, "must share the same dates"),
        ([1.0, 1.0], [0.01, float("nan")], 0.0, "1 missing returns"),
        ([1.0, 1.0], [0.01, 0.02], -1.0, "cost_bps -1.0 must be 0 or more"),
    ],
)
def test_run_backtest_bad_input_named(
    positions: list[float], returns: list[float], cost: float, message: str
) -> None:
    with pytest.raises(BacktestError, match=message):
        run_backtest(_returns(positions), _returns(returns), cost_bps=cost)


def test_performance_table_one_row_per_strategy() -> None:
    runs = {
        "strategy": backtest_signals(SIGNALS, RETURNS, BacktestConfig()),
        "buy_and_hold": buy_and_hold(RETURNS, cost_bps=2.0),
    }

    table = performance_table(runs)

    assert list(table.index) == ["strategy", "buy_and_hold"]
    assert list(table.columns) == list(STAT_COLUMNS)


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE
    assert header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_write_figures_writes_valid_pngs(tmp_path: Path) -> None:
    dates = pd.bdate_range("2024-01-01", periods=60, name="date")
    close = pd.Series(2000.0 + np.cumsum(np.sin(np.arange(60))), index=dates)
    curves = pd.DataFrame(
        {
            "classifier": np.linspace(1.0, 1.1, 60),
            "buy_and_hold": close / close.iloc[0],
        },
        index=dates,
    )
    signals = pd.Series(np.resize(["BUY", "HOLD", "SELL"], 60), index=dates)
    backend = matplotlib.get_backend()

    paths = write_figures(
        tmp_path / "figures", curves=curves, close=close, signals=signals
    )

    names = [path.name for path in paths]
    assert names == ["equity_curve.png", "drawdown.png", "signals.png"]
    for path in paths:
        width, height = _png_size(path)
        assert width > 500
        assert height > 300
    assert matplotlib.get_backend() == backend
