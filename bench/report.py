"""Medians over repeats, ratios to the floor, targets, tables and the JSON file."""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.airflow_path import (
    AIRFLOW_SECTION,
    DAILY,
    FIRST_FEATURES,
    RETRAIN,
    TASKS_SECTION,
)
from bench.baseline import FLOOR, FLOOR_PROCESS, FLOOR_STARTUP, STARTUP
from bench.embedded import EMBEDDED, TOTAL
from bench.fetch import FETCH
from bench.measure import Measurement, short_command

logger = logging.getLogger(__name__)

GROWTH_HISTORY = "growth history"
GROWTH_FLOOR = "growth floor"
GROWTH_TICKERS = "growth tickers"
MAIN_SECTIONS = (FLOOR, STARTUP, EMBEDDED, AIRFLOW_SECTION)
PIPELINE_NAMES = ("feature-engineering", "training", "inference")

FEATURE_PHASES = ("load", "clean", "features", "split_scale")
TRAINING_PHASES = ("train", "evaluate", "report_files")
INFERENCE_PHASES = ("predict",)
FLOOR_WORK: dict[tuple[str, str], tuple[str, ...]] = {
    (EMBEDDED, "feature-engineering"): FEATURE_PHASES,
    (EMBEDDED, "training"): TRAINING_PHASES,
    (EMBEDDED, "inference"): INFERENCE_PHASES,
    (EMBEDDED, TOTAL): FEATURE_PHASES + TRAINING_PHASES + INFERENCE_PHASES,
    (AIRFLOW_SECTION, FIRST_FEATURES): FEATURE_PHASES,
    (AIRFLOW_SECTION, RETRAIN): TRAINING_PHASES,
    (AIRFLOW_SECTION, DAILY): FEATURE_PHASES + INFERENCE_PHASES,
}
"""Which floor phases do the work of a measured row (plus start-up, imports)."""
MEASURED_TASK_RUNS = ("retrain.", "daily features.", "daily inference.")
"""Task rows of the measured runs (the first feature run is a warm-up)."""


@dataclass(frozen=True)
class Row:
    """The medians of one measurement over the repeats.

    Attributes:
        section: As in Measurement.
        name: As in Measurement.
        wall_s: Median wall seconds.
        cpu_s: Median CPU seconds (None when never measured).
        rss_mb: Median peak resident set of the largest process, MiB.
        runs: How many repeats measured it.
        floor_ratio: Median wall over the floor's wall for the same work.
        detail: Numbers: the median over the repeats; other values: the last.
        repeats: Every repeat's wall, CPU, RSS and detail.
    """

    section: str
    name: str
    wall_s: float
    cpu_s: float | None
    rss_mb: float | None
    runs: int
    floor_ratio: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    repeats: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """A performance target and whether the medians meet it."""

    name: str
    limit: str
    value: float | None
    met: bool | None
    note: str


def _median(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _median_detail(details: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(key for detail in details for key in detail):
        values = [detail[key] for detail in details if key in detail]
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )
        merged[key] = statistics.median(values) if numbers else values[-1]
    return merged


def aggregate(measurements: Sequence[Measurement]) -> list[Row]:
    """One row per (section, name), in order of first appearance, with medians."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for item in measurements:
        groups.setdefault((item.section, item.name), []).append(item)
    rows = []
    for (section, name), items in groups.items():
        wall = statistics.median(item.wall_s for item in items)
        rows.append(
            Row(
                section=section,
                name=name,
                wall_s=wall,
                cpu_s=_median(item.cpu_s for item in items),
                rss_mb=_median(item.rss_mb for item in items),
                runs=len(items),
                detail=_median_detail([item.detail for item in items]),
                repeats=[
                    {
                        k: v
                        for k, v in asdict(item).items()
                        if k not in ("section", "name")
                    }
                    for item in items
                ],
            )
        )
    return with_floor_ratios(rows)


def _find(rows: Sequence[Row], section: str, name: str) -> Row | None:
    return next((r for r in rows if r.section == section and r.name == name), None)


def floor_seconds(rows: Sequence[Row], phases: Sequence[str]) -> float | None:
    """Floor wall seconds of ``phases`` plus start-up and imports."""
    parts = [_find(rows, FLOOR, name) for name in (FLOOR_STARTUP, *phases)]
    if any(part is None for part in parts):
        return None
    return sum(part.wall_s for part in parts if part is not None)


def with_floor_ratios(rows: Sequence[Row]) -> list[Row]:
    """Add the ratio of each row's wall to the floor doing the same work."""
    result = []
    for row in rows:
        phases = FLOOR_WORK.get((row.section, row.name))
        floor = floor_seconds(rows, phases) if phases else None
        ratio = row.wall_s / floor if floor else None
        result.append(Row(**{**asdict(row), "floor_ratio": ratio}))
    return result


def _task_overheads(rows: Sequence[Row]) -> list[tuple[str, float]]:
    return [
        (row.name, float(row.detail["overhead_s"]))
        for row in rows
        if row.section == TASKS_SECTION
        and row.name.startswith(MEASURED_TASK_RUNS)
        and "overhead_s" in row.detail
    ]


def _limit_target(name: str, limit: float, row: Row | None, note: str) -> Target:
    if row is None:
        return Target(name, f"< {limit:g} s", None, None, "not measured")
    return Target(name, f"< {limit:g} s", row.wall_s, row.wall_s < limit, note)


def targets(rows: Sequence[Row]) -> list[Target]:
    """The four targets of issue 7, judged on the medians."""
    embedded_training = _find(rows, EMBEDDED, "training")
    retrain_note = "Airflow run, unpause to end"
    if embedded_training is not None:
        retrain_note += f"; embedded `run training`: {embedded_training.wall_s:.1f} s"
    result = [
        _limit_target(
            "daily path through Airflow, trigger to signal",
            45,
            _find(rows, AIRFLOW_SECTION, DAILY),
            "trigger of gold_feature_engineering to end of gold_inference",
        ),
        _limit_target(
            "full retrain", 90, _find(rows, AIRFLOW_SECTION, RETRAIN), retrain_note
        ),
    ]

    overheads = _task_overheads(rows)
    if overheads:
        worst = max(overheads, key=lambda item: item[1])
        middle = statistics.median(value for _, value in overheads)
        note = (
            f"worst {worst[0]}; median over {len(overheads)} tasks {middle:.1f} s; "
            "the first run after `airflow start` is left out (its first task "
            "waits longer for its step process: see the task table)"
        )
        result.append(
            Target("per-task overhead", "< 3 s", worst[1], worst[1] < 3, note)
        )
    else:
        result.append(Target("per-task overhead", "< 3 s", None, None, "not measured"))

    result.append(_fetch_target(rows))

    steps = [
        (row.rss_mb, f"{row.section}: {row.name}")
        for row in rows
        if row.rss_mb is not None
        and (
            (
                row.section in (EMBEDDED, GROWTH_HISTORY, GROWTH_TICKERS)
                and row.name != TOTAL
            )
            or row.section == TASKS_SECTION
        )
    ]
    if steps:
        peak, where = max(steps)
        result.append(
            Target(
                "largest step process",
                f"< 600 MB ({STEP_RSS_LIMIT_MIB:.0f} MiB)",
                peak,
                peak < STEP_RSS_LIMIT_MIB,
                where,
            )
        )
    return result


STEP_RSS_LIMIT_MIB = 600e6 / 2**20
"""The issue's 600 MB, in the MiB the resident sets are measured in."""
FETCH_GROWTH_LIMIT = 1.5


def _fetch_target(rows: Sequence[Row]) -> Target:
    """The incremental update on the longest history against the shortest."""
    name = "incremental fetch independent of the stored history"
    limit = f"< {FETCH_GROWTH_LIMIT:g}x"
    fetches = sorted(
        (row for row in rows if row.section == FETCH),
        key=lambda row: int(row.detail.get("stored_rows", 0)),
    )
    if len(fetches) < 2:
        return Target(name, limit, None, None, "not measured")
    short, long = fetches[0], fetches[-1]
    ratio = long.wall_s / short.wall_s
    note = (
        f"update on {long.detail['stored_rows']} rows / on "
        f"{short.detail['stored_rows']} rows ({long.wall_s * 1000:.1f} / "
        f"{short.wall_s * 1000:.1f} ms median)"
    )
    return Target(name, limit, ratio, ratio < FETCH_GROWTH_LIMIT, note)


def _table(body: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A GitHub Markdown table, or "" when there is no row."""
    if not body:
        return ""
    return str(tabulate(body, headers=list(headers), tablefmt="github"))


def _number(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def main_table(rows: Sequence[Row]) -> str:
    """Floor, start-up, embedded and Airflow rows."""
    body = [
        [
            row.section,
            row.name,
            _number(row.wall_s),
            _number(row.cpu_s),
            _number(row.rss_mb, 0) if row.rss_mb else "-",
            _number(row.floor_ratio, 1),
            row.runs,
        ]
        for row in rows
        if row.section in MAIN_SECTIONS
    ]
    headers = ["section", "what", "wall s", "CPU s", "peak RSS MiB", "x floor", "runs"]
    return _table(body, headers)


def embedded_table(rows: Sequence[Row]) -> str:
    """Each pipeline process against ZenML's run and step times."""
    body = []
    for row in rows:
        if row.section != EMBEDDED or "zenml_run_s" not in row.detail:
            continue
        zenml_run, steps = row.detail["zenml_run_s"], row.detail["steps_s"]
        body.append(
            [
                row.name,
                _number(row.wall_s),
                _number(zenml_run),
                _number(steps),
                _number(row.wall_s - zenml_run),
                _number(zenml_run - steps),
                ", ".join(f"{k} {v:.2f}" for k, v in row.detail["step_s"].items()),
            ]
        )
    headers = [
        "pipeline",
        "process s",
        "ZenML run s",
        "sum of steps s",
        "outside the run s",
        "between steps s",
        "steps (s)",
    ]
    return _table(body, headers)


def airflow_runs_table(rows: Sequence[Row]) -> str:
    """Where each Airflow run's wall time goes."""
    body = []
    for row in rows:
        if row.section != AIRFLOW_SECTION or "steps_s" not in row.detail:
            continue
        detail = row.detail
        start = detail.get(
            "trigger_to_features_start_s", detail.get("release_to_run_start_s")
        )
        body.append(
            [
                row.name,
                _number(row.wall_s),
                _number(start),
                _number(detail["steps_s"]),
                _number(detail["task_overhead_s"]),
                _number(detail["between_tasks_s"]),
                _number(detail.get("features_end_to_inference_start_s")),
            ]
        )
    headers = [
        "run",
        "wall s",
        "unpause/trigger to run start",
        "ZenML steps",
        "task overhead (tasks - steps)",
        "between tasks (run - tasks)",
        "features end to inference start",
    ]
    return _table(body, headers)


def task_table(rows: Sequence[Row]) -> str:
    """Per Airflow task: wall, step, overhead and where the overhead goes."""
    keys = (
        "step_s",
        "overhead_s",
        "task_start_to_process_s",
        "process_to_step_start_s",
        "step_end_to_process_end_s",
        "process_end_to_task_end_s",
    )
    body = [
        [row.name, _number(row.wall_s)]
        + [_number(row.detail.get(key)) for key in keys]
        + [_number(row.cpu_s), _number(row.rss_mb, 0)]
        for row in rows
        if row.section == TASKS_SECTION
    ]
    headers = [
        "run.task",
        "task wall s",
        "ZenML step s",
        "overhead s",
        "task start to step process",
        "process start to step start",
        "step end to process end",
        "process end to task end",
        "step process CPU s",
        "step RSS MiB",
    ]
    return _table(body, headers)


def _years(name: str) -> int:
    """The number of years that starts a growth row's name ("5 years: ...")."""
    return int(name.split(" ", 1)[0])


def growth_history_table(rows: Sequence[Row]) -> str:
    """Floor and pipelines against the length of the price history."""
    floors = {
        _years(r.name): r
        for r in rows
        if r.section == GROWTH_FLOOR and r.name.endswith(FLOOR_PROCESS)
    }
    pipelines: dict[int, dict[str, Row]] = {}
    for row in rows:
        if row.section == GROWTH_HISTORY and ": " in row.name:
            prefix, name = row.name.split(": ", 1)
            pipelines.setdefault(_years(prefix), {})[name] = row
    body = []
    base: tuple[float, float] | None = None
    for years in sorted(pipelines):
        named, floor = pipelines[years], floors.get(years)
        price_rows = float(floor.detail["facts"]["price_rows"]) if floor else 0.0
        total = named[TOTAL].wall_s if TOTAL in named else 0.0
        base = base or (total, price_rows)
        body.append(
            [years, int(price_rows), _number(floor.wall_s if floor else None)]
            + [_number(named[n].wall_s) if n in named else "" for n in PIPELINE_NAMES]
            + [
                _number(total),
                _number(total / base[0]),
                _number(price_rows / base[1], 1),
            ]
        )
    headers = ["years", "price rows", "floor s", *PIPELINE_NAMES, "all three s"]
    headers += ["x time", "x rows"]
    return _table(body, headers)


def growth_ticker_table(rows: Sequence[Row]) -> str:
    """`goldsignals run all` per ticker, against the number of tickers."""
    body = []
    base: float | None = None
    for row in rows:
        if row.section != GROWTH_TICKERS:
            continue
        walls = row.detail.get("per_ticker_wall_s", [])
        base = base or row.wall_s
        body.append(
            [
                row.detail.get("tickers"),
                _number(row.wall_s),
                _number(row.cpu_s),
                _number(row.rss_mb, 0),
                _number(row.wall_s / max(1, len(walls))),
                " ".join(f"{w:.1f}" for w in walls),
                _number(row.wall_s / base),
            ]
        )
    headers = ["tickers", "wall s", "CPU s", "peak RSS MiB", "per ticker s"]
    headers += ["each ticker s (last repeat)", "x time"]
    return _table(body, headers)


def fetch_table(rows: Sequence[Row]) -> str:
    """The incremental update and the full read against the history's length."""
    body = [
        [
            row.name,
            row.detail.get("stored_rows"),
            _number(row.wall_s * 1000, 1),
            _number((row.cpu_s or 0.0) * 1000, 1),
            _number(row.detail.get("wall_min_s", 0.0) * 1000, 1),
            _number(row.detail.get("wall_max_s", 0.0) * 1000, 1),
            _number(row.detail.get("read_wall_s", 0.0) * 1000, 1),
            row.detail.get("calls"),
            row.detail.get("asked_from", ""),
            " ".join(str(d) for d in row.detail.get("asked_days", [])),
        ]
        for row in rows
        if row.section == FETCH
    ]
    headers = ["stored history", "rows", "update median ms", "update CPU ms"]
    headers += ["update min ms", "update max ms", "read whole history ms", "calls"]
    headers += ["Yahoo asked from", "days asked"]
    return _table(body, headers)


def target_table(found: Sequence[Target]) -> str:
    """Each target: limit, measured median, met or not."""
    verdict = {True: "met", False: "NOT met", None: "not measured"}
    body = [
        [t.name, t.limit, _number(t.value, 1), verdict[t.met], t.note] for t in found
    ]
    headers = ["target", "limit", "measured", "verdict", "note"]
    return _table(body, headers)


def largest_processes(rows: Sequence[Row]) -> str:
    """Which process was the largest in each Airflow window."""
    lines = [
        f"- {row.name}: {short_command(str(row.detail['largest_process']), 80)}"
        for row in rows
        if row.section == AIRFLOW_SECTION and row.detail.get("largest_process")
    ]
    return "\n".join(lines)


def render(rows: Sequence[Row], found: Sequence[Target], header: str) -> str:
    """Every table, with headings, as Markdown."""
    sections = [
        ("Targets", target_table(found)),
        ("Floor, start-up, embedded stack, Airflow (medians)", main_table(rows)),
        ("Embedded pipelines against ZenML's own times", embedded_table(rows)),
        ("Airflow runs: where the time goes (s)", airflow_runs_table(rows)),
        ("Airflow tasks: wall, ZenML step and overhead (s)", task_table(rows)),
        ("Largest process in each Airflow window", largest_processes(rows)),
        ("Growth: length of history (embedded stack)", growth_history_table(rows)),
        ("Growth: tickers (`goldsignals run all` each)", growth_ticker_table(rows)),
        (
            "Daily incremental fetch (update_prices, fake fetcher) and full read",
            fetch_table(rows),
        ),
    ]
    parts = [f"# {header}\n"]
    parts += [f"## {title}\n\n{table}\n" for title, table in sections if table]
    return "\n".join(parts)


def measurements_from_json(payload: dict[str, Any]) -> list[Measurement]:
    """The measurements of every repeat stored in a result file."""
    return [
        Measurement(
            section=row["section"],
            name=row["name"],
            wall_s=repeat["wall_s"],
            cpu_s=repeat["cpu_s"],
            rss_mb=repeat["rss_mb"],
            detail=repeat["detail"],
        )
        for row in payload["rows"]
        for repeat in row["repeats"]
    ]


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
