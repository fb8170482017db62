"""Start, stop and inspect the local services of one state dir: Kafka, MongoDB-wire, and on request MariaDB,
a Kafka Connect worker and a Spark Connect server (``up(["kafka", "mongo", "mariadb", "connect", "spark"])``).

Everything lives under the state dir: jars in ``jars/`` (or ``jars_dir``), Kafka's config and log dir in
``kafka/``, the MongoDB store in ``mongo/``, process output in ``logs/<service>.log``, PID files in
``run/<service>.pid`` (JSON: pid and ports) and the client addresses in ``services.env``.

Typical use (the pytest ``services`` fixture does this)::

    manager = ServiceManager(state_dir, kafka_port=19092, kafka_controller_port=19093, mongo_port=27018)
    manager.up()                               # fetch jars if needed, start both, wait until healthy
    manager.stop("kafka", kill=True)           # SIGKILL the broker (data dir and ports are kept)
    manager.start("kafka")                     # same ports, same topics and committed offsets
    manager.down()
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tsplatform.errors import ConfigError, PortInUse, ServiceUnavailable, TsplatformError
from tsplatform.services import connect, jars, kafka, mariadb, mongo, spark_connect
from tsplatform.services.health import kafka_summary, mongo_summary
from tsplatform.services.process import (
    PidRecord,
    find_java,
    free_ports,
    is_ours,
    marker_args,
    port_is_free,
    read_pid_file,
    spawn,
    stop_pid,
    tail,
    write_pid_file,
)
from tsplatform.settings import SERVICES_ENV_FILE, Settings, get_settings

#: Every service, in start order (``down`` stops them in reverse).
SERVICE_NAMES: tuple[str, ...] = ("kafka", "mongo", "mariadb", "connect", "spark")
#: What ``up()`` / ``tsplatform services up`` start without names; the others are opt-in.
DEFAULT_SERVICES: tuple[str, ...] = ("kafka", "mongo")
#: Services run on the JVM from Maven jars (``connect`` also needs the ``debezium`` plugin jars).
JVM_SERVICES: dict[str, tuple[str, ...]] = {"kafka": ("kafka",), "mongo": ("mongo",),
                                            "connect": ("connect", "debezium")}  # fmt: skip
#: A service -> the services it needs running.
REQUIRES: dict[str, tuple[str, ...]] = {"connect": ("kafka",)}
ServiceName = Literal["kafka", "mongo", "mariadb", "connect", "spark"]
State = Literal["healthy", "unhealthy", "stopped"]

#: Port key of each service -> the setting (environment variable) that changes it.
PORT_SETTINGS: dict[str, dict[str, str]] = {
    "kafka": {"port": "TSPLATFORM_KAFKA_PORT", "controller_port": "TSPLATFORM_KAFKA_CONTROLLER_PORT"},
    "mongo": {"port": "TSPLATFORM_MONGO_PORT"},
    "mariadb": {"port": "TSPLATFORM_MARIADB_PORT"},
    "connect": {"port": "TSPLATFORM_CONNECT_PORT"},
    "spark": {"port": "TSPLATFORM_SPARK_CONNECT_PORT"},
}
LOG_ROTATE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ServiceStatus:
    """One service as seen by :meth:`ServiceManager.status`."""

    name: str
    state: State
    pid: int | None
    address: str
    detail: str = ""

    def line(self) -> str:
        pid = f"pid {self.pid}" if self.pid else "-"
        text = f"{self.name:<6} {self.state:<9} {pid:<11} {self.address}"
        return f"{text}  {self.detail}" if self.detail else text


def _stop_child(child: subprocess.Popen, *, kill: bool, timeout_s: float = 20.0) -> bool:
    """SIGTERM (or SIGKILL) our own child, SIGKILL after ``timeout_s``; reaps it. True if it was running."""
    if child.poll() is not None:
        return False
    child.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=30)
    return True


def _check_name(name: str) -> ServiceName:
    if name not in SERVICE_NAMES:
        raise ConfigError(f"unknown service {name!r}; expected one of: {', '.join(SERVICE_NAMES)}")
    return name  # type: ignore[return-value]


class ServiceManager:
    """Local services of one state dir, all on 127.0.0.1.

    Ports are the ones to start with; a service that is already running keeps the ports recorded in its
    PID file (``kafka_bootstrap`` / ``mongo_uri`` report those). ``start_timeout_s`` bounds the wait for
    a service to become healthy (the machine may be busy: the default is generous).
    """

    def __init__(
        self,
        state_dir: Path | str,
        *,
        kafka_port: int = 9092,
        kafka_controller_port: int = 9093,
        mongo_port: int = 27017,
        jars_dir: Path | str | None = None,
        start_timeout_s: float = 180.0,
        mariadb_port: int = 3306,
        connect_port: int = 8083,
        mariadb_user: str | None = None,
        mariadb_password: str | None = None,
        mariadb_database: str | None = None,
        spark_connect_port: int = 15002,
        settings: Settings | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).expanduser().resolve()
        self.jars_dir = Path(jars_dir).expanduser().resolve() if jars_dir else self.state_dir / "jars"
        self.configured_ports: dict[str, dict[str, int]] = {
            "kafka": {"port": int(kafka_port), "controller_port": int(kafka_controller_port)},
            "mongo": {"port": int(mongo_port)},
            "mariadb": {"port": int(mariadb_port)},
            "connect": {"port": int(connect_port)},
            "spark": {"port": int(spark_connect_port)},
        }
        self._settings = settings
        self._mariadb_account = (mariadb_user, mariadb_password, mariadb_database)
        self.start_timeout_s = start_timeout_s
        self._children: dict[str, subprocess.Popen] = {}

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: object) -> ServiceManager:
        """A manager for ``settings`` (default :func:`get_settings`); keyword ``overrides`` win."""
        s = settings or get_settings()
        kwargs: dict[str, object] = {
            "kafka_port": s.kafka_port,
            "kafka_controller_port": s.kafka_controller_port,
            "mongo_port": s.mongo_port,
            "jars_dir": s.jars_dir,
            "mariadb_port": s.mariadb_port,
            "connect_port": s.connect_port,
            "mariadb_user": s.mariadb_user,
            "mariadb_password": s.mariadb_password,
            "mariadb_database": s.mariadb_database,
            "spark_connect_port": s.spark_connect_port,
            "settings": s,
        }
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return cls(s.state_path, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def on_free_ports(
        cls, state_dir: Path | str, *, jars_dir: Path | str | None = None, settings: Settings | None = None
    ) -> ServiceManager:
        """A manager (nothing started) for ``state_dir`` with ports that are free right now (``settings``:
        those the Spark Connect server starts with, its state dir made ``state_dir``)."""
        kafka_port, controller_port, mongo_port, mariadb_port, connect_port, spark_port = free_ports(6)
        return cls(
            state_dir,
            kafka_port=kafka_port,
            kafka_controller_port=controller_port,
            mongo_port=mongo_port,
            jars_dir=jars_dir,
            mariadb_port=mariadb_port,
            connect_port=connect_port,
            spark_connect_port=spark_port,
            settings=settings,
        )

    @classmethod
    def up_on_free_ports(
        cls,
        state_dir: Path | str,
        names: Iterable[str] = DEFAULT_SERVICES,
        *,
        jars_dir: Path | str | None = None,
        attempts: int = 3,
    ) -> ServiceManager:
        """Start ``names`` in ``state_dir`` on free ports and return the running manager.

        Another process may take a port between choosing and binding it, so :class:`PortInUse` is retried
        on fresh ports (``attempts`` in all) before it is raised. For tests and benchmarks.
        """
        last: PortInUse | None = None
        for _attempt in range(attempts):
            manager = cls.on_free_ports(state_dir, jars_dir=jars_dir)
            try:
                manager.up(names)
                return manager
            except PortInUse as exc:
                last = exc
                manager.down()
        assert last is not None
        raise last

    # --- paths and addresses -----------------------------------------------------------------
    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def services_env_path(self) -> Path:
        return self.state_dir / SERVICES_ENV_FILE

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{_check_name(name)}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{_check_name(name)}.log"

    def markers(self, name: str) -> list[str]:
        if _check_name(name) == "mariadb":
            return mariadb.marker_args(name, self.state_dir)
        return marker_args(name, self.state_dir)

    def ports(self, name: str) -> dict[str, int]:
        """Ports of ``name``: those of the running process if any, else the configured ones."""
        record = self._running_record(name)
        if record is not None and record.ports:
            return dict(record.ports)
        return dict(self.configured_ports[_check_name(name)])

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports(name)['port']}"

    @property
    def kafka_bootstrap(self) -> str:
        """``bootstrap.servers`` of the local broker."""
        return self.address("kafka")

    @property
    def mongo_uri(self) -> str:
        """pymongo URI of the local MongoDB-wire server."""
        return f"mongodb://{self.address('mongo')}/?directConnection=true"

    @property
    def mariadb_credentials(self) -> mariadb.Credentials:
        """The client account of the local MariaDB (generated once per state dir unless configured)."""
        user, password, database = self._mariadb_account
        return mariadb.credentials(self.state_dir, user, password, database)

    @property
    def mariadb_dsn(self) -> str:
        """``mysql://<user>:<password>@127.0.0.1:<port>/<database>`` of the local MariaDB."""
        return self.mariadb_credentials.dsn(self.ports("mariadb")["port"])

    @property
    def connect_url(self) -> str:
        """REST address of the local Kafka Connect worker."""
        return f"http://{self.address('connect')}"

    @property
    def spark_remote(self) -> str:
        """``sc://`` address of the local Spark Connect server."""
        return f"sc://{self.address('spark')}"

    @property
    def spark_settings(self) -> Settings:
        """The settings the Spark Connect server of this state dir is started with."""
        base = self._settings or get_settings()
        return base.model_copy(update={"state_dir": self.state_dir, "spark_remote": None})

    def env(self) -> dict[str, str]:
        """The client settings of the local services (the content of ``services.env``).

        The opt-in services (MariaDB, Connect) are listed while they run.
        """
        out = {"TSPLATFORM_KAFKA_BOOTSTRAP": self.kafka_bootstrap, "TSPLATFORM_MONGO_URI": self.mongo_uri}
        if self._running_record("mariadb") is not None:
            out["TSPLATFORM_MARIADB_DSN"] = self.mariadb_dsn
        if self._running_record("connect") is not None:
            out["TSPLATFORM_CONNECT_URL"] = self.connect_url
        if self._running_record("spark") is not None:
            out["TSPLATFORM_SPARK_REMOTE"] = self.spark_remote
        return out

    def env_lines(self) -> list[str]:
        return [f"export {key}={shlex.quote(value)}" for key, value in self.env().items()]

    # --- jars ----------------------------------------------------------------------------------
    def fetch(self, names: Iterable[str] = DEFAULT_SERVICES) -> dict[str, bool]:
        """Resolve the jars of ``names`` (True = resolved now, False = cache already up to date).

        Only JVM services have jars (``connect``: the worker's and the Debezium plugin's).
        """
        sets = [j for n in names for j in JVM_SERVICES.get(_check_name(n), ())]
        if all(jars.is_resolved(self.jars_dir, name) for name in sets):
            return dict.fromkeys(sets, False)
        find_java()  # Maven needs it too: fail with the clear message first
        self.jars_dir.mkdir(parents=True, exist_ok=True)
        return {name: jars.resolve(self.jars_dir, name) for name in sets}

    # --- lifecycle -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / ".lock").open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _running_record(self, name: str) -> PidRecord | None:
        record = read_pid_file(self.pid_file(name))
        if record is not None and is_ours(record.pid, self.markers(name)):
            return record
        return None

    def _clean_stale(self, name: str) -> PidRecord | None:
        """Remove ``name``'s PID file if its PID is dead or not ours; returns the removed record."""
        path = self.pid_file(name)
        if not path.exists():
            return None
        record = read_pid_file(path)
        if record is not None and is_ours(record.pid, self.markers(name)):
            return None
        path.unlink(missing_ok=True)
        return record or PidRecord(pid=0)

    def up(self, names: Iterable[str] = DEFAULT_SERVICES) -> dict[str, str]:
        """Start the named services (default: Kafka, MongoDB-wire) unless running; wait until all are healthy.

        Idempotent. Returns a message per service. Ports are checked before anything starts
        (:class:`PortInUse` names the port and its setting); if one service fails to start, the ones
        started by this call are stopped again and :class:`ServiceUnavailable` says why.
        Writes ``services.env`` when every service of the state dir is healthy.
        """
        requested = {_check_name(n) for n in names}
        wanted = [n for n in SERVICE_NAMES if n in requested]  # start order: dependencies first
        java = find_java() if any(n in JVM_SERVICES or n == "spark" for n in wanted) else Path("java")
        if "mariadb" in wanted:
            mariadb.find_binaries()  # fail with the clear message before anything starts
        self.fetch(wanted)
        with self._lock():
            for name in wanted:
                for needed in REQUIRES.get(name, ()):
                    if needed not in wanted and self._running_record(needed) is None:
                        raise ServiceUnavailable(
                            f"{name} needs {needed} running: `tsplatform services up {needed} {name}`"
                        )
            messages: dict[str, str] = {}
            to_start: list[str] = []
            for name in wanted:
                if self._running_record(name) is not None:
                    continue
                stale = self._clean_stale(name)
                if stale is not None:
                    messages[name] = f"removed stale PID file (pid {stale.pid}); "
                to_start.append(name)
            self._check_ports(to_start)
            started: list[str] = []
            try:
                for name in to_start:  # those that need no other service start side by side
                    if name not in REQUIRES:
                        self._spawn(name, java)
                        started.append(name)
                for name in wanted:  # connect starts once the broker (and MariaDB) before it are healthy
                    if name in to_start and name in REQUIRES:
                        self._spawn(name, java)
                        started.append(name)
                    summary = self._wait_healthy(name)
                    summary += self._after_healthy(name)
                    state = "started" if name in to_start else "already running"
                    pid = self._running_record(name)
                    pid_text = f", pid {pid.pid}" if pid else ""
                    messages[name] = (
                        f"{messages.get(name, '')}{state} on {self.address(name)}{pid_text} ({summary})"
                    )
            except BaseException:
                for name in started:
                    self._stop_locked(name, kill=True)
                raise
            if all(self._running_record(n) is not None for n in DEFAULT_SERVICES):
                self._write_services_env()
            return messages

    def start(self, name: str) -> str:
        """Start one service (no-op if running) and wait until healthy; see :meth:`up`."""
        return self.up([name])[name]

    def stop(self, name: str, kill: bool = False) -> bool:
        """Stop one service by PID (SIGTERM, SIGKILL after 20 s; ``kill=True``: SIGKILL at once).

        Its data dir and ports are kept, so :meth:`start` brings it back as it was. Returns True if a
        process was stopped, False if it was not running (a stale PID file is removed either way).
        """
        with self._lock():
            stopped = self._stop_locked(_check_name(name), kill=kill)
            if name not in DEFAULT_SERVICES and self.services_env_path.exists():
                self._write_services_env()  # no longer lists the stopped opt-in service
            return stopped

    def down(self) -> dict[str, str]:
        """Stop every service of the state dir and remove ``services.env``; a message per service."""
        messages: dict[str, str] = {}
        with self._lock():
            for name in reversed(SERVICE_NAMES):
                record = read_pid_file(self.pid_file(name))
                stopped = self._stop_locked(name, kill=False)
                messages[name] = f"stopped (pid {record.pid})" if stopped and record else "not running"
            self.services_env_path.unlink(missing_ok=True)
        return dict(sorted(messages.items()))

    def status(self, timeout_s: float = 3.0) -> list[ServiceStatus]:
        """Each service: ``healthy`` (process ours and answering), ``unhealthy`` or ``stopped``."""
        result: list[ServiceStatus] = []
        for name in SERVICE_NAMES:
            record = self._running_record(name)
            if record is None and name not in DEFAULT_SERVICES and not self.pid_file(name).exists():
                continue  # an opt-in service never started here
            if record is None:
                stale = self._clean_stale(name)
                detail = f"removed stale PID file (pid {stale.pid})" if stale is not None else ""
                result.append(ServiceStatus(name, "stopped", None, self.address(name), detail))
                continue
            try:
                summary = self._health(name, timeout_s)
                result.append(ServiceStatus(name, "healthy", record.pid, self.address(name), summary))
            except TsplatformError as exc:
                result.append(ServiceStatus(name, "unhealthy", record.pid, self.address(name), exc.message))
        return result

    # --- internals -----------------------------------------------------------------------------
    def _check_ports(self, names: list[str]) -> None:
        seen: dict[int, str] = {}
        for name in SERVICE_NAMES:  # ports of running services count as taken by them
            record = self._running_record(name)
            if record is not None:
                for key, port in record.ports.items():
                    seen[port] = PORT_SETTINGS[name].get(key, name)
        for name in names:
            for key, port in self.configured_ports[name].items():
                setting = PORT_SETTINGS[name][key]
                if port in seen:
                    raise ConfigError(
                        f"port {port} is configured twice ({seen[port]} and {setting})", setting=setting
                    )
                seen[port] = setting
                if not port_is_free(port):
                    raise PortInUse(port, service=name, setting=setting)

    def _spawn(self, name: str, java: Path) -> None:
        for sub in (self.logs_dir, self.run_dir, self.state_dir / "tmp"):
            sub.mkdir(parents=True, exist_ok=True)
        log = self.log_file(name)
        if log.exists() and log.stat().st_size > LOG_ROTATE_BYTES:
            log.replace(log.with_suffix(".log.1"))
        ports = self.configured_ports[name]
        tmp_dir = self.state_dir / "tmp"
        env: dict[str, str] | None = None
        if name == "spark":
            cmd = spark_connect.server_command(self.spark_settings, ports["port"], self.markers(name))
            proc = spawn(cmd, log_path=log, cwd=self.state_dir, env=spark_connect.server_env())
            self._children[name] = proc
            write_pid_file(
                self.pid_file(name), PidRecord(pid=proc.pid, ports=dict(ports), started_at=time.time())
            )
            return
        if name == "mariadb":
            mariadb.prepare(self.state_dir, self.mariadb_credentials, log_path=log)
            cmd = mariadb.server_command(self.state_dir, ports["port"], self.markers(name))
            proc = spawn(cmd, log_path=log, cwd=mariadb.base_dir(self.state_dir))
            self._children[name] = proc
            write_pid_file(
                self.pid_file(name), PidRecord(pid=proc.pid, ports=dict(ports), started_at=time.time())
            )
            return
        classpath = jars.classpath(self.jars_dir, name)
        if name == "connect":
            home = self.state_dir / "connect"
            home.mkdir(parents=True, exist_ok=True)
            config = home / "worker.properties"
            plugins = self.jars_dir / jars.CONNECT_PLUGINS_DIR
            properties = connect.render_worker_properties(self.kafka_bootstrap, ports["port"], plugins)
            config.write_text(properties, encoding="utf-8")
            cmd = connect.worker_command(java, classpath, config, self.markers(name), tmp_dir)
            env = {**os.environ, "CONNECT_BOOTSTRAP_SERVERS": self.kafka_bootstrap}
            if self._running_record("mariadb") is not None:
                env.update(connect.worker_env(mariadb.parse_dsn(self.mariadb_dsn)))
        elif name == "kafka":
            home = self.state_dir / "kafka"
            data_dir = home / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
            config = home / "server.properties"
            config.write_text(
                kafka.render_server_properties(ports["port"], ports["controller_port"], data_dir),
                encoding="utf-8",
            )
            if not kafka.is_formatted(data_dir):
                id_file = home / "cluster.id"
                if not id_file.is_file() or id_file.read_text(encoding="ascii").startswith("-"):
                    id_file.write_text(kafka.new_cluster_id() + "\n", encoding="ascii")
                cluster_id = id_file.read_text(encoding="ascii").strip()
                kafka.format_storage(java, classpath, config, cluster_id, tmp_dir=tmp_dir, log_path=log)
            cmd = kafka.broker_command(java, classpath, config, self.markers(name), tmp_dir)
        else:
            store = mongo.data_file(self.state_dir)
            store.parent.mkdir(parents=True, exist_ok=True)
            cmd = mongo.server_command(java, classpath, ports["port"], store, self.markers(name), tmp_dir)
        proc = spawn(cmd, log_path=log, cwd=self.state_dir, env=env)
        self._children[name] = proc
        write_pid_file(
            self.pid_file(name), PidRecord(pid=proc.pid, ports=dict(ports), started_at=time.time())
        )

    def _health(self, name: str, timeout_s: float) -> str:
        if name == "kafka":
            return kafka_summary(self.kafka_bootstrap, timeout_s=timeout_s)
        if name == "mariadb":
            return mariadb.mariadb_summary(self.mariadb_dsn, timeout_s=timeout_s)
        if name == "connect":
            return connect.connect_summary(self.connect_url, timeout_s=timeout_s)
        if name == "spark":
            return spark_connect.spark_connect_summary(self.address("spark"), timeout_s=timeout_s)
        return mongo_summary(self.mongo_uri, timeout_s=timeout_s)

    def _after_healthy(self, name: str) -> str:
        """MariaDB: apply the study's schema (idempotent). Connect: register the Debezium connector when
        MariaDB runs here. Returns text appended to the service's message."""
        if name == "mariadb":
            if mariadb.schema_missing(self.mariadb_dsn):
                mariadb.apply_schema(self.mariadb_dsn)
                return ", schema applied"
            return ", schema present"
        if name == "connect" and self._running_record("mariadb") is not None:
            return ", " + connect.register_connector(self.connect_url, timeout_s=self.start_timeout_s)
        return ""

    def _wait_healthy(self, name: str) -> str:
        deadline = time.monotonic() + self.start_timeout_s
        last = "not checked yet"
        while time.monotonic() < deadline:
            record = read_pid_file(self.pid_file(name))
            child = self._children.get(name)
            if child is not None and record is not None and record.pid == child.pid:
                alive = child.poll() is None  # our own child: its exit status is the truth
            else:
                alive = record is not None and is_ours(record.pid, self.markers(name))
            if not alive:
                self._raise_exited(name, record)
            try:
                return self._health(name, timeout_s=min(3.0, max(0.5, deadline - time.monotonic())))
            except TsplatformError as exc:
                last = exc.message
            time.sleep(0.3)
        raise ServiceUnavailable(
            f"{name} did not become healthy within {self.start_timeout_s:.0f} s: {last} "
            f"(log: {self.log_file(name)})"
        )

    def _raise_exited(self, name: str, record: PidRecord | None) -> None:
        child = self._children.pop(name, None)
        code = child.poll() if child is not None else None
        if child is not None and code is None:  # alive but not answering as ours: do not leave it behind
            child.kill()
            code = child.wait(timeout=10)
        self.pid_file(name).unlink(missing_ok=True)
        lines = tail(self.log_file(name), 300)
        if any("Address already in use" in line or "BindException" in line for line in lines):
            for key, port in self.configured_ports[name].items():
                if not port_is_free(port):
                    raise PortInUse(port, service=name, setting=PORT_SETTINGS[name][key])
            key, port = next(iter(self.configured_ports[name].items()))
            raise PortInUse(port, service=name, setting=PORT_SETTINGS[name][key])
        errors = [ln for ln in lines if " ERROR " in ln or "Exception" in ln or ln.startswith("Error")]
        cause = (errors or lines or ["no output"])[-1].strip()
        exit_text = f" (exit code {code})" if code is not None else ""
        raise ServiceUnavailable(
            f"{name} exited during start-up{exit_text}: {cause[:300]} (log: {self.log_file(name)})"
        )

    def _stop_locked(self, name: str, kill: bool) -> bool:
        path = self.pid_file(name)
        record = read_pid_file(path)
        child = self._children.pop(name, None)
        stopped = False
        if child is not None and record is not None and child.pid == record.pid and child.poll() is None:
            stopped = _stop_child(child, kill=kill)  # started by this manager: no ownership guesswork
        elif record is not None:
            stopped = stop_pid(record.pid, self.markers(name), kill=kill)
        path.unlink(missing_ok=True)
        return stopped

    def _write_services_env(self) -> None:
        header = "# Written by `tsplatform services up`; read by tsplatform.settings as defaults.\n"
        tmp = self.services_env_path.with_suffix(".env.tmp")
        tmp.write_text(header + "\n".join(self.env_lines()) + "\n", encoding="utf-8")
        tmp.replace(self.services_env_path)
