"""Helpers of the tests that run the product as a user does: in subprocesses."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment with goldsignals and ZenML state in ``home``.

    Inherited ZenML, database and tracking settings are dropped, so a test
    never touches the developer's own state.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    for name in ("GOLDSIGNALS_MLFLOW_TRACKING_URI", "GOLDSIGNALS_SIGNALS_DB_URL"):
        env.pop(name, None)
    env.update(GOLDSIGNALS_HOME=str(home), ZENML_CONFIG_PATH=str(home / "zenml"))
    env.update(extra)
    return env


def run(
    env: dict[str, str],
    *command: str,
    check: bool = True,
    timeout: float = 600,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command``; with ``check``, fail the test showing its output."""
    result = subprocess.run(
        list(command),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def goldsignals(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the project's command line."""
    return run(env, str(BIN / "goldsignals"), *args, check=check)


def python(env: dict[str, str], code: str, *argv: str) -> str:
    """Run ``code`` in a fresh interpreter; return its stripped output."""
    return run(env, sys.executable, "-c", code, *argv).stdout.strip()


def real_price_slice(folder: Path, rows: int) -> Path:
    """Write the last ``rows`` days of the real gold history as a CSV."""
    data = Path(os.environ.get("GOLDSIGNALS_SHARED_DATA", ROOT.parent / "shared/data"))
    path = data / "gold_futures_daily.csv"
    if not path.is_file():
        pytest.skip(f"real gold prices not found at {path}")
    target = folder / "prices.csv"
    pd.read_csv(path).tail(rows).to_csv(target, index=False)
    return target


def signal_row(
    day: dt.date = dt.date(2026, 8, 6), version: str = "1", **extra: Any
) -> dict[str, Any]:
    """A valid row of the signals table; ``extra`` overrides any column."""
    row = {
        "ticker": "GC=F",
        "as_of_date": day,
        "model_version": version,
        "signal": "BUY",
        "probability": 0.61,
        "model_name": "gold-direction-classifier",
        "mlflow_run_id": "mlflow-run",
        "zenml_run_id": "zenml-run",
    }
    return {**row, **extra}


def rewritten_day_rows() -> list[dict[str, Any]]:
    """Signal rows with their ``created_at``, in the order they are inserted.

    GC=F on 2026-08-06 by version 1 (written last, though inserted before
    version 2, as when a rewrite keeps its id), GLD on 2026-08-05 by two
    versions written at the same instant: the view must pick the newest
    ``created_at``, then the higher ``id``.
    """
    hour = dt.timedelta(hours=1)
    first = dt.datetime(2026, 8, 7, 6, tzinfo=dt.UTC)
    day, earlier = dt.date(2026, 8, 6), dt.date(2026, 8, 5)
    return [
        signal_row(earlier, created_at=first),
        signal_row(day, version="1", created_at=first + 2 * hour),
        signal_row(day, version="2", signal="SELL", created_at=first + hour),
        signal_row(earlier, version="1", ticker="GLD", created_at=first),
        signal_row(earlier, version="2", ticker="GLD", created_at=first),
    ]


def latest_view_rows(engine: Engine) -> list[tuple[str, str, str]]:
    """Ticker, as-of date and model version of each row of ``latest_signals``."""
    query = "SELECT ticker, as_of_date, model_version FROM latest_signals"
    with engine.connect() as connection:
        rows = connection.execute(sa.text(query)).fetchall()
    return sorted((row[0], str(row[1]), row[2]) for row in rows)


def latest_view_definition(engine: Engine) -> str:
    """The stored SQL of the view ``latest_signals`` (SQLite or Postgres)."""
    if engine.dialect.name == "postgresql":
        query = "SELECT pg_get_viewdef('latest_signals'::regclass)"
    else:
        query = "SELECT sql FROM sqlite_master WHERE name = 'latest_signals'"
    with engine.connect() as connection:
        return str(connection.execute(sa.text(query)).scalar_one())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_folder(prefix: str) -> Path:
    """A fresh folder the host's PostgreSQL can use, or skip without binaries.

    Made outside pytest's private temporary tree: as root the server runs as
    the system user ``postgres``, which must be able to reach the folder.
    """
    from goldsignals import postgres_host

    try:
        postgres_host.find_binary("pg_ctl")
    except postgres_host.PostgresHostError as exc:
        pytest.skip(str(exc))
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


def read_only_engine(postgres: Any, database: str) -> Any:
    """An engine of a new login role in ``goldsignals_readonly`` on ``database``.

    Args:
        postgres: The PostgresHost of the tests.
        database: Name of a database whose schema is migrated.
    """
    import uuid

    import sqlalchemy as sa

    from goldsignals import postgres_host

    reader = f"reader_{uuid.uuid4().hex[:6]}"
    postgres_host.psql(
        postgres,
        f"CREATE ROLE {reader} LOGIN PASSWORD 'pw' IN ROLE goldsignals_readonly",
    )
    return sa.create_engine(postgres.url(database, reader, "pw"))
