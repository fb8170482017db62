"""Unit tests of the Connect JSON envelope encoder (no services)."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest

from tsplatform.ingest.decode import decode_records
from tsplatform.ingest.envelope import (
    CONNECT_SCHEMA,
    encodable_rows,
    encode_reading,
    encode_readings,
    message_key,
    message_keys,
)
from tsplatform.ingest.field_mapping import FieldMapping, SchemaCache
from tsplatform_tests.ingest.test_decode import CONTRACT_PAYLOAD, CONTRACT_SCHEMA

LEVELS = [700.0, 800.0, 1000.0, 1500.0, 0.0, 0.0, 0.0, 0.0]


def test_schema_is_the_contract_of_the_architecture() -> None:
    assert CONNECT_SCHEMA == CONTRACT_SCHEMA
    assert [f["field"] for f in CONNECT_SCHEMA["fields"]] == list(CONTRACT_PAYLOAD)


def test_encode_reading_reproduces_the_contract_record() -> None:
    record = encode_reading("광 주 A", "C02", 1669102545000, 460.0, ss_id=2, unit="ppm", rstart=0.0,
                            rend=20000.0, rlev=LEVELS)  # fmt: skip
    assert orjson.loads(record) == {"schema": CONTRACT_SCHEMA, "payload": CONTRACT_PAYLOAD}
    assert "광 주 A".encode() in record  # UTF-8, not \\u escapes
    bare = encode_reading("광 주 A", "C02", 1669102545000, 460.0, ss_id=2, unit="ppm", rstart=0.0,
                          rend=20000.0, rlev=LEVELS, envelope=False)  # fmt: skip
    assert orjson.loads(bare) == CONTRACT_PAYLOAD


def test_unknown_required_attributes_are_null_and_marked_optional() -> None:
    record = orjson.loads(encode_reading("p", "t", pd.Timestamp("2024-01-01T00:00:00Z"), 1.5, rend=10.0))
    fields = {f["field"]: f for f in record["schema"]["fields"]}
    assert record["payload"]["ss_id"] is None and record["payload"]["rstart"] is None
    assert fields["ss_id"]["optional"] is True and fields["rstart"]["optional"] is True
    assert fields["rend"]["optional"] is False and record["payload"]["rend"] == 10.0
    assert fields["event_time"]["optional"] is False
    assert [f["field"] for f in record["schema"]["fields"]] == list(CONTRACT_PAYLOAD)
    assert record["payload"]["event_time"] == 1704067200000


@pytest.mark.parametrize(
    ("instant", "expected_ms"),
    [
        (1669102545000, 1669102545000),
        (pd.Timestamp("2022-11-22T07:35:45Z"), 1669102545000),
        (pd.Timestamp("2022-11-22T16:35:45+09:00"), 1669102545000),
        (pd.Timestamp("2022-11-22T07:35:45"), 1669102545000),  # naive = UTC
        ("2022-11-22T07:35:45.250Z", 1669102545250),
    ],
)
def test_event_time_is_epoch_ms_utc(instant: object, expected_ms: int) -> None:
    payload = orjson.loads(encode_reading("p", "t", instant, 1.0, envelope=False))
    assert payload["event_time"] == expected_ms


def test_bad_readings_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not finite"):
        encode_reading("p", "t", 0, float("nan"))
    with pytest.raises(ValueError, match="strings"):
        encode_reading(5, "t", 0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an instant"):
        encode_reading("p", "t", True, 1.0)
    frame = pd.DataFrame({"position": ["a", None, "c", "d"], "type_name": ["T"] * 4,
                          "event_time": pd.to_datetime(["2024-01-01", "2024-01-01", None, "2024-01-01"]),
                          "value": [1.0, 2.0, 3.0, np.inf]})  # fmt: skip
    assert encodable_rows(frame).tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="3 row"):
        encode_readings(frame)
    assert len(encode_readings(frame[encodable_rows(frame)])) == 1


def test_encode_readings_matches_encode_reading_row_by_row() -> None:
    frame = pd.DataFrame({
        "position": ["광 주 A", "../../etc/x", "b"],
        "type_name": ["C02", "T", "H"],
        "event_time": pd.to_datetime(
            ["2022-11-22T07:35:45Z", "2022-11-22T07:35:46.5Z", "2022-11-23T00:00:00Z"], format="ISO8601"
        ),
        "value": [460, 21.5, -3.25],
        "ss_id": [2, None, 4],
        "unit": ["ppm", None, "%"],
        "rstart": [0.0, np.nan, -40.0],
        "rend": [20000.0, 50.0, 100.0],
        **{f"rlev{i}": [LEVELS[i - 1], np.nan, 1.0] for i in range(1, 9)},
    })  # fmt: skip
    batch = encode_readings(frame)
    for row, record in zip(frame.to_dict("records"), batch, strict=True):
        levels = [None if pd.isna(row[f"rlev{i}"]) else row[f"rlev{i}"] for i in range(1, 9)]
        expected = encode_reading(
            row["position"], row["type_name"], row["event_time"], row["value"],
            ss_id=None if pd.isna(row["ss_id"]) else int(row["ss_id"]), unit=row["unit"],
            rstart=None if pd.isna(row["rstart"]) else row["rstart"], rend=row["rend"], rlev=levels,
        )  # fmt: skip
        assert orjson.loads(record) == orjson.loads(expected)
    bare = encode_readings(frame, envelope=False)
    assert [orjson.loads(b) for b in bare] == [orjson.loads(r)["payload"] for r in batch]


def test_encoded_readings_round_trip_through_the_decoder() -> None:
    n = 500
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({
        "position": [f"room {i % 7} 광" for i in range(n)],
        "type_name": ["CO2" if i % 2 else "temp" for i in range(n)],
        "event_time": pd.Timestamp("2024-03-01T00:00:00Z") + pd.to_timedelta(np.arange(n) * 61.5, unit="s"),
        "value": rng.normal(600, 80, n),
        "unit": "ppm",
        "ss_id": 9,
    })  # fmt: skip
    for envelope in (True, False):
        values = encode_readings(frame, envelope=envelope)
        keys = message_keys(frame)
        batch = decode_records(values, keys=keys, topic="t", partitions=np.zeros(n, dtype=int),
                               offsets=np.arange(n), ingested_at=pd.Timestamp("2024-03-02T00:00:00Z"),
                               cache=SchemaCache(FieldMapping()))  # fmt: skip
        assert batch.quarantine.num_rows == 0
        out = batch.readings
        assert out.column("position").to_pylist() == frame["position"].tolist()
        assert out.column("type_name").to_pylist() == frame["type_name"].tolist()
        expected_ms = frame["event_time"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
        assert np.array_equal(out.column("event_time").cast(pa.int64()).to_numpy(), expected_ms)
        assert np.array_equal(out.column("value").to_numpy(), frame["value"].to_numpy())
        assert set(out.column("ss_id").to_pylist()) == {9} and set(out.column("unit").to_pylist()) == {"ppm"}


def test_message_key_is_the_json_key_pair() -> None:
    assert message_key("광 주 A", "C02") == '["광 주 A","C02"]'.encode()
    assert orjson.loads(message_key('a"b', "\\")) == ['a"b', "\\"]
    frame = pd.DataFrame({"position": ["a", "b", "a"], "type_name": ["T", "T", "T"]})
    keys = message_keys(frame)
    assert keys == [message_key("a", "T"), message_key("b", "T"), message_key("a", "T")]
    assert keys[0] != keys[1]
