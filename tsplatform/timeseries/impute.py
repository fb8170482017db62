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
* ``seasonal``: seasonal decomposition + interpolation, the season's shape in a gap taken from analogue
  cycles when the series has enough of them, else from STL. ``m`` = ``season_length`` samples if given,
  else one day of samples when the period divides a day, m >= 2 and at least two full days are observed;
  otherwise no season exists and the method falls back to ``linear``.

  - Analogues, per gap of n samples: the query window is the gap plus c = m // 2 samples of context on
    each side (fewer at the ends of the series); candidate windows are the same-width windows shifted by
    whole seasons (same phase), fully observed and not overlapping the query window (on long series only
    the ``ANALOG_MAX_CANDIDATES`` = 365 nearest, which bounds the cost per gap). The ``k`` = 10 candidates
    whose context is closest to the gap's context (mean squared difference after removing each window's
    mean; values of other gaps in the query's context count by their linear fill) give the
    seasonal shape: each one's deviation, inside its gap-sized middle, from the straight line between its
    two values adjacent to that middle, averaged. The fill is the straight line between the gap's
    neighbours plus that shape: the level is interpolated, the shape follows the most similar cycles
    (e.g. the weekday or weekend profile a weekday or weekend context calls for).
  - STL, for gaps with fewer than 10 complete analogue windows (computed only when such gaps exist;
    imputeTS ``na_seadec``): STL (statsmodels, period m, non-robust, trend and low-pass loess evaluated
    every m/10 points) on the linearly pre-filled series gives a seasonal component s; the
    deseasonalised series ``y - s`` is linearly interpolated across the gaps and ``s`` is added back;
    two passes (the second STL runs on the first pass's fill).
* ``kalman``: local-level state-space model (statsmodels ``UnobservedComponents(level="llevel")``,
  maximum likelihood on the first 2000 values of the span, then the Kalman smoother over the whole span
  with missing observations); gaps are filled with the smoothed level (for this model that is a straight
  line between the smoothed neighbours, so it differs from ``linear`` mainly by denoising the ends). The
  likelihood is maximised over the level's share of the variance, the scale concentrated out (the same
  maximum as the joint fit of both variances, about 4x cheaper; see ``_kalman_params``). A series that is a
  random walk without noise gets no noise variance, and its fill is then exactly ``linear``'s.

``select_imputation`` masks known values in artificial gaps whose lengths are drawn from the series' own
gap-length distribution (run lengths of NaN inside the span; fallback when the series has no gaps:
lengths 1, 2, 3, 6, 12 samples, equally likely), about ``mask_fraction`` (10%) of the observed values in
all, each artificial gap surrounded by observed values, repeated on 6 independent masks. On each mask every
method's RMSE is divided by the best method's RMSE on that mask; the method with the smallest median of
these ratios wins (ties: the smaller RMSE pooled over all masked values, then the earlier method in
``methods``). The median ratio targets the typical mask: on spiky series the pooled RMSE is dominated by
the one mask that hides or borders a spike (on development masks of the real series it was never worse than
pooled RMSE and a few cases better; see BENCHMARKS.md). ``kalman``'s variances are fitted once on the
series given and reused on every mask. A method that raises scores ``inf``. Deterministic for a seed.
On a series longer than ``max_samples`` (default 50,000 grid points) the backtest runs on its most recent
``max_samples`` points, with gap lengths still drawn from the whole series: the cost grows with the
series only up to that bound (about 15 CPU-s at 100k points without it).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.interpolate import PchipInterpolator

from tsplatform.timeseries.dtypes import value_series

IMPUTATION_METHODS = ("linear", "pchip", "locf", "moving_average", "seasonal", "kalman")
#: The method label of a series with no method yet: none of its days so far had a slot to fill, and
#: selection waits for the first that has (``stages.regularize_series``).
NOT_NEEDED = "not_needed"
DEFAULT_GAP_LENGTHS = (1, 2, 3, 6, 12)
MA_HALF_WINDOW = 4
KALMAN_FIT_SAMPLES = 2000
#: The level's variance share tried first by the local-level fit (``_kalman_params``), ends included.
KALMAN_PHI_GRID = (0.0, 1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 0.999, 1.0)
BACKTEST_REPEATS = 6
BACKTEST_MAX_SAMPLES = 50_000  # longer series are backtested on their most recent samples
ANALOG_NEIGHBOURS = 10
ANALOG_MAX_CANDIDATES = 365  # analogue windows searched per gap: the nearest (a year of daily seasons)


@dataclass(frozen=True)
class ImputationChoice:
    """``method``: the best method; ``scores``: RMSE on all masked values per method (inf = failed);
    ``n_masked``: number of masked values; ``gap_lengths``: lengths of the artificial gaps; ``ratios``: per
    method, the median over the backtest masks of its RMSE / the best method's RMSE on that mask (1 = best
    on at least half of the masks; the choice minimises it); ``kalman_params``: the local-level variances
    fitted on the whole series given (None when ``kalman`` was not a candidate, the fit failed or the
    backtest saw only the series' tail), for ``impute(series, "kalman", kalman_params=...)`` to reuse
    instead of fitting the same series again."""

    method: str
    scores: dict[str, float]
    n_masked: int = 0
    gap_lengths: tuple[int, ...] = ()
    ratios: dict[str, float] = field(default_factory=dict)
    kalman_params: tuple[float, ...] | None = None


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


def _stl_seasonal(y: pd.Series, season_length: int | None = None) -> pd.Series:
    """STL seasonal decomposition + linear interpolation of the deseasonalised series (module doc)."""
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


def _seasonal(y: pd.Series, season_length: int | None = None, k: int = ANALOG_NEIGHBOURS) -> pd.Series:
    """``seasonal`` (see the module doc): per gap, the straight line across the gap plus the mean seasonal
    shape of the ``k`` same-phase analogue windows whose context best matches the gap's; the STL fill where
    fewer than ``k`` complete analogues exist (and everywhere without a season)."""
    m = season_length if season_length is not None else default_season_length(y)
    v = y.to_numpy(dtype="float64")
    if m is None or m < 2:
        return _linear(y)  # no season
    line = _linear(y).to_numpy()
    out = v.copy()
    without_analogues: list[tuple[int, int]] = []  # gaps filled by STL, computed only if there are any
    bad = np.concatenate([[0], np.cumsum(np.isnan(v))])  # bad[i] = NaN count in v[:i]: O(1) window test
    c = max(1, m // 2)
    first, last = np.flatnonzero(~np.isnan(v))[[0, -1]]
    t_cache: dict[int, np.ndarray] = {}
    for a, b in zip(*_runs(_inside(v)), strict=True):
        n = b - a
        cl, cr = min(c, a - first), min(c, last + 1 - b)  # context inside the observed span
        width = cl + n + cr
        q0 = a - cl  # start of the query window (context + gap + context) in v
        starts = q0 + m * np.arange(-(q0 // m), (v.size - width - q0) // m + 1)
        starts = starts[(starts + width <= q0) | (starts >= q0 + width)]  # no overlap with the query
        starts = starts[bad[starts + width] == bad[starts]]  # complete windows only
        if starts.size > ANALOG_MAX_CANDIDATES:  # the nearest ones, in order: O(gaps) on long series
            starts = np.sort(starts[np.argsort(np.abs(starts - q0), kind="stable")[:ANALOG_MAX_CANDIDATES]])
        if starts.size < k:
            without_analogues.append((a, b))
            continue
        windows = v[starts[:, None] + np.arange(width)]
        context = np.concatenate([windows[:, :cl], windows[:, cl + n :]], axis=1)
        query = np.concatenate([line[q0:a], line[b : b + cr]])  # a nearby gap counts by its linear fill
        context = context - context.mean(axis=1, keepdims=True)
        distance = np.mean((context - (query - query.mean())) ** 2, axis=1)
        nearest = windows[np.argsort(distance, kind="stable")[:k]]
        t = t_cache.setdefault(n, np.arange(1, n + 1) / (n + 1))
        left, right = nearest[:, cl - 1 : cl], nearest[:, cl + n : cl + n + 1]
        shape = (nearest[:, cl : cl + n] - (left + (right - left) * t)).mean(axis=0)
        out[a:b] = line[a:b] + shape
    if without_analogues:
        fallback = _stl_seasonal(y, m).to_numpy()
        for a, b in without_analogues:
            out[a:b] = fallback[a:b]
    return pd.Series(out, index=y.index, name=y.name)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the runs of True in ``mask`` (end exclusive)."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _standardise(y: pd.Series) -> tuple[np.ndarray, int, int, float, float]:
    """The observed span of ``y``, standardised: (z, first, last, centre, scale)."""
    v = y.to_numpy(dtype="float64")
    first, last = np.flatnonzero(~np.isnan(v))[[0, -1]]
    seg = v[first : last + 1]
    scale = float(np.nanstd(seg)) or 1.0
    centre = float(np.nanmean(seg))
    return (seg - centre) / scale, int(first), int(last), centre, scale


def _kalman_params(y: pd.Series) -> np.ndarray:
    """Maximum-likelihood variances (noise, level) of the local-level model on the first
    KALMAN_FIT_SAMPLES standardised values of the observed span (reusable for other masks of the same
    series).

    The likelihood is maximised over one number, the level's share of the variance
    ``phi = sigma2_level / (sigma2_noise + sigma2_level)`` in [0, 1], with the overall scale concentrated
    out (statsmodels' ``filter_concentrated``: for a given ``phi`` its maximum-likelihood value is closed
    form). This is the same maximum as the joint fit over both variances, found with a fraction of the
    likelihood evaluations: a grid of ``KALMAN_PHI_GRID`` then bounded Brent (``scipy.optimize.
    minimize_scalar``) in the grid cell around the best point. The ends are allowed: ``phi = 1`` is a random
    walk observed without noise (fills are straight lines between the neighbours), ``phi = 0`` a constant
    level. Only ``phi`` changes the smoothed level; the scale is returned so that the pair are variances.
    Raises ValueError when the likelihood is not finite anywhere on the grid (in ``select_imputation``
    ``kalman`` then scores inf and loses).
    """
    from scipy.optimize import minimize_scalar
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    z = _standardise(y)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = UnobservedComponents(z[:KALMAN_FIT_SAMPLES], level="llevel")
        model.ssm.filter_concentrated = True

        def negative_loglike(phi: float) -> float:
            value = -model.loglike(np.array([1.0 - phi, phi]))
            return value if np.isfinite(value) else np.inf

        grid = np.asarray(KALMAN_PHI_GRID)
        values = np.array([negative_loglike(phi) for phi in grid])
        best = int(np.argmin(values))
        low, high = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
        phi, value = float(grid[best]), float(values[best])
        if not np.isfinite(value):
            raise ValueError("the local-level likelihood is not finite anywhere on the grid")
        refined = minimize_scalar(
            negative_loglike, bounds=(low, high), method="bounded", options={"xatol": 1e-9}
        )
        if refined.fun < value:
            phi = float(refined.x)
        params = np.array([1.0 - phi, phi])
        # the scale's maximum-likelihood value at phi (the filter's own estimate when concentrated)
        scale = float(model.filter(params, return_ssm=True, low_memory=True).scale)
    return params * scale


def _kalman(y: pd.Series, params: np.ndarray | None = None) -> pd.Series:
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    v = y.to_numpy(dtype="float64")
    if not _inside(v).any():
        return y.copy()
    z, first, last, centre, scale = _standardise(y)
    if params is None:
        params = _kalman_params(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the state-space smoother's own output (return_ssm): no results wrapper, no parameter covariance
        result = UnobservedComponents(z, level="llevel").smooth(params, return_ssm=True)
    level = np.asarray(result.smoothed_state[0]) * scale + centre
    out = v.copy()
    seg = v[first : last + 1]
    out[first : last + 1] = np.where(np.isnan(seg), level, seg)
    return pd.Series(out, index=y.index, name=y.name)


def impute(
    series: pd.Series,
    method: str,
    *,
    season_length: int | None = None,
    kalman_params: Sequence[float] | None = None,
) -> pd.Series:
    """Fill the NaN inside the observed span of ``series`` with ``method`` (see the module doc).

    ``season_length``: samples per season for ``seasonal`` (default: derived, see the module doc).
    ``kalman_params``: for ``kalman``, variances already fitted on this same series (``select_imputation``'s
    ``ImputationChoice.kalman_params``); the result is the same as without them, minus the fit.
    Raises ValueError for an unknown method or a non-numeric series.
    """
    if method not in IMPUTATION_METHODS:
        known = ", ".join(IMPUTATION_METHODS)
        raise ValueError(f"unknown imputation method {method!r}; expected one of {known}")
    series = value_series(series)
    if not pd.api.types.is_numeric_dtype(series.dtype):
        raise ValueError(f"impute needs a numeric series, got dtype {series.dtype}")
    params = None if kalman_params is None else np.asarray(kalman_params, dtype="float64")
    out = _fill(series.astype("float64"), method, season_length, params)
    out.attrs = dict(series.attrs)
    return out


def _fill(
    y: pd.Series, method: str, season_length: int | None = None, kalman_params: np.ndarray | None = None
) -> pd.Series:
    """``impute`` without the argument checks, for a float series (``kalman_params``: reuse a fit)."""
    if not _inside(y.to_numpy()).any():
        return y.copy()
    if method == "linear":
        return _linear(y)
    if method == "pchip":
        return _pchip(y)
    if method == "locf":
        return _locf(y)
    if method == "moving_average":
        return _moving_average(y)
    if method == "seasonal":
        return _seasonal(y, season_length)
    return _kalman(y, kalman_params)


def gap_lengths(series: pd.Series) -> np.ndarray:
    """Lengths (samples) of the runs of NaN strictly inside the observed span."""
    starts, ends = _runs(_inside(series.to_numpy(dtype="float64")))
    return ends - starts


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
    max_samples: int | None = BACKTEST_MAX_SAMPLES,
) -> ImputationChoice:
    """Choose the imputation method by masked backtest (see the module doc). Deterministic for ``seed``.

    The backtest runs on ``repeats`` independent masks (seeds ``seed, seed+1, ...``). On each mask every
    method's RMSE is divided by the best RMSE on that mask; the method with the smallest median ratio wins
    (ties: smaller pooled RMSE, then the earlier method in ``methods``). ``scores`` holds the pooled RMSE
    over all masked values of all repeats, ``ratios`` the median ratios. ``max_samples``: the backtest runs
    on the last ``max_samples`` points of a longer series (None: the whole series).
    """
    unknown = [m for m in methods if m not in IMPUTATION_METHODS]
    if unknown or not methods:
        known = ", ".join(IMPUTATION_METHODS)
        raise ValueError(f"unknown or no imputation method(s) {unknown}; expected from {known}")
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be >= 1 or None, got {max_samples}")
    y = value_series(series).astype("float64")
    if season_length is None:
        season_length = default_season_length(y)
    own_lengths = gap_lengths(y)  # of the whole series, also when the backtest sees only its tail
    whole = max_samples is None or len(y) <= max_samples
    if not whole:
        y = y.iloc[-max_samples:]
    # Without a season on the whole series, 0 tells the fills "no season" instead of deriving None again on
    # every mask: a mask never hides the ends of the observed span, the only data default_season_length reads
    backtest_season = 0 if season_length is None and whole else season_length
    kalman_params = None
    if "kalman" in methods and y.notna().sum() >= 3:
        try:  # one fit on the series itself, reused on every backtest mask (the fit dominates the cost)
            kalman_params = _kalman_params(y)
        except Exception:
            kalman_params = None
    squared: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    lengths: list[int] = []
    n_masked = 0
    for r in range(max(1, repeats)):
        mask = mask_like_gaps(y, seed=seed + r, mask_fraction=mask_fraction, lengths=own_lengths)
        if not mask.any():
            continue
        n_masked += int(mask.sum())
        starts, ends = _runs(mask)
        lengths += (ends - starts).tolist()
        values = y.to_numpy()
        truth = values[mask]
        hidden = pd.Series(np.where(mask, np.nan, values), index=y.index, name=y.name)
        for method in methods:
            try:
                filled = _fill(hidden, method, backtest_season, kalman_params).to_numpy()[mask]
                errors = (filled - truth) ** 2
                squared[method].append(np.where(np.isfinite(errors), errors, np.inf))
            except Exception:  # a failing method loses the contest; it never breaks the choice
                squared[method].append(np.full(truth.size, np.inf))
    fitted = tuple(float(p) for p in kalman_params) if whole and kalman_params is not None else None
    if n_masked == 0:
        nan = {m: float("nan") for m in methods}
        return ImputationChoice(methods[0], nan, ratios=nan, kalman_params=fitted)
    choice, scores, ratios = choose_by_median_ratio(squared)
    return ImputationChoice(choice, scores, n_masked, tuple(int(x) for x in lengths), ratios, fitted)


def choose_by_median_ratio(
    squared: dict[str, list[np.ndarray]],
) -> tuple[str, dict[str, float], dict[str, float]]:
    """The backtest's aggregate: ``squared[method][k]`` = squared errors of ``method`` on mask k (every
    method has the same masks, in insertion order = tie order). Returns (choice, pooled RMSE per method,
    median over masks of RMSE / best RMSE on that mask per method); see ``select_imputation``."""
    methods = list(squared)
    scores = {m: float(np.sqrt(np.mean(np.concatenate(squared[m])))) for m in methods}
    per_mask = np.array([[np.sqrt(np.mean(e)) for e in squared[m]] for m in methods])  # methods x masks
    best = per_mask.min(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(per_mask == best, 1.0, per_mask / best)  # 0/0 (exact fills) counts as a tie
    ratios = {m: float(np.median(rel[i])) for i, m in enumerate(methods)}
    choice = min(methods, key=lambda m: (ratios[m], scores[m]))
    return choice, scores, ratios
