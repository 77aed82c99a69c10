"""ZenML step ``select_best_model``: the best registered model version."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from mlflow.tracking import MlflowClient
from zenml import ArtifactConfig, log_metadata, step
from zenml.client import Client
from zenml.enums import ArtifactType
from zenml.integrations.mlflow.model_registries import MLFlowModelRegistry

from goldsignals.config import get_settings
from goldsignals.registry import load_version, select_serving_version


@step(enable_cache=False)
def select_best_model(
    metric: str = "f1", greater_is_better: bool = True
) -> tuple[
    Annotated[
        Any, ArtifactConfig(name="served_model", artifact_type=ArtifactType.MODEL)
    ],
    Annotated[dict[str, Any], "model_reference"],
]:
    """Load the champion (registry alias), or without one the best by ``metric``.

    Args:
        metric: MLflow run metric to rank versions by when there is no
            champion yet.
        greater_is_better: Whether a higher metric is better.

    Returns:
        The served model (scaler + classifier) and its registry coordinates.
    """
    registry = Client().active_stack.model_registry
    if not isinstance(registry, MLFlowModelRegistry):
        raise TypeError(
            "select_best_model needs an MLflow model registry in the active "
            f"ZenML stack, found {type(registry).__name__}"
        )
    registry.configure_mlflow()
    ref = select_serving_version(
        MlflowClient(),
        name=get_settings().model_name,
        metric=metric,
        greater_is_better=greater_is_better,
    )

    model = load_version(ref)
    log_metadata(metadata={"model_name": ref.name, "model_version": ref.version})
    return model, asdict(ref)
