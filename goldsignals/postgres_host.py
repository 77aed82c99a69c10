"""A PostgreSQL server from the host's binaries, in a folder of ours.

Used by ``make up`` where no Docker engine exists, and by the tests for a
throwaway server. The cluster lives in a data directory inside the state folder
and listens on 127.0.0.1 only. PostgreSQL refuses to run as root, so as root the
server runs as the system user ``postgres`` (which owns the data directory).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldsignals.errors import GoldSignalsError
from goldsignals.processes import ensure_port_free

logger = logging.getLogger(__name__)

SEARCH_PATHS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


class PostgresHostError(GoldSignalsError, RuntimeError):
    """The host's PostgreSQL could not be found, initialised or started."""


@dataclass(frozen=True)
class PostgresHost:
    """A local PostgreSQL cluster.

    Attributes:
        data_dir: The cluster's data directory.
        port: TCP port on 127.0.0.1.
        superuser: Name of the cluster's superuser. It is trusted on the
            Unix socket only, whose folder only the server's system user (and
            root) may open; every other connection needs a password.
    """

    data_dir: Path
    port: int = 5433
    superuser: str = "goldsignals_admin"

    @property
    def socket_dir(self) -> Path:
        """Folder of the Unix socket (inside the data directory's parent)."""
        return self.data_dir.parent / "socket"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.data_dir.parent / "postgres.log"

    def url(self, database: str, user: str | None = None, password: str = "") -> str:
        """SQLAlchemy URL of ``database`` on this server.

        Without ``user``: the superuser, over the Unix socket (the only way it
        may log in). With ``user``: that role over TCP on 127.0.0.1.
        """
        if user is None:
            return (
                f"postgresql+psycopg2://{self.superuser}@/{database}"
                f"?host={self.socket_dir}&port={self.port}"
            )
        auth = f"{user}:{password}" if password else user
        return f"postgresql+psycopg2://{auth}@127.0.0.1:{self.port}/{database}"


def find_binary(name: str) -> Path:
    """Locate ``pg_ctl``, ``initdb`` or ``psql``.

    Raises:
        PostgresHostError: Naming the Debian package that provides it.
    """
    found = shutil.which(name)
    candidates = [Path(found)] if found else []
    candidates += [Path(folder) / name for folder in SEARCH_PATHS]
    for path in candidates:
        if path.is_file():
            return path
    raise PostgresHostError(
        f"{name} not found on PATH or in {', '.join(SEARCH_PATHS)}; install the "
        "Debian package postgresql (apt-get install postgresql)"
    )


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _hand_to_server_user(*paths: Path) -> None:
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam("postgres")
    for path in paths:
        os.chown(path, user.pw_uid, user.pw_gid)


def _run(command: list[str], what: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        _as_server_user(command),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PostgresHostError(f"{what} failed: {result.stderr.strip()[-800:]}")
    return result.stdout


def initialise(host: PostgresHost) -> bool:
    """Create the cluster if its data directory is empty.

    Returns:
        True if a cluster was created, False if one existed.
    """
    if (host.data_dir / "PG_VERSION").exists():
        return False
    for folder in (host.data_dir.parent, host.data_dir, host.socket_dir):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755 if folder == host.data_dir.parent else 0o700)
    _hand_to_server_user(host.data_dir, host.socket_dir)

    _run(
        [
            str(find_binary("initdb")),
            "--pgdata",
            str(host.data_dir),
            "--username",
            host.superuser,
            "--auth-local=trust",  # replaced by write_access_rules at start
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-instructions",
        ],
        "initdb",
    )
    logger.info("Initialised PostgreSQL cluster in %s", host.data_dir)
    return True


def write_access_rules(host: PostgresHost) -> None:
    """Write ``pg_hba.conf`` and make the socket folder private.

    The superuser logs in without a password on the Unix socket only; the
    socket's folder is mode 700 and owned by the server's system user, so no
    other local user can reach it. Every other login, on the socket or on
    127.0.0.1, needs its password (scram). Rewritten at every start, so a
    cluster made by an older version gets the same rules.
    """
    rules = (
        "# Written by goldsignals at every start; edits are overwritten.\n"
        f"local all {host.superuser} trust\n"
        "local all all scram-sha-256\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    )
    hba = host.data_dir / "pg_hba.conf"
    hba.write_text(rules)
    hba.chmod(0o600)
    _hand_to_server_user(hba)
    host.socket_dir.mkdir(parents=True, exist_ok=True)
    host.socket_dir.chmod(0o700)
    _hand_to_server_user(host.socket_dir)


def is_running(host: PostgresHost) -> bool:
    """Whether the cluster's postmaster is alive."""
    if not (host.data_dir / "postmaster.pid").exists():
        return False
    command = [str(find_binary("pg_ctl")), "status", "-D", str(host.data_dir)]
    status = subprocess.run(
        _as_server_user(command),
        capture_output=True,
        check=False,
    )
    return status.returncode == 0


def start(host: PostgresHost, *, timeout: float = 60.0) -> None:
    """Start the server on 127.0.0.1 (no-op when it runs already)."""
    if is_running(host):
        return
    ensure_port_free(
        "127.0.0.1",
        host.port,
        service="PostgreSQL server",
        setting="GOLDSIGNALS_POSTGRES_PORT",
        error=PostgresHostError,
    )
    if os.geteuid() == 0:
        host.log_file.touch()
        _hand_to_server_user(host.log_file)
    write_access_rules(host)
    options = (
        f"-c listen_addresses=127.0.0.1 -p {host.port} "
        f"-c unix_socket_directories={host.socket_dir} "
        "-c unix_socket_permissions=0700 -c max_connections=100"
    )
    _run(
        [
            str(find_binary("pg_ctl")),
            "start",
            "-D",
            str(host.data_dir),
            "-l",
            str(host.log_file),
            "-o",
            options,
            "-w",
            "-t",
            str(int(timeout)),
        ],
        f"starting PostgreSQL on 127.0.0.1:{host.port} (log: {host.log_file})",
    )
    logger.info("PostgreSQL listens on 127.0.0.1:%d", host.port)


def stop(host: PostgresHost) -> bool:
    """Stop the server (fast shutdown). Returns whether it was running."""
    if not is_running(host):
        return False
    _run(
        [str(find_binary("pg_ctl")), "stop", "-D", str(host.data_dir), "-m", "fast"],
        "stopping PostgreSQL",
    )
    return True


def psql(host: PostgresHost, sql: str, *, database: str = "postgres") -> str:
    """Run SQL as the superuser over the Unix socket; return psql's output.

    The SQL goes through standard input, so passwords in it never appear in
    the process list.
    """
    command = [
        str(find_binary("psql")),
        "-h",
        str(host.socket_dir),
        "-p",
        str(host.port),
        "-U",
        host.superuser,
        "-d",
        database,
        "-v",
        "ON_ERROR_STOP=1",
        "-qAt",
        "-f",
        "-",
    ]
    return _run(command, f"psql on {database}", stdin=sql)


def wait_until_ready(host: PostgresHost, *, timeout: float = 30.0) -> None:
    """Wait until the server accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            psql(host, "SELECT 1")
        except PostgresHostError:
            time.sleep(0.5)
        else:
            return
    raise PostgresHostError(f"PostgreSQL on port {host.port} is not ready")


DATABASES = ("goldsignals", "mlflow", "airflow")
"""Databases of host mode: signals and prices, MLflow's store, Airflow's."""


def write_pgpass(path: Path, port: int, credentials: dict[str, str]) -> Path:
    """Write a libpq password file (mode 600) for ``user -> password`` pairs.

    Clients that find it through ``PGPASSFILE`` connect with password-less
    URLs, so no password is written into configuration files, DAG files or
    command lines.

    Returns:
        ``path``.
    """

    def escaped(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    lines = [
        f"{host}:{port}:*:{escaped(user)}:{escaped(password)}"
        for user, password in credentials.items()
        for host in ("127.0.0.1", "localhost")
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(
        os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w"
    ) as f:
        f.write("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _superuser_connection(host: PostgresHost, database: str = "postgres") -> Any:
    """psycopg2 connection as the superuser over the Unix socket (autocommit)."""
    import psycopg2

    connection = psycopg2.connect(
        host=str(host.socket_dir),
        port=host.port,
        user=host.superuser,
        dbname=database,
        connect_timeout=10,
    )
    connection.autocommit = True
    return connection


def ensure_roles_and_databases(
    host: PostgresHost,
    *,
    owner: str,
    owner_password: str,
    reader: str,
    reader_password: str,
) -> list[str]:
    """Create (or update the passwords of) the roles and the databases.

    The owner role owns every database; the reader role can log in and is a
    member of ``goldsignals_readonly`` (granted SELECT by the migrations).
    Lookups are bound parameters; names and passwords in DDL (which takes no
    parameters) are quoted by psycopg2's ``sql`` module.

    Returns:
        One line per object created.
    """
    from psycopg2 import sql

    created = []
    connection = _superuser_connection(host)
    try:
        cursor = connection.cursor()
        for role, password in (
            (owner, owner_password),
            (reader, reader_password),
            ("goldsignals_readonly", None),
        ):
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            auth = (
                sql.SQL("LOGIN PASSWORD {}").format(sql.Literal(password))
                if password
                else sql.SQL("NOLOGIN")
            )
            statement = sql.SQL("{} ROLE {} {}").format(
                sql.SQL(verb), sql.Identifier(role), auth
            )
            cursor.execute(statement)
            if verb == "CREATE":
                created.append(f"role {role}")
        cursor.execute(
            sql.SQL("GRANT goldsignals_readonly TO {}").format(sql.Identifier(reader))
        )

        for name in DATABASES:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(name), sql.Identifier(owner)
                    )
                )
                created.append(f"database {name}")
    finally:
        connection.close()
    return created
