"""Airflow host control without starting Airflow: configuration and ports."""

from __future__ import annotations

import configparser
import socket
from pathlib import Path

import pytest

from goldsignals.airflow_host import (
    SERVICES,
    STEP_SERVER,
    STOP_ORDER,
    AirflowHost,
    AirflowHostError,
    airflow_environment,
    check_port_free,
    stop,
    write_config,
)
from goldsignals.step_server import SOCKET_ENV


def test_write_config_binds_loopback_and_keeps_secrets(tmp_path: Path) -> None:
    host = AirflowHost(home=tmp_path, dags_dir=tmp_path / "dags", port=8123)

    path = write_config(host)
    first = configparser.ConfigParser(interpolation=None)
    first.read(path)
    write_config(host)
    second = configparser.ConfigParser(interpolation=None)
    second.read(path)

    assert path.stat().st_mode & 0o777 == 0o600
    assert first["api"]["host"] == "127.0.0.1"
    assert first["core"]["executor"] == "LocalExecutor"
    assert first["core"]["simple_auth_manager_all_admins"] == "False"
    assert first["api_auth"]["jwt_secret"] == second["api_auth"]["jwt_secret"]
    assert len(first["api"]["secret_key"]) > 30


def test_check_port_free_names_port_and_setting() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        host = AirflowHost(home=Path("/nonexistent"), dags_dir=Path("/x"), port=port)

        pattern = rf"{port}, the port of the Airflow api-server, is already in use"
        with pytest.raises(AirflowHostError, match=pattern):
            check_port_free(host)


def test_step_server_is_a_service_named_to_the_tasks(tmp_path: Path) -> None:
    host = AirflowHost(home=tmp_path, dags_dir=tmp_path / "dags")
    off = AirflowHost(home=tmp_path, dags_dir=tmp_path / "dags", step_server=False)

    command = host.services[STEP_SERVER]

    assert command[1:3] == ["-m", "goldsignals.step_server"]
    assert command[-1] == str(tmp_path / "run" / "step-server.sock")
    assert airflow_environment(host)[SOCKET_ENV] == command[-1]
    assert STEP_SERVER not in off.services
    assert SOCKET_ENV not in airflow_environment(off)


def test_stop_ends_with_the_api_server_and_clears_stale_files(tmp_path: Path) -> None:
    host = AirflowHost(home=tmp_path, dags_dir=tmp_path / "dags")
    host.pid_dir.mkdir(parents=True)
    for name in STOP_ORDER:
        (host.pid_dir / f"{name}.pid").write_text("999999999")
    host.step_server_socket.write_text("")

    assert stop(host) == []
    assert sorted(STOP_ORDER) == sorted([*SERVICES, STEP_SERVER])
    assert STOP_ORDER[-1] == "api-server"
    assert list(host.pid_dir.iterdir()) == []
