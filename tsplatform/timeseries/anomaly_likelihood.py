"""Streaming anomaly likelihood: the default causal detector of ``detect_anomalies(series, causal=True)``.

Every score at row t uses rows <= t only (in time order), so a later value never changes an earlier score; an
alarm raised at row t flags a row of its last ``SHORT_WINDOW`` rows (step 5), so a flag is final
``SHORT_WINDOW - 1`` rows after its row.
Its settings come from the series' own sampling grid (``estimate_period`` of the timestamps: the step; one
day and one week in rows at that step) and from the data's own scale (every error is measured in units of
its own running spread). Of the few constants below, SHORT_WINDOW, Z_CAP and the sd floor follow HTM and
the normal model; ALARM_TAIL and RECORD_MARGIN were picked from the middle of a plateau on NAB (standard
score 62.8-70.1 for ALARM_TAIL 1e-6..1e-4 and RECORD_MARGIN 1..5 %, 49-53 without records;
leave-one-category-out in BENCHMARKS.md); SEASONAL_GATE sits between NAB's real series and its artificial
daily waves (the 33 files scored the same for any gate from 0.95 to 0.98, 68.98 at 0.9, 68.36 at 0.7).

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

   **Seasonal stream, for a day that repeats.** The same steps 2-3 run on a second error, ``e'_t = |x_t -
   r_t|``, where ``r_t`` is the median of the values at the same time on the ``SEASONAL_DAYS`` = 3 previous
   days (rows within half a step of t - k days; the median, so that one unusual day does not become the next
   day's expectation), giving ``tail'_t``. Where the series repeats its day almost exactly, i.e. the
   correlation of ``x`` with ``r`` over the previous ``long_window`` rows (after ``warmup`` pairs) is at least
   ``SEASONAL_GATE`` = 0.95, the row's tail is ``min(1, 2 min(tail_t, tail'_t))`` (the smaller of two tail
   probabilities, Bonferroni-corrected: two streams keep the false-alarm rate of one); elsewhere it is
   ``tail_t`` alone. Seasonal errors below ``ROUNDING`` = 1e-9 of the largest value so far are floating-point
   rounding (a noiseless repeating day) and count as 0. A day whose pattern breaks (a jump that does not come,
   a flat or lower high phase) moves no more from row to row than usual, so only the time of day shows it. The
   gate keeps the stream to near-deterministic daily patterns: on NAB's 33 files it opens on NAB's artificial
   daily waves (correlation 0.99-1.0) and on 3.7 % of the rows of one real file
   (cpu_utilization_asg_misconfiguration, at most 0.963; every other real file stays under 0.95), and no alarm
   of the 33 changes. A steady trend can open it too; the Bonferroni factor keeps that harmless (a linear
   trend plus noise: the same alarms within a few per cent).
4. **Range record.** A value beyond the range of all previous values by more than ``RECORD_MARGIN`` (1 %)
   of that range gets tail 0 (score 1): new extremes (NAB's HTM detector adds the same "spatial" rule).
5. **Alarms** (``is_anomaly``) come from two kinds of evidence, each kept to one alarm per event by its own
   refractory period of one day (time, not rows; at least ``SHORT_WINDOW`` steps), and OR-ed:

   - *likelihood* (either stream of step 3): tail < ``ALARM_TAIL`` = 1e-5 (one row in 100,000 under the normal
     approximation; HTM's NAB threshold is 4e-6; m is skewed, so on pure Gaussian noise the real rate is
     higher: about 0.1 false alarm per day at a 5-minute step, 0.35 at 1 minute, 0.03 at 1 hour), only at the
     start of an excursion (hysteresis: since the previous firing the tail must have been back at >= 0.5, m at
     or below its long-term mean), then silent for the refractory period;
   - *range record* (step 4): then silent for the refractory period (a ramp to new extremes is one event).

   A likelihood alarm raised at row t flags the *onset* of its event: the row among t - 9 .. t (the rows
   whose surprises make up m_t) with the largest z in the stream that raised it, the earliest on a tie. A
   single spike on a noisy series lifts m past the alarm level only with its recovery, whose error is as
   large (both z at the cap): the alarm comes one row late, and the flag goes to the spike, not to the
   ordinary value after it, which is what ``denoised_readings`` then processes. A range record flags its
   own row. A caller that has already published the rows before some time (``flaggable_from``: the
   graph's day runs, whose earlier days are written) gets an alarm raised after it flagged on its own
   unpublished rows, so that the event is not lost.

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
SEASONAL_GATE = 0.95  #: the seasonal stream counts where corr(x_t, its reference) over a week is >= this
SEASONAL_DAYS = 3  #: the seasonal forecast is the median of the same time on this many previous days
ROUNDING = 1e-9  #: a seasonal error below this share of the largest |value| so far is float rounding
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


def _error_tail(error: np.ndarray, long_window: int, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps 2-3 for one stream of prediction errors: (the anomaly likelihood's tail probability, z) per row
    (tail 1 during the warm-up and where the error is NaN; z NaN where there is no error or no scale yet)."""
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
    return np.where((count < warmup) | np.isnan(tail), 1.0, tail), z


def _value_days_before(x: np.ndarray, t: np.ndarray, step_ns: int, days: int) -> np.ndarray:
    """For each row, the value of the row ``days`` days earlier (within half a step), else NaN."""
    target = t - days * DAY.value
    j = np.clip(np.searchsorted(t, target), 0, len(t) - 1)
    before = np.clip(j - 1, 0, len(t) - 1)
    j = np.where(np.abs(t[before] - target) < np.abs(t[j] - target), before, j)
    return np.where(np.abs(t[j] - target) * 2 <= step_ns, x[j], np.nan)


def _same_time_of_day(x: np.ndarray, t: np.ndarray, step_ns: int) -> np.ndarray:
    """The median of the values at the same time on the ``SEASONAL_DAYS`` previous days (NaN unless all
    are there): one unusual day does not become the next day's expectation."""
    before = np.stack([_value_days_before(x, t, step_ns, d) for d in range(1, SEASONAL_DAYS + 1)])
    return np.median(before, axis=0)  # NaN where any day is missing


def _daily_correlation(x: np.ndarray, reference: np.ndarray, window: int, warmup: int) -> np.ndarray:
    """Pearson correlation of x_t with its seasonal reference over the previous ``window`` rows holding both
    (NaN before ``warmup`` such rows, or where either side is constant)."""
    a, b = np.where(np.isnan(reference), np.nan, x), reference
    mean_a, count = _trailing_mean(a, window, lag=1)
    mean_b, _ = _trailing_mean(b, window, lag=1)
    mean_ab, _ = _trailing_mean(a * b, window, lag=1)
    mean_aa, _ = _trailing_mean(a * a, window, lag=1)
    mean_bb, _ = _trailing_mean(b * b, window, lag=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (mean_ab - mean_a * mean_b) / np.sqrt((mean_aa - mean_a**2) * (mean_bb - mean_b**2))
    return np.where(count >= warmup, corr, np.nan)


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


def _onsets(alarms: np.ndarray, z: np.ndarray, first_flaggable: int = 0) -> np.ndarray:
    """For each alarm row t, the row of its short window (rows t - SHORT_WINDOW + 1 .. t, the rows whose
    surprises make up m_t; for t >= ``first_flaggable``, none before it) with the largest z: the earliest on
    a tie (z is capped, so a spike and its recovery tie and the spike wins). Loops once per alarm."""
    onsets = np.zeros(len(alarms), dtype=bool)
    ranked = np.nan_to_num(z, nan=-1.0)  # a row without an error never outranks one with an error
    for row in np.flatnonzero(alarms):
        first = max(0, row - SHORT_WINDOW + 1)
        if row >= first_flaggable:
            first = max(first, first_flaggable)
        onsets[first + int(np.argmax(ranked[first : row + 1]))] = True
    return onsets


def likelihood_scores(
    values: np.ndarray,
    times_ns: np.ndarray,
    settings: LikelihoodSettings,
    alarm_tail: float = ALARM_TAIL,
    record_margin: float | None = RECORD_MARGIN,
    seasonal_gate: float | None = SEASONAL_GATE,
    flag_onsets: bool = True,
    flaggable_from_ns: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(score, alarm) per row of ``values`` taken in the order given (time order; see the module docstring).
    NaN values: score NaN, no alarm, skipped by every window. ``record_margin=None`` turns the range-record
    rule off, ``seasonal_gate=None`` the seasonal stream; ``flag_onsets=False`` flags the row that raised a
    likelihood alarm instead of its event's onset (for benchmarks). ``flaggable_from_ns``: rows before this
    time are published already; an alarm at or after it flags its onset among the rows from it on."""
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
    tail, z = _error_tail(np.abs(x - forecast), long_window, settings.warmup)
    seasonal_wins, seasonal_z = np.zeros(n, dtype=bool), z  # rows whose tail is the seasonal stream's
    if seasonal_gate is not None:
        reference = _same_time_of_day(x, t, settings.step.value)
        gate = _daily_correlation(x, reference, long_window, settings.warmup) >= seasonal_gate
        seasonal_error = np.abs(x - reference)
        # differences at floating-point rounding level (a noiseless repeating day) are no change at all
        seasonal_error[seasonal_error <= ROUNDING * np.maximum.accumulate(np.abs(x))] = 0.0
        seasonal_tail, seasonal_z = _error_tail(seasonal_error, long_window, settings.warmup)
        seasonal_wins = gate & (seasonal_tail < tail)
        # the smaller of two tail probabilities, doubled (Bonferroni): two streams, one false-alarm rate
        tail = np.where(gate, np.minimum(1.0, 2.0 * np.minimum(tail, seasonal_tail)), tail)
    # hysteresis: fire where tail < alarm_tail if the last decided state before was "re-armed"
    state = np.where(tail < alarm_tail, 1.0, np.where(tail >= REARM_TAIL, -1.0, np.nan))
    previous = pd.Series(state).ffill().shift(1).fillna(-1.0).to_numpy()
    fire = (state == 1.0) & (previous == -1.0)
    refractory = settings.refractory.value
    fired = _first_after_refractory(fire, t, refractory)
    kept = fired
    if flag_onsets:  # each alarm flags the onset of its event, in the stream that raised it (step 5)
        first = 0 if flaggable_from_ns is None else int(np.searchsorted(t, flaggable_from_ns))
        kept = _onsets(fired & ~seasonal_wins, z, first) | _onsets(fired & seasonal_wins, seasonal_z, first)
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
    seasonal_gate: float | None = SEASONAL_GATE,
    flag_onsets: bool = True,
    flaggable_from: pd.Timestamp | None = None,
    settings: LikelihoodSettings | None = None,
    **overrides: int | pd.Timedelta,
) -> tuple[np.ndarray, np.ndarray]:
    """(score, alarm) for ``series`` (DatetimeIndex, any order): rows are processed in time order (stable)
    and the results returned in the series' order. ``flaggable_from``: the first time whose rows are not
    published yet (a streaming caller that has emitted every row before it; tz-aware): an alarm raised at or
    after it never flags an earlier row, so an event whose onset was already emitted still gets a flag,
    on its first unpublished row. ``settings``: :func:`likelihood_settings` of these timestamps when the
    caller has them already (they are estimated otherwise). ``overrides``: fields of
    :class:`LikelihoodSettings` to replace (for benchmarks; the defaults come from the timestamps)."""
    index = pd.DatetimeIndex(series.index)
    settings = settings or likelihood_settings(index)
    if overrides:
        unknown = set(overrides) - set(LikelihoodSettings.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}")
        settings = LikelihoodSettings(**{**settings.__dict__, **overrides})
    times = index.asi8
    order = np.argsort(times, kind="stable")
    score_sorted, alarm_sorted = likelihood_scores(
        series.to_numpy(dtype=float)[order],
        times[order],
        settings,
        alarm_tail,
        record_margin,
        seasonal_gate,
        flag_onsets,
        None if flaggable_from is None else pd.Timestamp(flaggable_from).value,
    )
    score, alarm = np.empty_like(score_sorted), np.empty_like(alarm_sorted)
    score[order], alarm[order] = score_sorted, alarm_sorted
    return score, alarm
