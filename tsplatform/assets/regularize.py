"""``regularized_readings``: each series on its phase-aligned grid for the day, missing slots imputed.

Per series and day (:func:`tsplatform.timeseries.stages.regularize_series`, on the executors): the
validated readings of the ``PERIOD_LOOKBACK_DAYS`` window ending at the day are placed on the grid of the
day's ``period_estimates`` row (``regularize``), missing slots are filled with the series' imputation
method, and the day's slots are kept. Gaps longer than ``TSPLATFORM_IMPUTE_MAX_GAP_S`` (1 day) stay NaN.
The method comes from the catalog (read once per run, broadcast to the executors) while it is less than
``TSPLATFORM_IMPUTATION_RESELECT_DAYS`` (7) days old; otherwise ``select_imputation`` re-selects it on the
window, and the catalog gets the new choice (``imputation_method``, ``imputation_selected``, and the
selection history ``imputation_history`` that re-processing an old day starts from). Selection waits for a
day with a slot to fill: until then a series' rows say ``not_needed``.
A series without a period estimate passes through unmodified (method ``none``) with a note.
"""

# No `from __future__ import annotations`: Dagster resolves the resource annotations at decoration.
import datetime as dt
from typing import Any

import dagster as dg
import pandas as pd
from dagster_pyspark import PySparkResource
from pyspark.sql import functions as F

from tsplatform.assets.analyse import READINGS, period_estimates
from tsplatform.assets.clean import validated_readings
from tsplatform.assets.common import (
    check_specs,
    graph_asset,
    markdown_table,
    read_or_empty,
    run_days,
    schema_check,
    span,
    summary,
    unique_check,
    with_day,
    write,
)
from tsplatform.datasets import PERIOD_ESTIMATES, REGULARIZED_READINGS, RegularizedReadingsModel
from tsplatform.partitions import PERIOD_LOOKBACK_DAYS, lookback
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.lake import LakeResource
from tsplatform.settings import get_settings
from tsplatform.spark_io import apply_per_series, bucket_count, irregular_series, write_series_state
from tsplatform.timeseries.impute import NOT_NEEDED
from tsplatform.timeseries.stages import imputation_history, merge_imputation_history, regularize_series

STATE_FIELDS = ["imputation_method", "imputation_selected", "imputation_history"]
HISTORY_FIELDS = ["_id", "imputation_history", "imputation_method", "imputation_selected"]
HISTORY_DOCUMENT_SCHEMA = (
    "_id string, imputation_history array<array<string>>, imputation_method string, "
    "imputation_selected string"
)


def history_documents(batch: pd.DataFrame, state: dict[str, Any], days: list[dt.date]) -> pd.DataFrame:
    """Catalog fields per series of ``batch`` (``series_id``, ``used``: the run's ``[day, method]`` pairs):
    the merged ``imputation_history`` and its latest entry as ``imputation_method`` /
    ``imputation_selected`` (``not_needed`` / null for a series without any selection yet)."""
    docs = []
    for sid, used in zip(batch["series_id"], batch["used"], strict=True):
        pairs = [(str(d), str(m)) for d, m in used]
        history = merge_imputation_history(imputation_history(state.get(sid)), pairs, days)
        docs.append(
            {
                "_id": sid,
                "imputation_history": [list(e) for e in history],
                "imputation_method": history[-1][1] if history else NOT_NEEDED,
                "imputation_selected": history[-1][0] if history else None,
            }
        )
    return pd.DataFrame(docs, columns=HISTORY_FIELDS)


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
    readings = read_or_empty(
        session, the_lake, "validated_readings", span(days, PERIOD_LOOKBACK_DAYS), READINGS
    )
    estimates = read_or_empty(session, the_lake, "period_estimates", days, PERIOD_ESTIMATES)
    cat = catalog.catalog()
    try:
        state = cat.series_fields(STATE_FIELDS)  # once per run, for every series
    finally:
        cat.close()
    shared = session.sparkContext.broadcast(state)
    max_gap_s, reselect_days = settings.impute_max_gap_s, settings.imputation_reselect_days

    def per_series(rows, estimate_rows):  # type: ignore[no-untyped-def]
        sid = rows["series_id"].iloc[0] if len(rows) else None
        return regularize_series(
            rows,
            estimate_rows,
            days,
            shared.value.get(sid),
            lookback_days=PERIOD_LOOKBACK_DAYS,
            max_gap_s=max_gap_s,
            reselect_days=reselect_days,
        )

    out = apply_per_series(
        per_series,
        with_day(REGULARIZED_READINGS),
        [readings, estimates],
        buckets=bucket_count(session, [readings]),
    )
    written = write(session, out, the_lake, "regularized_readings", days, REGULARIZED_READINGS)
    try:
        frame = written.frame
        per_series_day = frame.groupBy("series_id", "position", "type_name", "_day").agg(
            F.sum(F.col("is_imputed").cast("int")).alias("imputed"),
            F.sum(F.col("value").isNull().cast("int")).alias("left_missing"),
            F.count(F.lit(1)).alias("slots"),
            F.first("imputation_method").alias("method"),
        )
        metadata = summary(
            written,
            counts={
                "imputed": F.sum(F.col("is_imputed").cast("int")),
                "left_missing": F.sum(F.col("value").isNull().cast("int")),
                "passed_through": F.sum((F.col("imputation_method") == "none").cast("int")),
            },
        )
        worst = per_series_day.orderBy(F.desc("imputed"), F.desc("left_missing")).limit(5).collect()
        metadata["worst_series"] = dg.MetadataValue.md(markdown_table([r.asDict() for r in worst]))
        grid_failures = irregular_series(frame)
        checks = [
            schema_check(written, RegularizedReadingsModel),
            unique_check(written, "one_row_per_series_time", ["series_id", "event_time"]),
            dg.AssetCheckResult(
                check_name="on_regular_grid",
                passed=grid_failures == 0,
                metadata={"irregular_series_days": grid_failures},
            ),
        ]
        # the catalog's selection history: before the run, what the run's rows used, after the run
        used = frame.groupBy("series_id").agg(
            F.collect_set(
                F.when(
                    F.col("imputation_selected").isNotNull(),
                    F.array("imputation_selected", "imputation_method"),
                )
            ).alias("used")
        )

        def merged(batches):  # type: ignore[no-untyped-def]
            for batch in batches:
                yield history_documents(batch, shared.value, days)

        latest = used.mapInPandas(merged, HISTORY_DOCUMENT_SCHEMA)
        write_series_state(latest, *catalog.settings_pair())
    finally:
        written.close()
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
