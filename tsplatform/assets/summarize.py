"""The day's summaries: ``hourly_readings``, ``series_profiles`` and ``correlations``, on Spark.

* ``hourly_readings``: per series-hour of ``denoised_readings``, mean, min, max and count of the processed
  values (``event_time`` = the hour's start).
* ``series_profiles``: per series-day, expected / present / duplicate / imputed / anomalous counts,
  missing and anomaly rates, mean, std, quantiles and the period, from validated, rejected, regularized
  and denoised rows and the period estimate. The catalog gets the latest ``missing_rate`` and
  ``anomaly_rate``.
* ``correlations``: per position and day, the series there aligned onto a common grid (``align``) and
  their pairwise Pearson correlations with pair counts (run per POSITION on the executors).
"""

# No `from __future__ import annotations`: Dagster resolves the resource annotations at decoration.
import dagster as dg
import pyarrow as pa
from dagster_pyspark import PySparkResource
from pyspark.sql import functions as F

from tsplatform.assets.analyse import READINGS, period_estimates
from tsplatform.assets.clean import REJECTS_SCHEMA, validated_readings
from tsplatform.assets.common import (
    check_specs,
    graph_asset,
    input_buckets,
    read_or_empty,
    run_days,
    summary_and_checks,
    unique_check,
    with_day,
    write,
)
from tsplatform.assets.denoise import denoised_readings
from tsplatform.assets.regularize import regularized_readings
from tsplatform.datasets import (
    CORRELATIONS,
    DENOISED_READINGS,
    HOURLY_READINGS,
    PERIOD_ESTIMATES,
    REGULARIZED_READINGS,
    SERIES_PROFILES,
    CorrelationsModel,
    HourlyReadingsModel,
    SeriesProfilesModel,
)
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.lake import LakeResource
from tsplatform.spark_io import (
    DAY_COLUMN,
    apply_per_bucket,
    apply_per_series,
    with_day_of,
    write_series_state,
)
from tsplatform.timeseries.stages import DUPLICATE_REASONS, correlate_position, hourly_series, profile_series

#: The datasets a day's profiles read.
PROFILE_INPUTS = (
    "validated_readings",
    "validation_rejects",
    "regularized_readings",
    "denoised_readings",
    "period_estimates",
)
SOURCES = pa.schema(
    [
        *[READINGS.field(n) for n in ("series_id", "position", "type_name", "event_time", "value")],
        pa.field("date", pa.string()),
        pa.field("source", pa.string()),
        pa.field("flag", pa.bool_()),
    ]
)


@graph_asset(
    group="summarize",
    deps=[denoised_readings],
    check_specs=check_specs(
        "hourly_readings",
        {
            "matches_schema": (
                "Pandera HourlyReadingsModel: on the hour, min <= mean <= max, count >= 0.",
                False,
            ),
            "one_row_per_series_hour": ("One row per (series, hour).", False),
        },
    ),
    description=(
        "Per series-hour (event_time = the hour's start): mean, min, max and count of denoised values."
    ),
)
def hourly_readings(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource
) -> dg.MaterializeResult:
    days = run_days(context)
    session, the_lake = spark.spark_session, lake.lake()
    values = read_or_empty(session, the_lake, "denoised_readings", days, DENOISED_READINGS)

    def per_bucket(rows):  # type: ignore[no-untyped-def]
        return hourly_series(rows, days)  # vectorised over the bucket's series

    out = apply_per_bucket(
        per_bucket,
        with_day(HOURLY_READINGS),
        [values],
        buckets=input_buckets(session, the_lake, {"denoised_readings": days}),
    )
    written = write(session, out, the_lake, "hourly_readings", days, HOURLY_READINGS)
    try:
        metadata, checks = summary_and_checks(
            written,
            HourlyReadingsModel,
            counts={"empty_hours": F.sum((F.col("count") == 0).cast("int"))},
            worst=(F.asc("count"), ["series_id", "position", "type_name", "event_time", "count"]),
        )
        checks.append(unique_check(written, "one_row_per_series_hour", ["series_id", "event_time"]))
    finally:
        written.close()
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


def _tagged(frame, source: str, value, flag):  # type: ignore[no-untyped-def]
    with_day = (
        with_day_of(frame) if "date" not in frame.columns else frame.withColumn(DAY_COLUMN, F.col("date"))
    )
    return with_day.select(
        "series_id",
        "position",
        "type_name",
        F.col("event_time").cast("timestamp").alias("event_time")
        if "event_time" in frame.columns
        else F.lit(None).cast("timestamp").alias("event_time"),
        value.cast("double").alias("value"),
        F.col(DAY_COLUMN).alias("date"),
        F.lit(source).alias("source"),
        flag.cast("boolean").alias("flag"),
    )


@graph_asset(
    group="summarize",
    deps=[validated_readings, period_estimates, regularized_readings, denoised_readings],
    check_specs=check_specs(
        "series_profiles",
        {
            "matches_schema": ("Pandera SeriesProfilesModel: counts >= 0, rates in [0, 1].", False),
            "one_row_per_series_day": ("One profile per (series, day).", False),
        },
    ),
    description=(
        "Per series-day: expected, present, duplicate, imputed and anomalous counts, missing and anomaly "
        "rates, mean, std, quantiles and the period."
    ),
)
def series_profiles(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource, catalog: CatalogResource
) -> dg.MaterializeResult:
    days = run_days(context)
    session, the_lake = spark.spark_session, lake.lake()
    validated = read_or_empty(session, the_lake, "validated_readings", days, READINGS)
    rejects = read_or_empty(
        session, the_lake, "validation_rejects", days, pa.schema([*READINGS, REJECTS_SCHEMA.field("reason")])
    )
    regular = read_or_empty(session, the_lake, "regularized_readings", days, REGULARIZED_READINGS)
    denoised = read_or_empty(session, the_lake, "denoised_readings", days, DENOISED_READINGS)
    estimates = read_or_empty(session, the_lake, "period_estimates", days, PERIOD_ESTIMATES)
    sources = (
        _tagged(validated, "validated", F.col("value"), F.lit(False))
        .unionByName(_tagged(rejects, "rejects", F.col("value"), F.col("reason").isin(*DUPLICATE_REASONS)))
        .unionByName(_tagged(regular, "regularized", F.col("value"), F.col("is_imputed")))
        .unionByName(_tagged(denoised, "denoised", F.col("value"), F.col("is_anomaly")))
        .unionByName(_tagged(estimates, "estimate", F.col("period_s"), F.lit(False)))
    )

    def per_bucket(rows):  # type: ignore[no-untyped-def]
        return profile_series(rows, days)  # vectorised over the bucket's series

    out = apply_per_bucket(
        per_bucket,
        with_day(SERIES_PROFILES),
        [sources],
        buckets=input_buckets(session, the_lake, dict.fromkeys(PROFILE_INPUTS, days)),
    )
    written = write(session, out, the_lake, "series_profiles", days, SERIES_PROFILES)
    try:
        metadata, checks = summary_and_checks(
            written,
            SeriesProfilesModel,
            counts={
                "imputed": F.sum("imputed"),
                "flagged": F.sum("anomalous"),
                "duplicates": F.sum("duplicates"),
            },
            worst=(
                F.desc_nulls_last("missing_rate"),
                ["series_id", "position", "type_name", "date", "missing_rate", "anomaly_rate", "note"],
            ),
        )
        checks.append(unique_check(written, "one_row_per_series_day", ["series_id", "date"]))
        # from the cache as computed (not coalesced): the catalog upserts run on every core
        latest = written.cached.where(F.col("date") == days[-1].isoformat()).select(
            F.col("series_id").alias("_id"),
            "missing_rate",
            "anomaly_rate",
            F.col("date").alias("profile_day"),
        )
        written.committed()  # the catalog announces only days that are written
        write_series_state(latest, *catalog.settings_pair())
    finally:
        written.close()
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


def pearson_out_of_range():  # type: ignore[no-untyped-def]
    return (F.col("pearson") < -1 - 1e-9) | (F.col("pearson") > 1 + 1e-9)


@graph_asset(
    group="summarize",
    deps=[denoised_readings],
    check_specs=check_specs(
        "correlations",
        {
            "matches_schema": ("Pandera CorrelationsModel: ordered pairs, n >= 0.", False),
            "pearson_in_range": ("Every Pearson correlation lies in [-1, 1].", False),
            "one_row_per_pair": ("One row per (position, day, series_a, series_b).", False),
        },
    ),
    description=(
        "Per position and day: the series there aligned onto a common grid and their pairwise Pearson "
        "correlations with pair counts."
    ),
)
def correlations(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource
) -> dg.MaterializeResult:
    days = run_days(context)
    session, the_lake = spark.spark_session, lake.lake()
    values = read_or_empty(session, the_lake, "denoised_readings", days, DENOISED_READINGS)

    def per_position(rows):  # type: ignore[no-untyped-def]
        return correlate_position(rows, days)

    out = apply_per_series(
        per_position,
        with_day(CORRELATIONS),
        [values],
        key="position",
        buckets=input_buckets(session, the_lake, {"denoised_readings": days}),
    )
    written = write(session, out, the_lake, "correlations", days, CORRELATIONS)
    try:
        metadata, checks = summary_and_checks(
            written,
            CorrelationsModel,
            counts={
                "positions": F.countDistinct("position"),
                "undefined": F.sum(F.col("pearson").isNull().cast("int")),
            },
            worst=(
                F.desc_nulls_last(F.abs(F.col("pearson"))),
                ["position", "date", "series_a", "series_b", "pearson", "n"],
            ),
            row_checks={"pearson_in_range": (pearson_out_of_range(), "out_of_range")},
        )
        checks.append(unique_check(written, "one_row_per_pair", ["position", "date", "series_a", "series_b"]))
    finally:
        written.close()
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
