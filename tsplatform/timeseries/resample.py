"""Resampling one series onto a coarser or finer regular grid, and aligning several series onto one grid.

Grids are anchored on the Unix epoch (phase 0): a 10-minute grid has points at hh:00, hh:10, ... UTC, so
series resampled independently share their timestamps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from tsplatform.timeseries.dtypes import value_series
from tsplatform.timeseries.gaps import check_grid_size

ResampleHow = Literal["mean", "min", "max", "last", "interpolate", "ffill"]
DOWN_METHODS: tuple[str, ...] = ("mean", "min", "max", "last")
UP_METHODS: tuple[str, ...] = ("interpolate", "ffill")


def _check_series(series: pd.Series) -> None:
    if not isinstance(series.index, pd.DatetimeIndex) or series.index.tz is None:
        raise ValueError("series must have a tz-aware DatetimeIndex")
    if not series.index.is_monotonic_increasing:
        raise ValueError("series index must be sorted increasing (validate/deduplicate first)")


def _epoch_grid(start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta) -> pd.DatetimeIndex:
    """Epoch-anchored grid points inside [start, end] (both inclusive)."""
    first = start.ceil(step)
    last = end.floor(step)
    if last < first:
        return pd.DatetimeIndex([], tz=start.tz)
    check_grid_size((last - first) / step + 1, "the grid")
    return pd.date_range(first, last, freq=step)


def resample(
    series: pd.Series,
    rule: str | pd.Timedelta,
    how: ResampleHow = "mean",
    max_gap: pd.Timedelta | str | None = None,
) -> pd.Series:
    """Resample ``series`` to the regular, epoch-anchored grid of step ``rule``.

    Down-sampling (``how`` in mean/min/max/last): bins are left-closed ``[t, t + rule)`` and labelled by their
    left edge t; NaN values are ignored; a bin without any value is NaN (kept, so the grid stays regular);
    ``last`` is the last non-NaN value in the bin.
    Up-sampling (``how`` in interpolate/ffill): the grid covers ``[ceil(first), floor(last)]`` - no
    extrapolation beyond the first/last observation. ``interpolate`` is linear in time between the two
    observations bracketing a grid point; ``ffill`` takes the latest observation at or before the grid
    point. With ``max_gap`` a grid point whose bracketing observations are more than ``max_gap`` apart is
    NaN (a grid point that coincides with an observation always gets its value).
    Raises ValueError for an unknown ``how``, a non-positive ``rule``, or a grid of more than
    ``MAX_GRID_SAMPLES`` points (:mod:`tsplatform.timeseries.gaps`).
    """
    series = value_series(series)
    _check_series(series)
    step = pd.Timedelta(rule)
    if step <= pd.Timedelta(0):
        raise ValueError(f"rule must be a positive duration, got {rule!r}")
    if how in DOWN_METHODS:
        if len(series):
            check_grid_size((series.index[-1] - series.index[0]) / step + 1, "the resampled series")
        resampler = series.resample(step, label="left", closed="left", origin="epoch")
        return getattr(resampler, how)().rename(series.name)
    if how not in UP_METHODS:
        raise ValueError(f"unknown resample method {how!r}; expected one of {DOWN_METHODS + UP_METHODS}")
    observed = series.dropna()
    if observed.empty:
        return pd.Series([], index=pd.DatetimeIndex([], tz=series.index.tz), dtype=float, name=series.name)
    grid = _epoch_grid(observed.index[0], observed.index[-1], step)
    values = _onto_grid(observed, grid, how, None if max_gap is None else pd.Timedelta(max_gap))
    return pd.Series(values, index=grid, name=series.name)


def _onto_grid(
    observed: pd.Series, grid: pd.DatetimeIndex, how: str, max_gap: pd.Timedelta | None
) -> np.ndarray:
    """Values of a NaN-free, sorted series at ``grid`` (NaN outside its span and across gaps > max_gap)."""
    times = observed.index.as_unit("ns").asi8  # one unit for both (an index may be in s, ms, us or ns)
    target = grid.as_unit("ns").asi8
    values = observed.to_numpy(dtype=float)
    result = np.full(len(target), np.nan)
    if len(times) == 0 or len(target) == 0:
        return result
    right = np.searchsorted(times, target, side="left")  # first observation >= grid point
    exact = (right < len(times)) & (times[np.minimum(right, len(times) - 1)] == target)
    inside = (target >= times[0]) & (target <= times[-1])
    left = np.clip(right - 1, 0, len(times) - 1)
    right_c = np.clip(right, 0, len(times) - 1)
    if how == "interpolate":
        result[inside] = np.interp(target[inside], times, values)
    else:  # ffill: latest observation at or before the grid point
        last_at_or_before = np.where(exact, right_c, left)
        result[inside] = values[last_at_or_before[inside]]
    if max_gap is not None:
        bridged = (times[right_c] - times[left]) > max_gap.value
        result[inside & bridged & ~exact] = np.nan
    result[exact] = values[right_c[exact]]
    return result


def _median_step(series: pd.Series) -> pd.Timedelta:
    steps = np.diff(series.dropna().index.as_unit("ns").asi8)
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise ValueError(f"series {series.name!r} has fewer than two distinct timestamps: no period")
    return pd.Timedelta(int(np.median(steps)), unit="ns")


def align(
    series_by_name: Mapping[str, pd.Series],
    grid: pd.DatetimeIndex | pd.Timedelta | str | None = None,
    max_gap_factor: float = 2.0,
) -> pd.DataFrame:
    """Put several series, sampled at different periods and phases, onto one common grid (one column each).

    Grid: ``grid`` itself when a DatetimeIndex is given; otherwise an epoch-anchored (phase 0) grid with step
    ``grid`` (a duration) or, by default, the coarsest sampling period among the series (period of a series =
    median positive step between its timestamps), spanning from the earliest to the latest observation.
    Each series is linearly interpolated in time onto the grid; it is NaN outside its own [first, last]
    span (no extrapolation) and at grid points whose bracketing observations are more than
    ``max_gap_factor`` x its own period apart (no bridging of gaps). NaN values are treated as missing
    observations.
    Raises ValueError for an empty mapping, a series without a tz-aware sorted index, or one with < 2
    timestamps.
    """
    if not series_by_name:
        raise ValueError("align needs at least one series")
    series_by_name = {name: value_series(series) for name, series in series_by_name.items()}
    for series in series_by_name.values():
        _check_series(series)
    periods = {name: _median_step(series) for name, series in series_by_name.items()}
    if isinstance(grid, pd.DatetimeIndex):
        target = grid
    else:
        step = max(periods.values()) if grid is None else pd.Timedelta(grid)
        starts = [s.dropna().index[0] for s in series_by_name.values()]
        ends = [s.dropna().index[-1] for s in series_by_name.values()]
        target = _epoch_grid(min(starts).tz_convert("UTC"), max(ends).tz_convert("UTC"), step)
    columns = {
        name: _onto_grid(series.dropna(), target, "interpolate", periods[name] * max_gap_factor)
        for name, series in series_by_name.items()
    }
    return pd.DataFrame(columns, index=target)
