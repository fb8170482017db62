"""Typed settings from ``TSPLATFORM_*`` environment variables: the one home for configuration.

Every default yields a working local setup under ``TSPLATFORM_STATE_DIR`` (``./.tsplatform``). After
``tsplatform services up`` the local service addresses are written to ``<state>/services.env``; they
are read as defaults, so later commands and ``dagster dev`` find the services with no extra setup.
Explicit environment variables always win over that file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_STATE_DIR = Path(".tsplatform")
SERVICES_ENV_FILE = "services.env"
#: Default bound (characters) of a reading's text fields: series names and unit.
DEFAULT_MAX_TEXT_CHARS = 256

#: Datasets of the lake, in pipeline order. Retention and catalog sync iterate over these.
DATASETS: tuple[str, ...] = (
    "raw_readings",
    "quarantine",
    "validated_readings",
    "validation_rejects",
    "period_estimates",
    "regularized_readings",
    "denoised_readings",
    "decompositions",
    "series_profiles",
    "correlations",
    "training_sets",
    "forecasts",
    "forecast_accuracy",
)


def _state_dir_from_env() -> Path:
    return Path(os.environ.get("TSPLATFORM_STATE_DIR", str(DEFAULT_STATE_DIR))).expanduser()


def services_env_file(state_dir: Path | None = None) -> Path:
    """Path of the file ``tsplatform services up`` writes its ``export`` lines to."""
    return (state_dir or _state_dir_from_env()) / SERVICES_ENV_FILE


class Settings(BaseSettings):
    """All of tsplatform's configuration. Field ``foo`` is read from ``TSPLATFORM_FOO``."""

    model_config = SettingsConfigDict(
        env_prefix="TSPLATFORM_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    environment: Literal["local", "test", "docker"] = Field(
        "local", description="Which resource set definitions.py wires up."
    )
    state_dir: Path = Field(DEFAULT_STATE_DIR, description="Everything local lives under it.")
    lake_root: str | None = Field(
        None, description="Local path or Hadoop-compatible URI (s3://, hdfs://...). Default <state>/lake."
    )

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="bootstrap.servers")
    kafka_security: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka client options passed through verbatim, e.g. "
        '{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", ...} (JSON).',
    )
    topics: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sensor_data_source_SENSOR_DATA_VIEW"],
        description="Topics to ingest (JSON list or comma-separated).",
    )
    consumer_group: str = Field("tsplatform-ingest", description="Kafka consumer group for ingestion.")
    max_records_per_run: int = Field(
        500_000, description="Upper bound of records one sensor-requested ingestion run consumes."
    )
    field_mapping: dict[str, Any] = Field(
        default_factory=dict,
        description="Payload field mapping (JSON object with keys time, value, series_keys, type_name, "
        "time_unit, attributes); empty = the Connect contract. "
        "See tsplatform.ingest.field_mapping.FieldMapping.",
    )
    max_text_chars: int = Field(
        DEFAULT_MAX_TEXT_CHARS,
        ge=1,
        description="Longest series name (position, type_name) or unit accepted, in characters; longer "
        "records go to the quarantine as oversized_field.",
    )

    # --- Local services (`tsplatform services up`), all bound to 127.0.0.1 ----------------------
    kafka_port: int = Field(9092, ge=1, le=65535, description="Port of the local Kafka broker.")
    kafka_controller_port: int = Field(9093, ge=1, le=65535, description="KRaft controller port.")
    mongo_port: int = Field(27017, ge=1, le=65535, description="Port of the local MongoDB-wire server.")
    jars_dir: Path | None = Field(None, description="Service jar cache. Default <state>/jars.")
    mariadb_port: int = Field(3306, ge=1, le=65535, description="Port of the local MariaDB (opt-in service).")
    mariadb_user: str | None = Field(None, description="Account of the local MariaDB. Default tsplatform.")
    mariadb_password: str | None = Field(
        None, description="Its password. Default: generated once, kept in <state>/mariadb/credentials.json."
    )
    mariadb_database: str | None = Field(None, description="Database of the local MariaDB. Default sensors.")
    connect_port: int = Field(8083, ge=1, le=65535, description="REST port of the local Connect worker.")
    spark_connect_port: int = Field(
        15002, ge=1, le=65535, description="gRPC port of the local Spark Connect server (opt-in service)."
    )

    # --- Source database and Kafka Connect (written to services.env while the local ones run) --
    mariadb_dsn: str | None = Field(
        None, description="mysql://user:password@host:port/database of the sensor database."
    )
    connect_url: str | None = Field(None, description="REST address of the Kafka Connect worker.")

    # --- MongoDB catalog ---------------------------------------------------------------------
    mongo_uri: str = Field("mongodb://127.0.0.1:27017/?directConnection=true")
    mongo_db: str = Field("tsplatform")

    # --- Spark -------------------------------------------------------------------------------
    spark_master: str = Field("local[*]")
    spark_remote: str | None = Field(
        None,
        description="sc://host:port of a Spark Connect server: every session (runs, tsplatform sql) is a "
        "client of that long-lived driver instead of starting its own JVM. Written to services.env while "
        "the local one (`tsplatform services up spark`) runs.",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="Extra Spark conf (JSON object), e.g. executor memory."
    )
    spark_class_cache: bool = Field(
        True,
        description="Share the driver JVM's loaded classes between runs (an AppCDS archive, ~180 MB, in "
        "spark_class_cache_dir): a session starts ~4 s sooner. Rebuilt when Java or Spark's jars change.",
    )
    spark_class_cache_dir: Path | None = Field(
        None, description="Where the class archive lives. Default ${XDG_CACHE_HOME:-~/.cache}/tsplatform."
    )

    # --- The asset graph on Spark (tsplatform/assets/, tsplatform/spark_io.py) -----------------
    series_buckets: int = Field(
        0,
        ge=0,
        description="Buckets of series per pandas call on the executors (hash(series_id) mod N); "
        "0 = spark.sql.shuffle.partitions, raised so a bucket holds at most ~500k input rows.",
    )
    impute_max_gap_s: float = Field(
        86_400.0, gt=0, description="Gaps longer than this (seconds) stay NaN in regularized_readings."
    )
    imputation_reselect_days: int = Field(
        7,
        ge=1,
        description="A series' imputation method is re-selected when older than this many days, on its next "
        "day with a slot to fill.",
    )
    automation_interval_s: int = Field(
        30, ge=1, description="Seconds between evaluations of the automation sensor."
    )
    kafka_sensor_interval_s: int = Field(
        30,
        ge=1,
        description="Seconds between evaluations of the Kafka offset sensor (new offsets -> ingest run).",
    )

    # --- Ray / MLflow ------------------------------------------------------------------------
    ray_address: str | None = Field(None, description="ray:// address; default starts a local Ray.")
    mlflow_uri: str | None = Field(
        None,
        description="MLflow tracking and registry URI (a server http(s)://, or a database URI); "
        "default the SQLite store sqlite:///<state>/mlflow/mlflow.db.",
    )
    mlflow_artifacts: str | None = Field(
        None, description="Artifact root of new MLflow experiments; default <state>/mlflow/artifacts."
    )
    ray_num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray; default all of them.")

    # --- ML pipeline (assets/ml.py) ----------------------------------------------------------
    training_window_days: int = Field(28, ge=1, description="Days of readings a training set spans.")
    forecast_targets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="series_ids to forecast (JSON list or comma-separated); empty = every series.",
    )
    forecast_horizon: int = Field(24, ge=1, description="Steps (of the series' own period) forecast ahead.")
    validation_fraction: float = Field(0.15, gt=0, lt=0.5, description="Validation share of a training set.")
    test_fraction: float = Field(0.15, gt=0, lt=0.5, description="Held-out test share of a training set.")
    tune_num_samples: int = Field(8, ge=1, description="Trial budget of a Ray Tune search per target.")
    tune_time_budget_s: float = Field(1800.0, gt=0, description="Seconds one Ray Tune search may take.")
    tune_max_epochs: int = Field(30, ge=1, description="Epoch cap of a trial (ASHA's max_t).")
    tune_families: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["linear", "lstm"],
        description="Model families the search samples (JSON list or comma-separated).",
    )
    drift_factor: float = Field(
        1.5,
        gt=0,
        description="forecast_accuracy's check fails (and retrains) when a target's live MSE exceeds its "
        "champion's validation MSE times this factor.",
    )

    # --- Partitions and retention ------------------------------------------------------------
    start_date: dt.date = Field(dt.date(2022, 1, 1), description="First day partition (UTC).")
    retention_days: dict[str, int] = Field(
        default_factory=lambda: {"raw_readings": 400, "quarantine": 90},
        description="Days each dataset is kept (JSON object); datasets not listed are kept forever.",
    )

    @field_validator("lake_root")
    @classmethod
    def _no_glob_characters(cls, value: str | None) -> str | None:
        """Spark and Hadoop read paths as globs: ``{a,b}``, ``[ab]``, ``*``, ``?`` would change them."""
        if value is not None and any(c in value for c in "{}[]*?"):
            raise ValueError(
                f"lake_root {value!r} contains a Hadoop glob character ({{ }} [ ] * ?), which Spark would "
                "expand when reading the lake; choose a path without them"
            )
        return value

    @field_validator("topics", "forecast_targets", "tune_families", mode="before")
    @classmethod
    def _split_topics(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    # --- derived paths -----------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.state_dir.expanduser().resolve()

    @property
    def lake_uri(self) -> str:
        """The lake root: ``lake_root`` if set, else ``<state>/lake`` (absolute)."""
        if self.lake_root:
            if "://" in self.lake_root:
                return self.lake_root.rstrip("/")
            return str(Path(self.lake_root).expanduser().resolve())
        return str(self.state_path / "lake")

    @property
    def mlflow_tracking_uri(self) -> str:
        """``mlflow_uri`` or the local SQLite store ``sqlite:///<state>/mlflow/mlflow.db`` (the registry
        needs a database; a plain ``file:`` store has none)."""
        if self.mlflow_uri:
            return self.mlflow_uri
        return f"sqlite:///{self.state_path / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> str:
        """Where new experiments keep artifacts: ``mlflow_artifacts`` or ``<state>/mlflow/artifacts``."""
        return self.mlflow_artifacts or (self.state_path / "mlflow" / "artifacts").as_uri()

    @property
    def spark_dir(self) -> Path:
        """Derby metastore, warehouse and Spark temp files live here."""
        return self.state_path / "spark"

    def kafka_client_config(self, **extra: str | int | bool) -> dict[str, str | int | bool]:
        """librdkafka config: bootstrap servers, pass-through security options, then ``extra``."""
        return {"bootstrap.servers": self.kafka_bootstrap, **self.kafka_security, **extra}


def _load_services_env(state_dir: Path) -> dict[str, str]:
    """Parse ``export KEY=VALUE`` lines written by ``tsplatform services up``."""
    path = services_env_file(state_dir)
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export ") :]
        if "=" not in line or line.startswith("#"):
            continue
        key, _, raw = line.partition("=")
        values[key.strip()] = raw.strip().strip("'\"")
    return values


def load_settings() -> Settings:
    """Settings from the environment, with the running local services as defaults."""
    state_dir = _state_dir_from_env()
    defaults = {k: v for k, v in _load_services_env(state_dir).items() if k.startswith("TSPLATFORM_")}
    missing = {k: v for k, v in defaults.items() if k not in os.environ}
    if not missing:
        return Settings()
    saved = dict(os.environ)
    try:
        os.environ.update(missing)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide cached settings (tests call ``get_settings.cache_clear()`` after changing env)."""
    return load_settings()
