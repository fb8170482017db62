"""Ingestion: ``raw_readings`` and ``quarantine`` are filled from Kafka by sensor-requested runs.

The Kafka offset sensor keeps a cursor of per-partition offsets. When the topics have new offsets it
requests ``ingest_kafka`` runs whose config carries the exact offset ranges (at most
``TSPLATFORM_MAX_RECORDS_PER_RUN`` records a run, a bounded number of runs a tick), so a failed run can
be re-executed with the same ranges. The run lands the readings (:mod:`tsplatform.ingest.pipeline`) and
reports a materialization of ``raw_readings`` for every event day the ranges touched — late data for old
days included — which is what downstream automation reacts to.
"""

# No `from __future__ import annotations`: Dagster resolves op config/resource annotations at decoration.

import hashlib
import json
from typing import Any

import dagster as dg

from tsplatform.ingest.consuming import IngestError, OffsetRange, end_offsets, plan_ranges, start_positions
from tsplatform.ingest.pipeline import ingest_ranges
from tsplatform.partitions import daily_partitions
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.kafka import KafkaResource
from tsplatform.resources.lake import LakeResource
from tsplatform.settings import get_settings

INGEST_TAG = "tsplatform/ingest"
MAX_RUNS_PER_TICK = 20

raw_readings = dg.AssetSpec(
    "raw_readings",
    partitions_def=daily_partitions,
    group_name="ingest",
    kinds={"kafka", "parquet"},
    description=(
        "Every decoded reading whose event_time falls on the UTC day, exactly once, with its Kafka "
        "provenance (topic, partition, offset). Landed by `ingest_kafka` runs of the Kafka offset sensor."
    ),
)

quarantine = dg.AssetSpec(
    "quarantine",
    partitions_def=daily_partitions,
    group_name="ingest",
    kinds={"kafka", "parquet"},
    description=(
        "Records that could not be decoded into a reading, by ingestion day: reason, original bytes and "
        "provenance."
    ),
)


class OffsetRangeConfig(dg.Config):
    topic: str
    partition: int
    start: int
    end: int


class IngestConfig(dg.Config):
    """The exact offset ranges ``[start, end)`` one ingestion run consumes."""

    ranges: list[OffsetRangeConfig]
    commit: bool = True


def run_config_for(ranges: list[OffsetRange]) -> dict[str, Any]:
    return {"ops": {"ingest_kafka_ranges": {"config": {"ranges": [r.to_dict() for r in ranges]}}}}


@dg.op(tags={"kind": "kafka"})
def ingest_kafka_ranges(
    context: dg.OpExecutionContext,
    config: IngestConfig,
    kafka: KafkaResource,
    lake: LakeResource,
    catalog: CatalogResource,
) -> None:
    """Consume, land and catalogue the configured offset ranges; materialize the day partitions touched."""
    ranges = [OffsetRange(r.topic, r.partition, r.start, r.end) for r in config.ranges]
    cat = catalog.catalog()
    try:
        summary = ingest_ranges(kafka.settings(), ranges, lake=lake.lake(), catalog=cat, commit=config.commit)
    finally:
        cat.close()
    ranges_meta = dg.MetadataValue.json([r.to_dict() for r in ranges])
    touched = [("raw_readings", day, {"readings_in_run": n}) for day, n in sorted(summary.days.items())]
    touched += [
        ("quarantine", day, {"quarantined_in_run": summary.quarantined})
        for day in sorted(summary.quarantine_days)
    ]
    outside = []
    for dataset, day, in_run in touched:
        key = day.isoformat()
        if not daily_partitions.has_partition_key(key):
            outside.append(f"{dataset}/{key}")
            continue
        doc = summary.catalog_docs.get((dataset, day), {})
        metadata: dict[str, Any] = {"dagster/row_count": int(doc.get("rows", 0)), **in_run}
        if dataset == "raw_readings":
            metadata |= {
                "series": int(doc.get("series", 0)),
                "checksum": str(doc.get("checksum", "")),
                "offset_ranges": dg.MetadataValue.json(doc.get("offset_ranges", [])),
                "run_ranges": ranges_meta,
            }
        context.log_event(dg.AssetMaterialization(asset_key=dataset, partition=key, metadata=metadata))
    if outside:
        context.log.warning(
            f"{len(outside)} day partition(s) outside the partitions definition were landed but not "
            f"materialized (check TSPLATFORM_START_DATE): {outside[:10]}"
        )
    context.log.info(f"ingested: {json.dumps(summary.as_metadata())}")


@dg.job(
    tags={INGEST_TAG: "kafka"}, description="Land exact Kafka offset ranges into raw_readings/quarantine."
)
def ingest_kafka() -> None:
    ingest_kafka_ranges()


def _cursor_key(topic: str, partition: int) -> str:
    return json.dumps([topic, partition])


@dg.sensor(
    job=ingest_kafka,
    minimum_interval_seconds=get_settings().kafka_sensor_interval_s,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests ingest_kafka runs for new Kafka offsets (cursor: next offset per topic-partition).",
)
def kafka_offset_sensor(
    context: dg.SensorEvaluationContext, kafka: KafkaResource
) -> dg.SensorResult | dg.SkipReason:
    settings = kafka.settings()
    cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    try:
        offsets = end_offsets(settings, settings.topics)
    except IngestError as exc:
        return dg.SkipReason(str(exc))
    if not offsets:
        return dg.SkipReason(f"none of the topics {settings.topics} exists yet")
    resume = {tuple(json.loads(key)): offset for key, offset in cursor.items()}
    positions = start_positions(offsets, resume)
    ends = {tp: high for tp, (_low, high, _c) in offsets.items()}
    runs = plan_ranges(positions, ends, settings.max_records_per_run)[:MAX_RUNS_PER_TICK]
    if not runs:
        return dg.SkipReason("no new offsets")
    requests = []
    for run in runs:
        digest = hashlib.sha256(json.dumps([r.to_dict() for r in run]).encode()).hexdigest()[:20]
        requests.append(
            dg.RunRequest(
                run_key=f"ingest-{digest}", run_config=run_config_for(run), tags={INGEST_TAG: "kafka"}
            )
        )
        for r in run:
            cursor[_cursor_key(r.topic, r.partition)] = r.end
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))
