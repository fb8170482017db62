"""Every public function of ``tsplatform.timeseries`` given frames whose columns have pandas' ``string``,
``category`` or pyarrow-backed dtypes (what ``convert_dtypes()``, ``astype("string")`` and pyarrow-backed
reads produce), and mixed frames: the expected results are written out by hand, the same for every kind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tsplatform.timeseries import (
    align,
    correlations,
    decompose,
    deduplicate,
    denoise,
    detect_anomalies,
    detect_gaps,
    estimate_period,
    fit_scaler,
    impute,
    make_windows,
    profile,
    readings_schema,
    regularize,
    resample,
    select_imputation,
    validate_readings,
)

NOW = pd.Timestamp("2025-01-01", tz="UTC")
DAY = dt.date(2022, 11, 22)
T0 = pd.Timestamp("2022-11-22 00:00", tz="UTC")
KEYS = ("position", "type_name", "series_id")
SID = (
    "a__c02-"
    + hashlib.sha256(
        json.dumps(["광 주 A", "C02"], ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()[:16]
)  # the recipe of tsplatform.ids: slug, "-", 16 hex digits of SHA-256 of the JSON key
ARROW_STRING = pd.ArrowDtype(pa.string())
ARROW_TIME = pd.ArrowDtype(pa.timestamp("ms", tz="UTC"))
ARROW_DOUBLE = pd.ArrowDtype(pa.float64())

KINDS = ("object", "convert_dtypes", "string", "string_pyarrow", "category", "arrow_backend", "mixed")


def as_kind(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``df`` (object keys, datetime64[ms, UTC] times, float64 values) with the column dtypes of ``kind``."""
    keys = [c for c in KEYS if c in df.columns]
    if kind == "object":
        return df
    if kind == "convert_dtypes":  # string keys, Float64 values with <NA>
        return df.convert_dtypes()
    if kind == "string":
        return df.astype(dict.fromkeys(keys, "string[python]"))
    if kind == "string_pyarrow":
        return df.astype(dict.fromkeys(keys, "string[pyarrow]"))
    if kind == "category":
        return df.astype(dict.fromkeys(keys, "category"))
    if kind == "arrow_backend":  # what read_parquet(dtype_backend="pyarrow") gives: every column ArrowDtype
        return df.convert_dtypes(dtype_backend="pyarrow")
    assert kind == "mixed"
    out = df.astype({"position": "string[python]", "type_name": "category", "event_time": ARROW_TIME})
    if "series_id" in out.columns:
        out["series_id"] = out["series_id"].astype(ARROW_STRING)
    return out.astype({"value": "Float64"})


def readings(rows: list[dict]) -> pd.DataFrame:
    base = {"position": "광 주 A", "type_name": "C02", "series_id": SID, "value": 460.0}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True).astype("datetime64[ms, UTC]")
    return frame[["position", "type_name", "series_id", "event_time", "value"]]


THREE = [
    {"event_time": "2022-11-22T07:35:45Z", "value": 460.0},
    {"event_time": "2022-11-22T07:36:45Z", "value": 461.5},
    {"event_time": "2022-11-22T07:37:45Z", "value": 459.0},
]


def test_the_issue_frames_have_the_dtypes_they_stand_for() -> None:
    frame = readings(THREE)
    assert str(as_kind(frame, "convert_dtypes")["position"].dtype) == "string"
    assert isinstance(as_kind(frame, "category")["type_name"].dtype, pd.CategoricalDtype)
    assert as_kind(frame, "string_pyarrow")["series_id"].dtype.storage == "pyarrow"
    arrow = as_kind(frame, "arrow_backend").dtypes
    assert {str(t) for t in arrow} == {"string[pyarrow]", "timestamp[ms, tz=UTC][pyarrow]", "double[pyarrow]"}
    mixed = as_kind(frame, "mixed").dtypes.map(str).to_dict()
    assert mixed == {
        "position": "string",
        "type_name": "category",
        "series_id": "string[pyarrow]",
        "event_time": "timestamp[ms, tz=UTC][pyarrow]",
        "value": "Float64",
    }


# --- validate_readings / readings_schema / deduplicate ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_three_clean_readings_all_validate(kind: str) -> None:
    valid, rejected = validate_readings(as_kind(readings(THREE), kind), day=DAY, now=NOW)
    assert rejected.empty and rejected.columns.tolist()[-1] == "reason"
    assert valid.index.tolist() == [0, 1, 2]
    assert valid["position"].tolist() == ["광 주 A"] * 3
    assert valid["type_name"].tolist() == ["C02"] * 3
    assert valid["series_id"].tolist() == [SID] * 3
    assert [valid[c].dtype for c in KEYS] == [np.dtype(object)] * 3
    assert valid["event_time"].dtype == "datetime64[ms, UTC]"
    assert valid["event_time"].tolist() == [
        pd.Timestamp("2022-11-22 07:35:45", tz="UTC"),
        pd.Timestamp("2022-11-22 07:36:45", tz="UTC"),
        pd.Timestamp("2022-11-22 07:37:45", tz="UTC"),
    ]
    assert valid["value"].dtype == np.float64 and valid["value"].tolist() == [460.0, 461.5, 459.0]
    readings_schema.validate(valid)  # the output is a valid reading frame as the asset check sees it


@pytest.mark.parametrize("kind", KINDS)
def test_bad_rows_get_their_reason_and_keep_their_dtypes(kind: str) -> None:
    rows = [
        {"event_time": "2022-11-22T01:00:00Z"},
        {"event_time": "2022-11-22T02:00:00Z", "position": None},
        {"event_time": "2022-11-22T03:00:00Z", "type_name": None},
        {"event_time": "2022-11-22T04:00:00Z", "series_id": None},
        {"event_time": "2022-11-22T05:00:00Z", "value": np.nan},
        {"event_time": None},
        {"event_time": "2022-11-23T06:00:00Z"},
        {"event_time": "2030-01-01T00:00:00Z"},
        {"event_time": "2022-11-22T09:00:00Z", "value": 470.0},
    ]
    frame = as_kind(readings(rows), kind)
    valid, rejected = validate_readings(frame, day=DAY, now=NOW)
    assert valid.index.tolist() == [0, 8] and valid["value"].tolist() == [460.0, 470.0]
    assert rejected.index.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert rejected["reason"].tolist() == [
        "schema:position",
        "schema:type_name",
        "schema:series_id",
        "non_finite_value",
        "unparseable_timestamp",
        "outside_day",
        "future_timestamp",
    ]
    assert rejected.drop(columns="reason").dtypes.to_dict() == frame.dtypes.to_dict()
    assert rejected.loc[5, "position"] == "광 주 A"


@pytest.mark.parametrize("kind", KINDS)
def test_series_id_is_derived_when_absent(kind: str) -> None:
    rows = [*THREE, {"event_time": "2022-11-22T08:00:00Z", "position": None}]
    frame = as_kind(readings(rows).drop(columns="series_id"), kind)
    valid, rejected = validate_readings(frame, day=DAY, now=NOW)
    assert valid["series_id"].tolist() == [SID] * 3
    assert valid.columns.tolist() == ["position", "type_name", "series_id", "event_time", "value"]
    assert rejected["reason"].tolist() == ["schema:position"]
    assert rejected["series_id"].tolist() == [None]
    assert "series_id" not in frame.columns  # the input is not modified


def test_without_series_id_or_key_the_error_names_the_column() -> None:
    with pytest.raises(ValueError, match="series_id"):
        validate_readings(readings(THREE).drop(columns=["series_id", "type_name"]))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_series_id", [True, False])
def test_deduplicate_any_dtype(kind: str, with_series_id: bool) -> None:
    rows = [
        {"event_time": "2022-11-22T01:00:00Z", "value": 1.0},
        {"event_time": "2022-11-22T01:00:00Z", "value": 1.0},  # exact duplicate of 0
        {"event_time": "2022-11-22T01:00:00Z", "value": 2.0},  # same time as 0, other value
        {"event_time": "2022-11-22T01:00:00Z", "value": 2.0, "position": "B"},  # another series
        {"event_time": "2022-11-22T02:00:00Z", "value": 3.0},
    ]
    frame = readings(rows)
    frame.loc[3, "series_id"] = "b__c02-0000000000000000"
    if not with_series_id:
        frame = frame.drop(columns="series_id")
    frame = as_kind(frame, kind)
    kept, duplicates = deduplicate(frame)
    assert kept.index.tolist() == [0, 3, 4]
    assert duplicates.index.tolist() == [1, 2]
    assert duplicates["reason"].tolist() == ["exact_duplicate", "same_timestamp"]
    assert kept.dtypes.to_dict() == frame.dtypes.to_dict()


@pytest.mark.parametrize("kind", KINDS)
def test_deduplicate_one_clean_series_keeps_everything(kind: str) -> None:
    frame = as_kind(readings(THREE), kind)
    kept, duplicates = deduplicate(frame)
    assert kept.index.tolist() == [0, 1, 2] and duplicates.empty
    assert kept["value"].tolist() == [460.0, 461.5, 459.0]


# --- the value-series functions ----------------------------------------------------------------------
# A ramp sampled every 10 min from 2022-11-22 00:00 UTC: slot k holds value k; slot 3 is missing and slot
# 6's value is missing (NaN / <NA>), so 12 rows, 11 values, 13 slots.
SLOTS = [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12]


def ramp_frame(kind: str) -> pd.DataFrame:
    frame = readings([{"event_time": T0 + pd.Timedelta(minutes=10 * k), "value": float(k)} for k in SLOTS])
    frame.loc[5, "value"] = np.nan
    return as_kind(frame, kind)


def ramp(kind: str) -> pd.Series:
    return ramp_frame(kind).set_index("event_time")["value"]


def grid(n: int, step_min: int = 10) -> pd.DatetimeIndex:
    return pd.date_range(T0, periods=n, freq=f"{step_min}min")


@pytest.mark.parametrize("kind", KINDS)
def test_ramp_frames_hold_a_missing_value(kind: str) -> None:
    assert ramp(kind).isna().tolist() == [False] * 5 + [True] + [False] * 6


@pytest.mark.parametrize("kind", KINDS)
def test_estimate_period_and_detect_gaps(kind: str) -> None:
    frame = ramp_frame(kind)
    assert estimate_period(frame["event_time"]).period == pd.Timedelta(minutes=10)
    report = detect_gaps(frame["event_time"], "10min")
    assert report.n_missing == 1
    assert report.missing.tolist() == [T0 + pd.Timedelta(minutes=30)]


@pytest.mark.parametrize("kind", KINDS)
def test_regularize_then_impute(kind: str) -> None:
    regular = regularize(ramp(kind), "10min")
    assert regular.index.tolist() == grid(13).tolist()
    expected = [0, 1, 2, np.nan, 4, 5, np.nan, 7, 8, 9, 10, 11, 12]
    np.testing.assert_array_equal(regular.to_numpy(), np.array(expected, dtype=float))
    filled = impute(regular, "linear")
    assert filled.dtype == np.float64
    np.testing.assert_allclose(filled.to_numpy(), np.arange(13.0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_impute_on_the_raw_index(kind: str) -> None:
    filled = impute(ramp(kind), "locf")
    assert filled.dtype == np.float64 and isinstance(filled.index, pd.DatetimeIndex)
    assert filled.tolist() == [0.0, 1.0, 2.0, 4.0, 5.0, 5.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]


@pytest.mark.parametrize("kind", KINDS)
def test_select_imputation_prefers_linear_on_a_ramp(kind: str) -> None:
    regular = regularize(ramp(kind), "10min")
    choice = select_imputation(regular, methods=("linear", "locf"), repeats=3)
    assert choice.method == "linear"
    assert choice.scores["linear"] == pytest.approx(0.0, abs=1e-9)
    assert choice.scores["locf"] == pytest.approx(1.0)  # every masked ramp value is one step off


@pytest.mark.parametrize("kind", KINDS)
def test_resample_down_and_up(kind: str) -> None:
    down = resample(ramp(kind), "20min", "mean")
    assert down.index.tolist() == grid(7, 20).tolist()
    assert down.tolist() == [0.5, 2.0, 4.5, 7.0, 8.5, 10.5, 12.0]  # slot 3 absent, slot 6 NaN ignored
    up = resample(ramp(kind), "5min", "interpolate")
    assert up.index.tolist() == grid(25, 5).tolist()
    np.testing.assert_allclose(up.to_numpy(), np.arange(25) / 2.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_align_and_correlations(kind: str) -> None:
    series = ramp(kind)
    aligned = align({"a": series, "b": series * 2})
    assert aligned.index.tolist() == grid(13).tolist()
    np.testing.assert_allclose(aligned["a"].to_numpy(), np.arange(13.0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(aligned["b"].to_numpy(), 2 * np.arange(13.0), rtol=0, atol=1e-12)
    corr, counts = correlations(pd.DataFrame({"a": series, "b": -series}))
    assert counts.loc["a", "b"] == 11
    assert corr.loc["a", "b"] == pytest.approx(-1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_profile(kind: str) -> None:
    series = ramp(kind)
    flags = pd.Series([False] * 11 + [True], index=series.index)
    stats = profile(series, flags, period="10min")
    assert stats["count"] == 11
    assert stats["mean"] == pytest.approx(69 / 11)  # (0 + ... + 12 - 3 - 6) / 11
    assert (stats["min"], stats["median"], stats["max"]) == (0.0, 7.0, 12.0)
    assert stats["missing_rate"] == pytest.approx(2 / 13)
    assert stats["duplicate_rate"] == 0.0
    assert stats["anomaly_rate"] == pytest.approx(1 / 11)


@pytest.mark.parametrize("kind", KINDS)
def test_scaler_and_windows(kind: str) -> None:
    series = ramp(kind)
    scaler = fit_scaler(series, "minmax")
    assert (float(scaler.center), float(scaler.scale)) == (0.0, 12.0)
    scaled = scaler.transform(series)
    assert scaled.iloc[-1] == 1.0 and np.isnan(scaled.iloc[5])
    x, y = make_windows(series, input_len=3, horizon=1)
    assert x.shape == (9, 3) and y.shape == (9, 1)
    assert x[0].tolist() == [0.0, 1.0, 2.0] and y[0].tolist() == [4.0]
    assert np.isnan(x[3, 2]) and y[-1].tolist() == [12.0]


def spiky_frame(kind: str) -> pd.DataFrame:
    values = [10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 100.0]
    frame = readings(
        [{"event_time": T0 + pd.Timedelta(minutes=10 * k), "value": v} for k, v in enumerate(values)]
    )
    return as_kind(frame, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_detect_anomalies_and_denoise(kind: str) -> None:
    series = spiky_frame(kind).set_index("event_time")["value"]
    # quartiles of the values are 10 and 11: fences 8.5 and 12.5, so only the 100 is flagged
    flags = detect_anomalies(series, method="iqr")
    assert flags["is_anomaly"].tolist() == [False] * 11 + [True]
    assert isinstance(flags.index, pd.DatetimeIndex) and flags.index.tolist() == grid(12).tolist()
    kept = denoise(series, flags, "drop")
    assert kept.tolist() == [10.0, 11.0] * 5 + [10.0]
    clipped = denoise(series, flags, "clip", lower=8.5, upper=12.5)
    assert clipped.tolist() == [10.0, 11.0] * 5 + [10.0, 12.5]


@pytest.mark.parametrize("kind", KINDS)
def test_decompose(kind: str) -> None:
    # an alternating +/-1 season of period 2 on a constant level 5: STL splits it exactly
    values = [6.0, 4.0] * 8
    frame = readings(
        [{"event_time": T0 + pd.Timedelta(minutes=10 * k), "value": v} for k, v in enumerate(values)]
    )
    parts = decompose(as_kind(frame, kind).set_index("event_time")["value"], periods=2)
    assert parts.columns.tolist() == ["trend", "seasonal", "resid"]
    assert isinstance(parts.index, pd.DatetimeIndex) and parts.index.tolist() == grid(16).tolist()
    np.testing.assert_allclose(parts["trend"], 5.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(parts["seasonal"], [1.0, -1.0] * 8, rtol=0, atol=1e-9)
    np.testing.assert_allclose(parts["resid"], 0.0, rtol=0, atol=1e-9)
