"""The three ZenML pipelines of goldsignals and their YAML configurations."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).parent / "configs"

PIPELINES: dict[str, tuple[str, str]] = {
    "feature-engineering": (
        "zenml_pipelines.feature_engineering",
        "feature_engineering",
    ),
    "training": ("zenml_pipelines.training", "training"),
    "inference": ("zenml_pipelines.inference", "inference"),
}
"""Command-line name -> (module, pipeline function); in daily order."""


def config_path(name: str) -> Path:
    """The YAML file holding the step parameters of pipeline ``name``."""
    return CONFIG_DIR / f"{name.replace('-', '_')}.yaml"


def configured_pipeline(name: str, config: Path | None = None) -> Any:
    """Import pipeline ``name`` and apply its YAML configuration.

    Raises:
        KeyError: If ``name`` is not one of :data:`PIPELINES`.
    """
    module_name, attribute = PIPELINES[name]
    pipeline = getattr(importlib.import_module(module_name), attribute)
    return pipeline.with_options(config_path=str(config or config_path(name)))
