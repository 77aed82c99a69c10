"""ZenML step ``model_evaluator``: score, log to MLflow and register the model."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.base import ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from zenml import get_step_context, log_metadata, step

from goldsignals.backtest import BacktestConfig
from goldsignals.config import PIPELINE_CONFIG_DIR, get_settings
from goldsignals.modeling import (
    bundle_model,
    evaluate_classifier,
    training_fingerprint,
    up_probability,
)
from goldsignals.registry import (
    GateRules,
    check_gate_metrics,
    find_version_with_tag,
    gate_verdict,
    gate_version,
    load_model_version,
    log_served_model,
    register_version,
)
from goldsignals.report import (
    EvaluationReport,
    classifier_performance,
    load_report_config,
    mlflow_metrics,
    report_on_split,
    write_report,
)
from goldsignals.splitting import SplitFrames
from steps import require_input_ticker

logger = logging.getLogger(__name__)

FINGERPRINT_TAG = "training_fingerprint"


def _training_params(
    classifier: ClassifierMixin, train: pd.DataFrame, test: pd.DataFrame
) -> dict[str, Any]:
    params = {f"model__{k}": v for k, v in classifier.get_params().items()}
    return {
        **params,
        "estimator": f"{type(classifier).__module__}.{type(classifier).__name__}",
        "train_rows": len(train),
        "train_start": f"{train.index.min():%Y-%m-%d}",
        "train_end": f"{train.index.max():%Y-%m-%d}",
        "test_start": f"{test.index.min():%Y-%m-%d}",
        "test_end": f"{test.index.max():%Y-%m-%d}",
    }


def _register(
    model_uri: str, run_id: str, metrics: dict[str, float], fingerprint: str
) -> str:
    context = get_step_context()
    tags = {
        "zenml_pipeline_name": context.pipeline.name,
        "zenml_run_name": context.pipeline_run.name,
        "zenml_pipeline_run_uuid": str(context.pipeline_run.id),
        "zenml_step_name": context.step_run.name,
        "mlflow_run_id": run_id,
        "f1": f"{metrics['f1']:.6f}",
        FINGERPRINT_TAG: fingerprint,
    }
    return register_version(
        model_uri,
        get_settings().model_name,
        tags=tags,
        description=f"f1={metrics['f1']:.4f} roc_auc={metrics['roc_auc']:.4f}",
    )


def _champion_metrics(
    name: str, version: str, prices: pd.DataFrame, test: pd.DataFrame, config: Any
) -> dict[str, float]:
    """The champion's F1 and backtest figures on the challenger's test window."""
    champion = load_model_version(name, version)
    scores = evaluate_classifier(champion, test)
    probability = up_probability(champion, test)
    return {**scores, **classifier_performance(prices, test, probability, config)}


def _log_report(report: EvaluationReport) -> None:
    mlflow.log_metrics(mlflow_metrics(report))
    with tempfile.TemporaryDirectory() as folder:
        for path in write_report(report, Path(folder)):
            mlflow.log_artifact(str(path), artifact_path="evaluation")


def _apply_gate(
    name: str,
    version: str,
    challenger: dict[str, float],
    prices: pd.DataFrame,
    test: pd.DataFrame,
    config: Any,
    rules: GateRules,
) -> None:
    def champion_metrics(champion: str) -> dict[str, float]:
        metrics = _champion_metrics(name, champion, prices, test, config)
        mlflow.log_metrics({f"champion_{k}": v for k, v in metrics.items()})
        return metrics

    run = get_step_context().pipeline_run
    decision = gate_version(
        MlflowClient(),
        name,
        version,
        challenger,
        champion_metrics=champion_metrics,
        rules=rules,
        actor=f"zenml run {run.name} ({run.id})",
    )
    mlflow.set_tags({"gate": decision.verdict, "gate_reason": decision.reason})
    log_metadata(metadata={"gate": decision.verdict, "gate_reason": decision.reason})


def _register_or_reuse(
    model: Pipeline,
    test: pd.DataFrame,
    metrics: dict[str, float],
    fingerprint: str,
    existing: str | None,
) -> str:
    """Register the model, or reuse the version an earlier try registered."""
    if existing is not None:
        logger.warning(
            "%s version %s has the same fingerprint but no champion gate verdict "
            "(an earlier try failed after registering it): gating it now",
            get_settings().model_name,
            existing,
        )
        mlflow.set_tag("registered_version", f"{existing} (gated on retry)")
        log_metadata(metadata={"model_version": existing})
        return existing

    logged = log_served_model(model, test.tail(5))
    version = _register(logged.model_uri, logged.run_id, metrics, fingerprint)
    mlflow.set_tag("registered_version", version)
    log_metadata(metadata={"mlflow_run_id": logged.run_id, "model_version": version})
    return version


@step(enable_cache=False)
def model_evaluator(
    classifier: ClassifierMixin,
    scaler: StandardScaler,
    train: pd.DataFrame,
    test: pd.DataFrame,
    prices: pd.DataFrame,
    walk_forward_folds: int = 5,
    short_on_sell: bool = True,
    cost_bps: float = 2.0,
    primary_metric: str = "sharpe",
    floor_metric: str = "f1",
    floor: float = 0.5,
    min_roc_auc: float = 0.5,
) -> tuple[
    Annotated[dict[str, float], "evaluation_metrics"],
    Annotated[str, "registered_model_version"],
]:
    """Evaluate, backtest, log to MLflow, register, and gate the champion alias.

    Runs with the stack's MLflow experiment tracker (set in the training
    YAML), which opens the MLflow run this step logs into. Horizon, test
    share and HOLD band come from the feature and inference YAML files.

    Args:
        classifier: Fitted classifier (expects scaled features).
        scaler: The scaler it was trained behind.
        train: Unscaled training window, for the logged parameters.
        test: Unscaled test window.
        prices: The clean prices the windows were built from (backtest).
        walk_forward_folds: Expanding-window folds over the training window.
        short_on_sell: SELL means short (else flat) in the backtest.
        cost_bps: Trading cost per unit of position change, basis points.
        primary_metric: Metric a new version must beat the champion on.
        floor_metric: Metric a new version must reach to be considered.
        floor: That minimum.
        min_roc_auc: A new version's test ROC AUC must exceed it (0.5 is
            chance) to take the alias.

    Returns:
        The test metrics and the registered model version.
    """
    require_input_ticker("test")
    model = bundle_model(scaler, classifier)
    metrics = evaluate_classifier(model, test)
    fingerprint = training_fingerprint(classifier, train, test)
    config = load_report_config(
        PIPELINE_CONFIG_DIR,
        backtest=BacktestConfig(short=short_on_sell, cost_bps=cost_bps),
        n_splits=walk_forward_folds,
    )
    split = SplitFrames(train, test)
    report = report_on_split(prices, split, model, config)
    metrics.update(mlflow_metrics(report))
    rules = GateRules(
        primary=primary_metric,
        floor_metric=floor_metric,
        floor=floor,
        min_roc_auc=min_roc_auc,
    )
    check_gate_metrics(rules, metrics)

    mlflow.log_params(_training_params(classifier, train, test))
    mlflow.log_metrics(metrics)
    _log_report(report)
    mlflow.set_tag(FINGERPRINT_TAG, fingerprint)
    name = get_settings().model_name
    client = MlflowClient()
    existing = find_version_with_tag(
        client, name=name, key=FINGERPRINT_TAG, value=fingerprint
    )
    if existing is not None and gate_verdict(client, name, existing) is not None:
        logger.info(
            "Same data and hyperparameters as %s version %s: not registered again",
            name,
            existing,
        )
        mlflow.set_tag("registered_version", f"{existing} (unchanged)")
        return metrics, existing

    version = _register_or_reuse(model, test, metrics, fingerprint, existing)
    _apply_gate(name, version, metrics, prices, test, config, rules)
    return metrics, version
