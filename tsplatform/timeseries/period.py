"""Sampling-period estimation: "cluster and approximate GCD" (ARCHITECTURE.md, seed algorithms).

Algorithm (n timestamps, all arithmetic in integer nanoseconds since the Unix epoch):

1. Sort, drop exact duplicates (a clock roll-back then only leaves repeated / interleaved stamps),
   take the lagged differences ``d_i = t_{i+1} - t_i > 0``.
2. 1-D clustering of ``log d`` with relative tolerance ``tol`` (default 0.2): every distinct difference
   ``c`` gets the density ``#{d : |log d - log c| <= log(1 + tol)}``; cluster centres are picked greedily
   by density (non-maximum suppression: a new centre must differ from all earlier ones by a factor of at
   least ``(1 + tol)**2``), then every difference joins its nearest centre in log space. So 530, 610 and
   660 s fall in one cluster around 600 s while 1200 s and 1800 s are centres of their own.
3. Clusters are ranked by size; those that together cover 95% of the differences are kept. A cluster's
   mode is the median of the differences in the densest sub-window (half-width log(1+tol)/4) of its
   centre window when that holds over a third of the window, else the median of the whole window.
4. The approximate GCD of the modes is the largest ``p = m_min / k`` (``k = 1..K``; each candidate within
   0.45 of the modes' multiples, then refitted to them by least squares) such that the modes with
   ``|m - round(m/p)·p| <= gcd_tol·p`` cover at least 97% of the kept differences (a relaxation of
   "every mode": a stray cluster of interleaved stamps after a clock roll-back must not collapse the
   period to a common divisor).
   Then a coarser grid ``j·p`` (``j = 2..8``, not above the largest kept mode) replaces ``p`` when it puts
   at most 2 percentage points fewer of all differences within ``gcd_tol`` of a multiple (a finer grid must
   explain clearly more: 600 s stays for 1200/1800 s modes, 450 s is not halved by interleaved stamps).
5. Refinement: a telescoping pass ``Σd/Σk`` over the differences near the kept multiples, then a
   difference votes when ``k_i = round(d_i / p)`` is in ``1..64``, it lies within
   ``max(0.1, 4·σ/p)·p`` of ``k_i·p`` (σ: robust spread of the one-period differences), it is not within
   two places of a difference shorter than p/2, and it sits in a run of at least 3 voting differences (so
   interleaved stamps after a clock roll-back do not vote). The period is the least-squares slope of
   ``t = a_run + P·K`` over those runs (one intercept per run, ``K`` the cumulative multiple inside the
   run): every sample contributes, so per-sample jitter averages out (standard error ∝ n^-3/2 inside a
   run) and the estimate is far more precise than any single difference. The period is then rounded to
   ``unit``: the timestamps' resolution (1 ns, 1 µs, 1 ms, 1 s or 1 min: the coarsest that divides every
   timestamp) raised to the power of ten just above three standard errors of the estimate, but never
   coarser than 1 s unless the timestamps are (so 599.7 s jittered whole-second data gives exactly 600 s).

Reported statistics:

* ``confidence`` = share of all positive differences lying within ``gcd_tol·period`` of a positive
  multiple of the period (1.0 for a perfect grid with or without gaps; drops with clock steps, outliers
  and jitter beyond the tolerance).
* ``jitter`` = robust standard deviation (IQR / 1.349) of the differences that are one period long
  (the base cluster). For independent per-sample jitter σ this is ≈ √2·σ.
* ``phase`` = offset of the grid from the Unix epoch modulo the period: a circular mean of
  ``t mod period`` refined by the median of the wrapped residuals (robust to outliers and to a minority
  of samples after a clock step), rounded to ``unit``.

Complexity O(n log n) (two sorts and ``searchsorted``), fully vectorised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import maximum_filter1d

DEFAULT_TOLERANCE = 0.2
"""Relative tolerance of the difference clustering (window ``[c/(1+tol), c·(1+tol)]``)."""
GCD_TOLERANCE = 0.25
"""A mode (or a difference) counts as a multiple of ``p`` when within ``GCD_TOLERANCE·p`` of one."""
COVERAGE = 0.95
"""Keep the largest clusters until they cover this share of the differences."""
EXPLAINED = 0.97
"""The approximate GCD must explain modes covering this share of the kept differences (a stray cluster of
interleaved stamps after a clock roll-back must not collapse the period to a common divisor)."""
REFINE_MIN_TOLERANCE = 0.1
"""Refinement votes: differences within ``max(0.1, 4·σ_base/p)·p`` of a multiple (σ_base: robust spread)."""
MIN_RUN = 3
"""Refinement votes only from runs of at least 3 consecutive voting differences (interleaved stamps after
a clock roll-back produce isolated votes)."""
CANDIDATE_TOLERANCE = 0.45
"""Approximate GCD: a candidate ``min(modes)/k`` must have the modes within 0.45 of its multiples before
the least-squares refit is tested with ``GCD_TOLERANCE``."""
OCCAM_MARGIN = 0.02
"""A multiple ``j·p`` of the approximate GCD replaces it when it explains at most 2 points fewer of the
differences (interleaved stamps after a non-integer clock roll-back otherwise halve the period)."""
MAX_CLUSTERS = 16
MAX_MULTIPLE = 64
_RESOLUTIONS_NS = (60_000_000_000, 1_000_000_000, 1_000_000, 1_000, 1)


@dataclass(frozen=True)
class PeriodEstimate:
    """Result of :func:`estimate_period` (all durations as ``pd.Timedelta``).

    ``period``: estimated sampling period; ``confidence``: 0..1 (see module doc); ``jitter``: IQR/1.349 of
    the one-period differences; ``phase``: grid offset from the Unix epoch modulo ``period``;
    ``n_samples``: timestamps given; ``n_distinct``: after dropping exact duplicates; ``resolution``:
    rounding unit applied to ``period`` and ``phase``; ``modes``: the kept cluster modes, ascending.
    """

    period: pd.Timedelta
    confidence: float
    jitter: pd.Timedelta
    phase: pd.Timedelta
    n_samples: int
    n_distinct: int
    resolution: pd.Timedelta
    modes: tuple[pd.Timedelta, ...] = ()

    def grid_index(self, timestamps: Any) -> np.ndarray:
        """Integer grid index ``round((t - phase) / period)`` of each timestamp (int64)."""
        t = to_epoch_ns(timestamps)
        return _grid_index(t, self.period.value, self.phase.value)


def to_epoch_ns(timestamps: Any) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the Unix epoch (UTC; naive values are taken as UTC).

    Accepts a DatetimeIndex, a Series / array of datetime64 (naive or tz-aware) or anything
    ``pd.to_datetime`` understands. NaT is dropped. Raises ValueError when not datetime-like.
    Datetime64 data (unit s, ms, us or ns) takes a numpy fast path (its int64 epoch values scaled to ns,
    same result as the pandas conversion, which handles everything else and out-of-range values).
    """
    fast = _epoch_ns_fast(timestamps)
    if fast is not None:
        return fast
    if isinstance(timestamps, pd.DatetimeIndex):
        idx = timestamps
    else:
        try:
            values = pd.Series(np.atleast_1d(timestamps))
            # strings element-wise: the ISO8601 fast path applies the first string's offset to naive ones
            fmt = "mixed" if values.dtype == object else None
            idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True, format=fmt))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"timestamps are not datetime-like: {exc}") from exc
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    idx = idx[~idx.isna()]
    return idx.as_unit("ns").asi8.astype(np.int64, copy=False)


_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_NAT = np.iinfo(np.int64).min


def _epoch_ns_fast(timestamps: Any) -> np.ndarray | None:
    """:func:`to_epoch_ns` for datetime64 data (DatetimeIndex, Series, DatetimeArray or ndarray of unit s, ms,
    us or ns, naive or tz-aware): the stored int64 epoch values (UTC for tz-aware data) without NaT, scaled
    to ns. None for anything else, and when scaling would overflow (the pandas path raises for those)."""
    is_index = isinstance(timestamps, pd.DatetimeIndex)
    values = timestamps.array if isinstance(timestamps, pd.Series | pd.Index) else timestamps
    if isinstance(values, pd.arrays.DatetimeArray):
        i8, unit = values.asi8, values.unit
    elif isinstance(values, np.ndarray) and values.dtype.kind == "M" and values.ndim <= 1:
        unit = np.datetime_data(values.dtype)[0]
        i8 = values.view(np.int64) if unit in _NS_PER_UNIT else None
    else:
        return None
    if i8 is None:
        return None
    i8 = np.atleast_1d(i8)
    nat = i8 == _NAT
    if nat.any():
        i8 = i8[~nat]
    elif not is_index:
        i8 = i8.copy()  # like the pandas path: a new array unless the input is an index
    factor = _NS_PER_UNIT[unit]
    if factor != 1:
        limit = np.iinfo(np.int64).max // factor
        if i8.size and (i8.max() > limit or i8.min() < -limit):
            return None
        i8 = i8 * factor
    return i8


def sorted_distinct(t_ns: np.ndarray) -> np.ndarray:
    """Sorted int64 timestamps without exact duplicates (sort + mask; faster than ``np.unique`` here)."""
    s = np.sort(t_ns)
    if s.size == 0:
        return s
    return s[np.concatenate([[True], s[1:] != s[:-1]])]


def _grid_index(t_ns: np.ndarray, period_ns: int, phase_ns: int) -> np.ndarray:
    # floor division on int64 keeps full precision (float64 loses ns at epoch 1.7e18)
    shifted = t_ns - phase_ns
    q, r = np.divmod(shifted, period_ns)
    return q + (2 * r >= period_ns)


def timestamp_resolution_ns(t_ns: np.ndarray) -> int:
    """Coarsest of 1 min, 1 s, 1 ms, 1 µs, 1 ns dividing every timestamp."""
    for res in _RESOLUTIONS_NS:
        if not np.any(t_ns % res):
            return res
    return 1


def _cluster_centres(d_sorted: np.ndarray, log_d_sorted: np.ndarray, tol: float) -> np.ndarray:
    """Cluster centres (log space) of the sorted differences: greedy peaks of the windowed density.

    The density of ``log d`` is histogrammed with bins of ``log(1+tol)/8``; the windowed density
    ``D(x) = #{d : |log d - x| <= log(1+tol)}`` is a moving sum. Candidate centres are local maxima of D
    within ``±log(1+tol)`` (so the tails of a jittered cluster never become clusters of their own); they
    are taken in decreasing count of their exact window ``±log(1+tol)`` around the bin's centre (the binned
    D is flat across a dense value's ~16 bins), each refined to the log of the median difference inside
    that window, and a candidate closer than ``2·log(1+tol)`` to an accepted centre is dropped
    (non-maximum suppression).
    """
    half = math.log1p(tol)
    sub = 8
    width = half / sub
    lo = float(log_d_sorted[0])
    n_bins = int((float(log_d_sorted[-1]) - lo) / width) + 1
    bins = np.minimum(((log_d_sorted - lo) / width).astype(np.int64), n_bins - 1)
    hist = np.bincount(bins, minlength=n_bins)
    padded = np.concatenate(
        [np.zeros(sub + 1, dtype=np.int64), np.cumsum(hist), np.full(sub, hist.sum(), dtype=np.int64)]
    )
    density = padded[2 * sub + 1 :] - padded[:n_bins]
    local_max = density >= maximum_filter1d(density, size=2 * sub + 1, mode="constant", cval=0)
    candidates = np.flatnonzero(local_max & (density > 0))
    # every candidate's exact window, count and median at once (vectorised; medians of sorted slices are
    # exact). Candidates are taken by the count of their exact window, not by the binned density: on a
    # plateau of equal binned density (one dense value spans ~16 bins) the lowest bin's exact window can
    # miss the dense value at its upper edge, and its median then sat on the few values below it (a 4 min
    # centre for 372 differences of 5 min and 2 of 4 min, which collapsed the period to 1 min).
    x = lo + (candidates + 0.5) * width
    starts = np.searchsorted(log_d_sorted, x - half, side="left")
    stops = np.searchsorted(log_d_sorted, x + half, side="right")
    order = np.argsort(-(stops - starts), kind="stable")[: 4 * MAX_CLUSTERS]
    starts, stops = starts[order], stops[order]
    medians = _sorted_medians(d_sorted, starts, stops)
    centres: list[float] = []
    for a, b, median in zip(starts.tolist(), stops.tolist(), medians.tolist(), strict=True):
        if b <= a:
            continue
        centre = math.log(median)
        if all(abs(centre - c) >= 2 * half for c in centres):
            centres.append(centre)
            if len(centres) >= MAX_CLUSTERS:
                break
    return np.sort(np.asarray(centres))


def _sorted_medians(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``np.median(values[a:b])`` for each ``(a, b)`` of an ascending ``values`` (float64; NaN when empty):
    the middle element, or the mean of the two middle ones computed as ``np.median`` does
    (``(float(lo) + float(hi)) / 2``), so the results are identical."""
    count = stops - starts
    safe = np.maximum(count, 1)
    lo = values[np.minimum(starts + (safe - 1) // 2, values.size - 1)].astype(np.float64)
    hi = values[np.minimum(starts + safe // 2, values.size - 1)].astype(np.float64)
    return np.where(count > 0, (lo + hi) / 2, np.nan)


def _sorted_median(values: np.ndarray, a: int, b: int) -> float:
    """``float(np.median(values[a:b]))`` of an ascending ``values``, without the partition (NaN if empty)."""
    m = b - a
    if m <= 0:
        return float("nan")
    return (float(values[a + (m - 1) // 2]) + float(values[a + m // 2])) / 2


def linear_quantiles(values: np.ndarray, probs: tuple[float, ...]) -> list[float]:
    """``np.quantile(values, probs)`` (method "linear") of a non-empty 1-D int or float array without NaN, via
    one sort and numpy's own interpolation steps (``(n-1)·q``, floor, ``a + (b-a)·g``, or ``b - (b-a)·(1-g)``
    when ``g >= 0.5``) on numpy scalars, so the values are identical; ~10x cheaper on small arrays. Falls
    back to ``np.quantile`` for anything else (NaN, other dtypes, empty input)."""
    values = np.asarray(values)
    if values.ndim != 1 or values.size == 0 or values.dtype.kind not in "if" or np.isnan(values.sum()):
        return [float(x) for x in np.quantile(values, probs)]
    ordered = np.sort(values)
    last = ordered.size - 1
    out = []
    for q in probs:
        virtual = last * np.float64(q)
        if virtual >= last:
            out.append(float(ordered[-1]))
            continue
        below = math.floor(virtual)
        a, b = ordered[below], ordered[below + 1]
        gamma = virtual - np.float64(below)
        diff = b - a
        out.append(float(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma))
    return out


def _cluster_mode(d_sorted: np.ndarray, log_d_sorted: np.ndarray, centre: float, half: float) -> float:
    """Mode of the differences within ``±half`` (log) of ``centre``: the median of the densest sub-window
    of half-width ``half/4`` when it holds over a third of the window (so a cluster lumping several
    long multiples reports its main one), else the median of the whole window (broad jittered cluster)."""
    lo = np.searchsorted(log_d_sorted, centre - half, side="left")
    hi = np.searchsorted(log_d_sorted, centre + half, side="right")
    window = log_d_sorted[lo:hi]
    step = max(1, window.size // 20_000)  # candidate sub-window centres: a subsample suffices
    candidates = window[::step]
    density = np.searchsorted(window, candidates + half / 4, side="right") - np.searchsorted(
        window, candidates - half / 4, side="left"
    )
    peak = float(candidates[int(np.argmax(density))])
    a = np.searchsorted(window, peak - half / 4, side="left")
    b = np.searchsorted(window, peak + half / 4, side="right")
    if 3 * (b - a) > window.size:  # a clear peak (exact or lumped multiples): its median
        return _sorted_median(d_sorted, lo + a, lo + b)
    return _sorted_median(d_sorted, lo, hi)  # a broad (jittered) cluster: the median of the whole window


def _assign(log_d: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (log space) for every difference."""
    if centres.size == 1:
        return np.zeros(log_d.size, dtype=np.int64)
    bounds = (centres[1:] + centres[:-1]) / 2
    return np.searchsorted(bounds, log_d)


def _approximate_gcd(modes: np.ndarray, sizes: np.ndarray, gcd_tol: float, explained: float) -> float:
    """Largest p such that the modes within ``gcd_tol·p`` of an integer multiple of p cover at least
    ``explained`` of the kept differences (``explained = 1``: every mode, the textbook rule).

    Candidates are ``min(modes)/k`` for ``k = 1..MAX_MULTIPLE``; a candidate whose ratios are within 0.45
    of integers is refitted to the modes by least squares (``p = Σ k_i m_i / Σ k_i²``, ``k_i = round(m_i/p)``)
    so that the noisy modes of jittered clusters (e.g. 11, 20, 30 s for a 10 s grid) agree on one grid.
    """
    smallest = float(modes.min())
    share = sizes / sizes.sum()
    for k in range(1, MAX_MULTIPLE + 1):
        candidate = smallest / k
        ratio = modes / candidate
        multiples = np.maximum(np.round(ratio), 1)
        # the candidate itself must be roughly right (a mode half-way between multiples never fits) ...
        if share[np.abs(ratio - multiples) <= CANDIDATE_TOLERANCE].sum() < explained - 1e-12:
            continue
        # ... and the refit must satisfy the tolerance
        p = float((multiples * modes).sum() / (multiples**2).sum())
        multiples = np.maximum(np.round(modes / p), 1)
        fits = np.abs(modes - multiples * p) <= gcd_tol * p
        if share[fits].sum() >= explained - 1e-12:
            return p
    return smallest  # no common grid: report the smallest mode (confidence will be low)


def _fit_runs(t: np.ndarray, k: np.ndarray, votes: np.ndarray) -> tuple[float, float]:
    """Least-squares period over runs of voting differences: ``t = a_run + P·K`` (one intercept per run,
    ``K`` = cumulative multiples inside the run). Returns ``(P, standard error of P)`` in ns."""
    run_start = votes & ~np.concatenate([[False], votes[:-1]])  # diff index i starts a run at sample i
    run_of_diff = np.cumsum(run_start) - 1
    left = np.concatenate([votes, [False]])  # sample i is the left end of voting diff i
    right = np.concatenate([[False], votes])  # ... or the right end of voting diff i-1
    member = left | right
    label = np.where(left, np.concatenate([run_of_diff, [0]]), np.concatenate([[0], run_of_diff]))[member]
    first = np.flatnonzero(run_start)[label]  # first sample of each member's run
    k_cum = np.concatenate([[0.0], np.cumsum(np.where(votes, k, 0.0))])
    idx = np.flatnonzero(member)
    big_k = k_cum[idx] - k_cum[first]
    rel_t = (t[idx] - t[first]).astype(np.float64)
    n_r = np.bincount(label).astype(np.float64)
    sk, st = np.bincount(label, big_k), np.bincount(label, rel_t)
    sxx = np.bincount(label, big_k * big_k) - sk * sk / n_r
    sxy = np.bincount(label, big_k * rel_t) - sk * st / n_r
    p = float(sxy.sum() / sxx.sum())
    step = max(1, idx.size // 100_000)  # σ only sets the rounding unit: a subsample of residuals suffices
    lab = label[::step]
    resid = rel_t[::step] - (st / n_r)[lab] - p * (big_k[::step] - (sk / n_r)[lab])
    dof = max(resid.size - n_r.size / step - 1, 1)
    sigma = float(np.sqrt(np.dot(resid, resid) / dof))
    return p, sigma / math.sqrt(float(sxx.sum()))


def _near(flags: np.ndarray, reach: int) -> np.ndarray:
    """``flags`` dilated by ``reach`` places on each side (a difference under p/2 means two stamps off one
    grid, e.g. interleaving after a clock roll-back: it and its neighbours do not vote)."""
    out = flags.copy()
    for shift in range(1, reach + 1):
        out[shift:] |= flags[:-shift]
        out[:-shift] |= flags[shift:]
    return out


def _grid_share(d: np.ndarray, p: float, gcd_tol: float) -> float:
    """Share of the differences within ``gcd_tol·p`` of a positive multiple of ``p``."""
    k = np.round(d / p)
    return float(np.mean((k >= 1) & (np.abs(d - k * p) <= gcd_tol * p)))


def _prefer_coarser(d: np.ndarray, p: float, largest_mode: float, gcd_tol: float) -> float:
    """The largest multiple ``j·p`` (``j = 2..8``, not above the largest kept mode) explaining nearly as many
    differences as ``p`` (at most ``OCCAM_MARGIN`` less); else ``p``. A finer grid must earn its keep."""
    base = _grid_share(d, p, gcd_tol)
    best = p
    for j in range(2, 9):
        if j * p > largest_mode * (1 + gcd_tol):
            break
        if _grid_share(d, j * p, gcd_tol) >= base - OCCAM_MARGIN:
            best = j * p
    return best


def _drop_short_runs(votes: np.ndarray, min_run: int) -> np.ndarray:
    """``votes`` with runs of consecutive True shorter than ``min_run`` cleared (all kept if none is long)."""
    edges = np.diff(np.concatenate([[0], votes.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long_runs = (ends - starts) >= min_run
    if not long_runs.any():
        return votes
    keep = np.zeros(votes.size + 1, dtype=np.int64)
    np.add.at(keep, starts[long_runs], 1)
    np.add.at(keep, ends[long_runs], -1)
    return np.cumsum(keep[:-1]) > 0


def _round_to(value: float, unit: int) -> int:
    return round(value / unit) * unit


def _pow10_at_least(x: float) -> int:
    if x <= 1:
        return 1
    return int(10 ** math.ceil(math.log10(x)))


def estimate_period(
    timestamps: Any,
    *,
    tol: float = DEFAULT_TOLERANCE,
    gcd_tol: float = GCD_TOLERANCE,
    coverage: float = COVERAGE,
) -> PeriodEstimate:
    """Estimate the sampling period, confidence, jitter and phase of ``timestamps``.

    ``timestamps``: DatetimeIndex, Series or ndarray of datetime64 (naive = UTC, or tz-aware), in any
    order, duplicates allowed. Raises ValueError for fewer than 3 distinct timestamps. See the module
    docstring for the algorithm and the meaning of each field. Timestamps exactly on a grid (every
    difference equal, e.g. a regularized series) take a shortcut to the same result
    (:func:`_regular_grid_estimate`).
    """
    raw = to_epoch_ns(timestamps)
    n_samples = int(raw.size)
    t = sorted_distinct(raw)
    if t.size < 3:
        raise ValueError(f"estimate_period needs at least 3 distinct timestamps, got {t.size}")
    d = np.diff(t)
    if d[0] == d[-1] and (d == d[0]).all():
        return _regular_grid_estimate(t, n_samples)
    return _general_estimate(t, n_samples, tol=tol, gcd_tol=gcd_tol, coverage=coverage)


def _general_estimate(
    t: np.ndarray, n_samples: int, *, tol: float, gcd_tol: float, coverage: float
) -> PeriodEstimate:
    """:func:`estimate_period` of sorted distinct timestamps ``t`` (int64 ns, at least 3)."""
    d = np.diff(t)
    d_sorted = np.sort(d)
    log_d_sorted = np.log(d_sorted.astype(np.float64))

    centres = _cluster_centres(d_sorted, log_d_sorted, tol)
    labels = _assign(log_d_sorted, centres)
    sizes = np.bincount(labels, minlength=centres.size)
    order = np.argsort(-sizes, kind="stable")
    cum = np.cumsum(sizes[order])
    n_keep = int(np.searchsorted(cum, coverage * d.size, side="left")) + 1
    kept = order[:n_keep]

    half = math.log1p(tol)
    modes = []
    kept = kept[np.argsort(centres[kept])]
    for c in kept:
        modes.append(_cluster_mode(d_sorted, log_d_sorted, centres[c], half))
    modes_arr = np.asarray(modes)
    p0 = _approximate_gcd(modes_arr, sizes[kept], gcd_tol, EXPLAINED)
    p0 = _prefer_coarser(d, p0, float(modes_arr.max()), gcd_tol)

    # refinement, pass 1: telescoping estimate Σd/Σk over the kept multiples (p0 is only a cluster mode)
    k_max = max(1, round(modes_arr.max() / p0))
    k = np.round(d / p0)
    dev = np.abs(d - k * p0)
    base_dev = dev[k == 1]
    spread = float(linear_quantiles(base_dev, (0.75,))[0] / 0.6745) if base_dev.size else 0.0
    tol_vote = min(0.5, max(REFINE_MIN_TOLERANCE, 4 * spread / p0))
    votes = _drop_short_runs((k >= 1) & (k <= k_max) & (dev <= tol_vote * p0) & ~_near(k == 0, 2), MIN_RUN)
    period_f, se = p0, float("inf")
    if votes.any():
        period_f = float(d[votes].sum() / k[votes].sum())
        # pass 2: p is now precise to well under 1e-3, so steps up to MAX_MULTIPLE periods round safely
        k = np.round(d / period_f)
        votes = (k >= 1) & (k <= max(k_max, MAX_MULTIPLE)) & (np.abs(d - k * period_f) <= tol_vote * period_f)
        votes = _drop_short_runs(votes & ~_near(k == 0, 2), MIN_RUN)
        if votes.any():
            period_f, se = _fit_runs(t, k, votes)

    resolution = timestamp_resolution_ns(t)
    base = d[votes & (k == 1)]
    if base.size >= 4:
        q1, q3 = linear_quantiles(base, (0.25, 0.75))
        jitter_f = float((q3 - q1) / 1.349)
    else:
        jitter_f = 0.0
    unit = max(resolution, _pow10_at_least(3 * se) if 3 * se < 1e9 else 1_000_000_000)
    period_ns = max(_round_to(period_f, unit), unit)

    # re-score with the final period
    k_final = np.round(d / period_ns)
    confidence = float(np.mean((k_final >= 1) & (np.abs(d - k_final * period_ns) <= gcd_tol * period_ns)))

    phase_ns = _robust_phase(t, period_ns, unit)
    return PeriodEstimate(
        period=pd.Timedelta(period_ns, unit="ns"),
        confidence=confidence,
        jitter=pd.Timedelta(round(jitter_f), unit="ns"),
        phase=pd.Timedelta(phase_ns, unit="ns"),
        n_samples=n_samples,
        n_distinct=int(t.size),
        resolution=pd.Timedelta(unit, unit="ns"),
        modes=tuple(pd.Timedelta(round(m), unit="ns") for m in modes_arr),
    )


def _regular_grid_estimate(t: np.ndarray, n_samples: int) -> PeriodEstimate:
    """The estimate of distinct sorted timestamps ``t`` whose differences are all equal (a regularized
    grid), without the clustering: one mode ``p = d``, every difference a one-period step, so the general
    path's result is ``period = p``, confidence 1, jitter 0, phase ``t mod p`` and resolution the
    timestamps' (its least-squares fit is exact: standard error 0). Equal to :func:`_general_estimate` on
    such grids spanning up to ~100 days; beyond, the general path's float64 fit can be off by 1 ns in the
    period (and so microseconds in the phase), and this one stays exact (test_period)."""
    period_ns = int(t[1] - t[0])
    resolution = timestamp_resolution_ns(t)
    return PeriodEstimate(
        period=pd.Timedelta(period_ns, unit="ns"),
        confidence=1.0,
        jitter=pd.Timedelta(0, unit="ns"),
        phase=pd.Timedelta(_robust_phase(t, period_ns, resolution), unit="ns"),
        n_samples=n_samples,
        n_distinct=int(t.size),
        resolution=pd.Timedelta(resolution, unit="ns"),
        modes=(pd.Timedelta(period_ns, unit="ns"),),
    )


def _robust_phase(t: np.ndarray, period_ns: int, unit: int) -> int:
    """Phase in [0, period): circular mean of ``t mod period`` refined by the median wrapped residual."""
    r = (t % period_ns).astype(np.float64)
    step = max(1, r.size // 100_000)  # the circular mean only seeds the median: a subsample suffices
    angle = 2 * np.pi * r[::step] / period_ns
    mean_angle = math.atan2(float(np.sin(angle).mean()), float(np.cos(angle).mean()))
    phase0 = (mean_angle / (2 * np.pi)) * period_ns
    resid = (r - phase0 + period_ns / 2) % period_ns - period_ns / 2
    phase = (phase0 + float(np.median(resid))) % period_ns
    return _round_to(phase, unit) % period_ns
