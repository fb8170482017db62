import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from tsplatform.timeseries import decompose, resample, seasonal_periods
from tsplatform.timeseries.decompose import ROBUST_ITERATIONS, mstl, season_block, smoother_jump
from tsplatform.timeseries.stages import (
    DECOMPOSITION_MSTL_PASSES,
    DECOMPOSITION_ROBUST_ITERATIONS,
    DECOMPOSITION_SEASON_POINTS,
)
from tsplatform_tests.timeseries.extracts import b4b_co2_room


@dataclass(frozen=True)
class _Estimate:
    period: pd.Timedelta


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (pd.Timedelta("10min"), (144, 1008)),
        (pd.Timedelta("1h"), (24, 168)),
        (pd.Timedelta("7min"), (1440,)),  # a day is not a whole number of 7-min steps, a week is
        (pd.Timedelta("1D"), (7,)),  # one sample per day: no daily season
        (pd.Timedelta("2D"), ()),
        (dt.timedelta(minutes=30), (48, 336)),
        (600.0, (144, 1008)),  # bare number = seconds
        (_Estimate(pd.Timedelta("5min")), (288, 2016)),
        (pd.Timedelta("599.9s"), (144, 1008)),  # within the 1e-3 relative tolerance
        (pd.Timedelta("600.3s"), (144, 1008)),  # the week is 7 days (1007.5 would round to 1007)
        (pd.Timedelta("599.7s"), (144, 1008)),  # (not 1009)
        (pd.Timedelta("590s"), (1025,)),  # no whole day, but a week within tolerance
        (None, ()),
    ],
)
def test_seasonal_periods(period, expected) -> None:
    assert seasonal_periods(period) == expected


def _hourly(n: int, seasons: dict[int, float], trend_slope: float = 0.01, noise: float = 0.05) -> pd.Series:
    t = np.arange(n)
    rng = np.random.default_rng(1)
    values = 10.0 + trend_slope * t + rng.normal(0.0, noise, n)
    for period, amplitude in seasons.items():
        values += amplitude * np.sin(2 * np.pi * t / period)
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))


def test_stl_recovers_one_daily_season() -> None:
    series = _hourly(24 * 20, {24: 3.0})
    parts = decompose(series, 24)
    assert list(parts.columns) == ["trend", "seasonal", "resid"]
    assert parts.attrs["periods"] == (24,)
    np.testing.assert_allclose(parts.sum(axis=1), series, atol=1e-9)
    true_season = 3.0 * np.sin(2 * np.pi * np.arange(len(series)) / 24)
    assert np.abs(parts["seasonal"] - true_season).max() < 0.3
    assert parts["resid"].std() < 0.1


def test_mstl_for_daily_and_weekly_seasons() -> None:
    series = _hourly(24 * 7 * 6, {24: 3.0, 168: 2.0})
    parts = decompose(series, (168, 24))
    assert list(parts.columns) == ["trend", "seasonal_24", "seasonal_168", "resid"]
    np.testing.assert_allclose(parts.sum(axis=1), series, atol=1e-9)
    t = np.arange(len(series))
    assert np.corrcoef(parts["seasonal_24"], np.sin(2 * np.pi * t / 24))[0, 1] > 0.95
    assert np.corrcoef(parts["seasonal_168"], np.sin(2 * np.pi * t / 168))[0, 1] > 0.9


def test_mstl_with_one_jump_for_every_season_is_statsmodels_mstl() -> None:
    from statsmodels.tsa.seasonal import MSTL

    values = _hourly(24 * 7 * 4, {24: 3.0, 168: 2.0}, noise=0.5).to_numpy()
    values[[50, 300, 500]] += 8.0  # spikes: the robust weights matter
    jump = smoother_jump(24)
    expected = MSTL(
        values,
        periods=(24, 168),
        windows=(13, 13),
        stl_kwargs={
            "robust": True,
            "trend_jump": jump,
            "low_pass_jump": jump,
            "inner_iter": 2,
            "outer_iter": 5,
        },
    ).fit()
    trend, seasonal, resid = mstl(
        values, (24, 168), 13, True, jump=lambda _period: jump, robust_iterations=(2, 5)
    )
    np.testing.assert_allclose(trend, expected.trend, rtol=0, atol=1e-9)
    np.testing.assert_allclose(seasonal.T, expected.seasonal, rtol=0, atol=1e-9)
    np.testing.assert_allclose(resid, expected.resid, rtol=0, atol=1e-9)


def test_mstl_with_each_seasons_own_jump_stays_close_to_the_exact_fit() -> None:
    """Each season's smoothers evaluated every period / 10 points (not the shortest season's jump, nor every
    point): the residual within 3 % (rms) of its own spread of the exact fit's, 4 weeks of hourly data."""
    values = _hourly(24 * 7 * 4, {24: 3.0, 168: 2.0}, noise=0.5).to_numpy()
    values[[50, 300, 500]] += 8.0
    exact = mstl(values, (24, 168), 13, True, jump=lambda _period: 1)
    trend, seasonal, resid = mstl(values, (24, 168), 13, True)
    spread = np.std(exact[2])
    assert np.sqrt(np.mean((resid - exact[2]) ** 2)) < 0.03 * spread
    assert np.sqrt(np.mean((trend - exact[0]) ** 2)) < 0.03 * spread
    np.testing.assert_allclose(trend + seasonal.sum(axis=0) + resid, values, atol=1e-9)


def test_the_decompositions_five_robustness_rounds_fit_a_known_signal_as_well_as_fifteen() -> None:
    """Heavy-tailed noise (Student t, 3 degrees of freedom), spikes and a burst on a known trend + daily +
    weekly signal: the stage's 5 reweighting rounds keep trend + seasons at least as close to the signal,
    and the spikes in the residual, as statsmodels' 15; the burst leaves no ghost at its time of day."""
    assert DECOMPOSITION_ROBUST_ITERATIONS == (2, 5) and ROBUST_ITERATIONS == (2, 15)
    rng = np.random.default_rng(2024)
    t = np.arange(24 * 28)
    signal = (
        np.cumsum(rng.normal(0, 0.06, t.size))
        + np.sin(2 * np.pi * t / 24)
        + 0.6 * np.cos(2 * np.pi * t / 168)
    )
    values = signal + 0.15 * rng.standard_t(3, t.size)
    spikes = rng.choice(np.arange(24, t.size - 24), 12, replace=False)
    values[spikes] += rng.choice([-1.0, 1.0], spikes.size) * 4.0
    values[300:303] += 150.0  # a 3-hour glitch of ~1,000 noise spreads
    fits = {
        rounds: mstl(values, (24, 168), 13, True, robust_iterations=rounds) for rounds in ((2, 15), (2, 5))
    }
    ordinary = np.ones(t.size, bool)
    ordinary[np.r_[spikes, 300:303]] = False
    error = {
        k: np.sqrt(np.mean((tr + se.sum(axis=0) - signal)[ordinary] ** 2)) for k, (tr, se, _) in fits.items()
    }
    assert error[(2, 5)] <= error[(2, 15)]
    # a spike's residual is what the spike added (beside the noise), within a median of a quarter of it
    missed = {
        k: np.median(np.abs(re[spikes] - (values - signal)[spikes])) for k, (_tr, _se, re) in fits.items()
    }
    assert missed[(2, 5)] <= max(missed[(2, 15)] * 1.1, 0.05) and missed[(2, 5)] < 1.0
    same_hours = ordinary & np.isin(t % 24, [300 % 24, 301 % 24, 302 % 24])
    assert np.abs(fits[(2, 5)][2][same_hours]).max() < 3.0


def test_one_mstl_pass_separates_a_weekend_drop_as_well_as_two() -> None:
    """The decompositions' single pass over the seasons (``DECOMPOSITION_MSTL_PASSES``) on 4 weeks of
    hourly office-like data: a square daily pattern and a weekend level drop, each component as close to
    the truth as statsmodels' 2 passes (within 5 %)."""
    assert DECOMPOSITION_MSTL_PASSES == 1
    rng = np.random.default_rng(77)
    t = np.arange(24 * 28)
    hour, weekday = t % 24, ((t // 24) % 7 < 5).astype(float)
    daily = ((hour > 8) & (hour < 18)).astype(float)
    daily -= daily[:24].mean()
    weekly = 2.0 * (weekday - 1)
    weekly -= weekly[:168].mean()
    trend = np.cumsum(rng.normal(0, 0.04, t.size))
    values = trend + daily + weekly + 0.1 * rng.standard_t(3, t.size)
    errors = {}
    for passes in (2, 1):
        fit_trend, seasonal, _ = mstl(
            values, (24, 168), 13, True, robust_iterations=DECOMPOSITION_ROBUST_ITERATIONS, iterations=passes
        )
        errors[passes] = [
            np.sqrt(np.mean((a - b) ** 2))
            for a, b in ((fit_trend, trend), (seasonal[0], daily), (seasonal[1], weekly))
        ]
    assert all(one <= 1.05 * two for one, two in zip(errors[1], errors[2], strict=True)), errors


def test_one_pass_per_robustness_round_leaves_a_bursts_ghost() -> None:
    """Why the decompositions keep 2 inner passes a round: with 1 x 5, a burst of 5 values 160 noise
    spreads high pulls that time of day's season on every other day (false residuals of ~10 spreads)."""
    t = np.arange(144 * 14)
    values = 400.0 + 30.0 * np.sin(2 * np.pi * t / 144) + np.random.default_rng(3).normal(0.0, 0.5, t.size)
    values[[400, 1000, 1700]] += [40.0, -45.0, 60.0]
    values[700:705] += 80.0
    ghost = {}
    for rounds in ((1, 5), DECOMPOSITION_ROBUST_ITERATIONS):
        resid = mstl(values, (144,), 13, True, robust_iterations=rounds)[2]
        same_time = (t % 144 >= 700 % 144) & (t % 144 < 705 % 144) & ((t < 700) | (t >= 705))
        same_time[[400, 1000, 1700]] = False
        ghost[rounds] = np.abs(resid[same_time]).max()
    assert ghost[(1, 5)] > 8.0 and ghost[DECOMPOSITION_ROBUST_ITERATIONS] < 2.5


def test_period_of_half_the_series_or_longer_is_dropped() -> None:
    series = _hourly(24 * 10, {24: 3.0})
    parts = decompose(series, (24, 168))  # 2 * 168 >= 240 samples: weekly dropped, STL on the daily
    assert parts.attrs["periods"] == (24,)
    assert "seasonal" in parts.columns
    with pytest.raises(ValueError, match="no usable seasonal period"):
        decompose(series, (120, 500))


def test_nan_must_be_imputed_first() -> None:
    series = _hourly(24 * 10, {24: 3.0})
    series.iloc[5] = np.nan
    with pytest.raises(ValueError, match="impute before decompose"):
        decompose(series, 24)


def test_real_co2_week_has_a_daily_season() -> None:
    """SCD41 CO2 of one office room over a week: the daily season explains most of the variance."""
    scd41, _ = b4b_co2_room()
    regular = resample(scd41, "10min", "mean").interpolate(limit=6)
    assert not regular.isna().any()
    parts = decompose(regular, seasonal_periods(pd.Timedelta("10min")))
    assert parts.attrs["periods"] == (144,)  # one week only: the weekly season is dropped
    assert parts["resid"].var() < 0.5 * regular.var()
    assert parts["seasonal"].max() - parts["seasonal"].min() > 50.0  # ppm of daily swing


def test_package_exports_functions_that_share_their_module_name() -> None:
    """Importing a submodule must not shadow the same-named function export of the package."""
    import importlib

    import tsplatform.timeseries as timeseries

    for name in ("decompose", "denoise", "profile", "resample"):
        importlib.import_module(f"tsplatform.timeseries.{name}")
        exported = getattr(timeseries, name)
        assert callable(exported) and exported.__name__ == name


@pytest.mark.parametrize(
    ("period", "n_samples", "expected"),
    [
        (1008, 4032, 6),  # a week of 10-minute samples: hourly means of 6
        (10080, 40320, 60),  # of 1-minute samples
        (504, 2016, 3),  # of 20-minute samples
        (336, 1344, 1),  # of 30-minute samples: blocks of 2 are not worth it (MIN_SEASON_BLOCK)
        (168, 672, 1),  # hourly already
        (144, 4032, 1),  # a day of 10-minute samples: not a multiple of 168
        (1008, 2016, 1),  # two weeks: 336 hourly means are not more than two cycles of 168
    ],
)
def test_season_block(period: int, n_samples: int, expected: int) -> None:
    assert season_block(period, n_samples, 168) == expected
    assert season_block(period, n_samples, None) == 1


def test_the_weekly_season_on_hourly_means_is_as_close_to_a_known_signal() -> None:
    """The decompositions fit the weekly season of 10-minute data on hourly means
    (``DECOMPOSITION_SEASON_POINTS``): on 4 weeks with a weekend level drop, spikes and Student-t noise,
    trend + seasons and the weekly season are closer to the truth than at full resolution, the trend and the
    daily season within 5 %; the components still add up to the series, and a window that is not a whole
    number of hours (a remainder before the first block) is fitted too."""
    assert DECOMPOSITION_SEASON_POINTS == 168
    rng = np.random.default_rng(31)
    day = 144
    t = np.arange(28 * day + 4)  # 4 samples before the first whole hour block
    hour, weekday = (t % day) / 6, ((t // day) % 7 < 5).astype(float)
    daily = np.sin(2 * np.pi * hour / 24)
    weekly = 1.5 * (weekday - weekday.mean())
    trend = np.cumsum(rng.normal(0, 0.2 / np.sqrt(day), t.size))
    values = trend + daily + weekly + 0.1 * rng.standard_t(3, t.size)
    values[rng.choice(t.size, 10, replace=False)] += 3.0
    errors = {}
    for points in (None, 168):
        fit_trend, seasonal, resid = mstl(
            values,
            (day, 7 * day),
            13,
            True,
            robust_iterations=DECOMPOSITION_ROBUST_ITERATIONS,
            iterations=DECOMPOSITION_MSTL_PASSES,
            season_points=points,
        )
        np.testing.assert_allclose(fit_trend + seasonal.sum(axis=0) + resid, values, atol=1e-9)
        assert np.isfinite(fit_trend).all() and np.isfinite(seasonal).all()
        errors[points] = [
            np.sqrt(np.mean((a - b) ** 2))
            for a, b in (
                (fit_trend + seasonal.sum(axis=0), trend + daily + weekly),
                (seasonal[1], weekly),
                (fit_trend, trend),
                (seasonal[0], daily),
            )
        ]
    blocked, full = errors[168], errors[None]
    assert blocked[0] < full[0] and blocked[1] < full[1], errors
    assert blocked[2] <= 1.05 * full[2] and blocked[3] <= 1.05 * full[3], errors
