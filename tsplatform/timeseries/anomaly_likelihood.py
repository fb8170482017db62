"""Streaming anomaly likelihood: the default causal detector of ``detect_anomalies(series, causal=True)``.

Every quantity at row t uses rows <= t only (in time order), so a later value never changes an earlier score.
Its settings come from the series' own sampling grid (``estimate_period`` of the timestamps: the step; one
day and one week in rows at that step) and from the data's own scale (every error is measured in units of
its own running spread). Of the few constants below, SHORT_WINDOW, Z_CAP and the sd floor follow HTM and
the normal model; ALARM_TAIL and RECORD_MARGIN were picked from the middle of a plateau on NAB (standard
score 65.5-69.0 for ALARM_TAIL 1e-6..1e-4 and RECORD_MARGIN 1..5 %, 52 without records; leave-one-category-out
in BENCHMARKS.md).

Maths, for each observed row t (NaN rows are skipped and scored NaN):

1. **Prediction error.** Forecast = the previous observation (a random-walk forecast; no forecast for the
   first row or after a silence longer than one day, so a long gap is not mistaken for a jump):
   ``e_t = |x_t - x_{t-1}|``.
2. **Calibrated surprise.** ``s_t = 1.2533 * mean(e)`` over the previous ``long_window`` forecasts (the
   standard deviation of a normal error from its mean absolute value, sqrt(pi/2)); ``z_t = e_t / s_t``
   (``Z_CAP`` when s_t = 0 < e_t, i.e. a constant history that moves), capped at ``Z_CAP`` (= 8 sigma, a
   two-sided p-value of 1e-15: beyond it nothing is more surprising). The surprise is the information
   content of the two-sided normal p-value, ``u_t = -ln(2 Q(z_t))`` (Q: the standard normal upper tail); for
   calibrated normal errors u ~ Exp(1) (mean 1, standard deviation 1).
3. **Anomaly likelihood** (in the manner of HTM's: a short-term mean compared with its long-term
   distribution). ``m_t`` = mean of u over the last ``SHORT_WINDOW`` = 10 rows (HTM's averaging window); its
   long-term mean ``mu_t`` and standard deviation ``sd_t`` over the previous ``long_window`` rows, with
   ``sd_t >= 1 / sqrt(10)`` (the standard deviation of m for calibrated errors: a perfectly predictable
   history does not make every later wiggle infinitely unlikely). Tail probability
   ``tail_t = Q((m_t - mu_t) / sd_t)``; the score is ``max(0, 1 - 2 tail_t)`` in [0, 1]: 0 while m is at
   or below its long-term mean (and during the warm-up), 1 - 2e-5 at the alarm level, 1 for a record.
   A single large error, a burst of moderate ones, a change in variance or a level shift (its first error)
   all raise m above its usual range; heavy-tailed data raise sd and so need more to alarm.
4. **Range record.** A value beyond the range of all previous values by more than ``RECORD_MARGIN`` (1 %)
   of that range gets tail 0 (score 1): new extremes (NAB's HTM detector adds the same "spatial" rule).
5. **Alarms** (``is_anomaly``) come from two kinds of evidence, each kept to one alarm per event by its own
   refractory period of one day (time, not rows; at least ``SHORT_WINDOW`` steps), and OR-ed:

   - *likelihood*: tail < ``ALARM_TAIL`` = 1e-5 (one row in 100,000 under the normal approximation; HTM's
     NAB threshold is 4e-6; m is skewed, so on pure Gaussian noise the real rate is higher: about 0.1 false
     alarm per day at a 5-minute step, 0.35 at 1 minute, 0.03 at 1 hour), only at the start of an
     excursion (hysteresis: since the previous firing the tail must have been back at >= 0.5, m at or
     below its long-term mean), then silent for the refractory period;
   - *range record* (step 4): then silent for the refractory period (a ramp to new extremes is one event).

   The two periods are independent: a likelihood alarm does not silence the next range record, nor a
   record the next likelihood excursion. They answer different questions (an unpredictable move; a value
   never seen before), so one is not a repeat of the other: a burst of noise followed within the day by a
   new extreme, or a new extreme followed by an unpredictable change, are two events.

Warm-up: no score before ``warmup`` rows of history (one day of rows, at least 100 and at most 1000): tail 1
(score 0), no alarm. A series shorter than that never alarms. An all-constant series has u = 0: score 0, no
alarm. Cost: O(n) cumulative sums and a few vectorised passes (1M rows in about a second on one core).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import log_ndtr, ndtr

from tsplatform.timeseries.period import estimate_period

SHORT_WINDOW = 10  #: rows averaged into m (HTM anomaly likelihood's averaging window)
Z_CAP = 8.0  #: largest z counted (two-sided p-value 1.2e-15)
ALARM_TAIL = 1e-5  #: alarm when the tail probability of m falls below this
REARM_TAIL = 0.5  #: a new alarm needs the tail back at >= this (m at or below its long-term mean) first
RECORD_MARGIN = 0.01  #: a range record must pass the previous range by this share of the range
MIN_LONG_WINDOW = 1000  #: rows at least in the long-term window (a stable mean and variance of m)
MIN_WARMUP, MAX_WARMUP = 100, 1000  #: rows of history before the first score, around one day
MEAN_ABS_TO_SIGMA = 1.2533141373155003  # sqrt(pi / 2)
DAY, WEEK = pd.Timedelta(days=1), pd.Timedelta(days=7)


@dataclass(frozen=True)
class LikelihoodSettings:
    """Settings derived from a series' sampling grid (see :func:`likelihood_settings`).

    ``step``: sampling period; ``long_window``: rows of history for the error scale and the distribution of m
    (one week of rows, at least ``MIN_LONG_WINDOW``); ``warmup``: rows before the first score (one day of
    rows, clipped to [``MIN_WARMUP``, ``MAX_WARMUP``]); ``refractory``: silence after an alarm, for alarms of
    the same kind (likelihood or range record; one day, at least ``SHORT_WINDOW`` steps); ``max_gap``: a
    longer silence leaves the next row without a forecast.
    """

    step: pd.Timedelta
    long_window: int
    warmup: int
    refractory: pd.Timedelta
    max_gap: pd.Timedelta


def likelihood_settings(index: pd.DatetimeIndex) -> LikelihoodSettings:
    """The detector's settings for a series with these timestamps (step from ``estimate_period``; the median
    positive difference when there are fewer than 3 distinct timestamps; 1 s when there is none)."""
    try:
        step = estimate_period(index).period
    except ValueError:
        steps = np.diff(np.sort(index.asi8))
        steps = steps[steps > 0]
        step = pd.Timedelta(int(np.median(steps)) if steps.size else 1_000_000_000, unit="ns")
    rows_per_day = DAY / step
    long_window = max(round(WEEK / step), MIN_LONG_WINDOW)
    warmup = int(np.clip(round(rows_per_day), MIN_WARMUP, MAX_WARMUP))
    refractory = max(DAY, SHORT_WINDOW * step)
    return LikelihoodSettings(step, long_window, warmup, refractory, max_gap=refractory)


def _trailing_mean(values: np.ndarray, window: int, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, count) of the non-NaN values among rows t-lag-window+1 .. t-lag, for every row t."""
    present = ~np.isnan(values)
    sums = np.concatenate(([0.0], np.cumsum(np.where(present, values, 0.0))))
    counts = np.concatenate(([0], np.cumsum(present)))
    end = np.clip(np.arange(len(values)) + 1 - lag, 0, None)
    start = np.clip(end - window, 0, None)
    count = counts[end] - counts[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums[end] - sums[start]) / count
    return mean, count


def _first_after_refractory(candidates: np.ndarray, times: np.ndarray, refractory: int) -> np.ndarray:
    """Keep a candidate row when no kept row lies within ``refractory`` (ns) before it (first one wins).
    Loops once per kept alarm, not per row."""
    rows = np.flatnonzero(candidates)
    kept = np.zeros(len(candidates), dtype=bool)
    position = 0
    while position < len(rows):
        row = rows[position]
        kept[row] = True
        position = int(np.searchsorted(times[rows], times[row] + refractory, side="right"))
    return kept


def likelihood_scores(
    values: np.ndarray,
    times_ns: np.ndarray,
    settings: LikelihoodSettings,
    alarm_tail: float = ALARM_TAIL,
    record_margin: float | None = RECORD_MARGIN,
) -> tuple[np.ndarray, np.ndarray]:
    """(score, alarm) per row of ``values`` taken in the order given (time order; see the module docstring).
    NaN values: score NaN, no alarm, skipped by every window. ``record_margin=None`` turns the range-record
    rule off."""
    values = np.asarray(values, dtype=float)
    score = np.full(len(values), np.nan)
    alarm = np.zeros(len(values), dtype=bool)
    observed = np.flatnonzero(~np.isnan(values))
    if observed.size == 0:
        return score, alarm
    x, t = values[observed], np.asarray(times_ns, dtype=np.int64)[observed]
    n = len(x)
    long_window = settings.long_window
    forecast = np.concatenate(([np.nan], x[:-1]))
    forecast[1:][np.diff(t) > settings.max_gap.value] = np.nan
    error = np.abs(x - forecast)
    scale = MEAN_ABS_TO_SIGMA * _trailing_mean(error, long_window, lag=1)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(scale > 0, error / scale, np.where(error > 0, Z_CAP, 0.0))
    z = np.minimum(z, Z_CAP)  # NaN (no forecast, or no scale yet) stays NaN
    surprise = -(np.log(2.0) + log_ndtr(-z))
    short_mean, _ = _trailing_mean(surprise, SHORT_WINDOW, lag=0)
    mu, count = _trailing_mean(short_mean, long_window, lag=1)
    mean_square, _ = _trailing_mean(short_mean * short_mean, long_window, lag=1)
    sd = np.sqrt(np.maximum(mean_square - mu * mu, 1.0 / SHORT_WINDOW))
    tail = ndtr(-(short_mean - mu) / sd)
    tail = np.where((count < settings.warmup) | np.isnan(tail), 1.0, tail)
    # hysteresis: fire where tail < alarm_tail if the last decided state before was "re-armed"
    state = np.where(tail < alarm_tail, 1.0, np.where(tail >= REARM_TAIL, -1.0, np.nan))
    previous = pd.Series(state).ffill().shift(1).fillna(-1.0).to_numpy()
    fire = (state == 1.0) & (previous == -1.0)
    refractory = settings.refractory.value
    kept = _first_after_refractory(fire, t, refractory)
    if record_margin is not None:
        low = np.concatenate(([np.nan], np.minimum.accumulate(x)[:-1]))
        high = np.concatenate(([np.nan], np.maximum.accumulate(x)[:-1]))
        margin = record_margin * (high - low)
        with np.errstate(invalid="ignore"):
            record = ((x > high + margin) | (x < low - margin)) & (high > low)
        record &= np.arange(n) >= settings.warmup
        tail = np.where(record, 0.0, tail)
        kept |= _first_after_refractory(record, t, refractory)  # its own refractory period (step 5)
    score[observed] = np.maximum(0.0, 1.0 - 2.0 * tail)
    alarm[observed] = kept
    return score, alarm


def detect_likelihood(
    series: pd.Series,
    alarm_tail: float = ALARM_TAIL,
    record_margin: float | None = RECORD_MARGIN,
    **overrides: int | pd.Timedelta,
) -> tuple[np.ndarray, np.ndarray]:
    """(score, alarm) for ``series`` (DatetimeIndex, any order): rows are processed in time order (stable)
    and the results returned in the series' order. ``overrides``: fields of :class:`LikelihoodSettings` to
    replace (for benchmarks; the defaults come from the timestamps)."""
    index = pd.DatetimeIndex(series.index)
    settings = likelihood_settings(index)
    if overrides:
        unknown = set(overrides) - set(LikelihoodSettings.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}")
        settings = LikelihoodSettings(**{**settings.__dict__, **overrides})
    times = index.asi8
    order = np.argsort(times, kind="stable")
    score_sorted, alarm_sorted = likelihood_scores(
        series.to_numpy(dtype=float)[order], times[order], settings, alarm_tail, record_margin
    )
    score, alarm = np.empty_like(score_sorted), np.empty_like(alarm_sorted)
    score[order], alarm[order] = score_sorted, alarm_sorted
    return score, alarm
