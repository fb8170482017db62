"""Seeded synthetic sensor timestamps and values with exact ground truth (tests and benchmarks).

``sampled_grid`` draws a regular grid ``start + phase + k·period`` and then degrades it: per-sample jitter
(uniform in ±``jitter``·period), random missing samples, a few long gaps, duplicated rows and an optional
clock roll-back; finally the stamps are rounded to ``round_to`` (whole seconds by default). The truth
(period, phase, which grid points were dropped) is returned alongside the degraded stamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EPOCH_2024_NS = pd.Timestamp("2024-01-01", tz="UTC").value


@dataclass(frozen=True)
class SampledGrid:
    timestamps: pd.DatetimeIndex  # file order (UTC), after every degradation
    period: pd.Timedelta
    phase: pd.Timedelta  # offset of the true grid from the Unix epoch modulo period
    missing: pd.DatetimeIndex  # grid points dropped strictly inside the observed span (before any step)
    grid_index: np.ndarray  # grid index k of every kept sample, file order


def sampled_grid(
    n: int,
    period: str | pd.Timedelta,
    *,
    seed: int = 0,
    phase: str | pd.Timedelta | None = None,
    jitter: float = 0.0,
    missing_rate: float = 0.0,
    long_gaps: int = 0,
    long_gap_periods: tuple[int, int] = (50, 500),
    duplicate_rate: float = 0.0,
    clock_step_back: str | pd.Timedelta | None = None,
    round_to: str | None = "1s",
    start_ns: int = EPOCH_2024_NS,
) -> SampledGrid:
    """Degraded regular timestamps with their ground truth (see the module doc).

    ``jitter`` is the amplitude as a fraction of the period (0.2 = every stamp moved by up to ±20%).
    ``clock_step_back``: at a random sample in the last half the clock jumps back by this duration (later
    stamps repeat or interleave earlier ones, as after a DST or NTP roll-back).
    """
    rng = np.random.default_rng(seed)
    p = pd.Timedelta(period).value
    ph = rng.integers(0, p) if phase is None else pd.Timedelta(phase).value % p
    if round_to is not None:
        ph = (ph // pd.Timedelta(round_to).value) * pd.Timedelta(round_to).value
    k0 = -(-start_ns // p)
    k = np.arange(k0, k0 + n, dtype=np.int64)
    keep = rng.random(n) >= missing_rate
    for _ in range(long_gaps):
        length = int(rng.integers(*long_gap_periods))
        at = int(rng.integers(1, max(2, n - length - 1)))
        keep[at : at + length] = False
    keep[0] = keep[-1] = True
    k = k[keep]
    true_ns = k * p + ph
    t = true_ns + np.rint(rng.uniform(-jitter, jitter, k.size) * p).astype(np.int64)
    all_k = np.arange(k[0], k[-1] + 1)
    missing_k = np.setdiff1d(all_k, k)
    if clock_step_back is not None:
        at = int(rng.integers(k.size // 2, k.size - 1))
        t[at:] -= pd.Timedelta(clock_step_back).value
    if round_to is not None:  # the logger rounds what its (possibly stepped) clock says
        unit = pd.Timedelta(round_to).value
        t = np.rint(t / unit).astype(np.int64) * unit
    if duplicate_rate > 0:
        dup = np.flatnonzero(rng.random(t.size) < duplicate_rate)
        pos = np.sort(np.concatenate([np.arange(t.size), dup]))
        t, k = t[pos], k[pos]
    idx = pd.DatetimeIndex(t.astype("datetime64[ns]")).tz_localize("UTC")
    missing = pd.DatetimeIndex((missing_k * p + ph).astype("datetime64[ns]")).tz_localize("UTC")
    return SampledGrid(idx, pd.Timedelta(p, unit="ns"), pd.Timedelta(int(ph), unit="ns"), missing, k)


def seasonal_values(
    index: pd.DatetimeIndex,
    *,
    seed: int = 0,
    season: str = "1D",
    amplitude: float = 10.0,
    trend_per_day: float = 0.5,
    noise: float = 0.5,
    level: float = 20.0,
) -> pd.Series:
    """Level + linear trend + sine of period ``season`` + Gaussian noise, on ``index`` (UTC)."""
    rng = np.random.default_rng(seed)
    seconds = (index - index[0]).total_seconds().to_numpy()
    phase = 2 * np.pi * seconds / pd.Timedelta(season).total_seconds()
    values = (
        level
        + trend_per_day * seconds / 86_400
        + amplitude * np.sin(phase)
        + rng.normal(0, noise, index.size)
    )
    return pd.Series(values, index=index, name="value")
