"""The ZenML server from its own environment shows a real pipeline run.

The server runs from ``.venv-zenml-server`` (created here on first use; set
``GOLDSIGNALS_ZENML_SERVER_VENV`` to use another) in a fresh state folder on a
free port. The project's client connects through the command line, registers
the embedded stack and runs feature engineering on the last years of the real
gold prices; the REST API, asked without credentials, must list the pipeline
and its completed run, and ``/`` must serve the dashboard.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from goldsignals import zenml_server
from goldsignals.processes import answers_ok
from goldsignals.zenml_server import ZenmlServer, ZenmlServerError
from tests.helpers import (
    ROOT,
    free_port,
    goldsignals,
    isolated_env,
    python,
    real_price_slice,
    run,
)

pytestmark = pytest.mark.e2e

ROWS = 1500
PIPELINE = "gold_feature_engineering"


def _server(home: Path, port: int) -> ZenmlServer:
    venv = os.environ.get("GOLDSIGNALS_ZENML_SERVER_VENV", ROOT / ".venv-zenml-server")
    return ZenmlServer(
        venv=Path(venv),
        home=home / "zenml-server",
        database=zenml_server.local_store_database(home),
        port=port,
    )


def _get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.headers["content-type"]), response.read()


def _get_json(url: str) -> Any:
    return json.loads(_get(url)[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZenmlServer]:
    server = _server(tmp_path_factory.mktemp("zenml_server_home"), free_port())
    zenml_server.ensure_environment(server)
    zenml_server.start(server)

    yield server

    zenml_server.stop(server)


@pytest.fixture(scope="module")
def client_env(server: ZenmlServer) -> dict[str, str]:
    home = server.home.parent
    prices = real_price_slice(home, ROWS)
    env = isolated_env(
        home,
        GOLDSIGNALS_ZENML_SERVER_PORT=str(server.port),
        GOLDSIGNALS_ZENML_SERVER_VENV=str(server.venv),
        GOLDSIGNALS_PRICE_SOURCE="csv",
        GOLDSIGNALS_PRICE_CSV=str(prices),
    )

    goldsignals(env, "zenml-server", "connect")
    goldsignals(env, "stack", "--config", str(ROOT / "stack_configs/embedded.yaml"))
    goldsignals(env, "run", "feature-engineering")
    return env


def test_server_listens_on_loopback_only(server: ZenmlServer) -> None:
    pid = zenml_server.running_pid(server)
    assert pid is not None

    listening = {
        (conn.laddr.ip, conn.laddr.port)
        for conn in psutil.Process(pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }

    assert listening == {("127.0.0.1", server.port)}


def test_connect_stores_server_url_and_no_credentials(
    client_env: dict[str, str], server: ZenmlServer
) -> None:
    config_path = Path(client_env["ZENML_CONFIG_PATH"])

    store = yaml.safe_load((config_path / "config.yaml").read_text())["store"]

    assert store["type"] == "rest"
    assert store["url"] == server.url
    assert not (config_path / "credentials.yaml").exists()


def test_rest_api_lists_pipeline_and_completed_run(
    client_env: dict[str, str], server: ZenmlServer
) -> None:
    pipelines = _get_json(f"{server.url}/api/v1/pipelines?name={PIPELINE}")
    pipeline_id = pipelines["items"][0]["id"]

    runs = _get_json(f"{server.url}/api/v1/runs?pipeline_id={pipeline_id}")

    assert [item["name"] for item in pipelines["items"]] == [PIPELINE]
    assert runs["total"] == 1
    assert runs["items"][0]["body"]["status"] == "completed"
    assert runs["items"][0]["resources"]["stack"]["name"] == "goldsignals_embedded"


def test_run_was_created_through_the_server(
    client_env: dict[str, str], server: ZenmlServer
) -> None:
    log = server.log_file.read_text()

    assert '"POST /api/v1/runs' in log
    assert '"POST /api/v1/steps' in log


def test_dashboard_is_served_at_root(server: ZenmlServer) -> None:
    content_type, body = _get(f"{server.url}/")

    assert content_type.startswith("text/html")
    assert b"<title>ZenML Dashboard</title>" in body


def test_disconnect_returns_client_to_local_store_with_same_runs(
    client_env: dict[str, str], tmp_path: Path
) -> None:
    config_copy = tmp_path / "zenml"
    shutil.copytree(client_env["ZENML_CONFIG_PATH"], config_copy)
    env = {**client_env, "ZENML_CONFIG_PATH": str(config_copy)}
    code = (
        "from goldsignals.config import apply_environment, get_settings\n"
        "apply_environment(get_settings())\n"
        "from zenml.client import Client\n"
        "c = Client()\n"
        "print(c.zen_store.type, [r.pipeline.name for r in c.list_pipeline_runs()])"
    )

    output = goldsignals(env, "zenml-server", "disconnect").stdout

    assert "back on its local store" in output
    assert python(env, code).splitlines()[-1] == f"sql ['{PIPELINE}']"


def test_cli_start_when_running_reports_same_pid(
    client_env: dict[str, str], server: ZenmlServer
) -> None:
    output = goldsignals(client_env, "zenml-server", "start").stdout

    assert f"(pid {zenml_server.running_pid(server)})" in output
    assert not zenml_server.ensure_environment(server)


def test_start_refuses_port_of_another_server(
    server: ZenmlServer, tmp_path: Path
) -> None:
    other = _server(tmp_path, server.port)

    with pytest.raises(ZenmlServerError, match=r"in use.*ZENML_SERVER_PORT"):
        zenml_server.start(other)


def test_start_without_environment_names_it(tmp_path: Path) -> None:
    missing = ZenmlServer(
        venv=tmp_path / "no-venv", home=tmp_path, database=tmp_path / "zenml.db"
    )

    with pytest.raises(ZenmlServerError, match="no ZenML server environment at"):
        zenml_server.start(missing)


def test_non_loopback_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ZenmlServerError, match=r"'0\.0\.0\.0' is not a loopback"):
        ZenmlServer(venv=tmp_path, home=tmp_path, database=tmp_path, host="0.0.0.0")


def test_stop_ends_process_and_frees_port(server: ZenmlServer, tmp_path: Path) -> None:
    own = _server(tmp_path, free_port())
    pid = zenml_server.start(own)

    assert zenml_server.stop(own)
    assert not psutil.pid_exists(pid)
    assert zenml_server.running_pid(own) is None
    assert not answers_ok(f"{own.url}/health")
    assert not zenml_server.stop(own)


def test_client_store_check_accepts_only_the_named_server(
    server: ZenmlServer, tmp_path: Path
) -> None:
    env = isolated_env(tmp_path)
    code = (
        "import sys\n"
        "from goldsignals import zenml_server\n"
        "zenml_server.require_client_store(sys.argv[1])\n"
        "print('uses it')\n"
    )

    through_store_url = python({**env, "ZENML_STORE_URL": server.url}, code, server.url)
    local_client = run(env, sys.executable, "-c", code, server.url, check=False)

    assert through_store_url.endswith("uses it")
    assert local_client.returncode != 0
    assert f"not the server {server.url}" in local_client.stderr
    assert f"ZENML_STORE_URL={server.url}" in local_client.stderr
