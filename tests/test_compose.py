"""docker-compose.yaml, resolved offline by Debian's docker-compose (1.29).

These machines have no Docker engine, so nothing starts here: the tests let
``docker-compose config`` interpolate the file with a made-up ``.env`` and
check what would otherwise only show when the stack runs: the services, ports
bound to 127.0.0.1 only, health checks and start order, one Airflow
configuration for all Airflow services, and credentials from ``.env`` only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_TEMPLATE = ROOT / "docker" / "compose.env.example"
DOCKER_COMPOSE = shutil.which("docker-compose")

pytestmark = pytest.mark.skipif(
    DOCKER_COMPOSE is None,
    reason="docker-compose is not installed (Debian package docker-compose; "
    "`make system-deps` installs it)",
)

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
)
SERVICES = {"postgres", "mlflow", "mysql", "zenml-server", *AIRFLOW_SERVICES}
USES_POSTGRES = ("mlflow", *AIRFLOW_SERVICES)
REQUIRED_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*):\?")
ANY_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)([^}]*)\}")
INTERPOLATED = re.compile(r"\$\{[A-Z][A-Z0-9_]*:\?[^}]+\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+]*://[^/\s@:]+:([^/\s@]+)@")


def _template() -> dict[str, str]:
    lines = ENV_TEMPLATE.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return dict(pairs)


def _sample_env(folder: Path, *, drop: str | None = None) -> Path:
    """The template with made-up values for its empty ones, without ``drop``."""
    values = {
        name: value or f"made-up-{name.lower()}-7Qx"
        for name, value in _template().items()
        if name != drop
    }
    path = folder / f"compose-{drop or 'all'}.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def _compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run docker-compose on the project's file with only ``env_file`` as .env.

    The environment is emptied (but for PATH) because variables of the
    calling shell would win over the file.
    """
    assert DOCKER_COMPOSE is not None
    return subprocess.run(
        [
            DOCKER_COMPOSE,
            "--file",
            str(COMPOSE_FILE),
            "--env-file",
            str(env_file),
            *args,
        ],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def sample_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sample_env(tmp_path_factory.mktemp("compose"))


@pytest.fixture(scope="module")
def resolved(sample_env: Path) -> dict[str, Any]:
    """The compose file as docker-compose resolves it with the sample .env."""
    result = _compose(sample_env, "config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def _yaml_strings(raw: str) -> str:
    """Every key and string value of a YAML document (not its comments)."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield str(key)
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)
        elif isinstance(node, str):
            yield node

    return "\n".join(walk(yaml.safe_load(raw)))


def _host_ip(port: str | dict[str, Any]) -> str | None:
    if isinstance(port, dict):
        return port.get("host_ip")
    parts = str(port).split(":")
    return parts[0] if len(parts) == 3 else None


def _mount(volume: str | dict[str, Any]) -> tuple[str, str]:
    if isinstance(volume, dict):
        return str(volume.get("source")), str(volume["target"])
    source, target = volume.split(":")[:2]
    return source, target


def test_compose_config_passes_without_warnings(sample_env: Path) -> None:
    result = _compose(sample_env, "config", "-q")

    assert result.returncode == 0, result.stderr
    assert "not set" not in result.stderr


def test_compose_defines_every_service(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == SERVICES


def test_compose_published_ports_bind_loopback_only(resolved: dict[str, Any]) -> None:
    published = {
        name: [_host_ip(port) for port in service.get("ports", [])]
        for name, service in resolved["services"].items()
        if service.get("ports")
    }

    assert {"postgres", "mlflow", "zenml-server", "airflow-api-server"} <= set(
        published
    )
    assert {
        name: ips for name, ips in published.items() if set(ips) != {"127.0.0.1"}
    } == {}


def test_compose_postgres_has_healthcheck_volume_and_init_script(
    resolved: dict[str, Any],
) -> None:
    postgres = resolved["services"]["postgres"]
    mounts = dict(_mount(volume) for volume in postgres["volumes"])
    by_target = {target: source for source, target in mounts.items()}
    init_scripts = [
        Path(source)
        for source, target in mounts.items()
        if target.startswith("/docker-entrypoint-initdb.d/")
    ]

    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert by_target["/var/lib/postgresql/data"] in resolved["volumes"]
    assert len(init_scripts) == 1
    assert os.access(init_scripts[0], os.X_OK), f"{init_scripts[0]} is not executable"


def test_compose_services_wait_for_healthy_postgres(resolved: dict[str, Any]) -> None:
    services = resolved["services"]

    for name in USES_POSTGRES:
        condition = services[name]["depends_on"]["postgres"]["condition"]
        assert condition == "service_healthy", name
    for name in AIRFLOW_SERVICES[1:]:
        condition = services[name]["depends_on"]["airflow-init"]["condition"]
        assert condition == "service_completed_successfully", name


def test_compose_waits_only_on_services_with_healthchecks(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    awaited = {
        dependency
        for service in services.values()
        for dependency, rule in service.get("depends_on", {}).items()
        if rule["condition"] == "service_healthy"
    }

    assert awaited >= {"postgres", "mysql", "mlflow", "zenml-server"}
    assert [name for name in awaited if "healthcheck" not in services[name]] == []


def test_compose_airflow_services_share_one_configuration(
    resolved: dict[str, Any],
) -> None:
    services = [resolved["services"][name] for name in AIRFLOW_SERVICES]
    environment = services[0]["environment"]

    assert {service["image"] for service in services} == {services[0]["image"]}
    assert all(service["environment"] == environment for service in services)
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert environment["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert environment["AIRFLOW__USAGE_DATA_COLLECTION__ENABLED"] == "False"
    assert environment["ZENML_ANALYTICS_OPT_IN"] == "false"
    assert environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-api-server:8080/execution/"
    )
    assert environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(
        "@postgres:5432/airflow"
    )
    assert environment["GOLDSIGNALS_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_compose_deploys_against_a_zenml_server_without_credentials(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    airflow = services["airflow-scheduler"]["environment"]
    server = services["zenml-server"]["environment"]

    assert server["ZENML_SERVER_AUTH_SCHEME"] == "NO_AUTH"
    assert airflow["ZENML_STORE_URL"] == "http://zenml-server:8080"
    assert airflow["GOLDSIGNALS_ZENML_SERVER_URL"] == airflow["ZENML_STORE_URL"]
    assert [key for key in airflow if key.startswith("ZENML_STORE_")] == [
        "ZENML_STORE_URL"
    ]


def test_compose_mounts_dags_into_airflow(resolved: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        service = resolved["services"][name]
        dags_folder = service["environment"]["AIRFLOW__CORE__DAGS_FOLDER"]
        mounts = [_mount(volume) for volume in service["volumes"]]

        assert (str(ROOT / "dags"), dags_folder) in mounts, name


def test_compose_file_holds_no_literal_secret() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    text = _yaml_strings(COMPOSE_FILE.read_text())
    secrets = {
        f"{name}.{key}": value
        for name, service in raw["services"].items()
        for key, value in service.get("environment", {}).items()
        if SECRET_NAME.search(key) and not key.endswith("_FILE")
    }
    required = set(REQUIRED_VARIABLE.findall(text))

    assert secrets, "no credential found in the environment of any service"
    assert {k: v for k, v in secrets.items() if not INTERPOLATED.fullmatch(v)} == {}
    assert [m for m in URL_WITH_PASSWORD.findall(text) if "${" not in m] == []
    assert [
        name + rest
        for name, rest in ANY_VARIABLE.findall(text)
        if name in required and not rest.startswith(":?")
    ] == []


def test_compose_env_template_lists_every_required_variable() -> None:
    required = set(REQUIRED_VARIABLE.findall(_yaml_strings(COMPOSE_FILE.read_text())))
    template = _template()

    assert required - set(template) == set()
    assert {k: v for k, v in template.items() if SECRET_NAME.search(k) and v} == {}


@pytest.mark.parametrize(
    "variable",
    ["GOLDSIGNALS_DB_PASSWORD", "ZENML_MYSQL_PASSWORD", "AIRFLOW_JWT_SECRET"],
)
def test_compose_missing_variable_is_named(tmp_path: Path, variable: str) -> None:
    result = _compose(_sample_env(tmp_path, drop=variable), "config", "-q")

    assert result.returncode != 0
    assert f"set {variable} in .env" in result.stderr
