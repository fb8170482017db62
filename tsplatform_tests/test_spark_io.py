"""``apply_per_bucket`` on a real Spark session: every series reaches exactly one call, and each bucket
runs in the shuffle partition meant for it, so the cores share the buckets evenly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tsplatform.resources.spark import spark_conf
from tsplatform.spark_io import apply_per_bucket, apply_per_series

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
