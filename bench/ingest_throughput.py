"""Ingestion throughput: raw Kafka consume + orjson (the peer) vs our decoder vs end-to-end ingestion.

Run by hand (it starts its own Kafka on free ports in a temp state dir and stops it at the end)::

    .venv/bin/python -m bench.ingest_throughput                      # 1M readings, 24 series, 2 partitions
    .venv/bin/python -m bench.ingest_throughput --readings 200000    # quicker
    .venv/bin/python -m bench.ingest_throughput --bootstrap 127.0.0.1:9092   # use a running broker
    .venv/bin/python -m bench.ingest_throughput --decode-only --readings 200000   # decoder alone, bad records

Readings are the real values of the NAB series in ``--datasets-dir`` (default ../shared/datasets),
cycled onto ``--series`` series keyed by (position, type_name) with a 1-minute grid, published as Connect
JSON envelopes (the message contract) to a fresh topic. Then, in the same run, three consumers read the
whole topic from the beginning:

(0) the floor: the same consume, touching each value (also a warm-up, so that every measurement reads
    from the broker's page cache);
(a) peer: ``Consumer.consume(num_messages=10000)`` batches + ``orjson.loads`` of every message value;
(b) the same consume + :func:`tsplatform.ingest.decode.decode_records` per batch (our decoder alone);
(c) :func:`tsplatform.ingest.pipeline.ingest_once` end to end (consume exact offset ranges, decode, land
    Parquet atomically in a temp lake, commit offsets; no catalog).

Prints a markdown table: readings/s (wall clock) of each and as a percentage of (a), and the same per
CPU-second of this process (all its threads, librdkafka's included), which depends less on what else
runs on a shared machine.
Goals: (c) >= 50% of (a) and >= 150k readings/s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from bench.datasets_dir import DEFAULT_DATASETS_DIR, require_datasets
from bench.jars_dir import jars_dir
from tsplatform.ingest.consuming import FETCH_CONFIG

DEFAULT_DATASETS = DEFAULT_DATASETS_DIR
CONSUME_BATCH = 10_000
# every measurement reads with the fetch settings of the ingestion consumer
CONSUMER_CONFIG = {"enable.auto.commit": False, "auto.offset.reset": "earliest", **FETCH_CONFIG}


@dataclass
class Measurement:
    name: str
    readings: int
    seconds: float
    cpu_seconds: float = float("nan")  # CPU time of this process (all threads, incl. librdkafka's)

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_rate(self) -> float:
        return self.readings / self.cpu_seconds if self.cpu_seconds > 0 else float("nan")


def real_values(datasets_dir: Path, n: int) -> np.ndarray:
    """``n`` real sensor values: the NAB series of ``datasets_dir`` concatenated and cycled."""
    files = sorted((require_datasets(datasets_dir, "nab") / "nab").glob("real*/*.csv"))
    if not files:
        raise SystemExit(f"no NAB csv under {datasets_dir / 'nab'} (give --datasets-dir)")
    values = np.concatenate([pd.read_csv(f)["value"].to_numpy(dtype=float) for f in files])
    return np.resize(values, n)


def make_frame(datasets_dir: Path, n: int, series: int) -> pd.DataFrame:
    """``n`` readings of ``series`` series; each series on a 1-minute grid ending now-ish."""
    index = np.arange(n)
    per_series = index // series
    start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=int(n // series) + 1)
    frame = pd.DataFrame({
        "position": [f"광 주 {i % series:02d}" for i in range(n)],
        "type_name": "C02",
        "event_time": start + pd.to_timedelta(per_series, unit="min"),
        "value": real_values(datasets_dir, n),
        "ss_id": index % series,
        "unit": "ppm",
        "rstart": 0.0, "rend": 20000.0,
        **{f"rlev{i}": (700.0, 800.0, 1000.0, 1500.0, 0.0, 0.0, 0.0, 0.0)[i - 1] for i in range(1, 9)},
    })  # fmt: skip
    return frame


def create_topic(bootstrap: str, partitions: int) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    name = f"bench-ingest-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
    for _ in range(100):
        topic = admin.list_topics(topic=name, timeout=10).topics.get(name)
        if (
            topic is not None
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return name
        time.sleep(0.1)
    raise SystemExit(f"topic {name} has no leaders")


def produce(bootstrap: str, topic: str, frame: pd.DataFrame) -> float:
    from confluent_kafka import Producer

    from tsplatform.ingest.envelope import encode_readings, message_keys

    failures: list[str] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 500_000, "enable.idempotence": True})  # fmt: skip
    started = time.perf_counter()
    for start in range(0, len(frame), 50_000):
        part = frame.iloc[start : start + 50_000]
        for value, key in zip(encode_readings(part), message_keys(part), strict=True):
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=report)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(300)
    if left or failures:
        raise SystemExit(f"producing failed: {left} undelivered, {len(failures)} errors: {failures[:1]}")
    return time.perf_counter() - started


def _assigned_consumer(bootstrap: str, topic: str, partitions: int):  # type: ignore[no-untyped-def]
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         **CONSUMER_CONFIG})  # fmt: skip
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    return consumer


def measure_consume_only(bootstrap: str, topic: str, partitions: int, total: int) -> Measurement:
    """(0) raw consume, touching every value (also warms the broker's page cache for the others)."""
    consumer = _assigned_consumer(bootstrap, topic, partitions)
    seen = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while seen < total:
        for message in consumer.consume(num_messages=CONSUME_BATCH, timeout=1.0):
            if message.error() is None:
                message.value()
                seen += 1
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    consumer.close()
    return Measurement("(0) consume only (floor)", seen, seconds, cpu)


def measure_peer(bootstrap: str, topic: str, partitions: int, total: int) -> Measurement:
    """(a) raw consume + orjson.loads of every message."""
    consumer = _assigned_consumer(bootstrap, topic, partitions)
    loads = orjson.loads
    seen = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while seen < total:
        for message in consumer.consume(num_messages=CONSUME_BATCH, timeout=1.0):
            if message.error() is None:
                loads(message.value())
                seen += 1
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    consumer.close()
    return Measurement("(a) consume + orjson.loads (peer)", seen, seconds, cpu)


def measure_decoder(bootstrap: str, topic: str, partitions: int, total: int) -> Measurement:
    """(b) raw consume + decode_records per consumed batch."""
    from tsplatform.ingest.decode import decode_records

    consumer = _assigned_consumer(bootstrap, topic, partitions)
    seen = readings = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while seen < total:
        messages = [m for m in consumer.consume(num_messages=CONSUME_BATCH, timeout=1.0) if m.error() is None]
        if not messages:
            continue
        batch = decode_records(
            [m.value() for m in messages], keys=[m.key() for m in messages], topic=topic,
            partitions=[m.partition() for m in messages], offsets=[m.offset() for m in messages],
            ingested_at=pd.Timestamp.now(tz="UTC"),
        )  # fmt: skip
        seen += len(messages)
        readings += batch.readings.num_rows
        if batch.quarantine.num_rows:
            raise SystemExit(f"decoder quarantined {batch.quarantine.num_rows} good records")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    consumer.close()
    return Measurement("(b) consume + decode_records (ours)", readings, seconds, cpu)


def measure_pipeline(bootstrap: str, topic: str, lake_dir: Path, total: int) -> tuple[Measurement, str]:
    """(c) ingest_once end to end into a temp lake."""
    # Imported before timing: first imports (compiling modules) are not ingestion work.
    import pyarrow.dataset
    import pyarrow.parquet  # noqa: F401

    from tsplatform.ingest.pipeline import ingest_once
    from tsplatform.lake import Lake  # noqa: F401
    from tsplatform.settings import Settings

    settings = Settings(kafka_bootstrap=bootstrap, state_dir=lake_dir.parent, lake_root=str(lake_dir),
                        topics=[topic], consumer_group=f"bench-{uuid.uuid4().hex[:8]}")  # fmt: skip
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = ingest_once(settings, topics=[topic], group=settings.consumer_group)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if summary.readings != total or summary.quarantined:
        got = f"{summary.readings} readings, {summary.quarantined} quarantined"
        raise SystemExit(f"ingest_once: {got}, {total} sent")
    detail = f"{summary.landed} landed in {len(summary.days)} day partition(s)"
    return Measurement("(c) ingest_once end to end", summary.readings, seconds, cpu), detail


def decode_only(datasets_dir: Path, n: int, series: int) -> str:
    """``decode_records`` on ``n`` in-memory records (10k per call) with 0%, 1% and 10% bad records.

    Bad records alternate between a string value and a numeric position (``wrong_type``); every one must be
    quarantined. No Kafka: the decoder's own cost, and how it holds up under a flood of bad records.
    """
    import random

    from tsplatform.ingest.decode import decode_records
    from tsplatform.ingest.envelope import encode_readings

    good = encode_readings(make_frame(datasets_dir, n, series))
    rng = random.Random(7)
    lines = ["| bad records | readings | quarantined | wall s | records/s | CPU s | records per CPU-s |",
             "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for fraction in (0.0, 0.01, 0.10):
        values = list(good)
        for i in rng.sample(range(n), int(n * fraction)):
            field = b'"input_data":' if i % 2 else b'"position":'
            values[i] = values[i].replace(field, field + (b'"x","zz":' if i % 2 else b'7,"zz":'))
        readings = quarantined = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        for start in range(0, n, CONSUME_BATCH):
            part = values[start : start + CONSUME_BATCH]
            batch = decode_records(
                part, keys=None, topic="bench", partitions=np.zeros(len(part), dtype=np.int32),
                offsets=np.arange(start, start + len(part)), ingested_at=pd.Timestamp.now(tz="UTC"),
            )  # fmt: skip
            readings += batch.readings.num_rows
            quarantined += batch.quarantine.num_rows
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if quarantined != int(n * fraction):
            raise SystemExit(f"decoder quarantined {quarantined}, expected {int(n * fraction)}")
        rates = f"{seconds:.2f} | {n / seconds:,.0f} | {cpu:.2f} | {n / cpu:,.0f}"
        lines.append(f"| {fraction:.0%} | {readings:,} | {quarantined:,} | {rates} |")
    return "\n".join(lines)


def markdown(results: list[Measurement], peer: Measurement) -> str:
    lines = [
        "| measurement | readings | wall s | readings/s | % of (a) | CPU s | readings per CPU-s | % of (a) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        wall_share, cpu_share = 100 * m.rate / peer.rate, 100 * m.cpu_rate / peer.cpu_rate
        lines.append(
            f"| {m.name} | {m.readings:,} | {m.seconds:.2f} | {m.rate:,.0f} | {wall_share:.0f}% "
            f"| {m.cpu_seconds:.2f} | {m.cpu_rate:,.0f} | {cpu_share:.0f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=24)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--bootstrap", default="", help="Use this running broker instead of starting one.")
    parser.add_argument("--skip", default="", help="Comma-separated measurements to skip: b, c.")
    parser.add_argument(
        "--decode-only", action="store_true", help="Only decode_records in memory with 0/1/10%% bad records."
    )
    args = parser.parse_args(argv)
    if args.decode_only:
        load_before = os.getloadavg()[0]
        print(decode_only(args.datasets_dir, args.readings, args.series))
        print(f"\n1-min load average before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f}")
        return 0
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    work = Path(tempfile.mkdtemp(prefix="tsplatform-bench-ingest-"))
    manager = None
    try:
        bootstrap = args.bootstrap
        if not bootstrap:
            from tsplatform.services.manager import ServiceManager

            jars = jars_dir()
            manager = ServiceManager.up_on_free_ports(work / "state", ["kafka"], jars_dir=jars)
            bootstrap = manager.kafka_bootstrap
        frame = make_frame(args.datasets_dir, args.readings, args.series)
        topic = create_topic(bootstrap, args.partitions)
        produce_s = produce(bootstrap, topic, frame)
        print(f"produced {len(frame):,} readings of {args.series} series to {topic} "
              f"({args.partitions} partitions) in {produce_s:.1f} s", file=sys.stderr)  # fmt: skip
        results: list[Measurement] = []
        load_before = os.getloadavg()[0]
        results.append(measure_consume_only(bootstrap, topic, args.partitions, len(frame)))
        peer = measure_peer(bootstrap, topic, args.partitions, len(frame))
        results.append(peer)
        if "b" not in skip:
            results.append(measure_decoder(bootstrap, topic, args.partitions, len(frame)))
        detail = ""
        if "c" not in skip:
            try:
                measured, detail = measure_pipeline(bootstrap, topic, work / "lake", len(frame))
                results.append(measured)
            except ImportError as exc:
                detail = f"(c) not measured: {exc}"
        print(markdown(results, peer))
        if detail:
            print(f"\n{detail}")
        print(f"\nmachine: {os.cpu_count()} cores; 1-min load average before/after the measurements: "
              f"{load_before:.1f} / {os.getloadavg()[0]:.1f}")  # fmt: skip
    finally:
        if manager is not None:
            manager.down()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
