"""What a Spark Python task costs its worker besides the task's own work: PySpark's worker daemon
(``pyspark.daemon``) against the platform's (``tsplatform.spark_worker``), in the same run, rounds
interleaved.

Each round runs, in a fresh process with its own ``local[2]`` session: a pandas function over 1.44M cached
rows in ``--tasks`` groups (one task each), as the graph's assets run theirs; the function imports the
time-series core (as the graph's do) and returns its worker's pid and CPU time at the call. Per worker,
consecutive calls' CPU times differ by what the worker spent between two calls: reading the next task's
rows through Arrow, converting the result, and what PySpark does around every task (``importlib.
invalidate_caches()`` and a full ``gc.collect()``). The table gives that difference (median over the tasks
of the job's last 3 runs, after 2 warm-up runs) and the Python workers' total CPU.

    .venv/bin/python -m bench.worker_overhead [--tasks 32] [--rounds 2] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.record import recorded

REPO = Path(__file__).resolve().parents[1]
DAEMONS = ("pyspark.daemon", "tsplatform.spark_worker")

PROBE = """
import json, sys
import psutil
from pyspark.sql import functions as F
from bench.process_tree import process_role, tree_cpu
from tsplatform.resources.spark import hive_session_builder

tasks, daemon = int(sys.argv[1]), sys.argv[2]
spark = (
    hive_session_builder()
    .config("spark.master", "local[2]")
    .config("spark.sql.shuffle.partitions", str(tasks))
    .config("spark.python.daemon.module", daemon)
    .getOrCreate()
)
rows = spark.range(0, 1_440_000).select(
    (F.col("id") % 10_000).cast("string").alias("series_id"), F.rand(1).alias("value")
).cache()
rows.count()


def at_call(frame):
    import os
    import time

    import pandas as pd

    import tsplatform.timeseries.stages  # noqa: F401  (what the graph's functions import)

    return pd.DataFrame({"pid": [os.getpid()], "cpu": [time.process_time()], "rows": [len(frame)]})


def workers_cpu():
    total = 0.0
    for pid, cpu in tree_cpu(psutil.Process()).items():  # this process's tree only
        try:
            total += cpu if process_role(psutil.Process(pid)) == "python workers" else 0.0
        except psutil.Error:
            pass
    return total


gaps, before = [], workers_cpu()
for run in range(5):
    bucket = F.pmod(F.xxhash64("series_id"), F.lit(tasks))
    out = rows.withColumn("b", bucket).groupBy("b").applyInPandas(at_call, "pid long, cpu double, rows long")
    calls = out.toPandas().sort_values(["pid", "cpu"])
    if run >= 2:
        gaps += calls.groupby("pid")["cpu"].diff().dropna().tolist()
print(json.dumps({"gaps": gaps, "workers_cpu": workers_cpu() - before}))
spark.stop()
"""


def probe(tasks: int, daemon: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tasks), daemon],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32, help="Tasks (groups) per job.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="Record the table in BENCHMARKS.md.")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {d: [] for d in DAEMONS}
    for _ in range(args.rounds):
        for daemon in DAEMONS:
            results[daemon].append(probe(args.tasks, daemon))
            print(f"progress: {daemon} done", file=sys.stderr, flush=True)
    with recorded("worker_overhead", write=args.write, module="bench.worker_overhead"):
        print(
            f"**A Python worker's CPU between two tasks** (`local[2]`, 1.44M rows in {args.tasks} tasks a "
            f"job, 5 jobs a process, {args.rounds} processes per daemon, interleaved)\n"
        )
        header = "| worker daemon | CPU s between two tasks, median | Python workers' CPU s, each process |"
        print(header)
        print("|---|---:|---|")
        for daemon in DAEMONS:
            gaps = [g for r in results[daemon] for g in r["gaps"]]
            totals = " / ".join(f"{r['workers_cpu']:.2f}" for r in results[daemon])
            print(f"| `{daemon}` | {statistics.median(gaps):.3f} | {totals} |")


if __name__ == "__main__":
    main()
