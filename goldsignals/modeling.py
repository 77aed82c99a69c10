"""Build, train and evaluate the direction classifier.

The estimator is any scikit-learn classifier named by its import path, with
hyperparameters from the training YAML; a RandomForest by default. The model
that is logged and served is a scikit-learn ``Pipeline`` of the fitted scaler
and the classifier, so inference always applies the scaler of its training.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from goldsignals.errors import ModelConfigError
from goldsignals.features import FEATURE_COLUMNS, TARGET_COLUMN

logger = logging.getLogger(__name__)

DEFAULT_ESTIMATOR = "sklearn.ensemble.RandomForestClassifier"


class ModelConfig(BaseModel):
    """Which classifier to train and with which hyperparameters.

    Attributes:
        estimator: Import path of a scikit-learn classifier class.
        params: Keyword arguments of its constructor.
    """

    estimator: str = DEFAULT_ESTIMATOR
    params: dict[str, Any] = Field(default_factory=dict)


def _import_class(path: str) -> type[Any]:
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ModelConfigError(
            f"estimator {path!r} is not an import path; write it like "
            f"{DEFAULT_ESTIMATOR!r}"
        )
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ModelConfigError(
            f"estimator {path!r} cannot be imported ({exc}); name an installed "
            "scikit-learn classifier, e.g. "
            f"{DEFAULT_ESTIMATOR!r}"
        ) from exc


def build_estimator(config: ModelConfig) -> ClassifierMixin:
    """Instantiate the configured classifier.

    Raises:
        ModelConfigError: If the class cannot be imported, is not a
            classifier, or rejects one of the parameters (named).
    """
    cls = _import_class(config.estimator)
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise ModelConfigError(
            f"estimator {config.estimator!r} is not a scikit-learn estimator "
            "class; name a classifier such as "
            "sklearn.ensemble.RandomForestClassifier"
        )
    try:
        estimator = cls()
    except TypeError as exc:
        raise ModelConfigError(f"{config.estimator} cannot be built: {exc}") from exc
    if not is_classifier(estimator):
        raise ModelConfigError(
            f"estimator {config.estimator!r} is not a scikit-learn classifier; "
            "the signal model must predict up/down classes"
        )

    known = estimator.get_params()
    unknown = sorted(set(config.params) - set(known))
    if unknown:
        raise ModelConfigError(
            f"{config.estimator} has no parameter(s) {unknown}; valid ones are "
            f"{sorted(known)}"
        )
    return estimator.set_params(**config.params)


def feature_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """Select the model's input columns, in training order, as float64."""
    return frame.loc[:, list(FEATURE_COLUMNS)].astype("float64")


def train_classifier(
    estimator: ClassifierMixin, train: pd.DataFrame
) -> ClassifierMixin:
    """Fit a fresh clone of ``estimator`` on the (scaled) training frame.

    Args:
        estimator: An unfitted classifier.
        train: Labelled rows: FEATURE_COLUMNS (scaled) and ``target``.

    Returns:
        The fitted classifier.
    """
    features = feature_matrix(train)
    target = train[TARGET_COLUMN].astype("int64")
    if target.nunique() < 2:
        raise ModelConfigError(
            f"the training window {train.index.min():%Y-%m-%d} to "
            f"{train.index.max():%Y-%m-%d} has a single class; use a longer "
            "history or a shorter test window"
        )

    model = clone(estimator)
    model.fit(features, target)
    logger.info(
        "Trained %s on %d rows x %d features",
        type(model).__name__,
        len(features),
        features.shape[1],
    )
    return model


def bundle_model(scaler: StandardScaler, classifier: ClassifierMixin) -> Pipeline:
    """Join the fitted scaler and classifier into the model that is served."""
    return Pipeline([("scaler", scaler), ("classifier", classifier)])


def up_probability(model: Any, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Probability of an up move for each row of ``frame`` (unscaled features)."""
    proba = np.asarray(model.predict_proba(feature_matrix(frame)))
    classes = list(getattr(model, "classes_", [0, 1]))
    return proba[:, classes.index(1)]


def evaluate_classifier(model: Any, test: pd.DataFrame) -> dict[str, float]:
    """Score the served model on the test window.

    Args:
        model: The bundled model (scaler + classifier).
        test: Labelled rows with unscaled FEATURE_COLUMNS and ``target``.

    Returns:
        ``f1``, ``precision``, ``recall``, ``accuracy`` and ``roc_auc``
        (NaN when the window holds one class only), plus ``test_rows`` and
        ``test_up_rate``.
    """
    truth = test[TARGET_COLUMN].astype("int64").to_numpy()
    proba = up_probability(model, test)
    predicted = (proba >= 0.5).astype("int64")

    metrics = {
        "f1": f1_score(truth, predicted, zero_division=0),
        "precision": precision_score(truth, predicted, zero_division=0),
        "recall": recall_score(truth, predicted, zero_division=0),
        "accuracy": accuracy_score(truth, predicted),
        "roc_auc": (
            roc_auc_score(truth, proba) if len(set(truth)) == 2 else float("nan")
        ),
        "test_rows": float(len(truth)),
        "test_up_rate": float(truth.mean()) if len(truth) else float("nan"),
    }
    logger.info(
        "Test window %d rows: f1=%.4f precision=%.4f recall=%.4f "
        "accuracy=%.4f roc_auc=%.4f",
        len(truth),
        metrics["f1"],
        metrics["precision"],
        metrics["recall"],
        metrics["accuracy"],
        metrics["roc_auc"],
    )
    return {name: float(value) for name, value in metrics.items()}


def training_fingerprint(
    classifier: ClassifierMixin, train: pd.DataFrame, test: pd.DataFrame
) -> str:
    """Hash of what defines a trained model: data windows and hyperparameters.

    Two trainings with the same fingerprint produce the same model (the
    estimator is seeded), so the second need not be registered again.

    Returns:
        A hex SHA-256 digest.
    """
    digest = hashlib.sha256()
    for frame in (train, test):
        hashed = pd.util.hash_pandas_object(frame, index=True)
        digest.update(hashed.to_numpy().tobytes())
    params = json.dumps(classifier.get_params(), sort_keys=True, default=str)
    digest.update(f"{type(classifier).__name__}:{params}".encode())
    return digest.hexdigest()
