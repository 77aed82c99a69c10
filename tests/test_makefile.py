"""The Makefile's choice between docker compose and the host's binaries.

This machine has no Docker engine, so a stand-in ``docker`` on ``PATH``
answers ``docker info`` as an engine would (or fails as a client without one
does) and records every other call; the Makefile itself runs for real.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "{calls}"
if [ "$1" = info ]; then exit {info_status}; fi
exit 0
"""


def _fake_docker(folder: Path, *, engine: bool) -> Path:
    """Write a ``docker`` that records its calls; return the record file."""
    calls = folder / "docker-calls.txt"
    script = folder / "bin" / "docker"
    script.parent.mkdir()
    script.write_text(FAKE_DOCKER.format(calls=calls, info_status=0 if engine else 1))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return calls


def _make(
    folder: Path, target: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDSIGNALS_")}
    env.update(
        PATH=f"{folder / 'bin'}{os.pathsep}{env['PATH']}",
        GOLDSIGNALS_HOME=str(folder / "state"),
    )
    settings = [f"{name}={value}" for name, value in variables.items()]
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), target, *settings],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _compose_calls(calls: Path) -> list[str]:
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line for line in lines if line.startswith("compose")]


def test_make_up_runs_compose_where_a_docker_engine_answers(tmp_path: Path) -> None:
    calls = _fake_docker(tmp_path, engine=True)

    result = _make(tmp_path, "up")

    assert result.returncode == 0, result.stderr
    assert _compose_calls(calls) == ["compose up -d --wait"]
    assert not (tmp_path / "state" / "postgres").exists()


def test_make_deploy_stack_runs_inside_the_scheduler_container(tmp_path: Path) -> None:
    calls = _fake_docker(tmp_path, engine=True)

    result = _make(tmp_path, "deploy-stack")

    assert result.returncode == 0, result.stderr
    assert _compose_calls(calls) == [
        "compose exec airflow-scheduler goldsignals deploy-stack"
    ]


@pytest.mark.parametrize(
    ("engine", "expected"), [(True, ["compose down"]), (False, [])]
)
def test_make_down_stops_compose_only_where_an_engine_answers(
    tmp_path: Path, engine: bool, expected: list[str]
) -> None:
    calls = _fake_docker(tmp_path, engine=engine)

    result = _make(tmp_path, "down")

    assert result.returncode == 0, result.stderr
    assert "PostgreSQL was not running" in result.stdout
    assert _compose_calls(calls) == expected


def test_make_up_names_an_unknown_mode(
    tmp_path: Path,
) -> None:
    calls = _fake_docker(tmp_path, engine=True)

    result = _make(tmp_path, "up", UP_MODE="containers")

    assert result.returncode != 0
    assert "error: UP_MODE=containers is not auto, host or compose" in result.stderr
    assert _compose_calls(calls) == []


FAKE_GOLDSIGNALS = """#!/bin/sh
if [ "$1" = home ]; then echo "{home}"; fi
exit 0
"""


def _make_clean(project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``make clean`` in ``project``; its goldsignals names ``home``."""
    venv = project.parent / "venv"
    script = venv / "bin" / "goldsignals"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(FAKE_GOLDSIGNALS.format(home=home))
    script.chmod(0o755)
    makefile = str(ROOT / "Makefile")
    return subprocess.run(
        ["make", "-f", makefile, "clean", f"VENV={venv}", "DOCKER=false"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_make_clean_removes_the_state_folder_goldsignals_names(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "keep").mkdir(parents=True)
    state = tmp_path / "state"
    (state / "zenml").mkdir(parents=True)

    result = _make_clean(project, state)

    assert result.returncode == 0, result.stderr
    assert not state.exists()
    assert (project / "keep").is_dir()


@pytest.mark.parametrize("home", ["project", "above", "root"])
def test_make_clean_never_removes_a_folder_holding_the_project(
    tmp_path: Path, home: str
) -> None:
    project = tmp_path / "project"
    (project / "keep").mkdir(parents=True)
    state = {"project": project, "above": tmp_path, "root": Path("/")}[home]

    result = _make_clean(project, state)

    assert result.returncode != 0
    assert f"not removing {state}, which holds {project}" in result.stderr
    assert (project / "keep").is_dir()
