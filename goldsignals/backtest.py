"""Backtest of BUY / SELL / HOLD signals on daily closes.

A signal issued at the close of exchange date ``t`` sets the position held from
that close to the next one, so it earns the simple return
``close[t + 1] / close[t] - 1``. BUY is long (+1), HOLD is flat (0) and SELL is
short (-1) or flat, as configured. Changing the position costs ``cost_bps``
basis points per unit of change, charged on the day of the change: entering
from flat costs 1x, flipping from long to short 2x. The first signal enters
from flat; the last position is not closed (no exit cost), as for buy-and-hold,
which is long every day and pays one entry cost.

Capital is never negative: a day cannot lose more than the whole equity (a
short position whose asset rises over 100 % loses everything, not more), and
an equity at zero is a total loss that earns nothing afterwards
(:func:`earned_returns`). So every statistic is a real number or NaN, never a
complex one: such a path has a total and annual return of -100 % and a
drawdown of -100 %.

The statistics follow the definitions of empyrical (252 trading days a year,
risk-free rate 0) but are computed here with numpy and pandas:
``empyrical-reloaded==0.7.1`` cannot be installed next to the pinned
dependencies, because it requires ``peewee<3.17.4`` and the project pins
``peewee==4.5.3`` (needed by yfinance), so pip's resolver refuses it under
``constraints.txt``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from goldsignals.errors import GoldSignalsError
from goldsignals.features import TRADING_DAYS_PER_YEAR

logger = logging.getLogger(__name__)

SIGNALS = ("BUY", "SELL", "HOLD")
BASIS_POINT = 1e-4
STAT_COLUMNS = (
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_days",
    "hit_rate",
    "exposure",
    "turnover",
    "days",
)
DAILY_COLUMNS = ("position", "asset_return", "trade", "cost", "return")


class BacktestError(GoldSignalsError, ValueError):
    """Signals, returns or costs cannot be backtested as given."""


@dataclass(frozen=True, kw_only=True)
class BacktestConfig:
    """How signals become positions and what trading costs.

    Attributes:
        short: SELL opens a short position (-1); when False, SELL is flat (0).
        cost_bps: Cost in basis points of the traded value per unit of
            position change (0 or more).
    """

    short: bool = True
    cost_bps: float = 2.0


def signal_positions(signals: pd.Series[str], *, short: bool) -> pd.Series[float]:
    """Turn signals into positions: BUY +1, HOLD 0, SELL -1 (``short``) or 0.

    Raises:
        BacktestError: A value is not one of BUY, SELL, HOLD (the first are named).
    """
    unknown = sorted(set(signals) - set(SIGNALS))
    if unknown:
        raise BacktestError(
            f"signals {unknown[:5]} are not BUY, SELL or HOLD; pass the signals "
            "of goldsignals.inference.classify_probabilities"
        )

    sell = -1.0 if short else 0.0
    mapping = {"BUY": 1.0, "SELL": sell, "HOLD": 0.0}
    return signals.map(mapping).astype(np.float64)


def next_day_returns(close: pd.Series[float]) -> pd.Series[float]:
    """Simple return from each close to the next one (NaN on the last date)."""
    return close.shift(-1) / close - 1.0


def _check_inputs(
    positions: pd.Series[float], asset_returns: pd.Series[float], cost_bps: float
) -> None:
    """Raise BacktestError for misaligned inputs, gaps or a negative cost."""
    if not positions.index.equals(asset_returns.index):
        raise BacktestError(
            f"positions ({len(positions)} dates) and returns ({len(asset_returns)} "
            "dates) must share the same dates; align them first"
        )
    if positions.empty or asset_returns.isna().any() or positions.isna().any():
        raise BacktestError(
            f"{len(positions)} days with {int(asset_returns.isna().sum())} missing "
            f"returns and {int(positions.isna().sum())} missing positions; every "
            "backtest day needs a position and the next day's close"
        )
    if not cost_bps >= 0:
        raise BacktestError(f"cost_bps {cost_bps!r} must be 0 or more basis points")


def run_backtest(
    positions: pd.Series[float], asset_returns: pd.Series[float], *, cost_bps: float
) -> pd.DataFrame:
    """Apply positions to next-day returns, net of trading costs.

    Args:
        positions: Position held from each date's close to the next close
            (+1 long, 0 flat, -1 short), indexed by exchange date.
        asset_returns: ``close[t + 1] / close[t] - 1`` on the same dates.
        cost_bps: Basis points per unit of position change.

    Returns:
        A float64 frame on the same dates with columns ``position``,
        ``asset_return``, ``trade`` (absolute position change, the first day
        from flat), ``cost`` (fraction of capital) and ``return`` (the
        position's return minus the cost).

    Raises:
        BacktestError: Dates differ, a value is missing, or ``cost_bps`` < 0.
    """
    _check_inputs(positions, asset_returns, cost_bps)

    trade = positions.diff().fillna(positions).abs()
    cost = trade * cost_bps * BASIS_POINT
    daily = pd.DataFrame(
        {
            "position": positions,
            "asset_return": asset_returns,
            "trade": trade,
            "cost": cost,
            "return": positions * asset_returns - cost,
        }
    )
    return daily.astype(np.float64)


def backtest_signals(
    signals: pd.Series[str], asset_returns: pd.Series[float], config: BacktestConfig
) -> pd.DataFrame:
    """Backtest signals; see ``run_backtest`` for the returned columns."""
    positions = signal_positions(signals, short=config.short)
    return run_backtest(positions, asset_returns, cost_bps=config.cost_bps)


def buy_and_hold(asset_returns: pd.Series[float], *, cost_bps: float) -> pd.DataFrame:
    """Long every day from the first close, one entry cost; see ``run_backtest``."""
    positions = pd.Series(1.0, index=asset_returns.index)
    return run_backtest(positions, asset_returns, cost_bps=cost_bps)


def earned_returns(returns: pd.Series[float]) -> pd.Series[float]:
    """Daily returns the capital can actually earn.

    A loss stops at -1.0 (the whole equity), and every day after the first
    total loss earns 0.0: nothing is left to trade with.

    Args:
        returns: Daily returns as fractions, indexed by exchange date.

    Returns:
        float64 returns on the same index, each -1.0 or more.
    """
    capped = np.maximum(returns.to_numpy(dtype=np.float64), -1.0)
    ruined = np.maximum.accumulate(capped <= -1.0)
    after_ruin = np.concatenate([[False], ruined[:-1]])
    earned = np.where(after_ruin, 0.0, capped)
    return pd.Series(earned, index=returns.index, dtype=np.float64)


def total_return(returns: pd.Series[float]) -> float:
    """Compounded return over all days, as a fraction (-1.0: total loss)."""
    return float(np.prod(1.0 + earned_returns(returns).to_numpy()) - 1.0)


def annual_return(returns: pd.Series[float]) -> float:
    """Compound annual growth rate over ``len(returns)`` trading days.

    -1.0 when the equity ends at zero (a total loss); NaN without days.
    """
    if returns.empty:
        return math.nan
    years = len(returns) / TRADING_DAYS_PER_YEAR
    growth = 1.0 + total_return(returns)
    if growth <= 0.0:
        return -1.0
    return float(growth ** (1.0 / years) - 1.0)


def annual_volatility(returns: pd.Series[float]) -> float:
    """Sample standard deviation of daily returns times sqrt(252)."""
    if len(returns) < 2:
        return math.nan
    return float(returns.std(ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR))


def sharpe_ratio(returns: pd.Series[float]) -> float:
    """Annualised Sharpe ratio (risk-free 0); NaN for fewer than 2 days or std 0."""
    std = returns.std(ddof=1) if len(returns) >= 2 else 0.0
    if not std > 0:
        return math.nan
    return float(returns.mean() / std * math.sqrt(TRADING_DAYS_PER_YEAR))


def sortino_ratio(returns: pd.Series[float]) -> float:
    """Annualised mean return over annualised downside deviation (target 0).

    The downside deviation is ``sqrt(mean(min(r, 0) ** 2))`` over all days;
    NaN when no day lost money (the ratio is undefined).
    """
    downside = math.sqrt(float(np.mean(np.minimum(returns.to_numpy(), 0.0) ** 2)))
    if returns.empty or downside == 0:
        return math.nan
    return float(returns.mean() * math.sqrt(TRADING_DAYS_PER_YEAR) / downside)


def equity_curve(returns: pd.Series[float]) -> pd.Series[float]:
    """Wealth of 1.0 invested before the first day, after each day's return.

    Returns:
        ``len(returns) + 1`` values: 1.0, then the compounded wealth (0.0 or
        more, see :func:`earned_returns`). The index is positional (0 is the
        start), since the start has no date of its own in ``returns``.
    """
    growth = 1.0 + earned_returns(returns).to_numpy()
    wealth = np.concatenate([[1.0], np.cumprod(growth)])
    return pd.Series(wealth, dtype=np.float64)


def drawdown(curve: pd.Series[float]) -> pd.Series[float]:
    """Fall of an equity curve below its running peak, as a fraction (<= 0)."""
    return curve / curve.cummax() - 1.0


def max_drawdown(returns: pd.Series[float]) -> tuple[float, int]:
    """Deepest drawdown and its length in trading days.

    The length runs from the peak before the deepest trough to the first day
    the curve is back at that peak, or to the last day when it never is.

    Returns:
        The drawdown as a fraction (-1.0 to 0: -1.0 is a total loss) and its
        length (0 without a loss).
    """
    curve = equity_curve(returns).to_numpy()
    falls = curve / np.maximum.accumulate(curve) - 1.0
    trough = int(np.argmin(falls))
    if falls[trough] == 0:
        return 0.0, 0

    peak = int(np.argmax(curve[: trough + 1]))
    recovered = np.flatnonzero(curve[trough:] >= curve[peak])
    end = trough + int(recovered[0]) if recovered.size else len(curve) - 1
    return float(falls[trough]), end - peak


def hit_rate(daily: pd.DataFrame) -> float:
    """Share of days in the market whose asset return had the position's sign."""
    in_market = daily["position"] != 0
    if not in_market.any():
        return math.nan
    gains = daily["position"] * daily["asset_return"] > 0
    return float(gains[in_market].mean())


def performance(daily: pd.DataFrame) -> dict[str, float]:
    """Every statistic of STAT_COLUMNS for one backtest from ``run_backtest``.

    Returns and ratios are computed on :func:`earned_returns`, so each value
    is a finite float or NaN whatever the path.
    """
    returns = earned_returns(daily["return"])
    depth, length = max_drawdown(returns)
    return {
        "total_return": total_return(returns),
        "annual_return": annual_return(returns),
        "annual_volatility": annual_volatility(returns),
        "sharpe": sharpe_ratio(returns),
        "sortino": sortino_ratio(returns),
        "max_drawdown": depth,
        "max_drawdown_days": float(length),
        "hit_rate": hit_rate(daily),
        "exposure": float((daily["position"] != 0).mean()),
        "turnover": float(daily["trade"].mean()),
        "days": float(len(daily)),
    }


def performance_table(runs: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Statistics of several backtests, one row per name, STAT_COLUMNS as columns."""
    table = pd.DataFrame(
        [performance(daily) for daily in runs.values()],
        index=pd.Index(list(runs), name="strategy"),
        columns=list(STAT_COLUMNS),
    )
    for name, row in table.iterrows():
        logger.info(
            "Backtest %s: total %.4f, Sharpe %.3f, max drawdown %.4f over %d days",
            name,
            row["total_return"],
            row["sharpe"],
            row["max_drawdown"],
            int(row["days"]),
        )
    return table
