"""Spark plumbing of the asset graph: read day partitions, run a pandas function per series on the
executors, replace day partitions atomically, and compute checks, all without collecting data to the driver.

* :func:`read_days` — a Spark DataFrame over the visible Parquet files of some day partitions.
* :func:`apply_per_bucket` — runs ``fn(frame_1[, frame_2])`` on the executors once per BUCKET of series
  (or of any key column): ``groupBy(pmod(xxhash64(key), N)).applyInPandas`` (``cogroup`` for two inputs).
  ``fn`` gets every series of the bucket at once (the stages vectorised over series: validation, hourly,
  profiles). :func:`apply_per_series` loops over the series of a bucket inside the call, for the
  per-series stages (:func:`for_each_key` is that loop, for a bucket function that does something first).
  One call per series would pay pandas'/Pandera's fixed per-call cost 10,000 times a
  day (NOTES.md "Measured on the landed code"); a bucket pays it once. N: ``TSPLATFORM_SERIES_BUCKETS`` or
  ``spark.sql.shuffle.partitions``, raised so that a bucket holds at most ``ROWS_PER_BUCKET`` input rows
  (the executor's memory bound).
* :func:`replace_day_partitions` — the executors write the result, one file per day, under
  ``<dataset>/_staging/<token>/``; then each day's file is moved over ``<partition>/<day>.parquet`` with one
  rename, and the day is registered in the Hive metastore. Readers (the lake, Spark, Hive) skip
  ``_``-prefixed names, so a crash while writing leaves only invisible staged files (removed by the next
  writer after ``STALE_STAGING``); a crash between renames leaves every day either wholly old or wholly
  new (never half-visible: a day is always exactly one file). A rerun of the run repairs the rest.
* :func:`write_series_state` — per-series catalog fields, upserted by the executors.

The checks over these datasets live in :mod:`tsplatform.spark_checks`.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tsplatform.datasets import naive_utc
from tsplatform.hive import ensure_columns, register_partitions, spark_ddl_columns
from tsplatform.lake import Lake
from tsplatform.settings import get_settings

T = TypeVar("T")

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Upper bound of input rows per bucket (one pandas call holds a bucket in memory).
ROWS_PER_BUCKET = 500_000
#: Lower bound of input rows per bucket, unless TSPLATFORM_SERIES_BUCKETS says otherwise.
MIN_ROWS_PER_BUCKET = 20_000
#: Staged output older than this is a dead writer's leftover and is deleted by the next writer.
STALE_STAGING = dt.timedelta(hours=6)
DAY_COLUMN = "_day"
BUCKET_COLUMN = "_bucket"
_LABELS: dict[tuple[int, int], tuple[int, ...]] = {}  # (shuffle partitions, buckets) -> bucket_labels


def _file_uri(path: str) -> str:
    return path if "://" in path else f"file://{path}"


def read_days(
    spark: SparkSession, lake: Lake, dataset: str, days: Sequence[dt.date], schema: pa.Schema | None = None
) -> DataFrame | None:
    """The rows of ``dataset`` in ``days`` (``None`` when none of them has a file). ``schema``: the columns
    to read (missing ones are null); without it the files' merged schema."""
    files = [f for day in days for f in lake.partition_files(dataset, day)]
    if not files:
        return None
    reader = spark.read
    reader = (
        reader.schema(spark_ddl_columns(schema))
        if schema is not None
        else reader.option("mergeSchema", "true")
    )
    return reader.parquet(*[_file_uri(f) for f in files])


def bucket_count(spark: SparkSession, rows: int) -> int:
    """Buckets for :func:`apply_per_series` over ``rows`` input rows (see the module doc; count them with
    :func:`partition_rows`, from the Parquet footers, which costs no Spark job). Without
    ``TSPLATFORM_SERIES_BUCKETS``, a small input gets fewer buckets than shuffle partitions (at least
    ``MIN_ROWS_PER_BUCKET`` rows each): every non-empty bucket is a Python task with a fixed cost, which a
    few thousand rows do not repay."""
    configured = get_settings().series_buckets
    if not configured:
        partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
        configured = min(partitions, math.ceil(rows / MIN_ROWS_PER_BUCKET))
    return max(1, configured, math.ceil(rows / ROWS_PER_BUCKET))


def _conform(frame: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """``frame`` with exactly the schema's columns in order (missing ones null) and naive-UTC times."""
    columns = [f.name for f in schema]
    if frame.empty:
        return naive_utc(schema.empty_table().to_pandas())
    for name in columns:
        if name not in frame.columns:
            frame[name] = None
    return naive_utc(frame[columns])


def bucket_labels(spark: SparkSession, buckets: int) -> tuple[int, ...]:
    """The value of each bucket's ``_bucket`` column, chosen so that the shuffle of ``groupBy(_bucket)``
    sends bucket b to partition ``b mod spark.sql.shuffle.partitions``: Spark hash-partitions the group key
    (``pmod(hash(_bucket), partitions)``), and the plain labels 0..7 landed in 4 of 8 partitions, so two
    cores got 1, 2, 2 and 3 buckets' work. Labels are ints whose Murmur3 hash (Spark's ``hash``, the
    partitioner's function) has the wanted residue; found once per session by a tiny Spark job."""
    from pyspark.sql import functions as F

    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    if (partitions, buckets) not in _LABELS:
        need = -(-buckets // partitions)  # labels per shuffle partition
        label = F.col("id").cast("int")  # the type of the _bucket column: Murmur3 of an int != of a bigint
        ids = spark.range(0, 64 * need * partitions).select(label, F.pmod(F.hash(label), F.lit(partitions)))
        by_partition: dict[int, list[int]] = {}
        for value, partition in ids.collect():
            by_partition.setdefault(int(partition), []).append(int(value))
        labels = tuple(by_partition[b % partitions][b // partitions] for b in range(buckets))
        _LABELS[(partitions, buckets)] = labels
    return _LABELS[(partitions, buckets)]


def apply_per_bucket(
    fn: Callable[..., pd.DataFrame],
    schema: pa.Schema,
    frames: Sequence[DataFrame],
    *,
    key: str = "series_id",
    buckets: int,
) -> DataFrame:
    """``fn(rows_1[, rows_2])`` once per hash bucket of ``key`` on the executors: every row of the bucket's
    keys in each input (an input without rows there gives an empty frame), all keys of the bucket in one
    call, so a vectorised ``fn`` pays pandas' fixed per-call cost once per bucket, not once per key. Every
    key's rows land in the same bucket in both inputs. ``fn`` returns rows of ``schema`` (extra columns are
    dropped, missing ones null). One or two inputs."""
    from pyspark.sql import functions as F

    if not 1 <= len(frames) <= 2:
        raise ValueError(f"apply_per_bucket takes one or two inputs, got {len(frames)}")
    ddl = spark_ddl_columns(schema)

    def per_bucket(*parts: pd.DataFrame) -> pd.DataFrame:
        out = fn(*(p.drop(columns=[BUCKET_COLUMN], errors="ignore") for p in parts))
        return _conform(out if out is not None else pd.DataFrame(), schema)

    labels = F.array(*[F.lit(label).cast("int") for label in bucket_labels(frames[0].sparkSession, buckets)])
    bucket = F.element_at(labels, (F.pmod(F.xxhash64(F.col(key)), F.lit(buckets)) + 1).cast("int"))
    bucketed = [f.withColumn(BUCKET_COLUMN, bucket) for f in frames]
    if len(bucketed) == 1:

        def one(data: pd.DataFrame) -> pd.DataFrame:
            return per_bucket(data)

        return bucketed[0].groupBy(BUCKET_COLUMN).applyInPandas(one, schema=ddl)

    def two(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
        return per_bucket(left, right)

    left, right = (f.groupBy(BUCKET_COLUMN) for f in bucketed)
    return left.cogroup(right).applyInPandas(two, schema=ddl)


def apply_per_series(
    fn: Callable[..., pd.DataFrame],
    schema: pa.Schema,
    frames: Sequence[DataFrame],
    *,
    key: str = "series_id",
    buckets: int,
) -> DataFrame:
    """``fn(rows_1[, rows_2])`` for every value of ``key`` (the rows of that key in each input; an input
    without rows for it gives an empty frame), run on the executors over ``buckets`` hash buckets of keys
    (:func:`apply_per_bucket`, looping over the bucket's keys in the call). ``fn`` returns rows of
    ``schema`` (extra columns are dropped, missing ones null). One or two inputs."""

    def per_key(*parts: pd.DataFrame) -> pd.DataFrame:
        return for_each_key(fn, parts, key)

    return apply_per_bucket(per_key, schema, frames, key=key, buckets=buckets)


def for_each_key(fn: Callable[..., pd.DataFrame], parts: Sequence[pd.DataFrame], key: str) -> pd.DataFrame:
    """``fn(rows_1[, rows_2])`` for every value of ``key`` in ``parts`` (in key order; a part without rows
    for it gives an empty frame), the outputs concatenated: the loop of :func:`apply_per_series` inside
    one bucket, for a bucket function that does more (e.g. reads the bucket's per-series state first)."""
    groups = [
        {k: g for k, g in part.groupby(key, sort=False)} if len(part) and key in part else {}
        for part in parts
    ]
    keys = sorted(set().union(*groups))
    outputs = []
    for k in keys:
        subsets = [g.get(k, part.iloc[0:0]) for g, part in zip(groups, parts, strict=True)]
        out = fn(*subsets)
        if out is not None and len(out):
            outputs.append(out)
    return pd.concat(outputs, ignore_index=True) if outputs else pd.DataFrame()


def as_written(frame: DataFrame, days: Sequence[dt.date], schema: pa.Schema) -> DataFrame:
    """The rows of ``frame`` as :func:`replace_day_partitions` stores them for ``days``: the day filter, the
    columns of ``schema`` plus ``_day``, timestamps at the lake's millisecond precision. Checks and metadata
    run on this (cached) instead of reading the day files back: a day is one file, which Spark would read
    as one task and shuffle again to spread the work over the cores."""
    from pyspark.sql import functions as F

    columns = [
        F.expr(f"timestamp_millis(unix_millis(`{f.name}`))").alias(f.name)
        if pa.types.is_timestamp(f.type)
        else F.col(f"`{f.name}`")
        for f in schema
    ]
    wanted = sorted(d.isoformat() for d in days)
    return frame.where(F.col(DAY_COLUMN).isin(wanted)).select(*columns, F.col(DAY_COLUMN))


def coalesced(frame: DataFrame, rows: int) -> DataFrame:
    """``frame`` (of ``rows`` rows) on at most one partition per ``MIN_ROWS_PER_BUCKET`` rows (coalesced: no
    shuffle): each partition is a task of every job over it, and a Python task's fixed cost is not repaid by
    a few thousand rows. A larger frame keeps its partitions."""
    return frame.coalesce(max(1, math.ceil(rows / MIN_ROWS_PER_BUCKET)))


def partition_rows(lake: Lake, dataset: str, days: Sequence[dt.date]) -> int:
    """Rows of the ``days`` partitions of ``dataset``, from the Parquet footers (no Spark job; 0 for days
    without files)."""
    files = [f for day in days for f in lake.partition_files(dataset, day)]
    return sum(pq.read_metadata(f, filesystem=lake.fs).num_rows for f in files)


def with_day_of(frame: DataFrame, column: str = "event_time") -> DataFrame:
    """``frame`` plus the ``_day`` (``YYYY-MM-DD``, UTC) of a timestamp column."""
    from pyspark.sql import functions as F

    return frame.withColumn(DAY_COLUMN, F.date_format(F.col(column), "yyyy-MM-dd"))


def _clean_stale_staging(lake: Lake, dataset: str) -> None:
    staging = f"{lake.dataset_path(dataset)}/_staging"
    fs = lake.fs
    if fs.get_file_info(staging).type != pafs.FileType.Directory:
        return
    cutoff = time.time() - STALE_STAGING.total_seconds()
    for info in fs.get_file_info(pafs.FileSelector(staging)):
        if info.mtime is not None and info.mtime.timestamp() < cutoff:
            if info.type == pafs.FileType.Directory:
                fs.delete_dir(info.path)
            else:
                fs.delete_file(info.path)


def beside(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
    """Run ``fn(*args, **kwargs)`` (Spark actions) in a driver thread while the caller submits other jobs.
    Spark schedules the jobs of both threads at once: a one-task job, such as a day's write, leaves the
    other cores to the caller's jobs instead of idling them. The caller must ``result()`` the future before
    it relies on the effect; that re-raises ``fn``'s error.

    A new thread each call, not a pool: a Python thread keeps its JVM thread (py4j), and a JVM thread keeps
    the Hive metastore state of the session it first worked for. In a process that stopped one session and
    built another (a test worker), a pooled thread's ``CREATE TABLE`` went to the old session's metastore
    (test ``test_beside_registers_in_the_callers_metastore_after_a_session_change``)."""
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # re-raised by future.result() in the caller
            future.set_exception(exc)

    threading.Thread(target=run, name="spark-beside").start()
    return future


def replace_day_partitions(
    spark: SparkSession,
    frame: DataFrame,
    lake: Lake,
    dataset: str,
    days: Sequence[dt.date],
    schema: pa.Schema,
    *,
    materialized: bool = False,
) -> dict[dt.date, str]:
    """Replace the ``days`` partitions of ``dataset`` with the rows of ``frame`` (columns of ``schema`` and
    ``_day``); a day without rows gets an empty file. Registers the days in Hive (one metastore call).
    Returns day -> file.

    Written by the executors (one task per day writes the day's file); the driver only renames. A day is
    one file, so its rows meet in one task: by a shuffle on ``_day``, or, for a single day of a
    ``materialized`` frame (cached and computed, e.g. counted), by coalescing its cached partitions into
    that task, which skips writing and reading the whole day through the shuffle. Coalescing a frame that
    is not computed yet would run its whole computation in that one task.
    """
    from pyspark.sql import functions as F

    _clean_stale_staging(lake, dataset)
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MILLIS")
    token = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
    staging = f"{lake.dataset_path(dataset)}/_staging/{token}"
    wanted = {d.isoformat() for d in days}
    columns = [F.col(f"`{f.name}`") for f in schema]
    rows = frame.where(F.col(DAY_COLUMN).isin(sorted(wanted)))
    # all rows of a day in one task: one file per day
    rows = rows.coalesce(1) if materialized and len(wanted) == 1 else rows.repartition(F.col(DAY_COLUMN))
    (
        rows.select(*columns, F.col(DAY_COLUMN))
        .write.mode("overwrite")
        .option("compression", "zstd")
        .partitionBy(DAY_COLUMN)
        .parquet(f"{lake.uri(dataset)}/_staging/{token}")
    )
    fs = lake.fs
    staged: dict[str, list[str]] = {}
    if fs.get_file_info(staging).type == pafs.FileType.Directory:
        for info in fs.get_file_info(pafs.FileSelector(staging, recursive=True)):
            name = info.base_name
            parent = info.path.rsplit("/", 2)[-2]
            if (
                info.type == pafs.FileType.File
                and name.endswith(".parquet")
                and not name.startswith(("_", "."))
            ):
                staged.setdefault(parent.removeprefix(f"{DAY_COLUMN}="), []).append(info.path)
    written: dict[dt.date, str] = {}
    try:
        for day in days:
            key = day.isoformat()
            files = staged.get(key, [])
            if len(files) > 1:
                raise RuntimeError(f"{dataset}/{key}: {len(files)} staged files, expected one per day")
            if files:
                source = files[0]
            else:  # no rows for the day: an empty file replaces what was there
                source = f"{staging}/empty-{key}.parquet"
                pq.write_table(schema.empty_table(), source, filesystem=fs, compression="zstd")
            target_dir = lake.partition_path(dataset, day)
            fs.create_dir(target_dir, recursive=True)
            target = f"{target_dir}/{key}.parquet"
            fs.move(source, target)  # the swap: one rename, atomic on a local FS and HDFS
            for other in lake.partition_files(dataset, day):  # files of an older layout, if any
                if other != target:
                    fs.delete_file(other)
            written[day] = target
    finally:
        try:
            if written:  # the swapped days, also when a later day's swap failed
                register_partitions(spark, lake, dataset, schema, written)
        finally:
            if fs.get_file_info(staging).type == pafs.FileType.Directory:
                fs.delete_dir(staging)
    ensure_columns(spark, dataset, schema)
    return written


def write_series_state(frame: DataFrame, mongo_uri: str, mongo_db: str) -> None:
    """``$set`` the columns of ``frame`` (``_id`` = series id) on the catalog's series documents, from the
    executors (bulk upserts per Spark partition)."""

    def upsert(rows: Iterator[Any]) -> None:
        from tsplatform.catalog import Catalog

        docs = [row.asDict() for row in rows]
        if not docs:
            return
        catalog = Catalog(mongo_uri, mongo_db)
        try:
            catalog.update_series_many(docs)
        finally:
            catalog.close()

    frame.foreachPartition(upsert)
