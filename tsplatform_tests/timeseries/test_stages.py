"""The per-series steps of the asset graph on pandas: thin and bad series get rows that say why."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tsplatform.partitions import ANOMALY_LOOKBACK_DAYS
from tsplatform.timeseries import stages
from tsplatform.timeseries.decompose import decompose
from tsplatform.timeseries.denoise import select_processing
from tsplatform.timeseries.impute import IMPUTATION_METHODS, NOT_NEEDED

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


def test_imputation_is_selected_on_the_first_day_with_a_slot_to_fill_and_not_before() -> None:
    times = ten_minutes()
    complete = readings(times)
    est = stages.estimate_periods(complete, [DAY], 7)
    args = {"lookback_days": 7, "max_gap_s": 3600 * 12, "reselect_days": 7}
    reg = stages.regularize_series(complete, est, [DAY], None, **args)
    assert len(reg) == 144 and not reg["is_imputed"].any()
    assert (reg["imputation_method"] == NOT_NEEDED).all()  # nothing to fill: nothing selected
    assert reg["imputation_selected"].isna().all()
    # a stale method is kept on a complete day (re-selection waits for a slot to fill)
    stale = {"imputation_method": "kalman", "imputation_selected": "2024-02-01"}
    kept = stages.regularize_series(complete, est, [DAY], stale, **args)
    assert (kept["imputation_method"] == "kalman").all() and (
        kept["imputation_selected"] == "2024-02-01"
    ).all()
    np.testing.assert_array_equal(kept["value"].to_numpy(), reg["value"].to_numpy())
    # a slot to fill on the next day: selected then, on that day's window
    nxt = DAY + dt.timedelta(days=1)
    week_and_a_day = ten_minutes()[0] + pd.to_timedelta(np.arange(144 * 8) * 600, unit="s")
    later = readings(week_and_a_day)
    later = later[later["event_time"] != pd.Timestamp(nxt, tz="UTC") + pd.Timedelta(hours=5, seconds=17)]
    est2 = stages.estimate_periods(later, [DAY, nxt], 7)
    both = stages.regularize_series(later, est2, [DAY, nxt], None, **args)
    first, second = both[both["_day"] == DAY.isoformat()], both[both["_day"] == nxt.isoformat()]
    assert (first["imputation_method"] == NOT_NEEDED).all()
    assert second["is_imputed"].sum() == 1
    assert (second["imputation_selected"] == nxt.isoformat()).all()
    assert second["imputation_method"].isin(IMPUTATION_METHODS).all()


def test_a_day_whose_only_missing_slots_lie_in_a_long_gap_selects_nothing() -> None:
    times = ten_minutes()
    day_start = pd.Timestamp(DAY, tz="UTC")
    long = (times >= day_start - pd.Timedelta(hours=20)) & (times < day_start + pd.Timedelta(hours=1))
    frame = readings(times)[~long]
    est = stages.estimate_periods(frame, [DAY], 7)
    reg = stages.regularize_series(
        frame, est, [DAY], None, lookback_days=7, max_gap_s=3600 * 12, reselect_days=7
    )
    assert reg["value"].isna().sum() == 6 and not reg["is_imputed"].any()
    assert (reg["imputation_method"] == NOT_NEEDED).all()
    assert reg["note"].str.contains("left missing").all()


def _used(rows: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = rows.dropna(subset=["imputation_selected"])[["imputation_selected", "imputation_method"]]
    return sorted(set(map(tuple, pairs.to_numpy().tolist())))


def test_re_processing_days_with_late_data_equals_a_run_from_scratch() -> None:
    """Selections are redone from the first re-processed day on, from the history before it: a late batch
    for day 11 (after the series' last selection, day 12, was made without it) gives the rows of a run that
    had the batch from the start, methods and selection days included."""
    days = [DAY + dt.timedelta(days=i) for i in range(14)]
    start = pd.Timestamp(days[0], tz="UTC")
    times = start + pd.to_timedelta(np.arange(144 * 14) * 600 + 17, unit="s")
    noise = np.random.default_rng(3).normal(0.0, 0.2, len(times))
    frame = readings(pd.DatetimeIndex(times), np.sin(np.arange(len(times)) * 2 * np.pi / 144) + noise)
    slot = (frame["event_time"] - start) // pd.Timedelta(minutes=10)
    frame = frame[~slot.isin([5 * 144 + 40, 5 * 144 + 41, 9 * 144 + 7, 12 * 144 + 99, 13 * 144 + 3])]
    late = slot.reindex(frame.index).between(11 * 144 + 60, 11 * 144 + 80)
    args = {"lookback_days": 7, "max_gap_s": 3600 * 12, "reselect_days": 7}

    def run(rows: pd.DataFrame, run_days: list[dt.date], state: dict | None) -> pd.DataFrame:
        est = stages.estimate_periods(rows, run_days, 7)
        return stages.regularize_series(rows, est, run_days, state, **args).reset_index(drop=True)

    scratch = run(frame, days, None)
    assert [d for d, _ in _used(scratch)] == [days[5].isoformat(), days[12].isoformat()]
    first = run(frame[~late], days, None)  # day 11 has a gap without the late rows, filled by day 5's method
    history = stages.merge_imputation_history([], _used(first), days)
    assert [d for d, _ in history] == [days[5].isoformat(), days[12].isoformat()]
    again = run(frame, days[11:], {"imputation_history": [list(e) for e in history]})
    pd.testing.assert_frame_equal(
        again, scratch[scratch["_day"] >= days[11].isoformat()].reset_index(drop=True)
    )
    merged = stages.merge_imputation_history(history, _used(again), days[11:])
    assert merged == _used(scratch)


def test_the_imputation_history_reads_older_catalogs_and_ignores_malformed_entries() -> None:
    legacy = {"imputation_method": "kalman", "imputation_selected": "2024-03-01"}
    assert stages.imputation_history(legacy) == [("2024-03-01", "kalman")]
    odd = {
        "imputation_history": [
            ["2024-03-08", "linear"],
            ["2024-03-01", "kalman"],
            ["x"],
            ["2024-03-09", "rm"],
        ]
    }
    assert stages.imputation_history(odd) == [("2024-03-01", "kalman"), ("2024-03-08", "linear")]
    assert stages.imputation_history(None) == []
    old = [("2024-03-01", "kalman"), ("2024-03-08", "linear"), ("2024-03-20", "pchip")]
    run = [dt.date(2024, 3, 7), dt.date(2024, 3, 9)]
    # a backfill of 7-9 March: the selection inside it is redone, the one after it stays
    merged = stages.merge_imputation_history(old, [("2024-03-01", "kalman"), ("2024-03-07", "locf")], run)
    assert merged == [("2024-03-01", "kalman"), ("2024-03-07", "locf"), ("2024-03-20", "pchip")]
    assert (
        len(
            stages.merge_imputation_history(
                [(f"2024-01-{d:02d}", "linear") for d in range(1, 31)], [], run, 16
            )
        )
        == 16
    )
    # what a run starts from: one entry per series, the latest before its first day
    states = [("a", {"imputation_history": [list(e) for e in old]}), ("b", legacy), ("c", {})]
    assert stages.latest_selections(states, before=dt.date(2024, 3, 8)) == {
        "a": {"imputation_selected": "2024-03-01", "imputation_method": "kalman"},
        "b": {"imputation_selected": "2024-03-01", "imputation_method": "kalman"},
    }


def test_decomposition_too_short_for_its_season_says_so() -> None:
    times = ten_minutes(days=1)
    den = readings(times).assign(value_raw=0.0)
    est = stages.estimate_periods(readings(times), [DAY], 7)
    out = stages.decompose_series(den, est, [DAY], [144, 1008], lookback_days=28)
    assert len(out) == 144 and out["trend"].isna().all()
    assert out["note"].str.startswith("not decomposed").all()


def test_decomposition_fits_the_whole_window_when_earlier_days_sat_on_other_grids() -> None:
    # 28 days of a 10-minute series, each day regularized on its own day's grid: the phase estimated
    # afresh each day moves by a few seconds, as it does under jitter. The day's fit must still use all
    # 28 days (it used to keep only the points on the day's own grid: the days estimated alike).
    days = [DAY - dt.timedelta(days=27 - i) for i in range(28)]
    parts = []
    for i, day in enumerate(days):
        phase = pd.Timedelta(seconds=17 + (i % 5) * 3)  # 17..29 s
        times = pd.date_range(pd.Timestamp(day, tz="UTC") + phase, periods=144, freq="10min")
        hours = (times - pd.Timestamp(days[0], tz="UTC")) / pd.Timedelta(hours=1)
        parts.append(readings(times, np.sin(2 * np.pi * hours / 24) + 0.5 * np.sin(2 * np.pi * hours / 168)))
    den = pd.concat(parts, ignore_index=True).assign(value_raw=0.0)
    est = stages.estimate_periods(den[den["event_time"] >= pd.Timestamp(DAY, tz="UTC")], [DAY], 1)
    day_phase = pd.Timedelta(seconds=est["phase_s"].iloc[0])
    assert day_phase == pd.Timedelta(seconds=17 + (27 % 5) * 3)
    assert sum(day_phase == pd.Timedelta(seconds=17 + (i % 5) * 3) for i in range(28)) < 28 // 2

    out = stages.decompose_series(den, est, [DAY], [144, 1008], lookback_days=28)
    assert len(out) == 144 and out["note"].isna().all(), out["note"].unique()
    # the same at the lake's millisecond timestamps (the estimate's period and phase are nanoseconds)
    in_ms = den.assign(event_time=den["event_time"].astype("datetime64[ms, UTC]"))
    same = stages.decompose_series(in_ms, est, [DAY], [144, 1008], lookback_days=28)
    np.testing.assert_array_equal(same["resid"].to_numpy(), out["resid"].to_numpy())
    seasonal = ["trend", "seasonal_144", "seasonal_1008", "resid"]
    assert out[seasonal].notna().all().all()
    # the fit is the one on the whole window's values on the day's grid (same points, same values)
    series = pd.Series(den["value"].to_numpy(), index=pd.DatetimeIndex(den["event_time"]))
    grid = pd.date_range(series.index[0].floor("10min") + day_phase, series.index[-1], freq="10min")
    on_grid = np.interp(grid.asi8.astype(float), series.index.asi8.astype(float), series.to_numpy())
    whole = decompose(
        pd.Series(on_grid, index=grid),
        (144, 1008),
        robust_iterations=stages.DECOMPOSITION_ROBUST_ITERATIONS,
        iterations=stages.DECOMPOSITION_MSTL_PASSES,
        season_points=stages.DECOMPOSITION_SEASON_POINTS,
    )
    day_rows = whole.loc[whole.index >= pd.Timestamp(DAY, tz="UTC")]
    assert len(whole) > 27 * 144 and len(day_rows) == 144
    np.testing.assert_allclose(out["resid"].to_numpy(), day_rows["resid"].to_numpy(), atol=1e-9)
    # the day's own points are on its grid: their processed values are the fit's input, exactly
    np.testing.assert_array_equal(
        (out[seasonal].sum(axis=1)).round(9).to_numpy(), parts[-1]["value"].round(9).to_numpy()
    )


def test_a_slot_without_a_value_gets_the_fitted_trend_and_seasons_but_no_residual() -> None:
    # a gap left open by regularization (longer than the imputation limit) and a dropped anomaly are NaN in
    # denoised_readings. The fit runs on the window interpolated across them; the residual there would be
    # the interpolation's, not the data's.
    times = ten_minutes(days=3)
    hours = (times - times[0]) / pd.Timedelta(hours=1)
    values = 10 + np.sin(2 * np.pi * hours / 24) + 0.05 * np.random.default_rng(3).normal(size=len(times))
    missing = np.zeros(len(times), dtype=bool)
    missing[-100:-60] = True  # ~7 hours of the day
    missing[-20] = True  # a dropped anomaly
    den = readings(times, np.where(missing, np.nan, values)).assign(value_raw=values)
    est = stages.estimate_periods(readings(times), [DAY], 7)
    out = stages.decompose_series(den, est, [DAY], [144], lookback_days=28)
    assert len(out) == 144
    no_value = missing[-144:]
    assert out["trend"].notna().all() and out["seasonal_144"].notna().all()
    np.testing.assert_array_equal(out["resid"].isna().to_numpy(), no_value)
    assert (out["note"] == "41 point(s) without a value: no residual").all()
    kept = out[~no_value]
    np.testing.assert_allclose(
        (kept["trend"] + kept["seasonal_144"] + kept["resid"]).to_numpy(), values[-144:][~no_value], atol=1e-9
    )
    # a time given twice (the uniqueness check upstream would fail, but the core must not raise): one fit,
    # the repeated slot reported for each of its rows, as before the residual rule
    twice = pd.concat([den, den.iloc[[-3]]], ignore_index=True)
    again = stages.decompose_series(twice, est, [DAY], [144], lookback_days=28)
    assert len(again) == 145 and again["resid"].isna().sum() == 41


def test_the_chain_over_sixteen_jittered_days_decomposes_the_last_on_its_whole_window() -> None:
    # the chain as the assets run it, day by day, on 16 days of a 10-minute series read with +-20 s of
    # jitter: each day's grid has its own estimated phase, and the last day's fit still sees all 16 days
    # (both seasons: 2,304 samples > 2 x 1,008)
    rng = np.random.default_rng(16)
    days = [DAY - dt.timedelta(days=15 - i) for i in range(16)]
    slots = pd.date_range(pd.Timestamp(days[0], tz="UTC"), periods=144 * 16, freq="10min")
    times = slots + pd.to_timedelta(rng.uniform(-20, 20, slots.size) + 300, unit="s")
    hours = np.arange(slots.size) / 6.0
    values = 20 + np.sin(2 * np.pi * hours / 24) + 0.5 * np.sin(2 * np.pi * hours / 168)
    rows = readings(times, values + rng.normal(0, 0.05, slots.size))
    est = stages.estimate_periods(rows, days, 7)
    assert (est["period_s"] == 600.0).all() and est["phase_s"].nunique() > 1  # the grids move
    state = {"imputation_method": "linear", "imputation_selected": days[0].isoformat()}
    reg = stages.regularize_series(rows, est, days, state, lookback_days=7, max_gap_s=86_400, reselect_days=7)
    den = stages.denoise_series(reg, days, 2)
    out = stages.decompose_series(den, est, [days[-1]], [144, 1008], lookback_days=28)
    assert len(out) == 144 and out["note"].isna().all(), out["note"].unique()
    assert out[["trend", "seasonal_144", "seasonal_1008", "resid"]].notna().all().all()
    assert out["resid"].std() < 0.2  # the noise is 0.05: a misfit window leaves whole-day errors


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


@pytest.mark.parametrize("step", ["1h", "30min", "10min"])
def test_the_graph_lookback_gives_the_detector_its_warm_up_at_every_common_step(step: str) -> None:
    """``denoised_readings`` runs the detector over ``ANOMALY_LOOKBACK_DAYS`` ending at the day. With 2 days,
    an hourly series had 48 rows, under the detector's warm-up of 100: every score 0, a spike of 50 spreads
    on the day not flagged. The graph's window must let a spike be seen at the steps sensors use."""
    rows_per_day = pd.Timedelta(days=1) // pd.Timedelta(step)
    days = ANOMALY_LOOKBACK_DAYS
    start = pd.Timestamp(DAY, tz="UTC") - pd.Timedelta(days=days - 1)
    times = pd.date_range(start, periods=rows_per_day * days, freq=step)
    rng = np.random.default_rng(7)
    phase = 2 * np.pi * np.arange(len(times)) / rows_per_day
    values = 20 + 3 * np.sin(phase) + rng.normal(0, 0.5, len(times))
    spike = len(times) - rows_per_day // 2  # noon on the day
    values[spike] += 25  # 50 noise spreads
    out = stages.denoise_series(
        readings(times, values).assign(is_imputed=False), [DAY], ANOMALY_LOOKBACK_DAYS
    )
    assert len(out) == rows_per_day
    flagged = out.loc[out["is_anomaly"], "event_time"]
    assert times[spike] in set(flagged)
    # nothing else, but the spike's way back (a likelihood alarm beside the range record)
    assert ((flagged >= times[spike]) & (flagged <= times[spike] + pd.Timedelta(hours=1))).all()
    assert out["anomaly_score"].max() == 1.0


def test_a_spike_in_a_days_last_row_alarmed_after_midnight_is_flagged_on_the_next_days_first_row() -> None:
    """The detector flags an event's onset, up to 9 rows before the alarm. A drop-out in the last slot of a
    day whose alarm comes with its recovery after midnight: the day's own run cannot see the recovery, and
    the day is written before the next is computed. The next day's run flags its own first row, the
    recovery, so the event is not lost (and the earlier days' flags, which it reads for its processing
    choice, are the onsets their own runs wrote)."""
    days = 14
    times = pd.date_range(
        pd.Timestamp(DAY, tz="UTC") - pd.Timedelta(days=days - 1), periods=144 * days, freq="10min"
    )
    rng = np.random.default_rng(0)
    values = 400 + 50 * np.sin(2 * np.pi * np.arange(len(times)) / 144) + rng.normal(0, 5, len(times))
    # a range record first, then drop-outs whose surprises widen the spread of m, then one at 23:50
    for row in (144 * 3 + 17, 144 * 5 + 80, 144 * 8 + 3, 144 * 10 + 100):
        values[row] = 0.0
    last_slot = len(times) - 145  # 23:50 the day before DAY
    values[last_slot] = 0.0
    frame = readings(times, values).assign(is_imputed=False)
    before = DAY - dt.timedelta(days=1)
    out = stages.denoise_series(frame, [before, DAY], ANOMALY_LOOKBACK_DAYS)
    flagged = set(out.loc[out["is_anomaly"], "event_time"])
    assert times[last_slot] not in flagged  # its day never saw the recovery
    assert times[last_slot + 1] in flagged  # the next day's first row carries the event
    on_day = out[out["_day"] == DAY.isoformat()]
    assert on_day["event_time"].iloc[0] == times[last_slot + 1]


@pytest.mark.parametrize(
    "scalar",
    [
        True,
        np.bool_(False),
        3,
        np.int64(-2),
        1.5,
        np.nan,
        np.float32(0.25),
        "linear",
        None,
        pd.Timestamp("2024-03-05", tz="UTC"),
    ],
    ids=repr,
)
def test_stage_rows_repeat_a_scalar_with_the_dtype_the_dataframe_constructor_gives_it(scalar: object) -> None:
    times = pd.date_range("2024-03-05", periods=4, freq="10min", tz="UTC")
    columns = {"value": np.arange(4.0), "flag": scalar}
    base = {"series_id": "s1", "position": "p", "_day": "2024-03-05"}
    expected = pd.DataFrame({"event_time": times, **columns, **base})
    pd.testing.assert_frame_equal(stages._rows(base, times, columns), expected, check_exact=True)
    empty = pd.DatetimeIndex([], tz="UTC")
    pd.testing.assert_frame_equal(
        stages._rows(base, empty, {"value": np.array([]), "flag": scalar}),
        pd.DataFrame({"event_time": empty, "value": np.array([]), "flag": scalar, **base}),
        check_exact=True,
    )


def test_every_drop_out_of_the_day_is_flagged_as_a_spike_and_processed() -> None:
    """The event detector raises one alarm a day per kind; a sensor that reads 0 three times in a day and
    on the days before still gets each zero flagged (``is_spike``) and cleaned (B4B's 1-minute CO2)."""
    days = 10
    times = pd.date_range(
        pd.Timestamp(DAY, tz="UTC") - pd.Timedelta(days=days - 1), periods=144 * days, freq="10min"
    )
    rng = np.random.default_rng(4)
    values = 500 + 150 * np.sin(2 * np.pi * np.arange(len(times)) / 144) + rng.normal(0, 5, len(times))
    on_day = [len(times) - 144 + offset for offset in (20, 61, 100)]
    for row in (144 * 2 + 50, 144 * 4 + 9, 144 * 6 + 77, 144 * 7 + 120, *on_day):
        values[row] = 0.0
    out = stages.denoise_series(
        readings(times, values).assign(is_imputed=False), [DAY], ANOMALY_LOOKBACK_DAYS
    )
    zeros = out[out["value_raw"] == 0.0]
    assert sorted(zeros["event_time"]) == list(times[on_day])
    assert zeros["is_spike"].all() and zeros["is_anomaly"].all()
    assert out["is_spike"].sum() == 3  # nothing else
    assert (out["processing"] != "none").all()
    assert not (out.set_index("event_time").loc[times[on_day], "value"] == 0.0).any()
