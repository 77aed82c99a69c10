"""Compile the pipelines into Airflow DAGs with ZenML's Airflow orchestrator.

Running a pipeline on a stack whose orchestrator is Airflow writes a DAG zip
instead of running it. This module adds what ``configs/dags.yaml`` asks for:
a fixed DAG id (so a compile replaces the file), a ZenML cron schedule, tags,
a description shown in the web UI, retries and the asset chaining.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy.engine import make_url

from goldsignals.config import (
    PROJECT_ROOT,
    SERVICE_TIMEOUTS,
    Settings,
    step_variables,
)
from goldsignals.errors import GoldSignalsError
from zenml_pipelines import CONFIG_DIR, PIPELINES, configured_pipeline

logger = logging.getLogger(__name__)

DAGS_CONFIG = CONFIG_DIR / "dags.yaml"


class DagsConfigError(GoldSignalsError, ValueError):
    """``dags.yaml`` is missing an entry or holds an invalid value."""


class DagSpec(BaseModel):
    """One pipeline's DAG as written in ``dags.yaml``."""

    dag_id: str
    cron: str
    tags: list[str] = Field(default_factory=list)
    description: str = ""
    outlet_assets: list[str] = Field(default_factory=list)
    schedule_assets: list[str] = Field(default_factory=list)

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(
                f"cron {value!r} is not a valid cron expression "
                "(minute hour day month weekday, e.g. '30 22 * * 1-5')"
            )
        return value


class DagsConfig(BaseModel):
    """The whole ``dags.yaml``."""

    start_date: dt.datetime
    image: str = "goldsignals:latest"
    catchup: bool = False
    max_active_runs: int = Field(default=1, ge=1)
    step_retries: int = Field(default=2, ge=0)
    step_retry_delay_seconds: int = Field(default=120, ge=0)
    default_args: dict[str, Any] = Field(default_factory=dict)
    pipelines: dict[str, DagSpec]


def load_dags_config(path: Path = DAGS_CONFIG) -> DagsConfig:
    """Read and validate ``dags.yaml``; every pipeline must have an entry."""
    try:
        config = DagsConfig.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise DagsConfigError(f"{path} is not valid: {exc}") from exc
    missing = sorted(set(PIPELINES) - set(config.pipelines))
    if missing:
        raise DagsConfigError(
            f"{path} has no DAG entry for pipeline(s) {missing}; add one per "
            "pipeline (dag_id, cron, tags, description)"
        )
    return config


def dag_arguments(config: DagsConfig, spec: DagSpec, doc: str) -> dict[str, Any]:
    """Arguments of ``airflow.sdk.DAG`` beyond id, schedule and tags."""
    default_args = dict(config.default_args)
    delay = default_args.pop("retry_delay_seconds", None)
    if delay is not None:
        default_args["retry_delay"] = float(delay)
    arguments: dict[str, Any] = {
        "description": spec.description.split(". ")[0][:200],
        "doc_md": f"{spec.description}\n\n{doc}".strip(),
        "max_active_runs": config.max_active_runs,
        "default_args": default_args,
    }
    if spec.outlet_assets:
        arguments["outlet_assets"] = spec.outlet_assets
    if spec.schedule_assets:
        arguments["schedule_assets"] = spec.schedule_assets
    return arguments


def _forget_schedule(name: str) -> None:
    """Hard-delete ZenML's record of schedule ``name`` (the DAG file stays)."""
    from zenml.client import Client

    try:
        Client().delete_schedule(name, soft=False)
    except KeyError:
        return
    logger.debug("Replaced ZenML schedule %s", name)


PASSED_ON = ("PGPASSFILE", "ZENML_CONFIG_PATH", "ZENML_LOCAL_STORES_PATH")
"""Variables of the compiling process passed on to every task (paths only)."""


def step_environment(settings: Settings) -> dict[str, str]:
    """Environment each step process gets whatever the Airflow worker has.

    Every setting a step reads, as resolved when compiling (environment,
    ``.env``, ``deployment.env``): a step runs in a temporary folder where
    no ``.env`` is found. Without ``ZENML_CONFIG_PATH`` a step process would
    write a second ZenML configuration into the user's home; it gets
    ``zenml-steps`` in the state folder. Telemetry stays off.

    Raises:
        DagsConfigError: If the signals URL carries a password, which would
            be written into the DAG file in plain text.
    """
    environment = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    environment.update(step_variables(settings))
    # Steps get the store from ZenML's own variables in the DAG; a folder
    # of their own keeps them from rewriting the user's client settings
    # (a step run after `zenml-server disconnect` would reconnect it).
    environment["ZENML_CONFIG_PATH"] = str(settings.home / "zenml-steps")
    url = settings.signals_db_url
    if url and make_url(url).password:
        raise DagsConfigError(
            "GOLDSIGNALS_SIGNALS_DB_URL contains a password, which would be "
            "written into the DAG files; remove it from the URL and keep it in "
            "a libpq password file named by PGPASSFILE (`goldsignals postgres "
            "start` writes one)"
        )
    return {
        **environment,
        **SERVICE_TIMEOUTS,
        "ZENML_ANALYTICS_OPT_IN": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def compile_pipeline(name: str, config: DagsConfig, environment: dict[str, str]) -> str:
    """Compile pipeline ``name`` into its DAG zip; returns the DAG id.

    Args:
        name: Command-line name of the pipeline.
        config: The DAG settings of ``dags.yaml``.
        environment: Variables every task of the DAG gets
            (:func:`step_environment`).
    """
    from zenml.config import DockerSettings, StepRetryConfig
    from zenml.config.schedule import Schedule
    from zenml.integrations.airflow.flavors.airflow_orchestrator_flavor import (
        AirflowOrchestratorSettings,
    )

    spec = config.pipelines[name]
    pipeline = configured_pipeline(name)
    doc = (pipeline.entrypoint.__doc__ or "").strip()
    settings = AirflowOrchestratorSettings(
        dag_id=spec.dag_id,
        dag_tags=spec.tags,
        dag_args=dag_arguments(config, spec, doc),
    )
    schedule = Schedule(
        name=spec.dag_id,
        cron_expression=spec.cron,
        start_time=config.start_date,
        catchup=config.catchup,
    )

    docker = DockerSettings(
        skip_build=True,
        parent_image=config.image,
        allow_download_from_artifact_store=False,
        disable_automatic_requirements_detection=True,
    )

    _forget_schedule(spec.dag_id)
    retry = StepRetryConfig(
        max_retries=config.step_retries,
        delay=config.step_retry_delay_seconds,
        backoff=1,
    )
    pipeline.with_options(
        schedule=schedule,
        retry=retry,
        settings={"orchestrator": settings, "docker": docker},
        environment=environment,
    )()
    logger.info("Compiled pipeline %s into DAG %s", name, spec.dag_id)
    return spec.dag_id


def remove_stale_dags(dags_dir: Path, keep: set[str]) -> list[Path]:
    """Delete DAG zips in ``dags_dir`` that no pipeline compiles to any more."""
    stale = [path for path in dags_dir.glob("*.zip") if path.stem not in keep]
    for path in stale:
        path.unlink()
        logger.info("Removed stale DAG file %s", path)
    return stale


FINGERPRINT_SOURCES = ("goldsignals", "steps", "zenml_pipelines", "dags")
"""Folders whose Python and YAML files go into a DAG, by import or by copy."""
FINGERPRINT_PACKAGES = ("zenml", "apache-airflow", "mlflow", "scikit-learn")


def _source_files() -> list[Path]:
    files: list[Path] = []
    for folder in FINGERPRINT_SOURCES:
        for pattern in ("*.py", "*.yaml", "*.yml"):
            files += (PROJECT_ROOT / folder).rglob(pattern)
    return sorted(files)


def compile_fingerprint(
    name: str, config: DagsConfig, environment: dict[str, str]
) -> str:
    """A digest of everything that goes into pipeline ``name``'s DAG file.

    The project's code and configuration, the DAG settings, the environment
    baked into the tasks, the active stack and its components as the ZenML
    store has them, the store itself and the main package versions. Equal
    digests mean that compiling again would only make a new snapshot of the
    same thing.
    """
    from zenml.client import Client

    client = Client()
    stack = client.active_stack_model
    digest = hashlib.sha256()
    for path in _source_files():
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
        digest.update(path.read_bytes())
    facts = {
        "pipeline": name,
        "dags": config.model_dump(mode="json"),
        "environment": environment,
        "store": client.zen_store.url,
        "stack": [str(stack.id), str(stack.updated)],
        "components": sorted(
            [str(part.id), str(part.updated)]
            for parts in stack.components.values()
            for part in parts
        ),
        "packages": [importlib.metadata.version(p) for p in FINGERPRINT_PACKAGES],
    }
    digest.update(json.dumps(facts, sort_keys=True).encode())
    return digest.hexdigest()


def fingerprint_path(dags_dir: Path, dag_id: str) -> Path:
    """Where the digest of ``dag_id``'s last compile is kept (Airflow skips it)."""
    return dags_dir / f".{dag_id}.fingerprint"
