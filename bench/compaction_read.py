"""Downstream read time of a day of 2,880 raw files, before and after compaction.

A stream landed every 30 s leaves 2,880 files in a day partition of ``raw_readings``. This writes such a
day (``bench.day_generator``: ``--series`` x ``--samples`` readings, default 10,000 x 144 = 1.44M, in
``--files`` arrival-order files), copies the lake, compacts the copy with
:func:`tsplatform.ingest.compaction.compact_day` (timed), and then times, alternating between the two lakes
``--repeats`` times, the reads downstream code does:

* ``pyarrow full read``: ``Lake.read_partition`` of every column (the catalog sync's read);
* ``exactly-once lookup``: the (topic, partition, offset) columns a redelivery's landing reads;
* ``Spark read + group by series``: ``spark.read.schema(...).parquet(<the partition's files>)`` grouped by
  ``series_id`` and counted on ``local[2]`` (how ``validated_readings`` reads the day), in one warm session.

Wall time and CPU time (this process; for Spark also the JVM's, sampled with psutil) per read.

    .venv/bin/python -m bench.compaction_read [--series 10000] [--samples 144] [--files 2880] [--repeats 3]
        [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from bench.day_generator import generate_day, write_day
from bench.record import recorded
from tsplatform.hive import spark_ddl_columns
from tsplatform.ingest.compaction import compact_day
from tsplatform.ingest.offset_marks import landed_offsets
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.lake import Lake

DAY = dt.date(2024, 3, 5)


def spark_session(work: Path):  # type: ignore[no-untyped-def]
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.local.dir", str(work / "spark-tmp"))
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )


def jvm_cpu() -> float:
    """CPU seconds of this process's Java children (the Spark driver JVM)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "java" in child.name():
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def timed(read: Callable[[], object]) -> tuple[float, float]:
    """(wall s, CPU s of this process + its JVM) of one call."""
    cpu0, jvm0, t0 = time.process_time(), jvm_cpu(), time.perf_counter()
    read()
    return time.perf_counter() - t0, time.process_time() - cpu0 + jvm_cpu() - jvm0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=144)
    parser.add_argument("--files", type=int, default=2880)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="Record the report in BENCHMARKS.md.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-compaction-read-"))
    try:
        with recorded("compaction_read", write=args.write, module="bench.compaction_read"):
            small = Lake(str(work / "small"))
            table = generate_day(DAY, series=args.series, samples=args.samples)
            write_day(small, DAY, table, files=args.files)
            shutil.copytree(work / "small", work / "compacted")
            compacted = Lake(str(work / "compacted"))
            spent_cpu, started = time.process_time(), time.perf_counter()
            result = compact_day(compacted, DAY)
            compaction_wall, compaction_cpu = time.perf_counter() - started, time.process_time() - spent_cpu
            print(
                f"day: {table.num_rows:,} readings in {result.files_before} files; compacted into "
                f"{result.files_after} file(s) in {compaction_wall:.1f} s wall, {compaction_cpu:.1f} s CPU\n"
            )
            spark = spark_session(work)
            schema = spark_ddl_columns(RAW_READINGS_SCHEMA)

            def spark_read(lake: Lake) -> object:
                uris = [f"file://{f}" for f in lake.partition_files("raw_readings", DAY)]
                frame = spark.read.schema(schema).parquet(*uris)
                return frame.groupBy("series_id").count().collect()

            reads: dict[str, Callable[[Lake], object]] = {
                "pyarrow full read": lambda lake: lake.read_partition("raw_readings", DAY),
                "exactly-once lookup": lambda lake: landed_offsets(lake, "raw_readings", DAY),
                "Spark read + group by series": spark_read,
            }
            for read in reads.values():  # warm-up (JVM, caches) on both layouts
                read(small)
                read(compacted)
            results: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for _ in range(args.repeats):
                for label, read in reads.items():
                    for layout, lake in (("before", small), ("after", compacted)):
                        results.setdefault((label, layout), []).append(timed(lambda: read(lake)))  # noqa: B023
            print(
                f"| read of the day ({args.repeats} runs, median) | before: wall s | CPU s "
                "| after: wall s | CPU s | speed-up (wall) |"
            )
            print("|---|---:|---:|---:|---:|---:|")
            for label in reads:
                before, after = results[(label, "before")], results[(label, "after")]
                bw, bc = statistics.median(w for w, _ in before), statistics.median(c for _, c in before)
                aw, ac = statistics.median(w for w, _ in after), statistics.median(c for _, c in after)
                print(f"| {label} | {bw:.2f} | {bc:.2f} | {aw:.2f} | {ac:.2f} | {bw / aw:.1f}x |")
            spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
