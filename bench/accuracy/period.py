"""Period-estimation accuracy: exact-recovery rate of ``estimate_period`` vs baselines.

Real series: every NAB file, ETTh1/2, the 3 UCI occupancy files, the SCD41 and bms sources of the 3 B4B
rooms (22 series), ground truth = the nominal period documented in the datasets README. Synthetic stress
suite: 1344 seeded cases = periods {10, 17, 60, 300, 450, 600, 3600 s} × per-stamp jitter {0, 5, 10, 20 %
of the period} × random missing {0, 30, 50, 60 %} × duplicated rows {0, 5 %} × long gaps {0, 3 of
20–100 periods} × clock roll-back {none, 20 periods, 20.37 periods}, 1500 grid points each, stamps rounded
to whole seconds. "Exact" = equality after each method's rounding.

Baselines: ``pandas.infer_freq`` on the sorted distinct stamps (None = failure), the median difference
rounded to the stamps' resolution (1 s / 1 min as for ours), the exact GCD of the integer differences.

    .venv/bin/python -m bench.accuracy.period [--datasets-dir ../shared/datasets]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.accuracy.datasets import DEFAULT_DATASETS_DIR, all_real
from bench.record import recorded
from tsplatform.timeseries import estimate_period
from tsplatform.timeseries.period import sorted_distinct, timestamp_resolution_ns, to_epoch_ns
from tsplatform_tests.timeseries.synthetic import sampled_grid

PERIODS = ("10s", "17s", "60s", "300s", "450s", "600s", "3600s")
JITTERS = (0.0, 0.05, 0.1, 0.2)
MISSING = (0.0, 0.3, 0.5, 0.6)
DUPLICATES = (0.0, 0.05)
LONG_GAPS = (0, 3)
CLOCK_STEPS = (None, 20.0, 20.37)  # roll-back in periods


def ours(ts: pd.DatetimeIndex) -> pd.Timedelta | None:
    return estimate_period(ts).period


def infer_freq(ts: pd.DatetimeIndex) -> pd.Timedelta | None:
    idx = pd.DatetimeIndex(sorted_distinct(to_epoch_ns(ts)).astype("datetime64[ns]"))
    try:
        freq = pd.infer_freq(idx)
    except (TypeError, ValueError):
        return None
    if freq is None:
        return None
    try:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    except ValueError:
        return None


def median_diff(ts: pd.DatetimeIndex) -> pd.Timedelta | None:
    t = sorted_distinct(to_epoch_ns(ts))
    unit = timestamp_resolution_ns(t)
    return pd.Timedelta(round(float(np.median(np.diff(t))) / unit) * unit, unit="ns")


def exact_gcd(ts: pd.DatetimeIndex) -> pd.Timedelta | None:
    t = sorted_distinct(to_epoch_ns(ts))
    return pd.Timedelta(int(np.gcd.reduce(np.diff(t))), unit="ns")


METHODS: dict[str, Callable[[pd.DatetimeIndex], pd.Timedelta | None]] = {
    "estimate_period (ours)": ours,
    "pandas.infer_freq": infer_freq,
    "median difference": median_diff,
    "exact GCD of differences": exact_gcd,
}


def stress_cases(n: int) -> list[tuple[dict, object]]:
    cases = []
    grid = itertools.product(PERIODS, JITTERS, MISSING, DUPLICATES, LONG_GAPS, CLOCK_STEPS)
    for seed, (period, jitter, missing, dup, long_gaps, step) in enumerate(grid):
        p = pd.Timedelta(period)
        params = {
            "period": period,
            "jitter": jitter,
            "missing": missing,
            "duplicates": dup,
            "long_gaps": long_gaps,
            "clock_step_periods": step,
        }
        cases.append(
            (
                params,
                sampled_grid(
                    n,
                    p,
                    seed=seed,
                    jitter=jitter,
                    missing_rate=missing,
                    duplicate_rate=dup,
                    long_gaps=long_gaps,
                    long_gap_periods=(20, 100),
                    clock_step_back=None if step is None else p * step,
                ),
            )
        )
    return cases


def _fmt(td: pd.Timedelta | None) -> str:
    return "None" if td is None else str(td).replace("0 days ", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--n", type=int, default=1500, help="grid points per stress case")
    parser.add_argument("--write", action="store_true", help="also record the report in BENCHMARKS.md")
    args = parser.parse_args()
    with recorded("bench.accuracy.period", write=args.write):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark itself; prints its report (markdown)."""
    real = all_real(args.datasets_dir)
    real_hits = {m: 0 for m in METHODS}
    rows = []
    for s in real:
        got = {m: f(s.values.index) for m, f in METHODS.items()}
        for m, v in got.items():
            real_hits[m] += v == s.nominal_period
        est = estimate_period(s.values.index)
        rows.append((s.name, s.nominal_period, got, est))

    t0 = time.perf_counter()
    cases = stress_cases(args.n)
    stress_hits = {m: 0 for m in METHODS}
    failures: list[tuple[dict, pd.Timedelta | None]] = []
    by_dim: dict[tuple[str, object], list[int]] = {}
    for params, g in cases:
        for m, f in METHODS.items():
            ok = f(g.timestamps) == g.period
            stress_hits[m] += ok
            if m == "estimate_period (ours)":
                for key in ("jitter", "missing", "clock_step_periods"):
                    by_dim.setdefault((key, params[key]), []).append(int(ok))
                if not ok:
                    failures.append((params, ours(g.timestamps)))
    elapsed = time.perf_counter() - t0

    print("## Period estimation: exact-recovery rate\n")
    print(f"Real series: {len(real)}; synthetic stress cases: {len(cases)} ({args.n} grid points each).\n")
    print("| method | real series (exact) | stress suite (exact) |")
    print("|---|---|---|")
    for m in METHODS:
        print(
            f"| {m} | {real_hits[m]}/{len(real)} ({100 * real_hits[m] / len(real):.1f}%) "
            f"| {stress_hits[m]}/{len(cases)} ({100 * stress_hits[m] / len(cases):.2f}%) |"
        )
    print("\n### Real series (nominal period from the datasets README)\n")
    print("| series | nominal | ours | confidence | jitter | infer_freq | median diff | exact GCD |")
    print("|---|---|---|---|---|---|---|---|")
    for name, nominal, got, est in rows:
        cells = [_fmt(got[m]) for m in METHODS]
        print(
            f"| {name} | {_fmt(nominal)} | {cells[0]} | {est.confidence:.3f} | {_fmt(est.jitter)} "
            f"| {cells[1]} | {cells[2]} | {cells[3]} |"
        )
    print("\n### Stress suite, ours, exact-recovery rate by dimension\n")
    print("| dimension | value | exact |")
    print("|---|---|---|")
    for (key, value), oks in by_dim.items():
        print(f"| {key} | {value} | {sum(oks)}/{len(oks)} ({100 * sum(oks) / len(oks):.1f}%) |")
    print(f"\n### Stress-suite failures of ours ({len(failures)})\n")
    print("| period | jitter | missing | duplicates | long gaps | clock step (periods) | estimate |")
    print("|---|---|---|---|---|---|---|")
    for p, est in failures:
        print(
            f"| {p['period']} | {p['jitter']} | {p['missing']} | {p['duplicates']} | {p['long_gaps']} "
            f"| {p['clock_step_periods']} | {_fmt(est)} |"
        )
    print(f"\n(stress suite ran in {elapsed:.0f} s, all methods)")


if __name__ == "__main__":
    main()
