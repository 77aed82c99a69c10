"""A training run logs, registers and reloads a model through MLflow's server.

The server is real, with a Postgres backend store, and started by the test.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from goldsignals import mlflow_host, postgres_host
from goldsignals.mlflow_host import MlflowHost
from goldsignals.postgres_host import PostgresHost
from tests.helpers import free_port, isolated_env, python

pytestmark = pytest.mark.postgres

ROUND_TRIP = """
import numpy as np, pandas as pd, mlflow
from mlflow.tracking import MlflowClient
from goldsignals.features import FEATURE_COLUMNS
from goldsignals.modeling import ModelConfig, build_estimator, bundle_model
from goldsignals.modeling import train_classifier, up_probability
from goldsignals.registry import (
    ensure_experiment, load_version, log_served_model, select_best_version)
from goldsignals.splitting import fit_scaler, scale_features

rng = np.random.default_rng(0)
index = pd.bdate_range("2020-01-01", periods=300, name="date")
frame = pd.DataFrame(rng.normal(size=(300, len(FEATURE_COLUMNS))), index=index,
                     columns=list(FEATURE_COLUMNS))
frame["forward_return"] = frame[FEATURE_COLUMNS[0]] / 100
frame["target"] = (frame["forward_return"] > 0).astype(float)
scaler = fit_scaler(frame)
classifier = train_classifier(
    build_estimator(ModelConfig(params={"n_estimators": 10})),
    scale_features(scaler, frame))
model = bundle_model(scaler, classifier)

client = MlflowClient()
experiment = ensure_experiment(client, "server-test", None)
with mlflow.start_run(experiment_id=experiment) as run:
    mlflow.log_metric("f1", 0.75)
    logged = log_served_model(model, frame.tail(5))
mlflow.register_model(logged.model_uri, "server-model")
ref = select_best_version(client, name="server-model", metric="f1")
loaded = load_version(ref)
same = np.allclose(up_probability(loaded, frame), up_probability(model, frame))
print(ref.version, ref.metric_value, same)
"""


@pytest.fixture
def server(postgres: PostgresHost) -> Iterator[MlflowHost]:
    name = f"mlflow_{uuid.uuid4().hex[:8]}"
    postgres_host.psql(postgres, f"CREATE DATABASE {name}")
    home = Path(tempfile.mkdtemp(prefix="goldsignals-mlflow-"))
    host = MlflowHost(home=home, backend_store_uri=postgres.url(name), port=free_port())
    mlflow_host.start(host)

    yield host

    mlflow_host.stop(host)


def test_model_logs_registers_and_reloads_through_server(
    server: MlflowHost, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = isolated_env(tmp_path, MLFLOW_TRACKING_URI=server.url, TMPDIR=str(scratch))

    output = python(env, ROUND_TRIP).splitlines()[-1]

    assert output == "1 0.75 True"
    assert not any(scratch.rglob("MLmodel")), "the reload left its download behind"
    assert (server.home / "artifacts").is_dir()
    assert any((server.home / "artifacts").rglob("MLmodel"))


def test_server_stop_ends_process(server: MlflowHost) -> None:
    assert mlflow_host.running_pid(server) is not None

    assert mlflow_host.stop(server)
    assert mlflow_host.running_pid(server) is None
