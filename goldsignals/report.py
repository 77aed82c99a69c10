"""The model quality report: walk-forward scores, test window and backtest.

``build_report`` runs the whole evaluation on a cleaned standard price frame
(``date`` index of exchange dates, float64 ``open``, ``high``, ``low``,
``close``, ``volume``): features and labels, the chronological split of the
feature pipeline, walk-forward folds over the training window, the final test
window, and a backtest on the test dates of the classifier's signals (HOLD
band as in inference) and of both baselines as signals (``always_up``: BUY
every day; ``yesterday``: BUY after an up day, else SELL) next to buy-and-hold.
Its parameters default to the pipelines' YAML files (``load_report_config``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml
from sklearn.pipeline import Pipeline
from tabulate import tabulate

from goldsignals.backtest import (
    BacktestConfig,
    backtest_signals,
    buy_and_hold,
    equity_curve,
    next_day_returns,
    performance,
    performance_table,
)
from goldsignals.cleaning import clean_prices
from goldsignals.evaluation import (
    ALWAYS_UP,
    DEFAULT_SPLITS,
    MODEL,
    MODELS,
    YESTERDAY,
    EvaluationError,
    evaluate_model,
    fit_model,
    summarise_folds,
    yesterday_scores,
)
from goldsignals.features import build_feature_frame
from goldsignals.inference import classify_probabilities
from goldsignals.modeling import ModelConfig, build_estimator
from goldsignals.plots import write_figures
from goldsignals.prices import describe_span, read_price_csv
from goldsignals.splitting import SplitFrames, chronological_split

logger = logging.getLogger(__name__)

BUY_AND_HOLD = "buy_and_hold"
JSON_FILE = "evaluation.json"
DATE_COLUMNS = ("start", "end", "train_end")
COUNT_COLUMNS = ("rows", "train_rows", "folds", "max_drawdown_days", "days")


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """Parameters of the report; ``load_report_config`` reads them from YAML.

    Attributes:
        model: Estimator and hyperparameters (training YAML).
        horizon: Label horizon in trading days (feature YAML).
        test_fraction: Share of labelled rows in the test window (feature YAML).
        min_rows: Fewest rows of train and of test (feature YAML).
        repair_ohlc: Repair inconsistent bars when cleaning (feature YAML).
        hold_band: Half-width of the HOLD band around 0.5 (inference YAML).
        n_splits: Walk-forward folds over the training window.
        backtest: Short or flat on SELL, and trading costs.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    horizon: int = 1
    test_fraction: float = 0.2
    min_rows: int = 60
    repair_ohlc: bool = True
    hold_band: float = 0.05
    n_splits: int = DEFAULT_SPLITS
    backtest: BacktestConfig = field(default_factory=BacktestConfig)


@dataclass(frozen=True)
class EvaluationReport:
    """Everything the report shows.

    Attributes:
        config: The parameters used.
        scores: Per-fold scores (see ``EvaluationResult.scores``).
        summary: Walk-forward mean and std per model (``summarise_folds``).
        performance: Backtest statistics, one row per strategy (MODELS and
            ``buy_and_hold``), columns ``backtest.STAT_COLUMNS``.
        signals: One row per test date: ``close`` (USD/oz), the classifier's
            ``probability`` and one signal column per model in MODELS.
        curves: Equity curves (1.0 at the first test close), one column per
            strategy, indexed by the exchange date each value is reached.
        prices_span: Rows and dates of the price frame, for the headings.
    """

    config: ReportConfig
    scores: pd.DataFrame
    summary: pd.DataFrame
    performance: pd.DataFrame
    signals: pd.DataFrame
    curves: pd.DataFrame
    prices_span: str


def _read_yaml(path: Path) -> dict[str, Any]:
    """Read one pipeline YAML file as a mapping."""
    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EvaluationError(
            f"pipeline configuration {path} cannot be read ({exc}); restore it "
            "from the repository"
        ) from exc
    if not isinstance(tree, dict):
        raise EvaluationError(f"pipeline configuration {path} is not a YAML mapping")
    return tree


def _value(tree: dict[str, Any], *keys: str, default: Any) -> Any:
    """The value at ``keys`` in nested mappings, or ``default`` when absent."""
    node: Any = tree
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _step(tree: dict[str, Any], step: str, name: str, default: Any) -> Any:
    """Parameter ``name`` of ``step`` in a pipeline YAML, or ``default``."""
    return _value(tree, "steps", step, "parameters", name, default=default)


def load_report_config(
    config_dir: Path,
    *,
    backtest: BacktestConfig | None = None,
    n_splits: int = DEFAULT_SPLITS,
) -> ReportConfig:
    """Read the report parameters from the pipelines' YAML files.

    Args:
        config_dir: Folder holding ``feature_engineering.yaml``,
            ``training.yaml`` and ``inference.yaml``; a value missing from
            them takes the pipeline step's own default.
        backtest: Short or flat on SELL and costs (default BacktestConfig()).
        n_splits: Walk-forward folds.

    Raises:
        EvaluationError: A file cannot be read or is not a mapping.
    """
    features = _read_yaml(config_dir / "feature_engineering.yaml")
    training = _read_yaml(config_dir / "training.yaml")
    inference = _read_yaml(config_dir / "inference.yaml")
    default = ReportConfig()

    estimator = _step(training, "model_trainer", "estimator", default.model.estimator)
    params = _step(training, "model_trainer", "params", None) or {}
    pipeline = features.get("parameters") or {}
    return ReportConfig(
        model=ModelConfig(estimator=estimator, params=params),
        horizon=int(pipeline.get("horizon", default.horizon)),
        test_fraction=float(pipeline.get("test_fraction", default.test_fraction)),
        min_rows=int(_step(features, "data_splitter", "min_rows", default.min_rows)),
        repair_ohlc=bool(
            _step(features, "data_preprocessor", "repair_ohlc", default.repair_ohlc)
        ),
        hold_band=float(
            _step(inference, "inference_predict", "hold_band", default.hold_band)
        ),
        n_splits=n_splits,
        backtest=backtest or BacktestConfig(),
    )


def read_clean_prices(path: Path, *, repair_ohlc: bool = True) -> pd.DataFrame:
    """Read a price file in any supported layout and clean it.

    Returns:
        The cleaned standard price frame (no NaN, weekdays only).

    Raises:
        PriceDataError: The file cannot be read (named).
        PriceValidationError: The prices break a rule of the price schema.
    """
    prices, _ = clean_prices(read_price_csv(path), repair_ohlc=repair_ohlc)
    logger.info("Read %s from %s", describe_span(prices), path)
    return prices


def strategy_signals(
    test: pd.DataFrame, probability: pd.Series[float], *, hold_band: float
) -> pd.DataFrame:
    """Signals of the classifier and of both baselines on the test dates.

    Returns:
        Columns ``classifier`` (HOLD band around 0.5), ``always_up`` (BUY) and
        ``yesterday`` (BUY after an up day, else SELL) on the test index.
    """
    model = classify_probabilities(probability.to_numpy(), hold_band=hold_band)
    yesterday = np.where(yesterday_scores(test) > 0, "BUY", "SELL")
    return pd.DataFrame(
        {MODEL: model, ALWAYS_UP: "BUY", YESTERDAY: yesterday}, index=test.index
    )


def _settle_dates(prices: pd.DataFrame, dates: pd.Index) -> pd.DatetimeIndex:
    """The first test date, then the next exchange date after each test date."""
    index = pd.DatetimeIndex(prices.index)
    positions = index.get_indexer(dates)
    return index[np.concatenate([[positions[0]], positions + 1])]


def _curves(runs: dict[str, pd.DataFrame], dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Equity curves of every backtest on their settlement dates."""
    columns = {
        name: equity_curve(daily["return"]).to_numpy() for name, daily in runs.items()
    }
    return pd.DataFrame(columns, index=dates.rename("date"))


def _backtest(
    prices: pd.DataFrame, signals: pd.DataFrame, config: BacktestConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Backtest every model's signals and buy-and-hold on the test dates."""
    returns = next_day_returns(prices["close"]).loc[signals.index]
    runs = {name: backtest_signals(signals[name], returns, config) for name in MODELS}
    runs[BUY_AND_HOLD] = buy_and_hold(returns, cost_bps=config.cost_bps)
    curves = _curves(runs, _settle_dates(prices, signals.index))
    return performance_table(runs), curves


def build_report(prices: pd.DataFrame, config: ReportConfig) -> EvaluationReport:
    """Evaluate the configured classifier and backtest its signals.

    Args:
        prices: A cleaned standard price frame (see the module docstring).
        config: The report parameters.

    Returns:
        Scores, their walk-forward summary, backtest statistics, test signals
        and equity curves.

    Raises:
        FeatureError: Too few prices, or a split side below ``min_rows``.
        ModelConfigError: The estimator or its parameters are invalid, or the
            training window holds a single class.
        EvaluationError: Too few training rows for the walk-forward folds.
    """
    frame = build_feature_frame(prices, horizon=config.horizon)
    split: SplitFrames = chronological_split(
        frame,
        test_fraction=config.test_fraction,
        gap=config.horizon,
        min_rows=config.min_rows,
    )

    model = fit_model(build_estimator(config.model), split.train)
    return report_on_split(prices, split, model, config)


def report_on_split(
    prices: pd.DataFrame,
    split: SplitFrames,
    model: Pipeline,
    config: ReportConfig,
) -> EvaluationReport:
    """The report for an existing split (the training pipeline's artifacts).

    Args:
        prices: The cleaned price frame the split was built from.
        split: Train and test rows.
        model: The served model (fitted scaler and classifier) trained on
            ``split.train``; it scores the test window as it is, and each
            walk-forward fold fits a fresh clone of its classifier.
        config: The report parameters (its ``model`` is not used).
    """
    result = evaluate_model(
        split, model, n_splits=config.n_splits, horizon=config.horizon
    )
    signals = strategy_signals(
        split.test, result.test_probability, hold_band=config.hold_band
    )
    performance, curves = _backtest(prices, signals, config.backtest)

    signals.insert(0, "probability", result.test_probability)
    signals.insert(0, "close", prices["close"].loc[signals.index])
    return EvaluationReport(
        config=config,
        scores=result.scores,
        summary=summarise_folds(result.scores),
        performance=performance,
        signals=signals,
        curves=curves,
        prices_span=describe_span(prices),
    )


def classifier_performance(
    prices: pd.DataFrame,
    test: pd.DataFrame,
    probability: npt.NDArray[np.float64],
    config: ReportConfig,
) -> dict[str, float]:
    """Backtest statistics of a model's signals on the test dates.

    Used to score the current champion on the challenger's test window.
    """
    signals = classify_probabilities(probability, hold_band=config.hold_band)
    returns = next_day_returns(prices["close"]).loc[test.index]
    daily = backtest_signals(
        pd.Series(signals, index=test.index), returns, config.backtest
    )
    return performance(daily)


def mlflow_metrics(report: EvaluationReport) -> dict[str, float]:
    """The report as flat MLflow metrics.

    ``wf_<model>_<metric>_mean`` / ``_std`` for the walk-forward folds, and
    ``bt_<strategy>_<stat>`` for the test-window backtest; the classifier's
    own backtest figures also without prefix model (``sharpe``,
    ``total_return``, ...), for ranking and the champion gate.
    """
    metrics: dict[str, float] = {}
    for model, row in report.summary.iterrows():
        for column, value in row.items():
            if column != "folds":
                metrics[f"wf_{model}_{column}"] = float(value)
    for strategy, row in report.performance.iterrows():
        for column, value in row.items():
            metrics[f"bt_{strategy}_{column}"] = float(value)
    for column in report.performance.columns:
        metrics[str(column)] = metrics[f"bt_{MODEL}_{column}"]
    return {key: value for key, value in metrics.items() if math.isfinite(value)}


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates as ISO strings and counts as integers, for tables."""
    shown = frame.copy()
    for column in DATE_COLUMNS:
        if column in shown.columns:
            shown[column] = pd.DatetimeIndex(shown[column]).strftime("%Y-%m-%d")
    for column in COUNT_COLUMNS:
        if column in shown.columns:
            shown[column] = shown[column].astype("int64")
    return shown


def _table(frame: pd.DataFrame, *, index: bool) -> str:
    """A GitHub markdown table with 4 decimals."""
    # tabulate reads DataFrames (it special-cases them); its stubs omit them.
    table = tabulate(
        _display(frame).astype(object),  # type: ignore[arg-type]
        headers="keys",
        tablefmt="github",
        floatfmt=".4f",
        showindex=index,
    )
    return str(table)


def render_markdown(report: EvaluationReport) -> str:
    """The report as markdown: four headed tables."""
    config = report.config
    test = report.signals.index
    sell = "short" if config.backtest.short else "flat"
    counts = {name: report.signals[name].value_counts().to_dict() for name in MODELS}
    lines = [
        f"## Walk-forward scores ({report.prices_span}; horizon {config.horizon}, "
        f"{config.n_splits} expanding folds over the training window, "
        f"fold `test` = final test window)",
        "",
        _table(report.scores, index=False),
        "",
        f"## Walk-forward mean and std over {config.n_splits} folds",
        "",
        _table(report.summary, index=True),
        "",
        f"## Backtest on the test window: {len(test)} signal dates "
        f"{test[0]:%Y-%m-%d}..{test[-1]:%Y-%m-%d}, SELL = {sell}, "
        f"cost {config.backtest.cost_bps:g} bps per unit of position change, "
        f"HOLD band 0.5 +/- {config.hold_band:g}; returns are fractions",
        "",
        _table(report.performance, index=True),
        "",
        f"Signal counts: {counts}",
    ]
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    """A JSON value: NaN as null, dates as ISO strings, numpy scalars as Python."""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame, *, index: bool) -> list[dict[str, Any]]:
    """Rows of a frame as JSON-ready dictionaries."""
    rows = frame.reset_index() if index else frame
    return [
        {str(key): _jsonable(value) for key, value in row.items()}
        for row in rows.to_dict(orient="records")
    ]


def report_json(report: EvaluationReport) -> dict[str, Any]:
    """The report's parameters and tables as a JSON-ready dictionary."""
    config = asdict(report.config)
    config["model"] = report.config.model.model_dump()
    test = report.signals.index
    return {
        "config": config,
        "prices": report.prices_span,
        "test_window": {
            "start": _jsonable(test[0]),
            "end": _jsonable(test[-1]),
            "rows": len(test),
        },
        "scores": _records(report.scores, index=False),
        "walk_forward_summary": _records(report.summary, index=True),
        "backtest": _records(report.performance, index=True),
        "signal_counts": {
            name: report.signals[name].value_counts().to_dict() for name in MODELS
        },
    }


def write_report(report: EvaluationReport, folder: Path) -> list[Path]:
    """Write ``evaluation.json`` and the three PNG figures into ``folder``.

    Returns:
        The JSON path, then the figure paths (see ``plots.write_figures``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / JSON_FILE
    path.write_text(json.dumps(report_json(report), indent=2) + "\n")

    figures = write_figures(
        folder,
        curves=report.curves[[MODEL, BUY_AND_HOLD]],
        close=report.signals["close"],
        signals=report.signals[MODEL],
    )
    logger.info("Wrote the evaluation report to %s", folder)
    return [path, *figures]
