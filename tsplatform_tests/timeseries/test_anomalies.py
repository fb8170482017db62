import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import detect_anomalies
from tsplatform_tests.timeseries.extracts import NAB_EC2_CPU_WINDOW, nab_ec2_cpu

SPIKES = {400: 40.0, 1000: -45.0, 1700: 60.0}


def _seasonal(n: int = 144 * 14, seed: int = 3, noise: float = 0.5) -> pd.Series:
    """10-min series: level 400 + daily sine (amplitude 30) + Gaussian noise, spikes at SPIKES."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    values = 400.0 + 30.0 * np.sin(2 * np.pi * t / 144) + rng.normal(0.0, noise, n)
    for position, jump in SPIKES.items():
        values[position] += jump
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=n, freq="10min", tz="UTC"))


def test_iqr_rule_flags_exactly_the_values_outside_the_fences() -> None:
    values = np.arange(100.0)
    values[[10, 60]] = [-500.0, 900.0]
    series = pd.Series(values, index=pd.date_range("2024-01-01", periods=100, freq="h", tz="UTC"))
    result = detect_anomalies(series, "iqr", k=1.5)
    q1, q3 = np.quantile(values, [0.25, 0.75])
    iqr = q3 - q1
    assert list(np.flatnonzero(result["is_anomaly"])) == [10, 60]
    beyond_low = (q1 - 1.5 * iqr) - (-500.0)
    beyond_high = 900.0 - (q3 + 1.5 * iqr)
    expected = [beyond_low / (iqr + beyond_low), beyond_high / (iqr + beyond_high)]
    np.testing.assert_allclose(result["score"].iloc[[10, 60]], expected)
    assert (result["score"].drop(series.index[[10, 60]]) == 0).all()


def test_residual_analysis_finds_spikes_hidden_inside_the_seasonal_range() -> None:
    series = _seasonal()
    # the -45 spike at the top of the sine stays inside the series' range: the IQR rule cannot see it
    assert not detect_anomalies(series, "iqr")["is_anomaly"].iloc[1000]
    result = detect_anomalies(series, "residual", c=8.0)
    assert set(np.flatnonzero(result["is_anomaly"])) == set(SPIKES)
    assert result["score"].between(0, 1).all()


@pytest.mark.parametrize(
    ("method", "params"),
    [("iqr", {}), ("residual", {}), ("residual", {"smooth": 20, "surprise_window": 500, "periods": (144,)})],
)
def test_causal_scores_do_not_depend_on_future_values(method: str, params: dict) -> None:
    series = _seasonal()
    cut = 900
    changed = series.copy()
    changed.iloc[cut:] = np.random.default_rng(9).normal(1000.0, 300.0, len(series) - cut)
    before = detect_anomalies(series, method, causal=True, refractory=5, **params)
    after = detect_anomalies(changed, method, causal=True, refractory=5, **params)
    pd.testing.assert_frame_equal(before.iloc[:cut], after.iloc[:cut])
    assert not before.iloc[cut:].equals(after.iloc[cut:])  # the change is seen from the cut on


def test_causal_residual_with_refractory_flags_each_spike_once() -> None:
    series = _seasonal()
    result = detect_anomalies(series, "residual", causal=True, c=8.0, window=144, refractory=3)
    assert set(np.flatnonzero(result["is_anomaly"])) == set(SPIKES)


def test_refractory_keeps_only_the_first_flag_of_a_burst() -> None:
    series = _seasonal()
    series.iloc[700:705] += 80.0
    result = detect_anomalies(series, "residual", c=8.0, refractory=10)
    assert list(np.flatnonzero(result["is_anomaly"]))[1:3] == [700, 1000]
    assert (result["score"].iloc[701:711] == 0).all()


def test_nan_values_get_nan_score_and_no_flag() -> None:
    series = _seasonal()
    series.iloc[[50, 400]] = np.nan
    for method in ("iqr", "residual"):
        for causal in (False, True):
            result = detect_anomalies(series, method, causal=causal)
            assert result["score"].iloc[[50, 400]].isna().all()
            assert not result["is_anomaly"].iloc[[50, 400]].any()
            assert result["score"].drop(series.index[[50, 400]]).notna().all()


def test_bad_method_or_parameter_is_a_clear_error() -> None:
    series = _seasonal()
    with pytest.raises(ValueError, match="unknown anomaly method 'zscore'"):
        detect_anomalies(series, "zscore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bad parameter for method 'iqr'"):
        detect_anomalies(series, "iqr", c=3.0)


def test_real_nab_cpu_anomaly_is_the_top_causal_residual_score() -> None:
    """NAB ec2_cpu_utilization_825cc2: the five highest causal residual scores fall in the labelled window."""
    series = nab_ec2_cpu()
    result = detect_anomalies(series, "residual", causal=True)
    top = result["score"].nlargest(5).index
    start, end = NAB_EC2_CPU_WINDOW
    assert ((top >= start) & (top <= end)).all()


def test_two_stage_surprise_flags_a_burst_of_moderate_deviations() -> None:
    """20 consecutive values 4 sigma off: no single value passes a 6-sigma fence, their running mean does."""
    n = 2016
    noise = np.random.default_rng(3).normal(0.0, 1.0, n)
    series = pd.Series(400.0 + noise, index=pd.date_range("2024-01-01", periods=n, freq="10min", tz="UTC"))
    series.iloc[1200:1220] += 4.0
    single = detect_anomalies(series, "residual", causal=True, periods=(), c=6.0)
    assert not single["is_anomaly"].iloc[1200:1220].any()
    result = detect_anomalies(
        series, "residual", causal=True, periods=(), smooth=10, surprise_window=500, c=6.0, refractory=50
    )
    assert result["is_anomaly"].iloc[1200:1220].any()
    assert result["score"].iloc[1200:1220].max() == result["score"].iloc[300:].max()


#: the tuned causal NAB detector of bench/accuracy/nab.py (SURPRISE), with the weekly season of a 10-min grid
TUNED = {"window": 288, "scale_window": 3000, "n_cycles": 5, "smooth": 10, "surprise_window": 5000,
         "z_clip": 100.0, "c": 5.75, "refractory": 200, "periods": (1008,)}  # fmt: skip


def _long_seasonal(n: int = 1008 * 7, seed: int = 5) -> pd.Series:
    """7 weeks of a 10-min series: daily sine + noise, a level shift and a spike burst late in the series."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    values = 50.0 + 10.0 * np.sin(2 * np.pi * t / 144) + rng.normal(0.0, 1.0, n)
    values[5200:5260] += 25.0
    values[6200:] += 8.0
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=n, freq="10min", tz="UTC"))


@pytest.mark.parametrize("cut", [1500, 5230, 6300])
def test_tuned_causal_detector_at_row_t_ignores_rows_after_t(cut: int) -> None:
    """The score and flag at row t are the same when the rows after t are removed or replaced."""
    series = _long_seasonal()
    full = detect_anomalies(series, "residual", causal=True, **TUNED)
    truncated = detect_anomalies(series.iloc[: cut + 1], "residual", causal=True, **TUNED)
    changed = series.copy()
    changed.iloc[cut + 1 :] = np.random.default_rng(1).normal(-500.0, 100.0, len(series) - cut - 1)
    altered = detect_anomalies(changed, "residual", causal=True, **TUNED)
    pd.testing.assert_frame_equal(full.iloc[: cut + 1], truncated)
    pd.testing.assert_frame_equal(full.iloc[: cut + 1], altered.iloc[: cut + 1])
    assert not full.iloc[cut + 1 :].equals(altered.iloc[cut + 1 :])  # the replaced rows are seen
    assert full["is_anomaly"].iloc[5200:5260].any()  # and the burst is flagged in the unchanged series


def test_causal_scale_falls_back_to_mean_absolute_deviation_when_the_mad_is_zero() -> None:
    """A counter stuck at 0 with rare moves: the MAD is 0, so sigma = sqrt(pi/2) * mean |r - median|."""
    from tsplatform.timeseries.anomalies import causal_scale

    resid = np.zeros(400)
    resid[::10] = 3.0  # 10% of the rows move: median and MAD of any 100-row window are 0
    index = pd.date_range("2024-01-01", periods=400, freq="5min", tz="UTC")
    location, sigma = causal_scale(resid, index, window=100, min_periods=30)
    assert np.isnan(sigma[:60]).all()  # 30 rows for a location, 30 more for the spread
    np.testing.assert_allclose(location[30:], 0.0)  # the median of every window is 0
    expected = np.sqrt(np.pi / 2) * pd.Series(np.abs(resid)).shift(1).rolling(100).mean().to_numpy()
    np.testing.assert_allclose(sigma[130:], expected[130:])  # from the first full window of |r - location|
    assert (sigma[60:] > 0).all()
    constant_location, constant_sigma = causal_scale(np.ones(50), index[:50], window=20, min_periods=10)
    assert (constant_sigma[20:] == 0).all() and (constant_location[10:] == 1).all()


def test_two_stage_surprise_sees_a_burst_on_a_mostly_constant_series() -> None:
    """More than half of the values are 0 (MAD 0): the burst is found through the mean-absolute-deviation
    scale (before that fallback every z was 0 and such a series could never alarm)."""
    n = 3000
    rng = np.random.default_rng(4)
    values = np.where(rng.random(n) < 0.2, rng.normal(0.0, 1.0, n), 0.0)
    values[2400:2430] = rng.normal(0.0, 6.0, 30)
    series = pd.Series(values, index=pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC"))
    result = detect_anomalies(
        series, "residual", causal=True, periods=(), window=288, scale_window=1000, smooth=10,
        surprise_window=2000, c=5.75, refractory=200,
    )  # fmt: skip
    flagged = np.flatnonzero(result["is_anomaly"])
    assert flagged.size and 2400 <= flagged[flagged >= 300][0] < 2430
    assert result["score"].iloc[2400:2430].max() == result["score"].iloc[300:].max()


def test_past_median_equals_pandas_shifted_rolling_median() -> None:
    """The sorted-window fast path (small inputs) and the pandas path agree exactly, NaN and ties included."""
    from tsplatform.timeseries.anomalies import SMALL_ROLLING, past_median

    rng = np.random.default_rng(7)
    for _ in range(400):
        n, window, min_periods = int(rng.integers(0, 160)), int(rng.integers(1, 80)), int(rng.integers(0, 90))
        x = rng.normal(size=n).round(int(rng.integers(0, 3)))  # rounding makes ties
        if n and rng.random() < 0.5:
            x[rng.random(n) < rng.random()] = np.nan
        expected = pd.Series(x).shift(1).rolling(window, min_periods=min(min_periods, window)).median()
        assert n * window <= SMALL_ROLLING  # these sizes take the fast path
        np.testing.assert_array_equal(past_median(x, window, min_periods), expected.to_numpy())
    big = rng.normal(size=SMALL_ROLLING)  # the pandas path
    expected = pd.Series(big).shift(1).rolling(5, min_periods=3).median().to_numpy()
    np.testing.assert_array_equal(past_median(big, 5, 3), expected)
