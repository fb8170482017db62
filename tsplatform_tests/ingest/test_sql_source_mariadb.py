"""``tsplatform sql-source`` on a real MariaDB (the local service), a real broker and the real ingestion.

Every test polls the study's ``SENSOR_DATA_VIEW`` (or its own table) in a scratch database, publishes to a
fresh topic and lands the topic into ``raw_readings``/``quarantine`` with ``ingest_once``: "arrives" means
landed.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from tsplatform.ingest.sql_position import load_position, state_file_path
from tsplatform.ingest.sql_source import Publisher, run_source
from tsplatform.ingest.sql_source_config import SourceConfig
from tsplatform.services import mariadb
from tsplatform.services.manager import ServiceManager
from tsplatform.settings import get_settings
from tsplatform_tests.ingest.mariadb_source import (
    Reading,
    add_sensors,
    expected_multiset,
    insert_readings,
    land,
    landed_multiset,
    new_ss_base,
    readings_for,
    wait_for,
)
from tsplatform_tests.ingest.test_sql_source import _consume_all

pytestmark = pytest.mark.integration

T0 = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0) - dt.timedelta(days=1)


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
    return fresh_topic(partitions=2, prefix="mariadb-source")


def _cli(args: list[str], dsn: str) -> Any:
    from tsplatform.cli import app

    return CliRunner().invoke(app, ["sql-source", *args], env={"TSPLATFORM_SQL_SOURCE_DSN": dsn})


def _view_args(topic: str, *extra: str) -> list[str]:
    return ["--table", "SENSOR_DATA_VIEW", "--id-column", "id", "--topic", topic, "--once", *extra]


def _execute(dsn: str, statements: list[tuple[str, tuple]], *, session_zone: str | None = None) -> None:
    conn = mariadb.connect(dsn)
    try:
        with conn.cursor() as cur:
            if session_zone is not None:
                cur.execute(f"SET time_zone = '{session_zone}'")
            for statement, params in statements:
                cur.execute(statement, params)
        conn.commit()
    finally:
        conn.close()


# --- tests ---------------------------------------------------------------------------------------
def test_rows_in_and_out_of_time_order_land_exactly_once_with_their_series_identity(
    mariadb_dsn: str, env: Path, topic: str, tmp_path: Path
) -> None:
    base = new_ss_base()
    sensors = add_sensors(mariadb_dsn, base, "a")
    ids = sorted(sensors)
    in_order = readings_for(ids, T0, 40)
    same_time = [Reading(ids[1], in_order[-1].event_time, 9.5)]  # shares the last timestamp
    insert_readings(mariadb_dsn, in_order + same_time)
    first = _cli(_view_args(topic, "--batch-size", "7"), mariadb_dsn)
    assert first.exit_code == 0, first.output
    assert "published 41 rows in 6 batches" in first.output

    # Uploaded late: older event times than everything published, one equal to the newest published time.
    late = [*readings_for(ids, T0 - dt.timedelta(days=3), 12), Reading(ids[2], in_order[-1].event_time, 7.25)]
    insert_readings(mariadb_dsn, late)
    second = _cli(_view_args(topic, "--batch-size", "7"), mariadb_dsn)
    assert second.exit_code == 0 and "published 13 rows" in second.output, second.output
    third = _cli(_view_args(topic), mariadb_dsn)
    assert "published 0 rows" in third.output

    raw, quarantine, _ = land(tmp_path, topic)
    assert len(quarantine) == 0, list(quarantine["reason"])
    assert landed_multiset(raw) == expected_multiset(in_order + same_time + late, sensors)  # once each
    for ss_id, (position, type_name, unit, rstart, rend) in sensors.items():
        rows = raw[raw["ss_id"] == ss_id]
        assert len(rows) > 0 and set(rows["position"]) == {position} and set(rows["type_name"]) == {type_name}
        assert rows["unit"].isna().all() if unit is None else set(rows["unit"]) == {unit}
        assert set(rows["rstart"]) == {rstart} and set(rows["rend"]) == {rend}
        assert set(rows["rlev4"]) == {4.0} and rows["rlev5"].isna().all()


def test_timestamp_mode_never_splits_a_timestamp_but_misses_late_rows_which_id_mode_keeps(
    mariadb_dsn: str, env: Path, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    """The documented difference between the modes, on the same rows."""
    sensors = add_sensors(mariadb_dsn, new_ss_base(), "b")
    ids = sorted(sensors)
    shared = T0.replace(microsecond=250_000)
    rows = [Reading(ids[k % 3], shared + dt.timedelta(seconds=k // 4), float(k)) for k in range(10)]
    insert_readings(mariadb_dsn, rows)
    by_time, by_id = fresh_topic(prefix="ts-mode"), fresh_topic(prefix="id-mode")
    ts_args = ["--table", "SENSOR_DATA_VIEW", "--topic", by_time, "--once", "--batch-size", "3"]
    ts_args += ["--delay-ms", "0"]
    assert _cli(ts_args, mariadb_dsn).exit_code == 0
    assert _cli(_view_args(by_id, "--batch-size", "3"), mariadb_dsn).exit_code == 0

    late = [Reading(ids[0], T0 - dt.timedelta(hours=5), 99.0)]  # inserted after, older than all published
    insert_readings(mariadb_dsn, late)
    again = _cli(ts_args, mariadb_dsn)
    assert again.exit_code == 0 and "published 0 rows" in again.output  # timestamp mode: missed, by design
    assert "published 1 rows" in _cli(_view_args(by_id), mariadb_dsn).output

    raw_ts, _, _ = land(tmp_path / "ts", by_time)
    raw_id, _, _ = land(tmp_path / "id", by_id)
    assert landed_multiset(raw_ts) == expected_multiset(rows, sensors)  # all 4 rows of each timestamp, once
    assert landed_multiset(raw_id) == expected_multiset(rows + late, sensors)


def test_an_id_committed_after_a_higher_one_is_published_when_it_commits(
    mariadb_dsn: str, env: Path, topic: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    sensors = add_sensors(mariadb_dsn, new_ss_base(), "c")
    ss_id = min(sensors)
    slow, fast, rolled_back = (Reading(ss_id, T0 + dt.timedelta(minutes=k), float(k)) for k in range(3))
    insert_sql = "INSERT INTO sensor_data (ss_id, event_time, input_data) VALUES (%s, %s, %s)"
    held = mariadb.connect(mariadb_dsn)  # takes its id first, commits last
    with held.cursor() as cur:
        cur.execute(insert_sql, (slow.ss_id, slow.event_time, slow.value))
    insert_readings(mariadb_dsn, [fast])
    config = SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic=topic)
    with Publisher({"bootstrap.servers": kafka_bootstrap}, topic) as publisher:
        first = run_source(config, dsn=mariadb_dsn, publish=publisher.publish, state_dir=env)
        assert first.published == 1 and first.position is not None
        assert [(lo, hi) for lo, hi, _ in first.position.gaps] == [(1, 1)]  # the held id is awaited
        held.commit()
        held.close()
        second = run_source(config, dsn=mariadb_dsn, publish=publisher.publish, state_dir=env)
        assert second.published == 1 and second.position is not None and second.position.gaps == ()
        # A rolled-back insert leaves a gap that never fills: given up after the grace period.
        aborted = mariadb.connect(mariadb_dsn)
        with aborted.cursor() as cur:
            cur.execute(insert_sql, (rolled_back.ss_id, rolled_back.event_time, rolled_back.value))
        aborted.rollback()
        aborted.close()
        insert_readings(mariadb_dsn, [Reading(ss_id, T0 + dt.timedelta(minutes=9), 9.0)])
        third = run_source(config, dsn=mariadb_dsn, publish=publisher.publish, state_dir=env)
        assert third.published == 1 and [(lo, hi) for lo, hi, _ in third.position.gaps] == [(3, 3)]
        impatient = SourceConfig(table="SENSOR_DATA_VIEW", id_column="id", topic=topic, gap_grace_ms=0)
        fourth = run_source(impatient, dsn=mariadb_dsn, publish=publisher.publish, state_dir=env)
        assert fourth.published == 0 and fourth.expired_gap_ids == 1
    saved = load_position(state_file_path(env, config.source_name), impatient)
    assert saved is not None and saved.gaps == () and saved.last_id == 4
    raw, _, _ = land(tmp_path, topic)
    assert sorted(raw["value"]) == [0.0, 1.0, 9.0]


def test_datetime_and_timestamp_columns_are_read_as_utc_whatever_the_session_zone(
    mariadb_dsn: str, env: Path, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    _execute(
        mariadb_dsn,
        [
            ("CREATE TABLE `zone readings` (id BIGINT AUTO_INCREMENT PRIMARY KEY, wall DATETIME(3), "
             "instant TIMESTAMP(3) NULL, input_data DOUBLE, position TEXT, type_name TEXT)", ()),
            # A writer in Seoul: the TIMESTAMP is converted from its zone, the DATETIME is UTC wall time.
            ("INSERT INTO `zone readings` (wall, instant, input_data, position, type_name) "
             "VALUES ('2026-01-02 03:04:05.678', '2026-01-02 12:04:05.678', 1.5, 'p', 't')", ()),
        ],
        session_zone="+09:00",
    )  # fmt: skip
    expected = pd.Timestamp("2026-01-02T03:04:05.678Z")
    for column in ("wall", "instant"):
        topic = fresh_topic(prefix=f"zone-{column}")
        args = ["--table", "zone readings", "--time-column", column, "--id-column", "id", "--topic", topic]
        result = _cli([*args, "--once"], mariadb_dsn)
        assert result.exit_code == 0, result.output
        raw, _, _ = land(tmp_path / column, topic)
        assert list(raw["event_time"]) == [expected], column


def test_malformed_rows_reach_the_quarantine_with_a_reason(
    mariadb_dsn: str, env: Path, topic: str, tmp_path: Path
) -> None:
    base = new_ss_base()
    sensors = add_sensors(mariadb_dsn, base, "d")
    good = readings_for(sorted(sensors), T0, 6)
    bad = [
        Reading(base, T0 + dt.timedelta(hours=1), None),  # NULL reading
        Reading(base + 999, T0 + dt.timedelta(hours=1), 5.0),  # a sensor not in the sensor table
        Reading(base, dt.datetime(1960, 1, 1), 5.0),  # before the epoch
        Reading(base, dt.datetime(2100, 1, 1), 5.0),  # far in the future
    ]
    insert_readings(mariadb_dsn, good + bad)
    result = _cli(_view_args(topic), mariadb_dsn)
    assert result.exit_code == 0 and "published 10 rows" in result.output, result.output
    raw, quarantine, _ = land(tmp_path, topic)
    assert landed_multiset(raw) == expected_multiset(good, sensors)
    reasons = sorted(quarantine["reason"])
    assert [r.split(":")[0] for r in reasons[:2]] == ["absurd_timestamp", "absurd_timestamp"], reasons
    assert reasons[2:] == ["missing_field:input_data", "missing_field:position"]
    assert all(len(raw_bytes) > 0 for raw_bytes in quarantine["raw"])  # the original record is kept


def test_names_with_backticks_and_percent_signs_are_quoted(mariadb_dsn: str, env: Path, topic: str) -> None:
    hostile = "odd `name` 100%s; DROP TABLE sensor"
    quoted = ("`" + hostile.replace("`", "``") + "`").replace("%", "%%")  # PyMySQL formats with args
    _execute(
        mariadb_dsn,
        [
            (f"CREATE TABLE {quoted} (id INT AUTO_INCREMENT PRIMARY KEY, event_time DATETIME(3), "
             "input_data FLOAT, position TEXT, type_name TEXT)", ()),
            (f"INSERT INTO {quoted} (event_time, input_data, position, type_name) "
             "VALUES ('2026-01-01 00:00:00', 1, 'p', 't')", ()),
        ],
    )  # fmt: skip
    result = _cli(["--table", hostile, "--id-column", "id", "--topic", topic, "--once"], mariadb_dsn)
    assert result.exit_code == 0 and "published 1 rows" in result.output, result.output
    assert len(_consume_all(get_settings().kafka_bootstrap, topic)) == 1
    conn = mariadb.connect(mariadb_dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM sensor")
        assert cur.fetchone() == (1,)  # init.sql's example sensor: the hostile name was only a name
    conn.close()
    missing = _cli(["--table", "no such table", "--topic", topic, "--once"], mariadb_dsn)
    assert missing.exit_code != 0 and "does not exist" in str(missing.exception)


def _poller(tmp: Path, topic: str, dsn: str, bootstrap: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "TSPLATFORM_STATE_DIR": str(tmp / "state"),
        "TSPLATFORM_KAFKA_BOOTSTRAP": bootstrap,
        "TSPLATFORM_SQL_SOURCE_DSN": dsn,
    }
    cmd = [sys.executable, "-m", "tsplatform.cli", "sql-source", "--table", "SENSOR_DATA_VIEW",
           "--id-column", "id", "--topic", topic, "--poll-interval", "0.2", "--batch-size", "5"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _published(bootstrap: str, topic: str) -> int:
    return len(_consume_all(bootstrap, topic))


def test_restarts_of_the_poller_and_of_mariadb_mid_stream_lose_and_repeat_nothing(
    mariadb_dsn: str, mariadb_service: ServiceManager, topic: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    sensors = add_sensors(mariadb_dsn, new_ss_base(), "e")
    ids = sorted(sensors)
    waves = [readings_for(ids, T0 - dt.timedelta(days=k), 12) for k in range(3)]
    waves[1] = waves[1][::-1]  # out of time order
    inserted: list[Reading] = []

    def insert(wave: list[Reading]) -> None:
        insert_readings(mariadb_dsn, wave)
        inserted.extend(wave)

    process = _poller(tmp_path, topic, mariadb_dsn, kafka_bootstrap)
    try:
        insert(waves[0])
        wait_for(lambda: _published(kafka_bootstrap, topic) >= len(inserted), "the first wave")
        process.send_signal(signal.SIGTERM)  # poller restart: stops after its batch and its save
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        insert(waves[1])
        process = _poller(tmp_path, topic, mariadb_dsn, kafka_bootstrap)
        wait_for(lambda: _published(kafka_bootstrap, topic) >= len(inserted), "the second wave")
        mariadb_service.stop("mariadb")  # MariaDB restart under a running poller
        _, err = process.communicate(timeout=120)
        assert process.returncode == 2 and "lost the database connection" in err, err
        mariadb_service.start("mariadb")
        insert(waves[2])
        process = _poller(tmp_path, topic, mariadb_dsn, kafka_bootstrap)
        wait_for(lambda: _published(kafka_bootstrap, topic) >= len(inserted), "the third wave")
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        mariadb_service.start("mariadb")  # no-op when running
    raw, quarantine, _ = land(tmp_path, topic)
    assert len(quarantine) == 0
    assert landed_multiset(raw) == expected_multiset(inserted, sensors)  # each row exactly once
