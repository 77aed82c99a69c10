"""``goldsignals deploy-stack``: point the product at the services of host mode.

Checks first, changes after: every service the Airflow stack needs is probed
(in seconds) before anything is registered, so a deployment against a stopped
service fails without leaving half a stack behind. The settings a deployment
chooses are written to ``deployment.env`` in the state folder; they hold URLs
without passwords (libpq reads those from the ``PGPASSFILE``), so they can be
baked into DAG files and read by every later command.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from goldsignals.config import Settings
from goldsignals.errors import GoldSignalsError
from goldsignals.processes import answers_ok
from goldsignals.signal_store import redacted_url

logger = logging.getLogger(__name__)


class DeploymentError(GoldSignalsError, RuntimeError):
    """A service the deployment needs is down, or a setting is unsafe."""


@dataclass(frozen=True)
class Deployment:
    """The services a host-mode deployment uses.

    Attributes:
        signals_db_url: Password-less SQLAlchemy URL of the signals database.
        tracking_uri: URL of the MLflow tracking server.
        airflow_url: Base URL of the Airflow api-server.
        zenml_url: URL of the ZenML server, or ``None`` to keep the local store.
    """

    signals_db_url: str
    tracking_uri: str
    airflow_url: str
    zenml_url: str | None

    def environment(self) -> dict[str, str]:
        """The settings of this deployment as ``GOLDSIGNALS_*`` variables."""
        return {
            "GOLDSIGNALS_SIGNALS_DB_URL": self.signals_db_url,
            "GOLDSIGNALS_MLFLOW_TRACKING_URI": self.tracking_uri,
        }


def plan_deployment(settings: Settings, zenml_url: str | None) -> Deployment:
    """The services to deploy against: explicit settings, else host mode's.

    Raises:
        DeploymentError: If the signals URL carries a password, which would
            end up in the compiled DAG files.
    """
    url = settings.signals_db_url or settings.host_database_url("goldsignals")
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DeploymentError(
            f"GOLDSIGNALS_SIGNALS_DB_URL is not a database URL: {exc}"
        ) from exc
    if parsed.password:
        raise DeploymentError(
            f"GOLDSIGNALS_SIGNALS_DB_URL {redacted_url(url)} contains a password, "
            "which would be written into the DAG files; remove it from the URL "
            f"and keep it in the password file {settings.pgpass_file} (written by "
            "`goldsignals postgres start`) or your own PGPASSFILE"
        )
    tracking = (
        settings.mlflow_tracking_uri or f"http://127.0.0.1:{settings.mlflow_port}"
    )
    if not tracking.startswith(("http://", "https://")):
        raise DeploymentError(
            f"GOLDSIGNALS_MLFLOW_TRACKING_URI {tracking} is not a tracking server; "
            "deploy-stack needs http(s)://host:port of `goldsignals mlflow start`"
        )
    airflow = f"http://{settings.airflow_host}:{settings.airflow_port}"
    return Deployment(url, tracking, airflow, zenml_url)


def _database_problem(url: str) -> str | None:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"Postgres at {redacted_url(url)} is not usable: {reason}"
    finally:
        engine.dispose()
    return None


def service_problems(deployment: Deployment) -> list[str]:
    """Probe every service; one line per service that is down (empty: all up)."""
    problems = []
    if (problem := _database_problem(deployment.signals_db_url)) is not None:
        problems.append(problem)
    probes = [
        ("MLflow server", deployment.tracking_uri, "/health"),
        ("Airflow api-server", deployment.airflow_url, "/api/v2/monitor/health"),
    ]
    if deployment.zenml_url is not None:
        probes.append(("ZenML server", deployment.zenml_url, "/health"))
    for name, url, path in probes:
        if not answers_ok(url.rstrip("/") + path):
            problems.append(f"{name} does not answer at {url}")
    return problems


def check_services(deployment: Deployment) -> None:
    """Fail with every down service named, and what starts them.

    Raises:
        DeploymentError: If any service is down.
    """
    problems = service_problems(deployment)
    if problems:
        raise DeploymentError(
            "; ".join(problems) + ". Start the services with `make up` (or fix "
            "the URLs in .env) and run `make deploy-stack` again"
        )


def write_deployment_file(path: Path, deployment: Deployment) -> Path:
    """Record the deployment's settings (no secrets) for later commands."""
    lines = [
        "# Written by `goldsignals deploy-stack`; `goldsignals undeploy` removes it.",
        *(f"{key}={value}" for key, value in deployment.environment().items()),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def apply_deployment(deployment: Deployment) -> None:
    """Set the deployment's variables in this process (compiling reads them)."""
    os.environ.update(deployment.environment())
