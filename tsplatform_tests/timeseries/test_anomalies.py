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
    # batch unit: the IQR, or 1.349 * sqrt(pi/2) * mean |x - median| when larger (here: the two outliers
    # lift the mean absolute deviation to 38.5, so the unit is 65.1 rather than the IQR of 49.5)
    unit = max(q3 - q1, 1.3489795003921634 * np.sqrt(np.pi / 2) * np.mean(np.abs(values - np.median(values))))
    assert unit > q3 - q1
    assert list(np.flatnonzero(result["is_anomaly"])) == [10, 60]
    beyond_low = (q1 - 1.5 * unit) - (-500.0)
    beyond_high = 900.0 - (q3 + 1.5 * unit)
    expected = [beyond_low / (unit + beyond_low), beyond_high / (unit + beyond_high)]
    np.testing.assert_allclose(result["score"].iloc[[10, 60]], expected)
    assert (result["score"].drop(series.index[[10, 60]]) == 0).all()


@pytest.mark.parametrize("noise", ["student_t3", "lognormal", "sine"])
def test_batch_detectors_flag_a_few_spikes_and_few_ordinary_values(noise: str) -> None:
    """Heavy-tailed noise (Student t with 3 degrees of freedom, log-normal) and a noisy daily sine, three
    spikes: both batch detectors with their defaults flag the spikes and at most 2 % of the other values
    (with a MAD or IQR unit and the former defaults, up to 4 % and 13 % on the NAB files)."""
    n = 4032
    rng = np.random.default_rng(4)
    values = {
        "student_t3": rng.standard_t(3, n),
        "lognormal": rng.lognormal(0.0, 1.0, n),
        "sine": 10.0 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0.0, 1.0, n),
    }[noise]
    spikes = [1000, 2500, 3900]
    values[spikes] = [40.0, -35.0, 50.0] if noise != "lognormal" else [200.0, 300.0, 250.0]
    series = pd.Series(values, index=pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC"))
    ordinary = np.setdiff1d(np.arange(n), spikes)
    for method in ("iqr", "residual"):
        flags = detect_anomalies(series, method)["is_anomaly"].to_numpy()
        if not (method == "iqr" and noise == "sine"):  # the sine's spikes stay inside its range
            assert flags[spikes].all(), method
        assert flags[ordinary].mean() <= 0.02, method


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
    for method, causal in [
        ("iqr", False),
        ("iqr", True),
        ("residual", False),
        ("residual", True),
        (None, True),
    ]:
        if True:
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
    with pytest.raises(ValueError, match="bad parameter for method 'likelihood'"):
        detect_anomalies(series, causal=True, c=3.0)
    with pytest.raises(ValueError, match="causal"):
        detect_anomalies(series, "likelihood")


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


# --- the default causal detector: detect_anomalies(series, causal=True), the streaming anomaly likelihood ---


def _noisy(days: int = 14, freq: str = "5min", seed: int = 11, amplitude: float = 10.0) -> pd.Series:
    """A daily sine of ``amplitude`` plus unit Gaussian noise."""
    index = pd.date_range(
        "2024-01-01", periods=int(pd.Timedelta(days=days) / pd.Timedelta(freq)), freq=freq, tz="UTC"
    )
    phase = 2 * np.pi * ((index - index[0]) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    noise = np.random.default_rng(seed).normal(0.0, 1.0, len(index))
    return pd.Series(50.0 + amplitude * np.sin(np.asarray(phase, dtype=float)) + noise, index=index)


def test_default_causal_call_is_the_likelihood_detector_with_data_derived_settings() -> None:
    from tsplatform.timeseries.anomaly_likelihood import likelihood_settings

    series = _noisy()
    settings = likelihood_settings(series.index)
    assert settings.step == pd.Timedelta("5min")
    assert settings.long_window == 2016  # one week of 5-minute rows
    assert settings.warmup == 288  # one day of rows
    assert settings.refractory == pd.Timedelta(days=1)
    hourly = likelihood_settings(pd.date_range("2024-01-01", periods=500, freq="h", tz="UTC"))
    assert (hourly.long_window, hourly.warmup) == (1000, 100)  # the floors: 168 and 24 rows are too few
    default = detect_anomalies(series, causal=True)
    explicit = detect_anomalies(series, "likelihood", causal=True)
    pd.testing.assert_frame_equal(default, explicit)
    assert default["score"].between(0, 1).all()
    assert (default["score"].iloc[:288] == 0).all() and not default["is_anomaly"].iloc[:288].any()  # warm-up


def test_a_spike_in_a_noisy_sine_is_flagged_on_its_own_row() -> None:
    """+12 sigma at row 3000: z is capped at 8, its surprise u = -ln(2 Q(8)) = 35 lifts the 10-row mean by
    3.4, about 11 floor standard deviations: tail << 1e-5."""
    series = _noisy()
    series.iloc[3000] += 12.0
    result = detect_anomalies(series, causal=True)
    assert result["is_anomaly"].iloc[3000]
    assert result["score"].iloc[3000] > 1 - 1e-9
    assert not result["is_anomaly"].iloc[3001 : 3000 + 288].any()  # one alarm per event (1-day refractory)


def test_a_clean_sine_raises_no_alarm_and_a_noisy_one_rarely() -> None:
    """Noiseless daily sine: the random-walk error follows the derivative, at most pi/2 times its mean;
    nothing is surprising after the first day, which covers the whole range (no record either), and the
    seasonal stream (open: the day repeats exactly) sees only rounding. With unit noise on a 10-amplitude
    sine (the seasonal stream open too, daily correlation ~0.98), 8 seeds x 8 weeks: under 0.2 false alarms
    a day (measured 0.16), and the second stream adds at most 10 % to the single stream's alarms
    (Bonferroni: measured 70 against 66)."""
    index = pd.date_range("2024-01-01", periods=288 * 28, freq="5min", tz="UTC")
    clean = pd.Series(np.sin(2 * np.pi * np.arange(len(index)) / 288), index=index)
    assert not detect_anomalies(clean, causal=True)["is_anomaly"].any()
    with_stream = without = 0
    for seed in (11, *range(1, 8)):
        noisy = _noisy(days=56, seed=seed)
        with_stream += int(detect_anomalies(noisy, causal=True)["is_anomaly"].sum())
        without += int(detect_anomalies(noisy, causal=True, seasonal_gate=None)["is_anomaly"].sum())
    assert with_stream <= 0.2 * 8 * 56
    assert with_stream <= 1.1 * without


def _daily_wave(days: int = 14, seed: int = 5) -> pd.Series:
    """NAB-like daily square wave at 5 minutes: 20 at night, 80 from 06:00 to 15:00, small noise."""
    index = pd.date_range("2024-01-01", periods=288 * days, freq="5min", tz="UTC")
    hour = index.hour.to_numpy()
    level = np.where((hour >= 6) & (hour < 15), 80.0, 20.0)
    return pd.Series(level + np.random.default_rng(seed).normal(0.0, 1.0, len(index)), index=index)


@pytest.mark.parametrize("high_phase", [20.0, 50.0, 65.0])
def test_a_day_whose_daily_pattern_breaks_is_flagged_by_the_seasonal_stream(high_phase: float) -> None:
    """Day 10's high phase stays low (no jump), flat at the middle, or lower: no row-to-row move is unusual,
    only the time of day. The seasonal stream flags it within an hour of the phase's start; without it
    (``seasonal_gate=None``) nothing within half a day; the untouched wave raises no alarm."""
    clean = _daily_wave()
    assert not detect_anomalies(clean, causal=True)["is_anomaly"].any()
    broken = clean.copy()
    start = pd.Timestamp("2024-01-11 06:00", tz="UTC")
    phase = (broken.index >= start) & (broken.index < start + pd.Timedelta(hours=9))
    broken[phase] = broken[phase] - 80.0 + high_phase
    near = (broken.index >= start - pd.Timedelta(hours=12)) & (broken.index <= start + pd.Timedelta(hours=12))
    flags = detect_anomalies(broken, causal=True)["is_anomaly"].to_numpy()
    assert flags[near].any()
    assert broken.index[near][flags[near]][0] - start <= pd.Timedelta(hours=1)
    assert not detect_anomalies(broken, causal=True, seasonal_gate=None)["is_anomaly"].to_numpy()[near].any()


def test_the_seasonal_stream_stays_shut_on_a_series_without_a_repeating_day() -> None:
    """A random walk (its daily correlation peaks at 0.90 here): alarms are the same with and without the
    stream, and its jump is flagged."""
    index = pd.date_range("2024-01-01", periods=288 * 21, freq="5min", tz="UTC")
    walk = pd.Series(np.cumsum(np.random.default_rng(2).normal(0.0, 1.0, len(index))), index=index)
    walk.iloc[4000] += 40.0
    with_stream = detect_anomalies(walk, causal=True)
    pd.testing.assert_frame_equal(with_stream, detect_anomalies(walk, causal=True, seasonal_gate=None))
    assert with_stream["is_anomaly"].iloc[4000]


def test_a_level_shift_is_flagged_at_its_first_row() -> None:
    series = _noisy(amplitude=0.0)
    series.iloc[3000:] += 12.0  # a jump of 12 noise sigma between two rows (range records off)
    result = detect_anomalies(series, causal=True, record_margin=None)
    flagged = np.flatnonzero(result["is_anomaly"].to_numpy())
    assert 3000 in flagged
    assert not result["is_anomaly"].iloc[3001:3288].any()


def test_a_burst_of_moderate_deviations_is_flagged_though_no_single_value_is_extreme() -> None:
    """Rows 3000..3019 alternate +-3.5 around the level: each random-walk error is ~5 sigma of the noise
    (after the first), their 10-row mean of surprise far above its usual range."""
    series = _noisy(amplitude=0.0, seed=3)
    series.iloc[3000:3020] += np.where(np.arange(20) % 2 == 0, 3.5, -3.5)
    result = detect_anomalies(series, causal=True, record_margin=None)
    flagged = np.flatnonzero(result["is_anomaly"].to_numpy())
    assert any(3000 <= row < 3020 for row in flagged)


def test_an_all_constant_series_does_not_alarm_and_a_move_after_it_does() -> None:
    index = pd.date_range("2024-01-01", periods=2000, freq="5min", tz="UTC")
    constant = pd.Series(7.0, index=index)
    result = detect_anomalies(constant, causal=True)
    assert not result["is_anomaly"].any() and (result["score"] == 0).all()
    moved = constant.copy()
    moved.iloc[1500] = 7.5  # the first move of a constant sensor: infinitely surprising, and a range record
    assert list(np.flatnonzero(detect_anomalies(moved, causal=True)["is_anomaly"])) == [1500]


@pytest.mark.parametrize("length", [0, 1, 2, 3, 50, 287])
def test_series_shorter_than_the_warm_up_get_scores_but_no_alarm(length: int) -> None:
    series = _noisy().iloc[:length]
    if length:
        series.iloc[-1] += 100.0
    result = detect_anomalies(series, causal=True)
    assert len(result) == length
    assert not result["is_anomaly"].any()
    assert (result["score"] == 0).all()


def test_a_long_gap_is_not_taken_for_a_jump() -> None:
    """Three days missing from a 20-amplitude daily sine, the series resumes 6 hours of phase later: the
    first value after the gap is 20 sigma from the last one before it, but it is not a jump. The gap rule
    gives it no forecast, so no alarm; gluing the halves together (no gap in time) does alarm there."""
    series = _noisy(days=21, amplitude=20.0, seed=5)
    before, after = series.iloc[:3000], series.iloc[3000 + 864 + 72 :]
    gapped = pd.concat([before, after])
    result = detect_anomalies(gapped, causal=True)
    assert not result["is_anomaly"].iloc[3000:3010].any()
    glued = pd.Series(gapped.to_numpy(), index=series.index[: len(gapped)])
    assert detect_anomalies(glued, causal=True)["is_anomaly"].iloc[3000:3010].any()


@pytest.mark.parametrize("cut", [500, 3000, 3500])
def test_default_causal_detector_at_row_t_ignores_values_after_t(cut: int) -> None:
    """Scores at rows <= t use rows <= t; a flag is final SHORT_WINDOW - 1 rows after its row (an alarm at
    row t flags the onset of its event among its last SHORT_WINDOW rows)."""
    from tsplatform.timeseries.anomaly_likelihood import SHORT_WINDOW

    series = _noisy()
    series.iloc[3000] += 12.0
    full = detect_anomalies(series, causal=True)
    changed = series.copy()
    changed.iloc[cut + 1 :] = np.random.default_rng(1).normal(-500.0, 100.0, len(series) - cut - 1)
    altered = detect_anomalies(changed, causal=True)
    pd.testing.assert_series_equal(full["score"].iloc[: cut + 1], altered["score"].iloc[: cut + 1])
    final = cut + 1 - (SHORT_WINDOW - 1)
    pd.testing.assert_series_equal(full["is_anomaly"].iloc[:final], altered["is_anomaly"].iloc[:final])
    assert not full.iloc[cut + 1 :].equals(altered.iloc[cut + 1 :])


def _spiky_day_sine() -> tuple[pd.Series, list[int]]:
    """14 days at 10 min: 400 + daily sine (amplitude 50) + noise (sd 5), with five one-row spikes to 0 or
    1000 ppm (a CO2 sensor's drop-outs and glitches). The first two are range records; the later three
    are not, and the earlier ones in the week's history have widened the spread of m."""
    rng = np.random.default_rng(0)
    n = 144 * 14
    values = 400 + 50 * np.sin(2 * np.pi * np.arange(n) / 144) + rng.normal(0, 5, n)
    spikes = [144 * 3 + 17, 144 * 5 + 80, 144 * 8 + 3, 144 * 10 + 100, 144 * 12 + 50]
    for i, row in enumerate(spikes):
        values[row] = 0.0 if i % 2 == 0 else 1000.0
    index = pd.date_range("2024-01-01", periods=n, freq="10min", tz="UTC")
    return pd.Series(values, index=index), spikes


def test_a_spike_alarmed_with_its_recovery_flags_the_spike_not_the_ordinary_value_after_it() -> None:
    series, spikes = _spiky_day_sine()
    result = detect_anomalies(series, causal=True)
    assert np.flatnonzero(result["is_anomaly"].to_numpy()).tolist() == spikes
    late = spikes[2:]  # not records: m passes the alarm level only with the recovery's error
    score = result["score"].to_numpy()
    assert (score[late] < 1 - 2e-5).all() and (score[[r + 1 for r in late]] > 1 - 2e-5).all()
    # the alarm is raised at the recovery row: a prefix that ends at the spike has no flag there yet
    prefix = detect_anomalies(series.iloc[: late[0] + 1], causal=True)
    assert not prefix["is_anomaly"].iloc[-1]
    # the benchmarks' switch: the alarm's own row, as before the onset rule: the value after each late spike,
    # and after the second record too (its likelihood alarm came with the recovery, a second flag)
    own_row = detect_anomalies(series, causal=True, flag_onsets=False)
    expected = [spikes[0], spikes[1], spikes[1] + 1, *[r + 1 for r in late]]
    assert np.flatnonzero(own_row["is_anomaly"].to_numpy()).tolist() == expected
    pd.testing.assert_series_equal(own_row["score"], result["score"])


def test_an_alarm_never_flags_a_row_before_flaggable_from() -> None:
    """A streaming caller that has published the rows before a time: the spike there is published, so its
    alarm (raised with the recovery) flags the recovery, the first unpublished row, instead of no row at all
    in what is left to publish. Alarms raised before that time, and later ones, keep their onsets."""
    series, spikes = _spiky_day_sine()
    late = spikes[2]
    result = detect_anomalies(series, causal=True, flaggable_from=series.index[late + 1])
    expected = [*spikes[:2], late + 1, *spikes[3:]]
    assert np.flatnonzero(result["is_anomaly"].to_numpy()).tolist() == expected
    pd.testing.assert_series_equal(result["score"], detect_anomalies(series, causal=True)["score"])


def test_unsorted_rows_are_scored_in_time_order_and_returned_in_theirs() -> None:
    series = _noisy()
    series.iloc[3000] += 12.0
    shuffled = series.sample(frac=1.0, random_state=2)
    result = detect_anomalies(shuffled, causal=True)
    assert result.index.equals(shuffled.index)
    pd.testing.assert_frame_equal(
        result.sort_index(), detect_anomalies(series, causal=True), check_freq=False
    )


def test_real_nab_cpu_anomaly_raises_an_alarm_of_the_default_causal_detector() -> None:
    """NAB ec2_cpu_utilization_825cc2 (4 days, 5 min): an alarm inside the labelled window."""
    series = nab_ec2_cpu()
    result = detect_anomalies(series, causal=True)
    start, end = NAB_EC2_CPU_WINDOW
    alarms = series.index[result["is_anomaly"].to_numpy()]
    assert ((alarms >= start) & (alarms <= end)).any()


def test_a_range_record_is_not_silenced_by_an_earlier_likelihood_alarm_and_vice_versa() -> None:
    """Rows 3000..3019 alternate 48 / 52 around a level of 50 (unit noise): inside the range seen so far, an
    unpredictable burst (a likelihood alarm, no record). Row 3100 (8 h later) jumps to 60, a new extreme:
    alarmed although it is within the day after the burst's alarm (the two kinds have their own refractory
    periods). Row 3150 jumps to 65, a further record of the same day: silenced (one record alarm a day).
    Before (one refractory period for both kinds) row 3100 was silenced by the burst's alarm."""
    series = _noisy(amplitude=0.0, seed=3)
    series.iloc[3000:3020] = np.where(np.arange(20) % 2 == 0, 48.0, 52.0)
    series.iloc[3100] = 60.0
    series.iloc[3150] = 65.0
    alarms = detect_anomalies(series, causal=True)["is_anomaly"].to_numpy()
    flagged = [row for row in np.flatnonzero(alarms) if row >= 2900]  # (earlier: noise records, warm-up)
    assert len(flagged) == 2 and 3000 <= flagged[0] < 3020 and flagged[1] == 3100
