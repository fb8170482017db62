"""``tsplatform sql-source`` against a real PostgreSQL server and a real Kafka broker.

The published messages are read back from Kafka and decoded with the ingestion decoder, so "the right
envelope" means: the platform's own decoder accepts every message (no quarantine) and yields exactly the
rows inserted into the table.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from typer.testing import CliRunner

from tsplatform.errors import ConfigError, ServiceUnavailable
from tsplatform.ingest.decode import DecodedBatch, decode_records
from tsplatform.ingest.envelope import message_key
from tsplatform.ingest.sql_polling import build_batch_query, inspect_table
from tsplatform.ingest.sql_position import Position, load_position, save_position, state_file_path
from tsplatform.ingest.sql_source import Publisher, run_source
from tsplatform.ingest.sql_source_config import SourceConfig
from tsplatform.settings import get_settings

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TABLE_DDL = """
CREATE TABLE sensor_data (
    id bigserial PRIMARY KEY,
    ss_id bigint NOT NULL,
    rstart real NOT NULL, rlev1 real NOT NULL, rlev2 real NOT NULL, rlev3 real NOT NULL, rlev4 real NOT NULL,
    rlev5 real, rlev6 real, rlev7 real, rlev8 real,
    rend real NOT NULL,
    event_time timestamptz NOT NULL,
    input_data real,
    position text NOT NULL,
    type_name text NOT NULL,
    unit text
);
CREATE VIEW "SENSOR_DATA_VIEW" AS
    SELECT id, ss_id, rstart, rlev1, rlev2, rlev3, rlev4, rlev5, rlev6, rlev7, rlev8, rend, event_time,
           input_data, position, type_name, unit
    FROM sensor_data;
"""
INSERT = """
INSERT INTO sensor_data (ss_id, rstart, rlev1, rlev2, rlev3, rlev4, rlev5, rlev6, rlev7, rlev8, rend,
                         event_time, input_data, position, type_name, unit)
VALUES (%s, 0, 700, 800, 1000, 1500, 0, 0, 0, NULL, 20000, %s, %s, %s, %s, %s)
"""


# --- helpers -------------------------------------------------------------------------------------
def _insert(dsn: str, rows: Sequence[tuple[int, dt.datetime, float, str, str, str | None]]) -> None:
    with psycopg.connect(dsn) as conn:
        conn.cursor().executemany(INSERT, rows)


def _consume_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None, int, int]]:
    """Every message of ``topic`` up to the current high watermarks: (key, value, partition, offset)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=30)
        partitions = sorted(meta.topics[topic].partitions)
        high = {p: _high_watermark(consumer, topic, p) for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out = []
        pending = {p for p in partitions if high[p] > 0}
        while pending:
            msg = consumer.poll(30)
            assert msg is not None, f"timed out reading {topic}; still pending {pending}"
            assert msg.error() is None, msg.error()
            out.append((msg.key(), msg.value(), msg.partition(), msg.offset()))
            if msg.offset() + 1 >= high[msg.partition()]:
                pending.discard(msg.partition())
        return out
    finally:
        consumer.close()


_LEADER_ELECTION = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)


def _high_watermark(consumer: Consumer, topic: str, partition: int) -> int:
    """The partition's high watermark, retrying while the leader is still being elected."""
    for _ in range(100):
        try:
            return int(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)[1])
        except KafkaException as exc:
            if exc.args[0].code() not in _LEADER_ELECTION:
                raise
            time.sleep(0.2)
    raise AssertionError(f"{topic}[{partition}] has no leader")


def _decode_batch(messages: list[tuple[bytes | None, bytes | None, int, int]], topic: str) -> DecodedBatch:
    """Consumed ``(key, value, partition, offset)`` tuples through the real decoder."""
    return decode_records(
        [m[1] for m in messages],
        keys=[m[0] for m in messages],
        topic=topic,
        partitions=[m[2] for m in messages],
        offsets=[m[3] for m in messages],
        ingested_at=pd.Timestamp.now(tz="UTC"),
    )


def _decoded(messages: list[tuple[bytes | None, bytes | None, int, int]], topic: str) -> pd.DataFrame:
    batch = _decode_batch(messages, topic)
    assert batch.quarantine.num_rows == 0, batch.quarantine.column("reason").to_pylist()
    return batch.readings.to_pandas()


def _row_keys(frame: pd.DataFrame) -> list[tuple[str, str, int, float]]:
    """(position, type_name, epoch ms, value) per decoded reading."""
    return list(zip(frame["position"], frame["type_name"], _epoch_ms(frame), frame["value"], strict=True))


def _epoch_ms(frame: pd.DataFrame) -> list[int]:
    return ((frame["event_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).tolist()


def _expected(rows: Sequence[tuple[int, dt.datetime, float, str, str, str | None]]) -> list[tuple]:
    return [(r[3], r[4], int(r[1].timestamp() * 1000), r[2]) for r in rows]


@pytest.fixture()
def sensor_db(postgres_dsn: str) -> str:
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute(TABLE_DDL)
    return postgres_dsn


@pytest.fixture()
def env(tmp_path: Path, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private state dir and the test broker, for the CLI (settings are re-read)."""
    state = tmp_path / "state"
    monkeypatch.setenv("TSPLATFORM_STATE_DIR", str(state))
    monkeypatch.setenv("TSPLATFORM_KAFKA_BOOTSTRAP", kafka_bootstrap)
    get_settings.cache_clear()
    yield state
    get_settings.cache_clear()


@pytest.fixture()
def topic(fresh_topic: Callable[..., str]) -> str:
    """A new topic with two partitions (messages are keyed by series)."""
    return fresh_topic(partitions=2, prefix="sql-source")


@pytest.fixture()
def publisher(topic: str, kafka_bootstrap: str) -> Iterator[Publisher]:
    """A publisher to ``topic``, closed after the test."""
    with Publisher({"bootstrap.servers": kafka_bootstrap}, topic) as publisher:
        yield publisher


def _cli(args: list[str], dsn: str) -> Any:
    from tsplatform.cli import app

    return CliRunner().invoke(app, ["sql-source", *args], env={"TSPLATFORM_SQL_SOURCE_DSN": dsn})


FIRST_ROWS = [
    (2, NOW - dt.timedelta(minutes=30), 460.0, "광 주 A", "C02", "ppm"),
    (2, NOW - dt.timedelta(minutes=20), 470.5, "광 주 A", "C02", "ppm"),
    (3, NOW - dt.timedelta(minutes=20), 21.25, "room 1", "temp", "°C"),  # same timestamp as the previous
    (3, NOW - dt.timedelta(minutes=10), 21.5, "room 1", "temp", None),
    (4, NOW - dt.timedelta(minutes=5), 55.0, "../../etc/passwd", "hum", "%"),
]


# --- tests ---------------------------------------------------------------------------------------
def test_once_publishes_each_row_once_then_only_new_rows(
    sensor_db: str, env: Path, topic: str, kafka_bootstrap: str
) -> None:
    _insert(sensor_db, FIRST_ROWS)
    args = [
        "--table",
        "SENSOR_DATA_VIEW",
        "--id-column",
        "id",
        "--topic",
        topic,
        "--once",
        "--batch-size",
        "2",
    ]
    result = _cli(args, sensor_db)
    assert result.exit_code == 0, result.output
    assert "published 5 rows in 3 batches" in result.output

    messages = _consume_all(kafka_bootstrap, topic)
    frame = _decoded(messages, topic)
    assert sorted(_row_keys(frame)) == sorted(_expected(FIRST_ROWS))
    assert Counter(m[0] for m in messages) == Counter(message_key(r[3], r[4]) for r in FIRST_ROWS)
    envelope = orjson.loads(messages[0][1])
    assert envelope["schema"]["name"] == "SENSOR_DATA_VIEW"
    assert set(envelope["payload"]) >= {
        "ss_id",
        "rstart",
        "rlev1",
        "rlev8",
        "rend",
        "event_time",
        "input_data",
        "position",
        "type_name",
        "unit",
    }
    by_key = {(r[3], r[4], int(r[1].timestamp() * 1000)): r for r in FIRST_ROWS}
    for _, row in frame.iterrows():
        ms = (row["event_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        source = by_key[(row["position"], row["type_name"], ms)]
        assert row["ss_id"] == source[0]
        assert (row["unit"] if row["unit"] is not None else None) == source[5]
        assert (row["rlev1"], row["rend"]) == (700.0, 20000.0)
        assert pd.isna(row["rlev8"])

    # nothing new: a second run publishes nothing
    again = _cli(args, sensor_db)
    assert again.exit_code == 0 and "published 0 rows" in again.output
    # new rows, one of them sharing the last published timestamp (the id breaks the tie)
    new_rows = [
        (4, NOW - dt.timedelta(minutes=5), 56.0, "room 2", "hum", "%"),
        (2, NOW - dt.timedelta(minutes=2), 480.0, "광 주 A", "C02", "ppm"),
        (3, NOW - dt.timedelta(minutes=1), 22.0, "room 1", "temp", "°C"),
    ]
    _insert(sensor_db, new_rows)
    third = _cli(args, sensor_db)
    assert third.exit_code == 0 and "published 3 rows" in third.output, third.output
    frame = _decoded(_consume_all(kafka_bootstrap, topic), topic)
    assert sorted(_row_keys(frame)) == sorted(_expected(FIRST_ROWS + new_rows))  # each row exactly once


def test_crash_between_publish_and_position_save_republishes_on_restart(
    sensor_db: str, env: Path, topic: str, kafka_bootstrap: str, publisher: Publisher
) -> None:
    _insert(sensor_db, FIRST_ROWS)
    config = SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic=topic, batch_size=2)
    saves: list[int | None] = []

    def save_then_crash(path: Path, cfg: SourceConfig, position: Position, total: int) -> None:
        if saves:  # the second batch is published, then the process dies before its position is saved
            raise KeyboardInterrupt("killed")
        save_position(path, cfg, position, total)
        saves.append(position.last_id)

    with pytest.raises(KeyboardInterrupt):
        run_source(config, dsn=sensor_db, publish=publisher.publish, state_dir=env, save=save_then_crash)
    assert saves == [2]
    published = _decoded(_consume_all(kafka_bootstrap, topic), topic)
    assert len(published) == 4  # two batches went out; only the first one's position was saved

    summary = run_source(config, dsn=sensor_db, publish=publisher.publish, state_dir=env)
    assert summary.published == 3  # restarted after the saved position: the unsaved batch again + the rest
    frame = _decoded(_consume_all(kafka_bootstrap, topic), topic)
    counts = Counter(_row_keys(frame))
    assert set(counts) == set(_expected(FIRST_ROWS))  # nothing lost
    assert sorted(counts.values()) == [1, 1, 1, 2, 2]  # the unsaved batch twice (at least once)
    position = load_position(state_file_path(env, config.source_name), config)
    assert position is not None and position.last_id == 5


def test_position_file_is_replaced_atomically(sensor_db: str, env: Path) -> None:
    config = SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic="t")
    path = state_file_path(env, config.source_name)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
    save_position(path, config, Position(when, 7, "timestamptz"), 7)
    assert load_position(path, config) == Position(when, 7, "timestamptz")  # microseconds kept
    path.with_name("blocker").mkdir()
    blocked = path.parent / "blocked.json"
    blocked.mkdir()  # renaming onto a directory fails: the save fails, the old content is intact
    with pytest.raises(ConfigError, match="cannot save the position"):
        save_position(blocked, config, Position(when, 8, "timestamptz"), 8)
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, "blocker", "blocked.json"])
    other = SourceConfig(table="SENSOR_DATA_VIEW", id_column="other_id", topic="t")
    with pytest.raises(ConfigError, match="was written with id_column='id'"):
        load_position(path, other)


def test_late_rows_and_late_commits_are_never_skipped_in_incrementing_mode(
    sensor_db: str, env: Path, topic: str, kafka_bootstrap: str, publisher: Publisher
) -> None:
    """Unlike Connect's timestamp+incrementing mode, rows are read by id: a row inserted after newer ones with
    an older event time is published, and so is a row whose id was taken before a published one but
    committed after it (awaited as a gap)."""
    with psycopg.connect(sensor_db) as conn:
        db_now = conn.execute("SELECT now()").fetchone()[0]
    recent = (1, db_now - dt.timedelta(seconds=10), 3.0, "p", "t", None)
    held = psycopg.connect(sensor_db)  # takes id 1, commits after id 2 was published
    held.execute(INSERT, (1, db_now - dt.timedelta(minutes=1), 2.0, "p", "t", None))
    _insert(sensor_db, [recent])
    config = SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic=topic)
    first = run_source(config, dsn=sensor_db, publish=publisher.publish, state_dir=env)
    assert first.published == 1 and first.position is not None
    assert [(lo, hi) for lo, hi, _ in first.position.gaps] == [(1, 1)]
    held.commit()
    held.close()
    late = (1, db_now - dt.timedelta(days=2), 1.0, "p", "t", None)  # uploaded late: older than all
    _insert(sensor_db, [late])
    second = run_source(config, dsn=sensor_db, publish=publisher.publish, state_dir=env)
    assert second.published == 2 and second.position is not None and second.position.gaps == ()
    frame = _decoded(_consume_all(kafka_bootstrap, topic), topic)
    assert sorted(frame["value"]) == [1.0, 2.0, 3.0]  # each once
    with pytest.raises(ConfigError, match="--delay-ms is for timestamp mode"):
        SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic=topic, delay_ms=1000)


def test_timestamp_mode_never_splits_a_timestamp_across_batches(
    postgres_dsn: str, env: Path, topic: str, kafka_bootstrap: str
) -> None:
    """No id column, epoch-ms integer times and other column names mapped with --map."""
    base = int((NOW - dt.timedelta(hours=1)).timestamp() * 1000)
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute('CREATE TABLE "Other Readings" (ts bigint, val double precision, pos text, kind text)')
        conn.cursor().executemany(
            'INSERT INTO "Other Readings" VALUES (%s, %s, %s, %s)',
            [
                (base, 1.0, "a", "x"),
                (base + 1000, 2.0, "a", "x"),
                (base + 1000, 3.0, "b", "x"),
                (base + 1000, 4.0, "c", "x"),
                (base + 2000, 5.0, "a", "x"),
            ],
        )
    args = [
        "--table",
        "Other Readings",
        "--time-column",
        "ts",
        "--map",
        "input_data=val",
        "--map",
        "position=pos",
        "--map",
        "type_name=kind",
        "--topic",
        topic,
        "--batch-size",
        "2",
        "--once",
    ]
    result = _cli(args, postgres_dsn)
    assert result.exit_code == 0, result.output
    frame = _decoded(_consume_all(kafka_bootstrap, topic), topic)
    assert sorted(frame["value"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert sorted(_epoch_ms(frame)) == [base, base + 1000, base + 1000, base + 1000, base + 2000]


def test_naive_timestamp_column_is_read_as_utc(
    postgres_dsn: str, env: Path, topic: str, kafka_bootstrap: str
) -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678000)
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute("SET TIME ZONE 'Asia/Seoul'")  # the writer's zone must not matter for timestamp
        conn.execute("CREATE TABLE r (event_time timestamp, input_data real, position text, type_name text)")
        conn.execute("INSERT INTO r VALUES (%s, 1.5, 'p', 't')", [when])
    result = _cli(["--table", "r", "--topic", topic, "--once"], postgres_dsn)
    assert result.exit_code == 0, result.output
    frame = _decoded(_consume_all(kafka_bootstrap, topic), topic)
    assert frame["event_time"].iloc[0] == pd.Timestamp(when, tz="UTC")


def test_untrusted_names_are_quoted_never_executed(sensor_db: str, env: Path) -> None:
    hostile = 'x"; DROP TABLE sensor_data; --'
    with psycopg.connect(sensor_db) as conn:
        with pytest.raises(ConfigError, match="does not exist"):
            inspect_table(conn, SourceConfig(table=hostile, topic="t"))
        assert conn.execute("SELECT count(*) FROM sensor_data").fetchone() == (0,)
        shape = inspect_table(conn, SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic="t"))
        query, _ = build_batch_query(SourceConfig(table=hostile, id_column="id", topic="t"), shape, None, NOW)
    assert 'FROM "x""; DROP TABLE sensor_data; --" ORDER BY' in query  # one quoted identifier
    percent, _ = build_batch_query(SourceConfig(table="a%s", id_column="id", topic="t"), shape, None, NOW)
    assert 'FROM "a%%s"' in percent  # a % in a name is not a placeholder
    path = state_file_path(env, "../../etc/passwd 광 주")
    assert path.parent == env / "sql_source" and path.name.startswith("etc_passwd")


def test_invalid_default_topic_asks_for_topic() -> None:
    assert SourceConfig(table="SENSOR_DATA_VIEW").resolved_topic == "sensor_data_source_SENSOR_DATA_VIEW"
    with pytest.raises(ConfigError, match="not a valid Kafka topic name"):
        SourceConfig(table="광 주 readings")


def test_errors_are_one_clear_line(
    sensor_db: str, env: Path, topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tsplatform.cli import main

    def error_of(args: list[str], dsn: str) -> str:
        with pytest.raises(SystemExit) as info:
            main(["sql-source", "--dsn", dsn, "--topic", topic, "--once", *args])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return err

    missing = error_of(["--table", "no_such_view"], sensor_db)
    assert "table or view 'no_such_view' does not exist" in missing
    no_column = error_of(["--table", "SENSOR_DATA_VIEW", "--id-column", "nope"], sensor_db)
    assert "has no column(s) ['nope']" in no_column
    unreachable = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2"
    down = error_of(["--table", "SENSOR_DATA_VIEW"], unreachable)
    assert "cannot connect to the PostgreSQL database" in down and "TSPLATFORM_SQL_SOURCE_DSN" in down


def test_undeliverable_batch_is_an_error_and_saves_no_position(sensor_db: str, env: Path) -> None:
    _insert(sensor_db, FIRST_ROWS[:1])
    config = SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic="t")
    dead = Publisher({"bootstrap.servers": "127.0.0.1:1"}, "t", timeout_s=2.0)
    with pytest.raises(ServiceUnavailable, match="1 of 1 messages to topic 't'"):
        run_source(config, dsn=sensor_db, publish=dead.publish, state_dir=env)
    assert not state_file_path(env, config.source_name).exists()
    dead.close()  # drops the undelivered message instead of waiting for it
    dead.close()
    with pytest.raises(RuntimeError, match="closed Publisher"):
        dead.publish([(b"k", b"v")])


def _wait_for_messages(bootstrap: str, topic: str, count: int, process: subprocess.Popen) -> list:
    deadline = time.monotonic() + 120
    while True:
        messages = _consume_all(bootstrap, topic)
        if len(messages) >= count:
            return messages
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"only {len(messages)} of {count} messages arrived"
        time.sleep(0.3)


def test_continuous_polling_picks_up_new_rows_and_stops_cleanly_on_ctrl_c(
    sensor_db: str, tmp_path: Path, topic: str, kafka_bootstrap: str
) -> None:
    _insert(sensor_db, FIRST_ROWS[:2])
    env = {
        **os.environ,
        "TSPLATFORM_STATE_DIR": str(tmp_path / "state"),
        "TSPLATFORM_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TSPLATFORM_SQL_SOURCE_DSN": sensor_db,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tsplatform.cli",
            "sql-source",
            "--table",
            "SENSOR_DATA_VIEW",
            "--id-column",
            "id",
            "--topic",
            topic,
            "--poll-interval",
            "0.2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_messages(kafka_bootstrap, topic, 2, process)
        _insert(sensor_db, FIRST_ROWS[2:])
        messages = _wait_for_messages(kafka_bootstrap, topic, len(FIRST_ROWS), process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopping after the current batch (SIGINT)" in err
    assert f"published {len(FIRST_ROWS)} rows" in out
    assert sorted(_row_keys(_decoded(messages, topic))) == sorted(_expected(FIRST_ROWS))
    saved = load_position(
        state_file_path(tmp_path / "state", f".SENSOR_DATA_VIEW->{topic}"),
        SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic=topic),
    )
    assert saved is not None and saved.last_id == len(FIRST_ROWS)


def test_bad_rows_are_published_for_quarantine_and_do_not_stall_the_source(
    postgres_dsn: str, env: Path, topic: str, kafka_bootstrap: str
) -> None:
    t0 = NOW - dt.timedelta(minutes=10)
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute(
            "CREATE TABLE odd (id serial, event_time timestamptz, input_data real, position text, "
            "type_name text, rstart text)"
        )
        conn.cursor().executemany(
            "INSERT INTO odd (event_time, input_data, position, type_name, rstart) "
            "VALUES (%s, %s, %s, %s, %s)",
            [
                (t0, 1.0, "p", "t", "0"),
                (t0 + dt.timedelta(seconds=1), float("nan"), "p", "t", None),
                (t0 + dt.timedelta(seconds=2), 3.0, None, "t", None),
                (t0 + dt.timedelta(seconds=3), 4.0, "p", "t", "zero"),
                (t0 + dt.timedelta(seconds=4), 5.0, "p", "t", None),
            ],
        )
    result = _cli(["--table", "odd", "--id-column", "id", "--topic", topic, "--once"], postgres_dsn)
    assert result.exit_code == 0, result.output
    assert "published 5 rows" in result.output
    messages = _consume_all(kafka_bootstrap, topic)
    batch = _decode_batch(messages, topic)
    assert sorted(batch.readings.column("value").to_pylist()) == [1.0, 5.0]
    reasons = sorted(batch.quarantine.column("reason").to_pylist())
    assert reasons[:2] == ["missing_field:position", "non_finite_value:input_data"]
    assert reasons[2].startswith("wrong_type:rstart")
    assert len(reasons) == 3
