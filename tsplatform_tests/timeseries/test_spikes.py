"""detect_spikes: every gross one-to-three-row glitch, none of the ordinary rows, no level shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import detect_anomalies, detect_spikes
from tsplatform.timeseries.spikes import SPIKE_MAX_ROWS

DAYS = 10


def co2_week(days: int = DAYS, seed: int = 0) -> pd.Series:
    """10-minute CO2-like readings: 450 ppm at night, up to ~750 in office hours, 5 ppm noise."""
    times = pd.date_range("2024-03-01", periods=144 * days, freq="10min", tz="UTC")
    hour = times.hour + times.minute / 60
    office = np.clip(np.sin(np.pi * (hour - 8) / 10), 0, None)
    rng = np.random.default_rng(seed)
    return pd.Series(450 + 300 * office + rng.normal(0, 5, len(times)), index=times)


def test_every_drop_out_of_a_week_is_a_spike_where_the_event_detector_flags_at_most_a_few() -> None:
    series = co2_week()
    rows = [144 * d + offset for d, offset in ((2, 30), (3, 70), (3, 90), (4, 10), (5, 100), (6, 60), (8, 5))]
    series.iloc[rows] = 0.0
    spikes = detect_spikes(series)
    assert np.flatnonzero(spikes).tolist() == rows
    alarms = detect_anomalies(series, causal=True)["is_anomaly"].to_numpy()
    assert alarms[rows].sum() < len(rows)  # one alarm per event and a refractory day: the reason for spikes


@pytest.mark.parametrize("length", range(1, SPIKE_MAX_ROWS + 2))
def test_a_run_of_up_to_three_rows_away_and_back_is_a_spike_a_longer_one_is_not(length: int) -> None:
    series = co2_week()
    start = 144 * 5 + 20
    series.iloc[start : start + length] = 3000.0
    flagged = np.flatnonzero(detect_spikes(series)).tolist()
    assert flagged == (list(range(start, start + length)) if length <= SPIKE_MAX_ROWS else [])


def test_a_level_shift_a_slow_rise_and_ordinary_noise_are_not_spikes() -> None:
    rng = np.random.default_rng(1)
    times = pd.date_range("2024-03-01", periods=144 * DAYS, freq="10min", tz="UTC")
    noise = pd.Series(rng.normal(0, 1, len(times)), index=times)
    assert not detect_spikes(noise).any()
    shifted = noise.copy()
    shifted.iloc[144 * 6 :] += 50.0  # far beyond the band, and it stays there
    assert not detect_spikes(shifted).any()
    hovering = noise.copy()  # a new level right at the upper fence (~4.65 sigma): rows on both sides of it
    hovering.iloc[144 * 6 : 144 * 6 + 36] = 4.65 + rng.normal(0, 0.3, 36)
    assert not detect_spikes(hovering).any()  # no row left by a jump and came back by one
    rising = co2_week()
    rising.iloc[144 * 7 :] += np.linspace(0, 2000, len(rising) - 144 * 7)  # leaves the band step by step
    assert not detect_spikes(rising).any()


def test_a_spike_is_flagged_once_the_row_after_it_is_known_and_not_during_the_warm_up() -> None:
    series = co2_week()
    last = 144 * 6 + 50
    series.iloc[last] = 0.0
    assert not detect_spikes(series.iloc[: last + 1]).any()  # not back yet: maybe a level shift
    assert detect_spikes(series.iloc[: last + 2])[last]
    early = co2_week()
    early.iloc[40] = 0.0  # before a day of rows: no band yet
    assert not detect_spikes(early).any()


def test_rows_come_back_in_the_series_order_and_nan_rows_are_never_spikes() -> None:
    series = co2_week()
    series.iloc[144 * 5 + 7] = 0.0
    series.iloc[144 * 5 + 30] = np.nan
    shuffled = series.sample(frac=1.0, random_state=3)
    flags = pd.Series(detect_spikes(shuffled), index=shuffled.index)
    expected = pd.Series(detect_spikes(series), index=series.index)
    assert flags.sort_index().equals(expected)
    assert expected.sum() == 1 and expected.iloc[144 * 5 + 7]
    assert not expected.iloc[144 * 5 + 30]
    assert not detect_spikes(pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)).any()
