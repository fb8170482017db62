import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import align, correlations, profile
from tsplatform_tests.timeseries.extracts import b4b_co2_room


def _series(values, freq: str = "10min") -> pd.Series:
    return pd.Series(values, index=pd.date_range("2024-03-01", periods=len(values), freq=freq, tz="UTC"))


def test_profile_statistics_on_known_values() -> None:
    series = _series(np.arange(101.0))
    stats = profile(series)
    assert stats["count"] == 101
    assert stats["missing_rate"] == 0.0
    assert stats["mean"] == 50.0 and stats["median"] == 50.0
    assert stats["min"] == 0.0 and stats["max"] == 100.0
    assert stats["q01"] == 1.0 and stats["q25"] == 25.0 and stats["q75"] == 75.0 and stats["q99"] == 99.0
    assert stats["std"] == pytest.approx(np.arange(101.0).std(ddof=1))
    assert stats["duplicate_rate"] == 0.0
    assert np.isnan(stats["anomaly_rate"])


def test_missing_rate_from_period_and_from_nan_count() -> None:
    series = _series(np.arange(10.0)).drop(index=_series(np.arange(10.0)).index[[3, 6]])  # 2 of 10 slots gone
    assert profile(series, period="10min")["missing_rate"] == pytest.approx(0.2)
    with_nan = _series([1.0, np.nan, 3.0, np.nan])
    assert profile(with_nan)["missing_rate"] == 0.5
    assert profile(with_nan)["count"] == 2


def test_duplicate_and_anomaly_rates() -> None:
    index = pd.DatetimeIndex(["2024-03-01 00:00", "2024-03-01 00:10", "2024-03-01 00:10", "2024-03-01 00:20"])
    series = pd.Series([1.0, 2.0, 2.0, 50.0], index=index.tz_localize("UTC"))
    flags = pd.DataFrame(
        {"score": [0, 0, 0, 0.9], "is_anomaly": [False, False, False, True]}, index=series.index
    )
    stats = profile(series, flags)
    assert stats["duplicate_rate"] == 0.25
    assert stats["anomaly_rate"] == 0.25


def test_empty_series_profile_is_nan_not_a_crash() -> None:
    stats = profile(pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC")))
    assert stats["count"] == 0
    assert np.isnan(stats["mean"]) and np.isnan(stats["missing_rate"]) and np.isnan(stats["q99"])


def test_correlations_pairwise_complete_with_counts() -> None:
    a = np.arange(10.0)
    frame = pd.DataFrame({"a": a, "b": 2 * a + 1, "c": -a})
    frame.loc[[0, 1], "b"] = np.nan
    frame.loc[[8], "c"] = np.nan
    corr, counts = correlations(frame)
    assert corr.loc["a", "b"] == pytest.approx(1.0)
    assert corr.loc["a", "c"] == pytest.approx(-1.0)
    assert counts.loc["a", "a"] == 10 and counts.loc["a", "b"] == 8 and counts.loc["b", "c"] == 7


def test_real_co2_sensors_of_one_room_correlate_after_alignment() -> None:
    """SCD41 (10 min, jittered) and BMS (1 h) CO2 in the same room, aligned onto the hourly grid."""
    scd41, bms = b4b_co2_room()
    aligned = align({"scd41": scd41, "bms": bms})
    assert (aligned.index.minute == 0).all()
    corr, counts = correlations(aligned)
    assert counts.loc["scd41", "bms"] > 100
    assert corr.loc["scd41", "bms"] > 0.8
