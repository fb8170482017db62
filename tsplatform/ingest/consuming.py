"""The Kafka side of ingestion: reading exact offset ranges, and committing them once landed.

Where each topic-partition stands (:func:`end_offsets`: watermarks and the group's committed offset;
:func:`start_positions`), how a backlog is cut into runs (:func:`plan_ranges`), consuming exactly the
offsets of :class:`OffsetRange` s (:func:`consume_ranges`, read ahead on a thread by :func:`prefetched`)
and committing their ends after a durable landing (:func:`commit_offsets`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from queue import Empty, Full, Queue
from typing import Any

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from tsplatform.errors import ServiceUnavailable
from tsplatform.settings import Settings

log = logging.getLogger(__name__)


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
