"""Speed of ``estimate_period`` on 1M timestamps (goal <= 1 s), median of several runs.

Two inputs of 1,000,000 stamps each: a clean 10-min grid, and a degraded one (per-stamp jitter ±10% of
the period, 30% missing, 1% duplicated rows, shuffled; whole seconds). Peers measured in the same run on
the same input: the median difference (sort + diff + median) and ``pandas.infer_freq`` (clean grid only;
it returns None on the degraded one).

    .venv/bin/python -m bench.speed_period [--n 1000000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from tsplatform.timeseries import estimate_period


def degraded(n: int, seed: int = 0) -> pd.DatetimeIndex:
    rng = np.random.default_rng(seed)
    p = 600 * 10**9
    k = np.arange(int(n / 0.7 / 1.01) + 1, dtype=np.int64)
    k = k[rng.random(k.size) >= 0.3]
    t = k * p + 1_700_000_000 * 10**9 + np.rint(rng.uniform(-0.1, 0.1, k.size) * p).astype(np.int64)
    t = np.rint(t / 1e9).astype(np.int64) * 10**9
    t = np.concatenate([t, t[rng.random(t.size) < 0.01]])[:n]
    rng.shuffle(t)
    return pd.DatetimeIndex(t.astype("datetime64[ns]")).tz_localize("UTC")


def clean(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="10min", tz="UTC")


def median_diff(ts: pd.DatetimeIndex) -> pd.Timedelta:
    t = np.sort(ts.asi8)
    return pd.Timedelta(int(np.median(np.diff(t))), unit="ns")


def timed(f: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Median wall-clock and median CPU (process) time of ``repeats`` calls after one warm-up call."""
    out = f()  # warm-up (imports, caches)
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = f()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    inputs = {
        "clean 10-min grid": clean(args.n),
        "degraded (jitter, missing, dups, shuffled)": degraded(args.n),
    }
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"## estimate_period speed ({args.n:,} timestamps, median of {args.repeats} runs)\n")
    print(
        f"{os.cpu_count()} CPUs, 1-min load average at start {load:.1f} (shared machine: wall time grows "
        "with load; CPU time is the process's own).\n"
    )
    print("| input | method | median wall time (s) | median CPU time (s) | result |")
    print("|---|---|---|---|---|")
    for label, ts in inputs.items():
        peers: dict[str, Callable[[], object]] = {
            "estimate_period (ours)": lambda ts=ts: estimate_period(ts).period,
            "median difference": lambda ts=ts: median_diff(ts),
        }
        if label.startswith("clean"):
            peers["pandas.infer_freq"] = lambda ts=ts: pd.infer_freq(ts)
        for name, f in peers.items():
            wall, cpu, out = timed(f, args.repeats)
            print(f"| {label} | {name} | {wall:.3f} | {cpu:.3f} | {out} |")


if __name__ == "__main__":
    main()
