"""Shared helpers of the ML benchmarks: where the data sets are, ETTh1's standard split, timing."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent

#: ETTh1's standard split (Informer, Zhou et al. 2021; used by DLinear, PatchTST...): 12/4/4 months of
#: 30 days of hourly values.
ETT_TRAIN, ETT_VAL, ETT_TEST = 12 * 30 * 24, 4 * 30 * 24, 4 * 30 * 24


def datasets_dir(explicit: Path | None = None) -> Path:
    """``explicit``, else ``TSPLATFORM_DATASETS_DIR``, else ``../shared/datasets`` beside the repo."""
    if explicit is not None:
        return explicit
    env = os.environ.get("TSPLATFORM_DATASETS_DIR")
    if env:
        return Path(env)
    for candidate in (REPO.parent / "shared" / "datasets", REPO.parent.parent / "shared" / "datasets"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("datasets not found: pass --datasets-dir or set TSPLATFORM_DATASETS_DIR")


@dataclass(frozen=True)
class ETTSplit:
    """The z-scored series (mean/std of the training part) and the split borders (indices)."""

    values: np.ndarray  # train + val + test, z-scored
    train_end: int
    val_end: int
    test_end: int
    mean: float
    std: float

    @property
    def train(self) -> np.ndarray:
        return self.values[: self.train_end]

    @property
    def val(self) -> np.ndarray:
        return self.values[self.train_end : self.val_end]


def load_ett(root: Path, name: str = "ETTh1", column: str = "OT") -> ETTSplit:
    """ETTh1/ETTh2 ``column``, cut at 20 months, z-score fitted on the first 12 (the papers' protocol)."""
    raw = pd.read_csv(root / "ett" / f"{name}.csv")[column].to_numpy(dtype=float)
    a, b, c = ETT_TRAIN, ETT_TRAIN + ETT_VAL, ETT_TRAIN + ETT_VAL + ETT_TEST
    mean, std = float(raw[:a].mean()), float(raw[:a].std())
    return ETTSplit((raw[:c] - mean) / std, a, b, c, mean, std)


@dataclass
class Timing:
    wall_s: float = 0.0
    cpu_s: float = 0.0
    load_start: float = 0.0
    load_end: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.wall_s:.1f} s wall, {self.cpu_s:.1f} CPU-s (this process), "
            f"1-min load {self.load_start:.1f} -> {self.load_end:.1f}"
        )


@contextmanager
def timed() -> Iterator[Timing]:
    """Wall time, this process's CPU time and the 1-min load average around a block."""
    timing = Timing(load_start=os.getloadavg()[0])
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        timing.wall_s = time.perf_counter() - wall
        timing.cpu_s = time.process_time() - cpu
        timing.load_end = os.getloadavg()[0]
