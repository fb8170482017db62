"""Compaction of closed days' raw files as a Dagster job on a daily schedule: a thin wrapper over
:mod:`tsplatform.ingest.compaction`.

``compact_raw_readings_job`` runs one op that compacts every ``raw_readings`` day partition that closed
at least ``after_days`` days ago (default 1: day D is compacted from D + 2, 00:00 UTC) and still holds
small landed files — at most ``max_days`` partitions a run, oldest first; a run with nothing to do does
nothing. Each compacted day gets an ``AssetObservation`` of ``raw_readings`` (files before/after, rows),
not a materialization: its content is unchanged, so nothing downstream re-runs. The catalog's partition
document is re-synced (its ``files`` count changes; rows, checksum and offset ranges do not).
Op config: ``after_days``, ``today`` (``YYYY-MM-DD``, default: the run's UTC date), ``days`` (explicit
``YYYY-MM-DD`` days instead of the plan), ``min_files`` and ``max_days``.
``compact_raw_readings_schedule`` runs it daily at 01:30 UTC.
"""

# No `from __future__ import annotations`: Dagster resolves the op annotations at decoration time.
import datetime as dt

import dagster as dg
import pydantic

from tsplatform.catalog import CatalogUnavailable
from tsplatform.errors import ConfigError
from tsplatform.ingest.compaction import CompactionError, closed_days, compact_day, needs_compaction
from tsplatform.partitions import daily_partitions
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.lake import LakeResource


class CompactionConfig(dg.Config):
    """Which day partitions of ``raw_readings`` to compact (see the module docstring)."""

    after_days: int = 1
    today: str = ""
    days: list[str] = pydantic.Field(default_factory=list)
    min_files: int = 2
    max_days: int = 60


def _date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"compaction: op config {what}={value!r} is not a YYYY-MM-DD date") from exc


@dg.op(description="Compact the small raw files of closed days into a few large ones, atomically.")
def compact_raw_readings_op(
    context: dg.OpExecutionContext, config: CompactionConfig, lake: LakeResource, catalog: CatalogResource
) -> dg.Output[list[dict[str, object]]]:
    the_lake = lake.lake()
    if config.days:
        days = sorted({_date(d, "days") for d in config.days})
    else:
        today = _date(config.today, "today") if config.today else dt.datetime.now(dt.UTC).date()
        days = closed_days(the_lake, today, after_days=config.after_days)
    todo = [d for d in days if needs_compaction(the_lake, d, min_files=config.min_files)][: config.max_days]
    if not todo:
        context.log.info(f"nothing to compact among {len(days)} closed day(s)")
        return dg.Output([], metadata={"compacted_days": 0})
    results, failed = [], []
    the_catalog = catalog.catalog()
    try:
        for day in todo:
            try:
                result = compact_day(the_lake, day, min_files=config.min_files)
            except CompactionError as exc:
                context.log.error(f"raw_readings {day}: {exc}")
                failed.append(f"{day.isoformat()}: {exc}")
                continue
            results.append(result.as_metadata())
            if not result.compacted:
                continue
            context.log.info(
                f"raw_readings {day}: {result.files_before} files -> {result.files_after} "
                f"({result.rows} rows)"
            )
            if daily_partitions.has_partition_key(day.isoformat()):
                context.log_event(
                    dg.AssetObservation(
                        asset_key="raw_readings",
                        partition=day.isoformat(),
                        metadata={
                            "compacted_files_before": result.files_before,
                            "compacted_files_after": result.files_after,
                            "compacted_rows": result.rows,
                        },
                    )
                )
            try:
                the_catalog.sync_partition(the_lake, "raw_readings", day)
            except CatalogUnavailable as exc:  # only the partition's file count is stale
                context.log.warning(f"raw_readings {day}: compacted, catalog not updated: {exc}")
    finally:
        the_catalog.close()
    if failed:
        raise dg.Failure(
            description=f"compaction failed for {len(failed)} day(s); those partitions are unchanged",
            metadata={"failed": dg.MetadataValue.json(failed)},
        )
    return dg.Output(
        results,
        metadata={
            "compacted_days": sum(1 for r in results if r["compacted"]),
            "days": dg.MetadataValue.json(results),
        },
    )


@dg.job(description="Compact closed days of raw_readings (see tsplatform.ingest.compaction).")
def compact_raw_readings_job() -> None:
    compact_raw_readings_op()


compact_raw_readings_schedule = dg.ScheduleDefinition(
    name="compact_raw_readings_schedule",
    job=compact_raw_readings_job,
    cron_schedule="30 1 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 01:30 UTC: compact raw_readings days closed for at least a day.",
)

__all__ = [
    "CompactionConfig",
    "compact_raw_readings_job",
    "compact_raw_readings_op",
    "compact_raw_readings_schedule",
]
