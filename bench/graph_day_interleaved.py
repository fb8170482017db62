"""The 1.44M graph day on warm Spark Connect servers of two server configurations, alternated: A, B, A, B.

This machine's speed drifts by 10-50 % between hours, more than many changes move a run, so two
configurations are compared inside one command, alternating. Each turn starts a fresh Spark Connect server
(``local[2]``) with the turn's configuration (``TSPLATFORM_SPARK_CONF``, e.g. another
``spark.python.daemon.module``), materializes the day once to warm it (untimed), then times
``--runs`` more runs of the same day (``bench.graph_day.materialize``: the real Dagster CLI, every asset of
the graph), and stops it.

    .venv/bin/python -m bench.graph_day_interleaved \\
        --baseline '{"spark.python.daemon.module": "pyspark.daemon"}' [--turns 4] [--write]

Configuration A is the baseline (its entries on top of the platform's); B is the platform's own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench.day_generator import GAP_RATE
from bench.graph_day import DAY, GRAPH_ASSETS, materialize, spark_server, write_days
from bench.jars_dir import jars_dir
from bench.record import recorded
from tsplatform.lake import Lake
from tsplatform.services.manager import ServiceManager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="JSON: server conf entries of configuration A.")
    parser.add_argument("--turns", type=int, default=4, help="Servers in all, A and B alternating.")
    parser.add_argument("--runs", type=int, default=1, help="Timed runs per server, after its warm-up.")
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--write", action="store_true", help="Record the table in BENCHMARKS.md.")
    args = parser.parse_args()
    baseline = json.loads(args.baseline)
    work = Path(tempfile.mkdtemp(prefix="bench-graph-day-interleaved-"))
    days = argparse.Namespace(
        history=0, series=args.series, samples=144, gap_rate=GAP_RATE, files=8, again=False
    )
    table = write_days(Lake(str(work / "lake")), days)
    jars = jars_dir()
    services = ServiceManager.up_on_free_ports(work / "services", ["mongo"], jars_dir=jars)
    select, runs = ",".join(GRAPH_ASSETS), []
    try:
        for turn in range(args.turns):
            name = "A" if turn % 2 == 0 else "B"
            os.environ["TSPLATFORM_SPARK_CONF"] = json.dumps(baseline if name == "A" else {})
            server = spark_server(work, "local[2]")
            try:
                address = (server.spark_remote, server.pid)
                materialize(work, "local[2]", select, services.mongo_uri, None, DAY, address)  # warm-up
                for _ in range(args.runs):
                    run = materialize(work, "local[2]", select, services.mongo_uri, None, DAY, address)
                    runs.append({"config": name, "turn": turn + 1, **run})
                    print(f"progress: {name} {run['wall_s']:.1f} s", file=sys.stderr, flush=True)
            finally:
                server.manager.down()
    finally:
        services.down()
        shutil.rmtree(work, ignore_errors=True)
    with recorded("graph_day_interleaved", write=args.write, module="bench.graph_day_interleaved"):
        print(
            f"**The graph day ({table.num_rows:,} readings) on warm Spark Connect servers, `local[2]`, "
            f"configurations alternated**: A = the platform's with `{json.dumps(baseline)}`, B = the "
            "platform's\n"
        )
        print("| turn | configuration | wall s | CPU s (tree) | driver JVM CPU s | Python workers CPU s |")
        print("|---:|---|---:|---:|---:|---:|")
        for r in runs:
            roles = r["cpu_by_role"]
            print(
                f"| {r['turn']} | {r['config']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                f"{roles.get('driver JVM', 0.0):.1f} | {roles.get('python workers', 0.0):.1f} |"
            )
        for name in ("A", "B"):
            mine = [r for r in runs if r["config"] == name]
            if mine:
                wall = statistics.mean(r["wall_s"] for r in mine)
                workers = statistics.mean(r["cpu_by_role"].get("python workers", 0.0) for r in mine)
                print(f"\n- {name}: mean wall {wall:.1f} s, workers {workers:.1f} CPU s ({len(mine)} runs)")


if __name__ == "__main__":
    main()
