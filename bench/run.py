"""``python -m bench.run``: measure goldsignals and print the tables (``make bench``).

Every repeat measures, on the real gold history (``GOLDSIGNALS_SEED_CSV``):
the floor process, the three pipelines on the embedded stack and the start-up
costs, the DAGs in a real Airflow, the growth with history length and number
of tickers, and the daily incremental fetch. The tables show the medians;
the JSON file (``<out>/<UTC time>.json``) holds every repeat. Each measured
run uses its own fresh state folder under ``<out>/<UTC time>/state``
(deleted after use unless ``--keep-state``); command output is kept under
``<out>/<UTC time>/logs``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.airflow_path import measure_airflow
from bench.baseline import measure_floor, measure_startup
from bench.cases import ROOT, Case, history_slice, new_case, remove_case, seed_csv
from bench.embedded import measure_embedded, measure_tickers
from bench.fetch import measure_incremental_fetch
from bench.measure import BenchError, Measurement
from bench.report import (
    GROWTH_FLOOR,
    GROWTH_HISTORY,
    GROWTH_TICKERS,
    aggregate,
    measurements_from_json,
    render,
    targets,
    write_json,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """What to measure.

    Attributes:
        repeat: Repeats of every measurement (medians are reported).
        history_years: Years of history of the floor, embedded and Airflow runs.
        growth_years: History lengths of the growth measurement.
        ticker_counts: Numbers of tickers of the growth measurement.
        fetch_years: Stored history lengths of the incremental fetch.
        fetch_calls: Timed calls per fetch measurement (median).
        airflow: Measure the Airflow path.
        compare_subprocess: Also measure the Airflow path with the step
            server off (a fresh subprocess per step), in the same repeat.
        growth: Measure the growth.
    """

    repeat: int = 3
    history_years: int = 25
    growth_years: tuple[int, ...] = (2, 5, 25)
    ticker_counts: tuple[int, ...] = (1, 3, 10)
    fetch_years: tuple[int, ...] = (1, 5, 25)
    fetch_calls: int = 20
    airflow: bool = True
    compare_subprocess: bool = True
    growth: bool = True


QUICK = Plan(
    repeat=1,
    history_years=2,
    growth_years=(2, 5),
    ticker_counts=(1, 2),
    fetch_years=(1, 5, 25),
    fetch_calls=5,
    compare_subprocess=False,
)
GROWTH_NOTE = (
    "The shortest history measured is 2 years, not 1: a year gives about 250 "
    "bars, of which the indicators' warm-up leaves too few labelled rows for "
    "a test window of the required 60 rows (the product refuses it)."
)


@dataclass(frozen=True)
class Workspace:
    """Where one benchmark run keeps its files.

    Attributes:
        out: The output folder; the JSON file is ``out/<stamp>.json``.
        stamp: UTC time of the start, e.g. ``20261203T201500Z``.
        source: The real price history the slices are cut from.
        keep_state: Keep the state folders after measuring.
    """

    out: Path
    stamp: str
    source: Path
    keep_state: bool = False

    @property
    def folder(self) -> Path:
        """Folder of this run's logs, state folders and price slices."""
        return self.out / self.stamp

    @property
    def json_path(self) -> Path:
        """The result file."""
        return self.out / f"{self.stamp}.json"

    def prices(self, years: int) -> Path:
        """The last ``years`` years of the history (written once)."""
        path = self.folder / "prices" / f"gold_{years}y.csv"
        if not path.exists():
            history_slice(self.source, years, path)
        return path

    def case(self, name: str, years: int) -> Case:
        """A fresh state folder reading ``years`` years of prices."""
        return new_case(
            self.folder / "state", self.folder / "logs", name, self.prices(years)
        )


def default_out() -> Path:
    """``$GOLDSIGNALS_HOME/bench``, or ``.goldsignals/bench`` in the project."""
    home = os.environ.get("GOLDSIGNALS_HOME")
    return (Path(home) if home else ROOT / ".goldsignals") / "bench"


def in_case(
    workspace: Workspace,
    name: str,
    years: int,
    measure: Callable[[Case], list[Measurement]],
) -> list[Measurement]:
    """Measure on a fresh state folder, then remove it (unless kept)."""
    case = workspace.case(name, years)
    try:
        return measure(case)
    finally:
        remove_case(case, keep=workspace.keep_state)


def measure_cheap(workspace: Workspace, plan: Plan, tag: str) -> list[Measurement]:
    """The floor on the plan's history and the incremental fetch."""
    rows = in_case(
        workspace,
        f"{tag}-floor",
        plan.history_years,
        measure_floor,
    )
    rows += measure_incremental_fetch(
        workspace.source,
        workspace.folder / "fetch" / tag,
        years=plan.fetch_years,
        calls=plan.fetch_calls,
    )
    return rows


def _embedded_and_startup(case: Case) -> list[Measurement]:
    return measure_embedded(case) + measure_startup(case)


def _relabelled(
    rows: Sequence[Measurement], section: str, prefix: str
) -> list[Measurement]:
    return [
        dataclasses.replace(row, section=section, name=prefix + row.name)
        for row in rows
    ]


def _growth_floor(case: Case, *, prefix: str) -> list[Measurement]:
    return _relabelled(measure_floor(case), GROWTH_FLOOR, prefix)


def _growth_tickers(case: Case, *, count: int) -> list[Measurement]:
    return [measure_tickers(case, count, section=GROWTH_TICKERS)]


def measure_growth(
    workspace: Workspace,
    plan: Plan,
    tag: str,
    main: Sequence[Measurement],
) -> list[Measurement]:
    """Embedded path and floor per history length; run all per ticker count.

    The plan's own history length reuses the main embedded measurement.
    """
    rows: list[Measurement] = []
    for years in plan.growth_years:
        prefix = f"{years} years: "
        rows += in_case(
            workspace,
            f"{tag}-floor-{years}y",
            years,
            functools.partial(_growth_floor, prefix=prefix),
        )
        if years == plan.history_years:
            pipelines = [row for row in main if row.section == "embedded"]
            rows += _relabelled(pipelines, GROWTH_HISTORY, prefix)
            continue
        rows += in_case(
            workspace,
            f"{tag}-embedded-{years}y",
            years,
            functools.partial(measure_embedded, section=GROWTH_HISTORY, label=prefix),
        )
    for count in plan.ticker_counts:
        rows += in_case(
            workspace,
            f"{tag}-tickers-{count}",
            plan.history_years,
            functools.partial(_growth_tickers, count=count),
        )
    return rows


def measure_repeat(
    workspace: Workspace, plan: Plan, tag: str, errors: list[str]
) -> list[Measurement]:
    """One repeat of every part of the plan; failures are collected."""
    rows: list[Measurement] = []

    def attempt(part: str, measure: Callable[[], list[Measurement]]) -> None:
        try:
            rows.extend(measure())
        except BenchError as exc:
            logger.exception("%s %s failed", tag, part)
            errors.append(f"{tag} {part}: {exc}")

    attempt("floor and fetch", lambda: measure_cheap(workspace, plan, tag))
    attempt(
        "embedded",
        lambda: in_case(
            workspace, f"{tag}-embedded", plan.history_years, _embedded_and_startup
        ),
    )
    if plan.airflow:
        attempt(
            "airflow",
            lambda: in_case(
                workspace, f"{tag}-airflow", plan.history_years, measure_airflow
            ),
        )
    if plan.airflow and plan.compare_subprocess:
        attempt(
            "airflow with fresh subprocesses",
            lambda: in_case(
                workspace,
                f"{tag}-airflow-subprocess",
                plan.history_years,
                functools.partial(measure_airflow, step_server=False),
            ),
        )
    if plan.growth:
        main = list(rows)
        attempt("growth", lambda: measure_growth(workspace, plan, tag, main))
    return rows


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def host_facts() -> dict[str, Any]:
    """Machine, load and code version of the run."""
    return {
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain")),
    }


def report_text(payload: dict[str, Any]) -> str:
    """The tables of a result (as written by :func:`finish`), as Markdown."""
    rows = aggregate(measurements_from_json(payload))
    plan, started, ended = (
        payload["plan"],
        payload["host_at_start"],
        payload["host_at_end"],
    )
    header = (
        f"goldsignals bench {payload['stamp']}: {plan['repeat']} repeat(s), "
        f"{plan['history_years']}-year history, {started['cpus']} CPUs, load "
        f"average {started['load_average'][0]:.2f} at start, "
        f"{ended['load_average'][0]:.2f} at end"
    )
    text = render(rows, targets(rows), header)
    if payload["plan"].get("growth"):
        text += f"\n{GROWTH_NOTE}\n"
    if payload["errors"]:
        errors = "\n".join(f"- {error}" for error in payload["errors"])
        text += f"\n## Errors\n\n{errors}\n"
    return text


def finish(
    workspace: Workspace,
    plan: Plan,
    measurements: Sequence[Measurement],
    *,
    started: dict[str, Any],
    errors: Sequence[str] = (),
) -> tuple[str, Path]:
    """Aggregate, judge the targets, write the JSON file; return the text."""
    rows = aggregate(measurements)
    payload = {
        "stamp": workspace.stamp,
        "plan": dataclasses.asdict(plan),
        "source": str(workspace.source),
        "host_at_start": started,
        "host_at_end": host_facts(),
        "targets": [dataclasses.asdict(target) for target in targets(rows)],
        "rows": [dataclasses.asdict(row) for row in rows],
        "errors": list(errors),
    }
    path = write_json(workspace.json_path, payload)
    return report_text(payload), path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repeat", type=int, default=None, help="repeats (3)")
    parser.add_argument(
        "--quick", action="store_true", help="1 repeat, 2-year history, small growth"
    )
    parser.add_argument("--skip-airflow", action="store_true", help="no Airflow path")
    parser.add_argument("--skip-growth", action="store_true", help="no growth runs")
    parser.add_argument(
        "--skip-subprocess-comparison",
        action="store_true",
        help="no Airflow run with the step server off",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument(
        "--keep-state", action="store_true", help="keep the state folders"
    )
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="JSON",
        help="print the tables of an earlier result file and exit",
    )
    return parser.parse_args(argv)


def plan_from(args: argparse.Namespace) -> Plan:
    """The plan the options ask for."""
    plan = QUICK if args.quick else Plan()
    if args.repeat is not None:
        if args.repeat < 1:
            sys.stderr.write(f"error: --repeat {args.repeat}: give 1 or more\n")
            raise SystemExit(2)
        plan = dataclasses.replace(plan, repeat=args.repeat)
    return dataclasses.replace(
        plan,
        airflow=plan.airflow and not args.skip_airflow,
        growth=plan.growth and not args.skip_growth,
        compare_subprocess=plan.compare_subprocess
        and not args.skip_subprocess_comparison,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the tables; exit 1 if a part failed."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("goldsignals").setLevel(logging.WARNING)
    args = parse_args(argv)
    if args.render is not None:
        try:
            text = report_text(json.loads(args.render.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            sys.stderr.write(
                f"error: {args.render} is not a result file of `make bench` "
                f"({type(exc).__name__}: {exc}); pass one of the JSON files it "
                "writes under .goldsignals/bench/\n"
            )
            return 2
        sys.stdout.write(text)
        return 0
    plan = plan_from(args)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        source = seed_csv()
    except BenchError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    out = (args.out or default_out()).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{stamp}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        sys.stderr.write(
            f"error: --out {out}: cannot write there ({exc.strerror}); give a "
            "folder you can write to, or leave --out out for .goldsignals/bench\n"
        )
        return 2
    workspace = Workspace(
        out=out,
        stamp=stamp,
        source=source,
        keep_state=args.keep_state,
    )
    started = host_facts()
    logger.info("Benchmark %s: %s; files in %s", stamp, plan, workspace.folder)

    measurements: list[Measurement] = []
    errors: list[str] = []
    for repeat in range(1, plan.repeat + 1):
        measurements += measure_repeat(workspace, plan, f"r{repeat}", errors)
    text, path = finish(workspace, plan, measurements, started=started, errors=errors)
    sys.stdout.write(text + f"\nwrote {path}\n")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
