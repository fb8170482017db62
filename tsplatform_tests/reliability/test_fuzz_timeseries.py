"""Fuzzing the time-series core's public functions (``tsplatform/timeseries/__init__.py``) with hypothesis.

Any input either gives a documented result or a clear ``ValueError``; never another exception, and never
a hang (each call runs under a time limit). Inputs: irregular, unsorted, duplicated, empty or one-point
timestamps; NaN/±inf/huge values; periods of zero, negative, sub-millisecond or decades.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tsplatform.timeseries as ts
from tsplatform_tests.reliability.budget import FULL, fuzz_examples, time_limit

pytestmark = pytest.mark.fuzz

FUZZ = settings(
    max_examples=fuzz_examples(15, 400),
    deadline=None,
    derandomize=not FULL,
    phases=list(Phase) if FULL else [Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
CALL_LIMIT_S = 60.0
calls = {"n": 0, "value_errors": 0}

values_st = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from(
    [0.0, 1e308, -1e308, 5e-324]
)
T0 = pd.Timestamp("2024-03-01", tz="UTC").value


@st.composite
def series_st(draw: st.DrawFn, max_size: int = 120) -> pd.Series:
    """A series on a DatetimeIndex: regular-ish with jitter, gaps, duplicates, disorder, or anything."""
    n = draw(st.integers(0, max_size))
    style = draw(st.sampled_from(["regular", "jitter", "random", "duplicates"]))
    step = draw(st.sampled_from([1, 10**6, 10**9, 60 * 10**9, 600 * 10**9, 86_400 * 10**9]))
    if style == "random":
        offsets = draw(st.lists(st.integers(0, 10**16), min_size=n, max_size=n))
    else:
        offsets = [i * step for i in range(n)]
        if style == "jitter" and n:
            jitter = draw(st.lists(st.integers(-step // 3, step // 3), min_size=n, max_size=n))
            offsets = [o + j for o, j in zip(offsets, jitter, strict=True)]
        if style == "duplicates" and n:
            offsets = [offsets[i // 2 * 2] for i in range(n)]
        drop = draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n // 3))
        offsets = [o for i, o in enumerate(offsets) if i not in drop]
    if draw(st.booleans()):
        offsets = offsets[::-1]
    values = draw(st.lists(values_st, min_size=len(offsets), max_size=len(offsets)))
    index = pd.DatetimeIndex(np.asarray(offsets, dtype=np.int64) + T0, tz="UTC")
    return pd.Series(values, index=index, dtype=float)


period_st = st.sampled_from(["1s", "10min", "1h", "1D", "0s", "-5min", "1ns", "3650D"]).map(pd.Timedelta)


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` under the time limit; a ``ValueError`` is a documented outcome (``None``)."""
    calls["n"] += 1
    try:
        with time_limit(CALL_LIMIT_S, f"{getattr(fn, '__name__', fn)}"):
            return fn(*args, **kwargs)
    except ValueError:
        calls["value_errors"] += 1
        return None


@FUZZ
@given(series=series_st(), period=period_st)
def test_period_gaps_regularize(series: pd.Series, period: pd.Timedelta) -> None:
    estimate = call(ts.estimate_period, series.index)
    if estimate is not None:
        assert isinstance(estimate, ts.PeriodEstimate)
    report = call(ts.detect_gaps, series.index, period)
    if report is not None:
        assert isinstance(report, ts.GapReport)
    regular = call(ts.regularize, series, estimate if estimate is not None else period)
    if regular is not None:
        assert isinstance(regular, pd.Series) and regular.index.is_monotonic_increasing
    call(ts.seasonal_periods, period)


@FUZZ
@given(
    series=series_st(60),
    method=st.sampled_from(ts.IMPUTATION_METHODS),
    season=st.sampled_from([None, 0, 1, 3]),
)
def test_impute(series: pd.Series, method: str, season: int | None) -> None:
    out = call(ts.impute, series, method, season_length=season)
    if out is not None:
        assert isinstance(out, pd.Series) and len(out) == len(series)


@FUZZ
@given(series=series_st(60))
def test_select_imputation(series: pd.Series) -> None:
    choice = call(ts.select_imputation, series, ("linear", "locf", "moving_average"), repeats=2)
    if choice is not None:
        assert isinstance(choice, ts.ImputationChoice)


@FUZZ
@given(
    series=series_st(),
    method=st.sampled_from(["iqr", "residual"]),
    causal=st.booleans(),
    how=st.sampled_from(["drop", "clip", "ema"]),
)
def test_anomalies_and_denoise(series: pd.Series, method: str, causal: bool, how: str) -> None:
    flags = call(ts.detect_anomalies, series, method, causal)
    if flags is not None:
        assert isinstance(flags, pd.DataFrame) and len(flags) == len(series)
        call(ts.denoise, series, flags, how)
    call(ts.profile, series, flags)


@FUZZ
@given(series=series_st(), periods=st.lists(st.integers(-2, 200), max_size=3))
def test_decompose(series: pd.Series, periods: list[int]) -> None:
    out = call(ts.decompose, series, periods)
    if out is not None:
        assert isinstance(out, pd.DataFrame)


@FUZZ
@given(
    a=series_st(80),
    b=series_st(80),
    rule=st.sampled_from(["1s", "10min", "1h", "0s", "-1h", "1ns"]),
    how=st.sampled_from(["mean", "min", "max", "last", "interpolate", "ffill"]),
)
def test_resample_align_correlations(a: pd.Series, b: pd.Series, rule: str, how: str) -> None:
    call(ts.resample, a, rule, how)
    aligned = call(ts.align, {"a": a, "b": b})
    if aligned is not None:
        corr = call(ts.correlations, aligned)
        if corr is not None:
            assert corr[0].shape == (2, 2)


@FUZZ
@given(
    values=st.lists(values_st, max_size=80),
    features=st.integers(1, 3),
    kind=st.sampled_from(["standard", "minmax"]),
    input_len=st.integers(-1, 20),
    horizon=st.integers(-1, 10),
    stride=st.integers(-1, 5),
)
def test_scale_and_windows(
    values: list[float], features: int, kind: str, input_len: int, horizon: int, stride: int
) -> None:
    array = np.asarray(values[: len(values) // features * features], dtype=float).reshape(-1, features)
    scaler = call(ts.fit_scaler, array, kind)
    if scaler is not None:
        call(scaler.transform, array)
    windows = call(ts.make_windows, array, input_len, horizon, stride)
    if windows is not None:
        x, y = windows
        assert len(x) == len(y)


@FUZZ
@given(
    n=st.integers(0, 40),
    times=st.lists(
        st.one_of(
            st.integers(-(2**62), 2**62), st.none(), st.sampled_from(["2024-03-01T00:00:00Z", "garbage", ""])
        ),
        min_size=40,
        max_size=40,
    ),
    values=st.lists(st.one_of(values_st, st.none(), st.just("x")), min_size=40, max_size=40),
    names=st.lists(st.one_of(st.text(max_size=5), st.none(), st.integers()), min_size=40, max_size=40),
    as_datetime=st.booleans(),
)
def test_validate_and_deduplicate(n: int, times: list, values: list, names: list, as_datetime: bool) -> None:
    frame = pd.DataFrame(
        {
            "position": names[:n],
            "type_name": "T",
            "series_id": "s",
            "event_time": times[:n],
            "value": values[:n],
            "rstart": 0.0,
            "rend": 100.0,
        }
    )
    if as_datetime:
        frame["event_time"] = pd.to_datetime(
            [t if isinstance(t, int) and abs(t) < 9 * 10**12 else None for t in times[:n]],
            unit="ms",
            utc=True,
        )
    out = call(ts.validate_readings, frame, day=dt.date(2024, 3, 1), now=pd.Timestamp("2026-01-01", tz="UTC"))
    if out is not None:
        valid, rejected = out
        assert len(valid) + len(rejected) == n
        deduped = call(ts.deduplicate, valid)
        if deduped is not None:
            assert len(deduped[0]) + len(deduped[1]) == len(valid)


@pytest.fixture(scope="module", autouse=True)
def _report():  # type: ignore[no-untyped-def]
    """Print this module's figures after its tests (for BENCHMARKS.md; run with -s)."""
    yield
    print(
        f"\nfuzz: time-series core {calls['n']} calls, {calls['value_errors']} clear ValueErrors, 0 crashes"
    )
