"""The command line as a user calls it: clear one-line errors, exit status 2."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.helpers import goldsignals, isolated_env


def _goldsignals(
    home: Path, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return goldsignals(isolated_env(home, **(extra or {})), *args, check=False)


def test_run_unknown_pipeline_named_and_nothing_written(tmp_path: Path) -> None:
    result = _goldsignals(tmp_path / "home", "run", "nosuch")

    assert result.returncode == 2
    assert "unknown pipeline 'nosuch'" in result.stderr
    assert not (tmp_path / "home").exists()


def test_signals_limit_zero_rejected(tmp_path: Path) -> None:
    result = _goldsignals(tmp_path, "signals", "--limit", "0")

    assert result.returncode == 2
    assert "--limit" in result.stderr


def test_state_folder_that_cannot_be_made_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")

    result = _goldsignals(blocker / "state", "signals")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: Not a directory: {blocker / 'state'}; check that the path exists "
        "and is writable by this user, or point GOLDSIGNALS_HOME at a folder that is"
    ]


def test_evaluate_out_naming_a_file_is_refused_before_any_work(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.txt"
    report.write_text("kept\n")

    result = _goldsignals(tmp_path / "home", "evaluate", "--out", str(report))
    below = _goldsignals(tmp_path / "home", "evaluate", "--out", str(report / "sub"))

    assert result.returncode == 2
    assert f"--out {report}: {report} is a file; name a folder" in result.stderr
    assert f"--out {report / 'sub'}: {report} is a file" in below.stderr
    assert report.read_text() == "kept\n"


def test_rollback_without_a_reason_is_refused(tmp_path: Path) -> None:
    result = _goldsignals(tmp_path / "home", "model", "rollback", "--reason", " ")

    assert result.returncode == 2
    assert "--reason is empty" in result.stderr
    assert not (tmp_path / "home").exists()


def test_misspelt_setting_stops_the_command(tmp_path: Path) -> None:
    result = _goldsignals(tmp_path, "signals", extra={"GOLDSIGNALS_TICKR": "SI=F"})

    assert result.returncode == 2
    assert "GOLDSIGNALS_TICKR is not a goldsignals setting; did you mean " in (
        result.stderr
    )


@pytest.mark.e2e
def test_run_inference_without_stack_says_register(tmp_path: Path) -> None:
    result = _goldsignals(tmp_path, "run", "inference")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: the active")
    assert "`goldsignals stack`" in result.stderr


@pytest.mark.e2e
def test_run_training_before_features_says_run_features(tmp_path: Path) -> None:
    assert _goldsignals(tmp_path, "stack").returncode == 0

    result = _goldsignals(tmp_path, "run", "training")

    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "run the feature engineering pipeline first" in last
    assert "train_set_scaled" in last


@pytest.mark.e2e
def test_bad_ticker_setting_is_one_error_line(tmp_path: Path) -> None:
    result = _goldsignals(tmp_path, "signals", extra={"GOLDSIGNALS_TICKER": "GC/F"})

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: GOLDSIGNALS_TICKER='GC/F': ticker 'GC/F' is not a Yahoo ticker; "
        "use a symbol such as 'GC=F' (fix or unset it in the environment or .env; "
        "the README's Settings table lists each setting)"
    ]


def test_bad_model_name_setting_is_named_before_anything_runs(tmp_path: Path) -> None:
    extra = {"GOLDSIGNALS_MODEL_NAME": "bad/name x"}

    result = _goldsignals(tmp_path, "signals", extra=extra)

    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: GOLDSIGNALS_MODEL_NAME='bad/name x'")
    assert "'gold-direction-classifier'" in last


def test_one_line_joins_rules_and_hint() -> None:
    from goldsignals.cli import one_line

    message = "prices break 2 rule(s):\n- close > 0: 2024-01-05\n- dates: x\nFix it."

    assert (
        one_line(message)
        == "prices break 2 rule(s): close > 0: 2024-01-05; dates: x Fix it."
    )


@pytest.mark.e2e
def test_run_with_malformed_config_yaml_named(tmp_path: Path) -> None:
    assert _goldsignals(tmp_path, "stack").returncode == 0
    config = tmp_path / "bad.yaml"
    config.write_text("steps:\n  model_trainer: [unclosed\n")

    result = _goldsignals(tmp_path, "run", "training", "--config", str(config))

    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2
    assert last.startswith(f"error: pipeline configuration {config} is not valid YAML")
    assert "at line" in last


def test_run_with_misspelt_step_in_config_named(tmp_path: Path) -> None:
    assert _goldsignals(tmp_path, "stack").returncode == 0
    config = tmp_path / "typo.yaml"
    config.write_text("steps:\n  model_traner:\n    parameters: {}\n")

    result = _goldsignals(tmp_path, "run", "training", "--config", str(config))

    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2
    assert "configures step(s) ['model_traner']" in last
    assert "its steps are model_trainer, model_evaluator" in last


def test_configured_steps_are_the_step_modules() -> None:
    from tests.helpers import ROOT
    from zenml_pipelines import STEPS

    modules = {path.stem for path in (ROOT / "steps").glob("[!_]*.py")}

    assert sorted(name for names in STEPS.values() for name in names) == sorted(modules)


def test_run_with_missing_config_file_named(tmp_path: Path) -> None:
    assert _goldsignals(tmp_path, "stack").returncode == 0

    result = _goldsignals(tmp_path, "run", "training", "--config", "nope.yaml")

    assert result.returncode == 2
    assert "nope.yaml does not exist" in result.stderr


@pytest.mark.e2e
def test_run_failing_step_ends_with_step_error(tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2024-01-04,10,11,9,10,1\n"
        "2024-01-05,10,11,9,-5,1\n"
    )
    assert _goldsignals(tmp_path, "stack").returncode == 0

    csv = {"GOLDSIGNALS_PRICE_SOURCE": "csv", "GOLDSIGNALS_PRICE_CSV": str(prices)}

    result = _goldsignals(tmp_path, "run", "feature-engineering", extra=csv)

    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2
    assert last.startswith("error: pipeline gold_feature_engineering")
    assert "step data_loader failed" in last
    assert "2024-01-05 (-5.0)" in last
    assert "never stored" in last
    with sqlite3.connect(tmp_path / "data" / "signals.db") as connection:
        stored = connection.execute("SELECT count(*) FROM prices").fetchone()
    assert stored == (0,)


def test_unparsable_signals_url_is_one_error_line(tmp_path: Path) -> None:
    url = "nonsense:secret@nowhere"

    result = _goldsignals(
        tmp_path, "signals", extra={"GOLDSIGNALS_SIGNALS_DB_URL": url}
    )

    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: signals database URL 'nonsense:***@nowhere'")
    assert "secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_names_its_value_and_what_to_do(tmp_path: Path) -> None:
    result = _goldsignals(
        tmp_path, "signals", extra={"GOLDSIGNALS_POSTGRES_PORT": "abc"}
    )

    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: GOLDSIGNALS_POSTGRES_PORT='abc':")
    assert "fix or unset it" in last


def test_signals_from_a_missing_sqlite_file_names_it_and_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "typo" / "signals.db"
    url = {"GOLDSIGNALS_SIGNALS_DB_URL": f"sqlite:///{missing}"}

    result = _goldsignals(tmp_path / "home", "signals", extra=url)

    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: no signals database at {missing}")
    assert "GOLDSIGNALS_SIGNALS_DB_URL" in last
    assert not missing.parent.exists()


def test_signals_before_any_run_says_how_to_make_some(tmp_path: Path) -> None:
    result = _goldsignals(tmp_path, "signals")

    assert result.returncode == 0
    assert result.stdout.startswith("No signals yet: run `goldsignals run all`")
    assert not (tmp_path / "data" / "signals.db").exists()
