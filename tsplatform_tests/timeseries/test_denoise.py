import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import denoise, detect_anomalies


def _series(values) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=len(values), freq="10min", tz="UTC"))


def _flags(series: pd.Series, positions) -> pd.Series:
    flags = pd.Series(False, index=series.index)
    flags.iloc[list(positions)] = True
    return flags


def test_drop_removes_exactly_the_flagged_rows() -> None:
    series = _series([1.0, 2.0, 99.0, 3.0, -50.0])
    result = denoise(series, _flags(series, [2, 4]), "drop")
    pd.testing.assert_series_equal(result, series.iloc[[0, 1, 3]])


def test_clip_moves_flagged_values_onto_the_iqr_fences_of_the_unflagged() -> None:
    base = np.arange(1.0, 21.0)  # unflagged values 1..20
    series = _series(np.concatenate([base, [500.0, -500.0]]))
    result = denoise(series, _flags(series, [20, 21]), "clip")
    q1, q3 = np.quantile(base, [0.25, 0.75])
    assert result.iloc[20] == q3 + 1.5 * (q3 - q1)
    assert result.iloc[21] == q1 - 1.5 * (q3 - q1)
    pd.testing.assert_series_equal(result.iloc[:20], series.iloc[:20])


def test_clip_with_given_bounds_and_flagged_value_inside_bounds() -> None:
    series = _series([1.0, 50.0, 2.0, 3.0, -9.0])
    result = denoise(series, _flags(series, [1, 3, 4]), "clip", lower=0.0, upper=10.0)
    np.testing.assert_array_equal(result, [1.0, 10.0, 2.0, 3.0, 0.0])  # flagged 3.0 is inside: kept


def test_ema_replaces_flagged_values_with_the_ema_of_preceding_values() -> None:
    series = _series([10.0, 20.0, 1000.0, 30.0, np.nan, 2000.0])
    result = denoise(series, _flags(series, [2, 5]), "ema", alpha=0.5)
    # EMA over unflagged values: 10, 15, (skip), 22.5, (NaN skipped)
    np.testing.assert_array_equal(result.iloc[:4], [10.0, 20.0, 15.0, 30.0])
    assert np.isnan(result.iloc[4])
    assert result.iloc[5] == 22.5


def test_ema_whole_series_smoothing_excludes_flagged_values() -> None:
    series = _series([10.0, 20.0, 1000.0, 30.0])
    result = denoise(series, _flags(series, [2]), "ema", alpha=0.5, scope="all")
    np.testing.assert_array_equal(result, [10.0, 15.0, 15.0, 22.5])


def test_leading_flag_without_history_stays_nan_for_ema() -> None:
    series = _series([1000.0, 10.0, 20.0])
    result = denoise(series, _flags(series, [0]), "ema")
    assert np.isnan(result.iloc[0]) and result.iloc[1] == 10.0


def test_accepts_the_detect_anomalies_frame_as_flags() -> None:
    values = np.sin(np.arange(300) / 5.0)
    values[150] = 40.0
    series = _series(values)
    flags = detect_anomalies(series, "iqr")
    assert len(denoise(series, flags, "drop")) == 299
    assert denoise(series, flags, "clip").max() < 40.0


def test_errors() -> None:
    series = _series([1.0, 2.0, 3.0])
    flags = _flags(series, [1])
    with pytest.raises(ValueError, match="unknown denoise method 'median'"):
        denoise(series, flags, "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="indexed exactly like the series"):
        denoise(series, flags.iloc[:2], "drop")
    with pytest.raises(ValueError, match="alpha must be in"):
        denoise(series, flags, "ema", alpha=1.5)
    with pytest.raises(ValueError, match="unexpected parameter"):
        denoise(series, flags, "clip", bound=3.0)
