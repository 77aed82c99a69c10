"""`goldsignals postgres start|stop` as a user runs them (host binaries)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from goldsignals.errors import SignalStoreError
from goldsignals.signal_store import write_signals
from tests.helpers import (
    free_port,
    goldsignals,
    isolated_env,
    server_folder,
    signal_row,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    home = server_folder("goldsignals-home-")
    env = isolated_env(
        home,
        GOLDSIGNALS_POSTGRES_PORT=str(free_port()),
        GOLDSIGNALS_DB_PASSWORD="owner's secret",
        GOLDSIGNALS_DB_READER_PASSWORD="reader-secret",
    )

    yield env

    goldsignals(env, "postgres", "stop", check=False)
    shutil.rmtree(home, ignore_errors=True)


def test_postgres_start_creates_databases_and_roles_idempotently(
    env: dict[str, str],
) -> None:
    first = goldsignals(env, "postgres", "start").stdout
    second = goldsignals(env, "postgres", "start").stdout

    assert "created database mlflow" in first
    assert "created database airflow" in first
    assert "created" not in second
    assert "secret" not in first + second
    port = env["GOLDSIGNALS_POSTGRES_PORT"]
    owner = sa.create_engine(
        f"postgresql+psycopg2://goldsignals:owner's secret@127.0.0.1:{port}/goldsignals"
    )
    reader = sa.create_engine(
        f"postgresql+psycopg2://goldsignals_reader:reader-secret@127.0.0.1:{port}"
        "/goldsignals"
    )
    write_signals(owner, [signal_row()])
    with reader.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM latest_signals"))
        assert count.scalar_one() == 1
    with pytest.raises(SignalStoreError, match="permission denied"):
        write_signals(reader, [signal_row(version="2")])
    owner.dispose()
    reader.dispose()


@pytest.mark.parametrize("password", [None, "", "   "])
def test_postgres_start_without_passwords_says_what_to_set(
    env: dict[str, str], password: str | None
) -> None:
    if password is None:
        del env["GOLDSIGNALS_DB_PASSWORD"]
    else:
        env["GOLDSIGNALS_DB_PASSWORD"] = password

    result = goldsignals(env, "postgres", "start", check=False)

    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: GOLDSIGNALS_DB_PASSWORD must be set")
    assert ".env.example" in last
    assert not (Path(env["GOLDSIGNALS_HOME"]) / "postgres").exists()


def test_postgres_listens_on_loopback_only(env: dict[str, str]) -> None:
    goldsignals(env, "postgres", "start")
    home = Path(env["GOLDSIGNALS_HOME"])

    settings = (home / "postgres" / "data" / "postmaster.opts").read_text()

    assert "listen_addresses=127.0.0.1" in settings
    assert "stopped PostgreSQL" in goldsignals(env, "postgres", "stop").stdout


def test_postgres_start_refuses_the_example_passwords(env: dict[str, str]) -> None:
    env["GOLDSIGNALS_DB_READER_PASSWORD"] = "change-me-too"

    result = goldsignals(env, "postgres", "start", check=False)

    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2
    assert last.startswith("error: GOLDSIGNALS_DB_READER_PASSWORD still hold")
    assert not (Path(env["GOLDSIGNALS_HOME"]) / "postgres").exists()


@pytest.mark.parametrize(
    ("reader_password", "message"),
    [
        ("short", "GOLDSIGNALS_DB_READER_PASSWORD must have at least 8 characters"),
        ("owner's secret", "are equal, so the read-only role's password would"),
    ],
)
def test_postgres_start_refuses_weak_passwords(
    env: dict[str, str], reader_password: str, message: str
) -> None:
    env["GOLDSIGNALS_DB_READER_PASSWORD"] = reader_password

    result = goldsignals(env, "postgres", "start", check=False)

    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2
    assert message in last
    assert "nothing was started" in last
    assert not (Path(env["GOLDSIGNALS_HOME"]) / "postgres").exists()


def _as_nobody(*command: str) -> int:
    result = subprocess.run(
        ["runuser", "-u", "nobody", "--", *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return result.returncode


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_postgres_other_local_users_cannot_log_in_without_password(
    env: dict[str, str],
) -> None:
    goldsignals(env, "postgres", "start")
    home = Path(env["GOLDSIGNALS_HOME"])
    psql = shutil.which("psql") or "psql"
    port = env["GOLDSIGNALS_POSTGRES_PORT"]
    query = ("-p", port, "-d", "goldsignals", "-w", "-c", "SELECT 1")

    over_tcp = _as_nobody(psql, "-h", "127.0.0.1", "-U", "goldsignals_admin", *query)
    owner_tcp = _as_nobody(psql, "-h", "127.0.0.1", "-U", "goldsignals", *query)
    socket_dir = str(home / "postgres" / "socket")
    over_socket = _as_nobody(psql, "-h", socket_dir, "-U", "goldsignals_admin", *query)

    assert over_tcp != 0
    assert owner_tcp != 0
    assert over_socket != 0
    assert (home / "postgres" / "socket").stat().st_mode & 0o777 == 0o700
