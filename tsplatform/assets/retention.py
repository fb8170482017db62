"""Retention as a Dagster job on a daily schedule: a thin wrapper over :mod:`tsplatform.ingest.retention`.

``retention_job`` runs one op that plans (``settings.retention_days``, plus partitions a previous run
left unfinished) and applies retention to the Hive metastore, the lake and the catalog, logging to
``<state>/logs/retention.jsonl``. Op config: ``dry_run`` (default False) and ``today`` (``YYYY-MM-DD``,
default: the run's UTC date). Resources: ``lake`` (:class:`LakeResource`), ``catalog``
(:class:`CatalogResource`) and ``spark``, the same key as in ``tsplatform/definitions.py``: the
``PySparkResource`` (its session's Hive metastore, through :class:`tsplatform.hive.HiveMetastore`), or
anything with ``drop_partition(dataset, day)``, or ``dg.ResourceDefinition.none_resource()`` to skip the
Hive step.
``retention_schedule`` runs it daily at 03:00 UTC.
"""

# No `from __future__ import annotations`: Dagster resolves the op annotations at decoration time.
import datetime as dt
from typing import Any

import dagster as dg

from tsplatform.errors import ConfigError
from tsplatform.ingest.retention import (
    MetastoreLike,
    apply_retention,
    merge_plans,
    plan_retention,
    unfinished_items,
)
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.lake import LakeResource
from tsplatform.settings import get_settings


class RetentionConfig(dg.Config):
    """``dry_run``: only report and log; ``today``: ``YYYY-MM-DD`` (UTC), empty = now."""

    dry_run: bool = False
    today: str = ""


def metastore_of(resource: Any) -> MetastoreLike | None:
    """The Hive step of the ``spark`` resource: ``None`` (skipped), an object with ``drop_partition``,
    one with ``metastore()``, or a ``PySparkResource`` (wrapped in :class:`tsplatform.hive.HiveMetastore`)."""
    if resource is None:
        return None
    if hasattr(resource, "drop_partition"):
        return resource  # type: ignore[no-any-return]
    if hasattr(resource, "metastore"):
        return resource.metastore()  # type: ignore[no-any-return]
    if hasattr(resource, "spark_session"):
        from tsplatform.hive import HiveMetastore

        return HiveMetastore(resource.spark_session)
    raise ConfigError(
        "retention: the 'spark' resource has none of spark_session, drop_partition(), metastore()"
    )


@dg.op(
    description="Delete day partitions older than each dataset's retention (Hive metastore, lake, catalog).",
    # it drops Hive partitions through a Spark session: the local Derby metastore admits one JVM, so the
    # 03:00 run waits for the graph's run instead of failing beside it (dagster.yaml, pools)
    pool="spark",
)
def retention_op(
    context: dg.OpExecutionContext,
    config: RetentionConfig,
    lake: LakeResource,
    catalog: CatalogResource,
    spark: dg.ResourceParam[Any],
) -> dg.Output[dict[str, Any]]:
    settings = get_settings()
    try:
        today = dt.date.fromisoformat(config.today) if config.today else dt.datetime.now(dt.UTC).date()
    except ValueError as exc:
        raise ConfigError(f"retention: op config today={config.today!r} is not a YYYY-MM-DD date") from exc
    the_lake = lake.lake()
    log_path = settings.state_path / "logs" / "retention.jsonl"
    plan = merge_plans(
        plan_retention(the_lake, settings.retention_days, today), unfinished_items(log_path, the_lake)
    )
    the_catalog = catalog.catalog()
    try:
        report = apply_retention(
            plan,
            lake=the_lake,
            catalog=the_catalog,
            metastore=metastore_of(spark),
            dry_run=config.dry_run,
            log_path=log_path,
        )
    finally:
        the_catalog.close()
    for outcome in report.failed:
        context.log.error(f"retention of {outcome.item.dataset} {outcome.item.day} failed: {outcome.error}")
    summary = {
        "today": today.isoformat(),
        "dry_run": config.dry_run,
        "removed": [f"{i.dataset}/{i.day.isoformat()}" for i in report.removed],
        "failed": [f"{o.item.dataset}/{o.item.day.isoformat()}: {o.error}" for o in report.failed],
    }
    context.log.info(
        f"retention {'(dry run) ' if config.dry_run else ''}as of {today}: {len(report.removed)} partitions "
        f"{'would be removed' if config.dry_run else 'removed'}, {len(report.failed)} failed"
    )
    if report.failed:
        raise dg.Failure(
            description=f"retention failed for {len(report.failed)} partitions (see {log_path})",
            metadata={"failed": dg.MetadataValue.json(summary["failed"])},
        )
    return dg.Output(
        summary,
        metadata={
            "removed": len(report.removed),
            "partitions": dg.MetadataValue.json(summary["removed"]),
            "dry_run": config.dry_run,
        },
    )


@dg.job(description="Delete expired day partitions (see tsplatform.ingest.retention).")
def retention_job() -> None:
    retention_op()


retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily retention at 03:00 UTC.",
)

__all__ = ["RetentionConfig", "metastore_of", "retention_job", "retention_op", "retention_schedule"]
