"""The three ZenML pipelines of goldsignals and their YAML configurations."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from goldsignals.config import PIPELINE_CONFIG_DIR
from goldsignals.processes import answers_ok

CONFIG_DIR = PIPELINE_CONFIG_DIR

PIPELINES: dict[str, tuple[str, str]] = {
    "feature-engineering": (
        "zenml_pipelines.feature_engineering",
        "feature_engineering",
    ),
    "training": ("zenml_pipelines.training", "training"),
    "inference": ("zenml_pipelines.inference", "inference"),
}
"""Command-line name -> (module, pipeline function); in daily order."""


STEPS: dict[str, tuple[str, ...]] = {
    "feature-engineering": (
        "data_loader",
        "data_preprocessor",
        "feature_generation",
        "data_splitter",
        "data_scaler",
    ),
    "training": ("model_trainer", "model_evaluator"),
    "inference": ("select_best_model", "inference_predict", "signal_writer"),
}
"""The steps of each pipeline, as its YAML configuration names them."""


PREREQUISITES: dict[str, tuple[str, ...]] = {
    "training": ("train_set_scaled", "feature_scaler", "train_set", "test_set"),
    "inference": ("feature_frame",),
}
"""Artifacts a pipeline reads by name; the feature pipeline produces them."""


def config_path(name: str) -> Path:
    """The YAML file holding the step parameters of pipeline ``name``."""
    return CONFIG_DIR / f"{name.replace('-', '_')}.yaml"


def configured_pipeline(name: str, config: Path | None = None) -> Any:
    """Import pipeline ``name`` and apply its YAML configuration.

    Raises:
        KeyError: If ``name`` is not one of :data:`PIPELINES`.
    """
    module_name, attribute = PIPELINES[name]
    pipeline = getattr(importlib.import_module(module_name), attribute)
    return pipeline.with_options(config_path=str(config or config_path(name)))


def experiment_name(config: Path | None = None) -> str:
    """The MLflow experiment the training pipeline logs into.

    It is set once, in the training YAML (``model_evaluator``'s
    ``experiment_tracker`` settings), which ZenML's tracker reads too.
    """
    import yaml

    tree = yaml.safe_load((config or config_path("training")).read_text())
    evaluator = tree["steps"]["model_evaluator"]
    return str(evaluator["settings"]["experiment_tracker"]["experiment_name"])


def check_prerequisites(name: str) -> None:
    """Fail early, with the fix, when the stack or the input artifacts are missing.

    Raises:
        PipelineRunError: The active stack lacks MLflow, or an artifact that
            pipeline ``name`` reads has never been produced.
    """
    from zenml.client import Client

    from goldsignals.errors import PipelineRunError

    client = Client()
    stack = client.active_stack_model
    trackers = stack.components.get(_tracker_type())
    if not trackers:
        raise PipelineRunError(
            f"the active ZenML stack {stack.name!r} has no MLflow experiment "
            "tracker; register goldsignals' stack first: `goldsignals stack` "
            "(`make run` does it)"
        )
    uri = str(trackers[0].configuration.get("tracking_uri") or "")
    if uri.startswith(("http://", "https://")) and not answers_ok(f"{uri}/health"):
        raise PipelineRunError(
            f"the MLflow tracking server {uri} of stack {stack.name!r} does not "
            "answer; start it (`make up`) or fix GOLDSIGNALS_MLFLOW_TRACKING_URI "
            "and register the stack again. Nothing was run or registered"
        )
    missing = [
        artifact
        for artifact in PREREQUISITES.get(name, ())
        if not client.list_artifact_versions(artifact=artifact, size=1).items
    ]
    if missing:
        raise PipelineRunError(
            f"pipeline {name} reads artifact(s) {missing}, which no run has "
            "produced yet; run the feature engineering pipeline first: "
            "`goldsignals run feature-engineering`"
        )


def _tracker_type() -> Any:
    from zenml.enums import StackComponentType

    return StackComponentType.EXPERIMENT_TRACKER


def check_config_file(config: Path, name: str) -> None:
    """Fail, naming the file and the problem, unless it configures ``name``.

    ZenML only warns about a step it does not know and then runs the step
    with its defaults, so a misspelt step name would go unnoticed.

    Raises:
        PipelineRunError: The file is missing, is not YAML, is not a
            mapping, or configures steps that pipeline ``name`` lacks.
    """
    import yaml

    from goldsignals.errors import PipelineRunError

    if not config.is_file():
        raise PipelineRunError(f"pipeline configuration {config} does not exist")
    try:
        tree = yaml.safe_load(config.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise PipelineRunError(
            f"pipeline configuration {config} is not valid YAML{line}: {problem}; "
            "fix the file (zenml_pipelines/configs/ holds working examples)"
        ) from exc
    if not isinstance(tree, dict):
        raise PipelineRunError(
            f"pipeline configuration {config} holds {type(tree).__name__}, not a "
            "mapping of settings such as `steps:`; see zenml_pipelines/configs/"
        )
    unknown = sorted(set(tree.get("steps") or {}) - set(STEPS[name]))
    if unknown:
        raise PipelineRunError(
            f"pipeline configuration {config} configures step(s) {unknown}, which "
            f"pipeline {name} does not have; its steps are {', '.join(STEPS[name])}"
        )


def run_pipeline(name: str, config: Path | None = None) -> None:
    """Run pipeline ``name`` and turn a failed step into one clear error.

    Raises:
        PipelineRunError: A prerequisite is missing, or a step failed; the
            message names the step and repeats its error.
    """
    from goldsignals.errors import PipelineRunError

    if config is not None:
        check_config_file(config, name)
    check_prerequisites(name)
    pipeline = configured_pipeline(name, config)
    before = _last_run_id(pipeline.name)
    try:
        pipeline()
    except RuntimeError as exc:
        raise PipelineRunError(_failure_summary(pipeline.name, exc, before)) from exc


def _last_run_id(pipeline_name: str) -> Any:
    """The id of the pipeline's newest run, or None before its first."""
    from zenml.client import Client

    try:
        return Client().get_pipeline(pipeline_name).last_run.id
    except (KeyError, RuntimeError):
        return None


def _failure_summary(pipeline_name: str, exc: Exception, before: Any) -> str:
    """The failed steps of the run that just failed, with their errors.

    When the failure came before any run was created (a step parameter that
    fails validation, say), only the error is reported: the newest run is
    then an earlier one, which did not fail.
    """
    from zenml.client import Client

    run = Client().get_pipeline(pipeline_name).last_run
    if run.id == before:
        return f"pipeline {pipeline_name} did not start: {exc}"
    failed = [step for step in run.steps.values() if str(step.status) == "failed"]
    reasons = [
        f"step {step.name} failed: "
        f"{step.exception_info.message if step.exception_info else exc}"
        for step in failed
    ]
    return f"pipeline {pipeline_name} (run {run.name}): " + (
        "; ".join(reasons) or str(exc)
    )
