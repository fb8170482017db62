"""Memory across repeated ingestion runs in ONE process: leak, or allocator plateau?

    .venv/bin/python -m bench.ingest_rss_repeat --runs 10      # 20,000 readings of 200 series a run

Starts its own Kafka broker and MongoDB-wire server, then repeats: publish a day of readings, land them with
``ingest_once`` in this process (a year of day partitions present from run 2, as in
``tsplatform_tests/reliability/test_load.py``). After each run it prints this process's RSS and the Python
heap that ``tracemalloc`` traces, then the lines whose traced memory grew most from run 2 to the last.
A leak of each run's data grows both without bound; allocator and library caches (glibc arenas, Arrow's
pool, librdkafka) raise RSS for a few runs and then stay level while the Python heap stays flat.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import shutil
import tempfile
import tracemalloc
from pathlib import Path

import psutil
import pyarrow as pa

from bench.jars_dir import jars_dir
from bench.reliability_load import START_DAY, prefill_year, produce, readings_frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--readings", type=int, default=20_000, help="readings per run")
    parser.add_argument("--series", type=int, default=200)
    args = parser.parse_args(argv)

    from confluent_kafka.admin import AdminClient, NewTopic

    from tsplatform.services.manager import ServiceManager

    work = Path(tempfile.mkdtemp(prefix="tsplatform-rss-"))
    jars = jars_dir()
    manager = ServiceManager.up_on_free_ports(work / "state", jars_dir=jars)
    try:
        topic = "rss-repeat"
        admin = AdminClient({"bootstrap.servers": manager.kafka_bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(60)
        os.environ.update(
            TSPLATFORM_KAFKA_BOOTSTRAP=manager.kafka_bootstrap,
            TSPLATFORM_MONGO_URI=manager.mongo_uri,
            TSPLATFORM_TOPICS=topic,
            TSPLATFORM_LAKE_ROOT=str(work / "lake"),
            TSPLATFORM_MAX_RECORDS_PER_RUN=str(args.readings),
        )
        from tsplatform.catalog import Catalog
        from tsplatform.ingest.pipeline import ingest_once
        from tsplatform.lake import Lake
        from tsplatform.settings import get_settings

        get_settings.cache_clear()
        settings = get_settings()
        lake, catalog = Lake(settings.lake_uri), Catalog(settings.mongo_uri, settings.mongo_db)
        process = psutil.Process()
        tracemalloc.start()
        baseline = None
        print(
            "| run | RSS after publishing MB | RSS after landing MB | Python heap MB (tracemalloc) | landed |"
        )
        print("|---:|---:|---:|---:|---:|")
        for r in range(args.runs):
            if r == 1:
                prefill_year(lake.root, START_DAY, rows_per_day=100)
            frame = readings_frame(args.readings, args.series, START_DAY + dt.timedelta(days=r), 1, seed=r)
            produce(manager.kafka_bootstrap, topic, frame)
            del frame
            gc.collect()
            published_mb = process.memory_info().rss / 2**20
            summary = ingest_once(settings, catalog=catalog)
            gc.collect()
            landed_mb = process.memory_info().rss / 2**20
            heap_mb = tracemalloc.get_traced_memory()[0] / 2**20
            arrow_mb = pa.total_allocated_bytes() / 2**20
            print(
                f"| {r + 1} | {published_mb:.0f} | {landed_mb:.0f} | {heap_mb:.1f} | {arrow_mb:.1f} "
                f"| {process.num_threads()} | {process.num_fds()} | {summary.landed:,} |",
                flush=True,
            )
            if r == 1:
                baseline = tracemalloc.take_snapshot()
        if baseline is not None:
            print("\ntraced growth from run 2 to the last, top lines:")
            for stat in tracemalloc.take_snapshot().compare_to(baseline, "lineno")[:5]:
                print(f"- {stat}")
        catalog.close()
    finally:
        manager.down()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
