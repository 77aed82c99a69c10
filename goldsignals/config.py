"""Settings of goldsignals, read from ``GOLDSIGNALS_*`` environment variables.

Every location the product writes to is derived from one state folder
(``GOLDSIGNALS_HOME``, default ``.goldsignals`` in the project root), so that
``make clean`` removes all local state and nothing lands in the user's home.
"""

from __future__ import annotations

import datetime as dt
import difflib
import grp
import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from dotenv.parser import parse_stream
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from goldsignals.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PIPELINE_CONFIG_DIR = PROJECT_ROOT / "zenml_pipelines" / "configs"
"""The pipelines' parameter files (also read by the evaluation report)."""

OFFLINE_ENVIRONMENT = {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "ZENML_ENABLE_REPO_INIT_WARNINGS": "false",
    "ZENML_LOGGING_COLORS_DISABLED": "true",
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
    "ZENML_DISABLE_INTERACTIVE_INPUT": "true",
    "GIT_PYTHON_REFRESH": "quiet",
}

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""Registered model names: MLflow URIs (``models:/NAME@alias``) take them as is."""

DEFAULT_PREFIX = "GOLDSIGNALS_DEFAULT_"
"""Variables below every other source: ``GOLDSIGNALS_DEFAULT_X`` gives setting
``X`` only where the environment, ``.env`` and ``deployment.env`` do not (the
Makefile's offline defaults)."""

OTHER_VARIABLES = frozenset(
    {
        "GOLDSIGNALS_SHARED_DATA",
        "GOLDSIGNALS_STEP_SERVER_SOCKET",
        "GOLDSIGNALS_DAGS_DIR",
        "GOLDSIGNALS_ARTIFACT_BUCKET",
        "GOLDSIGNALS_REGISTRY",
        "GOLDSIGNALS_K8S_NAMESPACE",
        "GOLDSIGNALS_TEST_ARTIFACTS",
    }
)
"""``GOLDSIGNALS_*`` variables that are not settings: the tests' data and
artifact folders, the step server's socket and the stack files' placeholders."""

URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")

SERVICE_TIMEOUTS = {
    # MLflow's client retries a dead server for minutes by default (7 tries,
    # backoff factor 2); a step should fail within seconds and say why.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class Settings(BaseSettings):
    """Where goldsignals keeps its state and which market it follows.

    Attributes:
        home: The state folder; every default location below lives inside it.
        ticker: Yahoo Finance ticker of the instrument.
        price_source: ``yfinance`` fetches from Yahoo (incrementally, falling
            back to the stored history); ``csv`` reads ``price_csv``.
        price_csv: A price file in any supported layout, read when
            ``price_source`` is ``csv``.
        seed_csv: A price file that seeds an empty history when Yahoo cannot
            be reached (for example ``../shared/data/gold_futures_daily.csv``).
        seed_ticker: The ticker whose prices ``seed_csv`` holds; it seeds no
            other ticker's history.
        history_start: First date asked of Yahoo for an empty history.
        signals_db_url: SQLAlchemy URL of the signals database.
        mlflow_tracking_uri: MLflow tracking URI (SQLite file or server URL).
        model_name: Name of the model in the MLflow model registry.
        yahoo_retries: Attempts after a failed Yahoo download before falling
            back to the stored history (0: try once).
        yahoo_backoff_seconds: Wait before the first retry; it doubles at
            each further retry (2, 4, 8 s by default), up to 60 s.
        airflow_step_server: Run the ZenML steps of Airflow tasks in children
            of a warm step server (``goldsignals.step_server``) rather than
            in a fresh interpreter each.
        zenml_server_url: A ZenML server that goldsignals does not start
            (the compose file's); unset, ``deploy-stack`` uses the one of
            ``goldsignals zenml-server start`` on ``zenml_server_port``.
        max_price_age_days: Calendar days the newest stored price may lag
            today's New York date when Yahoo cannot be reached (the stored
            history or the seed file); older prices fail the run. 0 accepts
            any age.
        max_daily_move: Largest share by which a new close may move from the
            close before it (0.25: 25 %); a bigger move of a download, price
            file or seed file fails the run and nothing is stored. The default
            is goldsignals.cleaning.MAX_DAILY_MOVE.
    """

    model_config = SettingsConfigDict(
        env_prefix="GOLDSIGNALS_", env_file=".env", extra="ignore"
    )

    home: Path = PROJECT_ROOT / ".goldsignals"
    ticker: str = "GC=F"
    price_source: Literal["yfinance", "csv"] = "yfinance"
    price_csv: Path | None = None
    seed_csv: Path | None = None
    seed_ticker: str = "GC=F"
    history_start: dt.date = dt.date(2000, 1, 1)
    signals_db_url: str | None = None
    mlflow_tracking_uri: str | None = None
    model_name: str = "gold-direction-classifier"
    stack_config: Path = PROJECT_ROOT / "stack_configs" / "embedded.yaml"
    yahoo_timeout_seconds: float = Field(default=20.0, gt=0, allow_inf_nan=False)
    yahoo_retries: int = Field(default=3, ge=0)
    yahoo_backoff_seconds: float = Field(default=2.0, ge=0, allow_inf_nan=False)
    max_price_age_days: int = Field(default=7, ge=0)
    max_daily_move: float = Field(default=0.25, gt=0, allow_inf_nan=False)
    airflow_dags_dir: Path | None = None
    airflow_host: str = "127.0.0.1"
    airflow_port: int = Field(default=8080, ge=1, le=65535)
    airflow_parallelism: int = Field(default=4, ge=1)
    airflow_step_server: bool = True
    postgres_port: int = Field(default=5433, ge=1, le=65535)
    mlflow_port: int = Field(default=5000, ge=1, le=65535)
    zenml_server_port: int = Field(default=8237, ge=1, le=65535)
    zenml_server_venv: Path = PROJECT_ROOT / ".venv-zenml-server"
    zenml_server_url: str | None = None
    mlflow_tracking_username: str = "goldsignals"
    mlflow_tracking_password: SecretStr | None = None
    db_user: str = "goldsignals"
    db_password: SecretStr | None = None
    db_reader_user: str = "goldsignals_reader"
    db_reader_password: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Add the ``GOLDSIGNALS_DEFAULT_*`` variables below every source."""
        defaults = EnvSettingsSource(settings_cls, env_prefix=DEFAULT_PREFIX)
        return (init_settings, env_settings, dotenv_settings, defaults)

    @field_validator("ticker", "seed_ticker")
    @classmethod
    def _ticker_is_plain(cls, value: str) -> str:
        cleaned = value.strip().upper()
        if not cleaned or any(ch.isspace() or ch in "/\\" for ch in cleaned):
            raise ValueError(
                f"ticker {value!r} is not a Yahoo ticker; use a symbol such as 'GC=F'"
            )
        return cleaned

    @field_validator(
        "home",
        "price_csv",
        "seed_csv",
        "stack_config",
        "airflow_dags_dir",
        "zenml_server_venv",
        mode="before",
    )
    @classmethod
    def _path_is_not_empty(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "the path is empty; name a path or unset the variable (an empty "
                "one would mean the current folder)"
            )
        return value

    @field_validator("price_csv", "seed_csv")
    @classmethod
    def _path_is_absolute(cls, value: Path | None) -> Path | None:
        # Airflow runs steps in a temporary folder: a relative path must be
        # resolved where it was given.
        return value.expanduser().absolute() if value is not None else None

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _tracking_uri_has_scheme(cls, value: str | None) -> str | None:
        if value is not None and not URI_SCHEME.match(value):
            raise ValueError(
                f"tracking URI {value!r} has no scheme; use a server URL such as "
                "'http://127.0.0.1:5000' or a database such as 'sqlite:///mlflow.db'"
            )
        return value

    @field_validator("zenml_server_url")
    @classmethod
    def _server_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{value!r} is not an HTTP URL; use one such as 'http://127.0.0.1:8237'"
            )
        return value

    @field_validator("model_name")
    @classmethod
    def _model_name_is_plain(cls, value: str) -> str:
        if not MODEL_NAME.fullmatch(value):
            raise ValueError(
                f"model name {value!r} is not a plain registry name; use letters, "
                "digits, '.', '_' and '-', starting with a letter or digit, e.g. "
                "'gold-direction-classifier' (GOLDSIGNALS_MODEL_NAME)"
            )
        return value

    @field_validator("home")
    @classmethod
    def _home_is_a_state_folder(cls, value: Path) -> Path:
        home = value.expanduser().resolve()
        kept = {Path("/"), Path.home().resolve(), PROJECT_ROOT}
        if home in kept or home in PROJECT_ROOT.parents:
            raise ValueError(
                f"{home} holds more than goldsignals' state (it is /, the home "
                "folder, the project or a folder above it), and `make clean` "
                "removes the state folder; name a folder of its own, e.g. "
                f"{PROJECT_ROOT / '.goldsignals'}"
            )
        if home.exists() and not home.is_dir():
            raise ValueError(f"{home} is a file; name a folder for the state")
        return home

    @model_validator(mode="after")
    def _csv_source_has_a_file(self) -> Settings:
        if self.price_source == "csv" and self.price_csv is None:
            raise ValueError(
                "GOLDSIGNALS_PRICE_SOURCE is 'csv' but GOLDSIGNALS_PRICE_CSV is not "
                "set; set it to a price file such as "
                "../shared/data/gold_futures_daily.csv"
            )
        return self

    @cached_property
    def data_dir(self) -> Path:
        """Folder of the price history and the embedded signals database."""
        return self.home / "data"

    @property
    def history_path(self) -> Path:
        """Parquet file of the stored price history of ``ticker``."""
        safe = "".join(ch if ch.isalnum() else "_" for ch in self.ticker)
        return self.data_dir / "prices" / f"{safe}.parquet"

    @property
    def default_signals_db(self) -> Path:
        """The embedded signals database, used while no URL is set."""
        return self.data_dir / "signals.db"

    @property
    def signals_url(self) -> str:
        """SQLAlchemy URL of the signals database (SQLite file by default)."""
        return self.signals_db_url or f"sqlite:///{self.default_signals_db}"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI (SQLite file in the state folder by default)."""
        default = f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"
        return self.mlflow_tracking_uri or default

    @property
    def mlflow_artifact_root(self) -> Path:
        """Where MLflow keeps run artifacts of the embedded tracking store."""
        return self.home / "mlflow" / "artifacts"

    @property
    def dags_dir(self) -> Path:
        """Where compiled Airflow DAGs are written and Airflow reads them."""
        return self.airflow_dags_dir or PROJECT_ROOT / "dags"

    @property
    def airflow_home(self) -> Path:
        """Airflow's home: configuration, logs, metadata database, pids."""
        return self.home / "airflow"

    @property
    def postgres_dir(self) -> Path:
        """Data directory of the host-mode PostgreSQL cluster."""
        return self.home / "postgres" / "data"

    @property
    def pgpass_file(self) -> Path:
        """Libpq password file of the host-mode server (mode 600).

        Every client (psycopg2, asyncpg, ``psql``) finds passwords in it
        through ``PGPASSFILE``, so URLs, DAG files and process lists carry none.
        """
        return self.home / "postgres" / "pgpass"

    @property
    def deployment_file(self) -> Path:
        """Settings written by ``goldsignals deploy-stack`` (no secrets)."""
        return self.home / "deployment.env"

    def host_database_url(self, database: str) -> str:
        """Password-less URL of ``database`` on the host-mode server."""
        return (
            f"postgresql+psycopg2://{self.db_user}@127.0.0.1:"
            f"{self.postgres_port}/{database}"
        )

    @property
    def zenml_config_path(self) -> Path:
        """ZenML global configuration and local store."""
        return self.home / "zenml"

    @property
    def artifact_store_path(self) -> Path:
        """Root of ZenML's local artifact store."""
        return self.home / "artifacts"


STEP_SETTINGS = (
    "home",
    "ticker",
    "price_source",
    "price_csv",
    "seed_csv",
    "seed_ticker",
    "history_start",
    "signals_db_url",
    "mlflow_tracking_uri",
    "model_name",
    "yahoo_timeout_seconds",
    "yahoo_retries",
    "yahoo_backoff_seconds",
    "max_price_age_days",
    "max_daily_move",
)
"""The settings that pipeline steps read; none of them is a secret."""


def step_variables(settings: Settings) -> dict[str, str]:
    """The step settings as resolved here, as ``GOLDSIGNALS_*`` variables.

    A step started by Airflow runs in a temporary folder where no ``.env``
    is found, so whatever the environment, ``.env`` and ``deployment.env``
    said when the DAG was compiled must travel in the DAG. Settings left
    unset (``None``) are left out.
    """
    values = {name: getattr(settings, name) for name in STEP_SETTINGS}
    return {
        f"GOLDSIGNALS_{name.upper()}": str(value)
        for name, value in values.items()
        if value is not None
    }


def check_variable_names(*sources: Mapping[str, object]) -> None:
    """Refuse a ``GOLDSIGNALS_*`` variable that names no setting.

    pydantic-settings ignores such a variable, so a misspelt one
    (``GOLDSIGNALS_TICKR``) would leave its setting at the default unnoticed.

    Args:
        sources: The environment and the ``.env`` files, as name -> value.

    Raises:
        SettingsError: Naming the variable and the setting it may mean.
    """
    names = [f"GOLDSIGNALS_{name.upper()}" for name in Settings.model_fields]
    known = {*names, *(name.replace("GOLDSIGNALS_", DEFAULT_PREFIX) for name in names)}
    for source in sources:
        for name in source:
            upper = name.upper()
            if not upper.startswith("GOLDSIGNALS_") or upper in known:
                continue
            if upper in OTHER_VARIABLES:
                continue
            close = difflib.get_close_matches(upper, sorted(known), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise SettingsError(
                f"{name} is not a goldsignals setting; {hint}the settings are "
                "listed in the README's Settings table"
            )


def read_dotenv(path: Path) -> dict[str, str | None]:
    """The variables of a ``.env`` file; a line it cannot parse is an error.

    python-dotenv skips such a line with a warning, which would leave its
    setting at the default unnoticed.

    Raises:
        SettingsError: Naming the file, the line and its text.
    """
    if not path.is_file():
        return {}
    values: dict[str, str | None] = {}
    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            if binding.error:
                line = binding.original.string.strip()
                raise SettingsError(
                    f"{path.absolute()} line {binding.original.line} cannot be "
                    f"read: {line[:80]!r}; write it as NAME=value (quotes must "
                    "close on the same line)"
                )
            if binding.key is not None:
                values[binding.key] = binding.value
    return values


def get_settings(*, deployed: bool = True) -> Settings:
    """Read the settings from the environment, ``.env`` and the deployment.

    Precedence, highest first: environment variables, ``.env``, then the
    ``deployment.env`` that ``goldsignals deploy-stack`` writes into the
    state folder (so that after a deployment every command reads the
    deployed signals database and MLflow server).

    Args:
        deployed: Whether to read ``deployment.env``; ``deploy-stack`` does
            not, since it derives that file anew from the other two.
    """
    check_variable_names(os.environ, read_dotenv(Path(".env")))
    settings = Settings()
    if deployed and settings.deployment_file.is_file():
        files = (settings.deployment_file, Path(".env"))
        settings = Settings(_env_file=files)  # type: ignore[call-arg]
    return settings


def apply_environment(settings: Settings) -> None:
    """Point ZenML, MLflow and yfinance at the state folder and keep them offline.

    Must run before ``zenml`` is imported: ZenML reads its configuration path
    once, at import. Variables already set by the caller win.

    Args:
        settings: The settings whose state folder is used.
    """
    defaults = {
        **OFFLINE_ENVIRONMENT,
        **SERVICE_TIMEOUTS,
        "GOLDSIGNALS_HOME": str(settings.home),
        "ZENML_CONFIG_PATH": str(settings.zenml_config_path),
        "ZENML_LOCAL_STORES_PATH": str(settings.home),
        "ZENML_CUSTOM_SOURCE_ROOT": str(PROJECT_ROOT),
        "MPLCONFIGDIR": str(settings.home / "cache" / "matplotlib"),
        "XDG_CACHE_HOME": str(settings.home / "cache"),
        "PGPASSFILE": str(settings.pgpass_file),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    create_private_folder(settings.home)


def create_private_folder(folder: Path) -> None:
    """Create the state folder so that other local users cannot read it.

    It holds logs with generated passwords, ZenML's store with its secrets
    and the models. Mode 700; as root, 750 with the group ``postgres``, whose
    server (run as that user) needs to reach its data folder inside. A folder
    that exists already is left as it is.
    """
    if folder.exists():
        return
    folder.mkdir(parents=True)
    mode = 0o700
    if os.geteuid() == 0:
        try:
            group = grp.getgrnam("postgres").gr_gid
        except KeyError:
            pass
        else:
            os.chown(folder, 0, group)
            mode = 0o750
    folder.chmod(mode)
