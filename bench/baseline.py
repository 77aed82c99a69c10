"""The floor process and the start-up costs every command pays, measured.

The floor runs ``python -m bench.floor`` as a subprocess (measured whole by
wait4, phases timed inside it). Start-up probes time a bare interpreter and
the imports the product's processes make, each in a fresh interpreter.
"""

from __future__ import annotations

import json
import logging

from bench.cases import GOLDSIGNALS, PYTHON, Case
from bench.floor import COMPUTE_PHASES
from bench.measure import Measurement, run_measured

logger = logging.getLogger(__name__)

FLOOR = "floor"
STARTUP = "startup"
FLOOR_PROCESS = "whole process (start, imports, all phases)"
FLOOR_STARTUP = "start-up and imports"

STARTUP_PROBES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("python -c pass", (str(PYTHON), "-c", "pass")),
    ("import the floor's code", (str(PYTHON), "-c", "import bench.floor_work")),
    ("import zenml", (str(PYTHON), "-c", "import zenml")),
    ("import mlflow", (str(PYTHON), "-c", "import mlflow")),
    (
        "zenml Client().active_stack",
        (str(PYTHON), "-c", "from zenml.client import Client; Client().active_stack"),
    ),
    (
        "import the three pipelines (steps)",
        (
            str(PYTHON),
            "-c",
            "import zenml_pipelines.feature_engineering, zenml_pipelines.training, "
            "zenml_pipelines.inference",
        ),
    ),
    ("import airflow.sdk", (str(PYTHON), "-c", "import airflow.sdk")),
    ("goldsignals --help", (str(GOLDSIGNALS), "--help")),
)


def measure_floor(case: Case, *, label: str = "") -> list[Measurement]:
    """Run the floor on the case's price file once.

    Returns:
        The whole process, start-up and imports (process minus the compute
        phases), and one measurement per compute phase; the names are
        prefixed with ``label``.
    """
    work = case.home / "floor"
    finished = run_measured(
        [str(PYTHON), "-m", "bench.floor", str(case.prices), str(work)],
        env=case.env,
        cwd=case.home,
        log=case.log(f"floor{label}"),
        timeout=600.0,
    )
    result = json.loads(finished.log.read_text().strip().splitlines()[-1])
    phases: dict[str, dict[str, float]] = result["phases"]
    compute_wall = sum(phases[name]["wall_s"] for name in COMPUTE_PHASES)
    compute_cpu = sum(phases[name]["cpu_s"] for name in COMPUTE_PHASES)

    rows = [
        Measurement(
            FLOOR,
            f"{label}{FLOOR_PROCESS}",
            finished.wall_s,
            finished.cpu_s,
            finished.rss_mb,
            {"facts": result["facts"], "compute_wall_s": compute_wall},
        ),
        Measurement(
            FLOOR,
            f"{label}{FLOOR_STARTUP}",
            finished.wall_s - compute_wall,
            finished.cpu_s - compute_cpu,
            phases["imports"]["rss_mb"],
            {"imports_phase_s": phases["imports"]["wall_s"]},
        ),
    ]
    rows += [
        Measurement(
            FLOOR,
            f"{label}{name}",
            phases[name]["wall_s"],
            phases[name]["cpu_s"],
            phases[name]["rss_mb"],
        )
        for name in COMPUTE_PHASES
    ]
    return rows


def measure_startup(case: Case) -> list[Measurement]:
    """Time each start-up probe in a fresh interpreter on the case's state.

    The case should have a registered stack, so ZenML finds its
    configuration as a pipeline run does. A probe that fails is left out
    with a warning naming its log.
    """
    rows = []
    for name, command in STARTUP_PROBES:
        finished = run_measured(
            list(command),
            env=case.env,
            cwd=case.home,
            log=case.log(f"probe_{name}"),
            check=False,
        )
        if finished.returncode != 0:
            logger.warning("Start-up probe %r failed; see %s", name, finished.log)
            continue
        rows.append(
            Measurement(STARTUP, name, finished.wall_s, finished.cpu_s, finished.rss_mb)
        )
    return rows
