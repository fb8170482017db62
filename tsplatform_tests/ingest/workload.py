"""A seeded ingestion workload: readings of many series over many days, shuffled, with malformed and
duplicated messages, published to a real topic; and helpers to compare what landed with what was sent."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from confluent_kafka import Producer

from tsplatform.ingest.envelope import encode_readings, message_keys
from tsplatform.lake import Lake

#: Untrusted series names that must land safely and round-trip unchanged.
HOSTILE_POSITIONS = [
    "../../etc/x",
    "a/b",
    "광 주 A",
    "x" * 256,  # the longest name accepted by default (TSPLATFORM_MAX_TEXT_CHARS)
    "C:\\temp\\..\\y",
    "name with 'quotes' %s \n",
]

START_DAY = dt.date(2024, 3, 1)


def malformed_messages(rng: np.random.Generator, n: int, base_ms: int) -> list[bytes]:
    """``n`` records that cannot be decoded into a reading, of many kinds."""
    good = json.loads(
        encode_readings(
            pd.DataFrame({"position": ["p"], "type_name": ["T"], "event_time": [base_ms], "value": [1.0]})
        )[0]
    )
    kinds: list[bytes] = []
    for i in range(n):
        k = i % 8
        if k == 0:
            kinds.append(b'{"schema": {"type": "struct"}, "payload": {"ss_id": 1, ')  # truncated JSON
        elif k == 1:
            kinds.append(b"not json at all \xff\xfe")
        elif k == 2:
            payload = dict(good["payload"])
            del payload["event_time"]
            kinds.append(json.dumps({"schema": good["schema"], "payload": payload}).encode())
        elif k == 3:
            payload = dict(good["payload"], input_data="high")
            kinds.append(json.dumps({"schema": good["schema"], "payload": payload}).encode())
        elif k == 4:
            payload = dict(good["payload"], event_time=-86_400_000 * 400)  # 1968
            kinds.append(json.dumps({"schema": good["schema"], "payload": payload}).encode())
        elif k == 5:
            payload = dict(good["payload"], event_time=int(time.time() * 1000) + 86_400_000 * 30)  # future
            kinds.append(json.dumps({"schema": good["schema"], "payload": payload}).encode())
        elif k == 6:
            kinds.append(b"[1, 2, 3]")
        else:
            body = json.dumps({"schema": good["schema"], "payload": good["payload"]})
            kinds.append(body.replace('"input_data": 1.0', '"input_data": NaN').encode())
    rng.shuffle(kinds)
    return kinds


@dataclass
class Workload:
    topic: str
    readings: pd.DataFrame  # one row per valid message sent (duplicates appear twice)
    malformed: list[bytes]
    sent: list[tuple[bytes | None, bytes]] = field(default_factory=list)  # (key, value) in send order
    offsets: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # partition -> [(offset, idx)]
    valid_offsets: set[tuple[int, int]] = field(default_factory=set)
    malformed_offsets: set[tuple[int, int]] = field(default_factory=set)

    @property
    def days(self) -> set[dt.date]:
        return set(self.readings["event_time"].dt.date)


def make_workload(
    topic: str,
    *,
    n_readings: int,
    n_series: int,
    n_days: int,
    malformed_rate: float = 0.01,
    duplicate_rate: float = 0.02,
    seed: int = 7,
    start_day: dt.date = START_DAY,
) -> Workload:
    rng = np.random.default_rng(seed)
    positions = [*HOSTILE_POSITIONS, *[f"room {i}" for i in range(max(0, n_series - len(HOSTILE_POSITIONS)))]]
    positions = positions[:n_series]
    series = rng.integers(0, n_series, n_readings)
    start = pd.Timestamp(start_day, tz="UTC")
    seconds = rng.integers(0, n_days * 86_400, n_readings)
    frame = pd.DataFrame(
        {
            "position": [positions[s] for s in series],
            "type_name": np.where(series % 2 == 0, "CO2", "temp °C"),
            "event_time": start + pd.to_timedelta(seconds, unit="s"),
            "value": np.round(rng.normal(500, 50, n_readings), 3),
            "ss_id": series.astype(np.int64),
            "unit": np.where(series % 2 == 0, "ppm", "C"),
            "rstart": 0.0,
            "rend": 5000.0,
            "rlev1": 700.0,
        }
    )
    dup_idx = rng.choice(n_readings, int(n_readings * duplicate_rate), replace=False)
    frame = pd.concat([frame, frame.iloc[dup_idx]], ignore_index=True)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    n_bad = int(len(frame) * malformed_rate)
    return Workload(topic, frame, malformed_messages(rng, n_bad, int(start.value // 1_000_000)))


def publish(
    workload: Workload, bootstrap: str, *, seed: int = 11, client_config: dict[str, str] | None = None
) -> None:
    """Publish valid and malformed messages interleaved; record each one's (partition, offset).

    ``client_config``: extra librdkafka options (e.g. SASL_SSL security) for the producer.
    """
    values = encode_readings(workload.readings)
    keys: list[bytes | None] = list(message_keys(workload.readings))
    rng = np.random.default_rng(seed)
    items: list[tuple[bytes | None, bytes, int]] = [
        (k, v, i) for i, (k, v) in enumerate(zip(keys, values, strict=True))
    ]
    bad_positions = rng.integers(0, len(items) + 1, len(workload.malformed))
    for pos, raw in sorted(zip(bad_positions.tolist(), workload.malformed, strict=True), reverse=True):
        items.insert(pos, (None, raw, -1))
    options = {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000}
    producer = Producer({**(client_config or {}), **options})
    failures: list[str] = []

    def on_delivery(err, msg, idx: int) -> None:  # type: ignore[no-untyped-def]
        if err is not None:
            failures.append(str(err))
            return
        where = (msg.partition(), msg.offset())
        if idx >= 0:
            workload.valid_offsets.add(where)
        else:
            workload.malformed_offsets.add(where)

    for key, value, idx in items:
        while True:
            try:
                producer.produce(
                    workload.topic, value=value, key=key, on_delivery=lambda e, m, i=idx: on_delivery(e, m, i)
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        workload.sent.append((key, value))
    assert producer.flush(60) == 0, "messages left undelivered"
    assert not failures, failures[:3]


def read_dataset(lake: Lake, dataset: str) -> pd.DataFrame:
    table = lake.read_days(dataset, lake.days(dataset))
    return table.to_pandas() if table is not None else pd.DataFrame()


def reading_multiset(frame: pd.DataFrame) -> Counter:
    times = pd.to_datetime(frame["event_time"], utc=True).dt.as_unit("ms").astype("int64")
    return Counter(
        zip(frame["position"], frame["type_name"], times, frame["value"].astype(float), strict=True)
    )
