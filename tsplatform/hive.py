"""Hive tables over the lake's datasets (Spark SQL with a Hive metastore; embedded Derby by default).

Each dataset ``D`` is an external Parquet table ``tsplatform.D`` at ``<lake>/D`` partitioned by
``year``, ``month``, ``day``: zero-padded strings exactly as in the Hive-style directories (the
metastore matches partition values as strings, so typed INT columns could not drop ``month=01``).
After landing, partitions are registered with ``ALTER TABLE ... RECOVER PARTITIONS``; retention
drops them with ``DROP PARTITION``.
Users query them with Spark SQL: ``SELECT * FROM tsplatform.raw_readings WHERE year='2024' AND month='03'``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyarrow as pa

from tsplatform.lake import Lake, check_dataset_name, day_partition

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DATABASE = "tsplatform"

_SPARK_TYPES: dict[pa.DataType, str] = {
    pa.string(): "STRING",
    pa.large_string(): "STRING",
    pa.float64(): "DOUBLE",
    pa.float32(): "FLOAT",
    pa.int64(): "BIGINT",
    pa.int32(): "INT",
    pa.bool_(): "BOOLEAN",
    pa.binary(): "BINARY",
}


def spark_ddl_type(dtype: pa.DataType) -> str:
    """Spark SQL type of an Arrow type (timestamps of any unit -> TIMESTAMP)."""
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMP"
    try:
        return _SPARK_TYPES[dtype]
    except KeyError as exc:
        raise ValueError(f"no Spark SQL type for Arrow type {dtype}") from exc


def spark_ddl_columns(schema: pa.Schema) -> str:
    """Back-quoted ``name TYPE, ...`` columns of an Arrow schema (DDL, read.schema, applyInPandas)."""
    return ", ".join(f"`{f.name}` {spark_ddl_type(f.type)}" for f in schema)


def table_name(dataset: str) -> str:
    return f"{DATABASE}.{check_dataset_name(dataset)}"


def ensure_table(spark: SparkSession, lake: Lake, dataset: str, schema: pa.Schema) -> str:
    """Create the external table of ``dataset`` if missing and register its partitions; returns its name."""
    name = table_name(dataset)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    columns = spark_ddl_columns(schema)
    location = lake.uri(dataset).replace("'", "\\'")
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {name} ({columns}, `year` STRING, `month` STRING, `day` STRING) "
        f"USING parquet PARTITIONED BY (`year`, `month`, `day`) LOCATION '{location}'"
    )
    spark.sql(f"ALTER TABLE {name} RECOVER PARTITIONS")
    return name


def register_partitions(
    spark: SparkSession, lake: Lake, dataset: str, schema: pa.Schema, days: Iterable[dt.date]
) -> str:
    """Create the table if missing and add the day partitions, all in one ``ALTER TABLE`` (one metastore
    call, ~0.1-0.2 s, instead of one per day; cheaper than recovering all partitions)."""
    name = table_name(dataset)
    if not spark.catalog.tableExists(name):
        return ensure_table(spark, lake, dataset, schema)

    def clause(day: dt.date) -> str:
        location = f"{lake.uri(dataset)}/{day_partition(day)}".replace("'", "\\'")
        keys = f"`year`='{day.year:04d}', `month`='{day.month:02d}', `day`='{day.day:02d}'"
        return f"PARTITION ({keys}) LOCATION '{location}'"

    partitions = " ".join(clause(day) for day in sorted(set(days)))
    if partitions:
        spark.sql(f"ALTER TABLE {name} ADD IF NOT EXISTS {partitions}")
    return name


def ensure_columns(spark: SparkSession, dataset: str, schema: pa.Schema) -> None:
    """Add the columns of ``schema`` the table lacks (a dataset whose columns grow, e.g. a new season in
    ``decompositions``); older partitions read them as null."""
    name = table_name(dataset)
    if not spark.catalog.tableExists(name):
        return
    present = {c.name for c in spark.catalog.listColumns(name)}
    missing = [f for f in schema if f.name not in present]
    if missing:
        columns = ", ".join(f"`{f.name}` {spark_ddl_type(f.type)}" for f in missing)
        spark.sql(f"ALTER TABLE {name} ADD COLUMNS ({columns})")


def drop_partition(spark: SparkSession, dataset: str, day: dt.date) -> None:
    """Remove a day partition from the metastore (files are the lake's business)."""
    spark.sql(
        f"ALTER TABLE {table_name(dataset)} DROP IF EXISTS "
        f"PARTITION (`year`='{day.year:04d}', `month`='{day.month:02d}', `day`='{day.day:02d}')"
    )


class HiveMetastore:
    """``drop_partition(dataset, day)`` for retention, bound to a Spark session."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def drop_partition(self, dataset: str, day: dt.date) -> None:
        if self.spark.catalog.tableExists(table_name(dataset)):
            drop_partition(self.spark, dataset, day)
