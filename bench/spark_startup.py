"""Start-up of a Spark session as the platform configures it (Hive catalog, Derby metastore), with and without
the driver JVM's class archive (``resources.spark.class_archive_options``), as a markdown table.

Each round runs, in a fresh process: the session (JVM start, Spark, Hive catalog), its first metastore call
(``SHOW DATABASES``) and a first job with a shuffle; wall seconds of each, and the JVM's CPU seconds. The
baseline is the same process with ``TSPLATFORM_SPARK_CLASS_CACHE=false``, in the same run, rounds
interleaved. The archive lives in a temp cache dir, written by one priming session first.

    .venv/bin/python -m bench.spark_startup --rounds 3 [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.record import recorded
from tsplatform.resources.spark import ARCHIVE_SETTLED_S

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import json, time
started = time.perf_counter()
from pyspark.sql import SparkSession
from tsplatform.resources.spark import spark_conf
builder = SparkSession.builder
for key, value in spark_conf().items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
session = time.perf_counter()
spark.sql("SHOW DATABASES").collect()
metastore = time.perf_counter()
spark.range(100_000).selectExpr("id % 100 AS k").groupBy("k").count().collect()
job = time.perf_counter()
import psutil
jvm = psutil.Process(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()).cpu_times()
times = {"session": session - started, "metastore": metastore - session, "first job": job - metastore}
print(json.dumps({**times, "total": job - started, "JVM CPU": jvm.user + jvm.system}))
spark.stop()
"""

PARTS = ("session", "metastore", "first job", "total", "JVM CPU")


def probe(state: Path, cache: Path, archive: bool) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TSPLATFORM_STATE_DIR": str(state),
        "TSPLATFORM_SPARK_CLASS_CACHE": "true" if archive else "false",
        "TSPLATFORM_SPARK_CLASS_CACHE_DIR": str(cache),
        "TSPLATFORM_SPARK_MASTER": "local[2]",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="Record the table in BENCHMARKS.md.")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-spark-startup-") as tmp,
        recorded("spark_startup", write=args.write, module="bench.spark_startup"),
    ):
        work = Path(tmp)
        cache = work / "cache"
        probe(work / "state", cache, archive=True)  # the priming session writes the archive at exit
        for partial in (cache / "spark-cds").glob("*.partial"):  # settled: promoted by the next session
            then = time.time() - ARCHIVE_SETTLED_S - 1
            os.utime(partial, (then, then))
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for _ in range(args.rounds):
            for archive in (False, True):
                runs[archive].append(probe(work / "state", cache, archive))
        if not list((cache / "spark-cds").glob("*.jsa")):
            raise SystemExit("no class archive was written: the comparison would be meaningless")
        print(f"**Spark session start-up, Hive catalog, `local[2]`: median of {args.rounds} rounds**\n")
        print("| driver JVM | " + " | ".join(f"{p} s" for p in PARTS) + " |")
        print("|---|" + "---:|" * len(PARTS))
        for archive, label in ((False, "without the class archive"), (True, "with the class archive")):
            cells = [f"{statistics.median(r[p] for r in runs[archive]):.2f}" for p in PARTS]
            print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
