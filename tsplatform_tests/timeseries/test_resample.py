import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import align, resample


def _minutes(start: str, values, freq: str = "1min") -> pd.Series:
    return pd.Series(
        values, index=pd.date_range(start, periods=len(values), freq=freq, tz="UTC"), dtype=float
    )


def test_downsample_bins_are_left_closed_left_labelled_epoch_anchored() -> None:
    series = _minutes("2024-01-01 00:03", np.arange(20.0))  # 00:03 .. 00:22
    means = resample(series, "10min", "mean")
    assert list(means.index.strftime("%H:%M")) == ["00:00", "00:10", "00:20"]
    np.testing.assert_allclose(means, [np.mean(np.arange(0, 7)), np.mean(np.arange(7, 17)), 18.0])
    np.testing.assert_allclose(resample(series, "10min", "min"), [0.0, 7.0, 17.0])
    np.testing.assert_allclose(resample(series, "10min", "max"), [6.0, 16.0, 19.0])
    np.testing.assert_allclose(resample(series, "10min", "last"), [6.0, 16.0, 19.0])


def test_downsample_keeps_empty_bins_as_nan() -> None:
    series = _minutes("2024-01-01 00:00", [1.0, 2.0]).drop(index=[]).copy()
    series = pd.concat([series, _minutes("2024-01-01 00:35", [5.0])])
    means = resample(series, "10min", "mean")
    assert len(means) == 4 and means.isna().sum() == 2


def test_upsample_interpolates_in_time_without_extrapolating() -> None:
    series = _minutes("2024-01-01 00:07", [0.0, 20.0], freq="20min")  # 00:07 and 00:27
    up = resample(series, "5min", "interpolate")
    assert list(up.index.strftime("%H:%M")) == ["00:10", "00:15", "00:20", "00:25"]
    np.testing.assert_allclose(up, [3.0, 8.0, 13.0, 18.0])  # value = minutes since 00:07
    ffilled = resample(series, "5min", "ffill")
    np.testing.assert_allclose(ffilled, [0.0, 0.0, 0.0, 0.0])


def test_upsample_does_not_bridge_long_gaps() -> None:
    series = pd.concat(
        [_minutes("2024-01-01 00:00", [0.0, 10.0], freq="10min"), _minutes("2024-01-01 02:00", [5.0])]
    )
    up = resample(series, "5min", "interpolate", max_gap="30min")
    assert up["2024-01-01 00:05"] == 5.0
    assert up["2024-01-01 00:15":"2024-01-01 01:55"].isna().all()
    assert up["2024-01-01 02:00"] == 5.0


def test_unknown_method_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown resample method 'median'"):
        resample(_minutes("2024-01-01", [1.0, 2.0]), "5min", "median")  # type: ignore[arg-type]


def test_align_onto_coarsest_grid_with_phase_zero() -> None:
    # signal value = minutes since midnight, sampled at 10 min with phase 3 min and at 30 min with phase 0
    fast = _minutes("2024-01-01 00:03", np.arange(3.0, 3.0 + 10 * 30, 10), freq="10min")
    slow = _minutes("2024-01-01 00:00", np.arange(0.0, 300.0, 30), freq="30min")
    aligned = align({"fast": fast, "slow": slow})
    assert aligned.index.freq == pd.Timedelta("30min") or (np.diff(aligned.index.asi8) == 30 * 60e9).all()
    assert (aligned.index.minute % 30 == 0).all()
    minutes = (aligned.index - aligned.index[0]).total_seconds() / 60
    np.testing.assert_allclose(aligned["slow"], minutes)
    inside = aligned["fast"].notna()
    np.testing.assert_allclose(aligned.loc[inside, "fast"], minutes[inside.to_numpy()])
    assert np.isnan(aligned["fast"].iloc[0])  # 00:00 precedes the first fast sample (00:03): no extrapolation


def test_align_leaves_long_gaps_unbridged() -> None:
    a = _minutes("2024-01-01 00:00", np.arange(48.0), freq="10min").drop(
        index=pd.date_range("2024-01-01 02:10", "2024-01-01 05:00", freq="10min", tz="UTC")
    )
    b = _minutes("2024-01-01 00:00", np.arange(16.0), freq="30min")
    aligned = align({"a": a, "b": b})
    assert aligned.loc["2024-01-01 02:30":"2024-01-01 04:30", "a"].isna().all()
    assert aligned["b"].notna().all()
