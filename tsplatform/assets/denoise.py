"""``denoised_readings``: anomalies flagged on each series' grid and processed, beside the raw value.

Per series and day (:func:`tsplatform.timeseries.stages.denoise_series`, on the executors):
``detect_anomalies(series, causal=True)`` (the core's defaults) over the ``ANOMALY_LOOKBACK_DAYS`` of
``regularized_readings`` ending at the day (the causal detector's history), then the processing of the
flagged points (none, drop, clip, EMA) chosen by ``select_processing``: one-step forecast error against
**raw** held-out targets ("none" is a legitimate answer). ``value`` is processed, ``value_raw`` the
regularized value. Columns are a contract read by the ML assets. The catalog gets ``processing``.
"""

# No `from __future__ import annotations`: Dagster resolves the resource annotations at decoration.
import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import functions as F

from tsplatform.assets.common import (
    cached,
    check_specs,
    graph_asset,
    input_buckets,
    read_or_empty,
    run_days,
    span,
    summary_and_checks,
    unique_check,
    with_day,
    worst_table,
    write,
)
from tsplatform.assets.regularize import regularized_readings
from tsplatform.datasets import DENOISED_READINGS, REGULARIZED_READINGS, DenoisedReadingsModel
from tsplatform.partitions import ANOMALY_LOOKBACK_DAYS, lookback
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.lake import LakeResource
from tsplatform.spark_io import apply_per_series, write_series_state
from tsplatform.timeseries.stages import denoise_series


#: A flagged row left as it was although its series' processing changes flagged rows (drop -> NaN; ema ->
#: the EMA before it). ``clip`` may legitimately keep a flagged value already inside the fences.
def unprocessed_flag():  # type: ignore[no-untyped-def]
    """The Spark condition of a flagged row left unprocessed (see the comment above)."""
    return F.col("is_anomaly") & (
        ((F.col("processing") == "drop") & F.col("value").isNotNull())
        | ((F.col("processing") == "ema") & (F.col("value") == F.col("value_raw")))
    )


@graph_asset(
    deps=[dg.AssetDep(regularized_readings, partition_mapping=lookback(ANOMALY_LOOKBACK_DAYS))],
    group="denoise",
    check_specs=check_specs(
        "denoised_readings",
        {
            "matches_schema": (
                "Pandera DenoisedReadingsModel: types, score in [0, 1], only flags changed.",
                True,
            ),
            "one_row_per_series_time": ("One row per (series, grid time).", True),
            "no_unprocessed_flags": ("No flagged row left unprocessed by drop or EMA.", True),
        },
    ),
    description=(
        "Anomaly flags (is_anomaly: an event alarm of the anomaly likelihood, whose score is "
        "anomaly_score, or a row of a spike, is_spike) and the processed value beside value_raw; the "
        "processing (none, drop, clip, ema) chosen per series by one-step forecast error against raw "
        "held-out targets."
    ),
)
def denoised_readings(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource, catalog: CatalogResource
) -> dg.MaterializeResult:
    days = run_days(context)
    session, the_lake = spark.spark_session, lake.lake()
    window = span(days, ANOMALY_LOOKBACK_DAYS)
    regular = read_or_empty(session, the_lake, "regularized_readings", window, REGULARIZED_READINGS)

    def per_series(rows):  # type: ignore[no-untyped-def]
        return denoise_series(rows, days, ANOMALY_LOOKBACK_DAYS)

    out = apply_per_series(
        per_series,
        with_day(DENOISED_READINGS),
        [regular],
        buckets=input_buckets(session, the_lake, {"regularized_readings": window}),
    )
    written = write(session, out, the_lake, "denoised_readings", days, DENOISED_READINGS)
    try:
        metadata, checks = summary_and_checks(
            written,
            DenoisedReadingsModel,
            counts={
                "flagged": F.sum(F.col("is_anomaly").cast("int")),
                "spikes": F.sum(F.col("is_spike").cast("int")),
                "changed": F.sum((~F.col("value").eqNullSafe(F.col("value_raw"))).cast("int")),
            },
            row_checks={"no_unprocessed_flags": (unprocessed_flag(), "unprocessed_flags")},
        )
        checks.append(unique_check(written, "one_row_per_series_time", ["series_id", "event_time"]))
        # one shuffle of the day's rows for the three per-series views (processing is one per series-day)
        by_series_day = written.frame.groupBy("series_id", "position", "type_name", "_day").agg(
            F.sum(F.col("is_anomaly").cast("int")).alias("flagged"),
            F.first("processing").alias("processing"),
        )
        with cached(by_series_day) as per_series_day:
            metadata["worst_series"] = worst_table(
                per_series_day, [F.desc("flagged")], per_series_day.columns
            )
            by_processing = per_series_day.groupBy("processing").agg(F.countDistinct("series_id").alias("n"))
            metadata["processing"] = dg.MetadataValue.json(
                {r["processing"]: int(r["n"]) for r in by_processing.collect()}
            )
            latest = (
                per_series_day.groupBy("series_id")
                .agg(
                    F.max_by("processing", "_day").alias("processing"),
                    F.max("_day").alias("last_processed_day"),
                )
                .withColumnRenamed("series_id", "_id")
            )
            written.committed()  # the catalog announces only days that are written
            write_series_state(latest, *catalog.settings_pair())
    finally:
        written.close()
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
