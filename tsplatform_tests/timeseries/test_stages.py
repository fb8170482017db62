"""The per-series steps of the asset graph on pandas: thin and bad series get rows that say why."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from tsplatform.timeseries import stages
from tsplatform.timeseries.denoise import select_processing

DAY = dt.date(2024, 3, 7)
ID = {"series_id": "a__b-0123456789abcdef", "position": "광 주 A", "type_name": "CO2"}


def readings(times: pd.DatetimeIndex, values: np.ndarray | None = None) -> pd.DataFrame:
    values = np.sin(np.arange(len(times)) / 10.0) if values is None else values
    return pd.DataFrame({**ID, "event_time": times, "value": values})


def ten_minutes(days: int = 7) -> pd.DatetimeIndex:
    start = pd.Timestamp(DAY, tz="UTC") - pd.Timedelta(days=days - 1)
    return pd.date_range(start, periods=144 * days, freq="10min") + pd.Timedelta(seconds=17)


def test_a_series_too_short_for_a_period_gets_a_row_saying_why() -> None:
    times = pd.DatetimeIndex([pd.Timestamp(DAY, tz="UTC") + pd.Timedelta(hours=h) for h in (1, 1, 2)])
    out = stages.estimate_periods(readings(times), [DAY], 7)
    assert len(out) == 1
    assert np.isnan(out["period_s"].iloc[0])
    assert "too few samples" in out["note"].iloc[0]
    # downstream it passes through unmodified, with the reason
    reg = stages.regularize_series(
        readings(times), out, [DAY], None, lookback_days=7, max_gap_s=86_400, reselect_days=7
    )
    assert (reg["imputation_method"] == "none").all() and not reg["is_imputed"].any()
    assert reg["note"].str.contains("too few samples").all()


def test_regularize_fills_short_gaps_and_leaves_gaps_longer_than_the_limit() -> None:
    times = ten_minutes()
    frame = readings(times)
    day_start = pd.Timestamp(DAY, tz="UTC")
    short = (times >= day_start + pd.Timedelta(hours=2)) & (times < day_start + pd.Timedelta(hours=3))
    long = (times >= day_start - pd.Timedelta(hours=20)) & (times < day_start + pd.Timedelta(hours=1))
    frame = frame[~short & ~long]
    est = stages.estimate_periods(frame, [DAY], 7)
    assert est["period_s"].iloc[0] == 600.0
    state = {"imputation_method": "linear", "imputation_selected": "2024-03-05"}
    reg = stages.regularize_series(
        frame, est, [DAY], state, lookback_days=7, max_gap_s=3600 * 12, reselect_days=7
    )
    assert len(reg) == 144  # every slot of the day, once
    assert (np.diff(reg["event_time"].to_numpy()) == np.timedelta64(600, "s")).all()
    assert reg["is_imputed"].sum() == 6  # the hour gap
    assert reg["value"].isna().sum() == 6  # the first hour of the day: inside the 21-hour gap
    assert (reg["imputation_method"] == "linear").all()  # from the state: selected 2 days ago
    stale = {"imputation_method": "linear", "imputation_selected": "2024-02-01"}
    again = stages.regularize_series(
        frame, est, [DAY], stale, lookback_days=7, max_gap_s=3600 * 12, reselect_days=7
    )
    assert (again["imputation_selected"] == DAY.isoformat()).all()  # re-selected


def test_decomposition_too_short_for_its_season_says_so() -> None:
    times = ten_minutes(days=1)
    den = readings(times).assign(value_raw=0.0)
    est = stages.estimate_periods(readings(times), [DAY], 7)
    out = stages.decompose_series(den, est, [DAY], [144, 1008], lookback_days=28)
    assert len(out) == 144 and out["trend"].isna().all()
    assert out["note"].str.startswith("not decomposed").all()


def test_select_processing_prefers_none_without_flags_and_scores_against_raw_targets() -> None:
    index = pd.date_range("2024-03-01", periods=500, freq="10min", tz="UTC")
    series = pd.Series(np.sin(np.arange(500) / 8.0), index=index)
    no_flags = pd.Series(False, index=index)
    assert select_processing(series, no_flags)[0] == "none"
    spiky = series.copy()
    spiky.iloc[50:400:37] += 25.0
    flags = pd.Series(False, index=index)
    flags.iloc[50:400:37] = True
    method, scores = select_processing(spiky, flags)
    assert method != "none" and scores[method] < scores["none"]
