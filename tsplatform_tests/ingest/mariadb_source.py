"""Helpers of the MariaDB source tests: the study's tables, readings, Kafka read-back and landing.

Rows go into the study's schema (``docker/mariadb/init.sql``: ``sensor``, ``sensor_data``,
``SENSOR_DATA_VIEW``, ``sensor_data_events``) and come back as ``raw_readings`` / ``quarantine`` rows landed
by the platform's own ingestion (:func:`tsplatform.ingest.pipeline.ingest_once`).
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tsplatform.ingest.pipeline import IngestSummary, ingest_once
from tsplatform.lake import Lake
from tsplatform.services import mariadb
from tsplatform.settings import Settings, get_settings
from tsplatform_tests.ingest.workload import read_dataset

#: (ss_id offset, position, type_name, unit, rstart, rend): Unicode and path-like names are normal input.
SENSORS = (
    (0, "광 주 A", "C02", "ppm", 0.0, 20000.0),
    (1, "room 1", "temp", "°C", -40.0, 85.0),
    (2, "../../etc/passwd", "hum", None, 0.0, 100.0),
)


@dataclass(frozen=True)
class Reading:
    """One row of ``sensor_data``: sensor id, event time (UTC, ms precision) and value (or NULL)."""

    ss_id: int
    event_time: dt.datetime
    value: float | None


def new_ss_base() -> int:
    """A block of sensor ids no other test uses (the Connect route's tables are shared by a session)."""
    return random.randrange(1, 2**40) * 1000


def add_sensors(dsn: str, base: int, tag: str) -> dict[int, tuple[str, str, str | None, float, float]]:
    """Insert :data:`SENSORS` as ids ``base + offset``, positions suffixed by ``tag``; returns them by id."""
    out = {}
    conn = mariadb.connect(dsn)
    try:
        with conn.cursor() as cur:
            for offset, position, type_name, unit, rstart, rend in SENSORS:
                ss_id = base + offset
                out[ss_id] = (f"{position} {tag}", type_name, unit, rstart, rend)
                cur.execute(
                    "INSERT INTO sensor (ss_id, position, type_name, unit, rstart, rlev1, rlev2, rlev3,"
                    " rlev4, rlev5, rlev6, rlev7, rlev8, rend)"
                    " VALUES (%s, %s, %s, %s, %s, 1, 2, 3, 4, NULL, NULL, NULL, NULL, %s)",
                    (ss_id, f"{position} {tag}", type_name, unit, rstart, rend),
                )
        conn.commit()
    finally:
        conn.close()
    return out


def insert_readings(dsn: str, readings: Sequence[Reading]) -> None:
    """Insert ``readings`` in the given order, one transaction."""
    conn = mariadb.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO sensor_data (ss_id, event_time, input_data) VALUES (%s, %s, %s)",
                [(r.ss_id, r.event_time.replace(tzinfo=None), r.value) for r in readings],
            )
        conn.commit()
    finally:
        conn.close()


def readings_for(
    sensors: Sequence[int], start: dt.datetime, count: int, step: dt.timedelta = dt.timedelta(minutes=1)
) -> list[Reading]:
    """``count`` readings round-robin over ``sensors``, in time order from ``start`` (ms precision)."""
    start = start.replace(microsecond=(start.microsecond // 1000) * 1000)
    return [
        Reading(sensors[k % len(sensors)], start + k * step, round(400.0 + k * 0.25, 2)) for k in range(count)
    ]


def expected_multiset(
    readings: Sequence[Reading], sensors: dict[int, tuple[str, str, str | None, float, float]]
) -> Counter:
    """(position, type_name, epoch ms, value) of each reading."""
    return Counter(
        (
            sensors[r.ss_id][0],
            sensors[r.ss_id][1],
            int(r.event_time.replace(tzinfo=dt.UTC).timestamp() * 1000),
            float(r.value),  # type: ignore[arg-type]
        )
        for r in readings
    )


def landed_multiset(raw: pd.DataFrame) -> Counter:
    times = pd.to_datetime(raw["event_time"], utc=True).dt.as_unit("ms").astype("int64")
    return Counter(zip(raw["position"], raw["type_name"], times, raw["value"].astype(float), strict=True))


def land(tmp: Path, topic: str) -> tuple[pd.DataFrame, pd.DataFrame, IngestSummary]:
    """Ingest ``topic`` from the start into a lake under ``tmp`` (own consumer group); (raw, quarantine)."""
    settings: Settings = get_settings().model_copy(
        update={
            "lake_root": str(tmp / "lake"),
            "topics": [topic],
            "consumer_group": f"g-{uuid.uuid4().hex[:10]}",
        }
    )
    summary = ingest_once(settings)
    lake = Lake(settings.lake_uri)
    return read_dataset(lake, "raw_readings"), read_dataset(lake, "quarantine"), summary


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 180.0) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout_s`` (a bound, not a timing)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def committed_values(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[bytes]:
    """Values of every committed record of ``topic`` (``read_committed``) up to its current end.

    Transactional producers (Connect's exactly-once source) leave commit markers at offsets that are never
    delivered, so the end is reached when the consumer's position passes the high watermark.
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
        high = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in partitions}  # fmt: skip
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while True:
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                if msg.error() is None:
                    values.append(msg.value())
            positions = consumer.position([TopicPartition(topic, p) for p in partitions])
            if all(tp.offset >= high[tp.partition] or high[tp.partition] == 0 for tp in positions):
                return values
            assert time.monotonic() < deadline, f"timed out reading {topic} up to {high}"
    finally:
        consumer.close()
