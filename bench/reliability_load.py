"""Reliability under load: many readings of many series through ingestion and the daily graph.

    .venv/bin/python bench/reliability_load.py                                  # 10M readings, 1,000 series
    .venv/bin/python bench/reliability_load.py --readings 1000000 --graph-days 1   # quicker

Starts its own Kafka and MongoDB-wire server (free ports, temp state dir, stopped at the end). The readings
(synthetic: 1,000 series by default, 10-minute grid, values from a seeded random walk) are published in
``--runs`` equal rounds, each over its own days; after each round one ``tsplatform ingest --once`` process
lands it (with the catalog). Before round 2 a year of day partitions (365 small files) is added to the lake,
so rounds 2.. measure ingestion with the lake full. Then ``validated_readings`` (``--graph-select``: more of
the graph, e.g. all of ``bench.graph_day.GRAPH_ASSETS`` comma-separated) is materialized on Spark for
``--graph-days`` days by the Dagster CLI, one process per day.

Reported per process: wall and CPU seconds, readings/s, and the peak RSS of the process tree (sampled every
50 ms with psutil: the Spark JVM is a child of the Dagster process); also the broker's and MongoDB's peak
RSS. Checked: every published reading landed exactly once (count and unique offsets), nothing quarantined,
validated + rejected = raw for each graph day. Exits 1 when anything was lost.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa

REPO_ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as ``python bench/reliability_load.py``: make ``bench`` importable
    sys.path.insert(0, str(REPO_ROOT))
from bench.jars_dir import jars_dir  # noqa: E402  (after the path fix above)

START_DAY = dt.date(2025, 1, 1)


@dataclass
class ProcessFigures:
    name: str
    readings: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.readings / self.wall_s if self.wall_s else float("nan")


class PeakRss:
    """Samples a process tree every ``interval_s`` (``bench.process_tree.sample_tree``): ``stop()`` returns
    the tree's peak RSS in bytes; ``cpu_s`` its CPU, the processes nobody waits for (the Spark JVM, Python
    workers) included."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        from bench.process_tree import Sampled, sample_tree

        self.seen, self._stop = Sampled(), threading.Event()
        self._thread: threading.Thread | None = None
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            args = (root, self.seen, self._stop, interval_s)
            self._thread = threading.Thread(target=sample_tree, args=args, daemon=True)
            self._thread.start()

    @property
    def cpu_s(self) -> float:
        return self.seen.cpu_s

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        return self.seen.peak_total


def run_measured(name: str, cmd: list[str], env: dict[str, str], readings: int) -> ProcessFigures:
    """Run ``cmd`` to completion; wall, CPU and peak RSS of its process tree (sampled, JVM included)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = PeakRss(proc.pid)
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    peak = sampler.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{out.decode(errors='replace')[-3000:]}")
    return ProcessFigures(name, readings, wall, sampler.cpu_s, peak / 2**20)


def readings_frame(n: int, series: int, first_day: dt.date, days: int, seed: int) -> pd.DataFrame:
    """``n`` readings of ``series`` series evenly over ``days`` days (distinct times per series)."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    s = idx % series
    step_s = max(1, days * 86_400 // max(1, n // series))
    slot = idx // series
    t0 = pd.Timestamp(first_day, tz="UTC")
    return pd.DataFrame(
        {
            "position": np.char.add("site ", (s // 4).astype(str)),
            "type_name": np.array(["CO2", "temp", "humidity", "power"])[s % 4],
            "event_time": t0 + pd.to_timedelta(slot * step_s + s % step_s, unit="s"),
            "value": np.round(400 + np.cumsum(rng.normal(0, 1, n)) % 200, 3),
            "unit": "u",
            "rstart": 0.0,
            "rend": 100_000.0,
        }
    )


def produce(bootstrap: str, topic: str, frame: pd.DataFrame) -> None:
    from confluent_kafka import Producer

    from tsplatform.ingest.envelope import encode_readings, message_keys

    failures: list[str] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 500_000, "enable.idempotence": True})  # fmt: skip
    for start in range(0, len(frame), 50_000):
        part = frame.iloc[start : start + 50_000]
        for value, key in zip(encode_readings(part), message_keys(part), strict=True):
            while True:
                try:
                    producer.produce(
                        topic, value=value, key=key, on_delivery=lambda e, _m: e and failures.append(str(e))
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
    if producer.flush(600) or failures:
        raise SystemExit(f"producing failed: {failures[:1]}")


def prefill_year(lake_root: str, before: dt.date, rows_per_day: int = 1_000) -> None:
    """365 day partitions of ``raw_readings`` ending the day before ``before`` (one small file each)."""
    from tsplatform.ids import series_id
    from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
    from tsplatform.lake import Lake

    lake = Lake(lake_root)
    for k in range(1, 366):
        day = before - dt.timedelta(days=k)
        t0 = pd.Timestamp(day, tz="UTC")
        frame = pd.DataFrame({"position": "old site", "type_name": "CO2",
                              "event_time": t0 + pd.to_timedelta(np.arange(rows_per_day) * 60, unit="s"),
                              "value": 1.0})  # fmt: skip
        frame["series_id"] = series_id("old site", "CO2")
        frame["event_time"] = frame["event_time"].dt.as_unit("ms")
        frame["topic"], frame["partition"], frame["offset"] = (
            "prefill",
            0,
            np.arange(rows_per_day) + k * rows_per_day,
        )
        frame["ingested_at"] = t0.as_unit("ms")
        frame["schema_id"] = "prefill"
        for f in RAW_READINGS_SCHEMA:
            if f.name not in frame:
                frame[f.name] = None
        table = pa.Table.from_pandas(frame[[f.name for f in RAW_READINGS_SCHEMA]], schema=RAW_READINGS_SCHEMA)
        lake.write_file("raw_readings", day, "part-prefill.parquet", table)


def landed(lake_root: str, topic: str) -> tuple[int, int]:
    """(rows of ``topic`` in raw_readings, distinct (partition, offset) among them)."""
    import pyarrow.compute as pc

    from tsplatform.lake import Lake

    lake = Lake(lake_root)
    table = lake.read_days(
        "raw_readings", lake.days("raw_readings"), columns=["topic", "partition", "offset"]
    )
    if table is None:
        return 0, 0
    table = table.filter(pc.equal(table["topic"], topic))
    keys = pc.add(pc.multiply(pc.cast(table["partition"], pa.int64()), 1 << 40), table["offset"])
    return table.num_rows, len(pc.unique(keys))


def run(args: argparse.Namespace) -> int:
    from confluent_kafka.admin import AdminClient, NewTopic

    from tsplatform.services.manager import ServiceManager

    work = Path(tempfile.mkdtemp(prefix="tsplatform-load-"))
    jars = jars_dir()
    manager = ServiceManager.up_on_free_ports(work / "state", jars_dir=jars)
    service_peaks = {s.name: PeakRss(s.pid, 0.5) for s in manager.status() if s.pid}
    lake_root = str(work / "lake")
    topic = "load-readings"
    admin = AdminClient({"bootstrap.servers": manager.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=args.partitions, replication_factor=1)])[
        topic
    ].result(60)
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DAGSTER_HOME": str(home),
        "TSPLATFORM_STATE_DIR": str(work / "state"),
        "TSPLATFORM_JARS_DIR": jars,
        "TSPLATFORM_KAFKA_BOOTSTRAP": manager.kafka_bootstrap,
        "TSPLATFORM_MONGO_URI": manager.mongo_uri,
        "TSPLATFORM_TOPICS": topic,
        "TSPLATFORM_LAKE_ROOT": lake_root,
        "TSPLATFORM_START_DATE": "2023-01-01",
        "TSPLATFORM_MAX_RECORDS_PER_RUN": str(args.readings),
    }
    results: list[ProcessFigures] = []
    lost = False
    per_run = args.readings // args.runs
    days_per_run = max(1, args.days // args.runs)
    tsplatform_bin = str(Path(sys.executable).with_name("tsplatform"))
    try:
        total = 0
        for r in range(args.runs):
            if r == 1:
                prefill_year(lake_root, START_DAY)
            first = START_DAY + dt.timedelta(days=r * days_per_run)
            frame = readings_frame(per_run, args.series, first, days_per_run, seed=r)
            produce(manager.kafka_bootstrap, topic, frame)
            figures = run_measured(f"ingest run {r + 1}" + (" (year present)" if r else " (empty lake)"),
                                   [tsplatform_bin, "ingest", "--once"], env, per_run)  # fmt: skip
            total += per_run
            rows, unique = landed(lake_root, topic)
            figures.extra = {"landed_total": rows, "unique_offsets": unique, "published_total": total}
            lost |= rows != total or unique != total
            results.append(figures)
            print(f"{figures.name}: {figures.rate:,.0f} readings/s, peak RSS {figures.peak_rss_mb:,.0f} MB, "
                  f"landed {rows:,}/{total:,}", flush=True)  # fmt: skip
        from tsplatform.lake import Lake

        lake = Lake(lake_root)
        for g in range(args.graph_days):
            day = START_DAY + dt.timedelta(days=g)
            raw_rows = lake.read_partition("raw_readings", day, columns=["offset"]).num_rows
            cmd = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m",
                   "tsplatform.definitions", "--select", args.graph_select,
                   "--partition", day.isoformat()]  # fmt: skip
            what = "validated_readings" if args.graph_select == "validated_readings" else "the daily graph"
            figures = run_measured(f"{what} {day}", cmd, env, raw_rows)
            valid = lake.read_partition("validated_readings", day, columns=["offset"]).num_rows
            rejected = lake.read_partition("validation_rejects", day, columns=["offset"])
            n_rej = 0 if rejected is None else rejected.num_rows
            figures.extra = {"raw": raw_rows, "valid": valid, "rejected": n_rej}
            lost |= valid + n_rej != raw_rows
            results.append(figures)
            print(f"{figures.name}: {raw_rows:,} readings in {figures.wall_s:.0f} s, peak RSS "
                  f"{figures.peak_rss_mb:,.0f} MB", flush=True)  # fmt: skip
    finally:
        peaks = {n: s.stop() / 2**20 for n, s in service_peaks.items()}
        manager.down()
        shutil.rmtree(work, ignore_errors=True)
    print()
    command = " ".join(["bench/reliability_load.py", *sys.argv[1:]])
    print(f"`{command}`: {args.readings:,} readings, {args.series:,} series, {args.runs} ingestion runs; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print()
    print("| process | readings | wall s | CPU s | readings/s | readings/CPU-s | peak RSS MB | check |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for f in results:
        cpu_rate = f.readings / f.cpu_s if f.cpu_s else float("nan")
        print(f"| {f.name} | {f.readings:,} | {f.wall_s:.1f} | {f.cpu_s:.1f} | {f.rate:,.0f} | "
              f"{cpu_rate:,.0f} | {f.peak_rss_mb:,.0f} | {json.dumps(f.extra)} |")  # fmt: skip
    for name, mb in peaks.items():
        print(f"| {name} server (whole run) | | | | | | {mb:,.0f} | |")
    print(f"\nnothing lost: {not lost}")
    return 1 if lost else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--series", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=10, help="days the readings span (split over the runs)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--graph-days", type=int, default=1)
    parser.add_argument(
        "--graph-select", default="validated_readings",
        help="assets materialized per graph day, comma-separated (the whole data graph: the names in "
        "bench.graph_day.GRAPH_ASSETS)",
    )  # fmt: skip
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
