"""Spark resource: a PySparkResource with Hive support, metastore/warehouse/temp dirs under the state dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_pyspark import PySparkResource

from tsplatform.settings import Settings, get_settings


def spark_conf(settings: Settings | None = None) -> dict[str, str]:
    """Spark configuration from settings: master, Hive catalog (embedded Derby by default), local dirs.

    ``TSPLATFORM_SPARK_CONF`` entries override everything here (e.g. a remote metastore URI or
    executor memory on a cluster).
    """
    settings = settings or get_settings()
    # Local Python workers must run this interpreter (the system python3 has no pandas); Spark reads
    # these from the environment of the driver process, so every entry point gets them here.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    base: Path = settings.spark_dir
    for sub in ("warehouse", "tmp", "metastore"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    java_opts = f"-Djava.io.tmpdir={base / 'tmp'} -Dderby.system.home={base / 'metastore'}"
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
        "spark.driver.extraJavaOptions": java_opts,
        "spark.executor.extraJavaOptions": java_opts,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.memory": "2g",
    }
    conf.update(settings.spark_conf)
    return conf


def spark_resource(settings: Settings | None = None) -> PySparkResource:
    """The Dagster resource (a session per step process, built lazily)."""
    return PySparkResource(spark_config=spark_conf(settings))
