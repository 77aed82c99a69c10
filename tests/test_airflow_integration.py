"""The pipelines compiled into DAGs and run by a real Airflow 3 on this host.

One module-scoped Airflow: the stack file `stack_configs/airflow_local.yaml` is
registered and the DAGs compiled by ZenML's Airflow orchestrator in a fresh
state folder; feature engineering and training run with `airflow dags test`;
then api-server, scheduler and dag-processor are started as a user starts them
(`goldsignals airflow start`), `gold_inference` is triggered through the REST
API, and a headless Chromium logs into the web UI. Prices are the last years of
the real gold history, read from a CSV (Yahoo is the only faked boundary).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests import airflow_api
from tests.helpers import BIN, ROOT, free_port, isolated_env, real_price_slice, run

pytestmark = pytest.mark.airflow

DAG_IDS = ("gold_feature_engineering", "gold_inference", "gold_training")
ROWS = 1500


def _run(env: dict[str, str], *command: str) -> str:
    return run(env, *command).stdout


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("goldsignals_airflow")
    env = isolated_env(
        home,
        GOLDSIGNALS_AIRFLOW_DAGS_DIR=str(home / "dags"),
        GOLDSIGNALS_AIRFLOW_PORT=str(free_port()),
        AIRFLOW_HOME=str(home / "airflow"),
        HOME=str(home / "user_home"),
    )
    goldsignals = str(BIN / "goldsignals")
    _run(
        env,
        goldsignals,
        "stack",
        "--config",
        str(ROOT / "stack_configs/airflow_local.yaml"),
    )
    # Prices come from a .env file, as a user would set them: the compiled
    # DAGs must carry them to steps that run where no .env is found.
    work = home / "work"
    work.mkdir()
    (work / ".env").write_text(
        "GOLDSIGNALS_PRICE_SOURCE=csv\n"
        f"GOLDSIGNALS_PRICE_CSV={real_price_slice(home, ROWS)}\n"
    )
    run(env, goldsignals, "compile", cwd=work)
    _run(env, goldsignals, "airflow", "config")
    _run(env, str(BIN / "airflow"), "db", "migrate")

    yield env

    subprocess.run([goldsignals, "airflow", "stop"], env=env, check=False)


@pytest.fixture(scope="module")
def trained(airflow_env: dict[str, str]) -> dict[str, float]:
    timings = {}
    for dag_id in ("gold_feature_engineering", "gold_training"):
        started = time.monotonic()
        _run(airflow_env, str(BIN / "airflow"), "dags", "test", dag_id)
        timings[dag_id] = time.monotonic() - started
    for dag_id in ("gold_feature_engineering", "gold_training"):
        _run(airflow_env, str(BIN / "airflow"), "dags", "pause", dag_id)
    return timings


@pytest.fixture(scope="module")
def running(airflow_env: dict[str, str], trained: dict[str, float]) -> str:
    output = _run(airflow_env, str(BIN / "goldsignals"), "airflow", "start")
    assert "Airflow UI: http://127.0.0.1:" in output
    return f"http://127.0.0.1:{airflow_env['GOLDSIGNALS_AIRFLOW_PORT']}"


def _zenml_runs(env: dict[str, str]) -> list[tuple[str, str]]:
    code = (
        "import json\n"
        "from zenml.client import Client\n"
        "runs = Client().list_pipeline_runs(size=100)\n"
        "print(json.dumps([[r.pipeline.name, str(r.status)] for r in runs]))\n"
    )
    output = _run(env, sys.executable, "-c", code).strip().splitlines()[-1]
    return [(name, status) for name, status in json.loads(output)]


def test_step_processes_write_nothing_into_home(
    airflow_env: dict[str, str], trained: dict[str, float]
) -> None:
    home = Path(airflow_env["HOME"])

    assert not (home / ".config" / "zenml").exists()
    assert not (home / ".config" / "mlflow").exists()


def test_compiled_dags_carry_state_paths(airflow_env: dict[str, str]) -> None:
    dags = Path(airflow_env["GOLDSIGNALS_AIRFLOW_DAGS_DIR"])
    path = dags / "gold_training.zip"

    config = json.loads(subprocess.check_output(["unzip", "-p", path, "config.json"]))

    environment = config["tasks"][0]["environment"]
    home = airflow_env["GOLDSIGNALS_HOME"]
    assert environment["ZENML_CONFIG_PATH"] == f"{home}/zenml-steps"
    assert environment["GOLDSIGNALS_HOME"] == home
    assert environment["GOLDSIGNALS_PRICE_SOURCE"] == "csv"
    assert environment["GOLDSIGNALS_PRICE_CSV"] == f"{home}/prices.csv"


def test_compile_writes_one_zip_per_pipeline(airflow_env: dict[str, str]) -> None:
    dags = Path(airflow_env["GOLDSIGNALS_AIRFLOW_DAGS_DIR"])

    assert sorted(p.stem for p in dags.glob("*.zip")) == sorted(DAG_IDS)


def test_compiled_dags_hold_no_credentials(airflow_env: dict[str, str]) -> None:
    dags = Path(airflow_env["GOLDSIGNALS_AIRFLOW_DAGS_DIR"])

    for path in dags.glob("*.zip"):
        config = json.loads(
            subprocess.check_output(["unzip", "-p", path, "config.json"])
        )
        for task in config["tasks"]:
            keys = " ".join(task["environment"]).upper()
            assert "PASSWORD" not in keys
            assert "TOKEN" not in keys


def test_dags_test_runs_features_and_training(
    airflow_env: dict[str, str], trained: dict[str, float]
) -> None:
    runs = _zenml_runs(airflow_env)

    assert ("gold_feature_engineering", "completed") in runs
    assert ("gold_training", "completed") in runs
    print(f"airflow dags test wall times (s): {trained}")


def test_triggered_inference_writes_signals(
    airflow_env: dict[str, str], running: str
) -> None:
    token = airflow_api.login(running, Path(airflow_env["AIRFLOW_HOME"]))
    airflow_api.wait_for_dags(running, token, DAG_IDS)

    started = time.monotonic()
    run_id = airflow_api.trigger(running, token, "gold_inference")
    state = airflow_api.wait_for_run(running, token, "gold_inference", run_id)
    elapsed = time.monotonic() - started

    assert state == "success"
    db = Path(airflow_env["GOLDSIGNALS_HOME"]) / "data" / "signals.db"
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select as_of_date, signal from signals").fetchall()
    prices = Path(airflow_env["GOLDSIGNALS_HOME"]) / "prices.csv"
    last_date = pd.read_csv(prices)["Date"].iloc[-1]
    assert [row[0] for row in rows] == [last_date]
    assert ("gold_inference", "completed") in _zenml_runs(airflow_env)
    print(f"gold_inference trigger to success: {elapsed:.1f} s")


def test_recompile_is_refused_while_a_run_is_in_flight(
    airflow_env: dict[str, str], running: str
) -> None:
    token = airflow_api.login(running, Path(airflow_env["AIRFLOW_HOME"]))
    airflow_api.wait_for_dags(running, token, DAG_IDS)
    dag_file = Path(airflow_env["GOLDSIGNALS_AIRFLOW_DAGS_DIR"]) / "gold_training.zip"
    before = dag_file.read_bytes()
    # gold_training is paused (see `trained`): a triggered run stays queued.
    run_id = airflow_api.trigger(running, token, "gold_training")
    url = f"{running}/api/v2/dags/gold_training/dagRuns/{run_id}"

    goldsignals = str(BIN / "goldsignals")
    work = Path(airflow_env["GOLDSIGNALS_HOME"]) / "work"
    try:
        kept = run(airflow_env, goldsignals, "compile", "training", cwd=work)
        refused = run(
            airflow_env,
            goldsignals,
            "compile",
            "training",
            "--force",
            check=False,
            cwd=work,
        )
    finally:
        airflow_api.call(url, token, method="DELETE")
    after_refusal = dag_file.read_bytes()
    again = run(airflow_env, goldsignals, "compile", "training", "--force", cwd=work)

    assert "unchanged DAG gold_training" in kept.stdout
    assert refused.returncode == 2
    last_line = refused.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: not recompiling: gold_training")
    assert run_id in last_line
    assert "(queued)" in last_line
    assert after_refusal == before
    assert "compiled training" in again.stdout
    assert dag_file.read_bytes() != before


def test_scheduled_steps_fork_from_the_step_server(
    airflow_env: dict[str, str], running: str
) -> None:
    status = _run(airflow_env, str(BIN / "goldsignals"), "airflow", "status")
    logs = Path(airflow_env["AIRFLOW_HOME"]) / "logs" / "dag_id=gold_inference"
    texts = [path.read_text() for path in logs.rglob("*.log")]

    assert "step-server: pid" in status
    airflow_logs = Path(airflow_env["AIRFLOW_HOME"]) / "logs"
    for service in ("api-server", "scheduler", "dag-processor", "step-server"):
        assert (airflow_logs / f"{service}.out").stat().st_mode & 0o777 == 0o600
    assert texts
    assert any("forked from the step server" in text for text in texts)
    assert not any("running a subprocess" in text for text in texts)


def test_import_errors_are_none(airflow_env: dict[str, str], running: str) -> None:
    token = airflow_api.login(running, Path(airflow_env["AIRFLOW_HOME"]))

    errors = airflow_api.call(f"{running}/api/v2/importErrors", token)

    assert errors["total_entries"] == 0


def test_rest_api_refuses_anonymous_access(running: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        airflow_api.call(f"{running}/api/v2/dags")
    info.value.close()  # its socket, else a ResourceWarning whenever gc runs

    assert info.value.code in (401, 403)


# Selenium leaves its HTTP connection to chromedriver for the garbage collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_browser_login_shows_the_three_dags(
    airflow_env: dict[str, str], running: str
) -> None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian packages chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,900",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    screenshot = _artifact_dir() / "airflow_dags.png"
    try:
        browser.get(running)
        wait = WebDriverWait(browser, 120)
        wait.until(
            expected_conditions.presence_of_element_located((By.NAME, "username"))
        )
        form = browser.find_element(By.NAME, "username")
        form.send_keys("admin")
        browser.find_element(By.NAME, "password").send_keys(
            airflow_api.admin_password(Path(airflow_env["AIRFLOW_HOME"]))
        )
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        # While the page navigates away, Chrome may answer a question about
        # the old form with a generic error instead of "stale element".
        navigating = WebDriverWait(
            browser, 120, ignored_exceptions=[WebDriverException]
        )
        navigating.until(expected_conditions.staleness_of(form))
        browser.get(f"{running}/dags")
        for dag_id in DAG_IDS:
            locator = (By.XPATH, f"//*[contains(text(), '{dag_id}')]")
            try:
                wait.until(expected_conditions.presence_of_element_located(locator))
            except TimeoutException:
                page = browser.find_element(By.TAG_NAME, "body").text[:500]
                pytest.fail(f"{dag_id} not shown at {browser.current_url}: {page}")
    finally:
        browser.save_screenshot(str(screenshot))
        browser.quit()

    assert screenshot.stat().st_size > 10_000


def _artifact_dir() -> Path:
    folder = Path(
        os.environ.get(
            "GOLDSIGNALS_TEST_ARTIFACTS", ROOT / ".goldsignals/test-artifacts"
        )
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder
