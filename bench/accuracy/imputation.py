"""Imputation accuracy: RMSE per method and of the automatic choice on masked real series.

Every real series (see ``bench/accuracy/datasets.py``) is regularised (``estimate_period`` +
``regularize``) and cut to its first ``--max-samples`` grid points (default 5000, to bound the run time).
Two masking regimes hide about 10% of the observed values:

* ``own``: gaps drawn from the series' own gap-length distribution (``mask_like_gaps``; 1–12 samples
  when the series has no gaps), every series;
* ``season``: gaps of 1, 1.25 and 1.5 days (a season or longer), on the series with a daily cycle
  (nyc_taxi, ambient_temperature, ETTh1/ETTh2 OT).

Each method fills the masked series; RMSE on the masked values. The automatic choice is
``select_imputation`` run on the masked series itself (its backtest masks further values, drawn from the
masked series' gap lengths, so it never sees the benchmark's hidden truth), scored on the same values.
Goals: auto within 5% of the per-series best on >= 90% of (series, regime) cases; on ``season`` gaps the
auto choice >= 20% better than linear. Also printed (information only): the CPU time of each
``select_imputation`` call.

    .venv/bin/python -m bench.accuracy.imputation [--datasets-dir /work/shared/datasets] [--max-samples 5000]
        [--seeds 1]   # --seeds N: N independent masks per case, RMSE pooled (less luck on spiky series)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.accuracy.datasets import DEFAULT_DATASETS_DIR, all_real
from tsplatform.timeseries import IMPUTATION_METHODS, estimate_period, impute, regularize, select_imputation
from tsplatform.timeseries.impute import default_season_length, mask_like_gaps

SELECT_CPU: list[tuple[int, float]] = []  # (samples, CPU seconds) per select_imputation call (information)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def evaluate(series: pd.Series, masks: list[np.ndarray], seed: int) -> tuple[dict[str, float], str, float]:
    """RMSE per method over all values hidden by ``masks`` (one imputation run per mask), and the RMSE of
    ``select_imputation``'s choices: made separately on each masked series, each scored on its own mask."""
    season = default_season_length(series)
    sq: dict[str, list[np.ndarray]] = {m: [] for m in IMPUTATION_METHODS}
    auto_sq: list[np.ndarray] = []
    chosen: list[str] = []
    for mask in masks:
        truth = series.to_numpy()[mask]
        hidden = series.copy()
        hidden[mask] = np.nan
        filled = {m: impute(hidden, m, season_length=season).to_numpy()[mask] for m in IMPUTATION_METHODS}
        for m, values in filled.items():
            sq[m].append((values - truth) ** 2)
        t0 = time.process_time()
        choice = select_imputation(hidden, seed=seed, season_length=season).method
        SELECT_CPU.append((len(series), time.process_time() - t0))
        chosen.append(choice)
        auto_sq.append((filled[choice] - truth) ** 2)
    scores = {m: float(np.sqrt(np.mean(np.concatenate(v)))) for m, v in sq.items()}
    label = "/".join(sorted(set(chosen), key=chosen.index))
    return scores, label, float(np.sqrt(np.mean(np.concatenate(auto_sq))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--max-samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--seeds", type=int, default=1, help="masks per (series, regime); RMSE pooled over all of them"
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    results = []  # (series, regime, scores, chosen, auto_rmse)
    for s in all_real(args.datasets_dir):
        values = s.values.dropna()
        regular = regularize(values, estimate_period(values.index)).iloc[: args.max_samples]
        masks = [mask_like_gaps(regular, seed=args.seed + 1000 + i) for i in range(args.seeds)]
        results.append((s.name, "own", *evaluate(regular, masks, args.seed)))
        if s.seasonal:
            m = default_season_length(regular)
            assert m is not None, s.name
            lengths = (m, m + m // 4, m + m // 2)
            masks = [
                mask_like_gaps(regular, seed=args.seed + 2000 + i, lengths=lengths) for i in range(args.seeds)
            ]
            results.append((s.name, "season", *evaluate(regular, masks, args.seed)))
    elapsed = time.perf_counter() - t0

    sizes = np.array([n for n, _ in SELECT_CPU])
    cpu = np.array([c for _, c in SELECT_CPU])
    within = [auto <= 1.05 * min(scores.values()) for _, _, scores, _, auto in results]
    print("## Imputation: RMSE on masked real series\n")
    print(
        f"{len(results)} (series, regime) cases, first {args.max_samples} grid points per series, "
        f"seed {args.seed}, {args.seeds} mask(s) per case; ran in {elapsed:.0f} s.\n"
    )
    print(
        f"- automatic choice within 5% of the per-series best: **{sum(within)}/{len(within)} "
        f"({100 * sum(within) / len(within):.1f}%)** (goal >= 90%)"
    )
    print(
        f"- select_imputation CPU time per call: median {np.median(cpu):.2f} s, max {cpu.max():.2f} s "
        f"({len(cpu)} calls on {int(sizes.min())}-{int(sizes.max())} samples; "
        f"median {1000 * np.median(cpu / sizes):.2f} s per 1000 samples)"
    )
    season_rows = [r for r in results if r[1] == "season"]
    for name, _, scores, chosen, auto in season_rows:
        gain_auto = 1 - auto / scores["linear"]
        gain_seasonal = 1 - scores["seasonal"] / scores["linear"]
        print(
            f"- season-long gaps, {name}: auto ({chosen}) {100 * gain_auto:+.1f}% vs linear, "
            f"seasonal {100 * gain_seasonal:+.1f}% vs linear (goal: >= 20% better)"
        )
    print()
    header = " | ".join(IMPUTATION_METHODS)
    print(f"| series | gaps | {header} | auto (choice) | auto / best |")
    print("|---|---|" + "---|" * len(IMPUTATION_METHODS) + "---|---|")
    for name, regime, scores, chosen, auto in results:
        best = min(scores.values())
        cells = " | ".join(
            (f"**{scores[m]:.4g}**" if scores[m] == best else f"{scores[m]:.4g}") for m in IMPUTATION_METHODS
        )
        print(f"| {name} | {regime} | {cells} | {auto:.4g} ({chosen}) | {auto / best:.3f} |")


if __name__ == "__main__":
    main()
