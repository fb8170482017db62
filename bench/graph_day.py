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
wall. "Spark's cost per core" = local[N] wall x N / the peer's wall.
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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from bench import jfr_profile, spark_events
from bench.day_generator import GAP_RATE, generate_day, write_day
from bench.record import recorded
from tsplatform.lake import Lake
from tsplatform.services.manager import ServiceManager

REPO = Path(__file__).resolve().parent.parent
DAY = dt.date(2024, 3, 5)
NEXT_DAY = DAY + dt.timedelta(days=1)  # --again
NO_STATE = "no state: selects where a slot needs filling"  # --profile-core's first-day label
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


# --- the pandas peer ---------------------------------------------------------------------------------
def _tagged(frame: pd.DataFrame, source: str, value: pd.Series, flag: pd.Series) -> pd.DataFrame:
    """pandas twin of ``tsplatform.assets.summarize._tagged`` (the profile's input rows)."""
    times = pd.to_datetime(frame["event_time"], utc=True) if "event_time" in frame else None
    return pd.DataFrame(
        {
            "series_id": frame["series_id"].to_numpy(),
            "position": frame["position"].to_numpy(),
            "type_name": frame["type_name"].to_numpy(),
            "event_time": times.dt.tz_localize(None).to_numpy() if times is not None else pd.NaT,
            "value": pd.to_numeric(value, errors="coerce").to_numpy(dtype=float),
            # the UTC day as text, in C (``dt.strftime`` formats every row in Python: 15% of the chain)
            "date": frame["date"].to_numpy()
            if "date" in frame
            else np.datetime_as_string(times.dt.tz_localize(None).to_numpy().astype("datetime64[D]")),
            "source": source,
            "flag": flag.astype(bool).to_numpy(),
        }
    )


def run_peer_chain(raw: pd.DataFrame, assets: list[str]) -> dict[str, pd.DataFrame]:
    """The graph's core (``tsplatform.timeseries.stages``, as the assets call it) over every series of
    ``raw`` in this process: validation, hourly and profiles over all series at once (they are vectorised
    over series; the executors call them per bucket), the per-series stages per series, correlations per
    position. Returns each asset's rows."""
    from tsplatform.assets.clean import validate_series
    from tsplatform.partitions import ANOMALY_LOOKBACK_DAYS, DECOMPOSITION_LOOKBACK_DAYS, PERIOD_LOOKBACK_DAYS
    from tsplatform.settings import get_settings
    from tsplatform.timeseries import stages
    from tsplatform.timeseries.decompose import seasonal_periods

    settings, days, now = get_settings(), [DAY], pd.Timestamp.now(tz="UTC")
    out: dict[str, list[pd.DataFrame]] = {a: [] for a in assets}
    checked = validate_series(raw.sort_values("offset", kind="stable"), DAY, now)
    valid_all = checked[checked["reason"].isna()]
    rejects = checked[checked["reason"].notna()]
    out["validated_readings"].append(valid_all)
    if len(assets) == 1:
        return {a: pd.concat(parts, ignore_index=True) for a, parts in out.items() if parts}
    sources = [
        _tagged(rejects, "rejects", rejects["value"], rejects["reason"].isin(stages.DUPLICATE_REASONS)),
        _tagged(valid_all, "validated", valid_all["value"], pd.Series(False, index=valid_all.index)),
    ]
    seasons: list[int] | None = None
    denoised = []
    for _, valid in valid_all.groupby("series_id", sort=False):
        est = stages.estimate_periods(valid, days, PERIOD_LOOKBACK_DAYS)
        reg = stages.regularize_series(
            valid,
            est,
            days,
            None,
            lookback_days=PERIOD_LOOKBACK_DAYS,
            max_gap_s=settings.impute_max_gap_s,
            reselect_days=settings.imputation_reselect_days,
        )
        den = stages.denoise_series(reg, days, ANOMALY_LOOKBACK_DAYS)
        if seasons is None:  # the Spark asset takes the seasons of every period of the day; one here
            periods = est["period_s"].dropna()
            seasons = (
                sorted(seasonal_periods(pd.Timedelta(seconds=float(periods.iloc[0])))) if len(periods) else []
            )
        dec = stages.decompose_series(den, est, days, seasons, lookback_days=DECOMPOSITION_LOOKBACK_DAYS)
        sources += [
            _tagged(reg, "regularized", reg["value"], reg["is_imputed"]),
            _tagged(den, "denoised", den["value"], den["is_anomaly"]),
            _tagged(est, "estimate", est["period_s"], pd.Series(False, index=est.index)),
        ]
        for asset, rows in (
            ("period_estimates", est),
            ("regularized_readings", reg),
            ("denoised_readings", den),
            ("decompositions", dec),
        ):
            if asset in out:
                out[asset].append(rows)
        denoised.append(den)
    all_denoised = pd.concat(denoised, ignore_index=True)
    if "hourly_readings" in out:
        out["hourly_readings"].append(stages.hourly_series(all_denoised, days))
    if "series_profiles" in out:
        out["series_profiles"].append(stages.profile_series(pd.concat(sources, ignore_index=True), days))
    if "correlations" in out:
        for _, rows in all_denoised.groupby("position", sort=False):
            out["correlations"].append(stages.correlate_position(rows, days))
    return {a: pd.concat(parts, ignore_index=True) for a, parts in out.items() if parts}


def profile_core(series: int, history: int = 0) -> None:
    """CPU ms per series of each stage of :func:`run_peer_chain` over ``series`` generated series, with
    no imputation state (the first day: ``select_imputation`` runs) and with a freshly chosen method. BLAS
    and OpenMP pools are held to one thread, as in :func:`run_peer` and Spark's Python workers: with
    OpenBLAS's second thread spinning after statsmodels' calls, the process's CPU time doubled for every
    stage that ran after an imputation selection."""
    import scipy.linalg  # noqa: F401  (load every BLAS the chain uses before limiting them)
    import statsmodels.api  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        if history:
            _profile_core_history(series, history)
        else:
            _profile_core(series)


def _profile_core_history(series: int, history: int) -> None:
    """CPU ms per series of the per-series stages on ``DAY`` when the ``history`` days before it are already
    in the lake, beside the same day without them: each stage reads its lookback window as its asset does
    (periods and the grid 7 days, anomalies 2, decompositions 28). Methods are already chosen (``linear``;
    selections are measured by the plain ``--profile-core``)."""
    from tsplatform.assets.clean import validate_series
    from tsplatform.partitions import ANOMALY_LOOKBACK_DAYS, DECOMPOSITION_LOOKBACK_DAYS, PERIOD_LOOKBACK_DAYS
    from tsplatform.settings import get_settings
    from tsplatform.timeseries import stages
    from tsplatform.timeseries.decompose import seasonal_periods

    settings, now = get_settings(), pd.Timestamp.now(tz="UTC")
    every_day = [DAY - dt.timedelta(days=history - i) for i in range(history + 1)]
    valid_days = []
    for day in every_day:  # the same series every day, other gaps
        raw = generate_day(day, series=series, gap_seed=day.toordinal()).to_pandas()
        checked = validate_series(raw, day, now)
        valid_days.append(checked[checked["reason"].isna()])
    chosen = {
        "imputation_method": "linear",
        "imputation_selected": (DAY - dt.timedelta(days=1)).isoformat(),  # fresh on DAY: no selection
    }
    options = {"max_gap_s": settings.impute_max_gap_s, "reselect_days": settings.imputation_reselect_days}
    cpu: dict[str, dict[str, float]] = {"first day": {}, f"with {history} days of history": {}}

    def timed(
        column: str, name: str, fn: Callable[..., pd.DataFrame], *args: object, **kw: object
    ) -> pd.DataFrame:
        started = time.process_time()
        out = fn(*args, **kw)
        cpu[column][name] = cpu[column].get(name, 0.0) + time.process_time() - started
        return out

    def window(frame: pd.DataFrame, days: int) -> pd.DataFrame:  # what the asset reads for DAY
        return frame[frame["event_time"] >= pd.Timestamp(DAY - dt.timedelta(days=days - 1), tz="UTC")]

    everything = pd.concat(valid_days, ignore_index=True)
    for _, valid in everything.groupby("series_id", sort=False):
        past = valid[valid["event_time"] < pd.Timestamp(DAY, tz="UTC")]
        # the history the assets would have written before the day (untimed)
        est_past = stages.estimate_periods(past, every_day[:-1], PERIOD_LOOKBACK_DAYS)
        reg_past = stages.regularize_series(
            past, est_past, every_day[:-1], chosen, lookback_days=PERIOD_LOOKBACK_DAYS, **options
        )
        den_past = stages.denoise_series(reg_past, every_day[:-1], ANOMALY_LOOKBACK_DAYS)
        for column, valid_rows, reg_before, den_before in (
            ("first day", window(valid, 1), reg_past.iloc[0:0], den_past.iloc[0:0]),
            (f"with {history} days of history", valid, reg_past, den_past),
        ):
            rows = window(valid_rows, PERIOD_LOOKBACK_DAYS)
            est = timed(
                column, "estimate_periods", stages.estimate_periods, rows, [DAY], PERIOD_LOOKBACK_DAYS
            )
            reg = timed(
                column,
                "regularize_series (method chosen)",
                stages.regularize_series,
                rows,
                est,
                [DAY],
                chosen,
                lookback_days=PERIOD_LOOKBACK_DAYS,
                **options,
            )
            reg_window = window(pd.concat([reg_before, reg], ignore_index=True), ANOMALY_LOOKBACK_DAYS)
            den = timed(
                column, "denoise_series", stages.denoise_series, reg_window, [DAY], ANOMALY_LOOKBACK_DAYS
            )
            periods = est["period_s"].dropna()
            seasons = (
                sorted(seasonal_periods(pd.Timedelta(seconds=float(periods.iloc[0])))) if len(periods) else []
            )
            den_window = window(pd.concat([den_before, den], ignore_index=True), DECOMPOSITION_LOOKBACK_DAYS)
            timed(
                column,
                "decompose_series",
                stages.decompose_series,
                den_window,
                est,
                [DAY],
                seasons,
                lookback_days=DECOMPOSITION_LOOKBACK_DAYS,
            )
    columns = list(cpu)
    print(
        f"### Per-series stages on one day, with and without history ({series} generated series, "
        "one process)\n"
    )
    print("| stage | " + " | ".join(f"{c}: CPU ms per series" for c in columns) + " | ratio |")
    print("|---|" + "---:|" * (len(columns) + 1))
    for name in cpu[columns[0]]:
        first, later = (1000 * cpu[c][name] / series for c in columns)
        print(f"| {name} | {first:.1f} | {later:.1f} | {later / first:.1f}x |")
    first, later = (1000 * sum(cpu[c].values()) / series for c in columns)
    print(f"| **the four stages** | **{first:.1f}** | **{later:.1f}** | **{later / first:.1f}x** |")


def _profile_core(series: int) -> None:
    from tsplatform.assets.clean import validate_series
    from tsplatform.partitions import ANOMALY_LOOKBACK_DAYS, DECOMPOSITION_LOOKBACK_DAYS, PERIOD_LOOKBACK_DAYS
    from tsplatform.settings import get_settings
    from tsplatform.timeseries import stages
    from tsplatform.timeseries.decompose import seasonal_periods

    raw = generate_day(DAY, series=series).to_pandas()
    settings, days, now = get_settings(), [DAY], pd.Timestamp.now(tz="UTC")
    fresh = {"imputation_method": "linear", "imputation_selected": (DAY - dt.timedelta(days=1)).isoformat()}
    cpu: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., pd.DataFrame], *args: object, **kwargs: object) -> pd.DataFrame:
        started = time.process_time()
        out = fn(*args, **kwargs)
        cpu[name] = cpu.get(name, 0.0) + time.process_time() - started
        return out

    checked = timed("validate_series (all series at once)", validate_series, raw, DAY, now)
    valid_all = checked[checked["reason"].isna()]
    sources = [_tagged(valid_all, "validated", valid_all["value"], pd.Series(False, index=valid_all.index))]
    denoised, first_days = [], []
    for _, valid in valid_all.groupby("series_id", sort=False):
        est = timed("estimate_periods", stages.estimate_periods, valid, days, PERIOD_LOOKBACK_DAYS)
        regular = {}
        for label, state in ((NO_STATE, None), ("method chosen", fresh)):
            regular[label] = timed(
                f"regularize_series ({label})",
                stages.regularize_series,
                valid,
                est,
                days,
                state,
                lookback_days=PERIOD_LOOKBACK_DAYS,
                max_gap_s=settings.impute_max_gap_s,
                reselect_days=settings.imputation_reselect_days,
            )
        reg = regular["method chosen"]
        first_days.append(regular[NO_STATE])
        den = timed("denoise_series", stages.denoise_series, reg, days, ANOMALY_LOOKBACK_DAYS)
        periods = est["period_s"].dropna()
        seasons = (
            sorted(seasonal_periods(pd.Timedelta(seconds=float(periods.iloc[0])))) if len(periods) else []
        )
        timed(
            "decompose_series",
            stages.decompose_series,
            den,
            est,
            days,
            seasons,
            lookback_days=DECOMPOSITION_LOOKBACK_DAYS,
        )
        denoised.append(den)
        sources += [
            _tagged(reg, "regularized", reg["value"], reg["is_imputed"]),
            _tagged(den, "denoised", den["value"], den["is_anomaly"]),
            _tagged(est, "estimate", est["period_s"], pd.Series(False, index=est.index)),
        ]
    timed("hourly_series (all series at once)", stages.hourly_series, pd.concat(denoised), days)
    timed("profile_series (all series at once)", stages.profile_series, pd.concat(sources), days)
    steady = sum(v for k, v in cpu.items() if "no state" not in k)
    first = steady - cpu["regularize_series (method chosen)"] + cpu[f"regularize_series ({NO_STATE})"]
    selecting = sum(1 for frame in first_days if frame["imputation_selected"].notna().any())
    print(f"### Core chain CPU per series ({series} generated series, one process)\n")
    print("| stage | CPU ms per series |")
    print("|---|---:|")
    for name, value in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {1000 * value / series:.1f} |")
    print(
        f"\n{selecting} of the {series} series have a slot to fill on their first day and select an "
        "imputation method there.\n"
        f"\nchain per series: {1000 * first / series:.0f} ms on a series' first day, "
        f"{1000 * steady / series:.0f} ms once chosen; x 10,000 series = {10_000 * first / series:.0f} / "
        f"{10_000 * steady / series:.0f} CPU s (the 60 s goal on 2 cores is 120 CPU s for everything)"
    )


def run_peer(lake: Lake, assets: list[str], out_dir: Path) -> dict[str, float]:
    """:func:`run_peer_chain` over the raw day in this one process, reading the lake and writing each
    asset's rows as Parquet; CPU and wall seconds. BLAS and OpenMP pools are held to one thread, as Spark
    holds its Python workers (``OMP_NUM_THREADS`` = 1 per task): with OpenBLAS's default two threads the
    peer spent 1,424 CPU s in 750 s wall on the 1.44M day, the second thread mostly spinning."""
    import scipy.linalg  # noqa: F401  (load every BLAS the chain uses before limiting them)
    import statsmodels.api  # noqa: F401
    from threadpoolctl import threadpool_limits

    started_cpu, started = time.process_time(), time.perf_counter()
    raw = lake.read_partition("raw_readings", DAY).to_pandas()
    with threadpool_limits(1):
        outputs = run_peer_chain(raw, assets)
    for asset, frame in outputs.items():
        frame = frame.copy()
        for column in frame.select_dtypes("object").columns:
            frame[column] = frame[column].astype(str)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out_dir / f"{asset}.parquet")
    return {
        "cpu_s": time.process_time() - started_cpu,
        "wall_s": time.perf_counter() - started,
        "steps": len(outputs),
    }


# --- the Spark runs ----------------------------------------------------------------------------------
@dataclass
class Sampled:
    """What psutil saw of one process tree."""

    cpu: dict[int, float] = field(default_factory=dict)  # pid -> last user+system CPU s
    role: dict[int, str] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)  # role -> peak of the role's summed RSS
    peak_single: dict[str, int] = field(default_factory=dict)  # role -> largest single process
    peak_total: int = 0  # peak of the whole tree's summed RSS
    #: the driver JVM's threads: (pid, tid) -> (kind, CPU s at its last sample)
    jvm_threads: dict[tuple[int, int], tuple[str, float]] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        """User + system CPU of every process seen, each at its last sample (at most one interval of a
        process's last moments missed): processes nobody waits for (the Spark JVM, workers) count too."""
        return sum(self.cpu.values())


SPARK_ROLES = ("driver JVM", "python workers")


def _role(proc: psutil.Process) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    if "java" in os.path.basename(proc.cmdline()[0] if proc.cmdline() else ""):
        return "driver JVM"
    if "pyspark.daemon" in cmd or "pyspark/daemon" in cmd or "pyspark.worker" in cmd:
        return "python workers"
    if "python" in cmd:
        return "python driver"
    return "other"


def tree_cpu(root: psutil.Process) -> dict[int, float]:
    """User + system CPU s of ``root`` and its descendants now, by pid."""
    out = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        out[proc.pid] = times.user + times.system
    return out


#: what a driver JVM's threads are, by the start of their (15-character) Linux thread name
JVM_THREAD_KINDS = (
    ("C1 Compiler", "JIT compilers"),
    ("C2 Compiler", "JIT compilers"),
    ("Executor task", "executor tasks"),
    ("GC Thread", "garbage collector"),
    ("VM Thread", "garbage collector"),
)
JVM_KINDS = ("executor tasks", "JIT compilers", "garbage collector", "other threads")


def _thread_kind(name: str) -> str:
    return next((kind for prefix, kind in JVM_THREAD_KINDS if name.startswith(prefix)), "other threads")


def jvm_thread_cpu(pid: int) -> dict[tuple[int, int], tuple[str, float]]:
    """User + system CPU s of each live thread of process ``pid`` now, with its kind (Linux ``/proc``; empty
    elsewhere or once the process is gone)."""
    out: dict[tuple[int, int], tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    name = f.read().strip()
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[(pid, int(tid))] = (_thread_kind(name), (int(fields[11]) + int(fields[12])) / tick)
    return out


def record_jvm_threads(seen: Sampled, pid: int, before: dict[tuple[int, int], float]) -> None:
    """The JVM ``pid``'s threads now into ``seen.jvm_threads``, less the CPU s each had used ``before``."""
    for key, (kind, cpu) in jvm_thread_cpu(pid).items():
        seen.jvm_threads[key] = (kind, cpu - before.get(key, 0.0))


def jvm_cpu_by_kind(seen: Sampled) -> dict[str, float]:
    """The driver JVM's CPU s by thread kind (``JVM_KINDS``) and ``not attributed``: what threads that ended
    between two samples used (the JVM's total minus its threads' last samples)."""
    out = dict.fromkeys(JVM_KINDS, 0.0)
    for kind, cpu in seen.jvm_threads.values():
        out[kind] += cpu
    total = sum(c for pid, c in seen.cpu.items() if seen.role.get(pid) == "driver JVM")
    out["not attributed"] = max(0.0, total - sum(out.values()))
    return out


def sample_tree(
    roots: list[psutil.Process],
    seen: Sampled,
    stop: threading.Event,
    interval_s: float = 0.2,
    baseline: dict[int, float] | None = None,
    thread_baseline: dict[tuple[int, int], float] | None = None,
    threads_every: int = 5,
) -> None:
    """Until ``stop``: every ``interval_s``, CPU and RSS of ``roots`` and their descendants into ``seen``, and
    every ``threads_every`` samples the driver JVM's CPU per thread; ``baseline`` / ``thread_baseline``: CPU
    s a process / thread had already used before (a long-lived server's), not counted."""
    baseline, thread_baseline = baseline or {}, thread_baseline or {}
    samples = 0
    while not stop.is_set():
        samples += 1
        procs = []
        for root in roots:
            with contextlib.suppress(psutil.Error):
                procs += [root, *root.children(recursive=True)]
        by_role: dict[str, int] = {}
        for proc in procs:
            try:
                times = proc.cpu_times()
                rss = proc.memory_info().rss
                # what the process is now (a launcher script execs java, a JVM's fork execs the Python
                # daemon); a daemon's forks look like any python and keep the role their parent gave them;
                # an exited process not yet reaped has no command line ("other"): it keeps its role
                role = _role(proc)
                cached = seen.role.get(proc.pid)
                if (role not in SPARK_ROLES and cached in SPARK_ROLES) or (role == "other" and cached):
                    role = cached
            except psutil.Error:
                continue
            if role == "python driver" and proc not in roots:  # forks of the pyspark daemon
                parent = proc.parent()
                if parent is not None and seen.role.get(parent.pid) == "python workers":
                    role = "python workers"
            seen.role[proc.pid] = role
            seen.cpu[proc.pid] = times.user + times.system - baseline.get(proc.pid, 0.0)
            if role == "driver JVM" and samples % threads_every == 1:
                record_jvm_threads(seen, proc.pid, thread_baseline)
            by_role[role] = by_role.get(role, 0) + rss
            seen.peak_single[role] = max(seen.peak_single.get(role, 0), rss)
        for role, rss in by_role.items():
            seen.peak_rss[role] = max(seen.peak_rss.get(role, 0), rss)
        seen.peak_total = max(seen.peak_total, sum(by_role.values()))
        stop.wait(interval_s)


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
) -> dict[str, object]:
    """One ``dagster asset materialize`` in a fresh process tree; timings, CPU, RSS and load. With
    ``last_day``, the days ``day...last_day`` as one backfill (``--partition-range``: one run per asset). With
    ``event_log``, Spark writes its event log there (``bench.spark_events`` reads it). With ``server``
    (``sc://`` address, pid), the run is a client of that Spark Connect server, whose process tree is
    sampled beside the run's (only the CPU it uses during the run counts); with ``jfr`` too, a Flight
    Recorder recording of the server during the run is written there (``bench.jfr_profile`` reads it)."""
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
    if event_log is not None:
        event_log.mkdir(parents=True, exist_ok=True)
        conf = {
            "spark.eventLog.enabled": "true",
            "spark.eventLog.compress": "false",
            "spark.eventLog.dir": event_log.resolve().as_uri(),
        }
        env["TSPLATFORM_SPARK_CONF"] = json.dumps(conf)
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
    started = time.perf_counter()
    server_proc = psutil.Process(server[1]) if server is not None else None
    baseline = tree_cpu(server_proc) if server_proc is not None else {}
    threads_before = {k: cpu for pid in baseline for k, (_, cpu) in jvm_thread_cpu(pid).items()}
    if jfr is not None and server is not None:
        jcmd(server[1], "JFR.start", f"name={jfr.stem}", "settings=profile")
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
    }


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


def spark_server(work: Path, master: str) -> SparkServer:
    """A Spark Connect server for ``master`` on the runs' state dir (their metastore and warehouse)."""
    from tsplatform.settings import Settings

    settings = Settings(state_dir=work / "state", spark_master=master)
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
    server = spark_server(work, master) if args.spark_connect else None
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
            if run_log is not None:
                print(f"Spark jobs of {runs[-1]['label']} ({run_log}):\n", file=sys.stderr)
                print(spark_events.report(spark_events.read_jobs(run_log), 25), file=sys.stderr)
    finally:
        if server is not None:
            server.manager.down()
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
        for run in runs:
            if run.get("tag") == "again":  # the peer selects imputation methods: compare its day only
                continue
            cores = int(run["master"][len("local[") : -1]) if run["master"].startswith("local[") else 1
            print(
                f"- {run['label']}: cost per core = wall x {cores} / peer wall = "
                f"{run['wall_s'] * cores / peer['wall_s']:.2f}x (goal <= 1.5x); tree CPU / peer CPU = "
                f"{run['cpu_s'] / peer['cpu_s']:.2f}x"
            )


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
    if args.gap_rate != GAP_RATE:
        name += f"_gap_rate_{round(100 * args.gap_rate)}"
    if args.spark_connect:
        name += "_spark_connect"
    if args.history:
        name += f"_history_{args.history}"
    try:
        with recorded(name, write=args.write, module="bench.graph_day"):
            lake = Lake(str(work / "lake"))
            cpu0, t0 = time.process_time(), time.perf_counter()
            offset = 0
            for back in range(args.history, 0, -1):  # the same series on the days before, other gaps
                past = DAY - dt.timedelta(days=back)
                older = generate_day(
                    past,
                    series=args.series,
                    samples=args.samples,
                    gap_rate=args.gap_rate,
                    gap_seed=past.toordinal(),
                    first_offset=offset,
                )
                write_day(lake, past, older, files=args.files)
                offset += older.num_rows
            table = generate_day(
                DAY, series=args.series, samples=args.samples, gap_rate=args.gap_rate, first_offset=offset
            )
            write_day(lake, DAY, table, files=args.files)
            if args.again:  # the next day: the same series with other gaps (offsets after the first day's)
                following = generate_day(
                    NEXT_DAY,
                    series=args.series,
                    samples=args.samples,
                    gap_rate=args.gap_rate,
                    gap_seed=NEXT_DAY.toordinal(),
                    first_offset=offset + table.num_rows,
                )
                write_day(lake, NEXT_DAY, following, files=args.files)
            print(
                f"generated and wrote {table.num_rows:,} readings in {time.perf_counter() - t0:.1f} s "
                f"({time.process_time() - cpu0:.1f} CPU s); {args.gap_rate:.0%} of the series with a gap\n"
            )
            jars = os.environ.get("TSPLATFORM_JARS_DIR") or str(REPO / ".tsplatform" / "jars")
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
            report(args, table.num_rows, assets, runs, peer)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
