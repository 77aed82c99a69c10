"""ZenML step ``model_trainer``: fit the configured classifier."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from sklearn.base import ClassifierMixin
from zenml import ArtifactConfig, step
from zenml.enums import ArtifactType

from goldsignals.modeling import (
    DEFAULT_ESTIMATOR,
    ModelConfig,
    build_estimator,
    train_classifier,
)
from steps import require_input_ticker


@step(enable_cache=False)
def model_trainer(
    train: pd.DataFrame,
    estimator: str = DEFAULT_ESTIMATOR,
    params: dict[str, Any] | None = None,
) -> Annotated[
    ClassifierMixin, ArtifactConfig(name="classifier", artifact_type=ArtifactType.MODEL)
]:
    """Train the classifier named in the training YAML on the scaled train set.

    Args:
        train: Scaled training window (FEATURE_COLUMNS and ``target``).
        estimator: Import path of any scikit-learn classifier.
        params: Its hyperparameters.

    Returns:
        The fitted classifier (expects scaled features).

    Raises:
        TickerMismatchError: The features were built for another ticker.
    """
    require_input_ticker("train")
    config = ModelConfig(estimator=estimator, params=params or {})
    return train_classifier(build_estimator(config), train)
