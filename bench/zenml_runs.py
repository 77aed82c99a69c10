"""Print the ZenML pipeline runs of the active store with step times, as JSON.

Run as ``python -m bench.zenml_runs`` in a case's environment; the last line
of its output is a JSON list of runs. Times are seconds since the epoch
(ZenML stores naive UTC datetimes).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any


def _epoch(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _step(step: Any) -> dict[str, Any]:
    return {
        "start": _epoch(step.start_time),
        "end": _epoch(step.end_time),
        "status": str(step.status),
    }


def run_records(limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` pipeline runs, oldest first, with their steps."""
    from zenml.client import Client

    runs = Client().list_pipeline_runs(size=limit, sort_by="desc:created")
    return [
        {
            "pipeline": run.pipeline.name if run.pipeline else None,
            "id": str(run.id),
            "orchestrator_run_id": run.orchestrator_run_id,
            "status": str(run.status),
            "start": _epoch(run.start_time),
            "end": _epoch(run.end_time),
            "steps": {name: _step(step) for name, step in run.steps.items()},
        }
        for run in reversed(runs.items)
    ]


def main() -> None:
    """Write the runs as one JSON line on standard output."""
    sys.stdout.write(json.dumps(run_records()) + "\n")


if __name__ == "__main__":
    main()
