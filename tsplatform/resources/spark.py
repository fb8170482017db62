"""Spark resource: a PySparkResource with Hive support, metastore/warehouse/temp dirs under the state dir.

Two ways to get a session, the same code on both:

* **classic** (default): each process (a Dagster run, ``tsplatform sql``) starts its own driver JVM with
  :func:`server_conf`;
* **Spark Connect** (``TSPLATFORM_SPARK_REMOTE=sc://host:port``, set in ``services.env`` while
  ``tsplatform services up spark`` runs): the process is a thin gRPC client of a long-lived driver, so the
  JVM's start-up, the metastore's and its JIT warm-up are paid once per server, not once per run.
  :func:`spark_conf` then holds only ``spark.remote`` and the session-level settings; the server was
  started with :func:`server_conf` (``tsplatform.services.spark_connect``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import InitResourceContext
from dagster_pyspark import PySparkResource

from tsplatform.settings import Settings, get_settings
from tsplatform.spark_worker import DAEMON_MODULE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Spark's and Hive's log4j2 configuration: everything from WARN up into ``<state>/logs/spark.log``, only
#: ERROR on the console, so Spark's and Hive's warnings do not drown the commands' own output.
LOG4J2_TEMPLATE = """\
status = error
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.console.ref = console
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = error
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
"""


def log4j2_config(settings: Settings) -> Path:
    """Write (once per content) and return the log4j2 file Spark's JVM is started with."""
    log_file = settings.state_path / "logs" / "spark.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    path = settings.spark_dir / "log4j2.properties"
    text = LOG4J2_TEMPLATE.format(log_file=log_file)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


#: a class archive written by a JVM that exited this long ago is complete (the JVM writes it at exit)
ARCHIVE_SETTLED_S = 120.0


def class_archive_options(settings: Settings) -> str:
    """JVM options that share the driver's loaded classes between runs (AppCDS, JDK 13+): ``-XX:
    SharedArchiveFile`` once an archive for this Java and these Spark jars exists, else ``-XX:
    ArchiveClassesAtExit`` so that this JVM writes one when it exits (a uniquely named ``.partial``, promoted
    by a later call once it has settled). Measured (``bench.spark_startup``): a Hive-enabled session, its
    first metastore call and first job take 5.7 s with the archive, 9.1 s without. An unusable archive is
    ignored by the JVM (it then loads classes as usual); "" when disabled."""
    if not settings.spark_class_cache:
        return ""
    base = (
        settings.spark_class_cache_dir
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tsplatform"
    )
    folder = base.expanduser() / "spark-cds"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / f"driver-{_class_archive_key()}.jsa"
        _promote_settled(archive)
    except OSError:  # a read-only or missing cache: run without
        return ""
    quiet = "-Xlog:cds=off -Xlog:cds+dynamic=off"
    if archive.exists():
        return f"-XX:SharedArchiveFile={archive} {quiet}"
    partial = archive.with_name(f"{archive.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")
    return f"-XX:ArchiveClassesAtExit={partial} {quiet}"


@functools.cache  # the Java runtime and Spark's jars do not change under a running process
def _class_archive_key() -> str:
    """What an archive is valid for: the Java runtime and the jars on Spark's class path (names, sizes)."""
    import pyspark

    home = os.environ.get("JAVA_HOME")  # the java Spark's launcher runs
    java = (Path(home) / "bin" / "java" if home else Path(shutil.which("java") or "java")).resolve()
    jars = Path(pyspark.__file__).parent / "jars"
    parts = [str(java), str(java.stat().st_size if java.exists() else 0), pyspark.__version__]
    parts += sorted(f"{j.name}:{j.stat().st_size}" for j in jars.glob("*.jar"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _promote_settled(archive: Path) -> None:
    """Without ``archive``, rename its newest settled ``.partial`` into place (atomic); drop the other settled
    ones (JVMs started before the archive existed write them too). Recent ones may still be being written
    by a running JVM and stay."""
    now = time.time()
    settled = sorted(
        (
            p
            for p in archive.parent.glob(f"{archive.stem}.*.partial")
            if now - p.stat().st_mtime > ARCHIVE_SETTLED_S
        ),
        key=lambda p: p.stat().st_mtime,
    )
    if settled and not archive.exists() and settled[-1].stat().st_size > 0:
        settled[-1].replace(archive)
        settled = settled[:-1]
    for stale in settled:
        stale.unlink(missing_ok=True)


#: Settings a Spark Connect client may set on its session (runtime SQL settings); the rest of
#: :func:`server_conf` is the server's, fixed when it starts.
SESSION_CONF_KEYS: tuple[str, ...] = (
    "spark.sql.session.timeZone",
    "spark.sql.shuffle.partitions",
    "spark.sql.adaptive.coalescePartitions.enabled",
    "spark.sql.execution.arrow.pyspark.enabled",
)


def spark_conf(settings: Settings | None = None) -> dict[str, str]:
    """The configuration a session of this process is built with: :func:`server_conf` for a classic
    session; with ``spark_remote`` set, ``spark.remote`` and the session-level settings of
    :func:`server_conf` (``SESSION_CONF_KEYS`` and ``spark.sql.*`` entries of ``TSPLATFORM_SPARK_CONF``)."""
    settings = settings or get_settings()
    if not settings.spark_remote:
        return server_conf(settings)
    full = server_conf(settings, prepare=False)
    client = {"spark.remote": settings.spark_remote}
    client.update({k: v for k, v in full.items() if k in SESSION_CONF_KEYS})
    client.update({k: v for k, v in settings.spark_conf.items() if k.startswith("spark.sql.")})
    return client


def server_conf(settings: Settings | None = None, *, prepare: bool = True) -> dict[str, str]:
    """Spark configuration of a driver from settings: master, Hive catalog (embedded Derby by default),
    local dirs (created unless ``prepare`` is False).

    ``TSPLATFORM_SPARK_CONF`` entries override everything here (e.g. a remote metastore URI or
    executor memory on a cluster).
    """
    settings = settings or get_settings()
    if not prepare:
        return _driver_conf(settings, java_opts="", class_archive="")
    # Local Python workers must run this interpreter (the system python3 has no pandas); Spark reads
    # these from the environment of the driver process, so every entry point gets them here.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    base: Path = settings.spark_dir
    for sub in ("warehouse", "tmp", "metastore"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    java_opts = (
        f"-Djava.io.tmpdir={base / 'tmp'} -Dderby.system.home={base / 'metastore'} "
        f"-Dlog4j2.configurationFile=file:{log4j2_config(settings)}"
    )
    return _driver_conf(settings, java_opts=java_opts, class_archive=class_archive_options(settings))


def _driver_conf(settings: Settings, *, java_opts: str, class_archive: str) -> dict[str, str]:
    base: Path = settings.spark_dir
    conf = {
        "spark.master": settings.spark_master,
        "spark.app.name": "tsplatform",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(base / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={base / 'metastore' / 'metastore_db'};create=true"
        ),
        "spark.hadoop.hive.exec.dynamic.partition.mode": "nonstrict",
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        "spark.local.dir": str(base / "tmp"),
        # The throughput collector: in local mode the executors run in the driver JVM, where G1's
        # concurrent threads took CPU from the Python workers (BENCHMARKS.md "Asset graph on Spark")
        "spark.driver.extraJavaOptions": " ".join(
            o for o in (java_opts, "-XX:+UseParallelGC", class_archive) if o
        ),
        "spark.executor.extraJavaOptions": java_opts,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "8",
        # The graph's shuffles group series into buckets whose cost is CPU in Python, not bytes: AQE's
        # coalescing merged the 8 buckets of a day into 3 tasks (small shuffle data), idling a core.
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # PySpark's worker daemon without its two per-task costs (tsplatform.spark_worker)
        "spark.python.daemon.module": DAEMON_MODULE,
        "spark.driver.memory": "2g",
    }
    conf.update(settings.spark_conf)
    return conf


def is_remote(session: object) -> bool:
    """True for a Spark Connect client session (no ``sparkContext``, no JVM in this process)."""
    return type(session).__module__.startswith("pyspark.sql.connect")


def require_remote(conf: dict[str, Any]) -> None:
    """With ``spark.remote`` in ``conf``: raise ServiceUnavailable at once unless that Spark Connect server
    answers (a client session would retry for minutes before failing)."""
    remote = conf.get("spark.remote")
    if remote:
        from tsplatform.services.spark_connect import require_server

        require_server(str(remote))


def hive_session_builder(settings: Settings | None = None) -> SparkSession.Builder:
    """``SparkSession.builder`` with :func:`spark_conf` and Hive support, for the commands that open a
    session themselves (``tsplatform sql``, ``retention --hive``); checks a remote server first."""
    from pyspark.sql import SparkSession

    conf = spark_conf(settings)
    require_remote(conf)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport()


class SparkResource(PySparkResource):
    """``PySparkResource`` that first checks a Spark Connect server answers (``spark.remote`` set): a run
    fails at once with the reason instead of retrying for minutes."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        require_remote(self.spark_config)
        super().setup_for_execution(context)


def spark_resource(settings: Settings | None = None) -> PySparkResource:
    """The Dagster resource (a session per step process, built lazily)."""
    return SparkResource(spark_config=spark_conf(settings))
