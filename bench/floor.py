"""The compute floor as one plain Python process.

``python -m bench.floor PRICES.csv WORK_DIR`` imports the domain code, then
runs loading, cleaning, features, split and scale, training, evaluation, the
report files and prediction with the functions of :mod:`bench.floor_work`,
timing each phase. Its last output line is JSON: per phase the wall seconds,
the CPU seconds of the process (all threads) and the resident high-water mark
so far (VmHWM, MiB), plus a few facts about the data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

COMPUTE_PHASES = (
    "load",
    "clean",
    "features",
    "split_scale",
    "train",
    "evaluate",
    "report_files",
    "predict",
)
PHASES = ("imports", *COMPUTE_PHASES)


def peak_resident_mb() -> float:
    """This process's resident high-water mark since its exec (VmHWM), MiB.

    ``ru_maxrss`` would include the parent's resident set, carried over the
    fork that started this process.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PhaseClock:
    """Wall and CPU seconds and the resident high-water mark per phase."""

    def __init__(self) -> None:
        """Start with no phase recorded."""
        self.records: dict[str, dict[str, float]] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the body as phase ``name``."""
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.records[name] = {
            "wall_s": time.perf_counter() - wall,
            "cpu_s": time.process_time() - cpu,
            "rss_mb": peak_resident_mb(),
        }


def run_floor(prices_csv: Path, work: Path) -> dict[str, Any]:
    """Run every phase once; return the phase records and data facts."""
    clock = PhaseClock()
    with clock.phase("imports"):
        from bench import floor_work

        config = floor_work.load_config()
    with clock.phase("load"):
        prices = floor_work.load(prices_csv, work / "signals.db")
    with clock.phase("clean"):
        cleaned = floor_work.clean(prices, config)
    with clock.phase("features"):
        frame = floor_work.features(cleaned, config)
    with clock.phase("split_scale"):
        scaled = floor_work.split_and_scale(frame, config)
    with clock.phase("train"):
        classifier = floor_work.train(scaled, config)
    with clock.phase("evaluate"):
        model, report, metrics = floor_work.evaluate(
            classifier, scaled, cleaned, config
        )
    with clock.phase("report_files"):
        floor_work.report_files(report, work / "report")
    with clock.phase("predict"):
        signals = floor_work.predict(model, frame, config)

    facts = {
        "price_rows": len(prices),
        "feature_rows": len(frame),
        "train_rows": len(scaled.split.train),
        "test_rows": len(scaled.split.test),
        "f1": round(metrics["f1"], 4),
        "signal": str(signals["signal"].iloc[-1]),
        "as_of_date": str(signals["as_of_date"].iloc[-1]),
    }
    return {"phases": clock.records, "facts": facts}


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bench.floor PRICES WORK_DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prices", type=Path, help="price CSV")
    parser.add_argument("work", type=Path, help="folder for the history and report")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    result = run_floor(args.prices, args.work)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
