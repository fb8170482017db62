"""One day of raw readings -> every asset of the graph, with the real Dagster CLI on local Spark.

Generates a day of ``--series`` x ``--samples`` readings (default 10,000 x 144 = 1.44M;
``bench.day_generator``: jitter, gaps, duplicates, spikes) straight into a temp lake's ``raw_readings``
(``--files`` Parquet files), then, for each Spark master of ``--masters`` (default ``local[2],local[1]``,
via ``TSPLATFORM_SPARK_MASTER``):

    dagster asset materialize -m tsplatform.definitions --select <assets> --partition <day>

in a fresh process tree (a temp ``DAGSTER_HOME`` and state dir; the catalog on a MongoDB-wire server the
script starts with ``tsplatform.services``), sampled every 0.2 s with psutil: CPU time
and peak RSS of the driver JVM (local mode: the executors run inside it), the Python driver (the dagster
CLI and step processes) and the Python workers (``pyspark.daemon`` and its forks); every second the driver
JVM's CPU per thread (Linux ``/proc``), reported by kind: executor tasks, JIT compilers, garbage collector,
other threads, and what threads that ended between two samples used. Per asset: the wall time from the
run's STEP_START to STEP_SUCCESS events. ``<assets>`` defaults to every asset downstream of
``raw_readings`` that ``tsplatform.definitions`` has (``--select`` to choose).

The peer, measured in the same run: the same chain of pure core functions in ONE pandas process over the
same data (read the partition; validation, hourly and profiles over all series at once as they are
vectorised over series, the other stages per series; write Parquet), timed with ``time.process_time`` and
wall. "Spark's cost per core" = local[N] wall x N / the peer's wall. ``--peer-processes N`` also runs the
peer split over N processes at once, by position: the chain's wall time on N cores with no engine at all
(``--masters ''`` runs the peers alone, block ``graph_day_peers``; ``--peer-rounds R`` alternates the two
R times, as this machine's speed drifts between minutes).
Goals (issue 9): total <= 60 s on local[2]; local[2] >= 1.7x faster than local[1]; cost per core <= 1.5x.

    .venv/bin/python -m bench.graph_day [--series 10000] [--samples 144] [--files 8]
        [--masters 'local[2],local[1]'] [--select 'validated_readings'] [--no-peer] [--write]
        [--event-log DIR]   # Spark's event log per run, and its jobs by call site (bench.spark_events)
        [--again]           # then the next day on the first master, with the methods the first day kept
        [--gap-rate 0.2]    # the share of series with a gap in the day (those select an imputation method)
        [--spark-connect]   # each master's runs are clients of one Spark Connect server (`services up
                            # spark`), started before them; its CPU during each run counts in the run's
        [--repeat N]        # with --spark-connect: the first day N more times on the same (warm) server
        [--history D]       # first the D days before the day, as one backfill: the day in steady state

The machine's load is printed with every timing (1-min load average at start and end, and the CPU time the
rest of the machine used during each run): on a shared machine wall times mean little, CPU times more.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyarrow as pa

from bench import jfr_profile, spark_events
from bench.core_profile import profile_core
from bench.day_generator import BENCH_DAY, GAP_RATE, generate_day, write_day
from bench.graph_peer import more_peer_rounds, run_peer, run_peer_split
from bench.jars_dir import jars_dir
from bench.process_tree import (
    JVM_KINDS,
    Sampled,
    jvm_cpu_by_kind,
    jvm_thread_cpu,
    record_jvm_threads,
    sample_tree,
    tree_cpu,
)
from bench.record import recorded
from tsplatform.lake import Lake
from tsplatform.services.manager import ServiceManager

REPO = Path(__file__).resolve().parent.parent
DAY = BENCH_DAY
NEXT_DAY = DAY + dt.timedelta(days=1)  # --again
#: The graph's assets in dependency order (issue 9); those the definitions lack are skipped.
GRAPH_ASSETS = (
    "validated_readings",
    "period_estimates",
    "regularized_readings",
    "denoised_readings",
    "decompositions",
    "hourly_readings",
    "series_profiles",
    "correlations",
)


def step_times(dagster_home: Path) -> dict[str, float]:
    """Wall seconds per step of the instance's latest run (STEP_START -> STEP_SUCCESS/FAILURE)."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        starts: dict[str, float] = {}
        out: dict[str, float] = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
                out[event.step_key] = entry.timestamp - starts[event.step_key]
        return out


def materialize(
    work: Path,
    master: str,
    select: str,
    mongo_uri: str,
    event_log: Path | None = None,
    day: dt.date = DAY,
    server: tuple[str, int] | None = None,
    jfr: Path | None = None,
    last_day: dt.date | None = None,
    cpus: set[int] | None = None,
) -> dict[str, object]:
    """One ``dagster asset materialize`` in a fresh process tree; timings, CPU, RSS and load. With
    ``last_day``, the days ``day...last_day`` as one backfill (``--partition-range``: one run per asset). With
    ``event_log`` and no ``server``, Spark writes its event log there (``bench.spark_events`` reads it; a
    server writes its own, :func:`spark_server`). With ``server``
    (``sc://`` address, pid), the run is a client of that Spark Connect server, whose process tree is
    sampled beside the run's (only the CPU it uses during the run counts); with ``jfr`` too, a Flight
    Recorder recording of the server during the run is written there (``bench.jfr_profile`` reads it). With
    ``cpus``, the Dagster process runs on those CPUs only (``os.sched_setaffinity``)."""
    dagster_home = work / f"dagster_home_{master.replace('[', '_').replace(']', '')}"
    dagster_home.mkdir(exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DAGSTER_HOME": str(dagster_home),
        "TSPLATFORM_STATE_DIR": str(work / "state"),
        "TSPLATFORM_LAKE_ROOT": str(work / "lake"),
        "TSPLATFORM_SPARK_MASTER": master,
        "TSPLATFORM_START_DATE": "2024-01-01",
        "TSPLATFORM_MONGO_URI": mongo_uri,
        "TSPLATFORM_MONGO_DB": f"bench_{master.replace('[', '_').replace(']', '')}",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    # as `make` does: with it set (some container images do), every process compiles its imports anew
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if server is not None:
        env["TSPLATFORM_SPARK_REMOTE"] = server[0]
    if event_log is not None and server is None:  # a server's runs: the server writes one log for all
        env["TSPLATFORM_SPARK_CONF"] = json.dumps(event_log_conf(event_log))
    cmd = [
        str(Path(sys.executable).with_name("dagster")),
        *("asset", "materialize", "-m", "tsplatform.definitions", "--select", select),
        *(
            ("--partition", day.isoformat())
            if last_day is None
            else ("--partition-range", f"{day}...{last_day}")
        ),
    ]
    machine_before = psutil.cpu_times()
    load_before = os.getloadavg()[0]
    started, started_ms = time.perf_counter(), int(time.time() * 1000)
    server_proc = psutil.Process(server[1]) if server is not None else None
    baseline = tree_cpu(server_proc) if server_proc is not None else {}
    threads_before = {k: cpu for pid in baseline for k, (_, cpu) in jvm_thread_cpu(pid).items()}
    if jfr is not None and server is not None:
        jcmd(server[1], "JFR.start", f"name={jfr.stem}", "settings=profile")
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    proc = subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=pin
    )
    seen, stop = Sampled(), threading.Event()
    roots = [psutil.Process(proc.pid), *([server_proc] if server_proc is not None else [])]
    sampler = threading.Thread(
        target=sample_tree, args=(roots, seen, stop, 0.2, baseline, threads_before), daemon=True
    )
    sampler.start()
    output = proc.communicate()[0].decode(errors="replace")
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if server_proc is not None:  # the server's JVM outlives the run: its threads' totals at the run's end
        for pid in (p for p, role in seen.role.items() if role == "driver JVM"):
            record_jvm_threads(seen, pid, threads_before)
    task_shares = None
    if jfr is not None and server is not None:
        jfr.parent.mkdir(parents=True, exist_ok=True)
        jcmd(server[1], "JFR.stop", f"name={jfr.stem}", f"filename={jfr.resolve()}")
        task_shares = jfr_profile.shares(jfr_profile.read_recording(jfr))
    machine_after = psutil.cpu_times()
    if proc.returncode != 0:
        print(output[-6000:], file=sys.stderr)
        raise SystemExit(f"dagster asset materialize failed on {master} (exit {proc.returncode})")
    busy = sum(
        getattr(machine_after, f) - getattr(machine_before, f)
        for f in ("user", "system", "nice", "irq", "softirq", "steal")
        if hasattr(machine_after, f)
    )
    cpu_by_role: dict[str, float] = {}
    for pid, cpu in seen.cpu.items():
        cpu_by_role[seen.role[pid]] = cpu_by_role.get(seen.role[pid], 0.0) + cpu
    ours = sum(cpu_by_role.values())
    return {
        "master": master,
        "label": master,
        "wall_s": wall,
        "steps": step_times(dagster_home),
        "cpu_s": ours,
        "cpu_by_role": cpu_by_role,
        "processes_by_role": dict(Counter(seen.role.values())),
        "jvm_by_kind": jvm_cpu_by_kind(seen),
        "others_cpu_s": max(0.0, busy - ours),
        "peak_rss": seen.peak_rss,
        "peak_single": seen.peak_single,
        "load": (load_before, os.getloadavg()[0]),
        "jfr_shares": task_shares,
        "span_ms": (started_ms, int(time.time() * 1000)),
    }


def master_cores(master: str) -> int:
    """Task slots of a Spark master: N for ``local[N]``, else 1."""
    return int(master[len("local[") : -1]) if master.startswith("local[") else 1


def report_event_log(run: dict, master: str, log: Path, *, shared: bool) -> None:
    """Print a run's Spark jobs by call site and its task slots' occupancy (``bench.spark_events``). A
    ``shared`` log (a server's) holds every run on it: only the jobs and tasks within this run's span count,
    and the occupancy is over that span."""
    jobs, tasks, (start, end) = spark_events.read_log(log)
    if shared:
        start, end = run["span_ms"]
        jobs = [j for j in jobs if start <= j.started_ms <= end]
        tasks = [t for t in tasks if start <= t.launched_ms and t.finished_ms <= end]
    print(f"Spark jobs of {run['label']} ({log}):\n", file=sys.stderr)
    print(spark_events.report(jobs, 25), file=sys.stderr)
    occupancy = spark_events.slot_occupancy(tasks, master_cores(master), start, end)
    print(f"\n{spark_events.occupancy_report(occupancy)}\n", file=sys.stderr)


def jcmd(pid: int, *command: str) -> None:
    """``jcmd <pid> <command...>`` (the JDK's diagnostic command tool; raises when it fails)."""
    subprocess.run(
        [jfr_profile.jdk_tool("jcmd"), str(pid), *command], check=True, capture_output=True, text=True
    )


@dataclass
class SparkServer:
    manager: ServiceManager
    spark_remote: str
    pid: int
    start_s: float


def event_log_conf(directory: Path) -> dict[str, str]:
    """Spark settings that write an uncompressed event log under ``directory`` (``bench.spark_events``)."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.compress": "false",
        "spark.eventLog.dir": directory.resolve().as_uri(),
    }


def spark_server(work: Path, master: str, event_log: Path | None = None) -> SparkServer:
    """A Spark Connect server for ``master`` on the runs' state dir (their metastore and warehouse); with
    ``event_log``, the server writes its event log there (one application for all the runs on it)."""
    from tsplatform.settings import Settings

    conf = {} if event_log is None else event_log_conf(event_log)
    settings = Settings(state_dir=work / "state", spark_master=master, spark_conf=conf)
    started = time.perf_counter()
    manager = ServiceManager.on_free_ports(work / "state", settings=settings)
    manager.up(["spark"])
    pid = next(s.pid for s in manager.status() if s.name == "spark")
    assert pid is not None
    return SparkServer(manager, manager.spark_remote, pid, time.perf_counter() - started)


def runs_on(
    args: argparse.Namespace, work: Path, master: str, select: str, mongo_uri: str, *, again: bool
) -> list[dict]:
    """The runs on one master: the day; with ``again`` the next day; with ``--spark-connect`` all of them
    on one server started first, and ``--repeat`` more runs of the day on it."""
    log = None if args.event_log is None else args.event_log / master.replace("[", "_")[:-1]
    server = spark_server(work, master, log and log / "server") if args.spark_connect else None
    plan = [("first", DAY, master)]
    if again:
        plan.append(("again", NEXT_DAY, f"{master}, next day (methods kept)"))
    if server is not None:
        plan += [(f"repeat{i}", DAY, f"{master}, the day again") for i in range(1, args.repeat + 1)]
    runs: list[dict] = []
    try:
        if args.history:  # the history days first, as one backfill (untimed in the table; reported)
            first = DAY - dt.timedelta(days=args.history)
            address = (server.spark_remote, server.pid) if server is not None else None
            backfill = materialize(
                work, master, select, mongo_uri, None, first, address, None, DAY - dt.timedelta(days=1)
            )
            args.history_s[master] = backfill["wall_s"]
            print(f"progress: history {json.dumps(backfill, default=str)}", file=sys.stderr, flush=True)
        for tag, day, label in plan:
            run_log = None if log is None else log / tag
            address = (server.spark_remote, server.pid) if server is not None else None
            recording = None if args.jfr is None else args.jfr / f"{master.replace('[', '_')[:-1]}_{tag}.jfr"
            runs.append(materialize(work, master, select, mongo_uri, run_log, day, address, recording))
            runs[-1]["label"], runs[-1]["tag"] = label, tag
            if server is not None:
                started = f", server started in {server.start_s:.1f} s" if tag == "first" else ", warm server"
                runs[-1]["label"] = f"{label} (Spark Connect{started})"
            print(f"progress: {json.dumps(runs[-1], default=str)}", file=sys.stderr, flush=True)
            if run_log is not None and server is None:
                report_event_log(runs[-1], master, run_log, shared=False)
    finally:
        if server is not None:
            server.manager.down()
    if log is not None and server is not None:  # the server's one log, complete once it has stopped
        for run in runs:
            report_event_log(run, master, log / "server", shared=True)
    return runs


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def _per_run_table(
    runs: list[dict], columns: list[str], values: Callable[[dict], dict[str, float]], fmt: str
) -> None:
    """A markdown table: one row per run, one ``fmt``-formatted cell per column (0 when absent)."""
    print("| master | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for run in runs:
        got = values(run)
        print(f"| {run['label']} | " + " | ".join(fmt.format(got.get(c, 0.0)) for c in columns) + " |")


def _run_tables(assets: list[str], runs: list[dict]) -> None:
    """The Spark runs' tables: per-asset wall times, CPU and RSS by process role, the JVM's CPU by thread."""
    print(
        "| master | "
        + " | ".join(f"{a} s" for a in assets)
        + " | total wall s | CPU s (tree) | load 1-min start/end | others' CPU s |"
    )
    print("|---|" + "---:|" * (len(assets) + 4))
    for run in runs:
        per_asset = [run["steps"].get(a) for a in assets]
        cells = [f"{v:.1f}" if v is not None else "-" for v in per_asset]
        print(
            f"| {run['label']} | " + " | ".join(cells) + f" | {run['wall_s']:.1f} | {run['cpu_s']:.1f} | "
            f"{run['load'][0]:.1f} / {run['load'][1]:.1f} | {run['others_cpu_s']:.0f} |"
        )
    print(
        "\nCPU s by process role and peak RSS MB (summed over the role's processes / largest single one):\n"
    )
    roles = ("driver JVM", "python driver", "python workers")
    print(
        "| master | "
        + " | ".join(f"{r} CPU s" for r in roles)
        + " | "
        + " | ".join(f"{r} peak MB" for r in roles)
        + " | python worker processes |"
    )
    print("|---|" + "---:|" * (2 * len(roles) + 1))
    for run in runs:
        cpu = [f"{run['cpu_by_role'].get(r, 0.0):.1f}" for r in roles]
        rss = [f"{_mb(run['peak_rss'].get(r, 0))} / {_mb(run['peak_single'].get(r, 0))}" for r in roles]
        workers = run.get("processes_by_role", {}).get("python workers", 0)
        print(f"| {run['label']} | " + " | ".join(cpu) + " | " + " | ".join(rss) + f" | {workers} |")
    kinds = [*JVM_KINDS, "not attributed"]
    print(
        "\nThe driver JVM's CPU s by thread (Linux thread names, sampled every second; in local mode the "
        'executor tasks run in it; "not attributed": threads that ended between two samples):\n'
    )
    _per_run_table(runs, kinds, lambda run: run.get("jvm_by_kind", {}), "{:.1f}")
    recorded_runs = [r for r in runs if r.get("jfr_shares")]
    if recorded_runs:
        sinks = list(dict.fromkeys(k for r in recorded_runs for k in r["jfr_shares"]["sink"]))
        print(
            "\nThe executor tasks' Flight Recorder samples by what the task produces (`--jfr`, "
            "`bench.jfr_profile`; shares of the task threads' samples):\n"
        )
        _per_run_table(recorded_runs, sinks, lambda run: run["jfr_shares"]["sink"], "{:.0%}")


def report(
    args: argparse.Namespace, rows: int, assets: list[str], runs: list[dict], peer: dict | None
) -> None:
    print(
        f"### Graph day: {rows:,} readings ({args.series:,} series x {args.samples}), "
        f"{len(assets)} asset(s)\n"
    )
    print(f"assets: {', '.join(assets)}; raw partition in {args.files} file(s)\n")
    if args.history:
        first, last = DAY - dt.timedelta(days=args.history), DAY - dt.timedelta(days=1)
        walls = ", ".join(f"{m} {s:.0f} s" for m, s in args.history_s.items())
        print(
            f"history: the {args.history} days before the day ({first}...{last}, the same "
            f"series, other gaps) materialized first as one backfill, one run per asset ({walls} wall); the "
            "table times the day after them, its lookback windows full\n"
        )
    if runs:
        _run_tables(assets, runs)
    print()
    for tag, what in (("first", ""), ("repeat1", " (the day again, warm server)")):
        by_master = {r["master"]: r for r in runs if r.get("tag") == tag}
        if "local[2]" in by_master and "local[1]" in by_master:
            two, one = by_master["local[2]"], by_master["local[1]"]
            print(f"- local[1] / local[2] wall{what}: {one['wall_s'] / two['wall_s']:.2f}x (goal >= 1.7x)")
    if peer is not None:
        print(
            f"- pandas peer (one process, {peer['steps']} step(s) of the chain): "
            f"{peer['wall_s']:.1f} s wall, {peer['cpu_s']:.1f} s CPU"
        )
        if "split" in peer:
            split, n = peer["split"], peer["split"]["processes"]
            walls = ", ".join(f"{w:.1f}" for w in split["share_wall_s"])
            print(
                f"- the same peer split over {n} processes at once, by position (no Spark; the chain's "
                f"floor on {n} cores): {split['wall_s']:.1f} s wall (processes {walls} s), "
                f"{split['cpu_s']:.1f} s CPU; {peer['wall_s'] / split['wall_s']:.2f}x the one process"
            )
            rounds = peer["rounds"]
            ratios = [one / two for one, two, _ in rounds]
            own = [one / slowest for one, _, slowest in rounds]  # without the processes' start-up
            cells = "; ".join(f"{one:.1f} / {two:.1f} s ({slowest:.1f} s)" for one, two, slowest in rounds)
            print(
                f"- one process / {n} processes ({len(rounds)} round(s), the order alternated): {cells}; "
                f"median **{statistics.median(ratios):.2f}x** with the processes' start-up (interpreter, "
                f"imports), {statistics.median(own):.2f}x by the slower process's own time (in parentheses)"
            )
        for run in runs:
            if run.get("tag") == "again":  # the peer selects imputation methods: compare its day only
                continue
            cores = master_cores(run["master"])
            print(
                f"- {run['label']}: cost per core = wall x {cores} / peer wall = "
                f"{run['wall_s'] * cores / peer['wall_s']:.2f}x (goal <= 1.5x); tree CPU / peer CPU = "
                f"{run['cpu_s'] / peer['cpu_s']:.2f}x"
            )


def write_days(lake: Lake, args: argparse.Namespace) -> pa.Table:
    """Generate and write the benchmark's raw days: ``--history`` days before ``DAY``, ``DAY``, and with
    ``--again`` the next day; the same series every day, each other day with its own gaps, Kafka offsets
    following the previous day's. Returns ``DAY``'s table."""
    history = [DAY - dt.timedelta(days=back) for back in range(args.history, 0, -1)]
    offset, table = 0, None
    for day in [*history, DAY, *([NEXT_DAY] if args.again else [])]:
        readings = generate_day(
            day,
            series=args.series,
            samples=args.samples,
            gap_rate=args.gap_rate,
            gap_seed=None if day == DAY else day.toordinal(),
            first_offset=offset,
        )
        write_day(lake, day, readings, files=args.files)
        offset += readings.num_rows
        table = readings if day == DAY else table
    assert table is not None
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=144)
    parser.add_argument("--files", type=int, default=8, help="Parquet files of the raw day partition.")
    parser.add_argument(
        "--gap-rate",
        type=float,
        default=GAP_RATE,
        help="Share of series with a gap in the day (each such series selects its imputation method on its "
        "first day; the others need none yet).",
    )
    parser.add_argument("--masters", default="local[2],local[1]")
    parser.add_argument("--select", default="", help="Dagster asset selection; default: the graph's assets.")
    parser.add_argument("--no-peer", action="store_true", help="Skip the pandas peer.")
    parser.add_argument(
        "--peer-processes",
        type=int,
        default=1,
        metavar="N",
        help="Also run the peer split over N processes at once, by position (no Spark): the chain's wall "
        "time on N cores, the floor of any engine running this core on them.",
    )
    parser.add_argument(
        "--peer-rounds",
        type=int,
        default=1,
        metavar="R",
        help="With --peer-processes: R rounds of the one-process and the split peer, the order alternated "
        "(this machine's speed drifts between minutes), and the median of their ratio.",
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="Then materialize the next day on the first master (the same series, other gaps), with the "
        "imputation methods the first day kept in the catalog: the series with a slot to fill and a method "
        "select nothing (selection runs on a series' first day with a slot to fill, then on the first such "
        "day 7 days later); its windows hold both days.",
    )
    parser.add_argument(
        "--spark-connect",
        action="store_true",
        help="Per master, start a Spark Connect server (`tsplatform services up spark`) and run as its "
        "clients; the server's CPU during each run counts in the run's.",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="With --spark-connect: then the first day this many more times on the same, warm server.",
    )
    parser.add_argument("--keep", type=Path, default=None, help="Work in this directory and keep it.")
    parser.add_argument("--write", action="store_true", help="Record the report in BENCHMARKS.md.")
    parser.add_argument(
        "--event-log", type=Path, default=None, help="Spark event logs here, per job after each run."
    )
    parser.add_argument(
        "--jfr",
        type=Path,
        default=None,
        help="With --spark-connect: a Java Flight Recorder recording of the server per run here, and the "
        "executor tasks' samples by what they produce in the report (bench.jfr_profile; costs a few %%).",
    )
    parser.add_argument(
        "--profile-core",
        type=int,
        default=0,
        metavar="N",
        help="Only: CPU per stage of the core chain on N series.",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        metavar="D",
        help="With --profile-core: the per-series stages on a day with D days before it in their lookback "
        "windows, beside the same day without them. Otherwise: D days before the day are generated and "
        "materialized first, per master, as one backfill (one run per asset), then the day is timed as "
        "usual: a day in steady state, whose lookback windows are full.",
    )
    args = parser.parse_args()
    args.history_s = {}
    if args.jfr is not None and not args.spark_connect:
        parser.error("--jfr records a Spark Connect server's JVM: it needs --spark-connect")
    if args.profile_core:
        name = "graph_day_core_profile" + (f"_history_{args.history}" if args.history else "")
        with recorded(name, write=args.write, module="bench.graph_day"):
            profile_core(args.profile_core, args.history)
        return

    from tsplatform.definitions import defs

    present = {k.to_user_string() for k in defs.get_repository_def().asset_graph.get_all_asset_keys()}
    assets = [a for a in GRAPH_ASSETS if a in present]
    select = args.select or ",".join(assets)
    if args.select:
        assets = [a for a in GRAPH_ASSETS if a in args.select.split(",")] or [args.select]
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-graph-day-"))
    work.mkdir(parents=True, exist_ok=True)
    name = (
        "graph_day" if args.series * args.samples <= 1_500_000 else f"graph_day_{args.series * args.samples}"
    )
    if args.samples != 144 and args.series * args.samples <= 1_500_000:  # e.g. 100,000 series x 14
        name += f"_{args.series}x{args.samples}"
    if args.gap_rate != GAP_RATE:
        name += f"_gap_rate_{round(100 * args.gap_rate)}"
    if args.spark_connect:
        name += "_spark_connect"
    if args.history:
        name += f"_history_{args.history}"
    if not args.masters.strip():  # the peers only (e.g. --peer-processes 2): a block of their own
        name += "_peers"
    try:
        with recorded(name, write=args.write, module="bench.graph_day"):
            lake = Lake(str(work / "lake"))
            cpu0, t0 = time.process_time(), time.perf_counter()
            table = write_days(lake, args)
            print(
                f"generated and wrote {table.num_rows:,} readings in {time.perf_counter() - t0:.1f} s "
                f"({time.process_time() - cpu0:.1f} CPU s); {args.gap_rate:.0%} of the series with a gap\n"
            )
            jars = jars_dir()
            services = ServiceManager.up_on_free_ports(work / "services", ["mongo"], jars_dir=jars)
            runs = []
            try:
                for master in (m.strip() for m in args.masters.split(",") if m.strip()):
                    runs += runs_on(
                        args, work, master, select, services.mongo_uri, again=args.again and not runs
                    )
            finally:
                services.down()
            peer = None
            if not args.no_peer:
                (work / "peer").mkdir(exist_ok=True)
                peer = run_peer(lake, assets, work / "peer")
                print(f"progress: peer {json.dumps(peer)}", file=sys.stderr, flush=True)
                if args.peer_processes > 1:
                    peer["split"] = run_peer_split(lake, assets, work / "peer-split", args.peer_processes)
                    print(f"progress: split peer {json.dumps(peer['split'])}", file=sys.stderr, flush=True)
                    split = peer["split"]
                    peer["rounds"] = [(peer["wall_s"], split["wall_s"], max(split["share_wall_s"]))]
                    peer["rounds"] += more_peer_rounds(
                        lake, assets, work, args.peer_processes, args.peer_rounds - 1
                    )
            report(args, table.num_rows, assets, runs, peer)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
