"""Shared pytest fixtures of goldsignals."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goldsignals import postgres_host
from goldsignals.postgres_host import PostgresHost
from tests.helpers import free_port, server_folder
from tests.leakage import RecordingClassifier

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _outside_the_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run every test, and the commands it starts, in an empty folder.

    goldsignals reads ``.env`` from the working folder; a developer's own
    ``.env`` (passwords, another ticker) must not change what a test sees.
    """
    before = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real gold price files (``GOLDSIGNALS_SHARED_DATA``).

    Defaults to ``<project root>/../shared/data``; tests using it are skipped
    when the folder is absent, because the data is never copied into the repo.
    """
    default = PROJECT_ROOT.parent / "shared" / "data"
    folder = Path(os.environ.get("GOLDSIGNALS_SHARED_DATA", default))
    if not folder.is_dir():
        pytest.skip(
            f"real price data folder {folder} is absent; set GOLDSIGNALS_SHARED_DATA"
        )
    return folder


@pytest.fixture(scope="session")
def real_prices(shared_data: Path) -> pd.DataFrame:
    """The real 25-year gold futures history as a plain standard price frame.

    Read with pandas alone (not the project's loader), so feature and split
    tests do not depend on the loader's behaviour.
    """
    prices = pd.read_csv(
        shared_data / "gold_futures_daily.csv", parse_dates=["Date"], index_col="Date"
    )
    prices.columns = prices.columns.str.lower()
    return prices.rename_axis("date").astype(np.float64)


@pytest.fixture
def fit_recorder() -> Iterator[type[RecordingClassifier]]:
    """RecordingClassifier with an empty record of fits, emptied again after."""
    RecordingClassifier.fitted.clear()
    yield RecordingClassifier
    RecordingClassifier.fitted.clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresHost]:
    """A throwaway PostgreSQL server from the host's binaries, on 127.0.0.1."""
    folder = server_folder("goldsignals-pg-")
    host = PostgresHost(data_dir=folder / "data", port=free_port())
    postgres_host.initialise(host)
    postgres_host.start(host)
    postgres_host.wait_until_ready(host)

    yield host

    postgres_host.stop(host)
    shutil.rmtree(folder, ignore_errors=True)
