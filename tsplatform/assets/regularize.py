"""``regularized_readings``: each series on its phase-aligned grid for the day, missing slots imputed.

Per series and day (:func:`tsplatform.timeseries.stages.regularize_series`, on the executors): the
validated readings of the ``PERIOD_LOOKBACK_DAYS`` window ending at the day are placed on the grid of the
day's ``period_estimates`` row (``regularize``), missing slots are filled with the series' imputation
method, and the day's slots are kept. Gaps longer than ``TSPLATFORM_IMPUTE_MAX_GAP_S`` (1 day) stay NaN.
The method comes from the catalog (read by the executors, per bucket of series) while it is less than
``TSPLATFORM_IMPUTATION_RESELECT_DAYS`` (7) days old; otherwise ``select_imputation`` re-selects it on the
window, and the catalog gets the new choice (``imputation_method``, ``imputation_selected``, and the
selection history ``imputation_history`` that re-processing an old day starts from). Selection waits for a
day with a slot to fill: until then a series' rows say ``not_needed``.
A series without a period estimate passes through unmodified (method ``none``) with a note.
"""

# No `from __future__ import annotations`: Dagster resolves the resource annotations at decoration.
import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tsplatform.assets.analyse import READINGS, period_estimates
from tsplatform.assets.clean import validated_readings
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
from tsplatform.datasets import PERIOD_ESTIMATES, REGULARIZED_READINGS, RegularizedReadingsModel
from tsplatform.partitions import PERIOD_LOOKBACK_DAYS, lookback
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.lake import LakeResource
from tsplatform.settings import get_settings
from tsplatform.spark_checks import GRID_TOLERANCE_S, grid_step_spread
from tsplatform.spark_io import apply_per_bucket, for_each_key
from tsplatform.timeseries.stages import history_document, latest_selections, regularize_series

STATE_FIELDS = ["imputation_method", "imputation_selected", "imputation_history"]
CHUNK = 1_000  # series documents read and written per catalog round trip when the history is merged


def write_imputation_history(used: DataFrame, days: list[dt.date], mongo_uri: str, mongo_db: str) -> None:
    """Merge each series' selections of the run (``used``: ``series_id``, ``used``) into its catalog
    history, on the executors: each partition reads its series' documents (``CHUNK`` at a time), merges
    and upserts them. The driver never holds the histories (16 selections of 100k series are ~250 MB in
    Python)."""

    def merge(rows: Iterator[Any]) -> None:
        from tsplatform.catalog import Catalog

        catalog = Catalog(mongo_uri, mongo_db)
        try:
            for chunk in iter(lambda: list(itertools.islice(rows, CHUNK)), []):
                old = catalog.series_fields(STATE_FIELDS, ids=[r["series_id"] for r in chunk])
                docs = [
                    history_document(r["series_id"], old.get(r["series_id"]), r["used"], days) for r in chunk
                ]
                catalog.update_series_many(docs)
        finally:
            catalog.close()

    used.foreachPartition(merge)


@graph_asset(
    deps=[
        period_estimates,
        dg.AssetDep(validated_readings, partition_mapping=lookback(PERIOD_LOOKBACK_DAYS)),
    ],
    group="regularize",
    check_specs=check_specs(
        "regularized_readings",
        {
            "matches_schema": (
                "Pandera RegularizedReadingsModel: types, methods, imputed rows have values.",
                True,
            ),
            "one_row_per_series_time": ("One row per (series, grid time).", True),
            "on_regular_grid": ("Every series-day's consecutive slots are one period apart.", True),
        },
    ),
    description=(
        "Each series on its phase-aligned grid for the day (regularize + detect_gaps), missing slots imputed "
        "with the series' method (is_imputed, imputation_method); gaps longer than the limit stay NaN."
    ),
)
def regularized_readings(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource, catalog: CatalogResource
) -> dg.MaterializeResult:
    days = run_days(context)
    settings = get_settings()
    session, the_lake = spark.spark_session, lake.lake()
    window = span(days, PERIOD_LOOKBACK_DAYS)
    readings = read_or_empty(session, the_lake, "validated_readings", window, READINGS)
    estimates = read_or_empty(session, the_lake, "period_estimates", days, PERIOD_ESTIMATES)
    max_gap_s, reselect_days = settings.impute_max_gap_s, settings.imputation_reselect_days
    mongo_uri, mongo_db = catalog.settings_pair()

    def per_bucket(rows, estimate_rows):  # type: ignore[no-untyped-def]
        from tsplatform.catalog import Catalog

        # each series' latest selection before the run (a run redoes the later ones), read by the executor
        # for its bucket's series, CHUNK documents a round trip: the driver holds no per-series state,
        # whatever the number of series (a nested function, so that the workers do not import this module)
        ids = sorted(
            {sid for part in (rows, estimate_rows) if "series_id" in part for sid in part["series_id"]}
        )
        state: dict[str, dict[str, str]] = {}
        cat = Catalog(mongo_uri, mongo_db)
        try:
            for start in range(0, len(ids), CHUNK):
                docs = cat.series_fields(STATE_FIELDS, ids=ids[start : start + CHUNK])
                state.update(latest_selections(docs.items(), before=days[0]))
        finally:
            cat.close()

        def per_series(series_rows, series_estimates):  # type: ignore[no-untyped-def]
            frame = series_rows if len(series_rows) else series_estimates
            sid = frame["series_id"].iloc[0] if len(frame) else None
            return regularize_series(
                series_rows,
                series_estimates,
                days,
                state.get(sid),
                lookback_days=PERIOD_LOOKBACK_DAYS,
                max_gap_s=max_gap_s,
                reselect_days=reselect_days,
            )

        return for_each_key(per_series, [rows, estimate_rows], "series_id")

    out = apply_per_bucket(
        per_bucket,
        with_day(REGULARIZED_READINGS),
        [readings, estimates],
        buckets=input_buckets(session, the_lake, {"validated_readings": window}),
    )
    written = write(session, out, the_lake, "regularized_readings", days, REGULARIZED_READINGS)
    try:
        metadata, checks = summary_and_checks(
            written,
            RegularizedReadingsModel,
            counts={
                "imputed": F.sum(F.col("is_imputed").cast("int")),
                "left_missing": F.sum(F.col("value").isNull().cast("int")),
                "passed_through": F.sum((F.col("imputation_method") == "none").cast("int")),
            },
        )
        checks.append(unique_check(written, "one_row_per_series_time", ["series_id", "event_time"]))
        # one shuffle of the day's rows for the per-series-day views: worst series, grid, selections used
        by_series_day = written.frame.groupBy("series_id", "position", "type_name", "_day").agg(
            F.sum(F.col("is_imputed").cast("int")).alias("imputed"),
            F.sum(F.col("value").isNull().cast("int")).alias("left_missing"),
            F.count(F.lit(1)).alias("slots"),
            F.first("imputation_method").alias("method"),
            grid_step_spread(F.col("event_time")).alias("step_spread"),
            F.collect_set(
                F.when(
                    F.col("imputation_selected").isNotNull(),
                    F.array("imputation_selected", "imputation_method"),
                )
            ).alias("used"),
        )
        with cached(by_series_day) as per_series_day:
            metadata["worst_series"] = worst_table(
                per_series_day,
                [F.desc("imputed"), F.desc("left_missing")],
                ["series_id", "position", "type_name", "_day", "imputed", "left_missing", "slots", "method"],
            )
            grid_failures = per_series_day.where(F.col("step_spread") > GRID_TOLERANCE_S).count()
            checks.append(
                dg.AssetCheckResult(
                    check_name="on_regular_grid",
                    passed=grid_failures == 0,
                    metadata={"irregular_series_days": grid_failures},
                )
            )
            # the catalog's selection history: before the run, what the run's rows used, after the run
            used = per_series_day.groupBy("series_id").agg(
                F.array_distinct(F.flatten(F.collect_list("used"))).alias("used")
            )
            written.committed()  # the catalog announces only days that are written
            write_imputation_history(used, days, *catalog.settings_pair())
    finally:
        written.close()
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
