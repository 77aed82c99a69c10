"""A small client of Airflow's REST API for the tests: log in, trigger, wait."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


def call(
    url: str, token: str | None = None, body: Any = None, method: str | None = None
) -> Any:
    """GET ``url`` (POST when ``body`` is given) and return the decoded JSON."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def admin_password(airflow_home: Path) -> str:
    """The password Airflow generated for its admin user."""
    return str(json.loads((airflow_home / PASSWORDS_FILE).read_text())["admin"])


def login(base: str, airflow_home: Path) -> str:
    """A JWT for the admin user."""
    body = {"username": "admin", "password": admin_password(airflow_home)}
    return str(call(f"{base}/auth/token", body=body)["access_token"])


def wait_for_dags(
    base: str, token: str, dag_ids: tuple[str, ...], timeout: float = 180
) -> None:
    """Wait until the dag-processor has parsed every one of ``dag_ids``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {d["dag_id"] for d in call(f"{base}/api/v2/dags", token)["dags"]}
        if set(dag_ids) <= found:
            return
        time.sleep(2)
    pytest.fail(f"the DAGs {dag_ids} did not appear in Airflow within {timeout} s")


def set_paused(base: str, token: str, dag_id: str, paused: bool) -> None:
    """Pause or unpause ``dag_id``."""
    call(f"{base}/api/v2/dags/{dag_id}", token, {"is_paused": paused}, "PATCH")


def trigger(base: str, token: str, dag_id: str) -> str:
    """Start a manual run of ``dag_id``; return its run id."""
    url = f"{base}/api/v2/dags/{dag_id}/dagRuns"
    return str(call(url, token, body={"logical_date": None})["dag_run_id"])


def wait_for_run(
    base: str, token: str, dag_id: str, run_id: str, timeout: float = 600
) -> str:
    """Wait until the run ends; return ``success`` or ``failed``."""
    url = f"{base}/api/v2/dags/{dag_id}/dagRuns/{run_id}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = str(call(url, token)["state"])
        if state in ("success", "failed"):
            return state
        time.sleep(2)
    pytest.fail(f"{dag_id} run {run_id} did not finish within {timeout} s")
