"""Issue 9's two ratio goals on the 1.44M graph day, measured in rounds: `local[2]`, `local[1]` and the peer
alternated, so that the machine's drift falls on all three alike.

``bench.graph_day`` runs every `local[2]` run first, then `local[1]`, then the pandas peer: 10-20 minutes
apart on a machine whose speed drifts by 10-50 % between hours, so its ratios partly measure the hour. Here
two warm Spark Connect servers, one per master (each on its own state dir and lake, with the same generated
day), stay up side by side; each is warmed once (untimed), then each round times one run of the day on
each master and one peer run, in an order that rotates between rounds (round 1: `local[2]`, `local[1]`,
peer; round 2: `local[1]`, peer, `local[2]`; ...). An idle server costs the others next to nothing (its
CPU during other runs is reported). Per round: `local[1]` / `local[2]` wall (goal >= 1.7x) and Spark's cost
per core, `local[2]` wall x 2 / peer wall (goal <= 1.5x); the medians over the rounds.

    .venv/bin/python -m bench.graph_day_ratios [--rounds 3] [--series 10000] [--write]
        [--pin-one-core]   # `local[1]`'s server (every thread of its JVM, and so the Python workers it
                           # forks) and its Dagster process on CPU 0 only: one core in all, not one task slot

Without ``--pin-one-core`` it measures the goal as written: `local[1]` is one task slot, and the JVM's other
threads and the Dagster process still use the second core.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

from bench.day_generator import GAP_RATE
from bench.graph_day import DAY, GRAPH_ASSETS, materialize, spark_server, write_days
from bench.graph_peer import run_peer
from bench.jars_dir import jars_dir
from bench.process_tree import tree_cpu
from bench.record import recorded
from tsplatform.lake import Lake
from tsplatform.services.manager import ServiceManager

MASTERS = ("local[2]", "local[1]")
PEER = "peer"


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """CPU seconds used so far by each process of these trees."""
    out: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            out.update(tree_cpu(psutil.Process(pid)))
    return out


def _idle_cpu(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the idle servers used between two readings of :func:`_cpu_by_pid`: processes alive at both
    (a Python worker that exits in between takes its CPU with it; one that starts counts from zero)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument(
        "--pin-one-core",
        action="store_true",
        help="Run local[1]'s server and Dagster process on CPU 0 only (one core in all).",
    )
    parser.add_argument("--write", action="store_true", help="Record the table in BENCHMARKS.md.")
    args = parser.parse_args()
    one_core = {0} if args.pin_one_core else None
    import scipy.linalg  # noqa: F401  (the peer's imports, loaded before its first timed run)
    import statsmodels.api  # noqa: F401

    import tsplatform.timeseries.stages  # noqa: F401

    root = Path(tempfile.mkdtemp(prefix="bench-graph-day-ratios-"))
    days = argparse.Namespace(
        history=0, series=args.series, samples=144, gap_rate=GAP_RATE, files=8, again=False
    )
    work = {name: root / name.replace("[", "_").replace("]", "") for name in (*MASTERS, PEER)}
    tables = {name: write_days(Lake(str(path / "lake")), days) for name, path in work.items()}
    rows = {table.num_rows for table in tables.values()}
    assert len(rows) == 1, f"the generated days differ: {rows}"
    jars = jars_dir()
    services = ServiceManager.up_on_free_ports(root / "services", ["mongo"], jars_dir=jars)
    select = ",".join(GRAPH_ASSETS)
    servers = {}
    results: list[dict] = []
    try:
        for master in MASTERS:
            servers[master] = spark_server(work[master], master)
        if one_core is not None:  # every thread of the JVM; the Python workers it forks later inherit it
            for thread in psutil.Process(servers["local[1]"].pid).threads():
                os.sched_setaffinity(thread.id, one_core)

        def run_on(master: str) -> dict:
            server = servers[master]
            address = (server.spark_remote, server.pid)
            cpus = one_core if master == "local[1]" else None
            return materialize(
                work[master], master, select, services.mongo_uri, None, DAY, address, cpus=cpus
            )

        for master in MASTERS:  # warm-up, untimed
            run_on(master)
        order = [*MASTERS, PEER]
        for round_ in range(args.rounds):
            turn = order[round_ % 3 :] + order[: round_ % 3]
            for name in turn:
                others = [s.pid for m, s in servers.items() if m != name]
                idle_before = _cpu_by_pid(others)
                if name == PEER:
                    out = work[PEER] / "peer_out"
                    out.mkdir(exist_ok=True)
                    load_start = os.getloadavg()[0]
                    peer = run_peer(Lake(str(work[PEER] / "lake")), list(GRAPH_ASSETS), out)
                    wall, cpu = peer["wall_s"], peer["cpu_s"]
                    load = (load_start, os.getloadavg()[0])
                else:
                    run = run_on(name)
                    wall, cpu, load = run["wall_s"], run["cpu_s"], run["load"]
                idle = _idle_cpu(idle_before, _cpu_by_pid(others))
                results.append(
                    {"round": round_ + 1, "name": name, "wall": wall, "cpu": cpu, "load": load, "idle": idle}
                )
                print(f"progress: round {round_ + 1} {name} {wall:.1f} s", file=sys.stderr, flush=True)
    finally:
        for server in servers.values():
            server.manager.down()
        services.down()
        shutil.rmtree(root, ignore_errors=True)
    name = "graph_day_ratios_one_core" if one_core is not None else "graph_day_ratios"
    with recorded(name, write=args.write, module="bench.graph_day_ratios"):
        report(results, next(iter(tables.values())).num_rows, args.rounds, pinned=one_core is not None)


def report(results: list[dict], readings: int, rounds: int, *, pinned: bool = False) -> None:
    print(
        f"**Issue 9's ratio goals on the graph day ({readings:,} readings), `local[2]`, `local[1]` (warm "
        "Spark Connect servers) and the pandas peer alternated in rounds**\n"
    )
    if pinned:
        print("`local[1]`'s server and Dagster process pinned to CPU 0 (one core in all).\n")
    print("| round | order | run | wall s | CPU s | load 1-min start/end | idle servers' CPU s |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for r in results:
        order = ", ".join(x["name"] for x in results if x["round"] == r["round"])
        print(
            f"| {r['round']} | {order} | {r['name']} | {r['wall']:.1f} | {r['cpu']:.1f} | "
            f"{r['load'][0]:.1f} / {r['load'][1]:.1f} | {r['idle']:.1f} |"
        )
    print(
        "\n| round | `local[1]` / `local[2]` wall (goal >= 1.7x) | cost per core: `local[2]` wall x 2 / peer "
        "wall (goal <= 1.5x) |"
    )
    print("|---:|---:|---:|")
    speedups, costs = [], []
    for n in range(1, rounds + 1):
        wall = {r["name"]: r["wall"] for r in results if r["round"] == n}
        speedups.append(wall["local[1]"] / wall["local[2]"])
        costs.append(wall["local[2]"] * 2 / wall[PEER])
        print(f"| {n} | {speedups[-1]:.2f}x | {costs[-1]:.2f}x |")
    print(
        f"\n- median over {rounds} rounds: `local[1]` / `local[2]` **{statistics.median(speedups):.2f}x** "
        f"(goal >= 1.7x); cost per core **{statistics.median(costs):.2f}x** (goal <= 1.5x)"
    )
    for name in (*MASTERS, PEER):
        walls = [r["wall"] for r in results if r["name"] == name]
        print(
            f"- {name}: wall {', '.join(f'{w:.1f}' for w in walls)} s (median {statistics.median(walls):.1f})"
        )


if __name__ == "__main__":
    main()
