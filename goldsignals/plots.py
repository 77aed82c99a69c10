"""Figures of a backtest: equity curves, drawdowns, price with signals.

Figures are drawn on matplotlib ``Figure`` objects with an Agg canvas of their
own and written as PNG files. Nothing here imports ``matplotlib.pyplot`` or
calls ``matplotlib.use``, so the process-wide backend and pyplot's figure list
stay as other code left them, and no window is ever opened.

Inputs are indexed by exchange date (tz-naive ``DatetimeIndex``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from goldsignals.backtest import drawdown

logger = logging.getLogger(__name__)

FIGURE_SIZE = (11.0, 5.5)
DPI = 110
EQUITY_FILE = "equity_curve.png"
DRAWDOWN_FILE = "drawdown.png"
SIGNALS_FILE = "signals.png"
MARKERS = {"BUY": ("^", "tab:green"), "SELL": ("v", "tab:red")}


def _new_axes(title: str, ylabel: str) -> tuple[Figure, Axes]:
    """A figure with one date axis, title and labels, on its own Agg canvas."""
    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)
    axes.set_title(title)
    axes.set_xlabel("date")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def equity_figure(curves: pd.DataFrame) -> Figure:
    """Wealth of 1.0 invested, one line per column (e.g. strategy, buy-and-hold).

    Args:
        curves: Float64 wealth on the exchange date each value is reached.
    """
    figure, axes = _new_axes("Equity curve (1.0 invested)", "wealth")
    for name in curves.columns:
        axes.plot(curves.index, curves[name], label=str(name), linewidth=1.2)
    axes.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axes.legend(loc="upper left")
    return figure


def drawdown_figure(curves: pd.DataFrame) -> Figure:
    """Drawdown below the running peak of each equity curve, in percent."""
    figure, axes = _new_axes("Drawdown from the running peak", "drawdown")
    for name in curves.columns:
        axes.plot(curves.index, drawdown(curves[name]), label=str(name), linewidth=1.0)
    axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    axes.legend(loc="lower left")
    return figure


def signals_figure(close: pd.Series[float], signals: pd.Series[str]) -> Figure:
    """Close price with a marker at each BUY and SELL signal (HOLD unmarked).

    Args:
        close: Close prices in USD per troy ounce, by exchange date.
        signals: BUY, SELL or HOLD on dates of ``close``.
    """
    figure, axes = _new_axes("Close price and signals", "close (USD/oz)")
    axes.plot(close.index, close, color="black", linewidth=0.9, label="close")
    for signal, (marker, colour) in MARKERS.items():
        dates = signals.index[signals == signal]
        count = len(dates)
        axes.scatter(
            dates,
            close.loc[dates],
            marker=marker,
            color=colour,
            s=14,
            label=f"{signal} ({count} days)",
            zorder=3,
        )
    axes.legend(loc="upper left")
    return figure


def write_figures(
    folder: Path,
    *,
    curves: pd.DataFrame,
    close: pd.Series[float],
    signals: pd.Series[str],
) -> list[Path]:
    """Write the equity, drawdown and signal figures as PNG files.

    Args:
        folder: Where to write (created when missing); files are replaced.
        curves: Equity curves, one column per strategy (see ``equity_figure``).
        close: Close prices of the backtest dates.
        signals: The strategy's signals on those dates.

    Returns:
        The paths of ``equity_curve.png``, ``drawdown.png`` and ``signals.png``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    figures = {
        EQUITY_FILE: equity_figure(curves),
        DRAWDOWN_FILE: drawdown_figure(curves),
        SIGNALS_FILE: signals_figure(close, signals),
    }

    paths = []
    for name, figure in figures.items():
        path = folder / name
        figure.savefig(path, format="png")
        paths.append(path)

    logger.info("Wrote %d figures to %s", len(paths), folder)
    return paths
