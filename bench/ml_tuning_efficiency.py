"""Tuning efficiency on ETTh1 (OT, horizon 96): ASHA against the full grid of the study's LSTM space.

The same 30 configurations -- the study's grid hidden_size [2, 4, 8, 16, 32, 64] x num_layers 1..5, at
one learning rate (0.005; the study samples lr loguniform(0.001, 0.1), a grid needs fixed values) --
are searched twice with Ray Tune on the same CPUs: the full grid (FIFO, every trial trains all
``--epochs`` epochs) and ASHA (grace period 1, reduction factor 3: rungs at 1, 3, 9 epochs). Per-trial
early stopping is off (patience = epochs) so that only the scheduler decides how many epochs a trial
gets. LSTM: input 96 as 4 patches of 24 values, last-value normalisation, 1024 windows per epoch.
Reported: trial-epochs spent, best validation MSE reached, the test MSE of each search's champion
(information only: the search decides on validation), wall time and the trials' CPU seconds.

Run: ``.venv/bin/python -m bench.ml_tuning_efficiency [--epochs 9] [--write]``.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from bench.ml_common import datasets_dir, load_ett
from bench.record import recorded
from tsplatform.ml.evaluation import rolling_origin_evaluate
from tsplatform.ml.tuning import STUDY_HIDDEN_SIZES, tune_forecaster

HORIZON = 96


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="also record the report in BENCHMARKS.md")
    args = parser.parse_args()
    with recorded("bench.ml_tuning_efficiency", write=args.write):
        run(args)


def run(args: argparse.Namespace) -> None:
    from ray import tune

    data = load_ett(datasets_dir(args.datasets_dir))
    space = {
        "family": "lstm",
        "input_len": 96,
        "hidden_size": tune.grid_search(list(STUDY_HIDDEN_SIZES)),
        "num_layers": tune.grid_search([1, 2, 3, 4, 5]),
        "lr": 0.005,
    }
    fixed = {"lstm": {"patch_len": 24, "epochs": args.epochs, "patience": args.epochs,
                      "windows_per_epoch": 1024, "batch_size": 64}}  # fmt: skip
    rows = []
    for scheduler in ("fifo", "asha"):
        load_start = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix=f"tune_eff_{scheduler}_") as storage:
            result = tune_forecaster(
                [data.train], [data.val], horizon=HORIZON, param_space=space, fixed_params=fixed,
                num_samples=1, scheduler=scheduler, grace_period=1, reduction_factor=3,
                max_epochs=args.epochs, seed=0, num_cpus=args.num_cpus, storage_dir=Path(storage),
                experiment_name=f"efficiency_{scheduler}",
            )  # fmt: skip
            test = rolling_origin_evaluate(result.champion, data.values, data.val_end, data.test_end, HORIZON)
        cpu = float(np.nansum([t.cpu_s for t in result.trials]))
        best = min(result.trials, key=lambda t: t.best_val_mse)
        rows.append((scheduler, len(result.trials), result.trial_epochs, result.val_metrics["mse"],
                     test.metrics["mse"], result.wall_s, cpu, load_start, os.getloadavg()[0],
                     best.config["hidden_size"], best.config["num_layers"]))  # fmt: skip
        print(f"- {scheduler}: {len(result.trials)} trials, {result.trial_epochs} trial-epochs, "
              f"best val MSE {result.val_metrics['mse']:.4f} (hidden {best.config['hidden_size']}, "
              f"layers {best.config['num_layers']}), {result.wall_s:.0f} s wall", flush=True)  # fmt: skip
    print(f"\n### ASHA vs full grid: 30 LSTM configurations, at most {args.epochs} epochs each, "
          f"{args.num_cpus} CPUs\n")  # fmt: skip
    print("| search | trials | trial-epochs | best val MSE | its test MSE | best config | wall s | "
          "trial CPU-s | 1-min load start/end |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = "full grid (FIFO)" if r[0] == "fifo" else "ASHA (grace 1, rf 3)"
        print(f"| {name} | {r[1]} | {r[2]} | {r[3]:.4f} | {r[4]:.4f} | hidden {r[9]}, layers {r[10]} | "
              f"{r[5]:.0f} | {r[6]:.0f} | {r[7]:.1f} / {r[8]:.1f} |")  # fmt: skip
    fifo, asha = rows
    print(f"\nASHA spent {asha[2] / fifo[2]:.0%} of the grid's trial-epochs and "
          f"{asha[5] / fifo[5]:.0%} of its wall time; best val MSE {asha[3]:.4f} vs {fifo[3]:.4f} "
          f"({(asha[3] - fifo[3]) / fifo[3]:+.1%}).")  # fmt: skip
    assert math.isfinite(asha[3])


if __name__ == "__main__":
    main()
