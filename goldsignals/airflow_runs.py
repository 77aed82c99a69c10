"""Runs in flight in Airflow, so that a recompile never changes a DAG under one.

Compiling a pipeline makes a new ZenML snapshot and writes its id into the DAG
file. A run already under way would start its remaining tasks from the new
file, on the new snapshot, and fail them (ZenML finds no upstream step in the
new run). So before the DAG files are rewritten, the api-server is asked,
through its REST API as the generated admin user, for queued or running runs
of those DAGs. An api-server that does not answer has no task running.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from goldsignals.errors import GoldSignalsError

logger = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running")
ADMIN_USER = "admin"


class RunsInFlightError(GoldSignalsError, RuntimeError):
    """A DAG to be rewritten has a run that is not finished."""


@dataclass(frozen=True)
class RunInFlight:
    """One queued or running DAG run."""

    dag_id: str
    run_id: str
    state: str


def _call(url: str, token: str | None, body: Any, timeout: float) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _admin_password(passwords_file: Path) -> str | None:
    try:
        passwords = json.loads(passwords_file.read_text())
    except (OSError, ValueError):
        return None
    password = passwords.get(ADMIN_USER) if isinstance(passwords, dict) else None
    return str(password) if password else None


def active_runs(
    base_url: str,
    passwords_file: Path,
    dag_ids: Iterable[str],
    *,
    timeout: float = 5.0,
) -> list[RunInFlight]:
    """The queued and running runs of ``dag_ids`` in the Airflow at ``base_url``.

    Args:
        base_url: The api-server, e.g. ``http://127.0.0.1:8080``.
        passwords_file: The file Airflow's simple auth manager writes the
            admin password into.
        dag_ids: The DAGs to ask about; an unknown DAG has no runs.
        timeout: Seconds to wait for each answer.

    Returns:
        The runs, empty when the api-server does not answer.

    Raises:
        RunsInFlightError: The api-server answers but refuses the login or the
            question, so runs in flight cannot be ruled out.
    """
    password = _admin_password(passwords_file)
    try:
        token = _call(
            f"{base_url}/auth/token",
            None,
            {"username": ADMIN_USER, "password": password or ""},
            timeout,
        )["access_token"]
    except urllib.error.HTTPError as error:
        error.close()
        raise RunsInFlightError(
            f"Airflow at {base_url} refused the login of {ADMIN_USER!r} from "
            f"{passwords_file} (HTTP {error.code}), so runs in flight cannot be "
            "ruled out; stop Airflow (`goldsignals airflow stop`) or fix the "
            "password file, then compile again"
        ) from error
    except (urllib.error.URLError, OSError) as error:
        logger.info(
            "Airflow at %s does not answer (%s): no run in flight", base_url, error
        )
        return []

    runs = []
    states = "&".join(f"state={state}" for state in ACTIVE_STATES)
    for dag_id in dag_ids:
        url = f"{base_url}/api/v2/dags/{quote(dag_id)}/dagRuns?{states}&limit=100"
        try:
            answer = _call(url, token, None, timeout)
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 404:
                continue
            raise RunsInFlightError(
                f"Airflow at {base_url} did not list the runs of {dag_id} "
                f"(HTTP {error.code}), so runs in flight cannot be ruled out; "
                "try again, or stop Airflow first"
            ) from error
        runs += [
            RunInFlight(dag_id, str(run["dag_run_id"]), str(run["state"]))
            for run in answer.get("dag_runs", [])
        ]
    return runs


def refuse_while_running(
    base_url: str, passwords_file: Path, dag_ids: Iterable[str]
) -> None:
    """Raise RunsInFlightError if any of ``dag_ids`` has a queued or running run."""
    runs = active_runs(base_url, passwords_file, dag_ids)

    if runs:
        listed = ", ".join(f"{run.dag_id} {run.run_id} ({run.state})" for run in runs)
        raise RunsInFlightError(
            f"not recompiling: {listed} in Airflow at {base_url} would run its "
            "remaining tasks on the new ZenML snapshot and fail; wait until it "
            "ends (Airflow UI, or `airflow dags list-runs DAG_ID`), or clear it, "
            "then run the command again"
        )
