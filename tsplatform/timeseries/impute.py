"""Gap filling on a regular grid, and per-series method choice by masked backtest.

Input: a float Series on a regular DatetimeIndex (e.g. the output of ``regularize``), NaN = missing.
Every method fills only the NaN strictly inside the observed span (between the first and the last
non-NaN value); leading and trailing NaN stay NaN (no extrapolation); observed values are never changed.

Methods (``IMPUTATION_METHODS``):

* ``linear``: straight line in time between the gap's neighbours (``Series.interpolate(method="time")``).
* ``pchip``: shape-preserving piecewise cubic Hermite interpolation in time (``scipy.interpolate.
  PchipInterpolator`` on epoch seconds): no overshoot beyond the neighbours' range.
* ``locf``: last observation carried forward.
* ``moving_average``: centred mean of the observed values within ±w samples (w = 4, doubled until at
  least 2 observed values fall in the window), as imputeTS ``na_ma(k=4, weighting="simple")``.
* ``seasonal``: seasonal decomposition + interpolation (imputeTS ``na_seadec``): STL (statsmodels,
  period m, non-robust, trend and low-pass loess evaluated every m/10 points) on the linearly
  pre-filled series gives a seasonal component s; the deseasonalised series ``y - s`` is linearly
  interpolated across the gaps and ``s`` is added back; two passes (the second STL runs on the first
  pass's fill). ``m`` = ``season_length`` samples if given, else one day of
  samples when the period divides a day, m >= 2 and at least two full days are observed; otherwise no
  season exists and the method falls back to ``linear``.
* ``kalman``: local-level state-space model (statsmodels ``UnobservedComponents(level="llevel")``,
  maximum likelihood on the first 2000 values of the span, then the Kalman smoother over the whole span
  with missing observations); gaps are filled with the smoothed level (for this model that is a straight
  line between the smoothed neighbours, so it differs from ``linear`` mainly by denoising the ends).

``select_imputation`` masks known values in artificial gaps whose lengths are drawn from the series' own
gap-length distribution (run lengths of NaN inside the span; fallback when the series has no gaps:
lengths 1, 2, 3, 6, 12 samples, equally likely), about ``mask_fraction`` (10%) of the observed values in
all, each artificial gap surrounded by observed values, repeated on 3 independent masks; it scores every
method by RMSE over all masked values and returns the best (ties: the earlier method in ``methods``) with
all scores. A method that raises scores ``inf``. Deterministic for a seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.interpolate import PchipInterpolator

IMPUTATION_METHODS = ("linear", "pchip", "locf", "moving_average", "seasonal", "kalman")
DEFAULT_GAP_LENGTHS = (1, 2, 3, 6, 12)
MA_HALF_WINDOW = 4
KALMAN_FIT_SAMPLES = 2000
BACKTEST_REPEATS = 3


@dataclass(frozen=True)
class ImputationChoice:
    """``method``: the best method; ``scores``: RMSE on the masked values per method (inf = failed);
    ``n_masked``: number of masked values; ``gap_lengths``: lengths of the artificial gaps."""

    method: str
    scores: dict[str, float]
    n_masked: int = 0
    gap_lengths: tuple[int, ...] = ()


def _inside(values: np.ndarray) -> np.ndarray:
    """Mask of the NaN positions strictly inside the observed span."""
    observed = ~np.isnan(values)
    if not observed.any():
        return np.zeros(values.size, dtype=bool)
    first, last = np.flatnonzero(observed)[[0, -1]]
    mask = np.zeros(values.size, dtype=bool)
    mask[first : last + 1] = ~observed[first : last + 1]
    return mask


def _epoch_seconds(index: pd.Index) -> np.ndarray:
    if isinstance(index, pd.DatetimeIndex):
        return index.as_unit("ns").asi8.astype(np.float64) / 1e9
    return np.arange(len(index), dtype=np.float64)


def _linear(y: pd.Series) -> pd.Series:
    x = _epoch_seconds(y.index)
    v = y.to_numpy(dtype="float64")
    ok = ~np.isnan(v)
    out = v.copy()
    gaps = _inside(v)
    out[gaps] = np.interp(x[gaps], x[ok], v[ok])
    return pd.Series(out, index=y.index, name=y.name)


def _pchip(y: pd.Series) -> pd.Series:
    x = _epoch_seconds(y.index)
    v = y.to_numpy(dtype="float64")
    ok = ~np.isnan(v)
    if ok.sum() < 2:
        return _linear(y)
    out = v.copy()
    gaps = _inside(v)
    out[gaps] = PchipInterpolator(x[ok], v[ok], extrapolate=False)(x[gaps])
    return pd.Series(out, index=y.index, name=y.name)


def _locf(y: pd.Series) -> pd.Series:
    return y.ffill(limit_area="inside")


def _moving_average(y: pd.Series, half_window: int = MA_HALF_WINDOW) -> pd.Series:
    v = y.to_numpy(dtype="float64")
    ok = ~np.isnan(v)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(ok)])
    out = v.copy()
    todo = np.flatnonzero(_inside(v))
    w = half_window
    while todo.size:
        lo = np.maximum(todo - w, 0)
        hi = np.minimum(todo + w + 1, v.size)
        count = ccount[hi] - ccount[lo]
        done = count >= 2
        out[todo[done]] = (csum[hi] - csum[lo])[done] / count[done]
        todo = todo[~done]
        w *= 2
    return pd.Series(out, index=y.index, name=y.name)


def default_season_length(y: pd.Series) -> int | None:
    """One day of samples when the grid period divides a day and >= 2 days are observed, else None."""
    if not isinstance(y.index, pd.DatetimeIndex) or len(y) < 3:
        return None
    period = pd.Timedelta(y.index.freq) if y.index.freq is not None else pd.Series(y.index).diff().median()
    if pd.isna(period) or period <= pd.Timedelta(0):
        return None
    day = pd.Timedelta(days=1)
    if day % period != pd.Timedelta(0):
        return None
    m = int(day / period)
    observed = y.dropna()
    if m < 2 or observed.empty or observed.index[-1] - observed.index[0] < 2 * day:
        return None
    return m


def _seasonal(y: pd.Series, season_length: int | None = None) -> pd.Series:
    from statsmodels.tsa.seasonal import STL

    m = season_length if season_length is not None else default_season_length(y)
    v = y.to_numpy(dtype="float64")
    gaps = _inside(v)
    ok = ~np.isnan(v)
    if m is None or m < 2 or ok.sum() < 2 * m or not gaps.any():
        return _linear(y)
    first, last = np.flatnonzero(ok)[[0, -1]]
    span = slice(first, last + 1)
    filled = _linear(y).to_numpy()[span]
    for _ in range(2):
        jump = max(1, m // 10)  # loess evaluated every ~m/10 points and interpolated (statsmodels)
        seasonal = STL(filled, period=m, trend_jump=jump, low_pass_jump=jump).fit().seasonal
        deseason = v[span] - seasonal
        deseason_filled = _linear(pd.Series(deseason, index=y.index[span])).to_numpy()
        filled = np.where(np.isnan(v[span]), deseason_filled + seasonal, v[span])
    out = v.copy()
    out[span] = filled
    return pd.Series(out, index=y.index, name=y.name)


def _kalman(y: pd.Series) -> pd.Series:
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    v = y.to_numpy(dtype="float64")
    gaps = _inside(v)
    if not gaps.any():
        return y.copy()
    ok = ~np.isnan(v)
    first, last = np.flatnonzero(ok)[[0, -1]]
    seg = v[first : last + 1]
    scale = float(np.nanstd(seg)) or 1.0
    centre = float(np.nanmean(seg))
    z = (seg - centre) / scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the two variances are fitted on at most KALMAN_FIT_SAMPLES values, then the whole span is smoothed
        fit_part = z[:KALMAN_FIT_SAMPLES]
        params = UnobservedComponents(fit_part, level="llevel").fit(disp=False, maxiter=100).params
        result = UnobservedComponents(z, level="llevel").smooth(params)
    level = np.asarray(result.smoothed_state[0]) * scale + centre
    out = v.copy()
    out[first : last + 1] = np.where(np.isnan(seg), level, seg)
    return pd.Series(out, index=y.index, name=y.name)


def impute(series: pd.Series, method: str, *, season_length: int | None = None) -> pd.Series:
    """Fill the NaN inside the observed span of ``series`` with ``method`` (see the module doc).

    ``season_length``: samples per season for ``seasonal`` (default: derived, see the module doc).
    Raises ValueError for an unknown method or a non-numeric series.
    """
    if method not in IMPUTATION_METHODS:
        known = ", ".join(IMPUTATION_METHODS)
        raise ValueError(f"unknown imputation method {method!r}; expected one of {known}")
    if not pd.api.types.is_numeric_dtype(series.dtype):
        raise ValueError(f"impute needs a numeric series, got dtype {series.dtype}")
    y = series.astype("float64")
    if not _inside(y.to_numpy()).any():
        return y.copy()
    if method == "linear":
        out = _linear(y)
    elif method == "pchip":
        out = _pchip(y)
    elif method == "locf":
        out = _locf(y)
    elif method == "moving_average":
        out = _moving_average(y)
    elif method == "seasonal":
        out = _seasonal(y, season_length)
    else:
        out = _kalman(y)
    out.attrs = dict(series.attrs)
    return out


def gap_lengths(series: pd.Series) -> np.ndarray:
    """Lengths (samples) of the runs of NaN strictly inside the observed span."""
    inside = _inside(series.to_numpy(dtype="float64")).astype(np.int8)
    edges = np.diff(np.concatenate([[0], inside, [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def mask_like_gaps(
    series: pd.Series, *, seed: int = 0, mask_fraction: float = 0.1, lengths: Sequence[int] | None = None
) -> np.ndarray:
    """Boolean mask of observed values to hide in artificial gaps (see ``select_imputation``).

    Gap lengths are drawn from ``lengths`` (default: the series' own gap lengths, else
    ``DEFAULT_GAP_LENGTHS``); every artificial gap has an observed, unmasked value on both sides.
    """
    rng = np.random.default_rng(seed)
    v = series.to_numpy(dtype="float64")
    observed = ~np.isnan(v)
    pool = np.asarray(lengths if lengths is not None else gap_lengths(series), dtype=np.int64)
    if pool.size == 0:
        pool = np.asarray(DEFAULT_GAP_LENGTHS)
    budget = max(1, int(mask_fraction * observed.sum()))
    pool = pool[pool <= max(1, observed.sum() // 4)]
    if pool.size == 0:
        pool = np.asarray([1])
    mask = np.zeros(v.size, dtype=bool)
    masked = 0
    for _ in range(50 * budget):
        if masked >= budget:
            break
        length = int(rng.choice(pool))
        start = int(rng.integers(1, max(2, v.size - length)))
        end = start + length
        if end >= v.size:
            continue
        window = slice(start - 1, end + 1)  # the gap plus one neighbour on each side
        if observed[window].all() and not mask[window].any():
            mask[start:end] = True
            masked += length
    return mask


def select_imputation(
    series: pd.Series,
    methods: Sequence[str] = IMPUTATION_METHODS,
    seed: int = 0,
    season_length: int | None = None,
    *,
    mask_fraction: float = 0.1,
    repeats: int = BACKTEST_REPEATS,
) -> ImputationChoice:
    """Choose the imputation method by masked backtest (see the module doc). Deterministic for ``seed``.

    The backtest is repeated on ``repeats`` independent masks (seeds ``seed, seed+1, ...``); a method's score
    is the RMSE over all masked values of all repeats.
    """
    unknown = [m for m in methods if m not in IMPUTATION_METHODS]
    if unknown or not methods:
        known = ", ".join(IMPUTATION_METHODS)
        raise ValueError(f"unknown or no imputation method(s) {unknown}; expected from {known}")
    y = series.astype("float64")
    if season_length is None:
        season_length = default_season_length(y)
    squared: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    lengths: list[int] = []
    n_masked = 0
    for r in range(max(1, repeats)):
        mask = mask_like_gaps(y, seed=seed + r, mask_fraction=mask_fraction)
        if not mask.any():
            continue
        n_masked += int(mask.sum())
        edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        lengths += (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()
        truth = y.to_numpy()[mask]
        hidden = y.copy()
        hidden[mask] = np.nan
        for method in methods:
            try:
                filled = impute(hidden, method, season_length=season_length).to_numpy()[mask]
                squared[method].append((filled - truth) ** 2)
            except Exception:  # a failing method loses the contest; it never breaks the choice
                squared[method].append(np.full(truth.size, np.inf))
    if n_masked == 0:
        return ImputationChoice(methods[0], {m: float("nan") for m in methods})
    scores = {}
    for method in methods:
        score = float(np.sqrt(np.mean(np.concatenate(squared[method]))))
        scores[method] = score if np.isfinite(score) else float("inf")
    best = min(methods, key=lambda m: scores[m])
    return ImputationChoice(best, scores, n_masked, tuple(int(x) for x in lengths))
