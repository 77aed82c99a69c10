"""Issue 6, services and runs (cases 9-15).

Each fault ends in a clear error or a safe outcome, and nothing is lost or
duplicated.

Where each case is tested:

- 9 Postgres refusing the password / down: here (real Postgres) and
  ``test_signal_store.py::test_create_signal_engine_unreachable_names_host_not_password``;
  ``test_deploy.py`` (deploy-stack with services down).
- 10 MLflow server unreachable: here.
- 11 no registered model: here.
- 12 the same day's inference three times, and at once: here (SQLite, three
  processes), ``test_signal_store_postgres.py::
  test_concurrent_writers_same_day_leave_one_row_per_key`` (Postgres, six
  writers), ``test_end_to_end.py::test_run_all_again_adds_no_duplicate``.
- 13 a run killed while writing signals: here, SQLite and Postgres.
- 14 a schema change on a table with rows: here (Postgres, every migration
  from the first) and
  ``test_signal_outcomes.py::test_lineage_migration_keeps_existing_rows``
  (SQLite, up and down).
- 15 security: here (tracked configuration files and product code hold no
  credentials), ``test_compose.py`` (no literal secret; the ZenML server
  needs no credential, so none reaches a DAG), ``test_deploy.py``
  (no password in DAG files, configs or the process list; every service on
  127.0.0.1), ``test_airflow_integration.py`` (the UI and REST API require a
  login), ``test_postgres_cli.py`` (the reader cannot write).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient

from goldsignals import postgres_host
from goldsignals.errors import ModelNotFoundError, SignalStoreError
from goldsignals.postgres_host import PostgresHost
from goldsignals.registry import champion_version, select_serving_version
from goldsignals.signal_store import (
    count_signals,
    create_signal_engine,
    migrate_schema,
)
from tests.helpers import (
    ROOT,
    free_port,
    goldsignals,
    isolated_env,
    python,
    read_only_engine,
    real_price_slice,
)


@pytest.fixture
def database(postgres: PostgresHost) -> str:
    name = f"gs_{uuid.uuid4().hex[:8]}"
    postgres_host.psql(postgres, f"CREATE DATABASE {name}")
    return postgres.url(name)


@pytest.mark.postgres
def test_case09_postgres_refusing_the_password_names_host_and_database(
    postgres: PostgresHost,
) -> None:
    postgres_host.psql(postgres, "CREATE ROLE gs_case09 LOGIN PASSWORD 'the-right-one'")
    url = postgres.url("postgres", "gs_case09", "a-wrong-one")

    with pytest.raises(SignalStoreError) as caught:
        create_signal_engine(url)

    message = str(caught.value)
    assert f"127.0.0.1:{postgres.port}/postgres" in message
    assert "password authentication failed" in message
    assert "a-wrong-one" not in message


def test_case10_mlflow_server_unreachable_names_the_tracking_uri(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"
    client = MlflowClient(tracking_uri=uri)

    with pytest.raises(ModelNotFoundError, match=re.escape(uri)):
        champion_version(client, "gold")
    with pytest.raises(ModelNotFoundError, match=re.escape(uri)):
        select_serving_version(client, name="gold", metric="f1")


def test_case10_training_with_the_mlflow_server_down_runs_nothing(
    tmp_path: Path,
) -> None:
    port = free_port()
    stack = tmp_path / "stack.yaml"
    embedded = (ROOT / "stack_configs" / "embedded.yaml").read_text()
    stack.write_text(
        embedded.replace("goldsignals_embedded", "case10")
        .replace("gs_mlflow_tracker_embedded", "case10_tracker")
        .replace(
            "tracking_uri: ${GOLDSIGNALS_MLFLOW_TRACKING_URI}",
            f"tracking_uri: http://127.0.0.1:{port}\n      tracking_token: unused",
        )
    )
    env = isolated_env(tmp_path / "home")
    goldsignals(env, "stack", "--config", str(stack))

    result = goldsignals(env, "run", "training", check=False)

    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert f"MLflow tracking server http://127.0.0.1:{port}" in last
    assert "make up" in last
    runs = python(
        env,
        "from zenml.client import Client\n"
        "print(len(Client().list_pipeline_runs(size=10).items))\n",
    )
    assert runs.splitlines()[-1] == "0"


@pytest.mark.e2e
def test_case11_inference_without_a_model_says_to_run_training(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    prices = real_price_slice(home, 500)
    env = isolated_env(
        home, GOLDSIGNALS_PRICE_SOURCE="csv", GOLDSIGNALS_PRICE_CSV=str(prices)
    )
    goldsignals(env, "stack")
    goldsignals(env, "run", "feature-engineering")

    result = goldsignals(env, "run", "inference", check=False)

    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "step select_best_model failed" in last
    assert "run the training pipeline first" in last


WRITER = """
import datetime as dt, sys
from goldsignals.signal_store import create_signal_engine, write_signals
from tests.helpers import signal_row
engine = create_signal_engine(sys.argv[1])
rows = [signal_row(dt.date(2026, 8, 6), probability=float(sys.argv[2]))]
print(write_signals(engine, rows))
"""


def test_case12_three_runs_of_the_same_day_at_once_leave_one_row(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'signals.db'}"
    create_signal_engine(url).dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(p)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in (0.2, 0.5, 0.8)
    ]
    outputs = [writer.communicate(timeout=120)[0].strip() for writer in writers]

    engine = create_signal_engine(url)
    assert [w.returncode for w in writers] == [0, 0, 0]
    assert outputs == ["1", "1", "1"]
    assert count_signals(engine) == 1
    engine.dispose()


KILLED_WRITER = """
import datetime as dt, sys, time
import pandas as pd
from goldsignals import signal_store
from tests.helpers import signal_row

def stall(connection, ticker, closes):
    open(sys.argv[2], "w").write("inside the transaction")
    time.sleep(120)

signal_store.fill_outcomes = stall
engine = signal_store.create_signal_engine(sys.argv[1])
rows = [signal_row(dt.date(2026, 7, 1) + dt.timedelta(days=i)) for i in range(20)]
signal_store.write_signals(engine, rows, closes=pd.Series(dtype="float64"))
"""


def _kill_while_writing(url: str, marker: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, url, str(marker)], env=env
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and writer.poll() is None:
        assert time.monotonic() < deadline, "the writer never started its batch"
        time.sleep(0.1)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL


def test_case13_sqlite_run_killed_while_writing_leaves_no_partial_batch(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'signals.db'}"

    _kill_while_writing(url, tmp_path / "marker")

    engine = create_signal_engine(url)
    assert count_signals(engine) == 0
    engine.dispose()


@pytest.mark.postgres
def test_case13_postgres_run_killed_while_writing_leaves_no_partial_batch(
    database: str, tmp_path: Path
) -> None:
    _kill_while_writing(database, tmp_path / "marker")

    engine = create_signal_engine(database)
    assert count_signals(engine) == 0
    with engine.connect() as connection:
        open_transactions = connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                "current_database() AND state LIKE 'idle in transaction%'"
            )
        ).scalar_one()
    engine.dispose()
    assert open_transactions == 0


CONFIG_SUFFIXES = {".yaml", ".yml", ".toml", ".cfg", ".ini", ".sh", ".example", ""}
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b[a-z_]*(password|secret|token|api_key)[a-z_]*\s*[:=]\s*(\S*)"
)
PLACEHOLDERS = {"", "change-me", "change-me-too", "unused"}


@pytest.mark.postgres
def test_case14_migrations_on_a_postgres_table_with_rows_lose_none(
    postgres: PostgresHost, database: str
) -> None:
    engine = sa.create_engine(database)
    migrate_schema(engine, "0001")
    insert = sa.text(
        "INSERT INTO signals (ticker, as_of_date, model_version, signal, "
        "probability, model_name, created_at) VALUES ('GC=F', :day, '1', 'BUY', "
        "0.6, 'm', now())"
    )
    with engine.begin() as connection:
        connection.execute(insert, [{"day": f"2026-07-{d:02d}"} for d in range(1, 31)])

    migrate_schema(engine)
    reader = read_only_engine(postgres, sa.make_url(database).database or "")
    with reader.connect() as connection:
        kept = connection.execute(sa.text("SELECT count(*) FROM signals")).scalar_one()
        latest = connection.execute(
            sa.text("SELECT as_of_date, feature_hash FROM latest_signals")
        ).all()
        prices = connection.execute(sa.text("SELECT count(*) FROM prices")).scalar_one()
    reader.dispose()
    engine.dispose()

    assert kept == 30
    assert [(str(row[0]), row[1]) for row in latest] == [("2026-07-30", None)]
    assert prices == 0


def test_case15_tracked_files_hold_no_credentials() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in CONFIG_SUFFIXES or not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            # ${NAME:?message} interpolations are references, whatever inside.
            line = re.sub(r"\$\{[^}]*\}", "${}", line)
            for match in SECRET_ASSIGNMENT.finditer(line):
                value = match.group(2).strip("'\";")
                reference = value.startswith(("${", "*", "&", "{{", "/"))
                reference |= f":'{value}'" in line  # a psql variable
                if not reference and value not in PLACEHOLDERS:
                    found.append(f"{name}:{number}: {line.strip()}")

    assert ".env" not in tracked
    assert found == []


PRODUCT_CODE = ("goldsignals", "steps", "dags", "zenml_pipelines", "bench")
LITERAL_CREDENTIAL = re.compile(
    r"(?i)\b\w*(password|secret|token|api_key)(?!\w*_(file|path|dir)\b)\w*"
    r"[\"']?\s*[:=]\s*[\"'][^\"'\s]+[\"']"
)


def _literal_credentials(name: str, text: str) -> list[str]:
    """Lines of ``text`` that assign a quoted literal to a credential name."""
    return [
        f"{name}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if LITERAL_CREDENTIAL.search(line)
    ]


def test_case15_product_code_holds_no_literal_credential() -> None:
    planted = 'API_TOKEN = "abc123"\nsettings = {"password": "hunter2"}\n'
    tracked = subprocess.run(
        ["git", "ls-files", *PRODUCT_CODE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    found = [
        hit
        for name in tracked
        if name.endswith(".py")
        for hit in _literal_credentials(name, (ROOT / name).read_text())
    ]

    assert len(_literal_credentials("planted.py", planted)) == 2
    assert found == []
