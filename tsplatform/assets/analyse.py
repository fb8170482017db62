"""``period_estimates``: each series' sampling period, confidence, jitter and phase per day, on Spark.

For day D the executors run ``estimate_period`` per series (:func:`tsplatform.timeseries.stages.
estimate_periods`) over the ``PERIOD_LOOKBACK_DAYS`` (7) days of ``validated_readings`` ending at D.
A series with fewer than 3 distinct timestamps in the window gets a row without a period and a note.
The catalog's series documents get the latest period (``period_s``, ``period_confidence``,
``period_day``).
"""

# No `from __future__ import annotations`: Dagster resolves the resource annotations at decoration.
import dagster as dg
import pyarrow as pa
from dagster_pyspark import PySparkResource
from pyspark.sql import functions as F

from tsplatform.assets.clean import validated_readings
from tsplatform.assets.common import (
    check_specs,
    graph_asset,
    input_buckets,
    read_or_empty,
    run_days,
    span,
    summary_and_checks,
    unique_check,
    with_day,
    write,
)
from tsplatform.datasets import PERIOD_ESTIMATES, PeriodEstimatesModel
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.partitions import PERIOD_LOOKBACK_DAYS, lookback
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.lake import LakeResource
from tsplatform.spark_io import apply_per_series, write_series_state
from tsplatform.timeseries.stages import estimate_periods

#: The columns of validated_readings the graph reads.
READINGS = pa.schema(
    [RAW_READINGS_SCHEMA.field(n) for n in ("series_id", "position", "type_name", "event_time", "value")]
)


@graph_asset(
    deps=[dg.AssetDep(validated_readings, partition_mapping=lookback(PERIOD_LOOKBACK_DAYS))],
    group="analyse",
    check_specs=check_specs(
        "period_estimates",
        {
            "matches_schema": ("Pandera PeriodEstimatesModel: types, ranges, phase < period.", True),
            "one_row_per_series_day": ("At most one estimate per (series, day).", True),
        },
    ),
    description=(
        "Per series and day: sampling period, confidence (0..1), jitter and phase (seconds) and the samples "
        f"used, estimated over the {PERIOD_LOOKBACK_DAYS} days of validated readings ending at the day."
    ),
)
def period_estimates(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource, catalog: CatalogResource
) -> dg.MaterializeResult:
    days = run_days(context)
    session, the_lake = spark.spark_session, lake.lake()
    window = span(days, PERIOD_LOOKBACK_DAYS)
    readings = read_or_empty(session, the_lake, "validated_readings", window, READINGS)

    def per_series(rows):  # type: ignore[no-untyped-def]
        return estimate_periods(rows, days, PERIOD_LOOKBACK_DAYS)

    out = apply_per_series(
        per_series,
        with_day(PERIOD_ESTIMATES),
        [readings],
        buckets=input_buckets(session, the_lake, {"validated_readings": window}),
    )
    written = write(session, out, the_lake, "period_estimates", days, PERIOD_ESTIMATES)
    try:
        metadata, checks = summary_and_checks(
            written,
            PeriodEstimatesModel,
            counts={
                "without_period": F.sum(F.col("period_s").isNull().cast("int")),
                "low_confidence": F.sum((F.col("confidence") < 0.5).cast("int")),
            },
            worst=(
                F.asc_nulls_first("confidence"),
                ["series_id", "position", "type_name", "date", "period_s", "confidence", "note"],
            ),
        )
        checks.append(unique_check(written, "one_row_per_series_day", ["series_id", "date"]))
        # from the cache as computed (not coalesced): the catalog upserts run on every core
        latest = written.cached.where(F.col("date") == days[-1].isoformat()).select(
            F.col("series_id").alias("_id"),
            F.col("period_s"),
            F.col("confidence").alias("period_confidence"),
            F.col("date").alias("period_day"),
        )
        cat = catalog.settings_pair()
        written.committed()  # the catalog announces only days that are written
        write_series_state(latest, *cat)
    finally:
        written.close()
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
