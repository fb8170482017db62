"""Imputation accuracy: RMSE per method and of the automatic choice on masked real series.

Every real series (see ``bench/accuracy/datasets.py``) is regularised (``estimate_period`` +
``regularize``) and cut to its first ``--max-samples`` grid points (default 5000, to bound the run time).
Two masking regimes hide about 10% of the observed values:

* ``own``: gaps drawn from the series' own gap-length distribution (``mask_like_gaps``; 1–12 samples
  when the series has no gaps), every series;
* ``season``: gaps of 1, 1.25 and 1.5 days (a season or longer), on the series with a daily cycle
  (nyc_taxi, ambient_temperature, ETTh1/ETTh2 OT).

Each (series, regime) case is masked ``--seeds`` times (default 10) independently. Each method fills each
masked series; its RMSE for the case is pooled over the hidden values of all masks, so the per-series best
method is a property of the series rather than of one mask (on spiky series the best method on a single
10% mask depends on which spikes the mask happens to hide). The automatic choice is ``select_imputation``
run on each masked series itself (its backtest masks further values, drawn from the masked series' gap
lengths, so it never sees the benchmark's hidden truth), scored on the same hidden values and pooled the
same way.

Goals: auto within 5% of the per-series best on >= 90% of (series, regime) cases; on ``season`` gaps the
auto choice >= 20% better than linear. Also printed: the single-mask view (auto within 5% of the best
method on that one mask, over all case x mask pairs) beside its ceiling for any fixed per-series choice,
i.e. the method that is best pooled over the case's masks, chosen with hindsight; and the CPU time of
each ``select_imputation`` call.

    .venv/bin/python -m bench.accuracy.imputation [--datasets-dir ../shared/datasets] [--max-samples 5000]
        [--seeds 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.accuracy.datasets import DEFAULT_DATASETS_DIR, all_real
from bench.record import recorded
from tsplatform.timeseries import IMPUTATION_METHODS, estimate_period, impute, regularize, select_imputation
from tsplatform.timeseries.impute import default_season_length, mask_like_gaps

SELECT_CPU: list[tuple[int, float]] = []  # (samples, CPU seconds) per select_imputation call (information)
WITHIN = 1.05  # "within 5% of the best"


@dataclass(frozen=True)
class Case:
    """One (series, regime) case: squared errors per method and of the automatic choice, per mask."""

    name: str
    regime: str
    squared: dict[str, list[np.ndarray]]  # method -> per-mask squared errors on the hidden values
    auto_squared: list[np.ndarray]
    chosen: list[str]

    def pooled(self) -> dict[str, float]:
        """RMSE per method over the hidden values of all masks."""
        return {m: float(np.sqrt(np.mean(np.concatenate(e)))) for m, e in self.squared.items()}

    def auto(self) -> float:
        return float(np.sqrt(np.mean(np.concatenate(self.auto_squared))))

    def per_mask(self) -> tuple[np.ndarray, np.ndarray]:
        """(masks x methods RMSE, auto RMSE per mask)."""
        table = np.array(
            [[np.sqrt(np.mean(e[k])) for e in self.squared.values()] for k in range(len(self.chosen))]
        )
        return table, np.sqrt([np.mean(e) for e in self.auto_squared])


def evaluate(name: str, regime: str, series: pd.Series, masks: list[np.ndarray], seed: int) -> Case:
    """Fill every masked copy of ``series`` with every method and with ``select_imputation``'s choice."""
    season = default_season_length(series)
    squared: dict[str, list[np.ndarray]] = {m: [] for m in IMPUTATION_METHODS}
    auto_squared: list[np.ndarray] = []
    chosen: list[str] = []
    for mask in masks:
        truth = series.to_numpy()[mask]
        hidden = series.copy()
        hidden[mask] = np.nan
        filled = {m: impute(hidden, m, season_length=season).to_numpy()[mask] for m in IMPUTATION_METHODS}
        for m, values in filled.items():
            squared[m].append((values - truth) ** 2)
        t0 = time.process_time()
        choice = select_imputation(hidden, seed=seed, season_length=season).method
        SELECT_CPU.append((len(series), time.process_time() - t0))
        chosen.append(choice)
        auto_squared.append((filled[choice] - truth) ** 2)
    return Case(name, regime, squared, auto_squared, chosen)


def choices_label(chosen: list[str]) -> str:
    counts = pd.Series(chosen).value_counts()
    return ", ".join(f"{m} {n}" if len(counts) > 1 else m for m, n in counts.items())


def report(cases: list[Case], args: argparse.Namespace, elapsed: float) -> None:
    sizes = np.array([n for n, _ in SELECT_CPU])
    cpu = np.array([c for _, c in SELECT_CPU])
    within = [c.auto() <= WITHIN * min(c.pooled().values()) for c in cases]
    single = hindsight = pairs = 0
    for c in cases:
        table, auto = c.per_mask()
        fixed = int(np.argmin(list(c.pooled().values())))  # best pooled method, chosen with hindsight
        best = table.min(axis=1)
        single += int(np.sum(auto <= WITHIN * best))
        hindsight += int(np.sum(table[:, fixed] <= WITHIN * best))
        pairs += len(best)
    print("## Imputation: RMSE on masked real series\n")
    print(
        f"{len(cases)} (series, regime) cases, first {args.max_samples} grid points per series, "
        f"seed {args.seed}, {args.seeds} mask(s) per case; ran in {elapsed:.0f} s.\n"
    )
    print(
        f"- automatic choice within 5% of the per-series best (RMSE pooled over the {args.seeds} masks): "
        f"**{sum(within)}/{len(within)} ({100 * sum(within) / len(within):.1f}%)** (goal >= 90%)"
    )
    print(
        f"- single masks: automatic choice within 5% of the best method on that mask in {single}/{pairs} "
        f"({100 * single / pairs:.1f}%); ceiling for a fixed per-series method (the pooled best, chosen "
        f"with hindsight): {hindsight}/{pairs} ({100 * hindsight / pairs:.1f}%)"
    )
    print(
        f"- select_imputation CPU time per call: median {np.median(cpu):.2f} s, max {cpu.max():.2f} s "
        f"({len(cpu)} calls on {int(sizes.min())}-{int(sizes.max())} samples; "
        f"median {1000 * np.median(cpu / sizes):.2f} s per 1000 samples)"
    )
    for c in (c for c in cases if c.regime == "season"):
        pooled = c.pooled()
        table, auto = c.per_mask()
        linear = table[:, IMPUTATION_METHODS.index("linear")]
        per_mask = 100 * (1 - auto / linear)
        print(
            f"- season-long gaps, {c.name}: auto ({choices_label(c.chosen)}) "
            f"{100 * (1 - c.auto() / pooled['linear']):+.1f}% vs linear "
            f"(per mask {per_mask.min():+.0f}% to {per_mask.max():+.0f}%), "
            f"seasonal {100 * (1 - pooled['seasonal'] / pooled['linear']):+.1f}% (goal: >= 20% better)"
        )
    print()
    header = " | ".join(IMPUTATION_METHODS)
    print(f"| series | gaps | {header} | auto (choices) | auto / best |")
    print("|---|---|" + "---|" * len(IMPUTATION_METHODS) + "---|---|")
    for c in cases:
        scores = c.pooled()
        best = min(scores.values())
        cells = " | ".join(
            (f"**{scores[m]:.4g}**" if scores[m] == best else f"{scores[m]:.4g}") for m in IMPUTATION_METHODS
        )
        auto = f"{c.auto():.4g} ({choices_label(c.chosen)})"
        print(f"| {c.name} | {c.regime} | {cells} | {auto} | {c.auto() / best:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--max-samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=10, help="independent masks per (series, regime)")
    parser.add_argument("--write", action="store_true", help="also record the report in BENCHMARKS.md")
    args = parser.parse_args()
    with recorded("bench.accuracy.imputation", write=args.write):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark itself; prints its report (markdown)."""
    t0 = time.perf_counter()
    cases = []
    for s in all_real(args.datasets_dir):
        values = s.values.dropna()
        regular = regularize(values, estimate_period(values.index)).iloc[: args.max_samples]
        masks = [mask_like_gaps(regular, seed=args.seed + 1000 + i) for i in range(args.seeds)]
        cases.append(evaluate(s.name, "own", regular, masks, args.seed))
        if s.seasonal:
            m = default_season_length(regular)
            assert m is not None, s.name
            lengths = (m, m + m // 4, m + m // 2)
            masks = [
                mask_like_gaps(regular, seed=args.seed + 2000 + i, lengths=lengths) for i in range(args.seeds)
            ]
            cases.append(evaluate(s.name, "season", regular, masks, args.seed))
    report(cases, args, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
