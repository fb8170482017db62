"""``validated_readings``: each day's raw readings validated and de-duplicated per series, on Spark.

Spark runs the pure functions of :mod:`tsplatform.timeseries.validate` per series
(``groupBy("series_id").applyInPandas``): the Pandera reading schema, timestamp checks (parseable, not in
the future, inside the partition's UTC day) and the sensor range ``[rstart, rend]``, then exact and
same-timestamp duplicates (keep-first in offset order). Valid rows go to ``validated_readings``,
rejected ones with their ``reason`` to ``validation_rejects`` — nothing is dropped silently. A day's
output is bounded (one day of readings), so the driver writes each dataset's day partition as one
atomically renamed Parquet file, replacing the previous version of the partition, and registers the
day's partitions of ``raw_readings``, ``validated_readings`` and ``validation_rejects`` in the Hive
metastore (``SELECT ... FROM tsplatform.validated_readings``).

Automation: the asset re-materializes any day whose ``raw_readings`` partition was updated — the newest
day and days touched by late data alike (``eager`` without its latest-time-window filter).
"""

# No `from __future__ import annotations`: Dagster resolves op config/resource annotations at decoration.
import datetime as dt
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
from dagster_pyspark import PySparkResource

from tsplatform.assets.ingest import raw_readings
from tsplatform.hive import register_partition, spark_ddl_columns
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.lake import Lake
from tsplatform.partitions import daily_partitions
from tsplatform.resources.lake import LakeResource
from tsplatform.timeseries.validate import deduplicate, readings_schema, validate_readings

REJECTS_SCHEMA = RAW_READINGS_SCHEMA.append(pa.field("reason", pa.string(), nullable=False))
_OUT_SCHEMA = REJECTS_SCHEMA.set(REJECTS_SCHEMA.get_field_index("reason"), pa.field("reason", pa.string()))

#: Update any day partition whose upstream changed (late data included), once upstream runs are done.
any_day_eager = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())


def validate_series(frame: pd.DataFrame, day: dt.date, now: pd.Timestamp) -> pd.DataFrame:
    """One series-day: valid + de-duplicated rows (``reason`` null) and rejected rows with a reason."""
    valid, rejected = validate_readings(frame, day=day, now=now)
    kept, duplicates = deduplicate(valid)
    kept = kept.assign(reason=None)
    parts = [p for p in (kept, rejected, duplicates) if len(p)]
    if not parts:
        return frame.iloc[0:0].assign(reason=pd.Series(dtype=object))
    out = pd.concat(parts, ignore_index=True)
    out["event_time"] = pd.to_datetime(out["event_time"], utc=True, errors="coerce").dt.as_unit("ms")
    return out


def validate_day_on_spark(spark: Any, lake: Lake, day: dt.date, now: pd.Timestamp) -> pd.DataFrame | None:
    """Run :func:`validate_series` per series of ``raw_readings/<day>`` on Spark; ``None`` if no data."""
    files = lake.partition_files("raw_readings", day)
    if not files:
        return None
    uris = [f if "://" in f else f"file://{f}" for f in files]
    raw = spark.read.schema(spark_ddl_columns(RAW_READINGS_SCHEMA)).parquet(*uris)

    def per_series(frame: pd.DataFrame) -> pd.DataFrame:
        return validate_series(frame, day, now)[[f.name for f in _OUT_SCHEMA]]

    result = (
        raw.groupBy("series_id").applyInPandas(per_series, schema=spark_ddl_columns(_OUT_SCHEMA)).toPandas()
    )
    for column in ("event_time", "ingested_at"):  # Spark hands back naive session-time (UTC) stamps
        result[column] = pd.to_datetime(result[column], utc=True).dt.as_unit("ms")
    return result


def _to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame[[f.name for f in schema]], schema=schema, preserve_index=False)


@dg.asset(
    partitions_def=daily_partitions,
    deps=[raw_readings],
    group_name="clean",
    kinds={"spark", "parquet", "pandera"},
    automation_condition=any_day_eager,
    pool="spark",  # one Spark step at a time locally: the embedded Derby metastore is single-process
    check_specs=[
        dg.AssetCheckSpec("matches_reading_schema", asset="validated_readings"),
        dg.AssetCheckSpec("unique_series_timestamps", asset="validated_readings"),
        dg.AssetCheckSpec("every_raw_reading_accounted_for", asset="validated_readings"),
    ],
    description="Schema- and timestamp-valid, de-duplicated readings of the day; rejects kept with reasons.",
)
def validated_readings(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource
) -> dg.MaterializeResult:
    day = dt.date.fromisoformat(context.partition_key)
    the_lake = lake.lake()
    session = spark.spark_session
    now = pd.Timestamp.now(tz="UTC")
    raw = the_lake.read_partition("raw_readings", day, columns=["offset"])
    raw_rows = 0 if raw is None else raw.num_rows  # counted independently of the Spark job
    out = validate_day_on_spark(session, the_lake, day, now)
    if out is None or out.empty:
        out = _OUT_SCHEMA.empty_table().to_pandas()
    valid_mask = out["reason"].isna()
    valid, rejects = out[valid_mask].drop(columns="reason"), out[~valid_mask]
    valid = valid.sort_values(["series_id", "event_time"], kind="stable")
    name = f"{day.isoformat()}.parquet"
    the_lake.write_file("validated_readings", day, name, _to_table(valid, RAW_READINGS_SCHEMA))
    the_lake.write_file("validation_rejects", day, name, _to_table(rejects, REJECTS_SCHEMA))
    register_partition(session, the_lake, "raw_readings", RAW_READINGS_SCHEMA, day)
    register_partition(session, the_lake, "validated_readings", RAW_READINGS_SCHEMA, day)
    register_partition(session, the_lake, "validation_rejects", REJECTS_SCHEMA, day)

    schema_errors = 0
    if len(valid):
        try:
            readings_schema.validate(valid, lazy=True)
        except Exception as exc:  # pandera SchemaErrors: count the failure cases
            schema_errors = len(getattr(exc, "failure_cases", [])) or 1
    duplicated = int(valid.duplicated(["series_id", "event_time"]).sum())
    reasons = rejects["reason"].value_counts().to_dict()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(valid),
            "raw_rows": raw_rows,
            "rejected": len(rejects),
            "reasons": dg.MetadataValue.json({str(k): int(v) for k, v in reasons.items()}),
            "series": int(valid["series_id"].nunique()) if len(valid) else 0,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="matches_reading_schema",
                passed=schema_errors == 0,
                metadata={"errors": schema_errors},
            ),
            dg.AssetCheckResult(
                check_name="unique_series_timestamps",
                passed=duplicated == 0,
                metadata={"duplicates": duplicated},
            ),
            dg.AssetCheckResult(
                check_name="every_raw_reading_accounted_for",
                passed=len(valid) + len(rejects) == raw_rows,
                metadata={"valid": len(valid), "rejected": len(rejects), "raw": raw_rows},
            ),
        ],
    )
