"""Static checks of the docker deployment (``docker/``): Docker cannot run here, so the compose file,
the Dockerfile, the Connect connector, the MariaDB init SQL and the Dagster instance config are parsed
and checked against each other and against the code (``Settings`` fields, the message contract).

One integration test loads ``docker/dagster.yaml`` into a real Dagster instance on a real PostgreSQL.
"""

from __future__ import annotations

import graphlib
import http.server
import importlib.util
import json
import os
import re
import shutil
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tsplatform.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
#: The Compose Specification's JSON schema, as vendored by compose-go v2.16.2 (see data/README.md).
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"

#: The services of the production topology.
REQUIRED_SERVICES = {
    "kafka",
    "connect",
    "connect-register",
    "mariadb",
    "mongodb",
    "spark-master",
    "spark-worker",
    "postgres",
    "user_code",
    "webserver",
    "daemon",
}
DAGSTER_SERVICES = ("user_code", "webserver", "daemon")
#: What tsplatform needs to find its services in docker (Settings field -> env var).
REQUIRED_TSPLATFORM_VARS = {
    "TSPLATFORM_ENVIRONMENT",
    "TSPLATFORM_KAFKA_BOOTSTRAP",
    "TSPLATFORM_TOPICS",
    "TSPLATFORM_MONGO_URI",
    "TSPLATFORM_MONGO_DB",
    "TSPLATFORM_SPARK_MASTER",
    "TSPLATFORM_LAKE_ROOT",
    "TSPLATFORM_STATE_DIR",
}
REQUIRED_DAGSTER_VARS = {
    "DAGSTER_HOME",
    "DAGSTER_POSTGRES_HOSTNAME",
    "DAGSTER_POSTGRES_PORT",
    "DAGSTER_POSTGRES_USER",
    "DAGSTER_POSTGRES_PASSWORD",
    "DAGSTER_POSTGRES_DB",
}
#: The message contract's columns, in the order of the Connect schema (ARCHITECTURE.md).
CONTRACT_COLUMNS = [
    "ss_id",
    "rstart",
    "rlev1",
    "rlev2",
    "rlev3",
    "rlev4",
    "rlev5",
    "rlev6",
    "rlev7",
    "rlev8",
    "rend",
    "event_time",
    "input_data",
    "position",
    "type_name",
    "unit",
]
CONTRACT_TOPIC = "sensor_data_source_SENSOR_DATA_VIEW"

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)


# --- helpers ------------------------------------------------------------------------------------
class _ComposeLoader(yaml.SafeLoader):
    """YAML as compose reads it (YAML 1.2 core): ``2022-01-01`` stays a string, not a date."""


_ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_compose(env: Mapping[str, str]) -> dict[str, Any]:
    return yaml.load(_interpolate(COMPOSE_FILE.read_text(encoding="utf-8"), env), Loader=_ComposeLoader)


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def _interpolate(text: str, env: Mapping[str, str], referenced: set[str] | None = None) -> str:
    """Compose-style ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$`` substitution."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        if referenced is not None:
            referenced.add(name)
        op, arg = match.group("op"), match.group("arg")
        value = env.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if not unset:
            return str(value)
        if op and op.endswith("-"):
            return arg
        raise AssertionError(f"compose variable {name} is required ({arg or 'no message'}) but not set")

    return _VARIABLE.sub(substitute, text)


def _walk_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _walk_strings(key)
            yield from _walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_strings(item)


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict (compose accepts a mapping or a list of ``K=V``)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _healthcheck_command(service: Mapping[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    return [test] if isinstance(test, str) else list(test)


def _volume_sources(service: Mapping[str, Any]) -> dict[str, str]:
    """Mount target -> source (named volume or ./path) of a service's short-syntax volumes."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        mounts[target] = source
    return mounts


def _load_register_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("connect_register", DOCKER / "connect" / "register.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return _read_env_file(DOCKER / ".env.example")


@pytest.fixture(scope="module")
def compose(example_env: dict[str, str]) -> dict[str, Any]:
    """The compose file as docker compose sees it with ``.env.example`` as its ``.env``."""
    return _load_compose(example_env)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def connector() -> dict[str, Any]:
    return json.loads((DOCKER / "connect" / "jdbc-source.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dockerfile() -> str:
    # Join continuation lines so each instruction is one line.
    return (DOCKER / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")


# --- compose structure --------------------------------------------------------------------------
def test_compose_defines_every_service_of_the_topology(services: dict[str, Any]) -> None:
    missing = REQUIRED_SERVICES - services.keys()
    assert not missing, f"compose.yaml lacks services {sorted(missing)}"
    for name, service in services.items():
        assert "image" in service or "build" in service, f"service {name} has neither image nor build"


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}"
        for error in validator.iter_errors(compose)
    ]
    assert not errors, "compose.yaml violates the Compose Specification:\n" + "\n".join(errors)
    # The validator does reject what docker compose rejects, e.g. a misspelt key.
    broken = json.loads(json.dumps(compose))
    broken["services"]["kafka"]["helthcheck"] = broken["services"]["kafka"].pop("healthcheck")
    assert not validator.is_valid(broken)


def test_compose_variables_are_all_in_env_example(example_env: dict[str, str]) -> None:
    referenced: set[str] = set()
    _interpolate(COMPOSE_FILE.read_text(encoding="utf-8"), example_env, referenced)
    required = set(re.findall(r"\$\{([A-Za-z_]\w*):?\?", COMPOSE_FILE.read_text(encoding="utf-8")))
    assert not required - example_env.keys(), f"missing from .env.example: {required - example_env.keys()}"
    unused = example_env.keys() - referenced
    assert not unused, f".env.example sets variables compose.yaml never reads: {sorted(unused)}"
    # Without an .env, compose must refuse to start rather than run with empty passwords.
    with pytest.raises(AssertionError, match="DAGSTER_POSTGRES_PASSWORD"):
        _interpolate(COMPOSE_FILE.read_text(encoding="utf-8"), {})


def test_depends_on_targets_exist_have_healthchecks_and_form_no_cycle(services: dict[str, Any]) -> None:
    graph: dict[str, set[str]] = {}
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, list):
            depends_on = {target: {"condition": "service_started"} for target in depends_on}
        graph[name] = set(depends_on)
        for target, spec in depends_on.items():
            assert target in services, f"{name} depends on undefined service {target}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} healthy: no healthcheck"
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
    assert order.index("postgres") < order.index("webserver")
    assert order.index("user_code") < order.index("daemon")
    assert order.index("connect") < order.index("connect-register")
    for name in ("kafka", "connect", "mariadb", "mongodb", "postgres", "spark-master", *DAGSTER_SERVICES):
        assert _healthcheck_command(services[name]), f"{name} has an empty healthcheck"


def test_named_volumes_are_declared_and_shared_where_data_moves(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for source in _volume_sources(service).values():
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
            else:
                assert (DOCKER / source).resolve().exists(), f"{name} mounts missing path {source}"
    services = compose["services"]
    # Runs (and their compute logs) happen in user_code; the UI reads them: one storage volume.
    storage_volumes = {
        _volume_sources(services[name]).get("/opt/dagster/dagster_home/storage") for name in DAGSTER_SERVICES
    }
    assert len(storage_volumes) == 1 and None not in storage_volumes
    # The Spark driver (user_code) and the executors (spark-worker) write the same lake.
    lake_root = _environment(services["user_code"])["TSPLATFORM_LAKE_ROOT"]
    driver_lake = _volume_sources(services["user_code"])[lake_root]
    assert driver_lake == _volume_sources(services["spark-worker"])[lake_root]


# --- settings -----------------------------------------------------------------------------------
def test_every_tsplatform_variable_set_is_a_settings_field(services: dict[str, Any], dockerfile: str) -> None:
    fields = {f"TSPLATFORM_{name.upper()}" for name in Settings.model_fields}
    set_vars = {key for service in services.values() for key in _environment(service)}
    set_vars |= set(re.findall(r"\b(TSPLATFORM_[A-Z0-9_]+)=", dockerfile))
    tsplatform_vars = {key for key in set_vars if key.startswith("TSPLATFORM_")}
    assert not REQUIRED_TSPLATFORM_VARS - tsplatform_vars
    unknown = tsplatform_vars - fields
    assert not unknown, f"not Settings fields (typo?): {sorted(unknown)}"


@pytest.mark.parametrize("service_name", DAGSTER_SERVICES)
def test_dagster_services_get_valid_docker_settings(
    services: dict[str, Any], service_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _environment(services[service_name])
    missing = (REQUIRED_TSPLATFORM_VARS | REQUIRED_DAGSTER_VARS) - env.keys()
    assert not missing, f"{service_name} lacks {sorted(missing)}"
    for key in [k for k in os.environ if k.startswith("TSPLATFORM_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # validates types: JSON objects, lists, dates

    assert settings.environment == "docker"
    assert settings.topics == [CONTRACT_TOPIC]
    assert settings.spark_master == "spark://spark-master:7077"
    kafka_host, _, kafka_port = settings.kafka_bootstrap.partition(":")
    assert kafka_host in services
    assert f"PLAINTEXT://:{kafka_port}" in _environment(services["kafka"])["KAFKA_LISTENERS"]
    mongo = urlsplit(settings.mongo_uri)
    assert mongo.scheme == "mongodb" and mongo.hostname in services and mongo.password
    assert settings.mongo_db
    assert env["DAGSTER_POSTGRES_HOSTNAME"] in services
    postgres_env = _environment(services["postgres"])
    assert env["DAGSTER_POSTGRES_USER"] == postgres_env["POSTGRES_USER"]
    assert env["DAGSTER_POSTGRES_PASSWORD"] == postgres_env["POSTGRES_PASSWORD"]
    assert env["DAGSTER_POSTGRES_DB"] == postgres_env["POSTGRES_DB"]
    # Executors must reach the driver in user_code by the advertised name.
    user_code = services["user_code"]
    assert settings.spark_conf["spark.driver.host"] in user_code["networks"]["default"]["aliases"]
    if service_name == "user_code":
        mounts = _volume_sources(user_code)
        assert settings.lake_uri in mounts and str(settings.state_path) in mounts


def test_docker_dagster_yaml_env_vars_are_set_on_the_dagster_services(services: dict[str, Any]) -> None:
    config = yaml.safe_load((DOCKER / "dagster.yaml").read_text(encoding="utf-8"))
    needed = {node["env"] for node in _iter_env_refs(config)}
    assert needed, "docker/dagster.yaml reads no env vars"
    for name in DAGSTER_SERVICES:
        lacking = needed - _environment(services[name]).keys()
        assert not lacking, f"{name} lacks {sorted(lacking)}"


def _iter_env_refs(node: Any) -> Iterator[dict[str, str]]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            yield node
        for value in node.values():
            yield from _iter_env_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _iter_env_refs(item)


# --- Dagster instance and workspace ------------------------------------------------------------
def test_workspace_points_at_the_user_code_grpc_server(services: dict[str, Any], dockerfile: str) -> None:
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text(encoding="utf-8"))
    (location,) = workspace["load_from"]
    server = location["grpc_server"]
    assert server["host"] == "user_code" and server["host"] in services
    # user_code runs the image's CMD: the code server on the workspace's port, serving the definitions.
    assert "command" not in services["user_code"]
    (cmd,) = re.findall(r"^CMD (\[.*\])$", dockerfile, flags=re.MULTILINE)
    argv = json.loads(cmd)
    assert argv[:3] == ["dagster", "code-server", "start"]
    assert argv[argv.index("-p") + 1] == str(server["port"]) == "4000"
    assert argv[argv.index("-h") + 1] == "0.0.0.0"
    assert argv[argv.index("-m") + 1] == "tsplatform.definitions"
    assert _healthcheck_command(services["user_code"])[-1] == str(server["port"])
    for name in ("webserver", "daemon"):
        command = services[name]["command"]
        assert command[command.index("-w") + 1] == "/opt/dagster/workspace.yaml"
    assert re.search(r"^COPY docker/workspace\.yaml /opt/dagster/workspace\.yaml$", dockerfile, re.MULTILINE)


def test_docker_dagster_yaml_uses_postgres_and_queued_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._core.instance.config import dagster_instance_config

    config = yaml.safe_load((DOCKER / "dagster.yaml").read_text(encoding="utf-8"))
    assert set(config["storage"]) == {"postgres"}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_launcher"]["class"] in {"DefaultRunLauncher", "DockerRunLauncher"}
    assert config["telemetry"]["enabled"] is False
    limits = config["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {"key": "tsplatform/ingest", "limit": 1} in limits
    # Dagster's own schema validation of the whole file.
    for name in REQUIRED_DAGSTER_VARS - {"DAGSTER_HOME"}:
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else "x")
    validated, _ = dagster_instance_config(str(DOCKER), "dagster.yaml")
    assert validated["storage"]["postgres"]["postgres_db"]["port"] == {"env": "DAGSTER_POSTGRES_PORT"}


# --- image ---------------------------------------------------------------------------------------
def test_dockerfile_builds_python_java_image_from_the_lock(dockerfile: str) -> None:
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
    assert "openjdk-17-jre-headless" in dockerfile
    assert re.search(r"^COPY requirements\.lock ", dockerfile, re.MULTILINE)
    install = re.search(r"^RUN .*pip install\b.* -r requirements\.lock", dockerfile, re.MULTILINE)
    assert install, "the image must install the exact pins of requirements.lock"
    # The package is installed without re-resolving dependencies, after the pins.
    package = re.search(r"^RUN .*pip install\b.*--no-deps \.", dockerfile, re.MULTILINE)
    assert package and package.start() > install.start()
    copy_config = r"^COPY docker/dagster\.yaml \$\{DAGSTER_HOME\}/dagster\.yaml$"
    assert re.search(copy_config, dockerfile, re.MULTILINE)
    # The Spark master and workers run pyspark's bundled Spark: spark-class needs SPARK_HOME.
    assert re.search(r"\bSPARK_HOME=/usr/local/lib/python3\.11/site-packages/pyspark\b", dockerfile)
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[ignore.index("**") + 1 :].count("!requirements.lock") == 1
    assert not any(line.startswith("!.venv") for line in ignore)


def test_services_built_from_the_repo_use_the_repo_dockerfile(services: dict[str, Any]) -> None:
    tsplatform_services = [n for n, s in services.items() if s.get("build", {}) and "context" in s["build"]]
    assert {"user_code", "webserver", "daemon", "spark-master", "spark-worker"} <= set(tsplatform_services)
    for name in tsplatform_services:
        build = services[name]["build"]
        dockerfile_path = COMPOSE_FILE.parent / build["context"] / build["dockerfile"]
        assert dockerfile_path.resolve() == DOCKER / "Dockerfile"
    assert (DOCKER / services["connect"]["build"] / "Dockerfile").is_file()


def test_spark_cluster_matches_the_driver_settings(services: dict[str, Any]) -> None:
    master_url = urlsplit(_environment(services["user_code"])["TSPLATFORM_SPARK_MASTER"])
    master, worker = services["spark-master"]["command"], services["spark-worker"]["command"]
    assert master[:2] == ["spark-class", "org.apache.spark.deploy.master.Master"]
    assert master[master.index("--host") + 1] == master_url.hostname == "spark-master"
    assert master[master.index("--port") + 1] == str(master_url.port)
    assert worker[:2] == ["spark-class", "org.apache.spark.deploy.worker.Worker"]
    assert worker[-1] == master_url.geturl()
    assert services["spark-worker"]["depends_on"]["spark-master"]["condition"] == "service_healthy"


# --- Kafka Connect source ---------------------------------------------------------------------------
def test_connector_has_the_contract_settings(connector: dict[str, Any]) -> None:
    config = connector["config"]
    expected = {
        "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
        "mode": "timestamp",
        "timestamp.column.name": "event_time",
        "table.types": "VIEW",
        "table.whitelist": "SENSOR_DATA_VIEW",
        "topic.prefix": "sensor_data_source_",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "true",
    }
    assert {key: config.get(key) for key in expected} == expected
    # The connector's topic (prefix + view name) is the one tsplatform ingests by default.
    assert config["topic.prefix"] + config["table.whitelist"] == CONTRACT_TOPIC
    assert Settings.model_fields["topics"].default_factory() == [CONTRACT_TOPIC]
    assert all(isinstance(value, str) for value in config.values()), "Connect configs are strings"


def test_connector_reaches_the_source_db_with_credentials_from_the_worker_env(
    connector: dict[str, Any], services: dict[str, Any]
) -> None:
    config = connector["config"]
    url = urlsplit(config["connection.url"].removeprefix("jdbc:"))
    assert url.hostname in services and url.port == 3306
    mariadb_env, connect_env = _environment(services["mariadb"]), _environment(services["connect"])
    assert url.path.lstrip("/") == mariadb_env["MARIADB_DATABASE"]
    placeholders = {ref for value in config.values() for ref in re.findall(r"\$\{env:(\w+)\}", value)}
    assert placeholders == {"SOURCE_DB_USER", "SOURCE_DB_PASSWORD"}
    assert placeholders <= connect_env.keys()
    assert connect_env["SOURCE_DB_USER"] == mariadb_env["MARIADB_USER"]
    assert connect_env["SOURCE_DB_PASSWORD"] == mariadb_env["MARIADB_PASSWORD"]
    assert connect_env["CONNECT_CONFIG_PROVIDERS"] == "env"
    assert connect_env["CONNECT_CONFIG_PROVIDERS_ENV_CLASS"].endswith(".EnvVarConfigProvider")
    # The registration job mounts this very file and targets the connect service's REST port.
    register = services["connect-register"]
    mounted_dir = {target: source for target, source in _volume_sources(register).items()}
    json_arg = next(arg for arg in register["command"] if arg.endswith(".json"))
    host_dir = mounted_dir[str(Path(json_arg).parent)]
    registered = (DOCKER / host_dir / Path(json_arg).name).resolve()
    assert registered == (DOCKER / "connect" / "debezium-source.json")
    assert urlsplit(register["command"][-1]).port == int(connect_env["CONNECT_REST_PORT"])


def test_debezium_connector_is_the_local_services_and_yields_the_contract(services: dict[str, Any]) -> None:
    """One connector file for docker and `tsplatform services up ... connect`, in the contract's envelope."""
    from tsplatform.services import connect

    assert connect.CONNECTOR_CONFIG.resolve() == (DOCKER / "connect" / "debezium-source.json").resolve()
    config = json.loads(connect.CONNECTOR_CONFIG.read_text(encoding="utf-8"))["config"]
    assert config["connector.class"] == "io.debezium.connector.mariadb.MariaDbConnector"
    assert config["transforms.unwrap.type"] == "io.debezium.transforms.ExtractNewRecordState"
    assert config["time.precision.mode"] == "connect"  # DATETIME(3) -> Connect Timestamp (epoch ms)
    assert config["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert config["value.converter.schemas.enable"] == "true"
    assert config["transforms.route.replacement"] == CONTRACT_TOPIC
    assert config["table.include.list"].endswith(".sensor_data_events")
    connect_env, mariadb_env = _environment(services["connect"]), _environment(services["mariadb"])
    placeholders = {ref for value in config.values() for ref in re.findall(r"\$\{env:(\w+)\}", value)}
    assert placeholders <= connect_env.keys()
    assert connect_env["SOURCE_DB_NAME"] == mariadb_env["MARIADB_DATABASE"]
    assert urlsplit(connect_env["CONNECT_BOOTSTRAP_SERVERS"].join(["//", ""])).hostname in services
    command = services["mariadb"]["command"]
    assert {"--binlog-format=ROW", "--binlog-row-image=FULL", "--server-id=1"} <= set(command)
    mounts = _volume_sources(services["mariadb"])
    assert (DOCKER / mounts["/docker-entrypoint-initdb.d/02-replication-grants.sh"]).is_file()
    # The captured table is filled by a trigger with the view's columns: the events carry the contract.
    sql = (DOCKER / "mariadb" / "init.sql").read_text(encoding="utf-8")
    trigger = re.search(r"TRIGGER\s+\w+\s+AFTER\s+INSERT\s+ON\s+sensor_data\b.*?\((.*?)\)", sql, re.DOTALL)
    assert trigger is not None
    assert {c.strip() for c in trigger.group(1).split(",")} == {*CONTRACT_COLUMNS, "id"}


def test_register_script_reads_the_connector_and_rejects_malformed_files(tmp_path: Path) -> None:
    register = _load_register_module()
    name, config = register.load_connector(DOCKER / "connect" / "jdbc-source.json")
    assert name == "sensor-data-jdbc-source"
    assert config["name"] == name and config["mode"] == "timestamp"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"config": {"mode": "timestamp"}}))
    with pytest.raises(ValueError, match="non-empty string 'name'"):
        register.load_connector(bad)
    bad.write_text(json.dumps({"name": "x", "config": {"tasks.max": 1}}))
    with pytest.raises(ValueError, match="string values"):
        register.load_connector(bad)
    assert register.main([str(bad), "http://127.0.0.1:9"]) == 1


class _FakeConnect(http.server.BaseHTTPRequestHandler):
    """Kafka Connect REST stand-in: stores PUT configs, reports ``states`` one status call at a time."""

    configs: ClassVar[dict[str, dict[str, str]]] = {}
    states: ClassVar[list[str]] = []

    def do_PUT(self) -> None:
        name = urllib.parse.unquote(self.path.split("/")[2])
        created = name not in self.configs
        self.configs[name] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._reply(201 if created else 200, {"name": name, "config": self.configs[name]})

    def do_GET(self) -> None:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        self._reply(200, {"connector": {"state": state}, "tasks": [{"id": 0, "state": state}]})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture()
def fake_connect() -> Iterator[tuple[str, type[_FakeConnect]]]:
    _FakeConnect.configs, _FakeConnect.states = {}, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeConnect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _FakeConnect
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_register_script_puts_the_config_and_waits_for_running(
    fake_connect: tuple[str, type[_FakeConnect]],
) -> None:
    url, connect = fake_connect
    register = _load_register_module()
    name, config = register.load_connector(DOCKER / "connect" / "jdbc-source.json")
    connect.states = ["UNASSIGNED", "RUNNING"]
    assert register.register(name, config, url, timeout_s=30) == "RUNNING"
    assert connect.configs[name] == config
    # Idempotent: registering again replaces the config of the same connector.
    connect.states = ["RUNNING"]
    assert register.main([str(DOCKER / "connect" / "jdbc-source.json"), url, "--timeout", "30"]) == 0
    assert list(connect.configs) == [name]
    connect.states = ["FAILED"]
    with pytest.raises(RuntimeError, match="FAILED"):
        register.register(name, config, url, timeout_s=30)


# --- source database ------------------------------------------------------------------------------
def test_init_sql_view_has_the_contract_columns(connector: dict[str, Any], services: dict[str, Any]) -> None:
    sql = (DOCKER / "mariadb" / "init.sql").read_text(encoding="utf-8")
    sql = re.sub(r"--[^\n]*", "", sql)
    view_pattern = r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(\w+)\s+AS\s+SELECT\s+(.*?)\s+FROM\s"
    view = re.search(view_pattern, sql, re.IGNORECASE | re.DOTALL)
    assert view, "init.sql defines no view"
    assert view.group(1) == connector["config"]["table.whitelist"]
    columns = view.group(2).split(",")
    aliases = [re.split(r"\s+AS\s+", column.strip(), flags=re.IGNORECASE)[-1] for column in columns]
    assert aliases == [*CONTRACT_COLUMNS, "id"]  # the reading's id: `sql-source --id-column id`
    # The connector's timestamp column is indexed in the base table, and stored with milliseconds.
    assert re.search(r"event_time\s+(?:DATETIME|TIMESTAMP)\(3\)\s+NOT NULL", sql)
    assert re.search(r"KEY\s+\w+\s+\(event_time\)", sql)
    assert "utf8mb4" in sql  # Unicode positions such as "광 주 A"
    mounts = _volume_sources(services["mariadb"])
    init_script = DOCKER / mounts["/docker-entrypoint-initdb.d/01-init.sql"]
    assert init_script.resolve() == DOCKER / "mariadb" / "init.sql"


# --- the instance config on a real PostgreSQL ----------------------------------------------------------
@pytest.mark.integration
def test_docker_dagster_yaml_creates_a_working_instance_on_postgres(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg
    import psycopg
    from dagster._core.launcher import DefaultRunLauncher
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    dsn = request.getfixturevalue("postgres_dsn")
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_HOSTNAME", str(params["host"]))
    monkeypatch.setenv("DAGSTER_POSTGRES_PORT", str(params["port"]))
    monkeypatch.setenv("DAGSTER_POSTGRES_USER", str(params["user"]))
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", "unused-trust-auth")
    monkeypatch.setenv("DAGSTER_POSTGRES_DB", str(params["dbname"]))

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        assert instance.run_monitoring_enabled
        assert not instance.telemetry_enabled

        @dg.op
        def noop() -> int:
            return 1

        @dg.job
        def smoke() -> None:
            noop()

        result = smoke.execute_in_process(instance=instance)
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored is not None and stored.status == dg.DagsterRunStatus.SUCCESS

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        tables = {row[0] for row in rows}
        (run_count,) = conn.execute("SELECT count(*) FROM runs").fetchone()  # type: ignore[misc]
    assert {"runs", "event_logs", "jobs", "instigators"} <= tables
    assert run_count == 1


# The PostgreSQL server fixture of the sql-source tests (one home for it).
from tsplatform_tests.ingest.conftest import postgres_dsn, postgres_server  # noqa: E402, F401
