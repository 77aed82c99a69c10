"""Settings and the state folder."""

from __future__ import annotations

import grp
import json
import os
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from goldsignals.cleaning import MAX_DAILY_MOVE
from goldsignals.config import Settings, create_private_folder
from tests.helpers import ROOT
from zenml_pipelines.airflow_dags import step_environment


def test_state_folder_is_created_private(tmp_path: Path) -> None:
    home = tmp_path / "state" / "home"

    create_private_folder(home)

    info = home.stat()
    groups = {group.gr_name: group.gr_gid for group in grp.getgrall()}
    if os.geteuid() == 0 and "postgres" in groups:
        assert info.st_mode & 0o777 == 0o750
        assert info.st_gid == groups["postgres"]
    else:
        assert info.st_mode & 0o777 == 0o700


def test_existing_state_folder_is_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "shared"
    home.mkdir(mode=0o755)
    home.chmod(0o755)

    create_private_folder(home)

    assert home.stat().st_mode & 0o777 == 0o755


def test_step_environment_carries_dotenv_settings_but_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GOLDSIGNALS_MAX_PRICE_AGE_DAYS", "GOLDSIGNALS_TICKER"):
        monkeypatch.delenv(name, raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "GOLDSIGNALS_MODEL_NAME=silver-direction\n"
        "GOLDSIGNALS_TICKER=si=f\n"
        "GOLDSIGNALS_MAX_PRICE_AGE_DAYS=7\n"
        "GOLDSIGNALS_DB_PASSWORD=owner-secret\n"
        "GOLDSIGNALS_MLFLOW_TRACKING_PASSWORD=tracking-secret\n"
    )
    settings = Settings(_env_file=dotenv, home=tmp_path / "state")  # type: ignore[call-arg]

    environment = step_environment(settings)

    assert environment["GOLDSIGNALS_MODEL_NAME"] == "silver-direction"
    assert environment["GOLDSIGNALS_TICKER"] == "SI=F"
    assert environment["GOLDSIGNALS_MAX_PRICE_AGE_DAYS"] == "7"
    assert environment["GOLDSIGNALS_HOME"] == str(tmp_path / "state")
    assert "secret" not in json.dumps(environment)


def test_settings_max_daily_move_defaults_to_the_cleaning_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GOLDSIGNALS_MAX_DAILY_MOVE", raising=False)
    settings = Settings(home=tmp_path)

    environment = step_environment(settings)

    assert settings.max_daily_move == MAX_DAILY_MOVE
    assert environment["GOLDSIGNALS_MAX_DAILY_MOVE"] == str(MAX_DAILY_MOVE)


@pytest.mark.parametrize("value", ["0", "-0.1"])
def test_settings_max_daily_move_must_be_above_zero(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("GOLDSIGNALS_MAX_DAILY_MOVE", value)

    with pytest.raises(ValidationError, match=r"max_daily_move\n.*greater than 0"):
        Settings()


def _make_value(folder: Path, name: str, **environment: str) -> str:
    """The value ``make`` gives variable ``name`` when run in ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDSIGNALS_")}
    rule = f'show: ; @echo "$${name}"'
    makefile = str(ROOT / "Makefile")
    result = subprocess.run(
        ["make", "--no-print-directory", "-f", makefile, "--eval", rule, "show"],
        cwd=folder,
        env={**env, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_makefile_accepts_old_prices_only_when_nothing_else_is_set(
    tmp_path: Path,
) -> None:
    name = "GOLDSIGNALS_MAX_PRICE_AGE_DAYS"

    offline_default = _make_value(tmp_path, name)
    (tmp_path / ".env").write_text(f'{name}="7"\n')
    from_dotenv = _make_value(tmp_path, name)
    from_environment = _make_value(tmp_path, name, **{name: "3"})

    assert offline_default == "0"
    assert from_dotenv == "7"
    assert from_environment == "3"
