"""A Kafka Connect worker (Apache Kafka's own connect-runtime, distributed mode) on 127.0.0.1.

Jars: ``<jars>/connect/`` (connect-runtime, connect-json, connect-transforms at the broker's version) and the
Debezium MySQL connector as a plugin in ``<jars>/connect-plugins/debezium/`` (``plugin.path``). Layout under
``<state>/connect/``: ``worker.properties`` (rewritten at every start). The worker keeps its configs, source
offsets and statuses in internal topics of the local broker (``_tsplatform-connect-*``), so a restarted
worker resumes where it stopped. Exactly-once source support is enabled (KIP-618): records and source
offsets are committed in one Kafka transaction, so a worker killed mid-stream neither loses nor repeats a
record (consumers read with ``isolation.level=read_committed``, librdkafka's default).

The connector is the docker deployment's own file, ``docker/connect/debezium-source.json``, registered
with ``docker/connect/register.py`` (``PUT /connectors/<name>/config``). Its ``${env:SOURCE_DB_*}``
placeholders are resolved by the worker's ``EnvVarConfigProvider`` from the environment the worker is
started with (here: the local MariaDB's address and account; in docker: compose's environment).
"""

from __future__ import annotations

import importlib.util
import json
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from tsplatform.errors import ServiceUnavailable
from tsplatform.services.jars import JAVA_DIR

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
#: The Debezium source connector shared by the local service and docker/compose.yaml.
CONNECTOR_CONFIG = DOCKER_DIR / "connect" / "debezium-source.json"
REGISTER_SCRIPT = DOCKER_DIR / "connect" / "register.py"
HEAP_OPTS: tuple[str, ...] = ("-Xms128m", "-Xmx512m")
JVM_OPTS: tuple[str, ...] = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")
LOG4J_CONFIG = JAVA_DIR / "log4j2.properties"
GROUP_ID = "tsplatform-connect"
SETTING = "TSPLATFORM_CONNECT_URL"


def render_worker_properties(bootstrap: str, rest_port: int, plugin_path: Path) -> str:
    """``worker.properties`` of a one-worker distributed Connect cluster (replication factors 1)."""
    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": GROUP_ID,
        "listeners": f"http://127.0.0.1:{rest_port}",
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": rest_port,
        "plugin.path": str(plugin_path),
        "plugin.discovery": "hybrid_warn",
        "config.storage.topic": "_tsplatform-connect-configs",
        "offset.storage.topic": "_tsplatform-connect-offsets",
        "status.storage.topic": "_tsplatform-connect-status",
        "config.storage.replication.factor": 1,
        "offset.storage.replication.factor": 1,
        "offset.storage.partitions": 1,
        "status.storage.replication.factor": 1,
        "status.storage.partitions": 1,
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "true",
        "offset.flush.interval.ms": 1000,
        "exactly.once.source.support": "enabled",
        # `${env:NAME}` in connector configs reads the worker's environment (as in docker/compose.yaml).
        "config.providers": "env",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        # One worker: a restarted worker takes its tasks back at once instead of after 5 minutes.
        "scheduled.rebalance.max.delay.ms": 0,
    }
    lines = ["# Written by `tsplatform services` at every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def worker_command(java: Path, classpath: str, config: Path, markers: list[str], tmp_dir: Path) -> list[str]:
    """``java ... org.apache.kafka.connect.cli.ConnectDistributed worker.properties``."""
    return [
        str(java), *HEAP_OPTS, *JVM_OPTS, *markers,
        f"-Djava.io.tmpdir={tmp_dir}",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp", classpath,
        "org.apache.kafka.connect.cli.ConnectDistributed", str(config),
    ]  # fmt: skip


def _get(url: str, timeout_s: float) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def connect_summary(url: str, timeout_s: float = 5.0) -> str:
    """``"Connect <version>, <n> connector(s)"`` once the worker has joined its group and serves requests."""
    base = url.rstrip("/")
    try:
        status, info = _get(f"{base}/", timeout_s)
        listed, connectors = _get(f"{base}/connectors", timeout_s)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceUnavailable(
            f"Kafka Connect at {base} is not reachable: {reason}", setting=SETTING
        ) from exc
    if status != 200 or listed != 200 or not isinstance(connectors, list):
        raise ServiceUnavailable(
            f"Kafka Connect at {base} is not ready (HTTP {status}/{listed})", setting=SETTING
        )
    return f"Connect {info.get('version', '?')}, {len(connectors)} connector(s)"


@lru_cache(maxsize=1)
def register_module() -> ModuleType:
    """``docker/connect/register.py``, the registration the docker deployment runs, as a module."""
    spec = importlib.util.spec_from_file_location("tsplatform_connect_register", REGISTER_SCRIPT)
    if spec is None or spec.loader is None:
        raise ServiceUnavailable(f"cannot load {REGISTER_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register_connector(
    url: str,
    config_file: Path = CONNECTOR_CONFIG,
    timeout_s: float = 180.0,
    overrides: dict[str, str] | None = None,
) -> str:
    """Create or update the connector of ``config_file`` (``overrides`` replace some of its settings, e.g. the
    name or the target topic for a test) and wait until it and its tasks are RUNNING."""
    module = register_module()
    try:
        name, config = module.load_connector(config_file)
        config.update(overrides or {})
        name = config["name"]
        state = module.register(name, config, url, timeout_s)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ServiceUnavailable(
            f"registering the Debezium connector failed: {exc}", setting=SETTING
        ) from exc
    return f"connector {name!r} {state}"


def connector_name(config_file: Path = CONNECTOR_CONFIG) -> str:
    return str(json.loads(config_file.read_text(encoding="utf-8"))["name"])


def worker_env(mariadb: dict[str, object]) -> dict[str, str]:
    """The ``SOURCE_DB_*`` variables the connector's ``${env:...}`` placeholders read (from a parsed DSN)."""
    return {
        "SOURCE_DB_HOST": str(mariadb["host"]),
        "SOURCE_DB_PORT": str(mariadb["port"]),
        "SOURCE_DB_USER": str(mariadb["user"]),
        "SOURCE_DB_PASSWORD": str(mariadb["password"]),
        "SOURCE_DB_NAME": str(mariadb["database"]),
    }
