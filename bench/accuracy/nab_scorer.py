"""A re-implementation of the Numenta Anomaly Benchmark (NAB) scorer, from the published description.

Maths (per file with n rows, windows k = [L_k, R_k] in row indices, width w_k = R_k - L_k + 1, profile
(A_TP, A_FN, A_FP)):

- probationary rows i < P = min(floor(0.15 n), 750) are ignored;
- scaled sigmoid sigma(x) = 2 / (1 + exp(5x)) - 1 for x <= 3, -1 beyond; sigma_max = sigma(-1);
- row weight s_i: inside window k, A_TP * sigma(-(R_k - i + 1) / w_k) / sigma_max (1 at the window's first
  row, decaying to the right); outside before any window ended, -A_FP; outside after window k' ended,
  A_FP * sigma((i - R_k') / (w_k' - 1));
- detections D = {i >= P : score_i >= theta}; a window scores the weight of its earliest detection
  (c_k = max s over D in the window) or -A_FN when missed; each detection outside windows adds s_i;
- normalised score = 100 * (S - S_null) / (S_perfect - S_null), S_null = -A_FN * N_w, S_perfect = A_TP * N_w.

The threshold optimiser evaluates S(theta) for every distinct score value (plus 1.1 = never fire) over a
corpus and keeps the best, like NAB's sweeper/optimizer; it is vectorised (prefix maxima + searchsorted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750  # 0.15 * 5000


@dataclass(frozen=True)
class CostProfile:
    tp: float
    fn: float
    fp: float


PROFILES: dict[str, CostProfile] = {
    "standard": CostProfile(1.0, 1.0, 0.11),
    "reward_low_FP_rate": CostProfile(1.0, 1.0, 0.22),
    "reward_low_FN_rate": CostProfile(1.0, 2.0, 0.11),
}


def scaled_sigmoid(x: np.ndarray) -> np.ndarray:
    """2 / (1 + e^{5x}) - 1, and -1 for x > 3."""
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        value = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x > 3.0, -1.0, value)


SIGMA_MAX = float(scaled_sigmoid(np.array(-1.0)))


def probation_rows(n_rows: int) -> int:
    return min(math.floor(PROBATION_FRACTION * n_rows), PROBATION_MAX_ROWS)


@dataclass(frozen=True)
class LabelledFile:
    """One data file: its row count and anomaly windows as inclusive row-index pairs."""

    name: str
    n_rows: int
    windows: tuple[tuple[int, int], ...]


def load_windows(path: Path) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    raw = json.loads(Path(path).read_text())
    return {name: [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in pairs] for name, pairs in raw.items()}


def labelled_file(
    name: str, timestamps: pd.Series | pd.DatetimeIndex, windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]]
) -> LabelledFile:
    """Window edges matched to the first row carrying exactly that (naive) timestamp."""
    stamps = pd.DatetimeIndex(timestamps)
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    first_row = pd.Series(np.arange(len(stamps)), index=stamps)
    first_row = first_row[~first_row.index.duplicated()]
    rows = tuple((int(first_row[start]), int(first_row[end])) for start, end in windows)
    return LabelledFile(name=name, n_rows=len(stamps), windows=rows)


def row_weights(labelled: LabelledFile, profile: CostProfile) -> tuple[np.ndarray, np.ndarray]:
    """(s_i for every row, window id of every row or -1 outside windows)."""
    n = labelled.n_rows
    index = np.arange(n)
    weights = np.full(n, -profile.fp)
    window_id = np.full(n, -1)
    for k, (left, right) in enumerate(labelled.windows):
        width = right - left + 1
        inside = index[left : right + 1]
        weights[left : right + 1] = profile.tp * scaled_sigmoid(-(right - inside + 1) / width) / SIGMA_MAX
        window_id[left : right + 1] = k
        following_end = labelled.windows[k + 1][0] if k + 1 < len(labelled.windows) else n
        after = index[right + 1 : following_end]
        weights[right + 1 : following_end] = profile.fp * scaled_sigmoid((after - right) / (width - 1))
    return weights, window_id


def raw_score_curve(
    scores: np.ndarray, labelled: LabelledFile, profile: CostProfile, thresholds: np.ndarray
) -> np.ndarray:
    """Raw NAB score S_file(theta) for every theta in ``thresholds`` (detection = score >= theta)."""
    scores = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0)
    if len(scores) != labelled.n_rows:
        raise ValueError(f"{labelled.name}: {len(scores)} scores for {labelled.n_rows} rows")
    thresholds = np.asarray(thresholds, dtype=float)
    weights, window_id = row_weights(labelled, profile)
    start = probation_rows(labelled.n_rows)
    total = np.zeros(len(thresholds))
    for left, right in labelled.windows:
        left_eff = max(left, start)
        if left_eff > right:
            continue
        running_max = np.maximum.accumulate(scores[left_eff : right + 1])
        first = np.searchsorted(running_max, thresholds, side="left")
        detected = first <= right - left_eff
        window_weights = weights[left_eff : right + 1]
        total += np.where(detected, window_weights[np.minimum(first, right - left_eff)], -profile.fn)
    outside = (window_id == -1) & (np.arange(labelled.n_rows) >= start)
    fp_scores = scores[outside]
    fp_weights = weights[outside]
    order = np.argsort(-fp_scores, kind="stable")
    sorted_scores = fp_scores[order]
    cumulative = np.concatenate(([0.0], np.cumsum(fp_weights[order])))
    fired = np.searchsorted(-sorted_scores, -thresholds, side="right")  # count with score >= theta
    return total + cumulative[fired]


def raw_score(scores: np.ndarray, labelled: LabelledFile, profile: CostProfile, threshold: float) -> float:
    return float(raw_score_curve(scores, labelled, profile, np.array([threshold]))[0])


def normalised(raw: float, n_windows: int, profile: CostProfile) -> float:
    null = -profile.fn * n_windows
    perfect = profile.tp * n_windows
    return 100.0 * (raw - null) / (perfect - null)


def optimise_threshold(
    scores_by_file: Mapping[str, np.ndarray], files: Mapping[str, LabelledFile], profile: CostProfile
) -> tuple[float, float]:
    """(theta, corpus raw S) maximising the summed raw score over all files, theta among the distinct scores
    (plus 1.1: never fire). Ties go to the highest theta."""
    candidates = np.unique(
        np.concatenate([np.nan_to_num(np.asarray(s, dtype=float)) for s in scores_by_file.values()] + [[1.1]])
    )
    total = np.zeros(len(candidates))
    for name, scores in scores_by_file.items():
        total += raw_score_curve(scores, files[name], profile, candidates)
    best = int(np.flatnonzero(total == total.max())[-1])
    return float(candidates[best]), float(total[best])
