"""Spikes: gross one-to-few-row glitches (a CO2 sensor reading 0 ppm for one minute) to clean, row by row.

The anomaly likelihood (:mod:`tsplatform.timeseries.anomaly_likelihood`) raises one alarm per *event* and
then stays silent for a day, and a week with several glitches widens its baseline; that is what an event
detector should do (NAB scores it so), but it leaves the second and later glitches of a week in the data.
``detect_spikes`` flags each of them, for cleaning, with a rule that needs no model:

- **Band.** At row t, from the ``window`` rows before it (NaN skipped): the ``q`` and ``1 - q`` quantiles
  ``lo_t``, ``hi_t`` (``q`` = 1 %) and the band widened by ``margin`` (1/2) of their span on each side::

      low_t = lo_t - margin * (hi_t - lo_t)        high_t = hi_t + margin * (hi_t - lo_t)

  For normal noise the fences lie 4.65 sigma from the mean (a row beyond one: p ~ 3e-6); for a series with
  a daily cycle, half the cycle's range beyond its extremes. No band before ``warmup`` rows.
- **Spike.** Rows t .. t+l-1 (1 <= l <= ``max_rows``, 3) all beyond the same fence of row t's band, the row
  before t inside its own band, row t+l back inside row t's band, and both steps, into the run (from row
  t-1 to t) and out of it (from t+l-1 to t+l), at least ``margin * (hi_t - lo_t)`` (the fence's own
  distance from the band): the series left its range by a jump and came back by one. A longer excursion,
  or one that has not come back yet, is not a spike: it may be a level shift, the event detector's
  business.

Causal up to the return: a spike's flags are final once the row after it is known; a run in the series'
first or last rows is never flagged. The band's quantiles keep ~1 % of a window's rows (at 1 minute, ~100
glitches a week) from widening it. Small counts are coarse for it: where 99 % of a week's values are 0-3,
a lone 5 is a spike. Settings (``window``, ``warmup``) come from the series' sampling step as the
likelihood's do (:func:`~tsplatform.timeseries.anomaly_likelihood.likelihood_settings`: a week of rows, at
least 1,000; one day of rows in [100, 1000]).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsplatform.timeseries.anomaly_likelihood import LikelihoodSettings, likelihood_settings

SPIKE_QUANTILE = 0.01  #: the band's quantiles q and 1 - q of the trailing window
SPIKE_MARGIN = 0.5  #: the fences lie this share of the band's span beyond it
SPIKE_MAX_ROWS = 3  #: a spike lasts at most this many rows


def spike_bands(
    values: np.ndarray,
    window: int,
    warmup: int,
    quantile: float = SPIKE_QUANTILE,
    margin: float = SPIKE_MARGIN,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, jump) per row from the ``window`` values before it (NaN skipped; NaN before ``warmup`` of
    them): the fences, and ``margin`` x the quantiles' span, the least step into and out of a spike.
    ``values`` in time order."""
    past = pd.Series(values, dtype=float).shift(1).rolling(window, min_periods=warmup)
    lo = past.quantile(quantile).to_numpy()
    hi = past.quantile(1.0 - quantile).to_numpy()
    jump = margin * (hi - lo)
    return lo - jump, hi + jump, jump


def spike_rows(
    values: np.ndarray, low: np.ndarray, high: np.ndarray, jump: np.ndarray, max_rows: int = SPIKE_MAX_ROWS
) -> np.ndarray:
    """Rows of ``values`` (time order, no NaN) that belong to a spike against the fences and least ``jump``
    of :func:`spike_bands` (see the module docstring). Loops once per row beyond a fence."""
    n = len(values)
    with np.errstate(invalid="ignore"):
        side = np.where(values < low, -1, np.where(values > high, 1, 0))  # NaN fences: 0
    flags = np.zeros(n, dtype=bool)
    next_free = 0
    for t in np.flatnonzero(side):
        if t < next_free or (t > 0 and side[t - 1] != 0):
            continue  # inside a run already judged, or not where the series left its band
        sign, fence = side[t], (low[t] if side[t] < 0 else high[t])
        end = t + 1
        while end < n and end - t <= max_rows and (values[end] - fence) * sign > 0:
            end += 1
        next_free = end
        if end - t > max_rows or end >= n or not low[t] <= values[end] <= high[t]:
            continue  # too long, not back yet, or back beyond the other fence
        least = jump[t]  # the series leaves by a jump and comes back by one
        if t > 0 and abs(values[t] - values[t - 1]) >= least and abs(values[end] - values[end - 1]) >= least:
            flags[t:end] = True
    return flags


def detect_spikes(
    series: pd.Series,
    quantile: float = SPIKE_QUANTILE,
    margin: float = SPIKE_MARGIN,
    max_rows: int = SPIKE_MAX_ROWS,
    settings: LikelihoodSettings | None = None,
) -> np.ndarray:
    """Bool per row of ``series`` (DatetimeIndex, any order; NaN rows False): the row is part of a spike
    (module docstring). Rows are taken in time order (stable); the result is in the series' order.
    ``settings``: ``likelihood_settings`` of the series' timestamps when the caller has them already."""
    values = series.to_numpy(dtype=float)
    flags = np.zeros(len(values), dtype=bool)
    present = np.flatnonzero(~np.isnan(values))
    if len(present) < 3:
        return flags
    index = pd.DatetimeIndex(series.index)
    settings = settings or likelihood_settings(index)
    if len(present) <= settings.warmup + 1:  # no row has a band and a row after it
        return flags
    order = present[np.argsort(index.asi8[present], kind="stable")]
    ordered = values[order]
    flags[order] = spike_rows(
        ordered, *spike_bands(ordered, settings.long_window, settings.warmup, quantile, margin), max_rows
    )
    return flags
