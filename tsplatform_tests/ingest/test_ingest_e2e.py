"""End-to-end ingestion on the real broker, MongoDB-wire server and a real Dagster instance.

The acceptance workload: 200k+ readings of 20 series over 10 days, shuffled, 1% malformed and 2%
duplicated messages, hostile series names; the Kafka offset sensor requests runs and they execute.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from confluent_kafka import Producer

from tsplatform.catalog import Catalog
from tsplatform.ids import is_series_id, series_id
from tsplatform.ingest.envelope import encode_readings, message_keys
from tsplatform.ingest.pipeline import ingest_once
from tsplatform.lake import Lake
from tsplatform.resources.kafka import KafkaResource
from tsplatform.settings import Settings, get_settings
from tsplatform_tests.ingest.workload import (
    HOSTILE_POSITIONS,
    Workload,
    make_workload,
    publish,
    read_dataset,
    reading_multiset,
)

pytestmark = pytest.mark.integration

RAW = dg.AssetKey("raw_readings")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Ingested:
    workload: Workload
    lake: Lake
    catalog: Catalog
    instance: dg.DagsterInstance
    cursor: str | None
    runs: int


def _env(tmp: Path, topic: str, max_per_run: int) -> dict[str, str]:
    return {
        "TSPLATFORM_TOPICS": topic,
        "TSPLATFORM_LAKE_ROOT": str(tmp / "lake"),
        "TSPLATFORM_MONGO_DB": f"ingest_{topic.replace('-', '_')}",
        "TSPLATFORM_CONSUMER_GROUP": f"g-{topic}",
        "TSPLATFORM_MAX_RECORDS_PER_RUN": str(max_per_run),
    }


@contextlib.contextmanager
def env_settings(tmp: Path, topic: str, max_per_run: int) -> Iterator[Settings]:
    """Settings of a test's own topic, lake, catalog database and group (``_env``); env restored after."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _env(tmp, topic, max_per_run).items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        try:
            yield get_settings()
        finally:
            get_settings.cache_clear()


def run_sensor_and_runs(instance: dg.DagsterInstance, cursor: str | None) -> tuple[str | None, int]:
    """One sensor tick, then execute every run it requested (as the daemon would)."""
    from tsplatform.assets.ingest import kafka_offset_sensor
    from tsplatform.definitions import defs

    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"kafka": KafkaResource()})
    result = kafka_offset_sensor(ctx)
    if isinstance(result, dg.SkipReason):
        return cursor, 0
    job = defs.resolve_job_def("ingest_kafka")
    for request in result.run_requests:
        outcome = job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
        assert outcome.success
    return result.cursor, len(result.run_requests)


@pytest.fixture(scope="module")
def ingested(services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:  # type: ignore[no-untyped-def]
    from confluent_kafka.admin import AdminClient, NewTopic

    tmp = tmp_path_factory.mktemp("e2e")
    topic = f"sensor_data_source_SENSOR_DATA_VIEW-{os.getpid()}"
    admin = AdminClient({"bootstrap.servers": services.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)
    workload = make_workload(topic, n_readings=205_000, n_series=20, n_days=10)
    publish(workload, services.kafka_bootstrap)
    with env_settings(tmp, topic, max_per_run=60_000) as settings:
        catalog = Catalog(settings.mongo_uri, settings.mongo_db)
        with dg.instance_for_test() as instance:
            cursor, runs = run_sensor_and_runs(instance, None)
            yield Ingested(workload, Lake(settings.lake_uri), catalog, instance, cursor, runs)
        catalog.close()


def test_raw_readings_hold_each_valid_message_exactly_once(ingested: Ingested) -> None:
    wl = ingested.workload
    assert ingested.runs >= 4  # 210k messages at 60k a run: the sensor split the work
    raw = read_dataset(ingested.lake, "raw_readings")
    landed = set(zip(raw["partition"].astype(int), raw["offset"].astype(int), strict=True))
    assert len(raw) == len(landed) == len(wl.valid_offsets) == len(wl.readings)
    assert landed == wl.valid_offsets
    assert reading_multiset(raw) == reading_multiset(wl.readings)  # duplicates published twice: twice here
    assert (raw["topic"] == wl.topic).all()
    assert raw["series_id"].map(is_series_id).all()


def test_quarantine_holds_exactly_the_malformed_records(ingested: Ingested) -> None:
    wl = ingested.workload
    quarantine = read_dataset(ingested.lake, "quarantine")
    quarantined = set(zip(quarantine["partition"].astype(int), quarantine["offset"].astype(int), strict=True))
    assert quarantined == wl.malformed_offsets
    assert len(quarantine) == len(wl.malformed)
    assert quarantine["reason"].str.len().gt(0).all()
    assert Counter(quarantine["raw"].map(bytes)) == Counter(wl.malformed)  # original bytes kept
    reasons = set(quarantine["reason"].str.split(":").str[0])
    assert len(reasons) >= 5, reasons


def test_raw_readings_materialized_for_exactly_the_days_touched(ingested: Ingested) -> None:
    materialized = ingested.instance.get_materialized_partitions(RAW)
    expected = {d.isoformat() for d in ingested.workload.days}
    assert len(expected) == 10
    assert materialized == expected
    assert {d.isoformat() for d in ingested.lake.days("raw_readings")} == expected


def test_catalog_agrees_with_the_lake(ingested: Ingested) -> None:
    raw = read_dataset(ingested.lake, "raw_readings")
    per_day = raw.groupby(raw["event_time"].dt.date).size()
    for day, rows in per_day.items():
        doc = ingested.catalog.partition("raw_readings", day)
        assert doc is not None and doc["rows"] == rows
        assert sum(r["rows"] for r in doc["offset_ranges"]) == rows
    per_series = raw.groupby("series_id").size()
    docs = {d["_id"]: d for d in ingested.catalog.all_series()}
    assert set(docs) == set(per_series.index)
    assert len(docs) == 20
    for sid, rows in per_series.items():
        doc = docs[sid]
        assert doc["rows"] == rows
        assert sid == series_id(doc["position"], doc["type_name"])
        times = raw.loc[raw["series_id"] == sid, "event_time"]
        assert pd.Timestamp(doc["first_event_time"]) == times.min()
        assert pd.Timestamp(doc["last_event_time"]) == times.max()
    qdocs = ingested.catalog.partitions("quarantine")
    assert sum(d["rows"] for d in qdocs) == len(ingested.workload.malformed)


def test_hostile_series_names_land_inside_the_lake_and_round_trip(ingested: Ingested) -> None:
    root = Path(ingested.lake.root).resolve()
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root)
        assert len(path.name) < 255
    raw = read_dataset(ingested.lake, "raw_readings")
    assert set(HOSTILE_POSITIONS) <= set(raw["position"])
    for name in HOSTILE_POSITIONS:
        assert (raw["position"] == name).sum() == (ingested.workload.readings["position"] == name).sum()


def test_redelivered_offsets_do_not_duplicate(ingested: Ingested) -> None:
    before = read_dataset(ingested.lake, "raw_readings")
    q_before = read_dataset(ingested.lake, "quarantine")
    settings = get_settings()
    # cursor reset: a fresh group starts from the beginning of every partition
    again = ingest_once(settings, group="reset-group")
    assert again.consumed == len(ingested.workload.sent)
    assert again.landed == 0 and again.quarantine_landed == 0
    assert again.skipped_existing == len(ingested.workload.sent)
    # a sensor with a reset cursor requests the same ranges; re-executing them adds nothing
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TSPLATFORM_CONSUMER_GROUP", "another-reset-group")
        get_settings.cache_clear()
        with dg.instance_for_test() as instance:
            _cursor, runs = run_sensor_and_runs(instance, None)
    get_settings.cache_clear()
    assert runs >= 4
    after = read_dataset(ingested.lake, "raw_readings")
    assert len(after) == len(before)
    assert reading_multiset(after) == reading_multiset(before)
    assert len(read_dataset(ingested.lake, "quarantine")) == len(q_before)


def test_late_data_rematerializes_an_old_day(services, fresh_topic, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Its own topic, lake and instance (the module's lake stays as the exact-count tests expect)."""
    topic = fresh_topic(partitions=2)
    first_day, old_day = dt.date(2024, 8, 1), dt.date(2024, 8, 3)
    _publish_simple(services.kafka_bootstrap, topic, 3_000, first_day, seed=11)  # 3 days from first_day
    with env_settings(tmp_path, topic, max_per_run=10_000) as settings, dg.instance_for_test() as instance:
        catalog = Catalog(settings.mongo_uri, settings.mongo_db)
        lake = Lake(settings.lake_uri)
        try:
            cursor, runs = run_sensor_and_runs(instance, None)
            assert runs == 1
            days = [first_day + dt.timedelta(days=i) for i in range(3)]
            assert instance.get_materialized_partitions(RAW) == {d.isoformat() for d in days}
            before = lake.read_partition("raw_readings", old_day).to_pandas()

            def materializations(day: dt.date) -> list:
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=RAW, asset_partitions=[day.isoformat()]), limit=100
                ).records
                return list(records)

            assert len(materializations(old_day)) == 1
            late = pd.DataFrame(
                {
                    "position": ["late sensor", "광 주 A"],
                    "type_name": ["CO2", "CO2"],
                    "event_time": [pd.Timestamp(old_day, tz="UTC") + pd.Timedelta(hours=h) for h in (3, 5)],
                    "value": [111.0, 222.0],
                }
            )
            producer = Producer({"bootstrap.servers": services.kafka_bootstrap})
            for key, value in zip(message_keys(late), encode_readings(late), strict=True):
                producer.produce(topic, key=key, value=value)
            assert producer.flush(30) == 0
            _cursor, runs = run_sensor_and_runs(instance, cursor)
            assert runs == 1
            records = materializations(old_day)
            assert len(records) == 2
            day = lake.read_partition("raw_readings", old_day).to_pandas()
            assert len(day) == len(before) + 2
            assert day.loc[day["position"] == "late sensor", "value"].tolist() == [111.0]
            assert day.loc[day["position"] == "광 주 A", "value"].tolist() == [222.0]
            # only that day was materialized by the late run
            latest_run = records[0].event_log_entry.run_id
            touched = {
                r.partition_key
                for r in instance.fetch_materializations(RAW, limit=1000).records
                if r.event_log_entry.run_id == latest_run
            }
            assert touched == {old_day.isoformat()}
            assert all(len(materializations(d)) == 1 for d in days if d != old_day)
        finally:
            catalog.close()


# --- failures ---------------------------------------------------------------------------------
def _publish_simple(bootstrap: str, topic: str, n: int, day: dt.date, seed: int = 3) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "position": [f"pos {i % 7}" for i in range(n)],
            "type_name": "CO2",
            "event_time": pd.Timestamp(day, tz="UTC")
            + pd.to_timedelta(rng.integers(0, 3 * 86_400, n), unit="s"),
            "value": rng.normal(400, 10, n).round(2),
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for key, value in zip(message_keys(frame), encode_readings(frame), strict=True):
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    return frame


def assert_landed_exactly_once(raw: pd.DataFrame, sent: pd.DataFrame) -> None:
    """Every published reading is in the lake once: same count, unique offsets, same readings."""
    assert len(raw) == len(sent)
    assert raw.set_index(["partition", "offset"]).index.is_unique
    assert reading_multiset(raw) == reading_multiset(sent)


def test_broker_killed_mid_ingestion_loses_and_duplicates_nothing(services, fresh_topic, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tsplatform.ingest import landing

    topic = fresh_topic(partitions=2)
    sent = _publish_simple(services.kafka_bootstrap, topic, 120_000, dt.date(2024, 5, 1))
    with env_settings(tmp_path, topic, max_per_run=4_000) as settings, pytest.MonkeyPatch.context() as mp:
        lake = Lake(settings.lake_uri)
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["summary"] = ingest_once(settings)
            except Exception as exc:
                outcome["error"] = exc

        # the first landing pauses the run until the broker is down: the kill lands mid-ingestion however
        # fast or slow the machine is
        first_landed, broker_down = threading.Event(), threading.Event()
        land_readings = landing.land_readings

        def pausing_land_readings(*args: object, **kwargs: object) -> object:
            result = land_readings(*args, **kwargs)  # type: ignore[arg-type]
            if not first_landed.is_set():
                first_landed.set()
                assert broker_down.wait(300), "the test never killed the broker"
            return result

        mp.setattr(landing, "land_readings", pausing_land_readings)  # called by WaveLanding
        worker = threading.Thread(target=run)
        worker.start()
        assert first_landed.wait(300), f"ingestion did not land anything: {outcome}"
        assert lake.days("raw_readings")
        services.stop("kafka", kill=True)
        killed_while_running = worker.is_alive()
        broker_down.set()
        time.sleep(3)  # the outage's length (any length must give the same lake)
        services.start("kafka")
        worker.join(300)
        assert not worker.is_alive()
        if "error" in outcome:  # the run may fail while the broker is down; re-execution must finish it
            ingest_once(settings)
        ingest_once(settings)  # and a further drain finds nothing new
        raw = read_dataset(lake, "raw_readings")
    assert killed_while_running
    assert_landed_exactly_once(raw, sent)


def test_ingestion_process_sigkilled_mid_write_recovers_exactly_once(services, fresh_topic, tmp_path) -> None:  # type: ignore[no-untyped-def]
    topic = fresh_topic(partitions=2)
    sent = _publish_simple(services.kafka_bootstrap, topic, 150_000, dt.date(2024, 6, 1), seed=5)
    env = {**os.environ, **_env(tmp_path, topic, max_per_run=10_000)}
    lake = Lake(str(tmp_path / "lake"))
    args = ["ingest", "--once", "--no-catalog"]
    raw_dir = tmp_path / "lake" / "raw_readings"
    for attempt in range(3):
        # attempt k stops with its (k+2)-th file staged but not moved (tsplatform_tests.ingest.paused_ingest),
        # and is SIGKILLed there: always mid-write, whatever the machine's speed
        marker = tmp_path / f"paused-{attempt}"
        cmd = [
            sys.executable,
            "-m",
            "tsplatform_tests.ingest.paused_ingest",
            str(attempt + 2),
            str(marker),
            *args,
        ]
        log = tmp_path / f"paused-{attempt}.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 600
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the marker: how long it takes does not matter
        if not marker.exists():
            proc.kill()
            pytest.fail(f"attempt {attempt} did not pause (exit {proc.wait(60)}): {log.read_text()[-2000:]}")
        staged = Path(marker.read_text())
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(60) == -signal.SIGKILL
        assert staged.is_file() and staged.parent.resolve() == (raw_dir / "_staging").resolve()  # mid-write
        # whatever is visible is complete, readable and duplicate-free
        raw = read_dataset(lake, "raw_readings")
        assert len(raw) and raw.set_index(["partition", "offset"]).index.is_unique
    cmd = [str(Path(sys.executable).with_name("tsplatform")), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    raw = read_dataset(lake, "raw_readings")
    assert_landed_exactly_once(raw, sent)
    assert not any((raw_dir / "_staging").iterdir())  # the orphans of the killed writers were removed


def test_catalog_down_fails_the_run_clearly_and_reexecution_syncs(services, fresh_topic, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tsplatform.catalog import CatalogUnavailable
    from tsplatform.ingest.consuming import end_offsets, plan_ranges, start_positions
    from tsplatform.ingest.pipeline import ingest_ranges
    from tsplatform.services.process import free_port

    topic = fresh_topic(partitions=1)
    sent = _publish_simple(services.kafka_bootstrap, topic, 2_000, dt.date(2024, 7, 1), seed=9)
    with env_settings(tmp_path, topic, max_per_run=10_000) as settings:
        offsets = end_offsets(settings, [topic])
        ends = {tp: high for tp, (_low, high, _committed) in offsets.items()}
        (run,) = plan_ranges(start_positions(offsets), ends, 10_000)
        lake = Lake(settings.lake_uri)
        dead = Catalog(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", "x",
                       timeout_ms=300, retries=2, backoff_s=0.05)  # fmt: skip
        with pytest.raises(CatalogUnavailable) as failure:
            ingest_ranges(settings, run, lake=lake, catalog=dead, commit=False)
        message = str(failure.value)
        assert "TSPLATFORM_MONGO_URI" in message and "3 attempts" in message
        # the lake holds the range completely (it is written before the catalog), nothing half-done
        assert len(read_dataset(lake, "raw_readings")) == len(sent)
        live = Catalog(settings.mongo_uri, settings.mongo_db)
        try:
            again = ingest_ranges(settings, run, lake=lake, catalog=live)  # re-execution of the failed run
            assert again.landed == 0 and again.skipped_existing == len(sent)
            docs = live.partitions("raw_readings")
            assert sum(d["rows"] for d in docs) == len(sent)
        finally:
            live.close()


def test_a_run_landing_in_waves_lands_exactly_once(services, fresh_topic, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tsplatform.ingest import consuming, pipeline

    topic = fresh_topic(partitions=2)
    sent = _publish_simple(services.kafka_bootstrap, topic, 30_000, dt.date(2024, 7, 1), seed=9)
    monkeypatch.setattr(pipeline, "LANDING_WAVE_ROWS", 7_000)  # ~5 waves in one run
    with env_settings(tmp_path, topic, max_per_run=1_000_000) as settings:
        lake = Lake(settings.lake_uri)
        first = ingest_once(settings)
        offsets = consuming.end_offsets(settings, [topic])
        ranges = [
            consuming.OffsetRange(topic, partition, low, high)
            for (_t, partition), (low, high, _c) in offsets.items()
        ]
        again = pipeline.ingest_ranges(settings, ranges, commit=False)  # the run re-executed
        raw = read_dataset(lake, "raw_readings")
    assert first.readings == first.landed == len(sent)
    files_per_day = {day: len(lake.partition_files("raw_readings", day)) for day in first.days}
    assert min(files_per_day.values()) >= 3, files_per_day  # several waves touched every day
    assert first.days == dict(Counter(pd.to_datetime(raw["event_time"], utc=True).dt.date))
    assert again.landed == 0 and again.skipped_existing == len(sent)
    assert_landed_exactly_once(raw, sent)
