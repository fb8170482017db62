"""Security: planted secrets never surface, SASL_SSL for real, MongoDB credentials, hostile names in Hive
and Spark SQL, loopback-only UIs, the dependency audit.

(Oversized names and units: ``tsplatform_tests/ingest/test_decode.py``; hostile names in lake paths:
``tsplatform_tests/ingest/test_ingest_e2e.py``.)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shlex
import uuid
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from tsplatform.catalog import Catalog, CatalogUnavailable
from tsplatform.lake import Lake
from tsplatform.services.process import free_port
from tsplatform_tests.conftest import REPO_ROOT, SESSION_JARS_DIR
from tsplatform_tests.ingest.workload import make_workload, publish, read_dataset
from tsplatform_tests.reliability.secure_kafka import secure_broker

pytestmark = pytest.mark.security

#: Series names that must stay data: SQL and shell metacharacters, traversal, control and Unicode text.
HOSTILE_NAMES = [
    "it's",
    "'; DROP TABLE tsplatform.validated_readings; --",
    "\\'; SELECT 1; --",
    "`backtick` ${jndi:ldap://x} $(touch /tmp/tsplatform-pwned)",
    "../../etc/passwd",
    "line\nbreak\r\ttab",
    "광 주 A",
    "%s %n {0} \\N NULL",
    "nul\x00byte",
    'double "quoted"',
]


def _found_in_files(root: Path, needles: list[bytes]) -> list[str]:
    """``path: needle`` for every file under ``root`` whose bytes contain a needle."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {n.decode()}" for n in needles if n in data]
    return hits


@pytest.mark.integration
def test_sasl_ssl_ingestion_keeps_planted_secrets_out_of_logs_runs_and_metadata(  # type: ignore[no-untyped-def]
    services, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A broker with only a SCRAM-SHA-512 over TLS listener (CA made here); ingestion through it via the
    Kafka offset sensor and a Dagster run; the password appears in no log, run config, event or metadata."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from tsplatform_tests.ingest.test_ingest_e2e import env_settings, run_sensor_and_runs

    password = f"sasl-{uuid.uuid4().hex}"
    broker_password = f"broker-{uuid.uuid4().hex}"
    secrets = [password.encode(), broker_password.encode()]
    caplog.set_level(logging.DEBUG)
    with secure_broker(tmp_path / "kafka", SESSION_JARS_DIR, {"ingest": password}, broker_password) as broker:
        config = broker.client_config("ingest", password)
        # the listener really demands TLS from this CA and the SCRAM password
        for bad in ({**config, "sasl.password": "wrong"}, {**config, "ssl.ca.location": "probe"},
                    {"bootstrap.servers": broker.bootstrap}):  # fmt: skip
            if bad.get("ssl.ca.location") == "probe":
                bad.pop("ssl.ca.location")  # system trust store only: our test CA is unknown there
            with pytest.raises(Exception, match=r"metadata|transport|[Tt]imed out"):
                AdminClient(bad).list_topics(timeout=6)
        topic = f"secure-{uuid.uuid4().hex[:8]}"
        admin = AdminClient(config)  # kept referenced until its future resolves
        admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(60)
        workload = make_workload(topic, n_readings=4000, n_series=8, n_days=2)
        publish(workload, broker.bootstrap, client_config=config)
        security = {k: v for k, v in config.items() if k != "bootstrap.servers"}
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TSPLATFORM_KAFKA_BOOTSTRAP", broker.bootstrap)
            mp.setenv("TSPLATFORM_KAFKA_SECURITY", json.dumps(security))
            with (
                env_settings(tmp_path, topic, max_per_run=3000) as settings,
                dg.instance_for_test() as instance,
            ):
                assert settings.kafka_security["sasl.password"] == password  # read from the environment
                _cursor, runs = run_sensor_and_runs(instance, None)
                assert runs >= 2
                lake = Lake(settings.lake_uri)
                raw = read_dataset(lake, "raw_readings")
                quarantine = read_dataset(lake, "quarantine")
                assert set(zip(raw["partition"], raw["offset"], strict=True)) == workload.valid_offsets
                assert len(raw) == len(workload.valid_offsets)
                assert set(zip(quarantine["partition"], quarantine["offset"], strict=True)) == (
                    workload.malformed_offsets
                )
                texts: list[str] = []
                for run in instance.get_runs():
                    texts.append(json.dumps(run.run_config, default=str))
                    texts.append(json.dumps(run.tags))
                    texts += [dg.serialize_value(e) for e in instance.all_logs(run.run_id)]
                for record in instance.fetch_materializations(
                    dg.AssetKey("raw_readings"), limit=1000
                ).records:
                    texts.append(dg.serialize_value(record.asset_materialization))
                assert len(texts) > 10
                for secret in (password, broker_password):
                    assert not any(secret in t for t in texts)
                assert _found_in_files(Path(instance.root_directory), secrets) == []
                assert _found_in_files(Path(settings.lake_uri), secrets) == []
    out, err = capfd.readouterr()
    for secret in (password, broker_password):
        assert secret not in out and secret not in err
        assert secret not in caplog.text
    assert caplog.records  # logging was captured (the check above can fail)


@pytest.mark.integration
def test_mongodb_uri_credentials_reach_the_server_and_are_never_shown(  # type: ignore[no-untyped-def]
    services, caplog: pytest.LogCaptureFixture
) -> None:
    """The URI's user and password are used (the client authenticates: the local MongoDB-wire server,
    which has no authentication, answers ``no such command: 'saslStart'``) and never printed."""
    from tsplatform.services.health import check_mongo

    caplog.set_level(logging.DEBUG)
    secret = f"mongo-{uuid.uuid4().hex}"
    port = services.ports("mongo")["port"]
    uri = f"mongodb://tsplatform:{secret}@127.0.0.1:{port}/?directConnection=true&authSource=admin"
    catalog = Catalog(uri, "db", timeout_ms=3000, retries=0)
    try:
        with pytest.raises(CatalogUnavailable) as refused:
            catalog.ensure_indexes()
    finally:
        catalog.close()
    assert "refused the credentials" in str(refused.value) and "saslStart" in str(refused.value)
    assert "tsplatform:***@" in str(refused.value)
    dead = Catalog(
        uri.replace(f":{port}/", f":{free_port()}/"), "db", timeout_ms=300, retries=1, backoff_s=0.01
    )
    try:
        with pytest.raises(CatalogUnavailable, match="unreachable") as unreachable:
            dead.ensure_indexes()
    finally:
        dead.close()
    with pytest.raises(Exception) as health:
        check_mongo(uri, timeout_s=3)
    for error in (refused.value, unreachable.value, health.value):
        assert secret not in str(error) and secret not in repr(error)
    assert secret not in caplog.text


@pytest.mark.integration
def test_hostile_series_names_through_hive_registration_and_spark_sql(tmp_path: Path) -> None:
    """validated_readings registers its Hive partition and is queried with Spark SQL; hostile names (and a
    lake root with quotes in it) are data, never SQL: every table survives, every name round-trips."""
    from pyspark.sql import SparkSession

    from tsplatform.assets.clean import validated_readings
    from tsplatform.ids import series_id
    from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
    from tsplatform.resources.lake import LakeResource
    from tsplatform.resources.spark import spark_resource

    day = dt.date(2024, 4, 2)
    lake = Lake(str(tmp_path / "lake it's `x` $y"))
    t0 = pd.Timestamp(day, tz="UTC")
    rows = [
        (name, f"T {name}", t0 + pd.Timedelta(minutes=10 * i), float(i))
        for name in HOSTILE_NAMES
        for i in range(6)
    ]
    frame = pd.DataFrame(rows, columns=["position", "type_name", "event_time", "value"])
    frame["series_id"] = [series_id(p, t) for p, t in zip(frame["position"], frame["type_name"], strict=True)]
    frame["event_time"] = frame["event_time"].dt.as_unit("ms")
    frame["topic"], frame["partition"], frame["offset"] = "t", 0, range(len(frame))
    frame["ingested_at"] = t0.as_unit("ms")
    frame["schema_id"] = "s"
    for field in RAW_READINGS_SCHEMA:
        if field.name not in frame:
            frame[field.name] = None
    table = pa.Table.from_pandas(frame[[f.name for f in RAW_READINGS_SCHEMA]], schema=RAW_READINGS_SCHEMA)
    lake.write_file("raw_readings", day, "part-1.parquet", table)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [validated_readings],
            partition_key=day.isoformat(),
            instance=instance,
            resources={"spark": spark_resource(), "lake": LakeResource(root=lake.root)},
        )
    assert result.success
    spark = SparkSession.builder.getOrCreate()
    tables = {t.name for t in spark.catalog.listTables("tsplatform")}
    assert {"validated_readings", "validation_rejects"} <= tables
    partitions = [r[0] for r in spark.sql("SHOW PARTITIONS tsplatform.validated_readings").collect()]
    assert "year=2024/month=04/day=02" in partitions
    for name in HOSTILE_NAMES:
        found = spark.sql(
            "SELECT position, type_name, count(*) AS n FROM tsplatform.validated_readings "
            "WHERE year = '2024' AND month = '04' AND day = '02' AND position = :name "
            "GROUP BY position, type_name",
            args={"name": name},
        ).collect()
        assert [(r["position"], r["type_name"], r["n"]) for r in found] == [(name, f"T {name}", 6)]
    total = spark.sql("SELECT count(*) FROM tsplatform.validated_readings WHERE day = '02'").collect()[0][0]
    assert total == len(frame)
    assert {t.name for t in spark.catalog.listTables("tsplatform")} == tables


#: What SQL built as text may interpolate: checked dataset/table names, DDL from Arrow schemas, escaped
#: lake locations and zero-padded dates (tsplatform/hive.py), never a value from the data.
SAFE_SQL_INTERPOLATIONS = {
    "DATABASE", "name", "table", "columns", "location", "table_name(dataset)",
    "day.year:04d", "day.month:02d", "day.day:02d",
    "partitions",  # hive.register_partitions: PARTITION clauses of day digits and an escaped location
}  # fmt: skip


def test_a_lake_root_with_glob_characters_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spark would read ``/data/{a,b}`` as a glob (found: a root with ``${y}`` gave PATH_NOT_FOUND)."""
    from pydantic import ValidationError

    from tsplatform.settings import Settings

    for root in ("/data/lake ${y}", "/data/[x]", "/data/*"):
        monkeypatch.setenv("TSPLATFORM_LAKE_ROOT", root)
        with pytest.raises(ValidationError, match="glob character"):
            Settings()
    monkeypatch.setenv("TSPLATFORM_LAKE_ROOT", "/data/lake it's `x` $y 광")
    assert Settings().lake_root == "/data/lake it's `x` $y 광"


def test_no_shell_and_no_data_in_sql_text() -> None:
    """Subprocesses are argument lists (no ``shell=True``, ``os.system``); SQL text interpolates only the
    expressions of ``SAFE_SQL_INTERPOLATIONS``; values go in as parameters (previous test)."""
    sources = {p: p.read_text(encoding="utf-8") for p in (REPO_ROOT / "tsplatform").rglob("*.py")}
    interpolations = set()
    for path, text in sources.items():
        assert "shell=True" not in text, path
        assert not re.search(r"\bos\.(system|popen)\(", text), path
        for m in re.finditer(r"\.sql\(", text):
            depth, end = 1, m.end()
            while depth and end < len(text):  # the call's text up to its closing parenthesis
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            interpolations |= {(path.name, e) for e in re.findall(r"\{([^{}]+)\}", text[m.end() : end])}
    assert interpolations  # the check below looks at something
    assert {e for _, e in interpolations} <= SAFE_SQL_INTERPOLATIONS, interpolations


def test_ui_ports_bind_loopback_by_default() -> None:
    """``make dev`` passes -h 127.0.0.1, Dagster's own default is loopback, docker publishes on 127.0.0.1."""
    from dagster._cli.dev import dev_command
    from dagster_webserver.cli import dagster_webserver

    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^DAGSTER_HOST \?= 127\.0\.0\.1$", makefile, re.MULTILINE)
    dev_lines = [ln.strip() for ln in makefile.splitlines() if "dagster dev" in ln and ln.startswith("\t")]
    assert dev_lines
    for line in dev_lines:
        argv = shlex.split(line)
        assert argv[argv.index("-h") + 1] == "$(DAGSTER_HOST)"
    dev_host = next(p for p in dev_command.params if p.name == "host").default
    webserver_host = next(p for p in dagster_webserver.params if p.name == "host").default
    assert webserver_host == "127.0.0.1"
    assert dev_host in ("127.0.0.1", webserver_host) or not isinstance(
        dev_host, str
    )  # unset: the webserver's
    compose = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))
    published = [(name, p) for name, s in compose["services"].items() for p in s.get("ports", [])]
    assert published
    for name, port in published:
        assert str(port).startswith("${TSPLATFORM_PUBLISH_ADDRESS:-127.0.0.1}:"), (name, port)
    for path in (REPO_ROOT / "tsplatform").rglob("*.py"):
        assert "0.0.0.0" not in path.read_text(encoding="utf-8"), path


def test_dependency_audit() -> None:
    """pip-audit over requirements.lock against PyPI's advisories, minus the documented allowlist
    (reliability/audit-allowlist.txt); a clear skip when the advisory source is unreachable."""
    from tsplatform_tests.reliability import audit

    outcome = audit.run_audit()
    if outcome.unreachable:
        pytest.skip(outcome.message)
    assert outcome.findings == [], outcome.message
