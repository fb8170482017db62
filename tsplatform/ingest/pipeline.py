"""Kafka -> lake ingestion of exact offset ranges, exactly once.

An ingestion run is given half-open offset ranges ``[start, end)`` per topic-partition (the offset sensor
puts them in the run config; ``ingest_once`` plans them from the consumer group's committed offsets). It

1. consumes exactly those offsets (``assign`` + seek, records outside the range are ignored; a broker
   outage is ridden out by librdkafka's reconnects until ``stall_timeout_s`` passes without progress);
2. decodes them (:mod:`tsplatform.ingest.decode`): readings and quarantined records with reasons;
3. lands readings in ``raw_readings/<event day>/`` and quarantined records in ``quarantine/<ingestion
   day>/``, one atomically renamed Parquet file per day, **skipping every (topic, partition, offset)
   already present** in the lake — so re-executing a range, a reset cursor or overlapping ranges never
   duplicate a record, and a run killed mid-write (whose staged file never became visible) completes on
   re-execution. Per dataset, ``_offset_marks.json`` holds an upper bound of the landed offsets per
   topic-partition, raised before the data is written; only rows at or below their mark (a redelivery)
   are looked up in the landed files, so a steady stream of runs reads none of them;
4. syncs the catalog documents of every day the range touched (idempotent recomputation from the lake);
5. only then commits the end offsets to the consumer group.

Concurrent landings on one lake are serialized with a lock file (local lakes) and by Dagster's tag
concurrency limit on ``tsplatform/ingest`` runs.

Steps 1-3 overlap on three threads: a consumer thread reads ahead (:func:`prefetched`), the calling
thread decodes (Arrow's JSON reader releases the GIL), and every ``LANDING_WAVE_ROWS`` decoded readings
are landed by a landing thread while decoding goes on. A wave is an ordinary offset-deduplicated landing,
so a run killed between waves still completes exactly once on re-execution; a run writes one file per
touched day per wave.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import itertools
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from tsplatform.catalog import Catalog
from tsplatform.errors import ServiceUnavailable
from tsplatform.ingest.decode import decode_records
from tsplatform.ingest.field_mapping import FieldMapping
from tsplatform.ingest.schema import PROVENANCE_COLUMNS, QUARANTINE_SCHEMA, RAW_READINGS_SCHEMA
from tsplatform.lake import Lake
from tsplatform.settings import Settings

log = logging.getLogger(__name__)

MS_PER_DAY = 86_400_000
#: Day partitions checked and written in parallel by one landing.
LANDING_THREADS = 4
#: Decoded readings landed together while the run goes on decoding (a run writes one file per touched
#: day per wave: more waves overlap more work, fewer make fewer files).
LANDING_WAVE_ROWS = 250_000


class IngestError(ServiceUnavailable):
    """Ingestion could not complete (broker unreachable for too long, a range that cannot be read)."""


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Half-open Kafka offset range ``[start, end)`` of one topic-partition."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def count(self) -> int:
        return max(0, self.end - self.start)

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "start": self.start, "end": self.end}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OffsetRange:
        return cls(str(d["topic"]), int(d["partition"]), int(d["start"]), int(d["end"]))


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


# --- Kafka plumbing --------------------------------------------------------------------------------
#: Fetch settings of the ingestion consumer (the throughput benchmark's consumers use them too).
FETCH_CONFIG: dict[str, Any] = {
    "fetch.max.bytes": 16 * 1024 * 1024,
    "max.partition.fetch.bytes": 4 * 1024 * 1024,
    "queued.max.messages.kbytes": 128 * 1024,
    # librdkafka's default (1000 ms) idles the fetcher for a second whenever its queue holds 100k
    # messages, which made a 1M-record run wait on Kafka for ~3 s (BENCHMARKS.md)
    "fetch.queue.backoff.ms": 10,
}


def _consumer(settings: Settings, group: str | None = None) -> Consumer:
    return Consumer(
        settings.kafka_client_config(
            **{
                "group.id": group or settings.consumer_group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                **FETCH_CONFIG,
            }
        )
    )


def topic_partitions(
    consumer: Consumer, topics: Sequence[str], timeout_s: float = 15.0
) -> list[tuple[str, int]]:
    """Existing (topic, partition) pairs of ``topics``; a missing topic contributes nothing."""
    try:
        meta = consumer.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise IngestError(f"Kafka unreachable: {exc}", setting="TSPLATFORM_KAFKA_BOOTSTRAP") from exc
    out = []
    for topic in topics:
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None:
            continue
        out.extend((topic, p) for p in sorted(tmeta.partitions))
    return out


def _committed(
    consumer: Consumer, tps: list[TopicPartition], retry_for_s: float = 30.0
) -> list[TopicPartition]:
    """``consumer.committed``, retried while the group coordinator is not ready (a broker that just
    started answers NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS until its offsets topic is loaded)."""
    deadline = time.monotonic() + retry_for_s
    while True:
        try:
            return consumer.committed(tps, timeout=15)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = getattr(error, "retriable", lambda: False)() or getattr(
                error, "code", lambda: None
            )() in (
                KafkaError.NOT_COORDINATOR,
                KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                KafkaError.COORDINATOR_NOT_AVAILABLE,
            )
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def end_offsets(
    settings: Settings, topics: Sequence[str], group: str | None = None
) -> dict[tuple[str, int], tuple[int, int, int | None]]:
    """Per topic-partition: (low watermark, high watermark, committed offset of the group or None)."""
    consumer = _consumer(settings, group)
    try:
        tps = topic_partitions(consumer, topics)
        committed = {}
        if tps:
            for tp in _committed(consumer, [TopicPartition(t, p) for t, p in tps]):
                committed[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
        result = {}
        for t, p in tps:
            low, high = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=15, cached=False)
            result[(t, p)] = (low, high, committed.get((t, p)))
        return result
    except KafkaException as exc:
        raise IngestError(f"Kafka unreachable: {exc}", setting="TSPLATFORM_KAFKA_BOOTSTRAP") from exc
    finally:
        consumer.close()


def start_positions(
    offsets: dict[tuple[str, int], tuple[int, int, int | None]],
    cursor: dict[tuple[str, int], int] | None = None,
) -> dict[tuple[str, int], int]:
    """Where each topic-partition resumes: the cursor's offset, else the group's committed offset, else
    the low watermark; never below the low watermark (offsets deleted by Kafka retention are gone)."""
    positions = {}
    for tp, (low, _high, committed) in offsets.items():
        start = (cursor or {}).get(tp)
        if start is None:
            start = committed if committed is not None else low
        positions[tp] = max(start, low)
    return positions


def plan_ranges(
    positions: dict[tuple[str, int], int],
    ends: dict[tuple[str, int], int],
    max_records: int,
) -> list[list[OffsetRange]]:
    """Split ``[positions[tp], ends[tp])`` over all topic-partitions into runs of at most ``max_records``."""
    runs: list[list[OffsetRange]] = []
    current: list[OffsetRange] = []
    budget = max_records
    for tp in sorted(ends):
        start, end = positions.get(tp, 0), ends[tp]
        while start < end:
            take = min(end - start, budget)
            current.append(OffsetRange(tp[0], tp[1], start, start + take))
            start += take
            budget -= take
            if budget == 0:
                runs.append(current)
                current, budget = [], max_records
    if current:
        runs.append(current)
    return runs


@dataclass
class _Chunk:
    topic: str
    values: list[bytes | None]
    keys: list[bytes | None]
    partitions: list[np.ndarray]  # int64 per record, in pieces (one per consumed batch)
    offsets: list[np.ndarray]

    def partition_array(self) -> np.ndarray:
        return np.concatenate(self.partitions) if self.partitions else np.empty(0, np.int64)

    def offset_array(self) -> np.ndarray:
        return np.concatenate(self.offsets) if self.offsets else np.empty(0, np.int64)


_error, _value, _key = Message.error, Message.value, Message.key
_topic, _partition, _offset = Message.topic, Message.partition, Message.offset


def _usable(m: Any) -> bool:
    """False for error events (logged); raises for errors that make the range unreadable."""
    err = m.error()
    if err is None:
        return True
    if err.code() == KafkaError._PARTITION_EOF:
        return False
    if err.fatal() or (
        not err.retriable()
        and err.code()
        in (
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
            KafkaError._UNKNOWN_TOPIC,
            KafkaError.UNKNOWN_TOPIC_OR_PART,
        )
    ):
        raise IngestError(f"cannot read {m.topic()}[{m.partition()}]: {err.str()}")
    log.warning("kafka: %s", err.str())
    return False


def consume_ranges(
    settings: Settings,
    ranges: Sequence[OffsetRange],
    *,
    batch: int = 10_000,
    stall_timeout_s: float = 180.0,
) -> Iterator[_Chunk]:
    """Yield every record of ``ranges`` (exactly those offsets), grouped in per-topic chunks.

    Per message only the value, key, partition and offset are read (unbound ``Message`` methods mapped
    over the batch: this loop is the per-record Python cost of ingestion); range checks are vectorised.
    """
    todo = {(r.topic, r.partition): r for r in ranges if r.count > 0}
    if not todo:
        return
    single_topic = len({t for t, _ in todo}) == 1
    consumer = _consumer(settings)
    try:
        consumer.assign([TopicPartition(t, p, r.start) for (t, p), r in todo.items()])
        last_progress = time.monotonic()
        while todo:
            msgs = consumer.consume(num_messages=batch, timeout=1.0)
            if any(map(_error, msgs)):
                msgs = [m for m in msgs if _usable(m)]
            by_topic: dict[str, _Chunk] = {}
            progressed = False
            if msgs:
                n = len(msgs)
                parts = np.fromiter(map(_partition, msgs), dtype=np.int64, count=n)
                offs = np.fromiter(map(_offset, msgs), dtype=np.int64, count=n)
                topics = None if single_topic else np.array(list(map(_topic, msgs)), dtype=object)
                for (topic, part), r in list(todo.items()):
                    in_range = (parts == part) & (offs >= r.start) & (offs < r.end)
                    if topics is not None:
                        in_range &= topics == topic
                    keep = np.flatnonzero(in_range)
                    if len(keep) == 0:
                        continue
                    chunk = by_topic.get(topic)
                    if chunk is None:
                        chunk = by_topic[topic] = _Chunk(topic, [], [], [], [])
                    picked = msgs if len(keep) == n else [msgs[i] for i in keep]
                    chunk.values.extend(map(_value, picked))
                    chunk.keys.extend(map(_key, picked))
                    chunk.partitions.append(parts[keep])
                    chunk.offsets.append(offs[keep])
                    progressed = True
                    if offs[keep].max() >= r.end - 1:
                        del todo[(topic, part)]
                        consumer.pause([TopicPartition(topic, part)])
            yield from by_topic.values()
            now = time.monotonic()
            if progressed:
                last_progress = now
                continue
            # Nothing new: offsets can be missing (compaction, transaction markers) -> compare positions.
            for tpo in consumer.position([TopicPartition(t, p) for t, p in list(todo)]):
                key = (tpo.topic, tpo.partition)
                if tpo.offset >= 0 and tpo.offset >= todo[key].end:
                    del todo[key]
            if todo and now - last_progress > stall_timeout_s:
                left = ", ".join(f"{t}[{p}]@{r.start}..{r.end}" for (t, p), r in todo.items())
                raise IngestError(
                    f"no progress for {stall_timeout_s:.0f}s reading {left}: is Kafka reachable?",
                    setting="TSPLATFORM_KAFKA_BOOTSTRAP",
                )
    finally:
        consumer.close()


def prefetched(chunks: Iterator[_Chunk], depth: int = 4) -> Iterator[_Chunk]:
    """Run ``chunks`` (a consumer) in a background thread, ``depth`` chunks ahead of the caller.

    Consuming (librdkafka, per-message Python) and decoding (Arrow's JSON reader, which releases the GIL)
    then overlap on two cores. An exception in the consumer is re-raised in the caller; a caller that
    stops early stops the consumer (which closes its Kafka consumer).
    """
    done = object()
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        queue.put(chunk, timeout=0.5)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(done)
        except BaseException as exc:  # handed to the caller
            queue.put(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=pump, name="kafka-consume", daemon=True)
    worker.start()
    try:
        while True:
            item = queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a pending put, then wait for the consumer to close
            with contextlib.suppress(Empty):
                queue.get_nowait()
            worker.join(timeout=0.1)


def commit_offsets(
    settings: Settings,
    ranges: Sequence[OffsetRange],
    group: str | None = None,
    *,
    retry_for_s: float = 120.0,
) -> None:
    """Commit each range's end as the group's position (after a durable landing).

    Retried while the broker is unreachable (up to ``retry_for_s``): the data is already landed, and a
    commit that is finally lost only means the next ``ingest --once`` re-reads ranges it then skips.
    """
    if not ranges:
        return
    ends: dict[tuple[str, int], int] = {}
    for r in ranges:
        ends[(r.topic, r.partition)] = max(ends.get((r.topic, r.partition), 0), r.end)
    offsets = [TopicPartition(t, p, o) for (t, p), o in ends.items()]
    deadline = time.monotonic() + retry_for_s
    delay = 0.5
    while True:
        consumer = _consumer(settings, group)
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
            return
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise IngestError(
                    f"could not commit offsets: {exc}", setting="TSPLATFORM_KAFKA_BOOTSTRAP"
                ) from exc
            log.warning("offset commit failed (%s); retrying in %.1fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        finally:
            consumer.close()


# --- landing ---------------------------------------------------------------------------------------
def _offset_codes(table: pa.Table) -> np.ndarray:
    """One int64 per row: ``partition << 40 | offset`` (offsets stay below 2^40)."""
    partitions = table["partition"].to_numpy().astype(np.int64)
    return (partitions << 40) | table["offset"].to_numpy().astype(np.int64)


def _topic_rows(table: pa.Table) -> dict[str, np.ndarray | None]:
    """Row mask per topic of ``table`` (``None`` = every row: the common single-topic case)."""
    topics = pc.unique(table["topic"]).to_pylist()
    if len(topics) == 1:
        return {topics[0]: None}
    column = table["topic"]
    return {t: pc.equal(column, t).to_numpy(zero_copy_only=False) for t in topics}


def _offset_keys(table: pa.Table) -> dict[str, np.ndarray]:
    """Per topic, the :func:`_offset_codes` of its rows."""
    codes = _offset_codes(table)
    return {t: codes if rows is None else codes[rows] for t, rows in _topic_rows(table).items()}


def _missing_mask(table: pa.Table, existing: list[pa.Table]) -> np.ndarray:
    """True for rows of ``table`` whose (topic, partition, offset) is in none of ``existing``."""
    seen: dict[str, list[np.ndarray]] = defaultdict(list)
    for t in existing:
        for topic, codes in _offset_keys(t).items():
            seen[topic].append(codes)
    codes = _offset_codes(table)
    mask = np.ones(table.num_rows, dtype=bool)
    for topic, rows in _topic_rows(table).items():
        if topic not in seen:
            continue
        known = np.concatenate(seen[topic])
        if rows is None:
            mask = np.isin(codes, known, invert=True)
        else:
            mask[rows] = np.isin(codes[rows], known, invert=True)
    return mask


def _file_name(table: pa.Table) -> str:
    """Deterministic name of a landed file from the (topic, partition, offset) set it holds."""
    digest = hashlib.sha256()
    for topic, codes in sorted(_offset_keys(table).items()):
        digest.update(topic.encode())
        digest.update(np.sort(codes).tobytes())
    return f"part-{digest.hexdigest()[:24]}.parquet"


def _landed_offsets(lake: Lake, dataset: str, day: dt.date) -> pa.Table | None:
    """The (topic, partition, offset) columns of a landed day partition (``None`` when it has no file)."""
    return lake.read_partition(dataset, day, columns=list(PROVENANCE_COLUMNS))


def _new_rows(lake: Lake, dataset: str, day: dt.date, table: pa.Table) -> pa.Table:
    """Rows of ``table`` whose (topic, partition, offset) is not yet in the day partition."""
    existing = _landed_offsets(lake, dataset, day)
    if existing is None or existing.num_rows == 0:
        return table
    return table.filter(pa.array(_missing_mask(table, [existing])))


OFFSET_MARKS = "_offset_marks.json"


def load_offset_marks(lake: Lake, dataset: str) -> dict[str, dict[int, int]]:
    """Per topic and partition, an upper bound of the offsets landed in ``dataset``.

    A landing raises the marks before it writes the data they cover, so a mark can over-estimate (a
    landing that died after raising it) but never under-estimate: a row above its mark is surely not
    landed yet and needs no lookup, and a topic or partition without a mark has nothing landed. When the
    file is absent (a lake landed before marks existed) or unreadable, the marks are rebuilt once by
    reading the offsets of every day partition.
    """
    raw = lake.read_metadata(dataset, OFFSET_MARKS)
    if raw is not None:
        try:
            data = json.loads(raw)
            return {str(t): {int(p): int(o) for p, o in parts.items()} for t, parts in data.items()}
        except (ValueError, TypeError, AttributeError):
            log.warning("unreadable %s in %s: rebuilding it from the landed offsets", OFFSET_MARKS, dataset)
    marks: dict[str, dict[int, int]] = {}
    for day in lake.days(dataset):
        landed = _landed_offsets(lake, dataset, day)
        if landed is not None:
            _raise_marks(marks, landed)
    _save_marks(lake, dataset, marks)
    return marks


def _raise_marks(marks: dict[str, dict[int, int]], table: pa.Table) -> bool:
    """Raise ``marks`` to cover every row of ``table``; True when one changed."""
    top = (
        table.select(list(PROVENANCE_COLUMNS)).group_by(["topic", "partition"]).aggregate([("offset", "max")])
    )
    changed = False
    columns = (top[c].to_pylist() for c in ("topic", "partition", "offset_max"))
    for topic, partition, offset in zip(*columns, strict=True):
        parts = marks.setdefault(topic, {})
        if offset > parts.get(partition, -1):
            parts[partition] = offset
            changed = True
    return changed


def _save_marks(lake: Lake, dataset: str, marks: dict[str, dict[int, int]]) -> None:
    data = {t: {str(p): o for p, o in sorted(parts.items())} for t, parts in sorted(marks.items())}
    lake.write_metadata(dataset, OFFSET_MARKS, json.dumps(data).encode())


def _above_marks(table: pa.Table, marks: dict[str, dict[int, int]]) -> np.ndarray:
    """True for rows whose offset is above the mark of their (topic, partition): surely not landed."""
    above = np.ones(table.num_rows, dtype=bool)
    partitions = table["partition"].to_numpy()
    offsets = table["offset"].to_numpy()
    for topic, rows in _topic_rows(table).items():
        parts = marks.get(topic)
        if not parts:
            continue
        where = slice(None) if rows is None else rows
        limit = np.full(offsets[where].shape, -1, dtype=np.int64)
        for partition, mark in parts.items():
            limit[partitions[where] == partition] = mark
        above[where] = offsets[where] > limit
    return above


def _event_days(table: pa.Table) -> np.ndarray:
    ms = table["event_time"].cast(pa.int64()).to_numpy()
    return ms // MS_PER_DAY


def land_readings(lake: Lake, readings: pa.Table) -> tuple[dict[dt.date, int], int, int]:
    """Land readings by UTC event day. Returns (readings per touched day, landed, skipped).

    Days are independent files, so they are checked and written by a small thread pool (Parquet encoding
    and file I/O release the GIL). Only days holding a row at or below its offset mark
    (:func:`load_offset_marks`), i.e. a redelivery, read their landed offsets to skip what is already there.
    """
    readings = readings.cast(RAW_READINGS_SCHEMA)
    # one sort by (day, series, time), then zero-copy slices per day
    days = pa.array(_event_days(readings))
    ordered = readings.append_column("_day", days).sort_by(
        [("_day", "ascending"), ("series_id", "ascending"), ("event_time", "ascending")]
    )
    sorted_days = ordered["_day"].to_numpy()
    ordered = ordered.drop_columns(["_day"])
    bounds = [0, *(np.flatnonzero(np.diff(sorted_days)) + 1).tolist(), len(sorted_days)]
    spans = {  # day -> its rows in ``ordered``
        dt.date(1970, 1, 1) + dt.timedelta(days=int(sorted_days[lo])): (lo, hi)
        for lo, hi in itertools.pairwise(bounds)
        if hi > lo
    }
    marks = load_offset_marks(lake, "raw_readings")
    maybe_landed = ~_above_marks(ordered, marks)  # only these rows need a look at their day's offsets
    if _raise_marks(marks, ordered):
        _save_marks(lake, "raw_readings", marks)  # before any data file: the marks never under-estimate

    def land_day(day: dt.date) -> int:
        lo, hi = spans[day]
        new = part = ordered.slice(lo, hi - lo)
        if maybe_landed[lo:hi].any():
            new = _new_rows(lake, "raw_readings", day, part)
        if new.num_rows:
            lake.write_file("raw_readings", day, _file_name(new), new)
        return new.num_rows

    with ThreadPoolExecutor(max_workers=LANDING_THREADS) as pool:
        landed = sum(pool.map(land_day, spans))
    touched = {day: hi - lo for day, (lo, hi) in spans.items()}
    return touched, landed, sum(touched.values()) - landed


def land_quarantine(lake: Lake, quarantine: pa.Table, day: dt.date) -> tuple[int, int]:
    """Land quarantined records under the ingestion day, skipping records already quarantined on any day.

    Only a batch with a record at or below its offset mark (:func:`load_offset_marks`), i.e. a
    redelivery, reads the offsets of the quarantine days; in steady state nothing is read.
    """
    if quarantine.num_rows == 0:
        return 0, 0
    quarantine = quarantine.cast(QUARANTINE_SCHEMA)
    total = quarantine.num_rows
    marks = load_offset_marks(lake, "quarantine")
    if not _above_marks(quarantine, marks).all():  # a redelivery: look at every quarantine day
        landed = (_landed_offsets(lake, "quarantine", d) for d in lake.days("quarantine"))
        seen = [t for t in landed if t is not None]
        if seen:
            quarantine = quarantine.filter(pa.array(_missing_mask(quarantine, seen)))
    if quarantine.num_rows:
        if _raise_marks(marks, quarantine):
            _save_marks(lake, "quarantine", marks)  # before the data file: never under-estimates
        lake.write_file("quarantine", day, _file_name(quarantine), quarantine)
    return quarantine.num_rows, total - quarantine.num_rows


@contextlib.contextmanager
def landing_lock(settings: Settings) -> Iterator[None]:
    """Exclusive lock serializing landings into one lake from processes on this machine."""
    with lake_lock(settings.lake_uri):
        yield


@contextlib.contextmanager
def lake_lock(lake_root: str, name: str = "ingest") -> Iterator[None]:
    """Exclusive ``flock`` on ``<lake_root>/_locks/<name>.lock`` (released when the holder dies).

    ``ingest`` is the landing lock: whoever changes the files of ``raw_readings``/``quarantine`` day
    partitions (landings, compaction's swap) holds it. Remote lakes get no lock (a no-op): there Dagster's
    tag concurrency limit serializes ingestion runs.
    """
    if "://" in lake_root:
        yield
        return
    if not name.isidentifier():
        raise ValueError(f"invalid lock name {name!r}")
    path = Path(lake_root) / "_locks"
    path.mkdir(parents=True, exist_ok=True)
    with (path / f"{name}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Landing:
    """Readings landed in waves, in order, by one background thread, under the landing lock.

    The lock is taken (and orphaned staging files of killed landings removed) at the first wave; the
    caller's ``stack`` releases it after the thread has finished its last wave. Each wave is an ordinary
    :func:`land_readings` (offset-deduplicated), so a run killed between waves re-executes exactly once.
    """

    def __init__(self, settings: Settings, lake: Lake, stack: contextlib.ExitStack) -> None:
        self.settings, self.lake, self.stack = settings, lake, stack
        self.pool: ThreadPoolExecutor | None = None
        self.waves: list[Future[tuple[dict[dt.date, int], int, int]]] = []

    def _locked(self) -> ThreadPoolExecutor:
        if self.pool is None:
            self.stack.enter_context(landing_lock(self.settings))
            for dataset in ("raw_readings", "quarantine"):  # orphans of a killed landing (none active)
                self.lake.clean_staging(dataset)
            # entered after the lock, so left before it: the last wave is written while the lock is held
            self.pool = self.stack.enter_context(
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="tsplatform-landing")
            )
        return self.pool

    def readings(self, tables: list[pa.Table]) -> None:
        """Land ``tables`` (decoded readings) after the waves before them; re-raise a failed wave."""
        for wave in self.waves:
            if wave.done() and wave.exception() is not None:
                raise wave.exception()  # type: ignore[misc]
        # one contiguous table: sorting and slicing a 100-chunk table costs twice as much
        self.waves.append(
            self._locked().submit(lambda: land_readings(self.lake, pa.concat_tables(tables).combine_chunks()))
        )

    def quarantine(self, table: pa.Table, day: dt.date) -> tuple[int, int]:
        self._locked()
        return land_quarantine(self.lake, table, day)

    def results(self) -> tuple[dict[dt.date, int], int, int]:
        """(readings per touched day, landed, skipped) over every wave; waits for the last one."""
        days: dict[dt.date, int] = defaultdict(int)
        landed = skipped = 0
        for wave in self.waves:
            touched, n_landed, n_skipped = wave.result()
            for day, n in touched.items():
                days[day] += n
            landed, skipped = landed + n_landed, skipped + n_skipped
        return dict(days), landed, skipped


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

    Three stages overlap: a thread consumes (:func:`prefetched`), this thread decodes, and every
    ``LANDING_WAVE_ROWS`` decoded readings are landed by a landing thread while decoding goes on.
    """
    started = time.monotonic()
    use_jemalloc_for_arrow()
    lake = lake or Lake(settings.lake_uri)
    mapping = mapping or FieldMapping.from_settings(settings)
    ingested_at = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    summary = IngestSummary(ranges=list(ranges))
    ingest_day = ingested_at.tz_convert("UTC").date()
    with contextlib.ExitStack() as stack:
        landing = _Landing(settings, lake, stack)
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
