"""What each asset of the graph computes over a run's days, on pandas.

Each function takes plain pandas frames — everything the asset read for its series, lookback days
included — and returns the rows of its dataset for the requested ``days`` (columns of
:mod:`tsplatform.datasets` plus ``_day``, the ``YYYY-MM-DD`` day partition a row belongs to). They call the
pure core and nothing else. The per-series ones (periods, regularization, denoising, decomposition) take
the rows of ONE series (``correlate_position``: of one position); Spark's executors loop over the series
of a bucket (``tsplatform.spark_io.apply_per_series``). ``hourly_series`` and ``profile_series`` take one
series or many and are vectorised over series; the executors call them once per bucket
(``apply_per_bucket``). Tests run them on pandas as the reference.

Timestamps may come tz-aware or naive (naive = UTC). A series too short, too sparse or too irregular
for a step gets rows whose ``note`` says why (passed through unmodified where that is safe); nothing
here raises for thin data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsplatform.timeseries.anomalies import detect_anomalies
from tsplatform.timeseries.anomaly_likelihood import likelihood_settings
from tsplatform.timeseries.decompose import decompose, seasonal_periods
from tsplatform.timeseries.denoise import process, select_processing
from tsplatform.timeseries.gaps import regularize
from tsplatform.timeseries.impute import IMPUTATION_METHODS, NOT_NEEDED, _runs, impute, select_imputation
from tsplatform.timeseries.period import PeriodEstimate, estimate_period, to_epoch_ns
from tsplatform.timeseries.profile import VALUE_STATISTICS, correlations, value_statistics
from tsplatform.timeseries.resample import align
from tsplatform.timeseries.spikes import detect_spikes

DAY = pd.Timedelta(days=1)
SECOND_NS = 1_000_000_000
#: Below this confidence a period estimate is reported with a note ("irregular sampling").
LOW_CONFIDENCE = 0.5
#: A window grid longer than this is not built (a period far too short for the data: a bad estimate).
MAX_GRID_POINTS = 2_000_000
#: Reasons in validation_rejects that count as duplicates in series_profiles.
DUPLICATE_REASONS = ("exact_duplicate", "same_timestamp")
#: Imputation selections kept per series in the catalog (at least 7 days apart: 16 are 16 weeks or more).
IMPUTATION_HISTORY_KEPT = 16
#: STL's (inner, outer) robust iterations for ``decompositions``: 5 reweighting rounds instead of
#: statsmodels' 15, a third of the cost (the asset's main cost once 28 days are behind a day). Its input is
#: the denoised series; on known signals the fit was as close or closer, and bursts up to 1,000 noise
#: spreads left no ghost residual on other days, as with 15 (BENCHMARKS.md, session 17). One inner pass
#: per round is not enough: a burst's pull on the season is then not undone in 5 rounds.
DECOMPOSITION_ROBUST_ITERATIONS = (2, 5)
#: MSTL's passes over the seasons for ``decompositions`` (statsmodels' ``iterate``, default 2): 1 halves
#: the cost; on known signals (sines, office hours, a weekend drop; 10- and 60-minute steps) trend + seasons,
#: the trend and the weekly season were as close or closer with one pass, the daily season within 1-5 %
#: (BENCHMARKS.md, session 17).
DECOMPOSITION_MSTL_PASSES = 1
#: ``decompositions`` fits the weekly season on hourly means (``mstl``'s ``season_points``) where an hour
#: holds 3 or more samples: 40-45 % cheaper at 1-10 minute steps, and on known signals held out from the
#: choice (1-, 5- and 15-minute steps) trend + seasons, the weekly season and the spikes in the residual
#: were closer than at full resolution, the trend and the daily season the same; at 4 weeks a 10-minute
#: weekly cycle-subseries has 4 points, an hourly mean averages 6 of them (BENCHMARKS.md, session 18).
DECOMPOSITION_SEASON_POINTS: int | None = 168
ID_COLUMNS = ("series_id", "position", "type_name")


def utc(values: Any) -> pd.DatetimeIndex:
    """Timestamps as a UTC DatetimeIndex (naive values are taken as UTC), in their own unit.

    Values that already are datetimes (the columns the executors hand over) are converted directly:
    ``pd.to_datetime`` would first box up to 500 of them as Timestamps to decide whether to cache."""
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, pd.DatetimeTZDtype) or (dtype is not None and dtype.kind == "M"):
        index = pd.DatetimeIndex(values)
        return index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True))


def day_start(day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


def window(day: dt.date, days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of the ``days`` UTC days ending with ``day``."""
    return day_start(day) - (days - 1) * DAY, day_start(day) + DAY


def identity(*frames: pd.DataFrame) -> dict[str, Any]:
    """``series_id``, ``position``, ``type_name`` of the first non-empty frame."""
    for frame in frames:
        if len(frame):  # column by column: ``frame.iloc[-1]`` boxes the whole row into a Series first
            return {c: frame[c].iat[-1] for c in ID_COLUMNS if c in frame.columns}
    return {}


def values_by_time(frame: pd.DataFrame, column: str = "value") -> pd.Series:
    """``frame[column]`` indexed by UTC ``event_time``, sorted by time (stable)."""
    if not len(frame):
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    s = pd.Series(frame[column].to_numpy(dtype=float), index=utc(frame["event_time"]))
    return s if s.index.is_monotonic_increasing else s.sort_index(kind="stable")


def _rows(base: Mapping[str, Any], times: pd.DatetimeIndex, columns: Mapping[str, Any]) -> pd.DataFrame:
    """``event_time``, ``columns``, then ``base``'s scalars repeated on every row (one constructor call).
    Plain scalars (numbers, booleans, strings, None) are expanded here, with the dtype the constructor gives
    them (a little cheaper than its own broadcasting); others are left to it."""
    n = len(times)
    data: dict[str, Any] = {"event_time": times}
    for name, value in {**columns, **base}.items():
        data[name] = _repeated(value, n)
    return pd.DataFrame(data)


def _repeated(value: Any, n: int) -> Any:
    """``n`` copies of a plain scalar, typed as ``pd.DataFrame`` types a scalar column; anything else as it
    is (an array, or a scalar the constructor broadcasts itself)."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return np.full(n, value, dtype=value.dtype)
    if isinstance(value, bool):
        return np.full(n, value)
    if isinstance(value, int):
        return np.full(n, value, dtype=np.int64)
    if isinstance(value, float):
        return np.full(n, value, dtype=np.float64)
    if value is None or isinstance(value, str):
        out = np.empty(n, dtype=object)
        out[:] = value
        return out
    return value


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The parts one after another (a single part, a fresh :func:`_rows` frame, as it is)."""
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _seconds(value: pd.Timedelta) -> float:
    return value.value / SECOND_NS


def _estimate(row: Mapping[str, Any]) -> PeriodEstimate | None:
    """The PeriodEstimate of a ``period_estimates`` row (None when it has no period)."""
    period_s = row.get("period_s")
    if period_s is None or not np.isfinite(period_s) or period_s <= 0:
        return None
    period = pd.Timedelta(round(float(period_s) * SECOND_NS), unit="ns")
    phase = pd.Timedelta(round(float(row.get("phase_s") or 0.0) * SECOND_NS), unit="ns")
    return PeriodEstimate(
        period=period,
        confidence=float(row.get("confidence") or 0.0),
        jitter=pd.Timedelta(0),
        phase=phase,
        n_samples=int(row.get("n_samples") or 0),
        n_distinct=int(row.get("n_samples") or 0),
        resolution=pd.Timedelta(1, unit="ns"),
    )


def estimates_by_day(estimates: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``period_estimates`` rows of one series keyed by ``date``."""
    if not len(estimates):
        return {}
    # the rows as to_dict("records") gives them (Python scalars), without its per-value boxing
    columns = list(estimates.columns)
    rows = zip(*(estimates[c].tolist() for c in columns), strict=True)
    return {str(r["date"]): r for r in (dict(zip(columns, values, strict=True)) for values in rows)}


# --- period_estimates -------------------------------------------------------------------------
def estimate_periods(readings: pd.DataFrame, days: Sequence[dt.date], lookback_days: int) -> pd.DataFrame:
    """One ``period_estimates`` row per day with readings in its window of ``lookback_days`` days."""
    if not len(readings):
        return pd.DataFrame()
    base = identity(readings)
    times = utc(readings["event_time"])
    rows = []
    for day in days:
        lo, hi = window(day, lookback_days)
        inside = times[(times >= lo) & (times < hi)]
        if not len(inside):
            continue
        row: dict[str, Any] = {
            **base,
            "date": day.isoformat(),
            "_day": day.isoformat(),
            "n_samples": len(inside),
        }
        try:
            est = estimate_period(inside)
        except ValueError:
            distinct = inside.nunique()
            rows.append(
                {
                    **row,
                    "period_s": np.nan,
                    "confidence": np.nan,
                    "jitter_s": np.nan,
                    "phase_s": np.nan,
                    "note": f"too few samples for a period: {distinct} distinct timestamp(s), need 3",
                }
            )
            continue
        note = None
        if est.confidence < LOW_CONFIDENCE:
            note = f"irregular sampling: confidence {est.confidence:.2f}"
        rows.append(
            {
                **row,
                "period_s": _seconds(est.period),
                "confidence": est.confidence,
                "jitter_s": _seconds(est.jitter),
                "phase_s": _seconds(est.phase),
                "note": note,
            }
        )
    return pd.DataFrame(rows)


# --- regularized_readings ---------------------------------------------------------------------
def _long_gaps(grid: pd.Series, max_slots: int) -> np.ndarray:
    """Mask of the NaN slots in runs longer than ``max_slots``."""
    starts, ends = _runs(grid.isna().to_numpy())
    mask = np.zeros(len(grid), dtype=bool)
    for a, b in zip(starts, ends, strict=True):
        if b - a > max_slots:
            mask[a:b] = True
    return mask


def imputation_history(state: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """A series' imputation selections as ``(day, method)`` pairs (``YYYY-MM-DD``, ascending) from its
    catalog state: ``imputation_history``, else the single ``imputation_method`` / ``imputation_selected``
    pair that older catalogs hold. Malformed entries are ignored."""
    state = state or {}
    raw = state.get("imputation_history")
    if raw is None and state.get("imputation_method") and state.get("imputation_selected"):
        raw = [[state["imputation_selected"], state["imputation_method"]]]
    pairs = {
        (str(e[0]), str(e[1]))
        for e in raw or []
        if isinstance(e, list | tuple) and len(e) == 2 and str(e[1]) in IMPUTATION_METHODS
    }
    return sorted(pairs)


def latest_selection(state: Mapping[str, Any] | None, before: dt.date) -> tuple[str, str] | None:
    """The ``(day, method)`` of the series' latest selection made before the day ``before``, or None."""
    earlier = [e for e in imputation_history(state) if e[0] < before.isoformat()]
    return earlier[-1] if earlier else None


def latest_selections(
    states: Iterable[tuple[str, Mapping[str, Any]]], before: dt.date
) -> dict[str, dict[str, str]]:
    """``series_id -> {"imputation_selected", "imputation_method"}``: each series' latest selection made
    before the day ``before`` (series without one are left out), from ``(series_id, catalog state)`` pairs;
    one entry per series whatever the length of its history (the state a run starts from)."""
    out = {}
    for sid, state in states:
        if latest := latest_selection(state, before):
            out[sid] = {"imputation_selected": latest[0], "imputation_method": latest[1]}
    return out


def merge_imputation_history(
    old: Sequence[tuple[str, str]],
    used: Sequence[tuple[str, str]],
    days: Sequence[dt.date],
    keep: int = IMPUTATION_HISTORY_KEPT,
) -> list[tuple[str, str]]:
    """A series' history after a run over ``days``: the old selections before the run, the ``(day, method)``
    pairs the run's rows used (``imputation_selected``, ``imputation_method``) and the old ones after the
    run's last day (a backfill of old days leaves the selections of later days, whose rows it did not
    rewrite); the latest ``keep``."""
    first, last = min(days).isoformat(), max(days).isoformat()
    kept = {e for e in old if e[0] < first or e[0] > last} | {(str(d), str(m)) for d, m in used}
    return sorted(kept)[-keep:]


def history_document(sid: str, old: dict[str, Any] | None, used: Any, days: list[dt.date]) -> dict[str, Any]:
    """The catalog fields of series ``sid`` after a run over ``days`` whose rows used the ``[day, method]``
    pairs ``used``, its document holding ``old``: the merged ``imputation_history``
    (:func:`~tsplatform.timeseries.stages.merge_imputation_history`) and its latest entry as
    ``imputation_method`` / ``imputation_selected`` (``not_needed`` / null without any selection yet)."""
    history = merge_imputation_history(imputation_history(old), used, days)
    return {
        "_id": sid,
        "imputation_history": [list(e) for e in history],
        "imputation_method": history[-1][1] if history else NOT_NEEDED,
        "imputation_selected": history[-1][0] if history else None,
    }


def regularize_series(
    readings: pd.DataFrame,
    estimates: pd.DataFrame,
    days: Sequence[dt.date],
    state: Mapping[str, Any] | None,
    *,
    lookback_days: int,
    max_gap_s: float,
    reselect_days: int,
    seed: int = 0,
) -> pd.DataFrame:
    """Each day's slots of the series on its phase-aligned grid (``regularize`` with the day's estimate),
    missing slots imputed with the series' method; NaN runs longer than ``max_gap_s`` stay NaN.

    The grid and the imputation see the ``lookback_days`` window ending at the day (a gap across midnight
    is filled from both sides). The method comes from the series' selection history
    (``state["imputation_history"]``: ``[day, method]`` pairs, see :func:`imputation_history`): a day uses
    the latest selection while it is less than ``reselect_days`` old; a day with a slot to fill (outside
    gaps longer than ``max_gap_s``) and no such selection selects by ``select_imputation`` on its window's
    grid. A complete day selects nothing: it keeps the latest method, even a stale one, and a series that
    never had a slot to fill has none yet (``not_needed``); its first such day selects on the longer
    history by then. Selections made on or after the first of ``days`` are ignored: re-processing a day
    (late data) redoes the selections whose windows may include it, so the rows equal a run from scratch.
    Without a period estimate the day's readings pass through unmodified (method ``none``) with a note.
    """
    if not len(readings):
        return pd.DataFrame()
    base = identity(readings, estimates)
    series = values_by_time(readings)
    per_day = estimates_by_day(estimates)
    days = sorted(days)
    selected, method = (latest_selection(state, days[0]) if days else None) or (None, None)
    parts = []
    for day in days:
        key = day.isoformat()
        start, end = day_start(day), day_start(day) + DAY
        todays = series[(series.index >= start) & (series.index < end)]
        row = per_day.get(key, {})
        est = _estimate(row)
        day_base = {**base, "_day": key}

        def passthrough(
            note: str, *, day_base: dict[str, Any] = day_base, todays: pd.Series = todays
        ) -> None:
            if len(todays):
                cols = {
                    "value": todays.to_numpy(),
                    "is_imputed": False,
                    "imputation_method": "none",
                    "imputation_selected": None,
                    "note": note,
                }
                parts.append(_rows(day_base, todays.index, cols))

        if est is None:
            passthrough(row.get("note") or "no period estimate for the day: readings passed through")
            continue
        lo, hi = window(day, lookback_days)
        recent = series[(series.index >= lo) & (series.index < hi)]
        recent = recent[recent.notna()]
        if not len(recent):
            continue
        span = (recent.index.max() - recent.index.min()) / est.period
        if span > MAX_GRID_POINTS:
            passthrough(f"period {est.period} too short for the data's span: readings passed through")
            continue
        grid = regularize(recent, est)
        in_day = (grid.index >= start) & (grid.index < end)
        if not in_day.any():
            continue
        note = None
        missing = grid.isna().to_numpy()
        long_gap = _long_gaps(grid, int(max_gap_s * SECOND_NS // est.period.value))
        values = grid.to_numpy(dtype="float64", copy=True)
        if (missing & ~long_gap)[in_day].any():  # a slot of the day to fill: the method matters
            fresh = selected is not None and (day - dt.date.fromisoformat(selected)).days < reselect_days
            fitted = None  # the selection's Kalman fit of this very grid, reused by the fill
            if method is None or not fresh:
                try:
                    choice = select_imputation(grid, seed=seed)
                    method, fitted = choice.method, choice.kalman_params
                except ValueError as exc:
                    method, note = "linear", f"imputation not selected ({exc}): linear"
                selected = key
            try:
                filled = impute(grid, method, kalman_params=fitted)
            except ValueError as exc:
                filled, note = impute(grid, "linear"), f"{method} failed ({exc}): linear"
            values = filled.to_numpy(copy=True)
            values[long_gap] = np.nan
        if long_gap[in_day].any():
            longest = pd.Timedelta(seconds=max_gap_s)
            gap_note = f"{int(long_gap[in_day].sum())} slot(s) in gaps longer than {longest} left missing"
            note = gap_note if note is None else f"{note}; {gap_note}"
        cols = {
            "value": values[in_day],
            "is_imputed": missing[in_day] & ~np.isnan(values[in_day]),
            "imputation_method": NOT_NEEDED if method is None else method,
            "imputation_selected": selected,
            "note": note,
        }
        parts.append(_rows(day_base, grid.index[in_day], cols))
    return _concat(parts)


# --- denoised_readings ------------------------------------------------------------------------
def denoise_series(regularized: pd.DataFrame, days: Sequence[dt.date], history_days: int) -> pd.DataFrame:
    """Each day's rows flagged over the ``history_days`` ending at the day, processed by the method
    :func:`select_processing` picks on that window (``none`` included). ``is_anomaly``: an alarm of
    ``detect_anomalies(causal=True)`` (one per event) or a row of a spike (:func:`detect_spikes`: every
    gross glitch, also the second of a week, which the event detector leaves alone); ``is_spike``: the
    latter; ``anomaly_score``: the event detector's."""
    if not len(regularized):
        return pd.DataFrame()
    base = identity(regularized)
    series = values_by_time(regularized)
    series = series[~series.index.duplicated(keep="last")]
    parts = []
    for day in days:
        start, end = day_start(day), day_start(day) + DAY
        lo, _hi = window(day, history_days)
        recent = series[(series.index >= lo) & (series.index < end)]
        in_day = (recent.index >= start) & (recent.index < end)
        if not in_day.any():
            continue
        # the days before are written: an alarm of this day whose event began in the last rows of the
        # previous day flags this day's first rows instead of a row nobody will write
        settings = likelihood_settings(recent.index)  # both detectors' windows, from one period estimate
        alarms = detect_anomalies(recent, causal=True, flaggable_from=start, settings=settings)
        spikes = detect_spikes(recent, settings=settings)
        flagged = pd.Series(
            alarms["is_anomaly"].fillna(False).to_numpy(dtype=bool) | spikes, index=recent.index
        )
        method, _scores = select_processing(recent, flagged)
        processed = process(recent, flagged, method)
        cols = {
            "value": processed.to_numpy()[in_day],
            "value_raw": recent.to_numpy()[in_day],
            "anomaly_score": alarms["score"].to_numpy()[in_day],
            "is_anomaly": flagged.to_numpy()[in_day],
            "is_spike": spikes[in_day],
            "processing": method,
        }
        parts.append(_rows({**base, "_day": day.isoformat()}, recent.index[in_day], cols))
    return _concat(parts)


# --- decompositions ---------------------------------------------------------------------------
def _onto_grid(series: pd.Series, est: PeriodEstimate) -> pd.Series:
    """``series`` (NaN dropped) linearly interpolated in time onto the estimate's grid: every slot from the
    one nearest its first value to the one nearest its last (an end slot takes the end value). A point on
    the grid keeps its value exactly. Past days were regularized on their own day's grid, whose period and
    phase are estimated afresh each day and may differ from this day's by seconds: interpolation keeps
    them all, where keeping only the points on this day's grid kept only the days estimated alike."""
    kept = series.dropna()
    kept = kept[~kept.index.duplicated(keep="last")]
    if not len(kept):
        return kept
    t = to_epoch_ns(kept.index)  # the estimate's period and phase are in nanoseconds
    first, last = est.grid_index(t[[0, -1]])
    slots = np.arange(first, last + 1, dtype=np.int64) * est.period.value + est.phase.value
    # times relative to the first value: exact in float64 for spans under ~104 days of nanoseconds
    values = np.interp((slots - t[0]).astype(float), (t - t[0]).astype(float), kept.to_numpy(dtype=float))
    return pd.Series(values, index=pd.DatetimeIndex(slots, tz="UTC"))


def decompose_series(
    denoised: pd.DataFrame,
    estimates: pd.DataFrame,
    days: Sequence[dt.date],
    season_lengths: Sequence[int],
    *,
    lookback_days: int,
) -> pd.DataFrame:
    """Each day's grid points with STL/MSTL trend, ``seasonal_<p>`` and resid, fitted over the
    ``lookback_days`` of processed values ending at the day, interpolated linearly onto the day's grid for
    the fit (holes filled, earlier days' grids re-aligned: :func:`_onto_grid`); seasons
    from ``seasonal_periods`` of the day's period. Rows whose components could not be fitted say why; a
    slot without a value (a gap left open, a dropped anomaly) keeps the fitted trend and seasons, with a
    NaN residual and a note."""
    if not len(denoised):
        return pd.DataFrame()
    base = identity(denoised, estimates)
    series = values_by_time(denoised)
    last_value = series[~series.index.duplicated(keep="last")]  # a time given twice: its last value
    per_day = estimates_by_day(estimates)
    seasons = [f"seasonal_{p}" for p in sorted(set(season_lengths))]
    parts = []
    for day in days:
        start, end = day_start(day), day_start(day) + DAY
        times = series.index[(series.index >= start) & (series.index < end)]
        if not len(times):
            continue
        cols: dict[str, Any] = {c: np.nan for c in ("trend", *seasons, "resid")}
        row = per_day.get(day.isoformat(), {})
        est = _estimate(row)
        note = None
        if est is None:
            note = "no period estimate for the day"
        elif not (periods := seasonal_periods(est.period)):
            note = f"no daily or weekly season for a period of {est.period}"
        else:
            lo, _hi = window(day, lookback_days)
            filled = _onto_grid(series[(series.index >= lo) & (series.index < end)], est)
            try:
                fit = decompose(
                    filled,
                    periods,
                    robust_iterations=DECOMPOSITION_ROBUST_ITERATIONS,
                    iterations=DECOMPOSITION_MSTL_PASSES,
                    season_points=DECOMPOSITION_SEASON_POINTS,
                )
            except ValueError as exc:
                note = f"not decomposed: {exc}"
            else:
                fit = fit.rename(columns={"seasonal": f"seasonal_{fit.attrs['periods'][0]}"})
                fit = fit.reindex(times)
                cols = {c: fit[c].to_numpy() if c in fit else np.nan for c in cols}
                # a slot without a value (a gap left open, a dropped anomaly) has trend and seasons from
                # the fit over the interpolated window, but no residual: value - trend - seasons is undefined
                no_value = last_value.reindex(times).isna().to_numpy()
                cols["resid"] = np.where(no_value, np.nan, cols["resid"])
                notes = []
                if fit["trend"].isna().any():
                    notes.append(f"{int(fit['trend'].isna().sum())} point(s) outside the fitted span")
                if no_value.any():
                    notes.append(f"{int(no_value.sum())} point(s) without a value: no residual")
                note = "; ".join(notes) or None
        parts.append(_rows({**base, "_day": day.isoformat()}, times, {**cols, "note": note}))
    return _concat(parts)


# --- hourly_readings --------------------------------------------------------------------------
HOUR_NS = 3_600 * SECOND_NS


def _last_identity(frame: pd.DataFrame) -> pd.DataFrame:
    """``position`` and ``type_name`` of each series (its last row's, as :func:`identity`), by series_id."""
    columns = [c for c in ID_COLUMNS[1:] if c in frame.columns]
    return frame.drop_duplicates("series_id", keep="last").set_index("series_id")[columns]


def _with_identity(out: pd.DataFrame, ids: pd.DataFrame) -> pd.DataFrame:
    for column in ids.columns:
        out[column] = ids[column].reindex(out["series_id"].to_numpy()).to_numpy()
    return out


def hourly_series(denoised: pd.DataFrame, days: Sequence[dt.date]) -> pd.DataFrame:
    """Per series and hour of each day (``event_time`` = the hour's start, epoch-anchored): mean, min, max
    and count of the processed values, NaN ignored. Every hour from a series' first to its last row of the
    day gets a row (count 0 and NaN statistics where no value is present), as ``resample(s, "1h", how)``
    per series-day. One or many series at once: vectorised over series (one pandas groupby per day)."""
    if not len(denoised):
        return pd.DataFrame()
    times = utc(denoised["event_time"]).as_unit("ns").asi8
    sids = denoised["series_id"].to_numpy()
    values = denoised["value"].to_numpy(dtype=float)
    ids = _last_identity(denoised)
    parts = []
    for day in days:
        start = day_start(day).value
        in_day = (times >= start) & (times < start + DAY.value)
        if not in_day.any():
            continue
        rows = pd.DataFrame(
            {"series_id": sids[in_day], "hour": times[in_day] // HOUR_NS, "value": values[in_day]}
        )
        stats = rows.groupby(["series_id", "hour"], sort=True)["value"].agg(["mean", "min", "max", "count"])
        span = rows.groupby("series_id", sort=True)["hour"].agg(["min", "max"])
        n = (span["max"] - span["min"] + 1).to_numpy()
        offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        hours = np.repeat(span["min"].to_numpy(), n) + offsets
        full = pd.MultiIndex.from_arrays([np.repeat(span.index.to_numpy(), n), hours])
        stats = stats.reindex(full)
        out = pd.DataFrame(
            {
                "event_time": pd.to_datetime(hours * HOUR_NS, utc=True),
                "mean": stats["mean"].to_numpy(dtype=float),
                "min": stats["min"].to_numpy(dtype=float),
                "max": stats["max"].to_numpy(dtype=float),
                "count": stats["count"].fillna(0).to_numpy(dtype=np.int64),
                "series_id": full.get_level_values(0).to_numpy(),
                "_day": day.isoformat(),
            }
        )
        parts.append(_with_identity(out, ids))
    return _concat(parts)


# --- series_profiles --------------------------------------------------------------------------
PROFILE_SOURCES = ("validated", "rejects", "regularized", "denoised", "estimate")


def profile_series(sources: pd.DataFrame, days: Sequence[dt.date]) -> pd.DataFrame:
    """One ``series_profiles`` row per series and day with data, from the union of the series' day rows.
    One or many series at once: the counts are vectorised over series, the statistics one numpy call per
    series-day.

    ``sources``: columns ``source`` (validated | rejects | regularized | denoised | estimate), ``date``,
    ``event_time``, ``value`` and ``flag``: rejects' flag = a duplicate reason, regularized's = imputed,
    denoised's = anomalous; an estimate row carries ``period_s`` as ``value``. Statistics are the core
    ``profile`` of the validated values (in time order); ``expected`` = grid slots of the day,
    ``missing_rate`` = the share of them without an observed value, ``anomaly_rate`` = flagged / valued
    denoised rows. A day gets a row only when the series has validated or regularized rows that day.
    """
    if not len(sources):
        return pd.DataFrame()
    wanted = [d.isoformat() for d in days]
    ids = _last_identity(sources)
    today = sources[sources["date"].isin(wanted)]
    if not len(today):
        return pd.DataFrame()
    flag = today["flag"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    value = today["value"].to_numpy(dtype=float)
    frame = pd.DataFrame(
        {
            "series_id": today["series_id"].to_numpy(),
            "date": today["date"].to_numpy(),
            "source": today["source"].to_numpy(),
            "flag": flag,
            "valued": ~np.isnan(value),
            "observed": ~np.isnan(value) & ~flag,
            "one": 1,
        }
    )
    keys = ["series_id", "date", "source"]
    sums = ["one", "flag", "valued", "observed"]
    counts = frame.groupby(keys, sort=True)[sums].sum().unstack("source", fill_value=0)
    counts = counts.reindex(columns=pd.MultiIndex.from_product([sums, PROFILE_SOURCES]), fill_value=0)
    counts = counts[(counts[("one", "validated")] > 0) | (counts[("one", "regularized")] > 0)]

    def col(name: str, source: str) -> np.ndarray:
        return counts[(name, source)].to_numpy(dtype=np.int64)

    expected, present = col("one", "regularized"), col("one", "validated")
    imputed, observed_slots = col("flag", "regularized"), col("observed", "regularized")
    flagged, valued = col("flag", "denoised"), col("valued", "denoised")
    with np.errstate(divide="ignore", invalid="ignore"):
        missing_rate = np.where(expected > 0, np.clip(1 - observed_slots / expected, 0, 1), np.nan)
        anomaly_rate = np.where(valued > 0, flagged / np.maximum(valued, 1), np.nan)
    index = counts.index
    estimates = today[today["source"] == "estimate"]
    first_estimate = estimates.drop_duplicates(["series_id", "date"], keep="first").set_index(
        ["series_id", "date"]
    )["value"]
    period_s = first_estimate.reindex(index).to_numpy(dtype=float)
    period_s = np.where(np.isfinite(period_s), period_s, np.nan)
    statistics = _validated_statistics(today[today["source"] == "validated"], index)
    no_slots, no_period = "no grid slots (no regularized rows)", "no period estimate"
    notes = [
        "; ".join(n for n, bad in ((no_slots, e == 0), (no_period, np.isnan(p))) if bad) or None
        for e, p in zip(expected, period_s, strict=True)
    ]
    out = pd.DataFrame(
        {
            "series_id": index.get_level_values(0).to_numpy(),
            "date": index.get_level_values(1).to_numpy(),
            "period_s": period_s,
            "expected": expected,
            "present": present,
            "duplicates": col("flag", "rejects"),
            "imputed": imputed,
            "anomalous": flagged,
            "missing_rate": missing_rate,
            "anomaly_rate": anomaly_rate,
            **statistics,
            "note": notes,
        }
    )
    out["_day"] = out["date"]
    return _with_identity(out, ids)


def _validated_statistics(validated: pd.DataFrame, index: pd.MultiIndex) -> dict[str, np.ndarray]:
    """``value_statistics`` of each (series_id, date) of ``index`` over its validated values in time order
    (stable, as ``values_by_time``); NaN for a series-day without validated values."""
    out = {name: np.full(len(index), np.nan) for name in VALUE_STATISTICS}
    if not len(validated):
        return out
    sid = validated["series_id"].to_numpy()
    date = validated["date"].to_numpy()
    times = utc(validated["event_time"]).as_unit("ns").asi8
    order = np.lexsort((times, date, sid))  # stable: equal times keep their row order
    values = validated["value"].to_numpy(dtype=float)[order]
    keys = pd.MultiIndex.from_arrays([sid[order], date[order]])
    change = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1])]) if len(keys) > 1 else np.array([0])
    bounds = np.r_[change, len(keys)]
    position = index.get_indexer(keys[change])
    for i, at in enumerate(position):
        if at < 0:
            continue
        chunk = values[bounds[i] : bounds[i + 1]]
        for name, stat in value_statistics(chunk[~np.isnan(chunk)]).items():
            out[name][at] = stat
    return out


# --- correlations -----------------------------------------------------------------------------
def correlate_position(denoised: pd.DataFrame, days: Sequence[dt.date]) -> pd.DataFrame:
    """Per day, the series of one position aligned onto a common grid (``align``: the coarsest period)
    and their pairwise Pearson correlations with pair counts, one row per pair ``series_a < series_b``.
    Series with fewer than 2 values in the day are left out (a position needs 2 series)."""
    if not len(denoised):
        return pd.DataFrame()
    position = denoised["position"].iloc[0]
    times = utc(denoised["event_time"])
    parts = []
    for day in days:
        start, end = day_start(day), day_start(day) + DAY
        today = denoised[(times >= start) & (times < end)]
        members = {}
        for sid, rows in today.groupby("series_id", sort=True):
            s = values_by_time(rows).dropna()
            s = s[~s.index.duplicated(keep="last")]
            if s.index.nunique() >= 2:
                members[str(sid)] = s
        if len(members) < 2:
            continue
        corr, counts = correlations(align(members))
        names = sorted(members)
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
        parts.append(
            pd.DataFrame(
                {
                    "position": position,
                    "date": day.isoformat(),
                    "_day": day.isoformat(),
                    "series_a": [a for a, _ in pairs],
                    "series_b": [b for _, b in pairs],
                    "pearson": [float(corr.at[a, b]) for a, b in pairs],
                    "n": [int(counts.at[a, b]) for a, b in pairs],
                }
            )
        )
    return _concat(parts)
