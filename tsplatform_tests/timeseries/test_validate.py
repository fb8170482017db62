"""validate_readings (one reason per rejected row, pass-through columns) and deduplicate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsplatform.ids import series_id
from tsplatform.timeseries import deduplicate, readings_schema, validate_readings

DATA = Path(__file__).resolve().parents[1] / "data"
SID = series_id("광 주 A", "C02")
NOW = pd.Timestamp("2025-01-01", tz="UTC")
DAY = dt.date(2022, 11, 22)
IN_DAY_MS = 1669102545000  # 2022-11-22 07:35:45 UTC


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {
        "position": "광 주 A",
        "type_name": "C02",
        "series_id": SID,
        "event_time": IN_DAY_MS,
        "value": 460.0,
        "rstart": 0.0,
        "rend": 20000.0,
        "ss_id": 2,
        "unit": "ppm",
        "topic": "t",
        "partition": 0,
    }
    return pd.DataFrame([{**base, "offset": i, **row} for i, row in enumerate(rows)])


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"event_time": "not a time"}, "unparseable_timestamp"),
        ({"event_time": None}, "unparseable_timestamp"),
        ({"position": None}, "schema:position"),
        ({"type_name": 7}, "schema:type_name"),
        ({"value": "abc"}, "schema:value"),
        ({"rstart": "low"}, "schema:rstart"),
        ({"value": np.nan}, "non_finite_value"),
        ({"value": np.inf}, "non_finite_value"),
        ({"event_time": "2030-01-01T00:00:00Z"}, "future_timestamp"),
        ({"event_time": IN_DAY_MS - 86_400_000}, "outside_day"),
        ({"value": 20000.5}, "value_out_of_range"),
        ({"value": -1.0}, "value_out_of_range"),
    ],
)
def test_each_bad_row_is_rejected_with_its_reason(row: dict, reason: str) -> None:
    df = _frame([{}, row])
    valid, rejected = validate_readings(df, day=DAY, now=NOW)
    assert len(valid) == 1 and len(rejected) == 1
    assert rejected["reason"].tolist() == [reason]
    assert set(df.columns) | {"reason"} == set(rejected.columns)
    assert rejected["offset"].tolist() == [1]  # the row keeps its own columns


def test_valid_rows_are_typed_and_pass_through_untouched() -> None:
    df = _frame(
        [
            {},
            {"event_time": "2022-11-22T18:00:00+09:00"},
            {"event_time": pd.Timestamp("2022-11-22 12:00")},
            {"rstart": None, "rend": None, "value": 1e9},
        ]
    )
    valid, rejected = validate_readings(df, day=DAY, now=NOW)
    assert rejected.empty
    assert str(valid["event_time"].dtype) == "datetime64[ms, UTC]"
    assert valid["value"].dtype == np.float64
    expected = pd.to_datetime(
        ["2022-11-22 07:35:45", "2022-11-22 09:00:00", "2022-11-22 12:00:00", "2022-11-22 07:35:45"], utc=True
    )
    assert valid["event_time"].tolist() == expected.tolist()
    assert valid["value"].tolist() == [460.0, 460.0, 460.0, 1e9]  # no range known for the last row
    for col in ("ss_id", "unit", "topic", "partition", "offset"):
        assert valid[col].tolist() == df[col].tolist()
    readings_schema.validate(valid)  # the output satisfies the published schema


def test_timezone_offsets_and_epoch_milliseconds_are_parsed_to_utc() -> None:
    df = _frame(
        [
            {"event_time": "2022-11-22T16:35:45+09:00"},
            {"event_time": IN_DAY_MS},
            {"event_time": pd.Timestamp("2022-11-22 08:35:45", tz="Europe/Paris")},
        ]
    )
    valid, _ = validate_readings(df, day=DAY, now=NOW)
    assert valid["event_time"].nunique() == 1
    assert valid["event_time"].iloc[0] == pd.Timestamp("2022-11-22 07:35:45", tz="UTC")


def test_mixed_offset_strings_are_parsed_one_by_one() -> None:
    # pandas' ISO8601 fast path would apply the first string's +09:00 to the naive second string
    df = _frame([{"event_time": "2022-11-22T16:35:45+09:00"}, {"event_time": "2022-11-22 12:00:00"}])
    valid, _ = validate_readings(df, day=DAY, now=NOW)
    assert valid["event_time"].tolist() == [
        pd.Timestamp("2022-11-22 07:35:45", tz="UTC"),
        pd.Timestamp("2022-11-22 12:00", tz="UTC"),
    ]


def test_outside_day_is_only_checked_when_a_day_is_given() -> None:
    df = _frame([{"event_time": IN_DAY_MS - 86_400_000}])
    assert len(validate_readings(df, now=NOW)[0]) == 1
    assert validate_readings(df, day=DAY, now=NOW)[1]["reason"].tolist() == ["outside_day"]


def test_default_now_rejects_the_future() -> None:
    future = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=2)
    valid, rejected = validate_readings(_frame([{"event_time": future.isoformat()}]))
    assert valid.empty and rejected["reason"].tolist() == ["future_timestamp"]


def test_missing_required_column_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"required column.*value"):
        validate_readings(_frame([{}]).drop(columns=["value"]))


def test_all_rows_accounted_for() -> None:
    rows = [{}, {"value": np.inf}, {"event_time": "x"}, {}, {"value": -5.0}]
    valid, rejected = validate_readings(_frame(rows), day=DAY, now=NOW)
    assert sorted(valid.index.tolist() + rejected.index.tolist()) == list(range(len(rows)))


# --- deduplicate --------------------------------------------------------------------------------------


def test_exact_then_same_timestamp_duplicates_in_offset_order() -> None:
    later = IN_DAY_MS + 1000
    df = _frame([{"value": 1.0}, {"value": 2.0}, {"value": 1.0}, {"value": 3.0, "event_time": later}])
    df["offset"] = [5, 3, 9, 1]  # redelivery of offset 5 at offset 9; offset 3 arrived first
    kept, dups = deduplicate(df)
    assert kept["offset"].tolist() == [3, 1]  # input order of the kept rows
    reasons = dict(zip(dups["offset"], dups["reason"], strict=True))
    assert reasons == {5: "same_timestamp", 9: "exact_duplicate"}
    assert len(kept) + len(dups) == len(df)


def test_without_offsets_the_first_in_input_order_wins() -> None:
    df = _frame([{"value": 1.0}, {"value": 2.0}]).drop(columns=["offset"])
    kept, dups = deduplicate(df)
    assert kept["value"].tolist() == [1.0]
    assert dups["reason"].tolist() == ["same_timestamp"]


def test_other_series_at_the_same_time_are_not_duplicates() -> None:
    df = _frame([{}, {"series_id": series_id("B", "C02"), "position": "B"}])
    kept, dups = deduplicate(df)
    assert len(kept) == 2 and dups.empty


def test_nab_dst_rows_are_same_timestamp_duplicates() -> None:
    raw = pd.read_csv(DATA / "nab_ec2_request_latency_2014-03-08_09.csv")
    df = pd.DataFrame(
        {
            "position": "ec2",
            "type_name": "latency",
            "series_id": series_id("ec2", "latency"),
            "event_time": pd.to_datetime(raw["timestamp"]).dt.tz_localize("UTC"),
            "value": raw["value"],
            "offset": np.arange(len(raw)),
        }
    )
    valid, rejected = validate_readings(df, now=NOW)
    assert rejected.empty
    kept, dups = deduplicate(valid)
    assert len(dups) == 11 and set(dups["reason"]) == {"same_timestamp"}
    assert (dups["event_time"] == pd.Timestamp("2014-03-09 03:00", tz="UTC")).all()
    assert kept["event_time"].is_unique
    first_at_3 = kept.loc[kept["event_time"] == pd.Timestamp("2014-03-09 03:00", tz="UTC"), "value"]
    assert first_at_3.tolist() == [raw["value"].iloc[312]]  # the first of the 12 rows (file line 558)
