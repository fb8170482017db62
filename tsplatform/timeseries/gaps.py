"""Missing-sample detection ("divide and round") and regularisation onto the phase-aligned grid.

Divide and round (ARCHITECTURE.md): for sorted distinct neighbours ``t_i < t_{i+1}`` and period ``P``,
``missing_i = round((t_{i+1} - t_i) / P) - 1`` (clipped at 0), and the missing samples are marked at
``t_i + k·P`` for ``k = 1..missing_i``. With a 10-minute period, 00:15:49 -> 00:45:49 gives
``round(30/10) - 1 = 2`` missing samples, at 00:25:49 and 00:35:49. Jitter up to ±P/2 on a difference
does not create or hide a missing sample; duplicates are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tsplatform.timeseries.dtypes import value_series
from tsplatform.timeseries.period import PeriodEstimate, _grid_index, sorted_distinct, to_epoch_ns

GAP_COLUMNS = ("start", "end", "n_missing", "prev_observed", "next_observed")
#: Most grid points (or missing samples) a call may produce: ~1.6 years at 1 s, 400 MB of float64.
#: A period far below the span's scale (e.g. 1 ns over months) is a ValueError instead of a MemoryError.
MAX_GRID_SAMPLES = 50_000_000


def check_grid_size(n: int | float, what: str) -> None:
    """Raise ValueError when ``what`` would hold more than ``MAX_GRID_SAMPLES`` samples."""
    if n > MAX_GRID_SAMPLES:
        raise ValueError(
            f"{what} would hold {n:.3g} samples, more than MAX_GRID_SAMPLES={MAX_GRID_SAMPLES:,}: "
            "the period is too small for the time span"
        )


@dataclass(frozen=True)
class GapReport:
    """Result of :func:`detect_gaps`.

    ``missing``: expected-but-missing times (UTC DatetimeIndex, ascending); ``n_missing``: its length;
    ``gaps``: one row per gap with ``start`` / ``end`` (first / last missing time), ``n_missing``, and the
    observed neighbours ``prev_observed`` / ``next_observed``; ``period``: the period used.
    """

    missing: pd.DatetimeIndex
    gaps: pd.DataFrame
    period: pd.Timedelta
    n_missing: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_missing", len(self.missing))


def _period_ns(period: pd.Timedelta | PeriodEstimate | str) -> int:
    value = period.period if isinstance(period, PeriodEstimate) else pd.Timedelta(period)
    if pd.isna(value) or value.value <= 0:
        raise ValueError(f"period must be a positive duration, got {period!r}")
    return int(value.value)


def _utc_index(t_ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(t_ns.astype("datetime64[ns]", copy=False)).tz_localize("UTC")


def _utc_array(t_ns: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return pd.array(t_ns.astype("datetime64[ns]")).tz_localize("UTC")


def _gap_frame(t_ns: np.ndarray, gap_at: np.ndarray, counts: np.ndarray, p: int) -> pd.DataFrame:
    # fresh arrays, so no copy (the same frame as from DatetimeIndex columns, ~30% cheaper)
    return pd.DataFrame(
        {
            "start": _utc_array(t_ns[gap_at] + p),
            "end": _utc_array(t_ns[gap_at] + counts * p),
            "n_missing": counts.astype(np.int64),
            "prev_observed": _utc_array(t_ns[gap_at]),
            "next_observed": _utc_array(t_ns[gap_at + 1]),
        },
        copy=False,
    )


_NO_INT = np.zeros(0, dtype=np.int64)
_NO_GAPS = _gap_frame(_NO_INT, _NO_INT, _NO_INT, 1)
"""The gap frame of a series without gaps (copied per call: building a 5-column frame costs ~0.25 ms)."""


def detect_gaps(timestamps: Any, period: pd.Timedelta | PeriodEstimate | str) -> GapReport:
    """Expected-but-missing sample times by divide and round (see the module doc).

    ``timestamps``: anything :func:`~tsplatform.timeseries.period.to_epoch_ns` accepts (any order,
    duplicates allowed, naive = UTC). ``period``: a Timedelta (or string) or a ``PeriodEstimate``.
    Fewer than 2 distinct timestamps give an empty report. Vectorised (``np.repeat``). Raises ValueError
    for a non-positive period or more than ``MAX_GRID_SAMPLES`` missing samples.
    """
    p = _period_ns(period)
    t = sorted_distinct(to_epoch_ns(timestamps))
    if t.size >= 2:
        check_grid_size((int(t[-1]) - int(t[0])) / p, "the gap report")
    d = np.diff(t)
    n_miss = np.maximum(np.rint(d / p).astype(np.int64) - 1, 0)
    gap_at = np.flatnonzero(n_miss)
    counts = n_miss[gap_at]
    starts = np.repeat(t[gap_at], counts)
    # k = 1..count inside each gap
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    missing_ns = starts + offsets * p
    gaps = _gap_frame(t, gap_at, counts, p) if gap_at.size else _NO_GAPS.copy()
    return GapReport(missing=_utc_index(missing_ns), gaps=gaps, period=pd.Timedelta(p, unit="ns"))


def regularize(series: pd.Series, estimate: PeriodEstimate | pd.Timedelta | str) -> pd.Series:
    """Place ``series`` on its phase-aligned regular grid, NaN where samples are missing.

    ``series``: values indexed by a DatetimeIndex (any order; naive = UTC). ``estimate``: a
    ``PeriodEstimate`` (its period and phase define the grid ``phase + k·period``) or a period alone (the
    grid is then anchored at the first sample). Every sample snaps to its nearest grid point; the grid runs
    from the first to the last occupied point. When several samples snap to one grid point the one nearest
    to it wins (ties: the first in input order); the number of samples so dropped is reported in
    ``result.attrs["collisions"]``. The result has a UTC DatetimeIndex with ``freq = period`` and also carries
    ``attrs["period"]`` and ``attrs["phase"]``. Raises ValueError for a non-datetime index, a non-positive
    period, or a grid of more than ``MAX_GRID_SAMPLES`` points.
    """
    series = value_series(series)
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ValueError("regularize needs a series indexed by a DatetimeIndex")
    p = _period_ns(estimate)
    valid = ~series.index.isna()
    if not valid.all():
        series = series[valid]
    t = to_epoch_ns(series.index)
    if t.size == 0:
        out = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype="float64", name=series.name)
        out.attrs.update(collisions=0, period=pd.Timedelta(p, unit="ns"), phase=pd.Timedelta(0))
        return out
    phase = int(estimate.phase.value) if isinstance(estimate, PeriodEstimate) else int(t.min() % p)
    k = _grid_index(t, p, phase)
    distance = np.abs(t - (k * p + phase))
    order = np.lexsort((np.arange(t.size), distance, k))  # by grid point, then distance, then input order
    first = np.ones(order.size, dtype=bool)
    first[1:] = k[order][1:] != k[order][:-1]
    winners = order[first]
    k0, k1 = int(k.min()), int(k.max())
    check_grid_size(k1 - k0 + 1, "the regular grid")
    values = np.full(k1 - k0 + 1, np.nan)
    values[k[winners] - k0] = series.to_numpy(dtype="float64")[winners]
    grid = pd.date_range(
        start=pd.Timestamp(k0 * p + phase, unit="ns", tz="UTC"),
        periods=values.size,
        freq=pd.Timedelta(p, unit="ns"),
    )
    out = pd.Series(values, index=grid, name=series.name)
    out.index.name = series.index.name
    out.attrs.update(
        collisions=int(t.size - winners.size),
        period=pd.Timedelta(p, unit="ns"),
        phase=pd.Timedelta(phase % p, unit="ns"),
    )
    return out
