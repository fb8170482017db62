import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import fit_scaler, make_windows


def test_standard_scaler_uses_train_statistics_and_inverts() -> None:
    train = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])  # mean 5, population std 2
    scaler = fit_scaler(train, kind="standard")
    assert scaler.transform(train).mean() == pytest.approx(0.0)
    assert scaler.transform(train).std() == pytest.approx(1.0)
    test = np.array([5.0, 9.0, 1.0])
    np.testing.assert_allclose(scaler.transform(test), [0.0, 2.0, -2.0])
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(test)), test)


def test_minmax_scaler_maps_train_onto_unit_interval_per_feature() -> None:
    train = pd.DataFrame({"a": [0.0, 5.0, 10.0], "b": [100.0, 300.0, 200.0]})
    scaler = fit_scaler(train, kind="minmax")
    scaled = scaler.transform(train)
    assert isinstance(scaled, pd.DataFrame)
    np.testing.assert_allclose(scaled["a"], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(scaled["b"], [0.0, 1.0, 0.5])
    pd.testing.assert_frame_equal(scaler.inverse_transform(scaled), train)


def test_constant_series_has_no_division_by_zero() -> None:
    series = pd.Series([3.0] * 5, index=pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC"))
    for kind in ("standard", "minmax"):
        scaler = fit_scaler(series, kind=kind)
        scaled = scaler.transform(series)
        assert np.isfinite(scaled).all()
        assert (scaled == 0.0).all()
        pd.testing.assert_series_equal(scaler.inverse_transform(scaled), series)


def test_scaler_errors() -> None:
    with pytest.raises(ValueError, match="unknown scaler kind"):
        fit_scaler([1.0, 2.0], kind="robust")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no finite"):
        fit_scaler([np.nan, np.nan])


def test_make_windows_matches_a_plain_loop() -> None:
    values = np.arange(20.0) ** 2
    X, y = make_windows(values, input_len=4, horizon=3, stride=2)
    expected_starts = range(0, 20 - 7 + 1, 2)
    assert X.shape == (len(expected_starts), 4) and y.shape == (len(expected_starts), 3)
    for row, start in enumerate(expected_starts):
        np.testing.assert_array_equal(X[row], values[start : start + 4])
        np.testing.assert_array_equal(y[row], values[start + 4 : start + 7])
    X[0, 0] = -1.0  # a copy, not a view into the input
    assert values[0] == 0.0


def test_make_windows_multivariate_shapes() -> None:
    values = np.arange(30.0).reshape(10, 3)
    X, y = make_windows(values, input_len=3, horizon=2)
    assert X.shape == (6, 3, 3) and y.shape == (6, 2, 3)
    np.testing.assert_array_equal(X[2], values[2:5])
    np.testing.assert_array_equal(y[2], values[5:7])


def test_make_windows_too_short_or_bad_lengths() -> None:
    with pytest.raises(ValueError, match="too short"):
        make_windows(np.arange(5.0), input_len=4, horizon=2)
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        make_windows(np.arange(5.0), input_len=2, horizon=0)
