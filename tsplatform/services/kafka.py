"""Single-node Apache Kafka in KRaft mode (broker + controller in one JVM) bound to 127.0.0.1.

Layout under ``<state>/kafka/``: ``server.properties`` (rewritten at every start from the ports),
``data/`` (the log dir, formatted once with ``kafka.tools.StorageTool``; kept across restarts, so a
broker killed with SIGKILL restarts with its topics and offsets) and ``cluster.id``.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from tsplatform.errors import ServiceUnavailable
from tsplatform.services.jars import JAVA_DIR

HEAP_OPTS: tuple[str, ...] = ("-Xms256m", "-Xmx512m")
JVM_OPTS: tuple[str, ...] = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")
LOG4J_CONFIG = JAVA_DIR / "log4j2.properties"
NODE_ID = 1


def render_server_properties(port: int, controller_port: int, data_dir: Path) -> str:
    """``server.properties`` of a single-node KRaft cluster on 127.0.0.1 (replication factors 1).

    Sized for development and tests: one partition for the internal topics, no initial rebalance delay,
    topics auto-created, a 16 MB log-cleaner buffer instead of 128 MB, a 6 s broker session (restart
    after SIGKILL waits for the old session to expire).
    """
    settings = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": 1,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "share.coordinator.state.topic.num.partitions": 1,
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
        "log.cleaner.threads": 1,
        "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
        "log.retention.hours": 24 * 365,
        # After a SIGKILL the restarted broker cannot register until the old session expires
        # (DUPLICATE_BROKER_REGISTRATION): 6 s instead of the default 9 s, heartbeats every 1.5 s.
        "broker.session.timeout.ms": 6000,
        "broker.heartbeat.interval.ms": 1500,
    }
    lines = ["# Written by `tsplatform services` at every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters).

    Like Kafka's ``Uuid.randomUuid()``, never starts with ``-`` (it would read as a command-line option).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cluster_id.startswith("-"):
            return cluster_id


def is_formatted(data_dir: Path) -> bool:
    """True when the log dir was formatted (``meta.properties`` exists)."""
    return (data_dir / "meta.properties").is_file()


def _base_jvm(java: Path, classpath: str, markers: list[str], tmp_dir: Path) -> list[str]:
    return [
        str(java), *HEAP_OPTS, *JVM_OPTS, *markers,
        f"-Djava.io.tmpdir={tmp_dir}",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp", classpath,
    ]  # fmt: skip


def format_storage(
    java: Path, classpath: str, config: Path, cluster_id: str, *, tmp_dir: Path, log_path: Path
) -> None:
    """Format the log dir of ``config`` once (``kafka.tools.StorageTool format``); output appended to log."""
    cmd = [*_base_jvm(java, classpath, [], tmp_dir), "kafka.tools.StorageTool", "format",
           f"--cluster-id={cluster_id}", "-c", str(config), "--ignore-formatted"]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as exc:
        raise ServiceUnavailable("formatting the Kafka log dir took more than 180 s") from exc
    with log_path.open("a", encoding="utf-8") as log:
        log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        cause = lines[-1] if lines else f"exit code {proc.returncode}"
        raise ServiceUnavailable(f"formatting the Kafka log dir failed: {cause} (see {log_path})")


def broker_command(java: Path, classpath: str, config: Path, markers: list[str], tmp_dir: Path) -> list[str]:
    """The command line running the broker+controller (``kafka.Kafka server.properties``)."""
    return [*_base_jvm(java, classpath, markers, tmp_dir), "kafka.Kafka", str(config)]
