"""Command line of goldsignals: register the stack, run pipelines, read signals.

Run ``goldsignals --help``. Settings come from ``GOLDSIGNALS_*`` variables (or
``.env``); the environment for ZenML and MLflow is prepared before either is
imported, so that all state stays in the state folder.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from goldsignals.config import Settings, apply_environment, get_settings
from goldsignals.errors import GoldSignalsError

logger = logging.getLogger(__name__)

app = typer.Typer(
    help="Daily gold price signals: ZenML pipelines, MLflow, a signals table.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

PIPELINE_ORDER = ("feature-engineering", "training", "inference")

airflow_app = typer.Typer(help="Airflow 3 on this host (LocalExecutor, 127.0.0.1).")
app.add_typer(airflow_app, name="airflow")
postgres_app = typer.Typer(help="PostgreSQL from the host's binaries (127.0.0.1).")
app.add_typer(postgres_app, name="postgres")
mlflow_app = typer.Typer(help="MLflow tracking server on Postgres (127.0.0.1).")
app.add_typer(mlflow_app, name="mlflow")


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    apply_environment(settings)
    return settings


_OWN_HANDLER = logging.StreamHandler(sys.stderr)
_OWN_HANDLER.setFormatter(
    logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
)


def _setup_logging(verbose: bool) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.addHandler(_OWN_HANDLER)


def _hand_logging_to_zenml() -> None:
    """Import ZenML, whose console handler then prints our log lines too."""
    import zenml  # noqa: F401

    logging.getLogger().removeHandler(_OWN_HANDLER)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Daily gold price signals."""
    _setup_logging(verbose)


@app.command()
def stack(
    config: Annotated[
        Path | None,
        typer.Option(help="Stack YAML (default: GOLDSIGNALS_STACK_CONFIG)."),
    ] = None,
) -> None:
    """Register (or update) the ZenML stack from a YAML file and activate it."""
    settings = _settings()
    _hand_logging_to_zenml()
    from zenml.config.global_config import GlobalConfiguration

    from goldsignals.stack import load_stack_spec, register_stack, stack_variables

    GlobalConfiguration().analytics_opt_in = False
    path = config or settings.stack_config
    spec = load_stack_spec(path, stack_variables(settings))
    for line in register_stack(spec):
        print(line)
    _ensure_mlflow_experiment(settings)


def _ensure_mlflow_experiment(settings: Settings) -> None:
    from mlflow.tracking import MlflowClient

    from goldsignals.registry import ensure_experiment

    uri = settings.tracking_uri
    if uri.startswith("sqlite:"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    local = not uri.startswith(("http://", "https://"))
    root = settings.mlflow_artifact_root if local else None
    client = MlflowClient(tracking_uri=uri)
    experiment_id = ensure_experiment(client, settings.mlflow_experiment, root)
    print(
        f"MLflow experiment {settings.mlflow_experiment} (id {experiment_id}) at {uri}"
    )


def _pipeline_names(pipeline: str) -> tuple[str, ...]:
    names = PIPELINE_ORDER if pipeline == "all" else (pipeline,)
    if any(name not in PIPELINE_ORDER for name in names):
        raise typer.BadParameter(
            f"unknown pipeline {pipeline!r}; choose one of "
            f"{', '.join(PIPELINE_ORDER)} or all"
        )
    return names


@app.command()
def run(
    pipeline: Annotated[
        str,
        typer.Argument(help="feature-engineering, training, inference or all."),
    ] = "all",
    config: Annotated[
        Path | None, typer.Option(help="YAML with the pipeline's parameters.")
    ] = None,
) -> None:
    """Run one pipeline, or all three in order, on the active ZenML stack."""
    names = _pipeline_names(pipeline)
    if config is not None and len(names) > 1:
        raise typer.BadParameter("--config applies to a single pipeline")
    _settings()
    _hand_logging_to_zenml()
    from zenml_pipelines import run_pipeline

    for name in names:
        logger.info("Running pipeline %s", name)
        run_pipeline(name, config)


@app.command(name="compile")
def compile_dags(
    pipeline: Annotated[
        str,
        typer.Argument(help="feature-engineering, training, inference or all."),
    ] = "all",
) -> None:
    """Compile pipelines into Airflow DAG files (needs an Airflow stack)."""
    names = _pipeline_names(pipeline)
    settings = _settings()
    _hand_logging_to_zenml()
    from zenml.client import Client

    from zenml_pipelines.airflow_dags import (
        compile_pipeline,
        load_dags_config,
        remove_stale_dags,
    )

    stack = Client().active_stack
    if stack.orchestrator.flavor != "airflow":
        raise typer.BadParameter(
            f"the active stack {stack.name} has a {stack.orchestrator.flavor} "
            "orchestrator; register an Airflow stack first: goldsignals stack "
            "--config stack_configs/airflow_local.yaml"
        )
    config = load_dags_config()
    for name in names:
        dag_id = compile_pipeline(name, config)
        print(f"compiled {name} -> {settings.dags_dir / (dag_id + '.zip')}")
    keep = {spec.dag_id for spec in config.pipelines.values()}
    for path in remove_stale_dags(settings.dags_dir, keep):
        print(f"removed stale {path}")


@app.command()
def signals(
    ticker: Annotated[str | None, typer.Option(help="Only this ticker.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 10,
) -> None:
    """Print the newest signals as a table."""
    settings = _settings()
    from tabulate import tabulate

    from goldsignals.signal_store import create_signal_engine, read_latest_signals

    engine = create_signal_engine(settings.signals_url)
    frame = read_latest_signals(engine, ticker=ticker, limit=limit)
    if frame.empty:
        print("No signals yet: run `goldsignals run all` (or `make run`).")
        return
    frame["probability"] = frame["probability"].map("{:.3f}".format)
    frame["created_at"] = frame["created_at"].astype(str).str.slice(0, 19)
    print(tabulate(frame, headers="keys", tablefmt="github", showindex=False))


def _airflow_host(settings: Settings) -> Any:
    from goldsignals.airflow_host import AirflowHost

    return AirflowHost(
        home=settings.airflow_home,
        dags_dir=settings.dags_dir,
        host=settings.airflow_host,
        port=settings.airflow_port,
        parallelism=settings.airflow_parallelism,
    )


@airflow_app.command("start")
def airflow_start() -> None:
    """Write airflow.cfg, migrate the database, start the three services."""
    from goldsignals import airflow_host

    airflow = _airflow_host(_settings())
    print(f"config: {airflow_host.write_config(airflow)}")
    airflow_host.migrate_database(airflow)
    for name, pid in airflow_host.start(airflow).items():
        print(f"{name}: pid {pid}")
    try:
        airflow_host.wait_until_healthy(airflow)
    except airflow_host.AirflowHostError:
        airflow_host.stop(airflow)
        raise
    airflow_host.protect_password_file(airflow)
    print(f"Airflow UI: {airflow.base_url} (user admin, password in")
    print(f"  {airflow.passwords_file})")


@airflow_app.command("stop")
def airflow_stop() -> None:
    """Stop the services `goldsignals airflow start` started, by process id."""
    from goldsignals import airflow_host

    stopped = airflow_host.stop(_airflow_host(_settings()))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@airflow_app.command("status")
def airflow_status() -> None:
    """List the running Airflow services."""
    from goldsignals import airflow_host

    airflow = _airflow_host(_settings())
    running = airflow_host.running_services(airflow)
    for name in airflow_host.SERVICES:
        state = f"pid {running[name]}" if name in running else "not running"
        print(f"{name}: {state}")
    if len(running) < len(airflow_host.SERVICES):
        raise typer.Exit(1)


@airflow_app.command("config")
def airflow_config() -> None:
    """Write airflow.cfg and print the AIRFLOW_HOME to export."""
    from goldsignals import airflow_host

    airflow = _airflow_host(_settings())
    airflow_host.write_config(airflow)
    print(f"export AIRFLOW_HOME={airflow.home}")


def _postgres_host(settings: Settings) -> Any:
    from goldsignals.postgres_host import PostgresHost

    return PostgresHost(data_dir=settings.postgres_dir, port=settings.postgres_port)


@postgres_app.command("start")
def postgres_start() -> None:
    """Initialise and start the cluster; create roles, databases, schema."""
    from goldsignals import postgres_host
    from goldsignals.signal_store import create_signal_engine

    settings = _settings()
    if settings.db_password is None or settings.db_reader_password is None:
        raise typer.BadParameter(
            "set GOLDSIGNALS_DB_PASSWORD and GOLDSIGNALS_DB_READER_PASSWORD "
            "(copy .env.example to .env and choose passwords)"
        )
    host = _postgres_host(settings)
    postgres_host.initialise(host)
    postgres_host.start(host)
    postgres_host.wait_until_ready(host)
    for line in postgres_host.ensure_roles_and_databases(
        host,
        owner=settings.db_user,
        owner_password=settings.db_password.get_secret_value(),
        reader=settings.db_reader_user,
        reader_password=settings.db_reader_password.get_secret_value(),
    ):
        print(f"created {line}")
    url = host.url(
        "goldsignals", settings.db_user, settings.db_password.get_secret_value()
    )
    create_signal_engine(url).dispose()
    print(f"PostgreSQL on 127.0.0.1:{host.port}, data in {host.data_dir}")
    for name in postgres_host.DATABASES:
        print(f"  {host.url(name, settings.db_user, '***')}")


@postgres_app.command("stop")
def postgres_stop() -> None:
    """Stop the cluster (fast shutdown)."""
    from goldsignals import postgres_host

    stopped = postgres_host.stop(_postgres_host(_settings()))
    print("stopped PostgreSQL" if stopped else "PostgreSQL was not running")


def _mlflow_host(settings: Settings) -> Any:
    from goldsignals.mlflow_host import MlflowHost

    if settings.db_password is None:
        raise typer.BadParameter(
            "set GOLDSIGNALS_DB_PASSWORD (copy .env.example to .env); the MLflow "
            "server stores runs in the Postgres database mlflow"
        )
    postgres = _postgres_host(settings)
    password = settings.db_password.get_secret_value()
    return MlflowHost(
        home=settings.home / "mlflow-server",
        backend_store_uri=postgres.url("mlflow", settings.db_user, password),
        port=settings.mlflow_port,
    )


@mlflow_app.command("start")
def mlflow_start() -> None:
    """Start the MLflow server on the Postgres database `mlflow`."""
    from goldsignals import mlflow_host

    host = _mlflow_host(_settings())
    pid = mlflow_host.start(host)
    print(f"MLflow server at {host.url} (pid {pid}), artifacts in {host.home}")


@mlflow_app.command("stop")
def mlflow_stop() -> None:
    """Stop the MLflow server."""
    from goldsignals import mlflow_host

    stopped = mlflow_host.stop(_mlflow_host(_settings()))
    print("stopped the MLflow server" if stopped else "MLflow server was not running")


def entrypoint() -> None:
    """Run the app and turn goldsignals' own errors into a one-line message."""
    try:
        app()
    except GoldSignalsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    entrypoint()
