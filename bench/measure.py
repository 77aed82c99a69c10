"""Wall time, CPU time and peak resident memory of processes and process trees.

CPU time of a subprocess the benchmark waits for is exact: the rusage that
``wait4`` returns holds the user and system time of the process and of every
descendant it reaped. Its ``ru_maxrss`` is not used: Linux carries the
resident set of the parent (this benchmark) over a fork and exec into it.
Peak memory is the high-water mark ``VmHWM`` of each process (since its exec)
read from ``/proc/<pid>/status`` by a sampler every 0.1 s; a process that
lives less than that may be seen only at its start. Services the benchmark
did not start as its own children (Airflow) are measured by sampling their
whole process tree the same way, CPU included.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

SAMPLE_SECONDS = 0.1
FRESH_SECONDS = 2.0
"""Command lines are read again during a process's first seconds."""
MB = 1024.0 * 1024.0
STEP_ENTRYPOINT = "zenml.entrypoints"
"""Marks the command line of a ZenML step process started by Airflow."""


class BenchError(RuntimeError):
    """A measured command failed or a measured run did not succeed."""


@dataclass(frozen=True)
class Measurement:
    """One measured piece of work of one repeat.

    Attributes:
        section: Group of the measurement, e.g. ``floor`` or ``airflow``.
        name: What was measured, unique within the section.
        wall_s: Elapsed seconds.
        cpu_s: User + system seconds of the process tree (None: not measured).
        rss_mb: Peak resident set of the largest process, MiB (None: not
            measured).
        detail: Further figures and facts (JSON-ready values only).
    """

    section: str
    name: str
    wall_s: float
    cpu_s: float | None
    rss_mb: float | None
    detail: dict[str, Any] = field(default_factory=dict)


def step_name_of(command: str) -> str | None:
    """The step a ZenML step entrypoint command line runs (None: not a step)."""
    if STEP_ENTRYPOINT not in command:
        return None
    words = command.split()
    if "--step_name" in words[:-1]:
        return words[words.index("--step_name") + 1]
    return "?"


@functools.cache
def start_time_offset() -> float:
    """How far psutil's process start times lie ahead of ``time.time()``.

    Linux gives a process's start in clock ticks after boot, and the boot time
    in whole seconds, so start times carry a constant error below 1 s. It is
    measured once by starting a short child between two clock readings.
    """
    before = time.time()
    child = subprocess.Popen(["sleep", "0.3"])
    after = time.time()
    try:
        created = float(psutil.Process(child.pid).create_time())
    finally:
        child.wait()
    return created - (before + after) / 2


@dataclass
class ProcessTrace:
    """What the sampler saw of one process of the tree.

    Attributes:
        pid: Process id.
        command: Its command line, joined by spaces.
        created: Start time, seconds since the epoch (10 ms resolution,
            corrected by :func:`start_time_offset`).
        last_seen: Time of the last sample that found it alive.
        peak_rss: Largest resident set seen, bytes.
        cpu: User + system seconds of the process and of the children it
            reaped, at the last sample.
    """

    pid: int
    command: str
    created: float
    last_seen: float
    peak_rss: int = 0
    cpu: float = 0.0

    @property
    def step_name(self) -> str | None:
        """The ZenML step this process runs, if it is a step process."""
        return step_name_of(self.command)


@dataclass
class Window:
    """Usage of the sampled tree between ``open`` and ``close``.

    Attributes:
        started: Epoch seconds at opening.
        cpu_start: Tree CPU seconds at opening.
        ended: Epoch seconds at closing (None while open).
        cpu_end: Tree CPU seconds at closing.
        peak_rss: Largest resident set of one process seen while open, bytes.
        peak_command: Command line of that process.
        step_peak_rss: Largest resident set of one ZenML step process, bytes.
    """

    started: float
    cpu_start: float
    ended: float | None = None
    cpu_end: float = 0.0
    peak_rss: int = 0
    peak_command: str = ""
    step_peak_rss: int = 0

    @property
    def cpu_s(self) -> float:
        """User + system seconds the tree spent while the window was open."""
        return max(0.0, self.cpu_end - self.cpu_start)

    def see(self, trace: ProcessTrace, rss: int, high_water: int) -> None:
        """Account one sampled process (current and peak resident set).

        A process started inside the window counts with its high-water mark;
        an older one with its current resident set (its peak may predate
        the window).
        """
        peak = high_water if trace.created >= self.started - 0.05 else rss
        if peak > self.peak_rss:
            self.peak_rss, self.peak_command = peak, trace.command
        if trace.step_name is not None:
            self.step_peak_rss = max(self.step_peak_rss, peak)


def resident_bytes(pid: int) -> tuple[int, int]:
    """Current and peak resident set (``VmRSS``, ``VmHWM``) of a process, bytes.

    Both are 0 for a zombie, whose memory is already released.
    """
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                values[name] = int(value.split()[0]) * 1024
    rss = values.get("VmRSS", 0)
    return rss, values.get("VmHWM", rss)


class TreeSampler:
    """Samples process trees in a background thread.

    The tree CPU at a sample is the sum, over the live processes of the tree,
    of their user + system time and that of the children they reaped. It
    grows continuously as processes end, because each finished process is
    reaped by its parent inside the tree (Airflow's workers, the task
    runners and the step operator all wait for their children).
    """

    def __init__(
        self,
        roots: Callable[[], Sequence[int]],
        *,
        interval: float = SAMPLE_SECONDS,
    ) -> None:
        """Sample the trees below the processes ``roots()`` returns."""
        self._roots = roots
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._handles: dict[int, psutil.Process] = {}
        self._windows: list[Window] = []
        self._offset = start_time_offset()
        self.traces: dict[tuple[int, float], ProcessTrace] = {}
        self.samples = 0

    def start(self) -> TreeSampler:
        """Start sampling; returns self."""
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take a last sample and stop the thread."""
        self._stop.set()
        self._thread.join()
        self.sample()

    def open_window(self) -> Window:
        """Start accounting a window of time (takes a sample first)."""
        with self._lock:
            cpu = self._sample_locked()
            window = Window(started=time.time(), cpu_start=cpu)
            self._windows.append(window)
        return window

    def close_window(self, window: Window) -> Window:
        """Stop accounting ``window`` (after one last sample)."""
        with self._lock:
            window.cpu_end = self._sample_locked()
            window.ended = time.time()
            self._windows.remove(window)
        return window

    def sample(self) -> float:
        """Take one sample; return the tree CPU seconds."""
        with self._lock:
            return self._sample_locked()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def _processes(self) -> Iterable[psutil.Process]:
        seen: set[int] = set()
        for pid in self._roots():
            try:
                root = self._handle(pid)
                family = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in family:
                if process.pid not in seen:
                    seen.add(process.pid)
                    yield process

    def _handle(self, pid: int) -> psutil.Process:
        handle = self._handles.get(pid)
        if handle is None or not handle.is_running():
            handle = self._handles[pid] = psutil.Process(pid)
        return handle

    def _sample_locked(self) -> float:
        now, total = time.time(), 0.0
        for process in self._processes():
            try:
                with process.oneshot():
                    if process.status() == psutil.STATUS_ZOMBIE:
                        continue
                    times = process.cpu_times()
                    created = float(process.create_time()) - self._offset
                rss, high_water = resident_bytes(process.pid)
            except (psutil.Error, OSError):
                continue
            cpu = times.user + times.system + times.children_user
            cpu += times.children_system
            total += cpu
            trace = self._trace(process, created, now)
            trace.peak_rss = max(trace.peak_rss, high_water)
            trace.cpu = cpu
            for window in self._windows:
                window.see(trace, rss, high_water)
        self.samples += 1
        return total

    def _trace(
        self, process: psutil.Process, created: float, now: float
    ) -> ProcessTrace:
        key = (process.pid, created)
        trace = self.traces.get(key)
        if trace is None:
            trace = self.traces[key] = ProcessTrace(
                pid=process.pid, command="?", created=created, last_seen=now
            )
        if now - created < FRESH_SECONDS or trace.command == "?":
            # A child seen between fork and exec still shows its parent's
            # command line: read it again while the process is young.
            with contextlib.suppress(psutil.Error):
                trace.command = " ".join(process.cmdline())
        trace.last_seen = now
        return trace

    def step_traces(self) -> list[ProcessTrace]:
        """The ZenML step processes seen, in order of start."""
        with self._lock:
            steps = [t for t in self.traces.values() if t.step_name is not None]
        return sorted(steps, key=lambda trace: trace.created)


@dataclass(frozen=True)
class Finished:
    """A subprocess that ran to its end.

    Attributes:
        returncode: Its exit status.
        wall_s: Seconds from start to reaping.
        cpu_s: User + system seconds of it and its reaped descendants.
        rss_mb: Peak resident set of the largest of them, MiB (sampled
            high-water marks).
        peak_command: Command line of the largest process the sampler saw.
        log: File holding its standard output and error.
    """

    returncode: int
    wall_s: float
    cpu_s: float
    rss_mb: float
    peak_command: str
    log: Path


def _kill_group(pid: int) -> None:
    logger.warning("Command (pid %d) ran out of time; killing its group", pid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def run_measured(
    command: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    timeout: float = 900.0,
    check: bool = True,
) -> Finished:
    """Run ``command`` to its end and measure it (wait4 plus sampling).

    Args:
        command: Program and arguments.
        env: Its whole environment.
        cwd: Its working directory.
        log: File that receives its standard output and error.
        timeout: Seconds after which its process group is killed.
        check: Raise BenchError when it exits with a non-zero status.

    Returns:
        Exit status, wall, CPU and peak memory.

    Raises:
        BenchError: ``check`` and a non-zero exit status (log tail included).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        sampler = TreeSampler(lambda: [process.pid]).start()
        window = sampler.open_window()
        timer = threading.Timer(timeout, _kill_group, (process.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        sampler.close_window(window)
        sampler.stop()
    process.returncode = os.waitstatus_to_exitcode(status)

    finished = Finished(
        returncode=process.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        rss_mb=window.peak_rss / MB,
        peak_command=window.peak_command,
        log=log,
    )
    logger.info(
        "%s: %.2f s wall, %.2f s CPU, %.0f MiB peak (exit %d)",
        " ".join(command[:4]),
        finished.wall_s,
        finished.cpu_s,
        finished.rss_mb,
        finished.returncode,
    )
    if check and finished.returncode != 0:
        raise BenchError(
            f"{' '.join(command)} exited with status {finished.returncode}; "
            f"last lines of {log}:\n{log_tail(log)}"
        )
    return finished


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def short_command(command: str, width: int = 60) -> str:
    """A command line shortened for a table cell (program name, first words)."""
    step = step_name_of(command)
    if step is not None:
        return f"ZenML step process ({step})"
    program, _, rest = command.partition(" ")
    text = f"{Path(program).name} {rest}".strip()
    return text if len(text) <= width else text[: width - 1] + "…"
