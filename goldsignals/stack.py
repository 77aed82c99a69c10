"""Register a ZenML stack from a YAML file in ``stack_configs/``, idempotently.

The file names the stack and, per component type, a component's name, flavor
and configuration. ``${NAME}`` placeholders are filled from the environment,
with ``GOLDSIGNALS_HOME`` and ``GOLDSIGNALS_MLFLOW_TRACKING_URI`` defaulting to
the settings. Running it twice leaves the same stack and reports no change.
"""

from __future__ import annotations

import logging
import os
import string
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from goldsignals.config import Settings
from goldsignals.errors import GoldSignalsError

logger = logging.getLogger(__name__)


class StackConfigError(GoldSignalsError, ValueError):
    """A stack YAML file is missing, malformed or names an unknown variable."""


class ComponentSpec(BaseModel):
    """One stack component as written in the YAML file."""

    name: str
    flavor: str
    configuration: dict[str, Any] = Field(default_factory=dict)


class StackSpec(BaseModel):
    """A stack: its name and one component per component type."""

    name: str
    components: dict[str, ComponentSpec]


def stack_variables(settings: Settings) -> dict[str, str]:
    """Placeholder values: the environment, plus defaults from ``settings``."""
    return {
        "GOLDSIGNALS_HOME": str(settings.home),
        "GOLDSIGNALS_MLFLOW_TRACKING_URI": settings.tracking_uri,
        "GOLDSIGNALS_DAGS_DIR": str(settings.dags_dir),
        **os.environ,
    }


def load_stack_spec(path: Path, variables: dict[str, str]) -> StackSpec:
    """Read and validate a stack file, filling ``${NAME}`` placeholders.

    Raises:
        StackConfigError: If the file is missing or invalid, or uses a
            variable that is not set (named in the message).
    """
    if not path.is_file():
        raise StackConfigError(
            f"stack file {path} does not exist; pick one in stack_configs/"
        )
    try:
        text = string.Template(path.read_text()).substitute(variables)
    except KeyError as exc:
        raise StackConfigError(
            f"stack file {path} uses ${{{exc.args[0]}}}, which is not set; "
            "export it or add it to .env"
        ) from exc
    try:
        return StackSpec.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise StackConfigError(f"stack file {path} is not valid: {exc}") from exc


def _ensure_component(client: Any, kind: str, spec: ComponentSpec) -> str:
    from zenml.enums import StackComponentType

    component_type = StackComponentType(kind)
    config = {k: v for k, v in spec.configuration.items() if v not in ("", None)}
    try:
        existing = client.get_stack_component(
            component_type, spec.name, allow_name_prefix_match=False
        )
    except KeyError:
        client.create_stack_component(spec.name, spec.flavor, component_type, config)
        return f"created {kind} {spec.name} ({spec.flavor})"

    if existing.flavor_name != spec.flavor:
        raise StackConfigError(
            f"{kind} {spec.name} exists with flavor {existing.flavor_name}, the "
            f"stack file asks for {spec.flavor}; rename it in the stack file"
        )
    current = {k: v for k, v in existing.configuration.items() if k in config}
    if current == config:
        return f"unchanged {kind} {spec.name}"
    client.update_stack_component(spec.name, component_type, configuration=config)
    return f"updated {kind} {spec.name}"


def ensure_secret(name: str, values: dict[str, str]) -> str:
    """Create or update the ZenML secret ``name`` (stack files refer to it).

    Returns:
        What was done, without the values.
    """
    from zenml.client import Client

    client = Client()
    try:
        existing = client.get_secret(name, allow_partial_name_match=False)
    except KeyError:
        client.create_secret(name, values=values)
        return f"created secret {name}"
    if existing.secret_values == values:
        return f"unchanged secret {name}"
    client.update_secret(name, add_or_update_values=values)
    return f"updated secret {name}"


def register_stack(spec: StackSpec, *, activate: bool = True) -> list[str]:
    """Create or update the components and the stack; optionally activate it.

    Returns:
        One line per action taken, e.g. ``created orchestrator x (local)``.
    """
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    actions = [_ensure_component(client, k, c) for k, c in spec.components.items()]
    wanted = {StackComponentType(k): c.name for k, c in spec.components.items()}

    try:
        stack = client.get_stack(spec.name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack(spec.name, components=wanted)
        actions.append(f"created stack {spec.name}")
    else:
        current = {kind: parts[0].name for kind, parts in stack.components.items()}
        if current == wanted:
            actions.append(f"unchanged stack {spec.name}")
        else:
            client.update_stack(spec.name, component_updates=wanted)
            actions.append(f"updated stack {spec.name}")

    if activate:
        client.activate_stack(spec.name)
        actions.append(f"active stack is {spec.name}")
    logger.debug("Stack registration: %s", actions)
    return actions
