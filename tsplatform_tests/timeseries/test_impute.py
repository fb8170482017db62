"""impute (every method) and select_imputation (masked backtest) on synthetic series with known truth."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import (
    IMPUTATION_METHODS,
    ImputationChoice,
    estimate_period,
    impute,
    regularize,
    select_imputation,
)
from tsplatform.timeseries.impute import (
    ANALOG_MAX_CANDIDATES,
    ANALOG_NEIGHBOURS,
    BACKTEST_REPEATS,
    _kalman,
    _kalman_params,
    _stl_seasonal,
    choose_by_median_ratio,
    default_season_length,
    gap_lengths,
    mask_like_gaps,
)
from tsplatform_tests.timeseries.synthetic import seasonal_values

DATA = Path(__file__).resolve().parents[1] / "data"


def _grid(n: int, freq: str = "1h") -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC")


def _with_gaps(series: pd.Series, gaps: list[tuple[int, int]]) -> tuple[pd.Series, np.ndarray]:
    hidden = series.copy()
    mask = np.zeros(len(series), dtype=bool)
    for start, length in gaps:
        mask[start : start + length] = True
    hidden[mask] = np.nan
    return hidden, mask


@pytest.mark.parametrize("method", IMPUTATION_METHODS)
def test_every_method_fills_inside_keeps_edges_and_observed_values(method: str) -> None:
    truth = seasonal_values(_grid(24 * 6), seed=1)
    hidden, _ = _with_gaps(truth, [(20, 5), (70, 30), (120, 1)])
    hidden.iloc[:3] = np.nan  # leading and trailing NaN are outside the observed span
    hidden.iloc[-2:] = np.nan
    out = impute(hidden, method)
    assert out.index.equals(hidden.index)
    assert out.iloc[3:-2].notna().all()
    assert out.iloc[:3].isna().all() and out.iloc[-2:].isna().all()
    observed = hidden.notna()
    assert out[observed].equals(hidden[observed])


def test_linear_and_pchip_are_exact_on_a_straight_line() -> None:
    truth = pd.Series(np.linspace(0.0, 100.0, 101), index=_grid(101, "10min"))
    hidden, mask = _with_gaps(truth, [(10, 7), (50, 20)])
    for method in ("linear", "pchip"):
        np.testing.assert_allclose(impute(hidden, method)[mask], truth[mask], rtol=0, atol=1e-9)


def test_linear_is_time_aware_on_an_irregular_index() -> None:
    index = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 00:10", "2024-01-01 01:00"], tz="UTC")
    out = impute(pd.Series([0.0, np.nan, 60.0], index=index), "linear")
    assert out.iloc[1] == pytest.approx(10.0)


def test_locf_carries_the_last_observation() -> None:
    s = pd.Series([1.0, np.nan, np.nan, 4.0, np.nan, 6.0], index=_grid(6))
    assert impute(s, "locf").tolist() == [1.0, 1.0, 1.0, 4.0, 4.0, 6.0]


def test_moving_average_uses_the_centred_window_and_grows_it_for_long_gaps() -> None:
    values = np.arange(30, dtype=float)
    s = pd.Series(values, index=_grid(30))
    hidden, _ = _with_gaps(s, [(10, 1), (15, 12)])
    out = impute(hidden, "moving_average")
    # position 10: observed within ±4 are 6..9 and 11..14 -> mean 10
    assert out.iloc[10] == pytest.approx(10.0)
    # position 21 (middle of a 12-long gap): ±4 sees nothing, ±8 sees 13, 14 and 27, 28, 29
    assert out.iloc[21] == pytest.approx(np.mean([13, 14, 27, 28, 29]))


def test_pchip_does_not_overshoot_the_neighbours() -> None:
    s = pd.Series([0.0, 0.0, 0.0, np.nan, np.nan, 10.0, 10.0, 10.0], index=_grid(8))
    out = impute(s, "pchip")
    assert (out.between(0.0, 10.0)).all()


def test_seasonal_beats_linear_on_day_long_gaps() -> None:
    truth = seasonal_values(_grid(24 * 20), seed=2, amplitude=10.0, noise=0.3)
    hidden, mask = _with_gaps(truth, [(24 * 5 + 3, 24), (24 * 11 + 7, 30), (24 * 16, 24)])
    rmse = {
        m: float(np.sqrt(np.mean((impute(hidden, m)[mask] - truth[mask]) ** 2)))
        for m in ("linear", "seasonal")
    }
    assert rmse["seasonal"] < 0.2 * rmse["linear"]


def test_seasonal_uses_a_given_season_and_falls_back_without_one() -> None:
    truth = seasonal_values(_grid(24 * 10), seed=3, season="12h")
    hidden, mask = _with_gaps(truth, [(50, 12), (150, 12)])
    given = impute(hidden, "seasonal", season_length=12)
    derived = impute(hidden, "seasonal")  # derives 24 samples: a multiple of the 12 h season, still good
    linear = impute(hidden, "linear")
    err = {
        k: float(np.sqrt(np.mean((v[mask] - truth[mask]) ** 2)))
        for k, v in {"given": given, "derived": derived, "linear": linear}.items()
    }
    assert err["given"] < 0.3 * err["linear"] and err["derived"] < 0.5 * err["linear"]
    short = hidden.iloc[:40]  # under two days: no season, linear fallback
    assert default_season_length(short) is None
    assert impute(short, "seasonal").equals(impute(short, "linear"))


def test_seasonal_analogues_are_exact_on_a_noiseless_season_plus_linear_trend() -> None:
    truth = seasonal_values(_grid(24 * 20), seed=10, noise=0.0)  # 20 days, >= 10 analogues per gap
    hidden, mask = _with_gaps(truth, [(24 * 8 + 5, 30), (24 * 14, 24)])
    out = impute(hidden, "seasonal")
    stl = _stl_seasonal(hidden)
    assert np.abs(out[mask] - truth[mask]).max() < 1e-9  # line + the analogues' exact deviation from theirs
    assert np.abs(stl[mask] - truth[mask]).max() > 1e-3  # the STL fill alone is not exact


def test_seasonal_analogues_follow_the_day_type_the_context_calls_for() -> None:
    # Two day profiles in a random order: a 12 h peak on "busy" days, flat on "quiet" days; a gap over the
    # peak hours of a busy day needs the busy profile, which the morning and evening context reveal.
    rng = np.random.default_rng(11)
    hours = np.arange(24)
    busy = np.where((hours >= 6) & (hours < 20), 10.0 + 5 * np.sin(np.pi * (hours - 6) / 14), 0.0)
    kinds = rng.integers(0, 2, 60)
    kinds[30] = 1
    values = np.concatenate([busy if k else np.zeros(24) for k in kinds]) + rng.normal(0, 0.2, 60 * 24)
    truth = pd.Series(values, index=_grid(60 * 24))
    hidden, mask = _with_gaps(truth, [(30 * 24 + 8, 10)])  # 08:00-18:00 of a busy day
    err = {
        name: float(np.sqrt(np.mean((fill[mask] - truth[mask]) ** 2)))
        for name, fill in {"seasonal": impute(hidden, "seasonal"), "stl": _stl_seasonal(hidden)}.items()
    }
    assert err["seasonal"] < 0.5 < 1.5 < err["stl"]  # noise 0.2; STL's profile mixes both day types


def test_seasonal_computes_stl_only_for_gaps_without_analogues(monkeypatch: pytest.MonkeyPatch) -> None:
    truth = seasonal_values(_grid(24 * 20), seed=10, noise=0.0)
    hidden, _ = _with_gaps(truth, [(24 * 8 + 5, 30), (24 * 14, 24)])  # both have >= 10 analogues
    expected = impute(hidden, "seasonal")

    def no_stl(*_args: object) -> None:
        raise AssertionError("STL computed although every gap has analogues")

    monkeypatch.setattr(sys.modules["tsplatform.timeseries.impute"], "_stl_seasonal", no_stl)
    assert impute(hidden, "seasonal").equals(expected)


def test_seasonal_falls_back_to_stl_with_too_few_analogues() -> None:
    days = ANALOG_NEIGHBOURS - 2  # fewer complete same-phase windows than analogues needed
    truth = seasonal_values(_grid(24 * days), seed=12)
    hidden, _ = _with_gaps(truth, [(24 * 3 + 2, 24)])
    assert impute(hidden, "seasonal").equals(_stl_seasonal(hidden))


def test_seasonal_analogues_come_from_the_nearest_windows_on_long_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first 40 days carry a +5 bump at 10:00-15:00 and a context exactly like the gapped day's; the later
    # days carry the gapped day's -5 bump but a small 04:00-07:00 wiggle in their context. Searching the
    # whole series, the far days match best (a +5 fill, off by 10); with the cap, only the nearest
    # ANALOG_MAX_CANDIDATES windows compete, all later days: the -5 profile, exactly.
    days = ANALOG_MAX_CANDIDATES + 55
    gap_day = days - 5
    hours = np.arange(24 * days)
    day, hour = hours // 24, hours % 24
    bump = np.where(day < 40, 5.0, -5.0) * ((hour >= 10) & (hour < 15))
    wiggle = 0.3 * ((day >= 40) & (day != gap_day) & (hour >= 4) & (hour < 7))
    truth = pd.Series(np.sin(2 * np.pi * hours / 24) + bump + wiggle, index=_grid(24 * days))
    hidden, mask = _with_gaps(truth, [(24 * gap_day + 9, 7)])
    assert np.abs(impute(hidden, "seasonal")[mask] - truth[mask]).max() < 1e-9
    monkeypatch.setattr(sys.modules["tsplatform.timeseries.impute"], "ANALOG_MAX_CANDIDATES", 10 * days)
    assert np.abs(impute(hidden, "seasonal")[mask] - truth[mask]).max() == pytest.approx(10.0)


def test_kalman_fills_with_the_smoothed_level() -> None:
    rng = np.random.default_rng(4)
    truth = pd.Series(np.cumsum(rng.normal(0, 1, 400)), index=_grid(400, "5min"))
    hidden, mask = _with_gaps(truth, [(100, 10), (250, 3)])
    out = impute(hidden, "kalman")
    assert out.notna().all()
    assert float(np.sqrt(np.mean((out[mask] - truth[mask]) ** 2))) < float(truth.std())


def test_unknown_method_and_non_numeric_series_are_clear_errors() -> None:
    s = pd.Series([1.0, np.nan, 3.0], index=_grid(3))
    with pytest.raises(ValueError, match="unknown imputation method 'cubic'"):
        impute(s, "cubic")
    with pytest.raises(ValueError, match="numeric"):
        impute(pd.Series(["a", None, "c"], index=_grid(3)), "linear")
    with pytest.raises(ValueError, match="unknown"):
        select_imputation(s, methods=("linear", "spline"))


# --- select_imputation --------------------------------------------------------------------------------


def test_masks_follow_the_series_own_gap_lengths() -> None:
    truth = seasonal_values(_grid(24 * 30), seed=5)
    hidden, _ = _with_gaps(truth, [(100, 7), (300, 7), (500, 2)])
    assert sorted(gap_lengths(hidden).tolist()) == [2, 7, 7]
    choice = select_imputation(hidden, methods=("linear", "locf"), seed=1)
    assert set(choice.gap_lengths) <= {2, 7}
    assert choice.n_masked >= 0.1 * hidden.notna().sum()
    mask = mask_like_gaps(hidden, seed=1)
    assert not (mask & hidden.isna().to_numpy()).any()  # never masks what is already missing


def test_default_gap_lengths_without_gaps() -> None:
    truth = seasonal_values(_grid(24 * 30), seed=6)
    choice = select_imputation(truth, methods=("linear",), seed=0)
    assert set(choice.gap_lengths) <= {1, 2, 3, 6, 12}


def test_selection_is_deterministic_and_picks_seasonal_for_season_long_gaps() -> None:
    truth = seasonal_values(_grid(24 * 40), seed=7, amplitude=10, noise=0.3)
    hidden, _ = _with_gaps(truth, [(24 * 8, 24), (24 * 20, 24), (24 * 30, 30)])
    first = select_imputation(hidden, seed=3)
    again = select_imputation(hidden, seed=3)
    assert isinstance(first, ImputationChoice)
    assert first == again
    assert set(first.scores) == set(IMPUTATION_METHODS)
    assert first.method == "seasonal"
    assert first.scores["seasonal"] == min(first.scores.values())


def test_selection_prefers_interpolation_on_a_smooth_series_with_short_gaps() -> None:
    index = _grid(600, "1min")
    truth = pd.Series(np.sin(np.arange(600) / 40.0) * 5, index=index)
    hidden, _ = _with_gaps(truth, [(100, 2), (200, 3), (400, 2)])
    choice = select_imputation(hidden, methods=("linear", "pchip", "locf", "moving_average"), seed=0)
    assert choice.method in {"linear", "pchip"}
    assert choice.scores["locf"] > choice.scores[choice.method]


def test_selection_on_a_long_series_backtests_its_most_recent_samples() -> None:
    rng = np.random.default_rng(21)
    n, recent = 3000, 1000
    values = np.cumsum(rng.normal(0, 1, n))
    values[: n - recent] = rng.normal(0, 50, n - recent)  # an older regime of pure noise
    hidden, _ = _with_gaps(pd.Series(values, index=_grid(n, "1min")), [(2200, 3), (2500, 2), (2700, 4)])
    methods = ("linear", "locf", "moving_average")
    bounded = select_imputation(hidden, methods=methods, seed=5, max_samples=recent)
    # the same backtest as on the tail alone (every gap is in the tail, so the gap-length pools agree)
    tail = select_imputation(hidden.iloc[-recent:], methods=methods, seed=5, max_samples=None)
    assert bounded == tail
    whole = select_imputation(hidden, methods=methods, seed=5, max_samples=None)
    assert whole.scores != bounded.scores  # the older regime weighs on the whole-series backtest
    with pytest.raises(ValueError, match="max_samples"):
        select_imputation(hidden, max_samples=0)


def test_selection_hands_its_kalman_fit_to_the_fill_with_the_same_result() -> None:
    rng = np.random.default_rng(4)
    values = np.cumsum(rng.normal(0, 0.3, 500)) + rng.normal(0, 1, 500)
    hidden, _ = _with_gaps(pd.Series(values, index=_grid(500, "10min")), [(100, 3), (300, 6)])
    choice = select_imputation(hidden, seed=0)
    assert choice.kalman_params is not None and len(choice.kalman_params) == 2
    reused = impute(hidden, "kalman", kalman_params=choice.kalman_params)
    pd.testing.assert_series_equal(reused, impute(hidden, "kalman"), check_exact=True)
    assert reused.iloc[100:103].notna().all()
    # nothing to hand over: kalman not a candidate, or a fit on the tail only (not the series filled)
    assert select_imputation(hidden, methods=("linear", "locf"), seed=0).kalman_params is None
    assert select_imputation(hidden, seed=0, max_samples=250).kalman_params is None


def test_selection_on_a_long_series_draws_gap_lengths_from_the_whole_series() -> None:
    truth = pd.Series(np.sin(np.arange(3000) / 30.0), index=_grid(3000, "1min"))
    hidden, _ = _with_gaps(truth, [(300, 7), (2500, 2)])  # the 7-sample gap is outside the last 1000
    bounded = select_imputation(hidden, methods=("linear", "locf"), seed=1, max_samples=1000)
    assert set(bounded.gap_lengths) == {2, 7}


def test_real_scd41_slice_regularized_and_imputed() -> None:
    df = pd.read_csv(DATA / "b4b_999169_scd41_2022-10-28_31.csv")
    index = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    series = pd.Series(df["co2__ppm"].to_numpy(), index=index)
    regular = regularize(series, estimate_period(series.index))
    assert regular.isna().sum() >= 4  # the 20-minute steps (plus readings without CO2)
    choice = select_imputation(regular, methods=("linear", "pchip", "locf", "moving_average"), seed=0)
    filled = impute(regular, choice.method)
    assert filled.notna().all()
    assert filled.between(regular.min(), regular.max()).all()


def test_median_ratio_prefers_the_method_that_wins_on_most_masks() -> None:
    # "steady" is 10% worse than "spiky" on 3 masks of 4, but "spiky" blows up on the 4th (one spike):
    # pooled RMSE would pick "steady", the median ratio picks "spiky" (the better fill on a typical mask).
    ones = np.ones(10)
    squared = {
        "steady": [1.21 * ones, 1.21 * ones, 1.21 * ones, 1.21 * ones],
        "spiky": [ones, ones, ones, 100 * ones],
    }
    choice, scores, ratios = choose_by_median_ratio(squared)
    assert scores["steady"] == pytest.approx(1.1)
    assert scores["spiky"] == pytest.approx(np.sqrt(103 / 4))
    assert ratios == pytest.approx({"steady": 1.1, "spiky": 1.0})
    assert choice == "spiky"


def test_median_ratio_ties_go_to_the_smaller_pooled_rmse_then_the_earlier_method() -> None:
    ones = np.ones(4)
    # per-mask RMSE a: (1, 2, 1), b: (1, 1, 4): both median ratio 1; pooled RMSE a: sqrt(2), b: sqrt(6)
    b_first = {"b": [ones, ones, 16 * ones], "a": [ones, 4 * ones, ones]}
    choice, scores, ratios = choose_by_median_ratio(b_first)
    assert ratios == pytest.approx({"a": 1.0, "b": 1.0})
    assert scores == pytest.approx({"a": np.sqrt(2), "b": np.sqrt(6)})
    assert choice == "a"
    exact = {"x": [np.zeros(3), np.zeros(3)], "y": [np.zeros(3), np.zeros(3)]}
    assert choose_by_median_ratio(exact)[0] == "x"  # exact fills everywhere (0/0): a tie, the first wins


def test_selection_reports_ratios_and_picks_their_minimum() -> None:
    truth = seasonal_values(_grid(24 * 30), seed=8)
    hidden, _ = _with_gaps(truth, [(100, 3), (300, 5), (500, 2)])
    choice = select_imputation(hidden, seed=2)
    assert set(choice.ratios) == set(IMPUTATION_METHODS)
    assert all(r >= 1.0 for r in choice.ratios.values())
    assert choice.ratios[choice.method] == min(choice.ratios.values())
    assert len(choice.gap_lengths) > 0 and choice.n_masked >= 0.1 * hidden.notna().sum() * BACKTEST_REPEATS


@pytest.mark.parametrize("noise", [0.0, 0.05, 0.5, 3.0, 30.0])
def test_the_local_level_fit_reaches_the_joint_maximum_likelihood(noise: float) -> None:
    """The one-number fit (level share, scale concentrated out) against statsmodels' own fit of both
    variances: as high a likelihood (never lower beyond the optimisers' tolerance), the same fills.
    noise 0 and 30 put the maximum at the ends: a random walk without noise, a constant level."""
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    rng = np.random.default_rng(int(noise * 10))
    n = 500
    steps = np.arange(n)
    values = 20 + 3 * np.sin(steps / 144 * 2 * np.pi) + np.cumsum(rng.normal(0, 0.1, n))
    values = values + rng.normal(0, noise, n)
    hidden, mask = _with_gaps(pd.Series(values, index=_grid(n, "10min")), [(100, 4), (300, 9)])
    ours = _kalman_params(hidden)
    assert ours.shape == (2,) and (ours >= 0).all() and ours.sum() > 0
    z = (hidden - hidden.mean()) / hidden.std(ddof=0)
    model = UnobservedComponents(z.to_numpy(), level="llevel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joint = model.fit(disp=False, maxiter=200, cov_type="none").params
    assert model.loglike(ours) >= model.loglike(joint) - 1e-6
    filled, reference = _kalman(hidden, ours), _kalman(hidden, joint)
    np.testing.assert_allclose(filled.to_numpy()[mask], reference.to_numpy()[mask], atol=1e-4 * values.std())


def test_a_random_walk_without_noise_is_filled_by_a_straight_line() -> None:
    """At the boundary of the fit (no noise variance) the smoothed level in a gap is the straight line
    between its neighbours, exactly as ``linear``: selection then ties and keeps the earlier method."""
    rng = np.random.default_rng(11)
    walk = pd.Series(np.cumsum(rng.normal(0, 1, 400)), index=_grid(400, "10min"))
    hidden, mask = _with_gaps(walk, [(50, 5), (200, 3)])
    params = _kalman_params(hidden)
    assert params[0] == 0.0 and params[1] > 0
    np.testing.assert_allclose(
        impute(hidden, "kalman", kalman_params=params)[mask], impute(hidden, "linear")[mask]
    )


def test_kalman_with_reused_variances_matches_a_fresh_fit() -> None:
    truth = seasonal_values(_grid(24 * 10), seed=9, noise=1.0)
    hidden, mask = _with_gaps(truth, [(50, 4), (150, 6)])
    fresh = impute(hidden, "kalman")
    reused = _kalman(hidden, _kalman_params(hidden))
    np.testing.assert_allclose(reused.to_numpy(), fresh.to_numpy())
    assert np.isfinite(reused.to_numpy()[mask]).all()


@pytest.mark.parametrize(
    "index",
    [
        _grid(30, "1h"),  # under 2 days: no season
        _grid(200, "7min"),  # a period that does not divide a day: no season
        _grid(300, "1h"),  # a daily season of 24
    ],
)
def test_backtest_masks_keep_the_series_season(index: pd.DatetimeIndex) -> None:
    """select_imputation derives the season once: every backtest mask has the whole series' season length
    (a mask never hides the ends of the observed span)."""
    values = np.sin(np.arange(len(index)) / 3.0)
    values[[5, 6, 7, len(index) // 2]] = np.nan
    series = pd.Series(values, index=index)
    expected = default_season_length(series)
    for seed in range(20):
        mask = mask_like_gaps(series, seed=seed)
        assert mask.any()
        assert default_season_length(series.mask(mask)) == expected


def test_selection_derives_the_season_once(monkeypatch: pytest.MonkeyPatch) -> None:
    impute_module = sys.modules["tsplatform.timeseries.impute"]
    calls = []
    real = impute_module.default_season_length
    monkeypatch.setattr(impute_module, "default_season_length", lambda y: calls.append(1) or real(y))
    hidden, _ = _with_gaps(seasonal_values(_grid(30), seed=1, noise=0.1), [(10, 2)])
    choice = select_imputation(hidden)
    assert len(calls) == 1
    assert choice.method in IMPUTATION_METHODS
