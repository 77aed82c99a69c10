"""ZenML step ``model_evaluator``: score, log to MLflow and register the model."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import StandardScaler
from zenml import get_step_context, log_metadata, step

from goldsignals.config import get_settings
from goldsignals.modeling import (
    bundle_model,
    evaluate_classifier,
    training_fingerprint,
)
from goldsignals.registry import (
    find_version_with_tag,
    log_served_model,
    register_version,
)

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


@step(enable_cache=False)
def model_evaluator(
    classifier: ClassifierMixin,
    scaler: StandardScaler,
    train: pd.DataFrame,
    test: pd.DataFrame,
) -> tuple[
    Annotated[dict[str, float], "evaluation_metrics"],
    Annotated[str, "registered_model_version"],
]:
    """Evaluate on the test window, log to MLflow, register a new version.

    Runs with the stack's MLflow experiment tracker (set in the training
    YAML), which opens the MLflow run this step logs into.

    Args:
        classifier: Fitted classifier (expects scaled features).
        scaler: The scaler it was trained behind.
        train: Unscaled training window, for the logged parameters.
        test: Unscaled test window.

    Returns:
        The test metrics and the registered model version.
    """
    model = bundle_model(scaler, classifier)
    metrics = evaluate_classifier(model, test)
    fingerprint = training_fingerprint(classifier, train, test)

    mlflow.log_params(_training_params(classifier, train, test))
    mlflow.log_metrics(metrics)
    mlflow.set_tag(FINGERPRINT_TAG, fingerprint)
    name = get_settings().model_name
    existing = find_version_with_tag(
        MlflowClient(), name=name, key=FINGERPRINT_TAG, value=fingerprint
    )
    if existing is not None:
        logger.info(
            "Same data and hyperparameters as %s version %s: not registered again",
            name,
            existing,
        )
        mlflow.set_tag("registered_version", f"{existing} (unchanged)")
        return metrics, existing

    logged = log_served_model(model, test.tail(5))
    version = _register(logged.model_uri, logged.run_id, metrics, fingerprint)
    mlflow.set_tag("registered_version", version)
    log_metadata(metadata={"mlflow_run_id": logged.run_id, "model_version": version})
    logger.info("Registered %s version %s", name, version)
    return metrics, version
