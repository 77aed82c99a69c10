"""The embedded path: each pipeline run by ``goldsignals run`` on the local stack.

Each pipeline runs in its own subprocess, as a user runs it, on a fresh state
folder where only ``goldsignals stack`` ran before. The local orchestrator
runs every step inside that process, so the process is the step process.
ZenML's own run and step times are read afterwards from its store.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from bench.cases import Case, goldsignals, stack_config, zenml_runs
from bench.measure import Measurement

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"
PIPELINES = {
    "feature-engineering": "gold_feature_engineering",
    "training": "gold_training",
    "inference": "gold_inference",
}
"""Command-line name -> ZenML pipeline name, in daily order."""
STACK = "stack registration (fresh state folder)"
TOTAL = "all three pipelines"


def register_stack(case: Case, config: str, *, section: str) -> Measurement:
    """``goldsignals stack --config <config>`` on the case, measured."""
    finished = goldsignals(case, "stack", "--config", stack_config(config))
    return Measurement(section, STACK, finished.wall_s, finished.cpu_s, finished.rss_mb)


def _zenml_detail(run: dict[str, Any] | None) -> dict[str, Any]:
    if run is None or run["start"] is None or run["end"] is None:
        return {}
    steps = {
        name: step["end"] - step["start"]
        for name, step in run["steps"].items()
        if step["start"] is not None and step["end"] is not None
    }
    return {
        "zenml_run_s": run["end"] - run["start"],
        "steps_s": sum(steps.values()),
        "step_s": steps,
        "zenml_status": run["status"],
    }


def measure_embedded(
    case: Case, *, section: str = EMBEDDED, label: str = ""
) -> list[Measurement]:
    """Register the embedded stack, then run the three pipelines one by one.

    Returns:
        The stack registration, one measurement per pipeline (process wall,
        CPU, peak resident set; ZenML run and step seconds in ``detail``)
        and their sum; names are prefixed with ``label``.
    """
    stack = register_stack(case, "embedded.yaml", section=section)
    rows = [dataclasses.replace(stack, name=label + stack.name)]
    pipelines = []
    for name in PIPELINES:
        finished = goldsignals(case, "run", name)
        pipelines.append((name, finished))

    runs = {run["pipeline"]: run for run in zenml_runs(case)}
    for name, finished in pipelines:
        detail = _zenml_detail(runs.get(PIPELINES[name]))
        detail["largest_process"] = finished.peak_command
        rows.append(
            Measurement(
                section,
                f"{label}{name}",
                finished.wall_s,
                finished.cpu_s,
                finished.rss_mb,
                detail,
            )
        )
    rows.append(
        Measurement(
            section,
            f"{label}{TOTAL}",
            sum(finished.wall_s for _, finished in pipelines),
            sum(finished.cpu_s for _, finished in pipelines),
            max(finished.rss_mb for _, finished in pipelines),
        )
    )
    return rows


def ticker_names(count: int) -> list[str]:
    """``GC=F`` and made-up symbols for the extra tickers (same price file)."""
    return ["GC=F", *(f"BENCH{i:02d}" for i in range(1, count))]


def measure_tickers(case: Case, count: int, *, section: str) -> Measurement:
    """``goldsignals run all`` once per ticker, one after another, one state.

    Every ticker reads the same price file under its own
    ``GOLDSIGNALS_TICKER`` and registers its own model
    (``GOLDSIGNALS_MODEL_NAME`` per ticker), as separate instruments would.

    Returns:
        Total wall and CPU, the largest peak resident set, per-ticker walls.
    """
    register_stack(case, "embedded.yaml", section=section)
    walls, cpus, peaks = [], [], []
    for ticker in ticker_names(count):
        model = "gold-direction-classifier-" + "".join(
            ch for ch in ticker.lower() if ch.isalnum()
        )
        ticker_case = case.with_env(
            GOLDSIGNALS_TICKER=ticker, GOLDSIGNALS_MODEL_NAME=model
        )
        finished = goldsignals(ticker_case, "run", "all")
        walls.append(finished.wall_s)
        cpus.append(finished.cpu_s)
        peaks.append(finished.rss_mb)
    name = f"{count} ticker" + ("s" if count > 1 else "")
    detail = {"tickers": count, "per_ticker_wall_s": walls}
    return Measurement(section, name, sum(walls), sum(cpus), max(peaks), detail)
