"""Pure unit tests of the services plumbing: no Java, no broker."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from tsplatform.errors import (
    ConfigError,
    PortInUse,
    ServiceUnavailable,
    TsplatformError,
    from_validation_error,
)
from tsplatform.services import jars, kafka
from tsplatform.services.health import check_kafka, check_mongo, redact_uri
from tsplatform.services.manager import ServiceManager
from tsplatform.services.process import (
    PidRecord,
    _java_major,
    free_ports,
    is_ours,
    marker_args,
    port_is_free,
    read_pid_file,
    write_pid_file,
)
from tsplatform.settings import Settings


def test_error_one_line_folds_newlines_and_names_the_setting() -> None:
    error = ServiceUnavailable("Kafka at h:1\nis down", setting="TSPLATFORM_KAFKA_BOOTSTRAP")
    assert str(error) == "Kafka at h:1 is down (setting: TSPLATFORM_KAFKA_BOOTSTRAP)"
    assert isinstance(error, TsplatformError)
    assert TsplatformError("no setting").one_line() == "no setting"


def test_port_in_use_is_a_config_error_naming_port_and_setting() -> None:
    error = PortInUse(9092, service="kafka", setting="TSPLATFORM_KAFKA_PORT")
    assert isinstance(error, ConfigError)
    assert "9092" in str(error) and str(error).endswith("(setting: TSPLATFORM_KAFKA_PORT)")


def test_validation_error_becomes_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSPLATFORM_KAFKA_PORT", "not-a-port")
    with pytest.raises(ValidationError) as caught:
        Settings()
    error = from_validation_error(caught.value)
    assert error.setting == "TSPLATFORM_KAFKA_PORT"
    assert "'not-a-port'" in error.message and "\n" not in error.one_line()


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    text = kafka.render_server_properties(19092, 19093, tmp_path / "data")
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["offsets.topic.num.partitions"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "true"
    assert props["log.dirs"] == str(tmp_path / "data")
    factors = [v for k, v in props.items() if k.endswith("replication.factor")]
    assert len(factors) >= 3 and set(factors) == {"1"}


def test_cluster_id_is_22_urlsafe_characters_random_and_not_an_option() -> None:
    ids = {kafka.new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    assert not any(i.startswith("-") for i in ids)  # 1 in 64 would without the guard
    assert all(
        len(i) == 22 and set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for i in ids
    )


def test_pid_file_roundtrip_plain_pid_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "run" / "kafka.pid"
    write_pid_file(path, PidRecord(pid=123, ports={"port": 1, "controller_port": 2}, started_at=5.0))
    assert read_pid_file(path) == PidRecord(pid=123, ports={"port": 1, "controller_port": 2}, started_at=5.0)
    path.write_text("456\n")
    assert read_pid_file(path) == PidRecord(pid=456)
    path.write_text("{not json")
    assert read_pid_file(path) is None
    assert read_pid_file(tmp_path / "absent.pid") is None


def test_is_ours_requires_every_marker_on_a_live_process(tmp_path: Path) -> None:
    markers = marker_args("kafka", tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", *markers])
    try:
        assert is_ours(proc.pid, markers)
        assert not is_ours(proc.pid, marker_args("kafka", tmp_path / "other"))
        assert not is_ours(proc.pid, marker_args("mongo", tmp_path))
    finally:
        proc.kill()
        proc.wait()
    assert not is_ours(proc.pid, markers)


def test_port_is_free_detects_a_listening_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


def test_java_version_parsing() -> None:
    assert _java_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert _java_major('java version "1.8.0_392"') == 8
    assert _java_major('openjdk version "21" 2023-09-19') == 21
    assert _java_major("garbage") is None


def test_redact_uri_hides_the_password_only() -> None:
    assert redact_uri("mongodb://user:s3cr3t@h:1/db?x=1") == "mongodb://user:***@h:1/db?x=1"
    assert redact_uri("mongodb://h:1/?directConnection=true") == "mongodb://h:1/?directConnection=true"


def test_check_kafka_refused_names_address_and_setting() -> None:
    with pytest.raises(ServiceUnavailable) as caught:
        check_kafka("127.0.0.1:1", timeout_s=5)
    assert caught.value.setting == "TSPLATFORM_KAFKA_BOOTSTRAP"
    assert "127.0.0.1:1" in caught.value.message and "connection refused" in caught.value.message


def test_check_mongo_refused_and_malformed_uri() -> None:
    with pytest.raises(ServiceUnavailable) as caught:
        check_mongo("mongodb://u:pw@127.0.0.1:1/?directConnection=true", timeout_s=1)
    assert caught.value.setting == "TSPLATFORM_MONGO_URI"
    assert "127.0.0.1:1" in caught.value.message and "pw@" not in caught.value.message
    with pytest.raises(ConfigError) as bad:
        check_mongo("http://nope", timeout_s=1)
    assert bad.value.setting == "TSPLATFORM_MONGO_URI"


def test_manager_rejects_unknown_service_and_duplicate_ports(tmp_path: Path) -> None:
    manager = ServiceManager(tmp_path, kafka_port=1, kafka_controller_port=2, mongo_port=3)
    with pytest.raises(ConfigError, match="unknown service"):
        manager.pid_file("postgres")
    assert manager.kafka_bootstrap == "127.0.0.1:1"
    assert manager.mongo_uri == "mongodb://127.0.0.1:3/?directConnection=true"
    same = ServiceManager(tmp_path, kafka_port=40001, kafka_controller_port=40002, mongo_port=40001)
    with pytest.raises(ConfigError, match="configured twice"):
        same._check_ports(["kafka", "mongo"])


def test_jars_cache_stamp_tracks_the_pom(tmp_path: Path) -> None:
    assert not jars.is_resolved(tmp_path, "kafka")
    target = tmp_path / "kafka"
    target.mkdir()
    (target / "a.jar").write_bytes(b"")
    (target / jars.STAMP_NAME).write_text("0" * 64)
    assert not jars.is_resolved(tmp_path, "kafka")  # stamp of another pom
    (target / jars.STAMP_NAME).write_text(jars.pom_digest("kafka"))
    assert jars.is_resolved(tmp_path, "kafka")
    assert jars.classpath(tmp_path, "kafka").endswith("kafka/*")
    with pytest.raises(TsplatformError, match="tsplatform services fetch"):
        jars.classpath(tmp_path, "mongo")


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_up_on_free_ports_retries_a_taken_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[dict[str, dict[str, int]]] = []
    taken_until = {"attempt": 1}

    def up(self: ServiceManager, names: object = None) -> dict[str, str]:
        tried.append(self.configured_ports)
        if len(tried) <= taken_until["attempt"]:
            raise PortInUse(self.configured_ports["kafka"]["port"], service="kafka")
        return {}

    monkeypatch.setattr(ServiceManager, "up", up)
    monkeypatch.setattr(ServiceManager, "down", lambda self: {})
    manager = ServiceManager.up_on_free_ports(tmp_path, ["kafka"], attempts=2)
    assert len(tried) == 2 and manager.configured_ports is tried[1]
    tried.clear()
    taken_until["attempt"] = 2  # taken on every attempt: the last PortInUse is raised
    with pytest.raises(PortInUse):
        ServiceManager.up_on_free_ports(tmp_path, ["kafka"], attempts=2)
    assert len(tried) == 2
