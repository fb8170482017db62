"""The dataset models' failure reports (``datasets.schema_failures``) and the columns a check needs
(``datasets.checked_columns``), pure pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsplatform.datasets import (
    EXAMPLE_ROWS,
    DecompositionsModel,
    DenoisedReadingsModel,
    HourlyReadingsModel,
    checked_columns,
    schema_failures,
)


def _denoised(rows: int) -> pd.DataFrame:
    values = np.random.default_rng(0).normal(size=rows)
    return pd.DataFrame(
        {
            "series_id": "b4b_co2-00000000000000ab",
            "position": "room1",
            "type_name": "co2",
            "event_time": pd.date_range("2024-03-01", periods=rows, freq="s"),
            "value": values,
            "value_raw": values,
            "anomaly_score": 0.5,
            "is_anomaly": False,
            "is_spike": False,
            "processing": "none",
        }
    )


def test_a_conforming_frame_has_no_failures() -> None:
    out = schema_failures(DenoisedReadingsModel, _denoised(100))
    assert out.empty
    assert list(out.columns) == ["check", "column", "n", "failure_case"]


def test_failures_are_counted_per_check_and_column_with_an_example() -> None:
    frame = _denoised(1_000)
    frame.loc[:9, "anomaly_score"] = 2.0
    frame.loc[[5, 6], "processing"] = "bogus"
    frame.loc[100:399, "value"] += 1.0  # changed but not flagged: the frame-wide check fails on 300 rows
    frame.loc[[700, 701], "is_spike"] = True  # a spike row must be an anomalous row
    frame.loc[701, "is_anomaly"] = True
    out = schema_failures(DenoisedReadingsModel, frame).set_index(["check", "column"])
    assert out.loc[("less_than_or_equal_to(1)", "anomaly_score"), "n"] == 10
    assert out.loc[("less_than_or_equal_to(1)", "anomaly_score"), "failure_case"] == "2.0"
    assert out.loc[("isin(('none', 'drop', 'clip', 'ema'))", "processing"), "n"] == 2
    # the frame-wide check counts failing rows, not the EXAMPLE_ROWS it keeps, and names the first one
    assert out.loc[("unprocessed_unless_flagged", "*"), "n"] == 300 > EXAMPLE_ROWS
    assert out.loc[("unprocessed_unless_flagged", "*"), "failure_case"] == "row 100"
    assert out.loc[("spikes_are_flagged", "*"), "n"] == 1
    assert out.loc[("spikes_are_flagged", "*"), "failure_case"] == "row 700"
    assert len(out) == 4


def test_two_frame_wide_checks_are_counted_apart() -> None:
    hours = pd.date_range("2024-03-01", periods=48, freq="h")
    frame = pd.DataFrame(
        {
            "series_id": "b4b_co2-00000000000000ab",
            "position": "room1",
            "type_name": "co2",
            "event_time": hours,
            "mean": 1.0,
            "min": 0.0,
            "max": 2.0,
            "count": 6,
        }
    )
    frame.loc[:2, "min"] = 5.0  # min > mean on 3 rows
    frame.loc[10:11, "event_time"] += pd.Timedelta(minutes=5)  # 2 rows off the hour
    out = schema_failures(HourlyReadingsModel, frame).set_index(["check", "column"])["n"].to_dict()
    assert out == {("ordered", "*"): 3, ("on_the_hour", "*"): 2}


def test_a_missing_column_and_a_wrong_dtype_are_reported() -> None:
    missing = schema_failures(DenoisedReadingsModel, _denoised(10).drop(columns=["processing"]))
    rows = missing[["check", "n", "failure_case"]].values.tolist()
    assert rows == [["column_in_dataframe", 1, "processing"]]
    frame = _denoised(10)
    frame["anomaly_score"] = "high"
    wrong = schema_failures(DenoisedReadingsModel, frame).set_index(["check", "column"])["n"]
    assert wrong[("dtype('float64')", "anomaly_score")] == 10


def test_the_checked_columns_report_what_the_whole_frame_would() -> None:
    frame = _denoised(200).assign(unit="ppm", _day="2024-03-01")  # undeclared columns ride along
    frame.loc[:9, "value"] += 1.0  # changed but not flagged (a frame-wide check)
    columns = checked_columns(DenoisedReadingsModel, list(frame.columns))
    assert "unit" not in columns and "_day" not in columns and "value_raw" in columns
    whole = schema_failures(DenoisedReadingsModel, frame)
    assert whole["n"].sum() == 10
    pd.testing.assert_frame_equal(schema_failures(DenoisedReadingsModel, frame[columns]), whole)
    without = [c for c in columns if c != "processing"]  # a declared column missing stays missing
    missing = schema_failures(DenoisedReadingsModel, frame[without])
    assert "processing" in set(missing["failure_case"])
    decomposition = ["series_id", "trend", "seasonal_144", "seasonal_1008", "resid", "seasonality"]
    assert checked_columns(DecompositionsModel, decomposition) == decomposition[:-1]  # the regex field
