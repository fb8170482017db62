"""``decompositions``: STL/MSTL trend, seasonal components and residual for each day's grid points.

Per series and day (:func:`tsplatform.timeseries.stages.decompose_series`, on the executors): the
processed values of ``denoised_readings`` over the ``DECOMPOSITION_LOOKBACK_DAYS`` (28) days ending at the
day, interpolated linearly onto the day's grid (holes filled, earlier days' grids re-aligned), decomposed
(robust MSTL, ``DECOMPOSITION_ROBUST_ITERATIONS``) with the seasons ``seasonal_periods`` derives from the
day's period estimate. Columns ``seasonal_<samples>``: one per
season length among the run's series (computed on the executors; only the lengths reach the driver);
a series without that season has nulls there. A series too short for its seasons gets a note.
"""

# No `from __future__ import annotations`: Dagster resolves the resource annotations at decoration.
from collections.abc import Iterator

import dagster as dg
import numpy as np
import pandas as pd
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tsplatform.assets.analyse import period_estimates
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
from tsplatform.assets.denoise import denoised_readings
from tsplatform.datasets import (
    DENOISED_READINGS,
    PERIOD_ESTIMATES,
    DecompositionsModel,
    decompositions_schema,
)
from tsplatform.partitions import DECOMPOSITION_LOOKBACK_DAYS, lookback
from tsplatform.resources.lake import LakeResource
from tsplatform.spark_io import apply_per_series
from tsplatform.timeseries.decompose import seasons_of_periods
from tsplatform.timeseries.stages import decompose_series


def season_lengths(estimates: DataFrame) -> list[int]:
    """The season lengths (samples) of the estimates' periods (``seasonal_periods`` of each), increasing.
    Computed on the executors: only the lengths, a handful, reach the driver. The distinct periods would
    not do: periods estimated from jittered stamps differ by milliseconds, up to one per series."""

    def lengths(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        found: set[int] = set()
        for batch in batches:
            found.update(seasons_of_periods(batch["period_s"]))
        yield pd.DataFrame({"season": np.array(sorted(found), dtype=np.int64)})

    # one Python task: even a period per series is a small input, and each task of a Python stage costs
    periods = estimates.select("period_s").where(F.col("period_s").isNotNull()).distinct().coalesce(1)
    return sorted({int(r["season"]) for r in periods.mapInPandas(lengths, "season long").collect()})


@graph_asset(
    deps=[
        period_estimates,
        dg.AssetDep(denoised_readings, partition_mapping=lookback(DECOMPOSITION_LOOKBACK_DAYS)),
    ],
    group="decompose",
    check_specs=check_specs(
        "decompositions",
        {
            "matches_schema": ("Pandera DecompositionsModel: trend, seasonal_<p>, resid are floats.", False),
            "one_row_per_series_time": ("One row per (series, grid time).", False),
        },
    ),
    description=(
        f"STL/MSTL trend, one seasonal_<samples> per season and resid for the day's grid points, fitted over "
        f"{DECOMPOSITION_LOOKBACK_DAYS} days of denoised values; seasons from the day's period estimate."
    ),
)
def decompositions(
    context: dg.AssetExecutionContext, spark: PySparkResource, lake: LakeResource
) -> dg.MaterializeResult:
    days = run_days(context)
    session, the_lake = spark.spark_session, lake.lake()
    window = span(days, DECOMPOSITION_LOOKBACK_DAYS)
    values = read_or_empty(session, the_lake, "denoised_readings", window, DENOISED_READINGS)
    estimates = read_or_empty(session, the_lake, "period_estimates", days, PERIOD_ESTIMATES)
    seasons = season_lengths(estimates)
    schema = decompositions_schema(seasons)

    def per_series(rows, estimate_rows):  # type: ignore[no-untyped-def]
        return decompose_series(rows, estimate_rows, days, seasons, lookback_days=DECOMPOSITION_LOOKBACK_DAYS)

    out = apply_per_series(
        per_series,
        with_day(schema),
        [values, estimates],
        buckets=input_buckets(session, the_lake, {"denoised_readings": window}),
    )
    written = write(session, out, the_lake, "decompositions", days, schema)
    try:
        metadata, checks = summary_and_checks(
            written,
            DecompositionsModel,
            counts={"not_decomposed": F.sum(F.col("trend").isNull().cast("int"))},
            worst=(
                F.desc_nulls_last(F.abs(F.col("resid"))),
                ["series_id", "position", "type_name", "event_time", "resid", "note"],
            ),
        )
        metadata["seasons"] = ", ".join(str(s) for s in seasons) or "(none)"
        checks.append(unique_check(written, "one_row_per_series_time", ["series_id", "event_time"]))
    finally:
        written.close()
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
