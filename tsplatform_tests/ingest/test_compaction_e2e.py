"""Compaction on a lake filled by real Kafka ingestion of many small runs, through the Dagster job.

Many small ingestion runs leave one file per run in each day partition; the compaction job compacts the
closed days; a redelivery of every offset afterwards lands nothing; a compaction SIGKILLed at any step
leaves a readable, exactly-once partition that a later compaction finishes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from tsplatform.catalog import Catalog
from tsplatform.ingest.compaction import COMPACTED_PREFIX, STAGING_DIR
from tsplatform.ingest.pipeline import ingest_once
from tsplatform.lake import Lake
from tsplatform.settings import Settings
from tsplatform_tests.ingest.test_ingest_e2e import _publish_simple, assert_landed_exactly_once, env_settings
from tsplatform_tests.ingest.workload import read_dataset, reading_multiset

pytestmark = pytest.mark.integration

FIRST_DAY = dt.date(2024, 8, 1)  # readings span FIRST_DAY .. FIRST_DAY + 2
RAW = "raw_readings"


@dataclass
class Ingested:
    settings: Settings
    sent: pd.DataFrame
    lake_dir: Path
    runs: int


def create_topic(bootstrap: str, partitions: int) -> str:
    """A unique topic whose partitions all have a leader (module-scoped twin of ``fresh_topic``)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    name = f"compaction-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
    for _ in range(100):
        topic = admin.list_topics(topic=name, timeout=10).topics.get(name)
        partitions_of = topic.partitions if topic is not None and topic.error is None else {}
        if len(partitions_of) == partitions and all(p.leader >= 0 for p in partitions_of.values()):
            return name
        time.sleep(0.1)
    pytest.fail(f"topic {name} has no leader for every partition after creation")


@pytest.fixture(scope="module")
def ingested(services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("compaction")
    topic = create_topic(services.kafka_bootstrap, partitions=2)
    sent = _publish_simple(services.kafka_bootstrap, topic, 12_000, FIRST_DAY, seed=21)
    with env_settings(tmp, topic, max_per_run=300) as settings:
        summary = ingest_once(settings)  # 40 runs of 300 records: ~40 small files per day
        assert summary.landed == len(sent)
        yield Ingested(settings, sent, tmp / "lake", len(summary.ranges))


def lake_copy(ingested: Ingested, tmp_path: Path) -> tuple[Settings, Lake]:
    """A private copy of the ingested lake, with settings pointing at it (a redelivery is one run)."""
    root = tmp_path / "lake"
    shutil.copytree(ingested.lake_dir, root)
    settings = ingested.settings.model_copy(update={"lake_root": str(root), "max_records_per_run": 10**6})
    return settings, Lake(str(root))


def day_frame(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    return frame[pd.to_datetime(frame["event_time"], utc=True).dt.date == day]


def test_the_job_compacts_closed_days_and_a_redelivery_lands_nothing(
    ingested: Ingested, tmp_path: Path
) -> None:
    from tsplatform.definitions import defs

    settings, lake = lake_copy(ingested, tmp_path)
    days = lake.days(RAW)
    assert days == [FIRST_DAY + dt.timedelta(days=i) for i in range(3)]
    files_before = {d: len(lake.partition_files(RAW, d)) for d in days}
    assert min(files_before.values()) >= 20, files_before
    catalog = Catalog(settings.mongo_uri, settings.mongo_db)
    try:
        docs_before = {d: catalog.sync_partition(lake, RAW, d) for d in days}
        job = defs.resolve_job_def("compact_raw_readings_job")
        today = (FIRST_DAY + dt.timedelta(days=3)).isoformat()  # the last day closed < 1 day ago
        run_config = {
            "ops": {"compact_raw_readings_op": {"config": {"today": today}}},
            "resources": {"lake": {"config": {"root": lake.root}}},
        }
        with dg.instance_for_test() as instance:
            first = job.execute_in_process(run_config=run_config, instance=instance)
            assert first.success
            observed = instance.fetch_observations(dg.AssetKey(RAW), limit=10).records
            second = job.execute_in_process(run_config=run_config, instance=instance)
            assert second.success
            assert second.output_for_node("compact_raw_readings_op") == []  # nothing left to do
        compacted = days[:2]
        assert sorted(r.partition_key for r in observed) == [d.isoformat() for d in compacted]
        for day in compacted:
            (name,) = [os.path.basename(f) for f in lake.partition_files(RAW, day)]
            assert name.startswith(COMPACTED_PREFIX)
            doc = catalog.partition(RAW, day)
            assert doc is not None and doc["files"] == 1
            assert (doc["rows"], doc["checksum"], doc["offset_ranges"]) == (
                docs_before[day]["rows"],
                docs_before[day]["checksum"],
                docs_before[day]["offset_ranges"],
            )
        assert len(lake.partition_files(RAW, days[2])) == files_before[days[2]]  # not closed long enough
    finally:
        catalog.close()
    raw = read_dataset(lake, RAW)
    assert_landed_exactly_once(raw, ingested.sent)
    again = ingest_once(settings, group=f"redeliver-{tmp_path.name}")  # every offset once more
    assert again.consumed == len(ingested.sent)
    assert again.landed == 0 and again.skipped_existing == len(ingested.sent)
    assert_landed_exactly_once(read_dataset(lake, RAW), ingested.sent)


_CRASHING_COMPACTION = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    import pyarrow.parquet as pq
    from tsplatform.ingest import compaction
    from tsplatform.lake import Lake

    root, day, step = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), sys.argv[3]
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if step == "mid-write":  # killed while the compacted file is half written
        compaction.ROW_GROUP_ROWS = 1000
        real = pq.ParquetWriter.write_batch
        def write_batch(self, batch, *a, **k):
            real(self, batch, *a, **k)
            die()
        pq.ParquetWriter.write_batch = write_batch
    elif step == "before-swap":  # everything written and synced, not swapped
        real_exchange = compaction.exchange_directories
        compaction.exchange_directories = lambda a, b: die()
    elif step == "after-swap":  # swapped, the old files not deleted yet
        real_exchange = compaction.exchange_directories
        def exchange(a, b):
            real_exchange(a, b)
            die()
        compaction.exchange_directories = exchange
    compaction.compact_day(Lake(root), day)
    print("not killed")
    """
)


@pytest.mark.parametrize("step", ["mid-write", "before-swap", "after-swap"])
def test_a_compaction_killed_at_any_step_leaves_a_correct_partition(
    ingested: Ingested, tmp_path: Path, step: str
) -> None:
    settings, lake = lake_copy(ingested, tmp_path)
    day = FIRST_DAY + dt.timedelta(days=1)
    expected = reading_multiset(day_frame(ingested.sent, day))
    files_before = len(lake.partition_files(RAW, day))
    proc = subprocess.run(
        [sys.executable, "-c", _CRASHING_COMPACTION, lake.root, day.isoformat(), step],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    staging = Path(lake.dataset_path(RAW)) / STAGING_DIR
    assert any(staging.iterdir())  # the killed compaction left its work behind
    names = [os.path.basename(f) for f in lake.partition_files(RAW, day)]
    if step == "after-swap":
        assert len(names) == 1 and names[0].startswith(COMPACTED_PREFIX)
    else:
        assert len(names) == files_before and not any(n.startswith(COMPACTED_PREFIX) for n in names)
    frame = lake.read_partition(RAW, day).to_pandas()
    assert frame.set_index(["partition", "offset"]).index.is_unique
    assert reading_multiset(frame) == expected
    # exactly once holds for a redelivery right after the crash ...
    again = ingest_once(settings, group=f"redeliver-{step}-{tmp_path.name}")
    assert again.landed == 0 and again.skipped_existing == len(ingested.sent)
    # ... and the next compaction removes the leftovers and finishes the day
    from tsplatform.ingest.compaction import compact_day

    result = compact_day(lake, day)
    assert result.compacted == (step != "after-swap")
    assert not any(staging.iterdir())
    assert len(lake.partition_files(RAW, day)) == 1
    frame = lake.read_partition(RAW, day).to_pandas()
    assert reading_multiset(frame) == expected and frame.set_index(["partition", "offset"]).index.is_unique
    assert json.loads(lake.read_metadata(RAW, "_offset_marks.json") or b"{}")  # marks still there
