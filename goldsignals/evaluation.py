"""Walk-forward evaluation of the direction classifier against two baselines.

The frames here come from ``goldsignals.features.build_feature_frame`` and
``goldsignals.splitting.chronological_split``: an ascending ``date`` index of
exchange dates, the float64 ``FEATURE_COLUMNS``, ``forward_return`` and
``target``. Walk-forward folds expand over the training window in time order
(scikit-learn's ``TimeSeriesSplit`` with a gap of ``horizon`` rows, so no fold
trains on a label that looks into its test rows); every fold fits its own
scaler and a fresh clone of the classifier on its own train rows. The final
test window is scored once, by the served model itself (fitted on the whole
training window by the training pipeline), and no fold touches it.

Baselines: ``always_up`` predicts an up move every day (a constant score);
``yesterday`` predicts up iff the day's own return ``close[t] / close[t - 1]
- 1`` was positive, taken from the feature ``log_return_1`` (same sign).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import Pipeline

from goldsignals.errors import GoldSignalsError
from goldsignals.features import TARGET_COLUMN, labelled_rows
from goldsignals.modeling import bundle_model, train_classifier, up_probability
from goldsignals.splitting import SplitFrames, fit_scaler, scale_features

logger = logging.getLogger(__name__)

MODEL = "classifier"
ALWAYS_UP = "always_up"
YESTERDAY = "yesterday"
MODELS = (MODEL, ALWAYS_UP, YESTERDAY)
METRICS = ("f1", "precision", "recall", "roc_auc")
TEST_FOLD = "test"
DEFAULT_SPLITS = 5
YESTERDAY_FEATURE = "log_return_1"
SCORE_COLUMNS = (
    "fold",
    "model",
    *METRICS,
    "rows",
    "start",
    "end",
    "train_rows",
    "train_end",
)

FloatArray = npt.NDArray[np.float64]
Record = dict[str, Any]


class EvaluationError(GoldSignalsError, ValueError):
    """The model cannot be evaluated with the given rows or fold count."""


@dataclass(frozen=True)
class Fold:
    """Train and test rows of one evaluation fold.

    Attributes:
        name: ``"1"``, ``"2"``, ... for walk-forward folds, ``"test"`` for
            the final test window.
        train: Labelled rows the fold's scaler and model are fitted on.
        test: Labelled rows scored; all later than ``train`` by the gap.
    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame


@dataclass(frozen=True)
class EvaluationResult:
    """Scores of the classifier and the baselines, and its test probabilities.

    Attributes:
        scores: One row per fold and model with the columns SCORE_COLUMNS:
            ``fold`` (str), ``model`` (one of MODELS), float64 metrics (NaN
            when undefined), ``rows`` and ``train_rows`` (int), ``start``,
            ``end`` and ``train_end`` (exchange dates as Timestamps). The
            walk-forward folds come first, the ``test`` fold last.
        test_probability: The classifier's up probability on each test date
            (float64, index of the test window).
    """

    scores: pd.DataFrame
    test_probability: pd.Series[float]


def walk_forward_folds(
    train: pd.DataFrame, *, n_splits: int = DEFAULT_SPLITS, horizon: int = 1
) -> list[Fold]:
    """Expanding-window folds over the training window, in time order.

    Args:
        train: Training rows of a chronological split (ascending dates).
        n_splits: Number of folds (at least 2).
        horizon: Label horizon; that many rows are left out between each
            fold's train and test rows.

    Returns:
        ``n_splits`` folds named ``"1"`` to ``str(n_splits)``; the test rows
        of fold ``k`` follow those of fold ``k - 1``.

    Raises:
        EvaluationError: ``n_splits`` < 2, the dates are not ascending, or the
            rows are too few for that many folds.
    """
    rows = labelled_rows(train)
    if n_splits < 2 or not rows.index.is_monotonic_increasing:
        raise EvaluationError(
            f"walk-forward needs n_splits >= 2 (got {n_splits!r}) and ascending "
            "dates; pass the train frame of chronological_split"
        )

    splitter = TimeSeriesSplit(n_splits=n_splits, gap=horizon)
    try:
        positions = list(splitter.split(rows))
    except ValueError as exc:
        raise EvaluationError(
            f"{len(rows)} training rows cannot make {n_splits} walk-forward folds "
            f"with a gap of {horizon} ({exc}); use fewer folds or more history"
        ) from exc
    folds = [
        Fold(name=str(number), train=rows.iloc[fit], test=rows.iloc[score])
        for number, (fit, score) in enumerate(positions, start=1)
    ]

    logger.info(
        "Walk-forward: %d folds of %d test rows over %d training rows, gap %d",
        len(folds),
        len(folds[0].test),
        len(rows),
        horizon,
    )
    return folds


def always_up_scores(rows: pd.DataFrame) -> FloatArray:
    """Constant up score 1.0 for every row."""
    return np.ones(len(rows), dtype=np.float64)


def yesterday_scores(rows: pd.DataFrame) -> FloatArray:
    """1.0 where the row's own daily return was positive, else 0.0."""
    return np.asarray(rows[YESTERDAY_FEATURE] > 0, dtype=np.float64)


BASELINES: dict[str, Callable[[pd.DataFrame], FloatArray]] = {
    ALWAYS_UP: always_up_scores,
    YESTERDAY: yesterday_scores,
}


def _roc_auc(truth: npt.NDArray[np.int64], score: FloatArray, label: str) -> float:
    """ROC AUC; 0.5 for a constant score, NaN (logged) for a single class."""
    classes = np.unique(truth)
    if len(classes) < 2:
        logger.warning(
            "ROC AUC of %s is undefined: its %d rows all have target %s",
            label,
            len(truth),
            classes.tolist(),
        )
        return math.nan
    if np.ptp(score) == 0:
        return 0.5
    return float(roc_auc_score(truth, score))


def classification_scores(
    truth: npt.NDArray[np.int64], score: FloatArray, *, label: str
) -> dict[str, float]:
    """F1, precision, recall (prediction: score >= 0.5) and ROC AUC of a score.

    Args:
        truth: 0/1 targets.
        score: Up scores in [0, 1] for the same rows.
        label: What is scored, for the log line of an undefined ROC AUC.

    Returns:
        The METRICS as floats; precision and F1 are 0 when nothing is
        predicted up, ROC AUC as in ``_roc_auc``.
    """
    predicted = (score >= 0.5).astype(np.int64)
    return {
        "f1": float(f1_score(truth, predicted, zero_division=0)),
        "precision": float(precision_score(truth, predicted, zero_division=0)),
        "recall": float(recall_score(truth, predicted, zero_division=0)),
        "roc_auc": _roc_auc(truth, score, label),
    }


def fit_model(estimator: ClassifierMixin, train: pd.DataFrame) -> Pipeline:
    """Fit a fresh scaler and classifier on ``train`` only; bundle them."""
    scaler = fit_scaler(train)
    classifier = train_classifier(estimator, scale_features(scaler, train))
    return bundle_model(scaler, classifier)


def _fold_probability(fold: Fold, estimator: ClassifierMixin) -> FloatArray | None:
    """Up probabilities of the fold's test rows; None if its train has 1 class."""
    classes = fold.train[TARGET_COLUMN].unique()
    if len(classes) < 2:
        logger.warning(
            "Fold %s: the %d train rows all have target %s; the classifier "
            "cannot be trained, its scores are NaN",
            fold.name,
            len(fold.train),
            classes.tolist(),
        )
        return None
    return up_probability(fit_model(estimator, fold.train), fold.test)


def _score_rows(fold: Fold, scores: dict[str, FloatArray | None]) -> list[Record]:
    """One SCORE_COLUMNS record per model of a fold."""
    truth = fold.test[TARGET_COLUMN].to_numpy(dtype=np.int64)
    span = {
        "rows": len(fold.test),
        "start": fold.test.index[0],
        "end": fold.test.index[-1],
        "train_rows": len(fold.train),
        "train_end": fold.train.index[-1],
    }
    records: list[Record] = []
    for model, score in scores.items():
        metrics = (
            dict.fromkeys(METRICS, math.nan)
            if score is None
            else classification_scores(truth, score, label=f"{model} fold {fold.name}")
        )
        records.append({"fold": fold.name, "model": model, **metrics, **span})
    return records


def score_probability(fold: Fold, probability: FloatArray | None) -> list[Record]:
    """Score the classifier's up probabilities and the baselines on a fold.

    Args:
        fold: The fold whose test rows ``probability`` belongs to.
        probability: The classifier's up probability of each test row, or
            None when it could not be trained (its metrics are then NaN).

    Returns:
        The fold's SCORE_COLUMNS records, classifier first.
    """
    scores = {MODEL: probability}
    scores.update({name: baseline(fold.test) for name, baseline in BASELINES.items()})
    records = _score_rows(fold, scores)

    logger.info(
        "Fold %s (%d test rows from %s): %s",
        fold.name,
        len(fold.test),
        fold.test.index[0].date(),
        ", ".join(
            f"{r['model']} f1={r['f1']:.4f} auc={r['roc_auc']:.4f}" for r in records
        ),
    )
    return records


def score_fold(
    fold: Fold, estimator: ClassifierMixin
) -> tuple[list[Record], FloatArray | None]:
    """Score the classifier (fitted on the fold's train rows) and the baselines.

    Returns:
        The fold's SCORE_COLUMNS records (classifier first) and the
        classifier's up probabilities of the test rows (None when its train
        rows hold a single class).
    """
    probability = _fold_probability(fold, estimator)
    return score_probability(fold, probability), probability


def evaluate_model(
    split: SplitFrames,
    model: Pipeline,
    *,
    n_splits: int = DEFAULT_SPLITS,
    horizon: int = 1,
) -> EvaluationResult:
    """Walk forward over the training window, then score the test window.

    Args:
        split: The chronological split (train rows, gap, test rows).
        model: The served model (fitted scaler and classifier, as
            ``bundle_model`` joins them), fitted on ``split.train``. It scores
            the test window as it is, never refitted; each walk-forward fold
            fits a fresh scaler and a fresh clone of its classifier.
        n_splits: Walk-forward folds over ``split.train``.
        horizon: Label horizon, the gap between fold train and test rows.

    Returns:
        The scores of every fold and model and the test probabilities.

    Raises:
        EvaluationError: Too few training rows for ``n_splits`` folds.
    """
    estimator = model[-1]
    folds = walk_forward_folds(split.train, n_splits=n_splits, horizon=horizon)
    records: list[Record] = []
    for fold in folds:
        records += score_fold(fold, estimator)[0]

    final = Fold(name=TEST_FOLD, train=split.train, test=split.test)
    probability = up_probability(model, split.test)
    records += score_probability(final, probability)

    scores = pd.DataFrame(records, columns=list(SCORE_COLUMNS))
    test_probability = pd.Series(probability, index=split.test.index, name=MODEL)
    return EvaluationResult(scores=scores, test_probability=test_probability)


def summarise_folds(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of each metric over the walk-forward folds.

    Args:
        scores: The ``scores`` frame of an EvaluationResult.

    Returns:
        One row per model (index ``model``, in MODELS order) with the columns
        ``folds`` and ``<metric>_mean``, ``<metric>_std`` for every metric
        (sample std, NaN ignored); the ``test`` fold is left out.
    """
    walk_forward = scores.loc[scores["fold"] != TEST_FOLD]
    grouped = walk_forward.groupby("model", sort=False)[list(METRICS)]
    means = grouped.mean().add_suffix("_mean")
    stds = grouped.std(ddof=1).add_suffix("_std")

    summary = pd.concat([means, stds], axis=1)
    ordered = [f"{metric}_{stat}" for metric in METRICS for stat in ("mean", "std")]
    summary = summary[ordered]
    summary.insert(0, "folds", walk_forward.groupby("model", sort=False).size())
    return summary.reindex([m for m in MODELS if m in summary.index])
