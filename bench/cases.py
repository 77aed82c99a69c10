"""Fresh state folders for measured runs, their environments and price slices.

Every measured run gets its own state folder (``GOLDSIGNALS_HOME``) with the
ZenML configuration, the artifact store, MLflow, the signals database and
Airflow's home inside it, so no run sees another's models or artifacts and
none touches the developer's own ``.goldsignals``. Commands run with the
state folder as working directory, so a ``.env`` in the project is not read.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.measure import BenchError, run_measured
from goldsignals.config import OFFLINE_ENVIRONMENT

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
PYTHON = Path(sys.executable)
GOLDSIGNALS = PYTHON.with_name("goldsignals")
AIRFLOW = PYTHON.with_name("airflow")
STACK_CONFIGS = ROOT / "stack_configs"

OFFLINE = {**OFFLINE_ENVIRONMENT, "SCARF_ANALYTICS": "false"}
KEPT_SETTINGS = (
    "GOLDSIGNALS_SEED_CSV",
    "GOLDSIGNALS_DEFAULT_SEED_CSV",
    "GOLDSIGNALS_SHARED_DATA",
)
"""The only GOLDSIGNALS_* variables passed on from the caller."""


@dataclass(frozen=True)
class Case:
    """A fresh state folder and the environment of the commands run on it.

    Attributes:
        name: Short name, used for folders and log files.
        home: The state folder (``GOLDSIGNALS_HOME``).
        env: The whole environment of its commands.
        logs: Folder of the commands' output (kept after the case).
        prices: The price file its pipelines read (``GOLDSIGNALS_PRICE_CSV``).
    """

    name: str
    home: Path
    env: dict[str, str]
    logs: Path
    prices: Path

    def log(self, label: str) -> Path:
        """The log file of the command labelled ``label``."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)
        return self.logs / f"{safe}.log"

    def with_env(self, **extra: str) -> Case:
        """The same case with more environment variables."""
        return Case(self.name, self.home, {**self.env, **extra}, self.logs, self.prices)


def seed_csv() -> Path:
    """The real 25-year gold history (``GOLDSIGNALS_SEED_CSV``, as in the Makefile).

    Raises:
        BenchError: The file does not exist.
    """
    default = ROOT.parent / "shared" / "data" / "gold_futures_daily.csv"
    given = os.environ.get("GOLDSIGNALS_SEED_CSV")
    path = Path(given or os.environ.get("GOLDSIGNALS_DEFAULT_SEED_CSV") or default)
    if not path.is_file():
        raise BenchError(
            f"price history {path} not found; set GOLDSIGNALS_SEED_CSV to the real "
            "gold_futures_daily.csv (the Makefile points it at ../shared/data)"
        )
    return path


def history_slice(source: Path, years: int, target: Path) -> tuple[Path, int]:
    """Write the last ``years`` calendar years of a price CSV.

    Args:
        source: A price CSV with a ``Date`` column, ascending.
        years: How many years before its last date to keep.
        target: The CSV to write.

    Returns:
        The written path and its number of rows.
    """
    frame = pd.read_csv(source)
    dates = pd.to_datetime(frame["Date"])
    cutoff = dates.iloc[-1] - pd.DateOffset(years=years)
    sliced = frame.loc[dates > cutoff]
    target.parent.mkdir(parents=True, exist_ok=True)
    sliced.to_csv(target, index=False)
    logger.info("Price slice %s: last %d years, %d rows", target, years, len(sliced))
    return target, len(sliced)


def case_environment(home: Path, prices: Path, **extra: str) -> dict[str, str]:
    """The caller's environment, its state settings pointing into ``home``.

    Every goldsignals, ZenML and Airflow setting points into ``home``, and
    prices are read from ``prices``.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ZENML_", "AIRFLOW_", "MLFLOW_TRACKING", "GOLDSIGNALS_"))
        or key in KEPT_SETTINGS
    }
    path = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(OFFLINE)
    env.update(
        PYTHONPATH=path,
        GOLDSIGNALS_HOME=str(home),
        GOLDSIGNALS_PRICE_SOURCE="csv",
        GOLDSIGNALS_PRICE_CSV=str(prices),
        GOLDSIGNALS_AIRFLOW_DAGS_DIR=str(home / "dags"),
        ZENML_CONFIG_PATH=str(home / "zenml"),
        ZENML_LOCAL_STORES_PATH=str(home),
        ZENML_CUSTOM_SOURCE_ROOT=str(ROOT),
        AIRFLOW_HOME=str(home / "airflow"),
    )
    env.update(extra)
    return env


def new_case(work: Path, logs: Path, name: str, prices: Path, **extra: str) -> Case:
    """Create an empty state folder ``work/name`` and its environment."""
    home = work / name
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (logs / name).mkdir(parents=True, exist_ok=True)
    env = case_environment(home, prices, **extra)
    return Case(name=name, home=home, env=env, logs=logs / name, prices=prices)


def remove_case(case: Case, *, keep: bool) -> None:
    """Delete the state folder unless ``keep``."""
    if keep:
        logger.info("Kept state folder %s", case.home)
        return
    shutil.rmtree(case.home, ignore_errors=True)


def goldsignals(case: Case, *args: str, timeout: float = 900.0) -> Any:
    """Run the project's command line on the case, measured."""
    label = "goldsignals_" + "_".join(args)
    return run_measured(
        [str(GOLDSIGNALS), *args],
        env=case.env,
        cwd=case.home,
        log=case.log(label),
        timeout=timeout,
    )


def zenml_runs(case: Case) -> list[dict[str, Any]]:
    """The ZenML pipeline runs of the case's store with their step times.

    Runs ``python -m bench.zenml_runs`` in the case's environment (ZenML
    reads its configuration path once, at import).
    """
    finished = run_measured(
        [str(PYTHON), "-m", "bench.zenml_runs"],
        env=case.env,
        cwd=case.home,
        log=case.log("zenml_runs"),
        timeout=300.0,
    )
    lines = finished.log.read_text().strip().splitlines()
    records: list[dict[str, Any]] = json.loads(lines[-1])
    return records


def stack_config(name: str) -> str:
    """Absolute path of a stack YAML of the project."""
    return str(STACK_CONFIGS / name)
