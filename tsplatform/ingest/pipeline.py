"""Kafka -> lake ingestion of exact offset ranges, exactly once.

An ingestion run is given half-open offset ranges ``[start, end)`` per topic-partition (the offset sensor
puts them in the run config; ``ingest_once`` plans them from the consumer group's committed offsets). It

1. consumes exactly those offsets (:mod:`tsplatform.ingest.consuming`: ``assign`` + seek, records
   outside the range are ignored; a broker outage is ridden out by librdkafka's reconnects until
   ``stall_timeout_s`` passes without progress);
2. decodes them (:mod:`tsplatform.ingest.decode`): readings and quarantined records with reasons;
3. lands (:mod:`tsplatform.ingest.landing`) readings in ``raw_readings/<event day>/`` and quarantined
   records in ``quarantine/<ingestion day>/``, one atomically renamed Parquet file per day, **skipping
   every (topic, partition, offset) already present** in the lake — so re-executing a range, a reset
   cursor or overlapping ranges never duplicate a record, and a run killed mid-write (whose staged file
   never became visible) completes on re-execution. Per dataset, ``_offset_marks.json``
   (:mod:`tsplatform.ingest.offset_marks`) holds an upper bound of the landed offsets per
   topic-partition, raised before the data is written; only rows at or below their mark (a redelivery)
   are looked up in the landed files, so a steady stream of runs reads none of them;
4. syncs the catalog documents of every day the range touched (idempotent recomputation from the lake);
5. only then commits the end offsets to the consumer group.

Concurrent landings on one lake are serialized with a lock file (local lakes) and by Dagster's tag
concurrency limit on ``tsplatform/ingest`` runs.

Steps 1-3 overlap on three threads: a consumer thread reads ahead
(:func:`~tsplatform.ingest.consuming.prefetched`), the calling thread decodes (Arrow's JSON reader
releases the GIL), and every ``LANDING_WAVE_ROWS`` decoded readings are landed by a landing thread
while decoding goes on. A wave is an ordinary offset-deduplicated landing, so a run killed between
waves still completes exactly once on re-execution; a run writes one file per touched day per wave.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tsplatform.catalog import Catalog
from tsplatform.ingest.consuming import (
    OffsetRange,
    commit_offsets,
    consume_ranges,
    end_offsets,
    plan_ranges,
    prefetched,
    start_positions,
)
from tsplatform.ingest.decode import decode_records
from tsplatform.ingest.field_mapping import FieldMapping
from tsplatform.ingest.landing import WaveLanding
from tsplatform.lake import Lake
from tsplatform.settings import Settings

log = logging.getLogger(__name__)

#: Decoded readings landed together while the run goes on decoding (a run writes one file per touched
#: day per wave: more waves overlap more work, fewer make fewer files).
LANDING_WAVE_ROWS = 250_000


@dataclass
class IngestSummary:
    """What one ingestion (a run, or ``ingest_once`` over several runs) did."""

    consumed: int = 0
    readings: int = 0  # decoded readings (whether new or already landed)
    quarantined: int = 0  # records quarantined by this ingestion (decoded as bad)
    landed: int = 0  # readings newly written to the lake
    quarantine_landed: int = 0
    skipped_existing: int = 0  # readings/records already in the lake (re-delivery)
    days: dict[dt.date, int] = field(default_factory=dict)  # event day -> readings of the range
    quarantine_days: set[dt.date] = field(default_factory=set)
    ranges: list[OffsetRange] = field(default_factory=list)
    series: set[str] = field(default_factory=set)
    catalog_docs: dict[tuple[str, dt.date], dict[str, Any]] = field(default_factory=dict)  # synced partitions
    seconds: float = 0.0

    def merge(self, other: IngestSummary) -> None:
        for name in (
            "consumed",
            "readings",
            "quarantined",
            "landed",
            "quarantine_landed",
            "skipped_existing",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for day, n in other.days.items():
            self.days[day] = self.days.get(day, 0) + n
        self.quarantine_days |= other.quarantine_days
        self.ranges.extend(other.ranges)
        self.series |= other.series
        self.catalog_docs.update(other.catalog_docs)
        self.seconds += other.seconds

    def as_metadata(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "readings": self.readings,
            "landed": self.landed,
            "quarantined": self.quarantined,
            "skipped_existing": self.skipped_existing,
            "series": len(self.series),
            "days": sorted(d.isoformat() for d in self.days),
            "seconds": round(self.seconds, 3),
        }


def use_jemalloc_for_arrow() -> bool:
    """Make jemalloc Arrow's default memory pool, unless ``ARROW_DEFAULT_MEMORY_POOL`` chose one.

    Arrow's default, mimalloc, hands freed pages back to the OS at once; an ingestion run allocates and
    frees ~1 GB per million readings, and re-faulting those pages cost ~2 CPU-s of system time per
    million readings on the benchmark machine (BENCHMARKS.md, "Ingestion throughput"). Returns True when
    jemalloc is in use. Idempotent; a no-op where pyarrow is built without jemalloc.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return pa.default_memory_pool().backend_name == "jemalloc"
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        return False
    pa.set_memory_pool(pool)
    return True


def ingest_ranges(
    settings: Settings,
    ranges: Sequence[OffsetRange],
    *,
    lake: Lake | None = None,
    catalog: Catalog | None = None,
    mapping: FieldMapping | None = None,
    commit: bool = True,
    now: pd.Timestamp | None = None,
) -> IngestSummary:
    """Consume, decode, land, sync the catalog and commit exactly ``ranges``; see the module docstring.

    Three stages overlap: a thread consumes (:func:`~tsplatform.ingest.consuming.prefetched`), this
    thread decodes, and every ``LANDING_WAVE_ROWS`` decoded readings are landed by a landing thread while
    decoding goes on.
    """
    started = time.monotonic()
    use_jemalloc_for_arrow()
    lake = lake or Lake(settings.lake_uri)
    mapping = mapping or FieldMapping.from_settings(settings)
    ingested_at = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    summary = IngestSummary(ranges=list(ranges))
    ingest_day = ingested_at.tz_convert("UTC").date()
    with contextlib.ExitStack() as stack:
        landing = WaveLanding(settings, lake, stack)
        readings: list[pa.Table] = []
        pending = 0
        quarantine: list[pa.Table] = []
        for chunk in prefetched(consume_ranges(settings, ranges)):
            batch = decode_records(
                chunk.values,
                keys=chunk.keys,
                topic=chunk.topic,
                partitions=chunk.partition_array(),
                offsets=chunk.offset_array(),
                ingested_at=ingested_at,
                mapping=mapping,
                max_text_chars=settings.max_text_chars,
            )
            summary.consumed += len(chunk.values)
            if batch.readings.num_rows:
                readings.append(batch.readings)
                pending += batch.readings.num_rows
                summary.readings += batch.readings.num_rows
                summary.series.update(pc.unique(batch.readings["series_id"]).to_pylist())
            if batch.quarantine.num_rows:
                quarantine.append(batch.quarantine)
            if pending >= LANDING_WAVE_ROWS:
                landing.readings(readings)
                readings, pending = [], 0
        expected = sum(r.count for r in ranges)
        if summary.consumed != expected:
            log.info("ranges held %d offsets, %d records read (gaps in the log)", expected, summary.consumed)
        if readings:
            landing.readings(readings)
        if quarantine:
            qtable = pa.concat_tables(quarantine)
            summary.quarantined = qtable.num_rows
            summary.quarantine_landed, skipped_q = landing.quarantine(qtable, ingest_day)
            summary.skipped_existing += skipped_q
            summary.quarantine_days = {ingest_day}
        summary.days, summary.landed, skipped = landing.results()
        summary.skipped_existing += skipped
    if catalog is not None:
        for dataset, days in (("raw_readings", summary.days), ("quarantine", summary.quarantine_days)):
            for day in sorted(days):
                summary.catalog_docs[(dataset, day)] = catalog.sync_partition(lake, dataset, day)
    if commit:
        commit_offsets(settings, ranges)
    summary.seconds = time.monotonic() - started
    return summary


def ingest_once(
    settings: Settings,
    topics: list[str] | None = None,
    group: str | None = None,
    *,
    catalog: Catalog | None = None,
    mapping: FieldMapping | None = None,
) -> IngestSummary:
    """Drain ``topics`` from the group's committed offsets up to the current end offsets, then return."""
    topics = topics or settings.topics
    if group is not None and group != settings.consumer_group:
        settings = settings.model_copy(update={"consumer_group": group})
    offsets = end_offsets(settings, topics)
    positions = start_positions(offsets)
    ends = {tp: high for tp, (_low, high, _c) in offsets.items()}
    total = IngestSummary()
    for run in plan_ranges(positions, ends, settings.max_records_per_run):
        total.merge(ingest_ranges(settings, run, catalog=catalog, mapping=mapping))
    return total


def summarize_days(summary: IngestSummary) -> dict[str, int]:
    """``{YYYY-MM-DD: readings}`` for reporting."""
    out: dict[str, int] = defaultdict(int)
    for day, n in summary.days.items():
        out[day.isoformat()] += n
    return dict(sorted(out.items()))
