"""Missing-sample detection accuracy on real regular series with randomly masked samples.

Series: the real series (see ``bench/accuracy/datasets.py``) that have no missing sample of their own at
their nominal period (divide and round on the unmasked stamps finds none), i.e. the regular ones, incl.
the ±1 s jittered UCI files. Per series and seed: drop 5% of the samples at random plus 10 runs of 2–100
consecutive samples (never the first or last), then run the full pipeline on the remaining stamps
(``estimate_period`` then ``detect_gaps``). A detected time matches a masked sample when both fall on the
same nominal grid step (``round((t - t_first) / P)``); precision / recall / F1 over all series and seeds.

Baseline: ``pandas`` resampling on the median difference anchored at the first stamp
(``Series.resample(median_diff, origin=first).count() == 0`` bins are "missing").

    .venv/bin/python -m bench.accuracy.gaps [--datasets-dir ../shared/datasets] [--seeds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bench.accuracy.datasets import DEFAULT_DATASETS_DIR, all_real
from bench.record import recorded
from tsplatform.timeseries import detect_gaps, estimate_period
from tsplatform.timeseries.period import sorted_distinct, to_epoch_ns


def mask_samples(n: int, rng: np.random.Generator) -> np.ndarray:
    drop = rng.random(n) < 0.05
    for _ in range(10):
        length = int(rng.integers(2, 101))
        start = int(rng.integers(1, max(2, n - length - 1)))
        drop[start : start + length] = True
    drop[0] = drop[-1] = False
    return drop


def steps(times_ns: np.ndarray, origin_ns: int, period_ns: int) -> set[int]:
    return set(np.rint((times_ns - origin_ns) / period_ns).astype(np.int64).tolist())


def baseline_missing(t_ns: np.ndarray) -> np.ndarray:
    idx = pd.DatetimeIndex(t_ns.astype("datetime64[ns]"))
    med = pd.Timedelta(int(np.median(np.diff(t_ns))), unit="ns")
    counts = pd.Series(1, index=idx).resample(med, origin=idx[0]).count()
    return counts.index[counts.to_numpy() == 0].asi8


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="also record the report in BENCHMARKS.md")
    args = parser.parse_args()
    with recorded("bench.accuracy.gaps", write=args.write):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark itself; prints its report (markdown)."""
    totals = {"ours": [0, 0, 0], "baseline": [0, 0, 0]}
    rows = []
    skipped = []
    for s in all_real(args.datasets_dir):
        t = sorted_distinct(to_epoch_ns(s.values.index))
        p = s.nominal_period.value
        if detect_gaps(t.astype("datetime64[ns]"), s.nominal_period).n_missing:
            skipped.append(s.name)
            continue
        per = {"ours": [0, 0, 0], "baseline": [0, 0, 0]}
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            drop = mask_samples(t.size, rng)
            kept = t[~drop]
            truth = steps(t[drop], t[0], p)
            report = detect_gaps(kept.astype("datetime64[ns]"), estimate_period(kept))
            found = {
                "ours": steps(report.missing.asi8, t[0], p),
                "baseline": steps(baseline_missing(kept), t[0], p),
            }
            for name, got in found.items():
                tp, fp, fn = len(got & truth), len(got - truth), len(truth - got)
                for acc in (per[name], totals[name]):
                    acc[0] += tp
                    acc[1] += fp
                    acc[2] += fn
        rows.append((s.name, int(drop.sum()), per))

    print("## Missing-sample detection (masked real series)\n")
    print(
        f"Seeds per series: {args.seeds}; series used: {len(rows)}; "
        f"skipped (own gaps): {', '.join(skipped)}.\n"
    )
    print("| method | TP | FP | FN | precision | recall | F1 |")
    print("|---|---|---|---|---|---|---|")
    for name, label in (
        ("ours", "estimate_period + detect_gaps (ours)"),
        ("baseline", "pandas resample on median diff"),
    ):
        tp, fp, fn = totals[name]
        pr, rc, f1 = prf(tp, fp, fn)
        print(f"| {label} | {tp} | {fp} | {fn} | {pr:.4f} | {rc:.4f} | {f1:.4f} |")
    print("\n| series | masked (last seed) | ours F1 | baseline F1 |")
    print("|---|---|---|---|")
    for name, masked, per in rows:
        print(f"| {name} | {masked} | {prf(*per['ours'])[2]:.4f} | {prf(*per['baseline'])[2]:.4f} |")


if __name__ == "__main__":
    main()
