"""``apply_per_bucket`` on a real Spark session: every series reaches exactly one call, and each bucket
runs in the shuffle partition meant for it, so the cores share the buckets evenly. ``as_written`` (what the
assets' checks read instead of the day files) holds exactly the rows ``replace_day_partitions`` stored."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tsplatform.lake import Lake
from tsplatform.resources.spark import spark_conf
from tsplatform.spark_io import (
    DAY_COLUMN,
    apply_per_bucket,
    apply_per_series,
    as_written,
    replace_day_partitions,
)

SCHEMA = pa.schema([("series_id", pa.string()), ("rows", pa.int64()), ("partition", pa.int64())])


def session() -> SparkSession:
    builder = SparkSession.builder
    for key, value in spark_conf().items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def where_it_ran(rows: pd.DataFrame) -> pd.DataFrame:
    from pyspark import TaskContext

    counts = rows.groupby("series_id").size()
    return pd.DataFrame(
        {"series_id": counts.index, "rows": counts.to_numpy(), "partition": TaskContext.get().partitionId()}
    )


@pytest.mark.integration
@pytest.mark.parametrize("buckets", [8, 16])
def test_each_bucket_runs_in_its_own_shuffle_partition(buckets: int) -> None:
    spark = session()
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    ids = [f"series-{i}" for i in range(500)]
    frame = spark.createDataFrame(pd.DataFrame({"series_id": np.repeat(ids, 3), "value": np.arange(1500.0)}))
    out = apply_per_bucket(where_it_ran, SCHEMA, [frame], buckets=buckets).toPandas()
    assert sorted(out["series_id"]) == sorted(ids) and (out["rows"] == 3).all()  # each series, whole, once
    bucket = frame.select("series_id", F.pmod(F.xxhash64("series_id"), F.lit(buckets)).alias("b")).distinct()
    placed = out.merge(bucket.toPandas(), on="series_id")
    assert (placed["partition"] == placed["b"] % partitions).all()
    assert placed["partition"].nunique() == min(buckets, partitions)  # no partition left idle


@pytest.mark.integration
def test_apply_per_series_pairs_each_series_rows_of_both_inputs() -> None:
    spark = session()
    left = spark.createDataFrame(pd.DataFrame({"series_id": ["a", "a", "b"], "value": [1.0, 2.0, 3.0]}))
    right = spark.createDataFrame(pd.DataFrame({"series_id": ["b", "c"], "value": [10.0, 20.0]}))

    def both(rows: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
        sid = rows["series_id"].iloc[0] if len(rows) else other["series_id"].iloc[0]
        return pd.DataFrame({"series_id": [sid], "rows": [len(rows) * 10 + len(other)], "partition": [0]})

    out = apply_per_series(both, SCHEMA, [left, right], buckets=8).toPandas()
    assert dict(zip(out["series_id"], out["rows"], strict=True)) == {"a": 20, "b": 11, "c": 1}


@pytest.mark.integration
def test_the_decompositions_seasons_come_from_every_period_without_collecting_them() -> None:
    from tsplatform.assets.decompose import season_lengths

    spark = session()
    rng = np.random.default_rng(3)
    periods = np.concatenate(
        [
            600 + rng.uniform(-0.3, 0.3, 2_000),  # jittered 10-minute estimates: 2,000 distinct periods
            [3600.0, 86_400.0, 420.0, np.nan],  # hourly; daily (weekly season of 7); 7 min (weekly only)
        ]
    )
    frame = spark.createDataFrame(
        pd.DataFrame({"series_id": [f"s{i}" for i in range(periods.size)], "period_s": periods})
    )
    # 10 min -> 144, 1008; 1 h -> 24, 168; 1 day -> 7; 7 min -> 1440 (the week); NaN -> none
    assert season_lengths(frame) == [7, 24, 144, 168, 1008, 1440]
    assert season_lengths(frame.limit(0)) == []
    batch = "spark.sql.execution.arrow.maxRecordsPerBatch"
    saved = spark.conf.get(batch)
    spark.conf.set(batch, "100")  # the periods in 21 Arrow batches of one task: each season once
    try:
        assert season_lengths(frame) == [7, 24, 144, 168, 1008, 1440]
    finally:
        spark.conf.set(batch, saved)


@pytest.mark.integration
def test_as_written_holds_exactly_the_rows_of_the_day_files(tmp_path: Path) -> None:
    spark = session()
    schema = pa.schema(
        [("series_id", pa.string()), ("event_time", pa.timestamp("ms", tz="UTC")), ("value", pa.float64())]
    )
    days = [dt.date(2024, 3, 1), dt.date(2024, 3, 2)]
    times = pd.to_datetime(
        ["2024-03-01 00:00:00.000456", "2024-03-01 12:00:00.9999", "2024-03-02 06:00:00.123456",
         "2024-03-03 00:00:00.000001"], utc=True,
    )  # fmt: skip
    frame = spark.createDataFrame(
        pd.DataFrame(
            {
                "series_id": ["a", "a", "b", "b"],
                "event_time": times,
                "value": [1.0, np.nan, 3.0, 4.0],
                "extra": [0, 0, 0, 0],  # not in the schema: neither written nor checked
                DAY_COLUMN: [t.strftime("%Y-%m-%d") for t in times],
            }
        )
    )
    lake = Lake(str(tmp_path / "lake"))
    kept = as_written(frame, days, schema).toPandas()
    replace_day_partitions(spark, frame, lake, "as_written_probe", days, schema)
    stored = pd.concat(
        [
            pq.read_table(f, filesystem=lake.fs).to_pandas()
            for d in days
            for f in lake.partition_files("as_written_probe", d)
        ]
    )
    assert list(kept.columns) == [*schema.names, DAY_COLUMN]
    assert len(kept) == 3  # the day outside the run is neither written nor kept
    got = kept.drop(columns=[DAY_COLUMN]).sort_values("event_time").reset_index(drop=True)
    want = stored[schema.names].sort_values("event_time").reset_index(drop=True)

    def utc_us(times: pd.Series) -> list[int]:  # Spark hands back naive UTC, pyarrow aware UTC
        times = pd.to_datetime(times)
        times = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
        return times.dt.as_unit("us").astype("int64").tolist()

    assert utc_us(got["event_time"]) == utc_us(want["event_time"])
    assert [t % 1_000_000 for t in utc_us(got["event_time"])] == [0, 999_000, 123_000]  # milliseconds
    pd.testing.assert_frame_equal(got.drop(columns=["event_time"]), want.drop(columns=["event_time"]))


@pytest.mark.integration
@pytest.mark.parametrize("days", [[dt.date(2024, 3, 1)], [dt.date(2024, 3, 1), dt.date(2024, 3, 2)]])
def test_a_materialized_frame_is_written_one_file_per_day_with_every_row(
    tmp_path: Path, days: list[dt.date]
) -> None:
    """The coalescing path (one day of a computed, cached frame) and the shuffle path (several days) store
    the same rows: every row of each day, in exactly one file."""
    spark = session()
    schema = pa.schema([("series_id", pa.string()), ("value", pa.float64())])
    rows = pd.DataFrame(
        {
            "series_id": [f"s{i % 37}" for i in range(2_000)],
            "value": np.arange(2_000, dtype="float64"),
            DAY_COLUMN: [days[i % len(days)].isoformat() for i in range(2_000)],
        }
    )
    frame = spark.createDataFrame(rows).repartition(6).cache()
    assert frame.count() == len(rows) and frame.rdd.getNumPartitions() == 6
    lake = Lake(str(tmp_path / "lake"))
    replace_day_partitions(spark, frame, lake, "materialized_probe", days, schema, materialized=True)
    frame.unpersist()
    for day in days:
        files = lake.partition_files("materialized_probe", day)
        assert len(files) == 1
        stored = pq.read_table(files[0], filesystem=lake.fs).to_pandas()
        want = rows[rows[DAY_COLUMN] == day.isoformat()]
        assert sorted(stored["value"]) == sorted(want["value"])
        assert list(stored.columns) == schema.names


@pytest.mark.integration
def test_the_write_beside_the_checks_is_waited_for_and_its_failure_fails_the_asset(tmp_path: Path) -> None:
    """``assets.common.write`` returns while the day's file is written beside the caller's jobs; ``close``
    waits for it (the day is there afterwards), re-raises a failed write and drops the cache either way."""
    from tsplatform.assets.common import write

    spark = session()
    schema = pa.schema([("series_id", pa.string()), ("value", pa.float64())])
    day = dt.date(2024, 3, 1)
    frame = spark.createDataFrame(
        pd.DataFrame({"series_id": ["a", "b", "c"], "value": [1.0, 2.0, 3.0], DAY_COLUMN: day.isoformat()})
    )
    lake = Lake(str(tmp_path / "lake"))
    written = write(spark, frame, lake, "beside_probe", [day], schema)
    assert written.frame.count() == 3  # a job of the caller's while the write may still run
    written.close()
    assert not written.cached.is_cached
    [path] = lake.partition_files("beside_probe", day)
    assert sorted(pq.read_table(path, filesystem=lake.fs).column("series_id").to_pylist()) == ["a", "b", "c"]

    Path(lake.dataset_path("blocked_probe")).parent.mkdir(parents=True, exist_ok=True)
    Path(lake.dataset_path("blocked_probe")).write_text("a file where the dataset's directory should be")
    failing = write(spark, frame, lake, "blocked_probe", [day], schema)
    with pytest.raises(Exception):  # noqa: B017 - whichever error the file system gives
        failing.close()
    assert not failing.cached.is_cached


BESIDE_AFTER_A_SESSION_CHANGE = """
import datetime as dt, sys, tempfile
from pathlib import Path
import pyarrow as pa
from pyspark.sql import SparkSession
from tsplatform.hive import register_partitions
from tsplatform.lake import Lake
from tsplatform.resources.spark import server_conf
from tsplatform.settings import Settings
from tsplatform.spark_io import beside

def session():
    builder = SparkSession.builder
    state = Path(tempfile.mkdtemp())
    for key, value in server_conf(Settings(state_dir=state, spark_master="local[1]")).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()

first = session()
beside(lambda: first.sql("CREATE DATABASE IF NOT EXISTS tsplatform").collect()).result()
first.stop()
second = session()
lake, day = Lake(tempfile.mkdtemp()), dt.date(2024, 4, 2)
lake.write_file("probe", day, "p.parquet", pa.table({"x": [1]}))
schema = pa.schema([("x", pa.int64())])
register_partitions(second, lake, "in_the_callers_thread", schema, [day])
beside(register_partitions, second, lake, "beside_the_caller", schema, [day]).result()
print(sorted(t.name for t in second.catalog.listTables("tsplatform")))
"""


@pytest.mark.integration
def test_beside_registers_in_the_callers_metastore_after_a_session_change(tmp_path: Path) -> None:
    """A process that stopped one Spark session and built another (each with its own Hive metastore): a
    table registered by ``beside`` lands in the second one's metastore, as one registered by the caller
    does. With a thread pool, the thread first used under the first session kept its metastore, and the
    table was missing (the cause of an order-dependent failure of the Hive security test). Own process:
    the suite's worker keeps its session."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", BESIDE_AFTER_A_SESSION_CHANGE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "['beside_the_caller', 'in_the_callers_thread']"
