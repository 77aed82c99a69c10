"""Stack files in stack_configs/: placeholders, validation, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldsignals.config import PROJECT_ROOT, Settings
from goldsignals.stack import StackConfigError, load_stack_spec, stack_variables


def test_load_stack_spec_embedded_fills_settings(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    variables = {
        "GOLDSIGNALS_HOME": str(tmp_path),
        "GOLDSIGNALS_MLFLOW_TRACKING_URI": settings.tracking_uri,
    }

    spec = load_stack_spec(PROJECT_ROOT / "stack_configs/embedded.yaml", variables)

    assert set(spec.components) == {
        "orchestrator",
        "artifact_store",
        "experiment_tracker",
        "model_registry",
    }
    tracker = spec.components["experiment_tracker"].configuration
    assert tracker["tracking_uri"] == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    store = spec.components["artifact_store"].configuration
    assert store["path"] == f"{tmp_path}/artifacts"


def test_stack_variables_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOLDSIGNALS_MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")

    variables = stack_variables(Settings(home=tmp_path))

    assert variables["GOLDSIGNALS_MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"


def test_load_stack_spec_unset_variable_named(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("name: s\ncomponents:\n  orchestrator: {name: ${NOPE}}\n")

    with pytest.raises(StackConfigError, match=r"uses \$\{NOPE\}, which is not set"):
        load_stack_spec(path, {})


def test_load_stack_spec_missing_flavor_rejected(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("name: s\ncomponents:\n  orchestrator: {name: o}\n")

    with pytest.raises(
        StackConfigError, match=r"(?s)is not valid.*orchestrator\.flavor"
    ):
        load_stack_spec(path, {})


def test_load_stack_spec_missing_file_named(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError, match=r"absent\.yaml does not exist"):
        load_stack_spec(tmp_path / "absent.yaml", {})


def test_settings_bad_ticker_rejected() -> None:
    with pytest.raises(ValueError, match="ticker 'GC F' is not a Yahoo ticker"):
        Settings(ticker="GC F")
