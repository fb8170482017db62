"""Anomaly (noise) detection: the streaming anomaly likelihood (the default causal detector), and the IQR rule
and residual analysis, batch or causal.

``detect_anomalies(series, causal=True)`` runs ``method="likelihood"``, described in
:mod:`tsplatform.timeseries.anomaly_likelihood` (score = anomaly likelihood in [0, 1]; ``is_anomaly`` = its
alarms, one per event; settings from the series' own sampling grid and scale). ``detect_anomalies(series)``
(batch) runs the IQR rule. For cleaning, where every bad row matters and not one alarm per event,
:func:`tsplatform.timeseries.spikes.detect_spikes` flags each gross 1-3 row glitch (``denoised_readings``
flags both).

The IQR and residual methods compare each value with a *fence* and score the distance beyond it on one
monotone map::

    excess = max(0, distance beyond the fence) / unit   (unit: the IQR, or the robust sigma of the residual)
    score  = excess / (1 + excess)                      in [0, 1): 0 inside the fences, 0.5 one unit beyond

``is_anomaly`` is ``score > 0`` (strictly outside the fences). When the unit is 0 (constant reference data)
any value beyond the fence gets score 1. NaN values get a NaN score and ``is_anomaly`` False.

Causal mode (``causal=True``) computes the fences at row t from rows < t only (rolling / expanding windows
counted in samples), so changing a future value never changes a past score; rows without enough history
(``min_periods``) get score 0 and ``is_anomaly`` False. ``refractory=r`` (both modes) keeps only the first
flag of a burst: the r rows after a flagged row are not flagged and get score 0 (one event, one alarm; it
is causal too).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.typing import Expanding, Rolling

from tsplatform.timeseries.anomaly_likelihood import detect_likelihood
from tsplatform.timeseries.decompose import decompose, seasonal_periods, usable_periods
from tsplatform.timeseries.dtypes import value_series
from tsplatform.timeseries.period import linear_quantiles

AnomalyMethod = Literal["likelihood", "iqr", "residual"]
METHODS: tuple[str, ...] = ("likelihood", "iqr", "residual")
MAD_TO_SIGMA = 1.482602218505602  # 1 / Phi^-1(3/4): MAD of a normal sample -> its standard deviation
MEAN_ABS_TO_SIGMA = 1.2533141373155003  # sqrt(pi / 2): mean absolute deviation (normal) -> its sigma


def excess_score(distance: np.ndarray, unit: np.ndarray | float) -> np.ndarray:
    """Map a distance beyond a fence (<= 0 inside) in units of ``unit`` onto [0, 1]: e / (1 + e); 1 if unit
    is 0."""
    distance = np.asarray(distance, dtype=float)
    unit = np.broadcast_to(np.asarray(unit, dtype=float), distance.shape)
    excess = np.where(distance > 0, distance, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = excess / unit
        score = np.where(unit > 0, relative / (1.0 + relative), np.where(excess > 0, 1.0, 0.0))
    return np.where(np.isnan(distance), np.nan, score)


def apply_refractory(score: np.ndarray, refractory: int) -> np.ndarray:
    """Zero the scores of the ``refractory`` rows following each kept flag (score > 0); first flag wins."""
    if refractory <= 0:
        return score
    result = score.copy()
    last_kept = -refractory - 1
    for i in np.flatnonzero(score > 0):
        if i - last_kept > refractory:
            last_kept = i
        else:
            result[i] = 0.0
    return result


def _result(series: pd.Series, score: np.ndarray, values: np.ndarray, refractory: int) -> pd.DataFrame:
    score = np.where(np.isnan(values), np.nan, np.nan_to_num(score, nan=0.0))
    score = apply_refractory(score, int(refractory))
    return pd.DataFrame({"score": score, "is_anomaly": score > 0}, index=series.index)


def _past(frame: pd.Series, window: int | None, min_periods: int) -> Rolling | Expanding:
    """Rolling (``window`` samples) or expanding window over rows < t (shifted by one row)."""
    shifted = frame.shift(1)
    if window is None:
        return shifted.expanding(min_periods=min_periods)
    return shifted.rolling(int(window), min_periods=min(min_periods, int(window)))


#: Largest rows x window product for which :func:`past_median` sorts a window matrix instead of calling
#: pandas' rolling median (whose fixed cost dominates on a series-day; the matrix grows with the product).
SMALL_ROLLING = 65_536


def past_median(values: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """Median of the previous ``window`` values at each row t (rows t-window..t-1, NaN skipped); NaN with
    fewer than ``min(min_periods, window)`` non-NaN values. Equal to
    ``pd.Series(values).shift(1).rolling(window, min_periods=min(min_periods, window)).median()``.

    Small inputs (rows x window <= ``SMALL_ROLLING``) sort one window per row (NaN sort last) and average
    the two middle values, the same arithmetic as pandas; larger ones call pandas' rolling median.
    """
    x = np.asarray(values, dtype=float)
    n, window = len(x), int(window)
    need = min(int(min_periods), window)
    if n * window > SMALL_ROLLING or n == 0:
        shifted = pd.Series(x).shift(1).rolling(window, min_periods=need)
        return shifted.median().to_numpy()
    padded = np.concatenate([np.full(window, np.nan), x])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)[:n]  # row t: x[t-window..t-1]
    ordered = np.sort(windows, axis=1)
    counts = window - np.isnan(windows).sum(axis=1)
    rows = np.arange(n)
    low = ordered[rows, np.maximum(counts - 1, 0) // 2]
    high = ordered[rows, np.maximum(counts, 1) // 2]
    median = (low + high) / 2
    median[counts < max(need, 1)] = np.nan
    return median


#: IQR of a normal distribution in standard deviations (2 * Phi^-1(3/4))
IQR_TO_SIGMA = 1.3489795003921634


def tail_aware_sigma(deviations: np.ndarray, robust_sigma: float) -> float:
    """max(robust sigma, sqrt(pi/2) * mean |deviation|): equal on normal data; on heavy-tailed data (a
    residual with structure left in it, Student-t or log-normal noise) the robust sigma sees only the core
    and would flag a large share of ordinary values, the mean absolute deviation also sees the tails (a few
    spikes move it by their share of the rows only). Zero-inflated data (most values exactly equal) still
    get a small unit: a few % of their ordinary values can pass the fences."""
    return max(robust_sigma, MEAN_ABS_TO_SIGMA * float(np.mean(np.abs(deviations))))


def iqr_scores(
    values: pd.Series, k: float = 3.0, causal: bool = False, window: int | None = None, min_periods: int = 30
) -> np.ndarray:
    """IQR rule: fences Q1 - k*unit and Q3 + k*unit (linear quantiles of the non-NaN values; causal: of the
    past ``window`` values, or all past values when window is None). Causal: unit = IQR. Batch: unit = the
    IQR, or the tail-aware one (:func:`tail_aware_sigma` of x - median, times 1.349) when larger; default
    k = 3 (Tukey's "far out" fence)."""
    x = values.to_numpy(dtype=float)
    if causal:
        past = _past(values, window, min_periods)
        q1 = past.quantile(0.25).to_numpy()
        q3 = past.quantile(0.75).to_numpy()
        iqr = q3 - q1
    else:
        observed = x[~np.isnan(x)]
        if observed.size == 0:
            return np.full(len(x), np.nan)
        q1, q3 = linear_quantiles(observed, (0.25, 0.75))  # = np.quantile(observed, [0.25, 0.75])
        median = float(np.median(observed))
        iqr = IQR_TO_SIGMA * tail_aware_sigma(observed - median, (q3 - q1) / IQR_TO_SIGMA)
    distance = np.maximum((q1 - k * iqr) - x, x - (q3 + k * iqr))
    score = excess_score(distance, iqr)
    return np.where(np.isnan(q1) & ~np.isnan(x), 0.0, score)


def _auto_periods(series: pd.Series) -> tuple[int, ...]:
    steps = np.diff(series.index.as_unit("ns").asi8)  # (asi8 counts the index's own unit)
    steps = steps[steps > 0]
    if steps.size == 0:
        return ()
    return seasonal_periods(pd.Timedelta(int(np.median(steps)), unit="ns"))


def _robust_z_distance(residual: np.ndarray, location, scale, c: float) -> tuple[np.ndarray, np.ndarray]:
    return np.abs(residual - location) - c * scale, scale


def batch_residual(series: pd.Series, periods: tuple[int, ...], trend_window: int) -> np.ndarray:
    """Residual of a robust STL decomposition on the shortest usable period (NaN interpolated in time
    first, then re-masked); with no usable period, the residual from a centred rolling median of
    ``trend_window`` samples."""
    values = series.to_numpy(dtype=float)
    filled = series.interpolate(method="time", limit_direction="both")
    kept = usable_periods(periods, len(series))
    if kept and not filled.isna().any():
        # STL on the shortest season only: MSTL with a weekly season fitted on few weeks absorbs spikes
        resid = decompose(filled, kept[0], robust=True)["resid"].to_numpy()
    else:
        resid = (filled - filled.rolling(trend_window, center=True, min_periods=1).median()).to_numpy()
    return np.where(np.isnan(values), np.nan, resid)


def causal_residual(
    series: pd.Series, periods: tuple[int, ...], level_window: int, n_cycles: int, min_periods: int
) -> np.ndarray:
    """Residual from a causal baseline: level = median of the previous ``level_window`` values; with a
    seasonal period p (the shortest of ``periods``), plus the seasonal term = median over j = 1..n_cycles of
    (x[t - j*p] - level[t - j*p]) (0 while there is no such history)."""
    values = series.to_numpy(dtype=float)
    level = past_median(values, level_window, min_periods)
    baseline = level.copy()
    if periods and n_cycles > 0:
        season = min(periods)
        deviation = values - level
        lagged = np.full((n_cycles, len(values)), np.nan)
        for j in range(1, n_cycles + 1):
            if j * season < len(values):
                lagged[j - 1, j * season :] = deviation[: len(values) - j * season]
        has_history = ~np.isnan(lagged).all(axis=0)
        seasonal = np.zeros(len(values))
        if has_history.any():
            seasonal[has_history] = np.nanmedian(lagged[:, has_history], axis=0)
        baseline = level + seasonal
    return values - baseline


def causal_scale(
    resid: np.ndarray, index: pd.Index, window: int, min_periods: int
) -> tuple[np.ndarray, np.ndarray]:
    """(location, sigma) of each residual from the previous ``window`` residuals (rows < t): location = their
    median, sigma = 1.4826 * median |r - location| (an online MAD); where that MAD is 0 (more than half of the
    window equal, e.g. a counter stuck at 0), sigma = 1.2533 * mean |r - location| instead, so a series that
    is mostly constant is still scaled by its rare moves. NaN without ``min_periods`` history; 0 only when
    the whole window is constant."""
    location = past_median(resid, window, min_periods)
    spread = np.abs(resid - location)
    sigma = MAD_TO_SIGMA * past_median(spread, window, min_periods)
    if (sigma == 0).any():  # only then pay for the second rolling statistic
        past_mean = _past(pd.Series(spread, index=index), window, min_periods).mean().to_numpy()
        sigma = np.where(sigma == 0, MEAN_ABS_TO_SIGMA * past_mean, sigma)
    return location, sigma


def residual_scores(
    series: pd.Series,
    c: float = 5.0,
    causal: bool = False,
    periods: tuple[int, ...] | None = None,
    window: int = 288,
    n_cycles: int = 3,
    scale_window: int | None = None,
    min_periods: int = 30,
    smooth: int = 1,
    surprise_window: int = 5000,
    z_clip: float = 50.0,
) -> np.ndarray:
    """Residual analysis: residual r of a seasonal decomposition; fences median(r) +/- c * sigma with the
    robust sigma = 1.4826 * MAD(r); unit = sigma.

    Batch: r from robust STL on the shortest of ``periods`` (in samples; default: daily/weekly from the
    median step), fences from all residuals, sigma = :func:`tail_aware_sigma` (the robust one unless the
    residual is heavy-tailed). Causal: r from :func:`causal_residual` (level window
    ``window``), fences from the previous ``scale_window`` residuals (default ``window``) by
    :func:`causal_scale` (online median and MAD, mean absolute deviation where the MAD is 0).

    Causal with ``smooth`` = m > 1 (a two-stage "surprise" score, in the spirit of NAB's HTM anomaly
    likelihood, whose short averaging window is 10): the robust z = |r - location| / sigma (capped at
    ``z_clip``; 0 while sigma is unknown; ``z_clip`` when the whole scale window is constant and r differs
    from it) is averaged over the last m rows, a_t = mean(z_{t-m+1..t}); the fences are then put on a:
    median(a) + c * 1.4826 * MAD(a) over the previous ``surprise_window`` rows (one-sided: only unusually
    *high* surprise is anomalous), unit = that sigma.
    A burst of moderate deviations, or a changed regime, raises a even when no single value is extreme.
    """
    if periods is None:
        periods = _auto_periods(series)
    periods = tuple(int(p) for p in periods)
    if not causal:
        resid = batch_residual(series, periods, trend_window=window)
        observed = resid[~np.isnan(resid)]
        if observed.size == 0:
            return np.full(len(resid), np.nan)
        location = np.median(observed)
        sigma = tail_aware_sigma(observed - location, MAD_TO_SIGMA * np.median(np.abs(observed - location)))
        return excess_score(np.abs(resid - location) - c * sigma, sigma)
    resid = causal_residual(series, periods, window, n_cycles, min_periods)
    location, sigma = causal_scale(resid, series.index, scale_window or window, min_periods)
    if smooth <= 1:
        score = excess_score(np.abs(resid - location) - c * sigma, sigma)
        return np.where(np.isnan(sigma) & ~np.isnan(resid), 0.0, score)
    deviation = np.abs(resid - location)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.minimum(np.where(sigma > 0, deviation / sigma, np.where(deviation > 0, np.inf, 0.0)), z_clip)
    z = np.where(np.isnan(resid), np.nan, np.where(np.isnan(sigma), 0.0, z))
    surprise = pd.Series(z, index=series.index).rolling(int(smooth), min_periods=1).mean()
    surprise_values = surprise.to_numpy()
    typical = past_median(surprise_values, surprise_window, min_periods)
    spread = MAD_TO_SIGMA * past_median(np.abs(surprise_values - typical), surprise_window, min_periods)
    score = excess_score(surprise_values - typical - c * spread, spread)
    return np.where(np.isnan(spread) & ~np.isnan(resid), 0.0, score)


def detect_anomalies(
    series: pd.Series, method: AnomalyMethod | None = None, causal: bool = False, **params: Any
) -> pd.DataFrame:
    """Score every row of ``series`` and flag anomalies; returns ``DataFrame(score, is_anomaly)`` on its
    index.

    ``method`` defaults to ``"likelihood"`` when ``causal`` and to ``"iqr"`` otherwise.
    ``method="likelihood"`` (causal only): the streaming anomaly likelihood of
    :mod:`tsplatform.timeseries.anomaly_likelihood`; no parameter is needed (all come from the timestamps and
    the data); params ``alarm_tail`` (1e-5), ``record_margin`` (0.01; None: no range-record rule),
    ``seasonal_gate`` (0.95; None: no seasonal stream), ``flaggable_from`` (a time: an alarm at or after it
    never flags an earlier row, for callers that have published those), ``flag_onsets`` (True; False: an
    alarm flags its own row, not its event's onset), ``settings`` (the series' ``likelihood_settings``,
    when the caller has them already) and the
    fields of ``LikelihoodSettings`` (``long_window``, ``warmup`` rows, ``refractory``, ``max_gap``
    Timedeltas) override them. Rows may be irregular and unsorted (windows count observed rows, the
    refractory period and the gap rule count time).
    ``method="iqr"``: params ``k`` (3), causal: ``window`` (None = expanding), ``min_periods`` (30).
    ``method="residual"``: params ``c`` (5), ``periods`` (samples; default from the median step via
    ``seasonal_periods``), ``window`` (288: batch fallback trend / causal level window), causal:
    ``n_cycles`` (3), ``smooth`` (1), ``surprise_window`` (5000), ``z_clip`` (50),
    ``scale_window``, ``min_periods`` (30).
    iqr and residual: ``refractory`` (0) rows of silence after a flag; their window sizes count samples, so
    the series should be regular (regularize/impute first). NaN rows are scored NaN and never flagged. See
    the module docstring for the scores.
    Raises ValueError for an unknown method or parameter, a non-datetime index, or a batch likelihood.
    """
    if method is None:
        method = "likelihood" if causal else "iqr"
    if method not in METHODS:
        raise ValueError(f"unknown anomaly method {method!r}; expected one of {METHODS}")
    series = value_series(series)
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ValueError("series must have a DatetimeIndex")
    params = dict(params)
    values = series.astype(float)
    if method == "likelihood":
        if not causal:
            raise ValueError("method 'likelihood' is causal (streaming) only: call it with causal=True")
        try:
            score, alarm = detect_likelihood(values, **params)
        except TypeError as error:
            raise ValueError(f"bad parameter for method 'likelihood': {error}") from None
        return pd.DataFrame({"score": score, "is_anomaly": alarm}, index=series.index)
    refractory = int(params.pop("refractory", 0))
    try:
        if method == "iqr":
            score = iqr_scores(values, causal=causal, **params)
        else:
            score = residual_scores(values, causal=causal, **params)
    except TypeError as error:
        raise ValueError(f"bad parameter for method {method!r}: {error}") from None
    return _result(series, score, values.to_numpy(), refractory)
