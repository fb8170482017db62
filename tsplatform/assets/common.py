"""What every Spark asset of the graph shares: run days, check specs, writing, metadata, check results.

An asset of the graph reads its inputs for the run's days (plus lookback), computes its dataset with
:func:`tsplatform.spark_io.apply_per_series`, replaces the day partitions with
:func:`tsplatform.spark_io.replace_day_partitions`, and keeps the rows it wrote cached on the executors
for its checks, metadata and catalog updates: only aggregates reach the driver.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa

from tsplatform.assets.automation import on_new_or_late_data
from tsplatform.hive import spark_ddl_columns, spark_ddl_type
from tsplatform.lake import Lake
from tsplatform.partitions import daily_partitions, days_of
from tsplatform.spark_checks import duplicate_keys, schema_failures_and_aggregates
from tsplatform.spark_io import (
    DAY_COLUMN,
    as_written,
    beside,
    bucket_count,
    coalesced,
    partition_rows,
    read_days,
    replace_day_partitions,
)

if TYPE_CHECKING:
    import pandera.pandas as pandera
    from pyspark.sql import Column, DataFrame, SparkSession

OWNERS = ["team:data-platform"]
KINDS = {"spark", "parquet", "pandera"}
WORST_ROWS = 5


def graph_asset(
    *, group: str, automation_condition: dg.AutomationCondition = on_new_or_late_data, **asset_kwargs: Any
) -> Any:
    """``dg.asset`` with what every Spark asset of the graph shares: the daily partitions, a single-run
    backfill policy (a day range is one Spark job), the ``spark`` pool (the local Derby metastore admits one
    JVM), owners and kinds, and the graph's automation condition; ``asset_kwargs`` add the rest (deps,
    checks, description)."""
    return dg.asset(
        partitions_def=daily_partitions,
        group_name=group,
        kinds=KINDS,
        owners=OWNERS,
        automation_condition=automation_condition,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="spark",
        **asset_kwargs,
    )


def with_day(schema: pa.Schema) -> pa.Schema:
    """``schema`` plus the ``_day`` routing column of :func:`apply_per_series` output."""
    return schema.append(pa.field(DAY_COLUMN, pa.string()))


def run_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The UTC days of the run (one, or a backfill's whole range)."""
    return days_of(context.partition_time_window)


def span(days: Sequence[dt.date], lookback_days: int) -> list[dt.date]:
    """The run's days plus the ``lookback_days - 1`` days before the first."""
    first = days[0] - dt.timedelta(days=lookback_days - 1)
    return [first + dt.timedelta(days=i) for i in range((days[-1] - first).days + 1)]


def check_specs(asset: str, checks: dict[str, tuple[str, bool]]) -> list[dg.AssetCheckSpec]:
    """``{name: (description, blocking)}`` -> the asset's check specs."""
    return [
        dg.AssetCheckSpec(name, asset=asset, description=description, blocking=blocking)
        for name, (description, blocking) in checks.items()
    ]


def empty_frame(spark: SparkSession, schema: pa.Schema) -> DataFrame:
    return spark.createDataFrame([], schema=spark_ddl_columns(schema))


def read_or_empty(
    spark: SparkSession, lake: Lake, dataset: str, days: Sequence[dt.date], schema: pa.Schema
) -> DataFrame:
    frame = read_days(spark, lake, dataset, days, schema)
    return frame if frame is not None else empty_frame(spark, schema)


def input_buckets(spark: SparkSession, lake: Lake, reads: Mapping[str, Sequence[dt.date]]) -> int:
    """:func:`spark_io.bucket_count` for an asset reading ``{dataset: days}``, its rows counted from the
    Parquet footers (no Spark job)."""
    return bucket_count(spark, sum(partition_rows(lake, dataset, days) for dataset, days in reads.items()))


@contextlib.contextmanager
def cached(frame: DataFrame) -> Iterator[DataFrame]:
    """``frame`` cached for the block's several actions, and dropped from the executors after it, also when
    the block fails (a long-lived Spark Connect server would keep it)."""
    kept = frame.cache()
    try:
        yield kept
    finally:
        kept.unpersist()


def worst_table(frame: DataFrame, order: Sequence[Column], columns: Sequence[str]) -> dg.MetadataValue:
    """The first ``WORST_ROWS`` rows of ``frame`` by ``order``, ``columns`` of them, as a markdown table."""
    top = frame.orderBy(*order).select(*columns).limit(WORST_ROWS).collect()
    return dg.MetadataValue.md(markdown_table([r.asDict() for r in top]))


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(f.name, spark_ddl_type(f.type).lower()) for f in schema])


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    columns = list(rows[0])

    def cell(value: Any) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


@dataclass
class Written:
    """The rows an asset is writing to its day partitions, with ``_day``: ``frame`` reads them from
    ``cached`` (on the executors), on fewer partitions when they are few. The write itself (one task per
    day) runs beside the asset's checks and metadata (``pending``); ``committed`` waits for it."""

    frame: DataFrame
    cached: DataFrame
    days: list[dt.date]
    schema: pa.Schema
    pending: Future[Any] | None = None

    def committed(self) -> None:
        """Wait until the day files are swapped in and registered in Hive; re-raises the write's error. Call
        it before anything that announces the days as written (the catalog)."""
        if self.pending is not None:
            self.pending.result()

    def close(self) -> None:
        """Wait for the write (its error propagates), then drop the cache."""
        try:
            self.committed()
        finally:
            self.cached.unpersist()


def write(
    spark: SparkSession,
    out: DataFrame,
    lake: Lake,
    dataset: str,
    days: Sequence[dt.date],
    schema: pa.Schema,
) -> Written:
    """Replace the day partitions with ``out``; the rows written stay cached (``as_written``: computed once,
    in parallel, by counting them) for the write, the checks, metadata and catalog updates, ``coalesced``
    by that count. The write runs beside the caller (``spark_io.beside``): ``Written.close`` waits for it."""
    kept = as_written(out, days, schema).cache()
    try:
        rows = kept.count()
    except BaseException:
        kept.unpersist()
        raise
    pending = beside(replace_day_partitions, spark, kept, lake, dataset, days, schema, materialized=True)
    return Written(coalesced(kept, rows), kept, list(days), schema, pending)


def summary_and_checks(
    written: Written,
    model: type[pandera.DataFrameModel],
    *,
    counts: dict[str, Column] | None = None,
    worst: tuple[Column, list[str]] | None = None,
    row_checks: dict[str, tuple[Column, str]] | None = None,
) -> tuple[dict[str, Any], list[dg.AssetCheckResult]]:
    """Materialization metadata and the checks over the rows written, in ONE Spark aggregation: rows, series,
    the extra ``counts`` (name -> aggregate column), the Pandera ``model``'s rules (check
    ``matches_schema``) and each row check ``{check name: (condition of a failing row, metadata key of
    their count)}``. The metadata also gets the days, the column schema and, when ``worst`` is given
    (``(order column, columns to show)``), the worst series as a markdown table (a second, small job).
    Every job over the cached rows costs a scheduling round and a pass over them: an asset's checks and
    summary used 3-4 such jobs where this uses one."""
    from pyspark.sql import functions as F

    has_series = "series_id" in written.schema.names
    aggregates = {"rows": F.count(F.lit(1))}
    if has_series:
        aggregates["series"] = F.countDistinct("series_id")
    aggregates |= {f"count:{name}": column for name, column in (counts or {}).items()}
    aggregates |= {
        f"check:{name}": F.count(F.when(condition, F.lit(1)))
        for name, (condition, _) in (row_checks or {}).items()
    }
    failures, examples, values = schema_failures_and_aggregates(
        written.frame.drop(DAY_COLUMN), model, aggregates
    )
    metadata: dict[str, Any] = {
        "dagster/row_count": int(values["rows"]),
        "days": f"{written.days[0]}..{written.days[-1]}" if len(written.days) > 1 else str(written.days[0]),
        "dagster/column_schema": column_schema(written.schema),
    }
    if has_series:
        metadata["series"] = int(values["series"])
    metadata |= {name: int(values[f"count:{name}"] or 0) for name in counts or {}}
    if worst is not None:
        order, columns = worst
        metadata["worst_series"] = worst_table(written.frame, [order], columns)
    checks = [
        dg.AssetCheckResult(
            check_name="matches_schema",
            passed=failures == 0,
            metadata={"failure_cases": failures, "examples": dg.MetadataValue.json(examples)},
        )
    ]
    for name, (_, what) in (row_checks or {}).items():
        bad = int(values[f"check:{name}"])
        checks.append(dg.AssetCheckResult(check_name=name, passed=bad == 0, metadata={what: bad}))
    return metadata, checks


def unique_check(written: Written, name: str, keys: Sequence[str]) -> dg.AssetCheckResult:
    extra = duplicate_keys(written.frame, keys)
    return dg.AssetCheckResult(
        check_name=name, passed=extra == 0, metadata={"duplicate_rows": extra, "keys": ", ".join(keys)}
    )
