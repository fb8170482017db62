"""Load, bounded: readings of many series in 5 repeated ingestion runs, a year of day partitions present
from the second run on. Nothing lost; memory does not grow from run to run; the landing reads no file of
the year's partitions (what keeps throughput from falling as the lake fills: timings are measured by
``bench/reliability_load.py``, BENCHMARKS.md "Reliability", never asserted here)."""

from __future__ import annotations

import datetime as dt
import gc

import psutil
import pytest

from bench.reliability_load import START_DAY, prefill_year, produce, readings_frame
from tsplatform.catalog import Catalog
from tsplatform.ingest import landing, offset_marks
from tsplatform.ingest.pipeline import ingest_once
from tsplatform.lake import Lake
from tsplatform_tests.ingest.test_ingest_e2e import env_settings
from tsplatform_tests.ingest.workload import read_dataset
from tsplatform_tests.reliability.budget import scaled

pytestmark = [pytest.mark.load, pytest.mark.integration]

RUNS = 5
#: RSS this process may gain between the second and the last run (allocator caches, imports); a leak of
#: each run's data would exceed it in the full version (1M readings a run).
RSS_GROWTH_LIMIT_MB = 150


def test_repeated_runs_with_a_full_lake(services, fresh_topic, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    per_run = scaled(20_000, 1_000_000)
    series = scaled(200, 1_000)
    topic = fresh_topic(partitions=2, prefix="load")
    read_days: list[dt.date] = []
    real_landed_offsets = offset_marks.landed_offsets

    def recording(lake, dataset, day):  # type: ignore[no-untyped-def]
        read_days.append(day)
        return real_landed_offsets(lake, dataset, day)

    for module in (landing, offset_marks):  # every caller of landed_offsets
        monkeypatch.setattr(module, "landed_offsets", recording)
    rss_mb: list[float] = []
    process = psutil.Process()
    with env_settings(tmp_path, topic, max_per_run=per_run) as settings:
        lake, catalog = Lake(settings.lake_uri), Catalog(settings.mongo_uri, settings.mongo_db)
        try:
            for r in range(RUNS):
                if r == 1:
                    prefill_year(lake.root, START_DAY, rows_per_day=100)
                frame = readings_frame(per_run, series, START_DAY + dt.timedelta(days=r), 1, seed=r)
                produce(services.kafka_bootstrap, topic, frame)
                summary = ingest_once(settings, catalog=catalog)
                assert summary.landed == per_run and summary.quarantined == 0
                gc.collect()
                rss_mb.append(process.memory_info().rss / 2**20)
            raw = read_dataset(lake, "raw_readings")
            ours = raw[raw["topic"] == topic]
            assert len(ours) == RUNS * per_run
            assert ours.set_index(["partition", "offset"]).index.is_unique
            assert ours["series_id"].nunique() == series
            assert len(lake.days("raw_readings")) == 365 + RUNS
            year = {START_DAY - dt.timedelta(days=k) for k in range(1, 366)}
            assert not year & set(read_days)  # no landed file of an untouched day was read
            for r in range(RUNS):
                doc = catalog.partition("raw_readings", START_DAY + dt.timedelta(days=r))
                assert doc is not None and doc["rows"] == per_run
        finally:
            catalog.close()
    print(f"\nload: {RUNS} runs x {per_run:,} readings of {series} series; RSS after each run (MB): "
          f"{[round(m) for m in rss_mb]}")  # fmt: skip
    assert rss_mb[-1] - rss_mb[1] < RSS_GROWTH_LIMIT_MB, rss_mb
