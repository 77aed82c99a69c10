"""A classifier that records the rows it is fitted on, and the leakage check.

``RecordingClassifier`` can stand in for the configured estimator anywhere
(``ModelConfig(estimator="tests.leakage.RecordingClassifier")``): every fit,
of any clone, appends the date index of its feature rows to the class-level
list ``fitted``, since clones share no instance state. Use the fixture
``fit_recorder`` (tests/conftest.py), which empties the list around a test.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """A logistic regression that records the dates of its training rows.

    Attributes:
        fitted: Date index of the feature rows of every fit, oldest first.
    """

    fitted: ClassVar[list[pd.Index]] = []

    def fit(self, features: pd.DataFrame, target: pd.Series) -> RecordingClassifier:
        """Record the rows' dates, then fit a logistic regression on them.

        Raises:
            TypeError: ``features`` is not a DataFrame, so its rows have no
                dates to check.
        """
        if not isinstance(features, pd.DataFrame):
            raise TypeError(
                f"fit got {type(features).__name__}, not a DataFrame with a date "
                "index; the leakage check needs the dates of the rows"
            )
        RecordingClassifier.fitted.append(features.index.copy())

        self.model_ = LogisticRegression().fit(features, target)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray[Any, Any]:
        """Class probabilities of the fitted logistic regression."""
        return np.asarray(self.model_.predict_proba(features))

    def predict(self, features: pd.DataFrame) -> np.ndarray[Any, Any]:
        """Predicted classes of the fitted logistic regression."""
        return np.asarray(self.model_.predict(features))


def assert_no_test_rows(fitted: list[pd.Index], test: pd.Index) -> None:
    """Fail if no fit was recorded, or if any fit saw a test-window date.

    Raises:
        AssertionError: Naming the fit, how many test-window rows it saw and
            the first of their dates.
    """
    assert fitted, "no fit was recorded: the check would pass vacuously"
    for number, dates in enumerate(fitted, start=1):
        leaked = dates.intersection(test)
        assert leaked.empty, (
            f"fit {number} of {len(fitted)} saw {len(leaked)} test-window rows, "
            f"the first on {leaked.min():%Y-%m-%d}"
        )
