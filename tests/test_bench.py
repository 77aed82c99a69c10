"""Tests of the benchmark harness on its cheap parts: floor, fetch, report.

The floor runs as ``make bench`` runs it (a subprocess on a 2-year slice of
the real history); the incremental fetch calls ``load_prices`` with a fake
fetcher. Only the structure of the results is checked, never a timing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.baseline import FLOOR, FLOOR_PROCESS, FLOOR_STARTUP, measure_floor
from bench.fetch import FETCH, measure_incremental_fetch
from bench.floor import COMPUTE_PHASES
from bench.measure import Measurement, run_measured
from bench.report import aggregate, targets
from bench.run import Plan, Workspace, finish, parse_args, plan_from


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Workspace:
    return Workspace(
        out=tmp_path_factory.mktemp("bench"),
        stamp="20261203T000000Z",
        source=shared_data / "gold_futures_daily.csv",
    )


@pytest.fixture(scope="module")
def floor_rows(workspace: Workspace) -> list[Measurement]:
    return measure_floor(workspace.case("floor", 2))


@pytest.fixture(scope="module")
def fetch_rows(workspace: Workspace) -> list[Measurement]:
    return measure_incremental_fetch(
        workspace.source, workspace.folder / "fetch", years=(1, 5), calls=2
    )


def _assert_positive(rows: list[Measurement]) -> None:
    for row in rows:
        assert row.wall_s > 0, row
        assert row.cpu_s is not None, row
        assert row.cpu_s > 0, row
        assert row.rss_mb is not None, row
        assert row.rss_mb > 0, row


def test_floor_measures_process_and_every_phase(floor_rows: list[Measurement]) -> None:
    names = [row.name for row in floor_rows]

    assert names == [FLOOR_PROCESS, FLOOR_STARTUP, *COMPUTE_PHASES]
    assert {row.section for row in floor_rows} == {FLOOR}
    _assert_positive(floor_rows)


def test_floor_runs_the_pipelines_work_on_the_slice(
    floor_rows: list[Measurement],
) -> None:
    facts = floor_rows[0].detail["facts"]

    assert 480 <= facts["price_rows"] <= 520
    assert facts["test_rows"] >= 60
    assert facts["signal"] in ("BUY", "SELL", "HOLD")
    assert facts["as_of_date"] == "2026-08-06"


def test_fetch_adds_one_day_to_each_history(fetch_rows: list[Measurement]) -> None:
    stored = [row.detail["stored_rows"] for row in fetch_rows]

    assert [row.section for row in fetch_rows] == [FETCH, FETCH]
    assert stored[0] < stored[1]
    assert all(row.detail["calls"] == 2 for row in fetch_rows)
    assert {row.detail["asked_from"] for row in fetch_rows} == {"2026-08-07"}
    _assert_positive(fetch_rows)


def test_run_measured_sees_cpu_and_peak_memory_of_a_child(tmp_path: Path) -> None:
    code = "import time; b = bytearray(120 * 2**20); b[::4096] = b'x' * len(b[::4096])"
    code += "; time.sleep(0.5)"

    finished = run_measured(
        [sys.executable, "-c", code], env={}, cwd=tmp_path, log=tmp_path / "c.log"
    )

    assert finished.returncode == 0
    assert finished.rss_mb > 100
    assert finished.cpu_s > 0


def test_finish_writes_tables_and_parseable_json(
    workspace: Workspace,
    floor_rows: list[Measurement],
    fetch_rows: list[Measurement],
) -> None:
    plan = Plan(repeat=1, history_years=2, airflow=False, growth=False)
    started = {"cpus": 2, "load_average": [1.0, 1.0, 1.0]}

    text, path = finish(workspace, plan, floor_rows + fetch_rows, started=started)

    payload = json.loads(path.read_text())
    assert path.parent == workspace.out
    assert len(payload["rows"]) == len(floor_rows) + len(fetch_rows)
    for row in payload["rows"]:
        assert row["wall_s"] > 0
        assert row["cpu_s"] > 0
        assert row["rss_mb"] > 0
        assert row["runs"] == 1
    assert "## Daily incremental fetch" in text
    assert "whole process (start, imports, all phases)" in text


def test_targets_without_airflow_are_not_measured(
    floor_rows: list[Measurement],
) -> None:
    found = {target.name: target for target in targets(aggregate(floor_rows))}

    assert found["daily path through Airflow, trigger to signal"].met is None
    assert found["full retrain"].met is None
    assert found["per-task overhead"].met is None


def test_quick_plan_has_one_repeat_and_short_history() -> None:
    plan = plan_from(parse_args(["--quick", "--skip-airflow"]))

    assert (plan.repeat, plan.history_years, plan.airflow) == (1, 2, False)
    assert plan_from(parse_args(["--repeat", "5"])).repeat == 5
