"""Seasonal-trend decomposition (STL / MSTL from statsmodels) and seasonal periods from the sampling
period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from tsplatform.timeseries.dtypes import value_series

DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)
SEASONS: tuple[pd.Timedelta, ...] = (DAY, WEEK)
#: relative tolerance for "the season is an integer multiple of the sampling period"
MULTIPLE_TOLERANCE = 1e-3
MIN_SEASON_SAMPLES = 2
MSTL_ITERATIONS = 2  #: passes over the seasons (statsmodels' MSTL default ``iterate``)
#: STL's ``(inner_iter, outer_iter)`` when robust: statsmodels' default (15 reweighting rounds of 2 passes)
ROBUST_ITERATIONS = (2, 15)
#: The smallest block of samples a season is fitted on when fitted on block means (``mstl``'s
#: ``season_points``). Blocks of 2 save a fifth of the cost at most and, on known signals at 30-minute steps,
#: caught spikes worse than full resolution (BENCHMARKS.md, session 18).
MIN_SEASON_BLOCK = 3


def _as_timedelta(estimate_or_period: Any) -> pd.Timedelta:
    period = getattr(estimate_or_period, "period", estimate_or_period)
    if isinstance(period, int | float | np.integer | np.floating) and not isinstance(period, bool):
        return pd.Timedelta(seconds=float(period))  # a bare number is seconds
    if isinstance(period, pd.Timedelta | dt.timedelta | np.timedelta64 | str):
        return pd.Timedelta(period)
    raise TypeError(
        f"expected a sampling period (Timedelta, seconds, or an object with .period), got {period!r}"
    )


def seasonal_periods(estimate_or_period: Any) -> tuple[int, ...]:
    """Daily and weekly season lengths, in samples, for a sampling period.

    ``estimate_or_period``: a ``pd.Timedelta`` / ``datetime.timedelta`` / number of seconds, or an object
    with a ``.period`` attribute of one of those (e.g. a ``PeriodEstimate``). A season is kept when season /
    period is an integer m (within a relative tolerance of 1e-3, then rounded) with m >= 2; otherwise it is
    omitted (a 7-minute period has no integer daily season; a 1-day period has no daily season but a weekly
    one of 7). Returns the kept lengths in increasing order, e.g. 10 min -> (144, 1008), 1 h -> (24, 168),
    2 days -> (). A missing (NaN/None) or non-positive period gives (). With a daily season of m samples
    the weekly one is 7m, also when the period is off by up to the tolerance (600.3 s: 144 and 1008, not
    1007, whose rounding alone would give a week that is not seven of the days).
    """
    if estimate_or_period is None or getattr(estimate_or_period, "period", 0) is None:
        return ()
    period = _as_timedelta(estimate_or_period)
    if pd.isna(period) or period <= pd.Timedelta(0):
        return ()
    lengths: dict[pd.Timedelta, int] = {}
    for season in SEASONS:
        ratio = season / period
        nearest = round(ratio)
        if DAY in lengths and season % DAY == pd.Timedelta(0):  # whole days: a whole number of day seasons
            nearest = lengths[DAY] * (season // DAY)
        if nearest >= MIN_SEASON_SAMPLES and abs(ratio - nearest) <= MULTIPLE_TOLERANCE * ratio:
            lengths[season] = int(nearest)
    return tuple(lengths.values())


def seasons_of_periods(periods_s: Iterable[float]) -> list[int]:
    """The distinct season lengths (samples) of :func:`seasonal_periods` over sampling periods in seconds
    (NaN skipped), increasing: the ``seasonal_<p>`` columns of series with these periods."""
    return sorted({m for s in periods_s if np.isfinite(s) for m in seasonal_periods(float(s))})


def usable_periods(periods: Iterable[int], n_samples: int) -> tuple[int, ...]:
    """The seasonal periods that can be estimated from ``n_samples``: 2 <= p and 2 * p < n (more than two full
    cycles), deduplicated and sorted. Longer periods are dropped."""
    return tuple(sorted({int(p) for p in periods if int(p) >= 2 and 2 * int(p) < n_samples}))


def smoother_jump(period: int) -> int:
    """STL trend / low-pass smoother jump for a season of ``period`` samples: ceil(period / 10).

    The LOESS fits are evaluated every ``jump`` points and linearly interpolated between (Cleveland et al.,
    1990, suggest ~10-20% of the smoother span; both spans are ~1-1.5 x period here). Measured on 8000 samples
    with period 288: 20x faster, residuals within 1.5% of their standard deviation of the exact fit.
    """
    return max(1, -(-int(period) // 10))


def mstl(
    values: np.ndarray,
    periods: tuple[int, ...],
    seasonal_window: int,
    robust: bool,
    jump: Callable[[int], int] = smoother_jump,
    iterations: int = MSTL_ITERATIONS,
    robust_iterations: tuple[int, int] = ROBUST_ITERATIONS,
    season_points: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MSTL (Bandara, Hyndman and Bergmeir, 2021), statsmodels' ``MSTL.fit`` loop without a Box-Cox
    transform: ``iterations`` passes over the periods (increasing), each adding its season back to the
    deseasonalised series and re-fitting it with STL (``seasonal_window``, ``robust``); the trend is the last
    STL's, ``resid = deseasonalised - trend``. Returns ``(trend, seasonal (one row per period), resid)``.
    With one period it is one STL fit (its components exactly).

    Unlike ``statsmodels.tsa.seasonal.MSTL``, which hands every season's STL the same arguments, each STL
    evaluates its trend and low-pass LOESS every ``jump(period)`` points of its own period: the weekly STL
    of 10-minute data smooths over ~1,500 points, and at the daily season's jump (15) instead of its own
    (101) it cost 5x as much (759 vs 139 ms on 4,032 samples); the residual stays within 0.5-2 % (rms) of
    its spread of the exact fit's (BENCHMARKS.md, session 16). ``robust_iterations``: STL's ``(inner_iter,
    outer_iter)`` when ``robust``; the cost is proportional to inner x outer. With ``jump`` constant and the
    same iterations this is statsmodels' MSTL exactly (tested).

    ``season_points``: fit a season of p samples, where p is ``season_points`` times an integer
    k >= ``MIN_SEASON_BLOCK``, on the means of blocks of k consecutive samples (the blocks end at the last
    sample; a remainder at the start is left out of that fit), and interpolate its seasonal component (and
    the trend, when it is the last season's) linearly from the blocks' centres back onto every sample.
    With 168, the weekly season of 10-minute data is fitted at hourly resolution: 672 block means instead
    of 4,032 samples, each point of its cycle-subseries the mean of 6 samples instead of 1. None
    (default): every season at full resolution."""
    from statsmodels.tsa.seasonal import STL

    if not periods:
        raise ValueError("mstl needs at least one period")
    seasonal = np.zeros((len(periods), len(values)))
    deseasonalised = np.asarray(values, dtype=float)
    inner, outer = robust_iterations if robust else (None, None)
    n = len(deseasonalised)
    positions = np.arange(n)

    def stl(values: np.ndarray, period: int) -> Any:
        step = jump(period)
        return STL(
            values,
            period=period,
            seasonal=seasonal_window,
            robust=robust,
            trend_jump=step,
            low_pass_jump=step,
        ).fit(inner_iter=inner, outer_iter=outer)

    trend = np.zeros(n)
    for _ in range(iterations if len(periods) > 1 else 1):
        for i, period in enumerate(periods):
            deseasonalised = deseasonalised + seasonal[i]
            block = season_block(period, n, season_points)
            if block > 1:
                start = n % block
                means = deseasonalised[start:].reshape(-1, block).mean(axis=1)
                fit = stl(means, period // block)
                centres = start + np.arange(means.size) * block + (block - 1) / 2
                seasonal[i] = np.interp(positions, centres, np.asarray(fit.seasonal))
                trend = np.interp(positions, centres, np.asarray(fit.trend))
            else:
                fit = stl(deseasonalised, period)
                seasonal[i] = fit.seasonal
                trend = np.asarray(fit.trend)
            deseasonalised = deseasonalised - seasonal[i]
    return trend, seasonal, deseasonalised - trend


def season_block(period: int, n_samples: int, season_points: int | None) -> int:
    """Samples per block for fitting a season of ``period`` samples on block means (see :func:`mstl`):
    ``period // season_points`` when that is an integer k >= ``MIN_SEASON_BLOCK`` and the
    ``n_samples // k`` block means still hold more than two cycles of ``season_points``; else 1 (full
    resolution)."""
    if not season_points or period % season_points:
        return 1
    block = period // season_points
    return block if block >= MIN_SEASON_BLOCK and n_samples // block > 2 * season_points else 1


def decompose(
    series: pd.Series,
    periods: int | Iterable[int],
    robust: bool = True,
    seasonal_window: int = 13,
    robust_iterations: tuple[int, int] = ROBUST_ITERATIONS,
    iterations: int = MSTL_ITERATIONS,
    season_points: int | None = None,
) -> pd.DataFrame:
    """Decompose a regular series: ``series = trend + sum(seasonal columns) + resid``.

    ``periods``: seasonal period(s) in samples (see :func:`seasonal_periods`). A period below 2, or of at
    least half the series (two full cycles or fewer), is dropped; the periods used are in
    ``result.attrs["periods"]``. One remaining period: STL, columns ``trend, seasonal, resid``. Several:
    MSTL, columns ``trend, seasonal_<p> (increasing p), resid``. ``robust=True`` uses STL's robust weights
    so outliers land in ``resid`` instead of bending trend and season (wanted for residual analysis);
    ``seasonal_window`` (odd, in cycles) is the seasonal smoother span (STL ``seasonal``, MSTL ``windows``):
    13 rather than statsmodels' 7, which was seen to absorb single spikes into the season. The trend and
    low-pass smoothers use :func:`smoother_jump` of each season's own period (speed; see there and
    :func:`mstl`). ``season_points``: fit longer seasons on block means (see :func:`mstl`; default: no).
    The series must be regularly sampled and NaN-free: impute first. Raises ValueError for NaN values, or
    when no period is usable.
    """
    series = value_series(series)
    values = series.to_numpy(dtype=float)
    if np.isnan(values).any():
        raise ValueError(f"series has {int(np.isnan(values).sum())} NaN values: impute before decompose")
    requested = (periods,) if isinstance(periods, int | np.integer) else tuple(periods)
    kept = usable_periods(requested, len(values))
    if not kept:
        raise ValueError(
            f"no usable seasonal period among {requested} for {len(values)} samples (need 2 <= p < n/2)"
        )
    trend, seasonal, resid = mstl(
        values,
        kept,
        seasonal_window,
        robust,
        robust_iterations=robust_iterations,
        iterations=iterations,
        season_points=season_points,
    )
    names = ["seasonal"] if len(kept) == 1 else [f"seasonal_{p}" for p in kept]
    columns = {"trend": trend, **dict(zip(names, seasonal, strict=True)), "resid": resid}
    frame = pd.DataFrame(columns, index=series.index)
    frame.attrs["periods"] = kept
    return frame
