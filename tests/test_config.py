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
from goldsignals.cli import settings_problems
from goldsignals.config import Settings, create_private_folder, get_settings
from goldsignals.errors import SettingsError
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


def _make_environment(folder: Path) -> dict[str, str]:
    """The ``GOLDSIGNALS_*`` variables ``make`` exports when run in ``folder``."""
    names = ("GOLDSIGNALS_DEFAULT_MAX_PRICE_AGE_DAYS", "GOLDSIGNALS_DEFAULT_SEED_CSV")
    return {name: _make_value(folder, name) for name in names}


@pytest.mark.parametrize(
    "line",
    [
        'GOLDSIGNALS_MAX_PRICE_AGE_DAYS="7"',
        "export GOLDSIGNALS_MAX_PRICE_AGE_DAYS=7",
        "GOLDSIGNALS_MAX_PRICE_AGE_DAYS = 7",
        "GOLDSIGNALS_MAX_PRICE_AGE_DAYS=7 # one week",
    ],
)
def test_makefile_offline_defaults_yield_to_any_dotenv_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    name = "GOLDSIGNALS_MAX_PRICE_AGE_DAYS"
    made = _make_environment(tmp_path)
    for key in os.environ:
        if key.startswith("GOLDSIGNALS_"):
            monkeypatch.delenv(key)
    for key, value in made.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)

    offline = get_settings()
    (tmp_path / ".env").write_text(line + "\n")
    from_dotenv = get_settings()
    monkeypatch.setenv(name, "3")
    from_environment = get_settings()

    assert offline.max_price_age_days == 0
    assert offline.seed_csv == tmp_path.parent / "shared/data/gold_futures_daily.csv"
    assert from_dotenv.max_price_age_days == 7
    assert from_environment.max_price_age_days == 3


def test_makefile_reads_no_setting_itself(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GOLDSIGNALS_HOME=~/elsewhere\n")

    exported = _make_value(tmp_path, "GOLDSIGNALS_HOME")

    assert exported == ""


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GOLDSIGNALS_HOME", "", "the path is empty"),
        ("GOLDSIGNALS_SEED_CSV", " ", "the path is empty"),
        ("GOLDSIGNALS_HISTORY_START", "garbage", "valid date"),
        ("GOLDSIGNALS_MAX_DAILY_MOVE", "inf", "finite number"),
        ("GOLDSIGNALS_YAHOO_BACKOFF_SECONDS", "nan", "finite number"),
        ("GOLDSIGNALS_MLFLOW_TRACKING_URI", "not-a-uri", "has no scheme"),
        ("GOLDSIGNALS_SEED_TICKER", "a b", "is not a Yahoo ticker"),
        ("GOLDSIGNALS_STACK_CONFIG", "", "the path is empty"),
        ("GOLDSIGNALS_AIRFLOW_DAGS_DIR", "", "the path is empty"),
        ("GOLDSIGNALS_ZENML_SERVER_URL", "localhost:8237", "is not an HTTP URL"),
        ("GOLDSIGNALS_HOME", "/", "holds more than goldsignals' state"),
        ("GOLDSIGNALS_HOME", "~", "holds more than goldsignals' state"),
        ("GOLDSIGNALS_HOME", str(ROOT), "holds more than goldsignals' state"),
        ("GOLDSIGNALS_HOME", str(ROOT.parent), "holds more than goldsignals' state"),
    ],
)
def test_bad_setting_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError) as caught:
        Settings()

    problem = settings_problems(caught.value)
    assert problem.startswith(f"{variable}=")
    assert message in problem


def test_relative_price_paths_become_absolute_for_airflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOLDSIGNALS_PRICE_CSV", "prices/gold.csv")
    monkeypatch.setenv("GOLDSIGNALS_SEED_TICKER", "gc=f")

    settings = Settings()

    assert settings.price_csv == tmp_path / "prices" / "gold.csv"
    assert settings.seed_ticker == "GC=F"
    variables = step_environment(settings)
    assert variables["GOLDSIGNALS_PRICE_CSV"] == str(tmp_path / "prices/gold.csv")


@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_misspelt_variable_is_refused_with_the_likely_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if where == "environment":
        monkeypatch.setenv("GOLDSIGNALS_TICKR", "SI=F")
    else:
        (tmp_path / ".env").write_text("GOLDSIGNALS_TICKR=SI=F\n")

    with pytest.raises(
        SettingsError,
        match=r"GOLDSIGNALS_TICKR is not a goldsignals setting; did you mean "
        r"GOLDSIGNALS_TICKER\?",
    ):
        get_settings()


def test_other_project_variables_are_not_settings_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOLDSIGNALS_TICKER", raising=False)
    for name in ("GOLDSIGNALS_SHARED_DATA", "GOLDSIGNALS_DEFAULT_TICKER"):
        monkeypatch.setenv(name, "SI=F")

    settings = get_settings()

    assert settings.ticker == "SI=F"


def test_csv_source_without_a_file_is_refused_up_front(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOLDSIGNALS_PRICE_SOURCE", "csv")
    monkeypatch.delenv("GOLDSIGNALS_PRICE_CSV", raising=False)

    with pytest.raises(ValidationError) as caught:
        Settings()

    assert settings_problems(caught.value).startswith(
        "GOLDSIGNALS_PRICE_SOURCE is 'csv' but GOLDSIGNALS_PRICE_CSV is not set; "
    )


@pytest.mark.parametrize("uri", ["file:/tmp/mlruns", "sqlite:////tmp/x.db"])
def test_tracking_uri_forms_mlflow_takes_are_accepted(
    monkeypatch: pytest.MonkeyPatch, uri: str
) -> None:
    monkeypatch.setenv("GOLDSIGNALS_MLFLOW_TRACKING_URI", uri)

    assert Settings().tracking_uri == uri


def test_state_folder_that_is_a_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x\n")
    monkeypatch.setenv("GOLDSIGNALS_HOME", str(afile))

    with pytest.raises(ValidationError, match="is a file; name a folder"):
        Settings()


def test_unparsable_dotenv_line_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        'GOLDSIGNALS_TICKER=GC=F\nGOLDSIGNALS_HOME="/tmp/state\n'
    )

    with pytest.raises(
        SettingsError,
        match=r"\.env line 2 cannot be read: 'GOLDSIGNALS_HOME=\"/tmp/state'; "
        r"write it as NAME=value",
    ):
        get_settings()


def test_misspelt_default_variable_suggests_the_default_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOLDSIGNALS_DEFAULT_SEED_CVS", "x.csv")

    with pytest.raises(SettingsError, match="mean GOLDSIGNALS_DEFAULT_SEED_CSV"):
        get_settings()
