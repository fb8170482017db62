"""estimate_period: exact ground truth from seeded synthetic grids, and small real extracts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import PeriodEstimate, estimate_period
from tsplatform_tests.timeseries.synthetic import EPOCH_2024_NS, sampled_grid

DATA = Path(__file__).resolve().parents[1] / "data"


def _from_steps(steps_s: np.ndarray) -> pd.DatetimeIndex:
    offsets = pd.to_timedelta(np.concatenate([[0], np.cumsum(steps_s)]), unit="s")
    return pd.Timestamp("2024-01-01", tz="UTC") + offsets


def _circular_error(a: pd.Timedelta, b: pd.Timedelta, period: pd.Timedelta) -> pd.Timedelta:
    diff = (a - b) % period
    return min(diff, period - diff)


@pytest.mark.parametrize("period", ["1s", "10s", "60s", "300s", "600s", "3600s", "17s", "450s"])
def test_exact_grid_recovers_period_phase_and_full_confidence(period: str) -> None:
    grid = sampled_grid(500, period, seed=1)
    est = estimate_period(grid.timestamps)
    assert isinstance(est, PeriodEstimate)
    assert est.period == grid.period
    assert est.phase == grid.phase
    assert est.confidence == 1.0
    assert est.jitter == pd.Timedelta(0)
    assert est.n_samples == est.n_distinct == 500


def test_cluster_example_530_610_660_is_one_600s_cluster() -> None:
    steps = np.tile([530, 610, 660], 100)
    t = _from_steps(steps)
    est = estimate_period(t)
    assert est.period == pd.Timedelta("600s")
    assert est.modes == (est.modes[0],)  # a single cluster
    assert abs(est.modes[0].total_seconds() - 600) <= 60


def test_separate_1200_and_1800_clusters_give_their_approximate_gcd() -> None:
    steps = np.tile([1200, 1800], 200)
    t = _from_steps(steps)
    est = estimate_period(t)
    assert sorted(m.total_seconds() for m in est.modes) == [1200, 1800]
    assert est.period == pd.Timedelta("600s")


@pytest.mark.parametrize(
    ("period", "kwargs"),
    [
        ("600s", {"jitter": 0.2}),
        ("600s", {"jitter": 0.1, "missing_rate": 0.5}),
        ("300s", {"jitter": 0.2, "missing_rate": 0.5, "duplicate_rate": 0.05}),
        ("60s", {"missing_rate": 0.6, "long_gaps": 3}),
        ("3600s", {"jitter": 0.05, "long_gaps": 2, "long_gap_periods": (100, 400)}),
        ("300s", {"jitter": 0.05, "clock_step_back": "1h"}),
        ("600s", {"jitter": 0.05, "missing_rate": 0.3, "clock_step_back": "7777s"}),
    ],
)
def test_exact_recovery_under_degradation(period: str, kwargs: dict) -> None:
    grid = sampled_grid(2000, period, seed=7, **kwargs)
    est = estimate_period(grid.timestamps)
    assert est.period == grid.period
    assert est.resolution == pd.Timedelta("1s")


@pytest.mark.parametrize("seed", [2, 7, 9, 11])
def test_non_integer_clock_roll_back_does_not_halve_the_period(seed: int) -> None:
    # a roll-back by 20.37 periods interleaves a second grid (steps of 167 s and 283 s between 450 s ones);
    # the approximate GCD alone gives 225 s here, the coarser-grid preference restores 450 s
    grid = sampled_grid(
        1500, "450s", seed=seed, missing_rate=0.5, duplicate_rate=0.05, clock_step_back="9166.5s"
    )
    assert estimate_period(grid.timestamps).period == pd.Timedelta("450s")


def test_a_few_shorter_steps_below_a_dense_step_do_not_collapse_the_period() -> None:
    # a week of a traffic sensor (NAB speed_7578, 670 rows): whole-minute stamps, 372 steps of 5 minutes,
    # many multiples, 7 steps of 1-4 minutes and a few off the grid. The 5-minute cluster's first centre
    # candidate used to be the lowest bin of its density plateau, whose exact window held only the 4-minute
    # steps: a 4-minute centre, then 1 minute for the period (confidence 1.0; regularization then imputed
    # 9 slots in 10).
    frame = pd.read_csv(DATA / "nab_speed_7578_2015-09-08_14.csv")
    est = estimate_period(pd.to_datetime(frame["timestamp"]))
    assert est.modes[0] == pd.Timedelta(minutes=5)
    assert est.period == pd.Timedelta(minutes=5)
    assert est.confidence > 0.95


def test_jittered_whole_second_data_rounds_to_the_second() -> None:
    grid = sampled_grid(3000, "600s", seed=3, jitter=0.1)
    est = estimate_period(grid.timestamps)
    assert est.period == pd.Timedelta("600s")
    assert est.phase.value % 1_000_000_000 == 0
    # stamps moved by up to ±60 s: the robust phase lands within a few seconds of the truth
    assert _circular_error(est.phase, grid.phase, grid.period) <= pd.Timedelta("5s")


def test_jitter_is_the_robust_spread_of_one_period_differences() -> None:
    amplitude = 0.2
    grid = sampled_grid(20_000, "600s", seed=5, jitter=amplitude)
    est = estimate_period(grid.timestamps)
    # differences of two independent U(-a, a)·P stamps are triangular on ±2aP: IQR/1.349 = 0.434·2aP
    expected = 0.434 * 2 * amplitude * 600
    assert est.jitter.total_seconds() == pytest.approx(expected, rel=0.1)
    assert est.confidence < 1.0


def test_phase_near_the_wrap_around_is_found_circularly() -> None:
    grid = sampled_grid(2000, "600s", seed=11, phase="2s", jitter=0.02)
    est = estimate_period(grid.timestamps)
    assert _circular_error(est.phase, pd.Timedelta("2s"), est.period) <= pd.Timedelta("2s")


def test_confidence_drops_with_off_grid_stamps() -> None:
    grid = sampled_grid(1000, "60s", seed=2)
    rng = np.random.default_rng(0)
    at = rng.choice(1000, 20, replace=False)  # 2% extra stamps 10..50 s after a grid stamp
    noise = pd.DatetimeIndex(grid.timestamps[at] + pd.to_timedelta(rng.integers(10, 50, 20), unit="s"))
    est = estimate_period(grid.timestamps.append(noise))
    assert est.period == pd.Timedelta("60s")
    assert 0.9 < est.confidence < 0.99


def test_input_types_agree() -> None:
    grid = sampled_grid(300, "300s", seed=4, missing_rate=0.2)
    reference = estimate_period(grid.timestamps)
    naive = grid.timestamps.tz_localize(None)
    variants = [
        pd.Series(grid.timestamps),
        pd.Series(grid.timestamps.tz_convert("Asia/Seoul")),
        naive.to_numpy(),
        naive.to_numpy().astype("datetime64[ms]"),
        list(naive),
        grid.timestamps[::-1],
    ]
    for v in variants:
        est = estimate_period(v)
        assert (est.period, est.phase) == (reference.period, reference.phase)


def test_strings_with_mixed_offsets_are_parsed_one_by_one() -> None:
    stamps = [
        "2024-01-01T01:00:00+01:00",
        "2024-01-01 00:10:00",
        "2024-01-01T00:20:00Z",
        "2024-01-01 00:40:00",
    ]
    est = estimate_period(stamps)
    assert est.period == pd.Timedelta("10min")
    assert est.confidence == 1.0


def test_fewer_than_three_distinct_timestamps_is_a_clear_error() -> None:
    t = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 00:10"] * 5, tz="UTC")
    with pytest.raises(ValueError, match="at least 3 distinct"):
        estimate_period(t)
    with pytest.raises(ValueError, match="not datetime-like"):
        estimate_period(["not a time", "x", "y"])


def test_sub_second_periods_keep_their_resolution() -> None:
    t = pd.DatetimeIndex(EPOCH_2024_NS + np.arange(1000) * 250_000_000).tz_localize("UTC")
    est = estimate_period(t)
    assert est.period == pd.Timedelta("250ms")


def test_grid_index_maps_samples_to_integer_steps() -> None:
    grid = sampled_grid(400, "600s", seed=9, missing_rate=0.3)
    est = estimate_period(grid.timestamps)
    k = est.grid_index(grid.timestamps)
    assert np.array_equal(np.diff(k), np.diff(grid.grid_index))


# --- real extracts (tsplatform_tests/data, see README.md there) ---------------------------------------


def test_nab_ec2_latency_slice_with_dst_duplicates() -> None:
    df = pd.read_csv(DATA / "nab_ec2_request_latency_2014-03-08_09.csv")
    ts = pd.to_datetime(df["timestamp"])
    est = estimate_period(ts)
    assert est.period == pd.Timedelta("5min")
    assert est.n_samples - est.n_distinct == 11  # 12 rows stamped 2014-03-09 03:00
    assert est.phase == pd.Timedelta("1min")  # stamps at hh:01, hh:06, ...
    assert est.confidence > 0.99


def test_b4b_scd41_slice_parsed_with_offsets() -> None:
    df = pd.read_csv(DATA / "b4b_999169_scd41_2022-10-28_31.csv")
    ts = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    est = estimate_period(ts)
    assert est.period == pd.Timedelta("10min")
    assert est.resolution == pd.Timedelta("1min")
    assert est.n_distinct == len(df)  # parsed with offsets: no DST duplicates


def test_uci_occupancy_slice_with_one_second_jitter() -> None:
    df = pd.read_csv(DATA / "uci_occupancy_datatest_first_day.csv")
    est = estimate_period(pd.to_datetime(df["date"]))
    assert est.period == pd.Timedelta("1min")
    assert est.confidence == 1.0


# --- fast paths: same results as the general code ------------------------------------------------------


def test_sorted_medians_equal_numpy_median() -> None:
    from tsplatform.timeseries.period import _sorted_median, _sorted_medians

    rng = np.random.default_rng(3)
    for _ in range(200):
        values = np.sort(rng.integers(1, 10**12, int(rng.integers(1, 60))))
        starts = rng.integers(0, values.size, 20)
        stops = np.minimum(starts + rng.integers(0, values.size + 1, 20), values.size)
        got = _sorted_medians(values, starts, stops)
        for a, b, m in zip(starts, stops, got, strict=True):
            if b > a:
                assert m == float(np.median(values[a:b])) == _sorted_median(values, int(a), int(b))
            else:
                assert np.isnan(m) and np.isnan(_sorted_median(values, int(a), int(b)))


def _units(ns: np.ndarray, nat: np.ndarray, unit: str) -> np.ndarray:
    scaled = ns // {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    scaled[nat] = np.iinfo(np.int64).min  # NaT
    return scaled.astype(f"datetime64[{unit}]")


@pytest.mark.parametrize(
    "make",
    [
        lambda ns, nat: pd.DatetimeIndex(_units(ns, nat, "ns")),
        lambda ns, nat: pd.DatetimeIndex(_units(ns, nat, "ns")).tz_localize("UTC").tz_convert("Asia/Seoul"),
        lambda ns, nat: pd.Series(pd.DatetimeIndex(_units(ns, nat, "ms")).tz_localize("UTC")),
        lambda ns, nat: pd.Series(_units(ns, nat, "us")),
        lambda ns, nat: _units(ns, nat, "s"),
        lambda ns, nat: _units(ns, nat, "ns"),
    ],
)
def test_epoch_ns_fast_path_equals_the_pandas_conversion(make, monkeypatch: pytest.MonkeyPatch) -> None:
    from tsplatform.timeseries import period as period_module

    rng = np.random.default_rng(5)
    ns = EPOCH_2024_NS + rng.integers(0, 10**15, 300)
    data = make(ns, rng.random(300) < 0.1)
    fast = period_module.to_epoch_ns(data)
    assert period_module._epoch_ns_fast(data) is not None
    monkeypatch.setattr(period_module, "_epoch_ns_fast", lambda _: None)
    slow = period_module.to_epoch_ns(data)
    assert fast.dtype == slow.dtype == np.int64 and 250 < fast.size < 300
    np.testing.assert_array_equal(fast, slow)


def test_epoch_ns_fast_path_declines_out_of_range_seconds() -> None:
    from tsplatform.timeseries.period import _epoch_ns_fast, to_epoch_ns

    far = np.array(["2500-01-01", "2500-01-02"], dtype="datetime64[s]")  # beyond the ns range
    assert _epoch_ns_fast(far) is None
    with pytest.raises(ValueError, match="Out of bounds"):
        to_epoch_ns(far)


def test_linear_quantiles_equal_numpy() -> None:
    from tsplatform.timeseries.period import linear_quantiles

    rng = np.random.default_rng(11)
    for i in range(3000):
        n = int(rng.integers(1, 200))
        x = [
            rng.integers(-(10**12), 10**12, n),
            rng.normal(0, 10.0 ** rng.integers(-5, 12), n),
            rng.integers(0, 5, n).astype(float) * 600e9,
        ][i % 3]
        for probs in [(0.25, 0.75), (0.75,), (0.5,), (0.0, 1.0), (0.1, 0.9)]:
            assert linear_quantiles(x, probs) == [float(q) for q in np.quantile(x, probs)]
        assert linear_quantiles(x, (0.25, 0.75)) == [float(q) for q in np.percentile(x, [25, 75])]
    with_nan = np.array([1.0, np.nan, 3.0])
    assert np.isnan(linear_quantiles(with_nan, (0.5,))[0])  # numpy's NaN rule (fallback)


@pytest.mark.parametrize("seed", range(6))
def test_regular_grid_shortcut_equals_the_general_estimate(seed: int) -> None:
    """Timestamps exactly on a grid skip the clustering (``_regular_grid_estimate``); on grids spanning
    under 100 days (whole, fractional and sub-second steps, any phase, shuffled, with duplicates) the
    result is the general path's, field for field."""
    from tsplatform.timeseries.period import (
        COVERAGE,
        DEFAULT_TOLERANCE,
        GCD_TOLERANCE,
        _general_estimate,
        _regular_grid_estimate,
        sorted_distinct,
        to_epoch_ns,
    )

    rng = np.random.default_rng(seed)
    for _ in range(60):
        step_ns = int(rng.choice([1_000_000, 250_000_000, 1_500_000_000, 10**9, 60 * 10**9, 600 * 10**9]))
        n = int(rng.integers(3, min(3000, 100 * 86_400 * 10**9 // step_ns)))
        start = EPOCH_2024_NS + int(rng.integers(0, 10**16))
        stamps = start + np.arange(n, dtype=np.int64) * step_ns
        stamps = np.concatenate([rng.permutation(stamps), stamps[: int(rng.integers(0, 3))]])
        index = pd.DatetimeIndex(stamps, tz="UTC")
        t = sorted_distinct(to_epoch_ns(index))
        general = _general_estimate(
            t, stamps.size, tol=DEFAULT_TOLERANCE, gcd_tol=GCD_TOLERANCE, coverage=COVERAGE
        )
        assert _regular_grid_estimate(t, stamps.size) == general
        assert estimate_period(index) == general
        assert general.period.value == step_ns and general.confidence == 1.0


def test_regular_grid_over_a_long_span_stays_exact() -> None:
    """401 daily stamps off whole seconds (400 days): the shortcut gives the exact period and phase."""
    start = EPOCH_2024_NS + 123_456_789
    est = estimate_period(pd.DatetimeIndex(start + np.arange(401) * 86_400 * 10**9, tz="UTC"))
    assert est.period == pd.Timedelta(days=1)
    assert est.phase.value == start % (86_400 * 10**9)
