"""MLflow side of the model: logging, registering and choosing a version.

Registration uses ``mlflow.register_model`` rather than ZenML's MLflow model
registry component: an MLflow 3.17 tracking server refuses a version whose
source is ``models:/<id>`` unless the model id comes with it, which ZenML
0.98's component does not send. The ZenML metadata it would add (pipeline,
run, step) is written as version tags instead.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from goldsignals.errors import ModelConfigError, ModelNotFoundError
from goldsignals.inference import ModelRef
from goldsignals.modeling import feature_matrix, up_probability

logger = logging.getLogger(__name__)

MODEL_ARTIFACT_NAME = "model"
SERIALIZATION_FORMAT = "cloudpickle"


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    packages = ("scikit-learn", "numpy", "pandas", "cloudpickle")
    return [f"{name}=={version(name)}" for name in packages]


@dataclass(frozen=True)
class LoggedModel:
    """Where a logged model lives in MLflow (``models:/<model id>``)."""

    model_uri: str
    run_id: str


def ensure_experiment(
    client: MlflowClient, name: str, artifact_root: Path | None
) -> str:
    """Return the id of experiment ``name``, creating it if needed.

    Args:
        client: Client of the tracking store.
        name: Experiment name.
        artifact_root: Local folder for the experiment's artifacts when the
            store is a local database (``None`` lets a server decide).
    """
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = None
    if artifact_root is not None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        location = artifact_root.resolve().as_uri()
    experiment_id = client.create_experiment(name, artifact_location=location)
    logger.debug("Created MLflow experiment %s (id %s)", name, experiment_id)
    return str(experiment_id)


def log_served_model(model: Any, example_rows: pd.DataFrame) -> LoggedModel:
    """Log the served model into the active MLflow run.

    The model is serialised with cloudpickle (MLflow's default skops format
    refuses a forest's tree types), with a signature inferred from unscaled
    feature rows and the up-move probability, an input example, and pinned
    pip requirements (faster than inferring them).

    Args:
        model: Scaler + classifier pipeline.
        example_rows: A few unscaled feature rows.

    Returns:
        URI and run id of the logged model.
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError(
            "log_served_model needs an active MLflow run; run the step with the "
            "stack's MLflow experiment tracker enabled"
        )
    inputs = feature_matrix(example_rows)
    signature = infer_signature(inputs, up_probability(model, example_rows))

    info = mlflow.sklearn.log_model(
        model,
        name=MODEL_ARTIFACT_NAME,
        serialization_format=SERIALIZATION_FORMAT,
        signature=signature,
        input_example=inputs.head(3),
        pip_requirements=_pip_requirements(),
    )
    logger.info("Logged model %s in MLflow run %s", info.model_uri, run.info.run_id)
    return LoggedModel(model_uri=info.model_uri, run_id=run.info.run_id)


def register_version(
    model_uri: str, name: str, *, tags: dict[str, str], description: str
) -> str:
    """Register the logged model ``model_uri`` as a new version of ``name``.

    Works against a local database and a tracking server alike.

    Returns:
        The new version number.
    """
    version = mlflow.register_model(model_uri, name, tags=tags)
    MlflowClient().update_model_version(name, version.version, description=description)
    logger.info("Registered %s version %s from %s", name, version.version, model_uri)
    return str(version.version)


def _metric_of(client: MlflowClient, run_id: str | None, metric: str) -> float | None:
    if not run_id:
        return None
    try:
        value = client.get_run(run_id).data.metrics.get(metric)
    except MlflowException:
        return None
    if value is None or math.isnan(value):
        return None
    return float(value)


def select_best_version(
    client: MlflowClient,
    *,
    name: str,
    metric: str,
    greater_is_better: bool = True,
) -> ModelRef:
    """Pick the registered version of ``name`` whose run scored best.

    Ties go to the newer version. Versions whose run lacks the metric are
    skipped.

    Raises:
        ModelNotFoundError: If no version is registered, or none has the
            metric; the message says to run the training pipeline.
    """
    tracking = client.tracking_uri
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"cannot list versions of model {name!r} in MLflow at {tracking}: "
            f"{exc}; is the tracking URI right?"
        ) from exc
    scored = [
        (value, int(version.version), version)
        for version in versions
        if (value := _metric_of(client, version.run_id, metric)) is not None
    ]
    if not scored:
        raise ModelNotFoundError(
            f"no registered version of model {name!r} with metric {metric!r} in "
            f"MLflow at {tracking}; run the training pipeline first "
            "(`goldsignals run training` or `make train`)"
        )

    sign = 1.0 if greater_is_better else -1.0
    value, _, best = max(scored, key=lambda item: (sign * item[0], item[1]))
    logger.info(
        "Selected %s v%s (%s=%.4f) among %d versions",
        name,
        best.version,
        metric,
        value,
        len(scored),
    )
    return ModelRef(
        name=name,
        version=str(best.version),
        run_id=best.run_id,
        metric=metric,
        metric_value=value,
    )


def find_version_with_tag(
    client: MlflowClient, *, name: str, key: str, value: str
) -> str | None:
    """The newest registered version of ``name`` tagged ``key=value``, if any."""
    versions = client.search_model_versions(
        f"name = '{name}' and tags.{key} = '{value}'"
    )
    newest = max((int(version.version) for version in versions), default=None)
    return None if newest is None else str(newest)


def load_model_version(name: str, version: str) -> Any:
    """Load the scikit-learn model of a registered version into memory.

    The download goes to a temporary folder that is removed afterwards
    (MLflow's own default leaves one behind per load).
    """
    with tempfile.TemporaryDirectory(prefix="goldsignals-model-") as folder:
        return mlflow.sklearn.load_model(f"models:/{name}/{version}", dst_path=folder)


def load_version(ref: ModelRef) -> Any:
    """Load the scikit-learn model of a registered version."""
    return load_model_version(ref.name, ref.version)


CHAMPION = "champion"
"""Registry alias of the model version inference serves."""

CHALLENGER = "challenger"
"""Verdict of the champion gate on a version it did not promote."""

GATE_TAG = "gate"
"""Version tag with the champion gate's verdict, CHAMPION or CHALLENGER.

``gate_version`` writes it last, so a version without it never finished the
gate (registered, then an MLflow outage stopped the step) and is gated again.
"""


@dataclass(frozen=True)
class GateDecision:
    """Whether a newly trained version takes the champion alias, and why."""

    promote: bool
    reason: str

    @property
    def verdict(self) -> str:
        """CHAMPION if the version is promoted, else CHALLENGER."""
        return CHAMPION if self.promote else CHALLENGER


@dataclass(frozen=True, kw_only=True)
class GateRules:
    """What a new version must meet to take the alias (see ``champion_gate``).

    Attributes:
        primary: Metric that must beat the champion's (e.g. ``sharpe``).
        floor_metric: Metric that must reach ``floor`` (e.g. ``f1``).
        floor: That minimum.
        min_roc_auc: ROC AUC a version must exceed to replace a champion.
    """

    primary: str
    floor_metric: str
    floor: float
    min_roc_auc: float = 0.5


def check_gate_metrics(rules: GateRules, metrics: Mapping[str, float]) -> None:
    """Fail unless the gate's metrics are metrics the evaluation produces.

    A misspelt name would otherwise count as an undefined metric and quietly
    keep every new version a challenger.

    Args:
        rules: The gate's settings.
        metrics: The metrics of an evaluated version.

    Raises:
        ModelConfigError: A gate metric is not in ``metrics``; every unknown
            one is named, with the metrics to choose from.
    """
    named = {"primary_metric": rules.primary, "floor_metric": rules.floor_metric}
    unknown = [f"{key} {name!r}" for key, name in named.items() if name not in metrics]
    if unknown:
        plain = sorted(name for name in metrics if not name.startswith(("wf_", "bt_")))
        raise ModelConfigError(
            f"{' and '.join(unknown)} of model_evaluator (training YAML) "
            f"{'is' if len(unknown) == 1 else 'are'} not a metric of the "
            f"evaluation; choose one of {', '.join(plain)} (or a logged wf_* "
            "or bt_* metric)"
        )


def _finite(metrics: Mapping[str, float], name: str) -> float:
    """``metrics[name]``, or NaN when it is missing or not a finite number."""
    value = metrics.get(name, math.nan)
    return float(value) if math.isfinite(value) else math.nan


def champion_gate(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    primary: str,
    floor_metric: str,
    floor: float,
    min_roc_auc: float = 0.5,
) -> GateDecision:
    """Decide on the champion alias: the floors, then the primary metric.

    Both metric sets must come from the same evaluation window. Higher is
    better for every metric; a tie keeps the champion. A metric that is
    missing or not finite (a strategy that never trades has no Sharpe ratio)
    counts as failing, never as passing.

    Args:
        challenger: Metrics of the new version.
        champion: Metrics of the current champion, or ``None`` if none exists.
        primary: Metric that must improve (e.g. ``sharpe``).
        floor_metric: Metric the challenger must reach at least (e.g. ``f1``).
        floor: That minimum.
        min_roc_auc: To replace a champion, the challenger's ROC AUC must
            exceed it: a model that ranks no better than chance (an always-up
            model has 0.5) never takes over, whatever its backtest in a
            trending market. The first champion needs only the floor.
    """
    low = _finite(challenger, floor_metric)
    if not low >= floor:
        return GateDecision(
            False, f"{floor_metric} {low:.4f} is below the floor {floor:.4f}"
        )
    new = _finite(challenger, primary)
    if math.isnan(new):
        return GateDecision(False, f"{primary} of the new version is undefined")
    if champion is None:
        return GateDecision(True, f"no champion yet; {primary} {new:.4f}")
    auc = _finite(challenger, "roc_auc")
    if not auc > min_roc_auc:
        return GateDecision(
            False,
            f"roc_auc {auc:.4f} does not exceed {min_roc_auc:.4f}: a model that "
            "ranks no better than chance does not replace the champion",
        )
    old = _finite(champion, primary)
    if math.isnan(old) or new > old:
        return GateDecision(True, f"{primary} {new:.4f} beats the champion's {old:.4f}")
    return GateDecision(
        False, f"{primary} {new:.4f} does not beat the champion's {old:.4f}"
    )


def gate_verdict(client: MlflowClient, name: str, version: str) -> str | None:
    """The champion gate's recorded verdict on a version; None if it never finished.

    Args:
        client: Client of the tracking store.
        name: Registered model name.
        version: Version number.

    Returns:
        The version's GATE_TAG (CHAMPION or CHALLENGER), or None when the
        version has none: the gate never ran or failed before its end.
    """
    tags = client.get_model_version(name, version).tags
    verdict = tags.get(GATE_TAG)
    return None if verdict is None else str(verdict)


def gate_version(
    client: MlflowClient,
    name: str,
    version: str,
    challenger: Mapping[str, float],
    *,
    champion_metrics: Callable[[str], Mapping[str, float]],
    rules: GateRules,
    actor: str,
) -> GateDecision:
    """Run the champion gate for ``version`` and record its verdict.

    A promoted version takes the alias (``move_champion``); a refused one
    gets the tag ``challenger_reason``. GATE_TAG comes last: if MLflow fails
    on the way, the version has no verdict and a retried step gates it again.
    A version that already holds the alias without a verdict (an earlier try
    moved it, then failed) keeps it; the ``champion_*`` records that try
    did not write stay missing, since the version it replaced is not known.

    Args:
        client: Client of the tracking store.
        name: Registered model name.
        version: The version to gate.
        challenger: Its metrics on its test window.
        champion_metrics: The metrics of a version number (the current
            champion) on that same window; called only if there is one.
        rules: The gate's metrics and floors.
        actor: Who moves the alias, for the move's record.

    Returns:
        The decision.
    """
    current = champion_version(client, name)
    if current == version:
        decision = GateDecision(True, f"v{version} already holds the {CHAMPION} alias")
    else:
        champion = None if current is None else champion_metrics(current)
        decision = champion_gate(
            challenger,
            champion,
            primary=rules.primary,
            floor_metric=rules.floor_metric,
            floor=rules.floor,
            min_roc_auc=rules.min_roc_auc,
        )
        _carry_out(client, name, version, decision, actor=actor)

    client.set_model_version_tag(name, version, GATE_TAG, decision.verdict)
    logger.info("%s v%s is %s: %s", name, version, decision.verdict, decision.reason)
    return decision


def _carry_out(
    client: MlflowClient,
    name: str,
    version: str,
    decision: GateDecision,
    *,
    actor: str,
) -> None:
    """Move the alias to a promoted version, or tag why it was refused."""
    if decision.promote:
        move_champion(client, name, version, actor=actor, reason=decision.reason)
    else:
        client.set_model_version_tag(
            name, version, "challenger_reason", decision.reason
        )


def champion_version(client: MlflowClient, name: str) -> str | None:
    """The version holding the champion alias of ``name``, if any.

    Raises:
        ModelNotFoundError: If the registry cannot be asked (a server that is
            down must never read as "no champion yet").
    """
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            return None
        raise ModelNotFoundError(
            f"cannot ask MLflow at {client.tracking_uri} for the {CHAMPION} of "
            f"{name!r}: {exc}; is the tracking server running?"
        ) from exc
    return str(version.version)


def move_champion(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    actor: str,
    reason: str,
    kind: str = "promotion",
) -> dict[str, str]:
    """Give ``version`` the champion alias and record the move.

    The record (who, when, why, from which version) goes into tags of the
    version (``champion_*``) and into one tag of the registered model per
    move (``champion_move_<UTC time>``), so the history is kept in MLflow.

    Returns:
        The recorded move.
    """
    previous = champion_version(client, name)
    at = datetime.now(UTC)
    move = {
        "from_version": previous or "",
        "to_version": version,
        "by": actor,
        "at": at.isoformat(timespec="seconds"),
        "reason": reason,
        "kind": kind,
    }
    client.set_registered_model_alias(name, CHAMPION, version)
    for key in ("by", "at", "reason"):
        client.set_model_version_tag(name, version, f"champion_{key}", move[key])
    client.set_model_version_tag(name, version, "champion_previous", previous or "")
    stamp = f"{at:%Y%m%dT%H%M%S%fZ}"
    client.set_registered_model_tag(name, f"champion_move_{stamp}", json.dumps(move))
    logger.info("%s of %s: v%s -> v%s (%s)", CHAMPION, name, previous, version, reason)
    return move


def champion_history(client: MlflowClient, name: str) -> list[dict[str, str]]:
    """Every recorded move of the champion alias, oldest first (none: empty)."""
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException:
        return []
    moves = sorted(
        (key, value) for key, value in tags.items() if key.startswith("champion_move_")
    )
    return [json.loads(value) for _, value in moves]


def champion_lineage(moves: list[dict[str, str]]) -> list[str]:
    """The chain of promoted champions, oldest first, that rollbacks unwind.

    A promotion puts its version on top of the chain; a rollback takes the
    top off (the version it returns to is then on top again).
    """
    chain: list[str] = []
    for move in moves:
        rollback = move.get("kind") == "rollback" or move["reason"].startswith(
            "rollback from "
        )
        if rollback and chain:
            chain.pop()
        if not chain or chain[-1] != move["to_version"]:
            chain.append(move["to_version"])
    return chain


def roll_back_champion(
    client: MlflowClient, name: str, *, actor: str, reason: str
) -> dict[str, str]:
    """Give the champion alias back to the champion promoted before this one.

    Rolling back again goes one promotion further back, until the first
    champion. An alias moved outside goldsignals (the recorded chain does not
    end in the current champion) falls back to the version's
    ``champion_previous`` tag.

    Raises:
        ModelNotFoundError: If there is no champion, or no earlier one.
    """
    current = champion_version(client, name)
    if current is None:
        raise ModelNotFoundError(
            f"model {name!r} has no {CHAMPION} alias to roll back; train a model "
            "first (`goldsignals run training`)"
        )
    chain = champion_lineage(champion_history(client, name))
    if chain and chain[-1] == current:
        previous = chain[-2] if len(chain) > 1 else ""
    else:
        tags = client.get_model_version(name, current).tags
        previous = tags.get("champion_previous", "")
    if not previous:
        raise ModelNotFoundError(
            f"version {current} of {name!r} is the first {CHAMPION}; there is no "
            "earlier one to roll back to"
        )
    reason = f"rollback from v{current}: {reason}"
    return move_champion(
        client, name, previous, actor=actor, reason=reason, kind="rollback"
    )


def select_serving_version(
    client: MlflowClient, *, name: str, metric: str, greater_is_better: bool = True
) -> ModelRef:
    """The version inference serves: the champion, else the best by ``metric``.

    Raises:
        ModelNotFoundError: If no version is registered (see
            :func:`select_best_version`).
    """
    version = champion_version(client, name)
    if version is None:
        logger.info("%s has no %s: ranking versions by %s", name, CHAMPION, metric)
        return select_best_version(
            client, name=name, metric=metric, greater_is_better=greater_is_better
        )
    run_id = client.get_model_version(name, version).run_id
    logger.info("Serving %s@%s (v%s)", name, CHAMPION, version)
    return ModelRef(
        name=name,
        version=version,
        run_id=run_id,
        metric=metric,
        metric_value=_metric_of(client, run_id, metric),
        alias=CHAMPION,
    )
