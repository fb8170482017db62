"""Source throughput: a SQL table -> Kafka (-> raw_readings), ours vs a naive one-shot copy (peer).

Run by hand (it starts its own PostgreSQL, MariaDB, Kafka and Connect on free ports in temp dirs and stops
them)::

    .venv/bin/python -m bench.sql_source_throughput                   # 200k rows, PostgreSQL
    .venv/bin/python -m bench.sql_source_throughput --rows 50000 --bootstrap 127.0.0.1:9092
    .venv/bin/python -m bench.sql_source_throughput --source mariadb  # MariaDB: sql-source and Debezium

``--source mariadb`` loads the same readings into the study's MariaDB schema (``sensor`` + ``sensor_data``,
the trigger filling ``sensor_data_events``, ``SENSOR_DATA_VIEW``) and measures, in the same run: (a) the peer
(one streamed ``SELECT`` of the view -> produce, one flush); (b) ``run_source`` in incrementing mode,
10,000-row batches; (d) Debezium's MariaDB connector in Apache Kafka's Connect worker reading the binlog:
the connector is paused while the rows are inserted, then resumed, and timed until every row is committed
in its topic. Each route's topic is then landed into ``raw_readings`` with ``ingest_once`` (timed apart):
"to raw_readings" = rows / (Kafka leg + landing).

Rows are the real CO2 readings (SCD41 sensor, ppm) of the three Brains4Buildings rooms in
``--datasets-dir`` (default ../shared/datasets, ``b4b_co2/*_raw_properties.csv``), cycled to
``--rows`` rows on a 1-minute grid per room, loaded with COPY into a table ``sensor_data`` with the
contract's columns plus a ``bigserial`` id, behind a view ``SENSOR_DATA_VIEW``. Then, in the same run,
each measurement publishes the whole view to its own fresh topic (2 partitions):

(a) peer: one ``SELECT * ... ORDER BY event_time, id`` streamed with a server-side cursor, each row
    encoded with :func:`tsplatform.ingest.envelope.encode_reading`, produced keyed by series, one
    ``flush()`` at the end; no position, no batching, no delivery check per batch (a minimal script);
(b) ours: :func:`tsplatform.ingest.sql_source.run_source` in ``timestamp+incrementing`` mode, 10,000-row
    batches: query, encode, produce, ``flush()`` + check every delivery, ``fsync``'d position per batch;
(c) ours with 1,000-row batches (ten times more flushes and position saves).

Prints a markdown table of rows/s (wall clock) and rows per CPU-second of the benchmark process (all its
threads; the PostgreSQL and Kafka servers are other processes), and (b), (c) as a percentage of (a).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from bench.datasets_dir import DEFAULT_DATASETS_DIR, require_datasets
from bench.jars_dir import jars_dir

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tsplatform_tests.ingest.pg_server

DEFAULT_DATASETS = DEFAULT_DATASETS_DIR
ROOMS = ("917810", "925038", "999169")
DDL = """
CREATE TABLE sensor_data (
    id bigserial PRIMARY KEY, ss_id bigint NOT NULL,
    rstart real NOT NULL, rlev1 real NOT NULL, rlev2 real NOT NULL, rlev3 real NOT NULL, rlev4 real NOT NULL,
    rlev5 real, rlev6 real, rlev7 real, rlev8 real, rend real NOT NULL,
    event_time timestamptz NOT NULL, input_data real, position text NOT NULL, type_name text NOT NULL,
    unit text
);
CREATE INDEX sensor_data_ts_id ON sensor_data (event_time, id);
CREATE VIEW "SENSOR_DATA_VIEW" AS SELECT id, ss_id, rstart, rlev1, rlev2, rlev3, rlev4, rlev5, rlev6, rlev7,
    rlev8, rend, event_time, input_data, position, type_name, unit FROM sensor_data;
"""


@dataclass
class Measurement:
    name: str
    rows: int
    seconds: float
    cpu_seconds: float  # CPU time of this process, all threads (not the PostgreSQL or Kafka servers)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def co2_values(datasets_dir: Path) -> dict[str, np.ndarray]:
    """The SCD41 CO2 readings (ppm, file order) of each room."""
    out = {}
    require_datasets(datasets_dir, "b4b_co2")
    for room in ROOMS:
        frame = pd.read_csv(datasets_dir / "b4b_co2" / f"{room}_raw_properties.csv",
                            usecols=["source", "co2__ppm"])  # fmt: skip
        values = frame.loc[frame["source"] == "CO2-meter-SCD4x", "co2__ppm"].dropna().to_numpy(float)
        if len(values) == 0:
            raise SystemExit(f"no CO2 readings in {room}_raw_properties.csv")
        out[room] = values
    return out


def load_table(dsn: str, values: dict[str, np.ndarray], rows: int) -> None:
    """COPY ``rows`` readings (cycled real values, 1-minute grid per room, ending an hour ago)."""
    per_room = -(-rows // len(ROOMS))
    end = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(hours=1)
    parts = []
    for k, room in enumerate(ROOMS):
        n = min(per_room, rows - k * per_room)
        times = pd.date_range(end=end, periods=n, freq="1min")
        parts.append(pd.DataFrame({
            "ss_id": int(room), "rstart": 0.0, "rlev1": 700.0, "rlev2": 800.0, "rlev3": 1000.0,
            "rlev4": 1500.0, "rend": 20000.0, "event_time": times.strftime("%Y-%m-%d %H:%M:%S+00"),
            "input_data": np.resize(values[room], n), "position": f"Windesheim {room}", "type_name": "CO2",
            "unit": "ppm",
        }))  # fmt: skip
    frame = pd.concat(parts, ignore_index=True)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    with psycopg.connect(dsn) as conn:
        conn.execute(DDL)
        columns = ", ".join(frame.columns)
        with conn.cursor().copy(f"COPY sensor_data ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())
        conn.execute("ANALYZE sensor_data")


def create_topic(bootstrap: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    name = f"bench-sql-source-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])[name].result(timeout=30)
    for _ in range(100):
        meta = admin.list_topics(topic=name, timeout=10).topics.get(name)
        if meta is not None and meta.error is None and all(p.leader >= 0 for p in meta.partitions.values()):
            return name
        time.sleep(0.1)
    raise SystemExit(f"topic {name} has no leader")


def topic_size(bootstrap: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in (0, 1))
    finally:
        consumer.close()


def measure_peer(dsn: str, bootstrap: str, rows: int) -> Measurement:
    from confluent_kafka import Producer

    from tsplatform.ingest.envelope import encode_reading, message_key

    topic = create_topic(bootstrap)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "zstd"})
    started, cpu = time.perf_counter(), time.process_time()
    with psycopg.connect(dsn) as conn, conn.cursor(name="peer") as cur:
        cur.itersize = 10_000
        cur.execute('SELECT ss_id, rstart, rlev1, rlev2, rlev3, rlev4, rend, event_time, input_data, '
                    'position, type_name, unit FROM "SENSOR_DATA_VIEW" ORDER BY event_time, id')  # fmt: skip
        for ss_id, rstart, l1, l2, l3, l4, rend, ts, value, position, type_name, unit in cur:
            payload = encode_reading(position, type_name, ts, value, ss_id=ss_id, unit=unit, rstart=rstart,
                                     rend=rend, rlev=(l1, l2, l3, l4))  # fmt: skip
            while True:
                try:
                    producer.produce(topic, payload, message_key(position, type_name))
                    break
                except BufferError:
                    producer.poll(0.5)
    remaining = producer.flush(120)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert remaining == 0 and topic_size(bootstrap, topic) == rows, "peer did not deliver every row"
    return Measurement("(a) peer: one SELECT -> produce, one flush, no position", rows, seconds, cpu)


def measure_ours(dsn: str, bootstrap: str, rows: int, batch: int, label: str, state: Path) -> Measurement:
    from tsplatform.ingest.sql_source import Publisher, run_source
    from tsplatform.ingest.sql_source_config import SourceConfig

    topic = create_topic(bootstrap)
    config = SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic=topic, batch_size=batch)
    publisher = Publisher({"bootstrap.servers": bootstrap}, topic)
    started, cpu = time.perf_counter(), time.process_time()
    summary = run_source(config, dsn=dsn, publish=publisher.publish, state_dir=state)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert summary.published == rows and topic_size(bootstrap, topic) == rows, "sql-source lost rows"
    return Measurement(label, rows, seconds, cpu)


def markdown(results: list[Measurement], peer: Measurement) -> str:
    lines = [
        "| measurement | rows | wall s | rows/s | % of (a) | CPU s | rows per CPU-s | % of (a) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        share = 100 * m.rate / peer.rate
        per_cpu = m.rows / m.cpu_seconds
        cpu_share = 100 * per_cpu / (peer.rows / peer.cpu_seconds)
        lines.append(f"| {m.name} | {m.rows:,} | {m.seconds:.2f} | {m.rate:,.0f} | {share:.0f}% "
                     f"| {m.cpu_seconds:.2f} | {per_cpu:,.0f} | {cpu_share:.0f}% |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--bootstrap", default="", help="Use this running broker instead of starting one.")
    parser.add_argument("--source", choices=("postgres", "mariadb"), default="postgres")
    args = parser.parse_args(argv)
    if args.source == "mariadb":
        return main_mariadb(args)

    from tsplatform.ingest.sql_source import Publisher, run_source
    from tsplatform.ingest.sql_source_config import SourceConfig
    from tsplatform_tests.ingest.pg_server import running_postgres

    work = Path(tempfile.mkdtemp(prefix="tsplatform-bench-sql-source-"))
    manager = None
    try:
        bootstrap = args.bootstrap
        if not bootstrap:
            from tsplatform.services.manager import ServiceManager

            jars = jars_dir()
            manager = ServiceManager.up_on_free_ports(work / "state", ["kafka"], jars_dir=jars)
            bootstrap = manager.kafka_bootstrap
        with running_postgres() as dsn:
            load_table(dsn, co2_values(args.datasets_dir), args.rows)
            # warm-up (not reported): broker connections, idempotent-producer ids, PostgreSQL caches
            warm = SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic=create_topic(bootstrap),
                                batch_size=min(args.rows, 5_000))  # fmt: skip
            one_batch = threading.Event()
            warm_publisher = Publisher({"bootstrap.servers": bootstrap}, warm.resolved_topic)
            run_source(warm, dsn=dsn, publish=warm_publisher.publish, state_dir=work / "warm", stop=one_batch,
                       on_batch=lambda *_: one_batch.set())  # fmt: skip
            load_before = os.getloadavg()[0]
            peer = measure_peer(dsn, bootstrap, args.rows)
            runs: list[Callable[[], Measurement]] = [
                lambda: measure_ours(dsn, bootstrap, args.rows, 10_000,
                                     "(b) sql-source, 10,000-row batches", work / "b"),
                lambda: measure_ours(dsn, bootstrap, args.rows, 1_000,
                                     "(c) sql-source, 1,000-row batches", work / "c"),
            ]  # fmt: skip
            results = [peer, *(run() for run in runs)]
            print(markdown(results, peer))
            print(f"\nmachine: {os.cpu_count()} cores; 1-min load average before/after the measurements: "
                  f"{load_before:.1f} / {os.getloadavg()[0]:.1f}")  # fmt: skip
    finally:
        if manager is not None:
            manager.down()
        shutil.rmtree(work, ignore_errors=True)
    return 0


# --- MariaDB: sql-source and Debezium (Kafka Connect) -------------------------------------------------
CONTRACT_TOPIC = "sensor_data_source_SENSOR_DATA_VIEW"  # where the shared Debezium connector publishes
INSERT_SENSOR = ("INSERT INTO sensor (ss_id, position, type_name, unit, rstart, rlev1, rlev2, rlev3, rlev4, "
                 "rend) VALUES (%s, %s, 'CO2', 'ppm', 0, 700, 800, 1000, 1500, 20000)")  # fmt: skip
INSERT_READING = "INSERT INTO sensor_data (ss_id, event_time, input_data) VALUES (%s, %s, %s)"
SELECT_VIEW = ("SELECT ss_id, rstart, rlev1, rlev2, rlev3, rlev4, rend, event_time, input_data, position, "
               "type_name, unit FROM SENSOR_DATA_VIEW ORDER BY id")  # fmt: skip


def load_mariadb(dsn: str, values: dict[str, np.ndarray], rows: int) -> None:
    """The rooms as sensors and ``rows`` readings (1-minute grid per room) in 10,000-row INSERTs."""
    from tsplatform.services import mariadb

    per_room = -(-rows // len(ROOMS))
    end = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(hours=1)
    conn = mariadb.connect(dsn)
    try:
        with conn.cursor() as cur:
            for room in ROOMS:
                cur.execute(INSERT_SENSOR, (int(room), f"Windesheim {room}"))
            batch: list[tuple] = []
            for k, room in enumerate(ROOMS):
                n = min(per_room, rows - k * per_room)
                times = pd.date_range(end=end, periods=n, freq="1min").tz_localize(None).to_pydatetime()
                for t, v in zip(times, np.resize(values[room], n), strict=True):
                    batch.append((int(room), t, float(v)))
                    if len(batch) == 10_000:
                        cur.executemany(INSERT_READING, batch)
                        conn.commit()
                        batch = []
            if batch:
                cur.executemany(INSERT_READING, batch)
        conn.commit()
    finally:
        conn.close()


def measure_mariadb_peer(dsn: str, bootstrap: str, rows: int) -> Measurement:
    import pymysql.cursors
    from confluent_kafka import Producer

    from tsplatform.ingest.envelope import encode_reading, message_key
    from tsplatform.services import mariadb

    topic = create_topic(bootstrap)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "zstd"})
    started, cpu = time.perf_counter(), time.process_time()
    conn = mariadb.connect(dsn)
    try:
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(SELECT_VIEW)
            for ss_id, rstart, l1, l2, l3, l4, rend, ts, value, position, type_name, unit in cur:
                when = pd.Timestamp(ts, tz="UTC")
                payload = encode_reading(position, type_name, when, value, ss_id=ss_id, unit=unit,
                                         rstart=rstart, rend=rend, rlev=(l1, l2, l3, l4))  # fmt: skip
                while True:
                    try:
                        producer.produce(topic, payload, message_key(position, type_name))
                        break
                    except BufferError:
                        producer.poll(0.5)
    finally:
        conn.close()
    remaining = producer.flush(120)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert remaining == 0 and topic_size(bootstrap, topic) == rows, "peer did not deliver every row"
    return Measurement("(a) peer: one SELECT -> produce, one flush, no position", rows, seconds, cpu)


def _connect_call(url: str, method: str, path: str) -> None:
    import urllib.request

    request = urllib.request.Request(f"{url}{path}", method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 202, 204), response.status


def committed_count(bootstrap: str, topic: str) -> int:
    """Records committed in ``topic`` (read_committed: Connect's exactly-once transactions)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                         "isolation.level": "read_committed", "enable.auto.commit": False})  # fmt: skip
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        high = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in partitions}  # fmt: skip
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        count, deadline = 0, time.monotonic() + 120
        while time.monotonic() < deadline:
            count += len([m for m in consumer.consume(num_messages=50_000, timeout=0.5) if m.error() is None])
            done = consumer.position([TopicPartition(topic, p) for p in partitions])
            if all(tp.offset >= high[tp.partition] or high[tp.partition] == 0 for tp in done):
                break
        return count
    finally:
        consumer.close()


def measure_debezium(manager: object, dsn: str, values: dict[str, np.ndarray], rows: int) -> Measurement:
    """Pause the connector, insert ``rows``, resume, time until all are committed in the contract topic."""
    from tsplatform.services import connect

    url, bootstrap = manager.connect_url, manager.kafka_bootstrap  # type: ignore[attr-defined]
    name = connect.connector_name()
    _connect_call(url, "PUT", f"/connectors/{name}/pause")
    time.sleep(3)  # the pause reaches the task (the next poll returns nothing)
    load_mariadb(dsn, values, rows)
    topic = CONTRACT_TOPIC
    started, cpu = time.perf_counter(), time.process_time()
    _connect_call(url, "PUT", f"/connectors/{name}/resume")
    deadline = time.monotonic() + 1800
    while committed_count(bootstrap, topic) < rows:
        assert time.monotonic() < deadline, "Debezium did not publish every row within 30 min"
        time.sleep(1.0)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Measurement("(d) Debezium MariaDB connector (binlog) -> Kafka, exactly-once", rows, seconds, cpu)


def repeated_rows(bootstrap: str, topic: str) -> tuple[int, int]:
    """(committed records, records whose ``sensor_data`` id was already published) of the Debezium topic."""
    import orjson

    from tsplatform_tests.ingest.mariadb_source import committed_values

    ids = [orjson.loads(v)["payload"]["id"] for v in committed_values(bootstrap, topic, timeout_s=300)]
    return len(ids), len(ids) - len(set(ids))


def measure_landing(bootstrap: str, topic: str, rows: int, lake: Path) -> float:
    """Seconds of ``ingest_once`` landing ``topic`` into ``raw_readings`` of a fresh lake (checked)."""
    from tsplatform.ingest.pipeline import ingest_once
    from tsplatform.settings import get_settings

    update = {"kafka_bootstrap": bootstrap, "lake_root": str(lake), "topics": [topic],
              "consumer_group": f"bench-{uuid.uuid4().hex}", "state_dir": lake.parent / "state"}  # fmt: skip
    settings = get_settings().model_copy(update=update)
    started = time.perf_counter()
    summary = ingest_once(settings)
    seconds = time.perf_counter() - started
    assert summary.readings >= rows and summary.quarantined == 0, (summary.readings, summary.quarantined)
    return seconds


def main_mariadb(args: argparse.Namespace) -> int:
    from tsplatform.ingest.sql_source import Publisher, run_source
    from tsplatform.ingest.sql_source_config import SourceConfig
    from tsplatform.services import mariadb
    from tsplatform.services.manager import ServiceManager

    work = Path(tempfile.mkdtemp(prefix="tsplatform-bench-mariadb-source-"))
    work.chmod(0o711)  # MariaDB runs as `mysql` under root: it must be able to enter (not list) the work dir
    jars = jars_dir()
    manager = ServiceManager.up_on_free_ports(work / "state", ["kafka", "mariadb", "connect"], jars_dir=jars)
    try:
        bootstrap = manager.kafka_bootstrap
        values = co2_values(args.datasets_dir)
        load_before = os.getloadavg()[0]
        # The Debezium route captures the service's own database; the pollers read a scratch copy.
        debezium = measure_debezium(manager, manager.mariadb_dsn, values, args.rows)
        dsn = mariadb.scratch_dsn(manager.mariadb_dsn, "bench")
        mariadb.apply_schema(dsn)
        load_mariadb(dsn, values, args.rows)
        peer = measure_mariadb_peer(dsn, bootstrap, args.rows)
        topic = create_topic(bootstrap)
        config = SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic=topic, batch_size=10_000)
        publisher = Publisher({"bootstrap.servers": bootstrap}, topic)
        started, cpu = time.perf_counter(), time.process_time()
        summary = run_source(config, dsn=dsn, publish=publisher.publish, state_dir=work / "b")
        ours = Measurement("(b) sql-source on MariaDB, incrementing mode, 10,000-row batches", args.rows,
                           time.perf_counter() - started, time.process_time() - cpu)  # fmt: skip
        assert summary.published == args.rows and topic_size(bootstrap, topic) == args.rows
        publisher.close()
        print(markdown([peer, ours, debezium], peer))
        total, repeated = repeated_rows(bootstrap, CONTRACT_TOPIC)
        print(f"\nDebezium topic: {total:,} committed records for {args.rows:,} rows, {repeated:,} repeated")
        if repeated:  # keep the worker's log for a look at why
            kept = Path(tempfile.gettempdir()) / "bench-connect.log"
            shutil.copy(work / "state" / "logs" / "connect.log", kept)
        land_b = measure_landing(bootstrap, topic, args.rows, work / "lake-b" / "lake")
        land_d = measure_landing(bootstrap, CONTRACT_TOPIC, args.rows, work / "lake-d" / "lake")
        print("\n| route | Kafka leg s | landing s (ingest_once) | MariaDB -> raw_readings rows/s |")
        print("|---|---:|---:|---:|")
        for m, landing in ((ours, land_b), (debezium, land_d)):
            print(f"| {m.name} | {m.seconds:.2f} | {landing:.2f} | {m.rows / (m.seconds + landing):,.0f} |")
        print(f"\nmachine: {os.cpu_count()} cores; 1-min load average before/after the measurements: "
              f"{load_before:.1f} / {os.getloadavg()[0]:.1f}")  # fmt: skip
    finally:
        manager.down()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
