"""The pipelines' computation with the domain functions alone: the floor.

The same calls the steps make, with the parameters of the pipelines' YAML
files, but without ZenML, MLflow or Airflow: no artifact is materialised, no
run is tracked, no model is logged or registered, no signal is written to a
database. What remains is the work any implementation has to do.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sklearn.base import ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from goldsignals.backtest import BacktestConfig
from goldsignals.cleaning import clean_prices
from goldsignals.config import PIPELINE_CONFIG_DIR
from goldsignals.evaluation import DEFAULT_SPLITS
from goldsignals.features import build_feature_frame, latest_rows
from goldsignals.inference import ModelRef, predict_signals
from goldsignals.modeling import (
    build_estimator,
    bundle_model,
    evaluate_classifier,
    train_classifier,
    training_fingerprint,
)
from goldsignals.price_store import SqlHistory
from goldsignals.prices import load_prices
from goldsignals.report import (
    EvaluationReport,
    ReportConfig,
    load_report_config,
    mlflow_metrics,
    report_on_split,
    write_report,
)
from goldsignals.signal_store import create_signal_engine
from goldsignals.splitting import (
    SplitFrames,
    chronological_split,
    fit_scaler,
    scale_features,
)

logger = logging.getLogger(__name__)

TICKER = "GC=F"


@dataclass(frozen=True)
class FloorConfig:
    """The pipelines' parameters, read from their YAML files.

    Attributes:
        report: Model, horizon, test share, minimum rows, HOLD band, folds,
            backtest (as ``model_evaluator`` builds it).
        latest_dates: Newest dates that get a signal (``inference_predict``).
    """

    report: ReportConfig
    latest_dates: int


@dataclass(frozen=True)
class Scaled:
    """Output of split and scale: the windows, scaled windows and scaler."""

    split: SplitFrames
    train_scaled: pd.DataFrame
    test_scaled: pd.DataFrame
    scaler: StandardScaler


def _parameters(name: str, step: str) -> dict[str, Any]:
    tree = yaml.safe_load((PIPELINE_CONFIG_DIR / f"{name}.yaml").read_text())
    parameters: dict[str, Any] = tree["steps"][step].get("parameters") or {}
    return parameters


def load_config() -> FloorConfig:
    """Read the parameters the three pipelines run with."""
    evaluator = _parameters("training", "model_evaluator")
    backtest = BacktestConfig(
        short=bool(evaluator.get("short_on_sell", True)),
        cost_bps=float(evaluator.get("cost_bps", 2.0)),
    )
    report = load_report_config(
        PIPELINE_CONFIG_DIR,
        backtest=backtest,
        n_splits=int(evaluator.get("walk_forward_folds", DEFAULT_SPLITS)),
    )
    predict = _parameters("inference", "inference_predict")
    return FloorConfig(report=report, latest_dates=int(predict.get("latest_dates", 1)))


def load(prices_csv: Path, database: Path) -> pd.DataFrame:
    """``data_loader``: merge the price file into the (new) ``prices`` table.

    The table is in a SQLite file, as in the embedded stack.
    """
    engine = create_signal_engine(f"sqlite:///{database}")
    try:
        loaded = load_prices(
            ticker=TICKER,
            source="csv",
            history=SqlHistory(engine, TICKER),
            price_csv=prices_csv,
            history_start=dt.date(2000, 1, 1),
        )
    finally:
        engine.dispose()
    return loaded.prices


def clean(prices: pd.DataFrame, config: FloorConfig) -> pd.DataFrame:
    """``data_preprocessor``: validate and clean."""
    cleaned, _ = clean_prices(prices, repair_ohlc=config.report.repair_ohlc)
    return cleaned


def features(prices: pd.DataFrame, config: FloorConfig) -> pd.DataFrame:
    """``feature_generation``: indicators and labels."""
    return build_feature_frame(prices, horizon=config.report.horizon)


def split_and_scale(frame: pd.DataFrame, config: FloorConfig) -> Scaled:
    """``data_splitter`` and ``data_scaler``."""
    report = config.report
    split = chronological_split(
        frame,
        test_fraction=report.test_fraction,
        gap=report.horizon,
        min_rows=report.min_rows,
    )
    scaler = fit_scaler(split.train)
    return Scaled(
        split=split,
        train_scaled=scale_features(scaler, split.train),
        test_scaled=scale_features(scaler, split.test),
        scaler=scaler,
    )


def train(scaled: Scaled, config: FloorConfig) -> ClassifierMixin:
    """``model_trainer``: the training YAML's classifier on the scaled window."""
    return train_classifier(build_estimator(config.report.model), scaled.train_scaled)


def evaluate(
    classifier: ClassifierMixin,
    scaled: Scaled,
    prices: pd.DataFrame,
    config: FloorConfig,
) -> tuple[Pipeline, EvaluationReport, dict[str, float]]:
    """``model_evaluator`` without MLflow: test scores, walk-forward, backtest.

    Returns:
        The served model (scaler + classifier), the report, the metrics.
    """
    split = scaled.split
    model = bundle_model(scaled.scaler, classifier)
    metrics = evaluate_classifier(model, split.test)
    training_fingerprint(classifier, split.train, split.test)
    report = report_on_split(prices, split, model, config.report)
    metrics.update(mlflow_metrics(report))
    return model, report, metrics


def report_files(report: EvaluationReport, folder: Path) -> list[Path]:
    """The files ``model_evaluator`` logs: evaluation JSON and three plots."""
    return write_report(report, folder)


def predict(model: Pipeline, frame: pd.DataFrame, config: FloorConfig) -> pd.DataFrame:
    """``inference_predict``: BUY, SELL or HOLD for the newest dates."""
    rows = latest_rows(frame, count=config.latest_dates)
    reference = ModelRef(
        name="floor", version="0", run_id=None, metric="f1", metric_value=None
    )
    return predict_signals(
        model,
        rows,
        ticker=TICKER,
        model_ref=reference,
        hold_band=config.report.hold_band,
        last_price_date=frame.index.max().date(),
    )
