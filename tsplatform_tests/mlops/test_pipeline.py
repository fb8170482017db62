"""The ML pipeline's data side on the real B4B room extract: training sets, forecast rows, scoring, drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsplatform.ml.pipeline import (
    ACCURACY_COLUMNS,
    FORECAST_COLUMNS,
    TRAINING_SET_COLUMNS,
    drifted_targets,
    forecast_rows,
    score_forecasts,
    split_bounds,
    target_frames,
    target_splits,
    training_set,
)
from tsplatform_tests.mlops.readings import CO2, POSITION, room_readings


@pytest.fixture(scope="module")
def readings() -> pd.DataFrame:
    return room_readings()


def test_target_frame_is_regular_with_aligned_covariates(readings: pd.DataFrame) -> None:
    frames, skipped = target_frames(readings, [CO2, "nobody-0000000000000000"])
    assert skipped == {"nobody-0000000000000000": "no readings in the window"}
    (frame,) = frames
    assert frame.period == pd.Timedelta(minutes=10)
    assert frame.position == POSITION and frame.type_name == "CO2"
    assert frame.frame.columns[0] == CO2
    assert sorted(frame.covariate_types.values()) == ["humidity", "temperature"]
    steps = np.diff(frame.frame.index.asi8)
    assert (steps == pd.Timedelta(minutes=10).value).all()
    assert frame.frame.notna().all().all()
    assert frame.season_length == 144
    # grid values sit on the readings: the target at an exact reading time is that reading
    co2 = readings[readings["series_id"] == CO2].set_index("event_time")["value"]
    common = frame.frame.index.intersection(co2.index)
    assert len(common) > 500
    np.testing.assert_allclose(frame.frame.loc[common, CO2], co2.loc[common])


def test_every_series_is_a_target_by_default_and_short_ones_are_skipped(readings: pd.DataFrame) -> None:
    short = (
        readings[readings["series_id"] == CO2]
        .head(3)
        .assign(series_id="short-0000000000000000", type_name="x")
    )
    frames, skipped = target_frames(pd.concat([readings, short]))
    assert len(frames) == 3
    assert "only 3 readings" in skipped["short-0000000000000000"]


def test_training_set_split_by_time_and_scaled_on_train_only(readings: pd.DataFrame) -> None:
    frames, _ = target_frames(readings, [CO2])
    table = training_set(frames, 0.15, 0.15)
    assert tuple(table.columns) == TRAINING_SET_COLUMNS
    assert set(table["role"]) == {"target", "covariate"}
    target = table[table["role"] == "target"]
    by_split = {s: target[target["split"] == s] for s in ("train", "val", "test")}
    assert by_split["train"]["event_time"].max() < by_split["val"]["event_time"].min()
    assert by_split["val"]["event_time"].max() < by_split["test"]["event_time"].min()
    train_values = by_split["train"]["value"].to_numpy()
    assert target["scale_center"].iloc[0] == pytest.approx(train_values.mean())
    assert target["scale_scale"].iloc[0] == pytest.approx(train_values.std())
    assert target["scale_center"].iloc[0] != pytest.approx(target["value"].mean())  # not the full series
    np.testing.assert_allclose(
        target["value_scaled"], (target["value"] - train_values.mean()) / train_values.std()
    )
    (split,) = target_splits(table)
    assert (len(split.train), len(split.val), len(split.test)) == tuple(len(by_split[s]) for s in by_split)
    np.testing.assert_array_equal(split.test, by_split["test"]["value"].to_numpy())


def test_split_bounds_need_three_rows() -> None:
    assert split_bounds(100, 0.15, 0.15) == (70, 85)
    with pytest.raises(ValueError, match="cannot split"):
        split_bounds(2, 0.15, 0.15)


def test_forecast_rows_and_their_scores(readings: pd.DataFrame) -> None:
    day = pd.Timestamp("2022-10-15", tz="UTC")
    history = readings[readings["event_time"] < day]
    frames, _ = target_frames(history, [CO2])
    (frame,) = frames
    truth = frame.frame[CO2]
    later, _ = target_frames(readings, [CO2])
    future = later[0].frame[CO2]
    future = future[future.index > truth.index[-1]].iloc[:6]
    rows = forecast_rows(frames, {CO2: future.to_numpy() + 2.0}, {CO2: "ts-x/3"})
    assert tuple(rows.columns) == FORECAST_COLUMNS
    assert (rows["issued_at"] == truth.index[-1]).all()
    assert list(rows["event_time"]) == list(truth.index[-1] + pd.Timedelta(minutes=10) * np.arange(1, 7))
    assert (rows["model"] == "ts-x/3").all() and (rows["position"] == POSITION).all()

    scores = score_forecasts(rows, readings)
    assert tuple(scores.columns) == ACCURACY_COLUMNS
    (score,) = scores.itertuples()
    assert score.n == 6
    assert score.mse == pytest.approx(4.0, rel=0.02)  # the grid interpolates jittered readings
    assert score.mae == pytest.approx(2.0, rel=0.02)
    one_day_before = later[0].frame[CO2].reindex(rows["event_time"] - pd.Timedelta(days=1)).to_numpy()
    naive_mse = float(np.mean((future.to_numpy() - one_day_before) ** 2))
    assert score.naive_mse == pytest.approx(naive_mse, rel=0.05)


def test_actuals_not_arrived_yet_are_not_scored(readings: pd.DataFrame) -> None:
    frames, _ = target_frames(readings, [CO2])
    rows = forecast_rows(frames, {CO2: np.ones(6)}, {CO2: "m/1"})  # after the last reading
    assert score_forecasts(rows, readings).empty


def test_drifted_targets_compare_pooled_live_mse_with_validation() -> None:
    accuracy = pd.DataFrame({"series_id": ["a", "a", "b"], "n": [1, 3, 4], "mse": [10.0, 2.0, 5.0]})
    drifted = drifted_targets(accuracy, {"a": 2.0, "b": 5.0}, factor=1.5)
    assert set(drifted) == {"a"}  # a: (10 + 6) / 4 = 4 > 3; b: 5 <= 7.5
    assert drifted["a"]["live_mse"] == pytest.approx(4.0)
    assert drifted_targets(accuracy, {}, 1.5) == {}
