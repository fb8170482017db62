"""``validated_readings``: each day's raw readings validated and de-duplicated per series, on Spark.

Spark runs the pure functions of :mod:`tsplatform.timeseries.validate` on the executors, once per day of a
bucket of series (:func:`tsplatform.spark_io.apply_per_bucket`; both are vectorised over series): the Pandera
reading schema, timestamp checks (parseable, not in the future, inside the partition's UTC day) and the sensor
range ``[rstart, rend]``, then exact and same-timestamp duplicates (keep-first in offset order). Valid rows go
to ``validated_readings``, rejected ones with their ``reason`` to ``validation_rejects`` — nothing is dropped
silently. The executors write both datasets (:func:`tsplatform.spark_io.replace_day_partitions`: staged, then
one atomic rename per day partition); nothing is collected to the driver but counts. The day's partitions of
``raw_readings``, ``validated_readings`` and ``validation_rejects`` are registered in the Hive metastore
(``SELECT ... FROM tsplatform.validated_readings``).

Backfills run as one run over the whole range (``BackfillPolicy.single_run``). Automation: the asset
re-materializes any day whose ``raw_readings`` partition was updated — the newest day and days touched by
late data alike (:data:`tsplatform.assets.automation.validated_on_new_or_late_raw`).
"""

# No `from __future__ import annotations`: Dagster resolves op config/resource annotations at decoration.
import datetime as dt
from concurrent.futures import Future
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
from dagster_pyspark import PySparkResource
from pyspark.sql import functions as F

from tsplatform.assets.automation import validated_on_new_or_late_raw
from tsplatform.assets.common import column_schema, empty_frame, graph_asset, run_days, with_day
from tsplatform.assets.ingest import raw_readings
from tsplatform.hive import register_partitions
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.resources.lake import LakeResource
from tsplatform.spark_checks import duplicate_keys, schema_failures_and_aggregates
from tsplatform.spark_io import (
    DAY_COLUMN,
    apply_per_bucket,
    as_written,
    beside,
    bucket_count,
    coalesced,
    partition_rows,
    read_days,
    replace_day_partitions,
)
from tsplatform.timeseries.validate import EVENT_TIME_DTYPE, as_readings, readings_schema, validate_series

REJECTS_SCHEMA = RAW_READINGS_SCHEMA.append(pa.field("reason", pa.string(), nullable=False))
_OUT_SCHEMA = REJECTS_SCHEMA.set(REJECTS_SCHEMA.get_field_index("reason"), pa.field("reason", pa.string()))

#: kept for callers of the earlier name
any_day_eager = validated_on_new_or_late_raw


def validate_days_on_spark(spark, lake, days: list[dt.date], now: pd.Timestamp, raw_rows: int):  # type: ignore[no-untyped-def]
    """Validated and rejected rows of ``raw_readings`` for ``days`` (``raw_rows`` rows, for the bucket count)
    as one Spark DataFrame (``reason`` null for valid rows; ``_day`` = the raw partition), computed per
    bucket of series and day on the executors; None when no day has raw data."""
    raws = []
    for day in days:
        raw = read_days(spark, lake, "raw_readings", [day], RAW_READINGS_SCHEMA)
        if raw is not None:
            raws.append(raw.withColumn(DAY_COLUMN, F.lit(day.isoformat())))
    if not raws:
        return None
    raw = raws[0]
    for more in raws[1:]:
        raw = raw.unionByName(more)
    out_schema = with_day(_OUT_SCHEMA)

    def per_bucket(frame: pd.DataFrame) -> pd.DataFrame:
        # every series of the bucket at once: validation and de-duplication are vectorised over series,
        # and "first" is the lowest offset within a series (a series lives in one Kafka partition)
        frame = frame.sort_values("offset", kind="stable")
        frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True).astype(EVENT_TIME_DTYPE)
        frame["ingested_at"] = pd.to_datetime(frame["ingested_at"], utc=True).dt.as_unit("ms")
        parts = []
        for key, rows in frame.groupby(DAY_COLUMN, sort=True):
            day = dt.date.fromisoformat(str(key))
            checked = validate_series(rows.drop(columns=[DAY_COLUMN]), day, now)
            parts.append(checked.assign(**{DAY_COLUMN: day.isoformat()}))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    return apply_per_bucket(per_bucket, out_schema, [raw], buckets=bucket_count(spark, raw_rows))


@graph_asset(
    deps=[raw_readings],
    group="clean",
    automation_condition=validated_on_new_or_late_raw,
    check_specs=[
        dg.AssetCheckSpec("matches_reading_schema", asset="validated_readings", blocking=True),
        dg.AssetCheckSpec("unique_series_timestamps", asset="validated_readings", blocking=True),
        dg.AssetCheckSpec("every_raw_reading_accounted_for", asset="validated_readings"),
    ],
    description="Schema- and timestamp-valid, de-duplicated readings of the day; rejects kept with reasons.",
)
def validated_readings(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource
) -> dg.MaterializeResult:
    days = run_days(context)
    the_lake = lake.lake()
    session = spark.spark_session
    now = pd.Timestamp.now(tz="UTC")
    raw_rows = partition_rows(the_lake, "raw_readings", days)  # Parquet footers: nothing read into the driver
    out = validate_days_on_spark(session, the_lake, days, now, raw_rows)
    if out is None:
        out = empty_frame(session, with_day(_OUT_SCHEMA))
    out = out.persist()
    writes: list[Future[Any]] = []
    try:
        # one job computes `out` on the executors, in parallel, and counts it by reason (null: valid)
        reasons = {r["reason"]: int(r["count"]) for r in out.groupBy("reason").count().collect()}
        valid_rows = reasons.pop(None, 0)
        rejected = sum(reasons.values())
        valid = as_written(out.where(F.col("reason").isNull()), days, RAW_READINGS_SCHEMA)
        # the two writes (one task per day each) run beside each other and the checks
        writes.append(
            beside(
                replace_day_partitions,
                session,
                valid,
                the_lake,
                "validated_readings",
                days,
                RAW_READINGS_SCHEMA,
                materialized=True,
            )
        )
        writes.append(
            beside(
                replace_day_partitions,
                session,
                out.where(F.col("reason").isNotNull()),
                the_lake,
                "validation_rejects",
                days,
                REJECTS_SCHEMA,
                materialized=True,
            )
        )
        schema_errors, examples, duplicated, series = 0, [], 0, 0
        if valid_rows:  # the checks read the rows written from the cache, not the day files (as `write`)
            valid = coalesced(valid, valid_rows)
            schema_errors, examples, counted = schema_failures_and_aggregates(
                valid.drop(DAY_COLUMN),
                readings_schema,
                {"series": F.countDistinct("series_id")},
                prepare=as_readings,
            )
            series = int(counted["series"])
            duplicated = duplicate_keys(valid, ["series_id", "event_time"])
    finally:
        try:
            for done in writes:  # every write finished (their errors propagate) before the cache goes
                done.result()
        finally:
            out.unpersist()
    register_partitions(session, the_lake, "raw_readings", RAW_READINGS_SCHEMA, days)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": valid_rows,
            "raw_rows": raw_rows,
            "rejected": rejected,
            "reasons": dg.MetadataValue.json(reasons),
            "series": series,
            "days": f"{days[0]}..{days[-1]}" if len(days) > 1 else str(days[0]),
            "dagster/column_schema": column_schema(RAW_READINGS_SCHEMA),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="matches_reading_schema",
                passed=schema_errors == 0,
                metadata={"errors": schema_errors, "examples": dg.MetadataValue.json(examples)},
            ),
            dg.AssetCheckResult(
                check_name="unique_series_timestamps",
                passed=duplicated == 0,
                metadata={"duplicates": duplicated},
            ),
            dg.AssetCheckResult(
                check_name="every_raw_reading_accounted_for",
                passed=valid_rows + rejected == raw_rows,
                metadata={"valid": valid_rows, "rejected": rejected, "raw": raw_rows},
            ),
        ],
    )
