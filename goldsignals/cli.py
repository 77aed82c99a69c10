"""Command line of goldsignals: register the stack, run pipelines, read signals.

Run ``goldsignals --help``. Settings come from ``GOLDSIGNALS_*`` variables (or
``.env``); the environment for ZenML and MLflow is prepared before either is
imported, so that all state stays in the state folder.
"""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from goldsignals.config import (
    PROJECT_ROOT,
    Settings,
    apply_environment,
    get_settings,
)
from goldsignals.errors import GoldSignalsError, SettingsError

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


def _read_settings(*, deployed: bool = True) -> Settings:
    try:
        return get_settings(deployed=deployed)
    except ValidationError as exc:
        raise SettingsError(settings_problems(exc)) from exc
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc


def _settings(*, deployed: bool = True) -> Settings:
    settings = _read_settings(deployed=deployed)
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

    path = config or settings.stack_config
    if settings.deployment_file.is_file():
        raise SettingsError(
            f"this state folder is deployed to the services of `make up` "
            f"({settings.deployment_file}); `make deploy-stack` registers its "
            f"stack. To use {path.name} again, run `goldsignals undeploy` first"
        )
    GlobalConfiguration().analytics_opt_in = False
    spec = load_stack_spec(path, stack_variables(settings))
    for line in register_stack(spec):
        print(line)
    _ensure_mlflow_experiment(settings, settings.tracking_uri)


def _ensure_mlflow_experiment(settings: Settings, uri: str) -> None:
    from mlflow.tracking import MlflowClient

    from goldsignals.registry import ensure_experiment
    from zenml_pipelines import experiment_name

    if uri.startswith("sqlite:"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    local = not uri.startswith(("http://", "https://"))
    root = settings.mlflow_artifact_root if local else None
    client = MlflowClient(tracking_uri=uri)
    name = experiment_name()
    experiment_id = ensure_experiment(client, name, root)
    print(f"MLflow experiment {name} (id {experiment_id}) at {uri}")


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
    from zenml.client import Client
    from zenml.enums import StackComponentType

    from goldsignals.startup import remember_package_index
    from zenml_pipelines import run_pipeline

    remember_package_index()
    stack = Client().active_stack_model
    orchestrator = stack.components[StackComponentType.ORCHESTRATOR][0]
    if orchestrator.flavor_name == "airflow":
        raise SettingsError(
            f"the active stack {stack.name} runs pipelines through Airflow: trigger "
            "their DAGs in the Airflow UI (or `airflow dags trigger`). To run "
            "them here instead, register the embedded stack with `make stack` "
            "(after `.venv/bin/goldsignals undeploy` if `make deploy-stack` ran)"
        )
    for name in names:
        logger.info("Running pipeline %s", name)
        run_pipeline(name, config)


@app.command(name="compile")
def compile_dags(
    pipeline: Annotated[
        str,
        typer.Argument(help="feature-engineering, training, inference or all."),
    ] = "all",
    force: Annotated[
        bool, typer.Option(help="Compile even a DAG whose inputs are unchanged.")
    ] = False,
) -> None:
    """Compile pipelines into Airflow DAG files (needs an Airflow stack).

    A DAG whose inputs (code, configuration, environment, stack) are unchanged
    since its last compile is kept as it is. A DAG to be rewritten while it has
    a queued or running run in Airflow is refused (nothing is rewritten).
    """
    names = _pipeline_names(pipeline)
    settings = _settings()
    _hand_logging_to_zenml()
    from zenml.client import Client

    stack = Client().active_stack
    if stack.orchestrator.flavor != "airflow":
        raise SettingsError(
            f"the active stack {stack.name} has a {stack.orchestrator.flavor} "
            "orchestrator; register an Airflow stack first: goldsignals stack "
            "--config stack_configs/airflow_local.yaml"
        )
    _compile(settings, names, force=force)


def _compile(
    settings: Settings, names: tuple[str, ...], *, force: bool = False
) -> None:
    from goldsignals.airflow_runs import refuse_while_running
    from zenml_pipelines.airflow_dags import (
        compile_fingerprint,
        compile_pipeline,
        fingerprint_path,
        load_dags_config,
        remove_stale_dags,
        step_environment,
    )

    config = load_dags_config()
    environment = step_environment(settings)
    changed = []
    for name in names:
        dag_id = config.pipelines[name].dag_id
        dag_file = settings.dags_dir / f"{dag_id}.zip"
        mark = fingerprint_path(settings.dags_dir, dag_id)
        fingerprint = compile_fingerprint(name, config, environment)
        kept = dag_file.is_file() and mark.is_file()
        if not force and kept and mark.read_text() == fingerprint:
            print(f"unchanged DAG {dag_id} ({dag_file})")
            continue
        changed.append((name, dag_id, mark, fingerprint))
    airflow = _airflow_host(settings)
    busy = [dag_id for _, dag_id, _, _ in changed]
    refuse_while_running(airflow.base_url, airflow.passwords_file, busy)

    for name, dag_id, mark, fingerprint in changed:
        mark.unlink(missing_ok=True)
        compile_pipeline(name, config, environment)
        mark.write_text(fingerprint)
        print(f"compiled {name} -> {settings.dags_dir / (dag_id + '.zip')}")
    keep = {spec.dag_id for spec in config.pipelines.values()}
    for path in remove_stale_dags(settings.dags_dir, keep):
        print(f"removed stale {path}")
    if settings.max_price_age_days == 0:
        print(
            "note: the DAGs accept prices of any age when Yahoo cannot be "
            "reached (GOLDSIGNALS_MAX_PRICE_AGE_DAYS=0, the Makefile's offline "
            "default); on a host that reaches Yahoo set it, e.g. to 7, in .env"
        )


@app.command("deploy-stack")
def deploy_stack(
    config: Annotated[
        Path, typer.Option(help="Stack YAML of the deployment.")
    ] = PROJECT_ROOT / "stack_configs" / "airflow_host.yaml",
) -> None:
    """Register the Airflow stack against the running services; compile the DAGs.

    Probes Postgres, the MLflow server, the ZenML server and Airflow first and
    fails in seconds, naming any that is down. Then migrates the signals
    schema, connects the ZenML client to the ZenML server, registers the stack
    and activates it, records the deployment in the state folder (so every
    later command uses it) and compiles the three DAGs. Idempotent.
    """
    from goldsignals import deploy, zenml_server
    from goldsignals.signal_store import create_signal_engine

    # The deployment is derived anew from the environment and .env (ports
    # and URLs may have changed since the last one), never from itself.
    settings = _settings(deployed=False)
    zenml_url = settings.zenml_server_url or zenml_server.from_settings(settings).url
    deployment = deploy.plan_deployment(settings, zenml_url=zenml_url)
    deploy.check_services(deployment)
    print(f"Postgres: {deployment.signals_db_url}")
    print(f"MLflow server: {deployment.tracking_uri}")
    print(f"Airflow: {deployment.airflow_url}")
    deploy.apply_deployment(deployment)
    create_signal_engine(deployment.signals_db_url).dispose()
    print("signals schema migrated to the newest revision")

    print(f"ZenML server: {zenml_url}")
    _hand_logging_to_zenml()
    if settings.zenml_server_url is None:
        zenml_server.connect(zenml_server.from_settings(settings))
    else:
        zenml_server.require_client_store(zenml_url)
    print(f"ZenML client uses the server at {zenml_url} (dashboard)")
    from goldsignals.stack import (
        ensure_secret,
        load_stack_spec,
        register_stack,
        stack_variables,
    )

    password = settings.mlflow_tracking_password
    print(
        ensure_secret(
            "goldsignals_mlflow",
            {
                "username": settings.mlflow_tracking_username,
                "password": password.get_secret_value() if password else "unchecked",
            },
        )
    )
    spec = load_stack_spec(config, stack_variables(settings))
    for line in register_stack(spec):
        print(line)
    _ensure_mlflow_experiment(settings, deployment.tracking_uri)
    path = deploy.write_deployment_file(settings.deployment_file, deployment)
    print(f"deployment settings in {path}")
    _compile(_settings(), PIPELINE_ORDER)
    print(f"Done: trigger the DAGs in the Airflow UI at {deployment.airflow_url}")


@app.command()
def undeploy() -> None:
    """Forget the deployment: commands use the embedded defaults again.

    Removes the recorded deployment settings and the compiled DAG files (they
    point at the deployed services), and points the ZenML client back at its
    local store (the same database the server served). The services keep
    running; `make down` stops them.
    """
    from goldsignals import zenml_server
    from zenml_pipelines.airflow_dags import remove_stale_dags

    settings = _settings()
    if settings.deployment_file.is_file():
        settings.deployment_file.unlink()
        print(f"removed {settings.deployment_file}")
    for path in remove_stale_dags(settings.dags_dir, keep=set()):
        print(f"removed {path} (Airflow stops scheduling it)")
    _hand_logging_to_zenml()
    if zenml_server.disconnect():
        print("ZenML client is back on its local store")
    print("register a stack again: `make stack` (embedded) or `make deploy-stack`")


model_app = typer.Typer(help="The registered model: champion alias, rollback.")
app.add_typer(model_app, name="model")


def _actor() -> str:
    import getpass
    import socket

    return f"{getpass.getuser()}@{socket.gethostname()}"


@model_app.command("champion")
def model_champion() -> None:
    """Show the champion version and every recorded move of its alias."""
    settings = _settings()
    from mlflow.tracking import MlflowClient

    from goldsignals.registry import champion_history, champion_version

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    name = settings.model_name
    current = champion_version(client, name)
    print(f"{name}@champion: " + (f"v{current}" if current else "none yet"))
    for move in champion_history(client, name):
        before = f"v{move['from_version']}" if move["from_version"] else "none"
        print(
            f"  {move['at']}  {before} -> v{move['to_version']}  "
            f"by {move['by']}: {move['reason']}"
        )


@model_app.command("rollback")
def model_rollback(
    reason: Annotated[str, typer.Option(help="Why; recorded in MLflow.")],
) -> None:
    """Give the champion alias back to the previous champion."""
    if not reason.strip():
        raise SettingsError(
            "--reason is empty; say why the champion goes back, e.g. "
            "--reason 'v3 signals drifted'; it is recorded with the move in MLflow"
        )
    settings = _settings()
    from mlflow.tracking import MlflowClient

    from goldsignals.registry import roll_back_champion

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    move = roll_back_champion(
        client, settings.model_name, actor=_actor(), reason=reason
    )
    print(
        f"{settings.model_name}@champion: v{move['from_version']} -> "
        f"v{move['to_version']} ({move['reason']})"
    )


SIGNAL_COLUMNS = (
    "ticker",
    "as_of_date",
    "signal",
    "probability",
    "model_version",
    "model_alias",
    "realised_return",
    "outcome_correct",
    "created_at",
)
LINEAGE_COLUMNS = (
    "model_name",
    "mlflow_run_id",
    "zenml_run_id",
    "last_price_date",
    "feature_hash",
)


@app.command()
def home() -> None:
    """Print the state folder (GOLDSIGNALS_HOME as resolved); create nothing."""
    print(_read_settings().home)


@app.command()
def signals(
    ticker: Annotated[str | None, typer.Option(help="Only this ticker.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 10,
    lineage: Annotated[
        bool, typer.Option(help="Also show runs, data date and feature hash.")
    ] = False,
) -> None:
    """Print the newest signals and the track record of those issued."""
    settings = _settings()
    import pandas as pd
    from tabulate import tabulate

    from goldsignals.signal_store import (
        create_signal_engine,
        read_latest_signals,
        redacted_url,
        track_record,
    )

    if settings.signals_db_url is None and not settings.default_signals_db.is_file():
        print(
            "No signals yet: run `goldsignals run all` (or `make run`), or, on "
            "the Airflow stack, trigger gold_inference"
        )
        return
    engine = create_signal_engine(settings.signals_url, create=False)
    frame = read_latest_signals(engine, ticker=ticker, limit=limit)
    record = track_record(engine, ticker=ticker)
    engine.dispose()
    if frame.empty and ticker is not None:
        print(
            f"No signals for ticker {ticker!r} in {redacted_url(settings.signals_url)}"
            "; leave out --ticker to see every ticker's"
        )
        return
    if frame.empty:
        print(
            "No signals yet: run `goldsignals run all` (or `make run`), or, on "
            "the Airflow stack, trigger gold_inference"
        )
        return
    columns = list(SIGNAL_COLUMNS) + (list(LINEAGE_COLUMNS) if lineage else [])
    frame = frame[columns]
    frame["probability"] = frame["probability"].map("{:.3f}".format)
    frame["realised_return"] = frame["realised_return"].map(
        lambda value: "" if pd.isna(value) else f"{value:+.4f}"
    )
    frame["created_at"] = frame["created_at"].astype(str).str.slice(0, 19)
    # tabulate reads DataFrames (it special-cases them); its stubs omit them.
    table = tabulate(
        frame,  # type: ignore[arg-type]
        headers="keys",
        tablefmt="github",
        showindex=False,
    )
    print(table)
    if record.signals == 0:
        print("Track record: no signal has a known next close yet.")
        return
    hits = (
        f"hit rate {record.hit_rate:.1%}"
        if record.calls
        else "no hit rate yet (every signal was HOLD)"
    )
    print(
        f"Track record: {record.signals} signals from {record.first_date} to "
        f"{record.last_date} with a known next close; {record.calls} BUY/SELL "
        f"calls, {hits}; following them (long on BUY, short on SELL, flat on "
        f"HOLD, before costs): {record.cumulative_return:+.2%}"
    )


def _airflow_host(settings: Settings, database: str | None = None) -> Any:
    from goldsignals.airflow_host import AirflowHost

    metadata_url = {
        None: None,
        "sqlite": f"sqlite:///{settings.airflow_home / 'airflow.db'}",
        "postgres": settings.host_database_url("airflow"),
    }[database]
    return AirflowHost(
        home=settings.airflow_home,
        dags_dir=settings.dags_dir,
        host=settings.airflow_host,
        port=settings.airflow_port,
        parallelism=settings.airflow_parallelism,
        metadata_url=metadata_url,
        step_server=settings.airflow_step_server,
    )


class MetadataDatabase(StrEnum):
    """Where Airflow keeps its metadata."""

    SQLITE = "sqlite"
    POSTGRES = "postgres"


AirflowDatabase = Annotated[
    MetadataDatabase | None,
    typer.Option(
        "--database",
        help="Metadata database: a SQLite file in the Airflow home, or the "
        "database `airflow` of `goldsignals postgres start`. Default: keep the "
        "one airflow.cfg names (SQLite for a new home).",
    ),
]


@airflow_app.command("start")
def airflow_start(database: AirflowDatabase = None) -> None:
    """Write airflow.cfg, migrate the database, start the three services."""
    from goldsignals import airflow_host

    settings = _settings()
    if database == "postgres" and not settings.pgpass_file.is_file():
        raise SettingsError(
            f"no Postgres password file at {settings.pgpass_file}; run "
            "`goldsignals postgres start` (or `make up`) before "
            "`goldsignals airflow start --database postgres`"
        )
    airflow = _airflow_host(settings, database)
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
    for name in airflow.services:
        state = f"pid {running[name]}" if name in running else "not running"
        print(f"{name}: {state}")
    if any(name not in running for name in airflow.services):
        raise typer.Exit(1)


@airflow_app.command("config")
def airflow_config() -> None:
    """Write airflow.cfg and print the AIRFLOW_HOME to export."""
    from goldsignals import airflow_host

    airflow = _airflow_host(_settings())
    airflow_host.write_config(airflow)
    print(f"export AIRFLOW_HOME={airflow.home}")


EXAMPLE_PASSWORDS = frozenset({"change-me", "change-me-too"})
"""The placeholders of .env.example, never accepted as passwords."""
MIN_PASSWORD = 8
"""Fewest characters of a database password."""


def _postgres_host(settings: Settings) -> Any:
    from goldsignals.postgres_host import PostgresHost

    return PostgresHost(data_dir=settings.postgres_dir, port=settings.postgres_port)


@postgres_app.command("start")
def postgres_start() -> None:
    """Initialise and start the cluster; create roles, databases, schema."""
    from goldsignals import postgres_host
    from goldsignals.signal_store import create_signal_engine

    settings = _settings()
    passwords = {
        "GOLDSIGNALS_DB_PASSWORD": settings.db_password,
        "GOLDSIGNALS_DB_READER_PASSWORD": settings.db_reader_password,
    }
    plain = {k: v.get_secret_value() if v else "" for k, v in passwords.items()}
    blank = [name for name, value in plain.items() if not value.strip()]
    if blank:
        raise SettingsError(
            f"{' and '.join(blank)} must be set to a non-blank password "
            "(copy .env.example to .env and choose passwords); nothing was started"
        )
    examples = [name for name, value in plain.items() if value in EXAMPLE_PASSWORDS]
    if examples:
        raise SettingsError(
            f"{' and '.join(examples)} still hold the example value of "
            ".env.example; choose real passwords in .env; nothing was started"
        )
    short = [name for name, value in plain.items() if len(value) < MIN_PASSWORD]
    if short:
        raise SettingsError(
            f"{' and '.join(short)} must have at least {MIN_PASSWORD} characters; "
            "choose longer passwords in .env; nothing was started"
        )
    if len(set(plain.values())) == 1:
        raise SettingsError(
            "GOLDSIGNALS_DB_PASSWORD and GOLDSIGNALS_DB_READER_PASSWORD are equal, "
            "so the read-only role's password would open the owner's role too; "
            "choose two passwords in .env; nothing was started"
        )
    owner_password = plain["GOLDSIGNALS_DB_PASSWORD"]
    reader_password = plain["GOLDSIGNALS_DB_READER_PASSWORD"]
    host = _postgres_host(settings)
    postgres_host.initialise(host)
    postgres_host.start(host)
    postgres_host.wait_until_ready(host)
    for line in postgres_host.ensure_roles_and_databases(
        host,
        owner=settings.db_user,
        owner_password=owner_password,
        reader=settings.db_reader_user,
        reader_password=reader_password,
    ):
        print(f"created {line}")
    pgpass = postgres_host.write_pgpass(
        settings.pgpass_file,
        host.port,
        {settings.db_user: owner_password, settings.db_reader_user: reader_password},
    )
    create_signal_engine(settings.host_database_url("goldsignals")).dispose()
    print(f"PostgreSQL on 127.0.0.1:{host.port}, data in {host.data_dir}")
    print(f"  passwords in {pgpass} (export PGPASSFILE={pgpass} for psql)")
    for name in postgres_host.DATABASES:
        print(f"  {settings.host_database_url(name)}")


@postgres_app.command("stop")
def postgres_stop() -> None:
    """Stop the cluster (fast shutdown)."""
    from goldsignals import postgres_host

    stopped = postgres_host.stop(_postgres_host(_settings()))
    print("stopped PostgreSQL" if stopped else "PostgreSQL was not running")


def _mlflow_host(settings: Settings) -> Any:
    from goldsignals.mlflow_host import MlflowHost

    return MlflowHost(
        home=settings.home / "mlflow-server",
        backend_store_uri=settings.host_database_url("mlflow"),
        port=settings.mlflow_port,
    )


@mlflow_app.command("start")
def mlflow_start() -> None:
    """Start the MLflow server on the Postgres database `mlflow`."""
    from goldsignals import mlflow_host

    settings = _settings()
    if not settings.pgpass_file.is_file():
        raise SettingsError(
            f"no Postgres password file at {settings.pgpass_file}; the MLflow "
            "server keeps its runs in Postgres: run `goldsignals postgres start` "
            "(or `make up`) first"
        )
    host = _mlflow_host(settings)
    pid = mlflow_host.start(host)
    print(f"MLflow server at {host.url} (pid {pid}), artifacts in {host.home}")


@mlflow_app.command("stop")
def mlflow_stop() -> None:
    """Stop the MLflow server."""
    from goldsignals import mlflow_host

    stopped = mlflow_host.stop(_mlflow_host(_settings()))
    print("stopped the MLflow server" if stopped else "MLflow server was not running")


zenml_server_app = typer.Typer(
    help="ZenML server and dashboard from .venv-zenml-server (127.0.0.1, no auth)."
)
app.add_typer(zenml_server_app, name="zenml-server")


def _zenml_server(settings: Settings) -> Any:
    from goldsignals.zenml_server import from_settings

    return from_settings(settings)


@zenml_server_app.command("start")
def zenml_server_start() -> None:
    """Install the server's environment if needed and start the server."""
    from goldsignals import zenml_server

    server = _zenml_server(_settings())
    if zenml_server.ensure_environment(server):
        print(f"installed the ZenML server environment in {server.venv}")
    pid = zenml_server.start(server)
    print(f"ZenML dashboard at {server.url} (pid {pid}), log {server.log_file}")
    print("`make deploy-stack` points the ZenML client at it (or zenml-server connect)")


@zenml_server_app.command("stop")
def zenml_server_stop() -> None:
    """Stop the ZenML server (the client stays connected; see disconnect)."""
    from goldsignals import zenml_server

    stopped = zenml_server.stop(_zenml_server(_settings()))
    print("stopped the ZenML server" if stopped else "ZenML server was not running")


@zenml_server_app.command("connect")
def zenml_server_connect() -> None:
    """Make the ZenML client of this state folder use the running server."""
    from goldsignals import zenml_server

    server = _zenml_server(_settings())
    _hand_logging_to_zenml()
    config_folder = zenml_server.connect(server)
    print(f"ZenML client ({config_folder}) now uses {server.url}")


@zenml_server_app.command("disconnect")
def zenml_server_disconnect() -> None:
    """Make the ZenML client use its local SQLite store again."""
    from goldsignals import zenml_server

    _settings()
    _hand_logging_to_zenml()
    if zenml_server.disconnect():
        print("ZenML client is back on its local store")
    else:
        print("ZenML client was not connected to a server")


@app.command()
def evaluate(
    prices: Annotated[
        Path | None,
        typer.Option(help="Price file (default: GOLDSIGNALS_SEED_CSV)."),
    ] = None,
    short: Annotated[
        bool, typer.Option("--short/--flat", help="SELL goes short, or flat.")
    ] = True,
    cost_bps: Annotated[
        float,
        typer.Option(min=0.0, help="Basis points per unit of position change."),
    ] = 2.0,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder (default: $GOLDSIGNALS_HOME/reports/evaluation)."),
    ] = None,
) -> None:
    """Walk-forward scores, test window and backtest of the configured model."""
    blocked = _file_in_path(out) if out is not None else None
    if blocked is not None:
        raise SettingsError(
            f"--out {out}: {blocked} is a file; name a folder for the report (it "
            "is created if missing)"
        )
    settings = _settings()
    path = prices or settings.seed_csv
    if path is None:
        raise SettingsError(
            "no price file: pass --prices PATH or set GOLDSIGNALS_SEED_CSV "
            "(the Makefile sets it to ../shared/data/gold_futures_daily.csv)"
        )
    from goldsignals.backtest import BacktestConfig
    from goldsignals.config import PIPELINE_CONFIG_DIR
    from goldsignals.report import (
        build_report,
        load_report_config,
        read_clean_prices,
        render_markdown,
        write_report,
    )

    backtest = BacktestConfig(short=short, cost_bps=cost_bps)
    config = load_report_config(PIPELINE_CONFIG_DIR, backtest=backtest)

    clean = read_clean_prices(path, repair_ohlc=config.repair_ohlc)

    report = build_report(clean, config)
    print(render_markdown(report))
    folder = out or settings.home / "reports" / "evaluation"
    for written in write_report(report, folder):
        print(f"wrote {written}")


def _file_in_path(folder: Path) -> Path | None:
    """The nearest existing part of ``folder`` when it is not a folder."""
    for part in (folder, *folder.parents):
        if part.exists():
            return None if part.is_dir() else part
    return None


def settings_problems(exc: ValidationError) -> str:
    """Each invalid setting with its problem, on one line."""
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if not name:
            problems.append(message)
            continue
        given = error.get("input")
        shown = (
            ""
            if "password" in name or isinstance(given, dict) or given is None
            else f"={given!r}"
        )
        problems.append(f"GOLDSIGNALS_{name.upper()}{shown}: {message}")
    return (
        "; ".join(problems) + " (fix or unset it in the environment or .env; "
        "the README's Settings table lists each setting)"
    )


def one_line(message: str) -> str:
    """A possibly multi-line error message as one line.

    Lines that start with ``- `` (one broken rule each) are joined by ``; ``.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = ""
    for line in lines:
        if line.startswith("- "):
            separator = " " if text.endswith(":") else "; "
            text += separator + line[2:]
        else:
            text += (" " if text else "") + line
    return text


def entrypoint() -> None:
    """Run the app and turn goldsignals' own errors into a one-line message."""
    try:
        app()
    except GoldSignalsError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        raise SystemExit(2) from exc
    except OSError as exc:
        if exc.filename is None:
            raise
        print(f"error: {file_problem(exc)}", file=sys.stderr)
        raise SystemExit(2) from exc


def file_problem(exc: OSError) -> str:
    """A file system error as the path, the reason and what to check."""
    return (
        f"{exc.strerror or exc}: {exc.filename}; check that the path exists and "
        "is writable by this user, or point GOLDSIGNALS_HOME at a folder that is"
    )


if __name__ == "__main__":
    entrypoint()
