"""Unit tests of the Kafka record decoder (no services)."""

from __future__ import annotations

import random
import re

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest

from tsplatform.ids import is_series_id, series_id
from tsplatform.ingest import columnar_parse, field_mapping
from tsplatform.ingest import decode as decode_module
from tsplatform.ingest.decode import decode_records
from tsplatform.ingest.field_mapping import FieldMapping, SchemaCache, schema_incompatibility
from tsplatform.ingest.schema import QUARANTINE_SCHEMA, RAW_READINGS_SCHEMA

NOW = pd.Timestamp("2026-01-01T00:00:00Z")
INGESTED = pd.Timestamp("2026-01-01T00:05:00Z")
NOW_MS = int(NOW.value // 10**6)

#: The record of ARCHITECTURE.md ("The message contract"), verbatim.
CONTRACT_SCHEMA = {
    "type": "struct",
    "name": "SENSOR_DATA_VIEW",
    "optional": False,
    "fields": [
        {"type": "int64", "optional": False, "field": "ss_id"},
        {"type": "float", "optional": False, "field": "rstart"},
        *[{"type": "float", "optional": i > 4, "field": f"rlev{i}"} for i in range(1, 9)],
        {"type": "float", "optional": False, "field": "rend"},
        {"type": "int64", "optional": False, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1,
         "field": "event_time"},
        {"type": "float", "optional": True, "field": "input_data"},
        {"type": "string", "optional": False, "field": "position"},
        {"type": "string", "optional": False, "field": "type_name"},
        {"type": "string", "optional": True, "field": "unit"},
    ],
}  # fmt: skip
CONTRACT_PAYLOAD = {
    "ss_id": 2, "rstart": 0.0, "rlev1": 700.0, "rlev2": 800.0, "rlev3": 1000.0, "rlev4": 1500.0,
    "rlev5": 0.0, "rlev6": 0.0, "rlev7": 0.0, "rlev8": 0.0, "rend": 20000.0, "event_time": 1669102545000,
    "input_data": 460.0, "position": "광 주 A", "type_name": "C02", "unit": "ppm",
}  # fmt: skip


def envelope(payload: dict, schema: dict | None = None) -> bytes:
    return orjson.dumps({"schema": schema or CONTRACT_SCHEMA, "payload": payload})


def payload(**changes: object) -> dict:
    out = dict(CONTRACT_PAYLOAD)
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def decode(values: list[bytes | None], mapping: FieldMapping = FieldMapping(), **kwargs: object):
    n = len(values)
    return decode_records(
        values,
        keys=kwargs.pop("keys", None),  # type: ignore[arg-type]
        topic="sensor_data_source_SENSOR_DATA_VIEW",
        partitions=kwargs.pop("partitions", [1] * n),  # type: ignore[arg-type]
        offsets=kwargs.pop("offsets", list(range(100, 100 + n))),  # type: ignore[arg-type]
        ingested_at=INGESTED,
        mapping=mapping,
        now=NOW,
        cache=kwargs.pop("cache", SchemaCache(mapping)),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def single_reason(value: bytes | None, mapping: FieldMapping = FieldMapping()) -> str:
    batch = decode([value], mapping)
    assert batch.readings.num_rows == 0, batch.readings.to_pylist()
    assert batch.quarantine.num_rows == 1
    return batch.quarantine.column("reason")[0].as_py()


def test_contract_record_decodes_to_one_reading_with_provenance() -> None:
    batch = decode([envelope(CONTRACT_PAYLOAD)], keys=[b'["k"]'], partitions=[3], offsets=[42])
    assert batch.readings.schema.equals(RAW_READINGS_SCHEMA)
    assert batch.quarantine.schema.equals(QUARANTINE_SCHEMA)
    assert batch.quarantine.num_rows == 0
    row = batch.readings.to_pylist()[0]
    assert row["position"] == "광 주 A" and row["type_name"] == "C02"
    assert row["series_id"] == series_id("광 주 A", "C02")
    assert row["event_time"] == pd.Timestamp(1669102545000, unit="ms", tz="UTC").to_pydatetime()
    assert row["value"] == 460.0 and row["ss_id"] == 2 and row["unit"] == "ppm"
    ranges = (row["rstart"], row["rend"], row["rlev1"], row["rlev4"], row["rlev8"])
    assert ranges == (0.0, 20000.0, 700.0, 1500.0, 0.0)
    assert (row["topic"], row["partition"], row["offset"]) == ("sensor_data_source_SENSOR_DATA_VIEW", 3, 42)
    assert row["ingested_at"] == INGESTED.to_pydatetime()
    assert re.fullmatch(r"[0-9a-f]{16}", row["schema_id"]), row["schema_id"]


def test_empty_batch_has_exact_schemas() -> None:
    batch = decode([])
    assert batch.readings.schema.equals(RAW_READINGS_SCHEMA) and batch.readings.num_rows == 0
    assert batch.quarantine.schema.equals(QUARANTINE_SCHEMA) and batch.quarantine.num_rows == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "empty_message"),
        (b"", "empty_message"),
        (b"{", "malformed_json:"),
        (b'{"schema": {}, "payload": ', "malformed_json:"),
        (b"\xff\xfe", "malformed_json:"),
        (b"[1, 2]", "not_an_object:array"),
        (b"5", "not_an_object:number"),
        (b'"text"', "not_an_object:string"),
        (envelope(None), "empty_message:null payload"),  # type: ignore[arg-type]
        (orjson.dumps({"schema": CONTRACT_SCHEMA, "payload": [1]}), "not_an_object:payload is array"),
        (envelope(payload(event_time=...)), "missing_field:event_time"),
        (envelope(payload(input_data=None)), "missing_field:input_data"),
        (envelope(payload(position=...)), "missing_field:position"),
        (envelope(payload(type_name=None)), "missing_field:type_name"),
        (envelope(payload(event_time="yesterday")), "wrong_type:event_time"),
        (envelope(payload(input_data="460")), "wrong_type:input_data"),
        (envelope(payload(input_data=True)), "wrong_type:input_data"),
        (envelope(payload(position=7)), "wrong_type:position"),
        (envelope(payload(ss_id=2.5)), "wrong_type:ss_id"),
        (envelope(payload(ss_id=1)).replace(b'"ss_id":1', b'"ss_id":1' + b"0" * 21), "wrong_type:ss_id"),
        (envelope(payload(unit=["ppm"])), "wrong_type:unit"),
        (envelope(payload(event_time=-1000)), "absurd_timestamp:event_time=1969-12-31T23:59:59"),
        (envelope(payload(event_time=NOW_MS + 2 * 86_400_000)), "absurd_timestamp:event_time=2026"),
        (envelope(payload(event_time=10**18)), "absurd_timestamp:event_time"),
        (envelope(payload()).replace(b":460.0", b":NaN"), "non_finite_value:input_data"),
        (envelope(payload()).replace(b":460.0", b":1e400"), "malformed_json:"),
        (envelope(payload()).replace(b":1669102545000", b":NaN"), "unparseable_timestamp:event_time"),
        (envelope(payload()).replace(b'"rlev2":800.0', b'"rlev2":Infinity'), "non_finite_value:rlev2"),
        (envelope(payload()).replace("광".encode(), b"\xff"), "malformed_json:"),
    ],
)
def test_each_bad_record_is_quarantined_with_its_reason(value: bytes | None, expected: str) -> None:
    # Alone, the record takes the per-record path (first sight of its schema) ...
    reason = single_reason(value)
    assert reason.startswith(expected), reason
    # ... after a good record of the contract schema, the columnar fast path: same reason code.
    batch = decode([envelope(CONTRACT_PAYLOAD), value])
    assert batch.readings.column("offset").to_pylist() == [100]
    fast_reason = batch.quarantine.column("reason")[0].as_py()
    assert fast_reason.startswith(expected.split(":")[0] + ":" if ":" in expected else expected), fast_reason


def test_quarantine_keeps_original_bytes_key_and_provenance() -> None:
    bad = envelope(payload(input_data="x"))
    batch = decode([envelope(CONTRACT_PAYLOAD), bad, None], keys=[b"k0", b"k1", None], partitions=[0, 1, 2],
                   offsets=[7, 8, 9])  # fmt: skip
    q = batch.quarantine.to_pylist()
    assert [r["offset"] for r in q] == [8, 9]
    assert q[0]["raw"] == bad and q[0]["key"] == b"k1" and q[0]["partition"] == 1
    assert q[1]["raw"] is None and q[1]["key"] is None and q[1]["reason"] == "empty_message"
    assert all(r["topic"] == "sensor_data_source_SENSOR_DATA_VIEW" for r in q)
    assert all(r["ingested_at"] == INGESTED.to_pydatetime() for r in q)


def test_incompatible_schemas_are_quarantined_and_optional_additions_accepted() -> None:
    as_string = {
        **CONTRACT_SCHEMA,
        "fields": [
            {**f, "type": "string"} if f["field"] == "event_time" else f for f in CONTRACT_SCHEMA["fields"]
        ],
    }
    no_value = {**CONTRACT_SCHEMA,
                "fields": [f for f in CONTRACT_SCHEMA["fields"] if f["field"] != "input_data"]}  # fmt: skip
    with_extra = {**CONTRACT_SCHEMA, "fields": [
        *CONTRACT_SCHEMA["fields"], {"type": "string", "optional": True, "field": "site"}]}  # fmt: skip
    values = [
        envelope(CONTRACT_PAYLOAD),
        envelope(payload(event_time="2022-01-01"), as_string),
        envelope(payload(input_data=...), no_value),
        envelope(payload(site="north"), with_extra),
        envelope(CONTRACT_PAYLOAD),
    ]
    batch = decode(values)
    reasons = batch.quarantine.column("reason").to_pylist()
    assert reasons[0].startswith("incompatible_schema:event_time declared string")
    assert reasons[1] == "incompatible_schema:required field input_data missing from the schema"
    assert batch.quarantine.column("offset").to_pylist() == [101, 102]
    ids = batch.readings.column("schema_id").to_pylist()
    assert batch.readings.column("offset").to_pylist() == [100, 103, 104]
    assert ids[0] == ids[2] != ids[1]
    assert schema_incompatibility({"type": "array"}, FieldMapping()) is not None


def test_schema_verdict_is_computed_once_per_distinct_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    original = field_mapping.schema_incompatibility

    def counting(schema: object, mapping: FieldMapping) -> str | None:
        calls.append(schema)
        return original(schema, mapping)

    monkeypatch.setattr(field_mapping, "schema_incompatibility", counting)  # called by SchemaCache
    other = {**CONTRACT_SCHEMA, "name": "OTHER_VIEW"}
    values = [envelope(payload(event_time=1669102545000 + i)) for i in range(500)]
    values += [envelope(payload(event_time=1669102545000 + i), other) for i in range(500)]
    batch = decode(values)
    assert batch.readings.num_rows == 1000
    assert len(calls) == 2
    assert len(set(batch.readings.column("schema_id").to_pylist())) == 2


def test_every_record_lands_in_exactly_one_table_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "CHUNK_RECORDS", 16)  # records routed per chunk
    monkeypatch.setattr(columnar_parse, "CHUNK_RECORDS", 16)  # lines read by Arrow per chunk
    rng = random.Random(7)
    values: list[bytes | None] = []
    expected_bad: set[int] = set()
    bad_kinds = [
        b"{oops",
        envelope(payload(input_data="x")),
        envelope(payload(position=None)),
        b'{"a": 1} {"b": 2}',  # two objects on one line: Arrow reads 2 rows, error without a row number
        None,
        envelope(payload(ss_id=1.5)),
        envelope(payload()).replace(b'"input_data":460.0', b'"input_data":-Infinity'),
    ]
    for i in range(600):
        if rng.random() < 0.12:
            values.append(rng.choice(bad_kinds))
            expected_bad.add(i)
        else:
            values.append(envelope(payload(event_time=1669102545000 + i * 1000, input_data=float(i))))
    batch = decode(values, offsets=list(range(600)))
    good_offsets = batch.readings.column("offset").to_pylist()
    bad_offsets = batch.quarantine.column("offset").to_pylist()
    assert good_offsets == sorted(good_offsets) and bad_offsets == sorted(bad_offsets)
    assert set(bad_offsets) == expected_bad
    assert sorted(good_offsets + bad_offsets) == list(range(600))
    assert batch.readings.column("value").to_pylist() == [float(i) for i in good_offsets]


def test_series_keys_are_kept_exactly_and_ids_are_path_safe() -> None:
    keys = [("광 주 A", "C02"), ("../../etc/x", "T"), ("x" * 256, "y" * 3), (" lead space", "tab\there"),
            ('quote"and\\back', "emoji 🌡"), ("nul\x00byte", "/abs/path")]  # fmt: skip
    values = [envelope(payload(position=p, type_name=t)) for p, t in keys]
    batch = decode(values)
    rows = batch.readings.to_pylist()
    assert [(r["position"], r["type_name"]) for r in rows] == keys
    for row, (p, t) in zip(rows, keys, strict=True):
        assert row["series_id"] == series_id(p, t)
        assert is_series_id(row["series_id"])


@pytest.mark.security
def test_oversized_names_and_units_are_quarantined_with_a_reason() -> None:
    big = "광" * 600_000  # a 600k-character (1.8 MB) series name
    values = [
        envelope(payload(position=big)),
        envelope(payload(type_name="t" * 257)),
        envelope(payload(unit="u" * 300)),
        orjson.dumps(payload(position="p" * 257)),  # bare payload, per-record route
        envelope(payload(position="광" * 256, type_name="t" * 256, unit="u" * 256)),  # at the limit
        envelope(payload(position="short")),
    ]
    batch = decode(values)
    reasons = batch.quarantine.column("reason").to_pylist()
    assert reasons == [
        "oversized_field:position (600000 characters, limit 256)",
        "oversized_field:type_name (257 characters, limit 256)",
        "oversized_field:unit (300 characters, limit 256)",
        "oversized_field:position (257 characters, limit 256)",
    ]
    assert batch.quarantine.column("raw").to_pylist() == values[:4]  # original bytes kept
    assert batch.readings.column("position").to_pylist() == ["광" * 256, "short"]
    # the limit is configurable
    small = decode([envelope(payload(position="abcd"))], max_text_chars=3)
    reason = "oversized_field:position (4 characters, limit 3)"
    assert small.quarantine.column("reason").to_pylist() == [reason]
    with pytest.raises(ValueError, match="max_text_chars"):
        decode([envelope(payload())], max_text_chars=0)


def test_max_text_chars_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from tsplatform.settings import DEFAULT_MAX_TEXT_CHARS, Settings

    assert Settings().max_text_chars == DEFAULT_MAX_TEXT_CHARS == 256
    monkeypatch.setenv("TSPLATFORM_MAX_TEXT_CHARS", "64")
    assert Settings().max_text_chars == 64


def test_bare_payloads_get_a_fingerprint_of_their_fields() -> None:
    base = orjson.dumps(CONTRACT_PAYLOAD)
    same_fields = orjson.dumps(payload(input_data=1.0, position="other"))
    extra = orjson.dumps(payload(site="north"))
    conflict_a = orjson.dumps(payload(extra=1))
    conflict_b = orjson.dumps(payload(extra="one"))  # type conflict with conflict_a in an unmapped field
    batch = decode([base, same_fields, extra, conflict_a, conflict_b])
    assert batch.quarantine.num_rows == 0
    ids = batch.readings.column("schema_id").to_pylist()
    assert ids[0] == ids[1] and len({ids[0], ids[2], ids[3], ids[4]}) == 4
    again = decode([base]).readings.column("schema_id").to_pylist()
    assert again == [ids[0]]
    assert ids[0] != decode([envelope(CONTRACT_PAYLOAD)]).readings.column("schema_id")[0].as_py()


def test_non_compact_envelopes_take_the_slow_path_and_decode() -> None:
    record = {"schema": CONTRACT_SCHEMA, "payload": CONTRACT_PAYLOAD}
    pretty = orjson.dumps(record, option=orjson.OPT_INDENT_2)
    reordered = orjson.dumps({"payload": CONTRACT_PAYLOAD, "schema": CONTRACT_SCHEMA})
    batch = decode([pretty, reordered, envelope(CONTRACT_PAYLOAD)])
    assert batch.quarantine.num_rows == 0
    assert batch.readings.column("value").to_pylist() == [460.0] * 3
    assert len(set(batch.readings.column("schema_id").to_pylist())) == 1


def test_field_mapping_for_another_table() -> None:
    mapping = FieldMapping.from_dict({
        "time": "ts", "value": "reading", "series_keys": "device", "type_name": "temperature",
        "time_unit": "s", "attributes": {"unit": "uom"},
    })  # fmt: skip
    values = [
        orjson.dumps({"ts": 1700000000.25, "reading": 21, "device": "dev-1", "uom": "C"}),
        orjson.dumps({"ts": 1700000001, "reading": 22.5, "device": "dev-2"}),
        orjson.dumps({"ts": 1700000001, "reading": 22.5}),
        orjson.dumps({"ts": 1700000001, "reading": 22.5, "device": "dev-3", "ss_id": "ignored, not mapped"}),
    ]
    batch = decode(values, mapping)
    rows = batch.readings.to_pylist()
    assert [(r["position"], r["type_name"]) for r in rows] == [(f"dev-{i}", "temperature") for i in (1, 2, 3)]
    assert rows[0]["event_time"] == pd.Timestamp(1700000000250, unit="ms", tz="UTC").to_pydatetime()
    assert rows[0]["unit"] == "C" and rows[1]["unit"] is None and rows[0]["ss_id"] is None
    assert batch.quarantine.column("reason").to_pylist() == ["missing_field:device"]


@pytest.mark.parametrize(
    ("unit", "raw", "expected_ms"),
    [
        ("ms", 1669102545123, 1669102545123),
        ("s", 1669102545, 1669102545000),
        ("s", 1669102545.1237, 1669102545124),
        ("us", 1669102545123456, 1669102545123),
        ("iso", "2022-11-22T07:35:45.123Z", 1669102545123),
        ("iso", "2022-11-22T16:35:45+09:00", 1669102545000),
        ("iso", "2022-11-22 07:35:45", 1669102545000),
    ],
)
def test_time_units(unit: str, raw: object, expected_ms: int) -> None:
    mapping = FieldMapping(time_unit=unit)  # type: ignore[arg-type]
    batch = decode([orjson.dumps(payload(event_time=raw))], mapping)
    assert batch.quarantine.num_rows == 0, batch.quarantine.to_pylist()
    got = batch.readings.column("event_time").cast(pa.int64())[0].as_py()
    assert got == expected_ms


def test_unparseable_iso_timestamp_and_iso_schema_type() -> None:
    mapping = FieldMapping(time_unit="iso")
    assert single_reason(orjson.dumps(payload(event_time="22/11/2022 noon")), mapping).startswith(
        "unparseable_timestamp:event_time"
    )
    assert single_reason(envelope(payload(event_time="2022-11-22T07:35:45Z")), mapping).startswith(
        "incompatible_schema:event_time declared int64"
    )


def test_inconsistent_argument_lengths_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="same length"):
        decode_records([b"{}"], keys=None, topic="t", partitions=[0, 1], offsets=[0], ingested_at=INGESTED)


def test_field_mapping_validation() -> None:
    with pytest.raises(ValueError, match="time_unit"):
        FieldMapping(time_unit="days")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="series_keys"):
        FieldMapping(series_keys=("a", "b", "c"))
    with pytest.raises(ValueError, match="mapped twice"):
        FieldMapping(value="event_time")
    with pytest.raises(ValueError, match="unknown FieldMapping key"):
        FieldMapping.from_dict({"tme": "x"})
    with pytest.raises(ValueError, match="unknown attribute"):
        FieldMapping.from_dict({"attributes": {"colour": "c"}})


def test_large_batch_matches_per_record_expectations() -> None:
    n = 20_000
    rng = np.random.default_rng(3)
    times = 1669102545000 + np.sort(rng.integers(0, 10**9, n))
    values = rng.normal(500, 50, n)
    records = [envelope(payload(event_time=int(t), input_data=float(v), position=f"p{i % 25}"))
               for i, (t, v) in enumerate(zip(times, values, strict=True))]  # fmt: skip
    batch = decode(records, offsets=list(range(n)))
    assert batch.quarantine.num_rows == 0
    assert np.array_equal(batch.readings.column("event_time").cast(pa.int64()).to_numpy(), times)
    assert np.array_equal(batch.readings.column("value").to_numpy(), values)
    ids = batch.readings.column("series_id").to_pylist()
    assert len(set(ids)) == 25 and ids[:25] == [series_id(f"p{i}", "C02") for i in range(25)]


def test_uniform_fast_route_and_per_record_route_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        envelope(payload(event_time=1669102545000 + i, input_data=i / 7, position=f"p {i % 9}", unit=None))
        for i in range(3000)
    ]
    per_record_calls: list[int] = []
    split = decode_module._split_records

    def counting_split(*args: object) -> None:
        per_record_calls.append(1)
        split(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(decode_module, "_split_records", counting_split)
    fast = decode(records)
    assert per_record_calls == []  # every chunk took the uniform route
    monkeypatch.setattr(decode_module, "_read_uniform_chunk", lambda *args: False)
    slow = decode(records)
    assert per_record_calls == [1]
    assert fast.quarantine.num_rows == slow.quarantine.num_rows == 0
    assert fast.readings.equals(slow.readings)
    assert fast.readings.num_rows == 3000


def test_flood_of_bad_records_is_screened_with_the_same_reasons() -> None:
    rng = random.Random(5)
    bad_kinds = [
        envelope(payload(input_data="x")),
        envelope(payload(position=3)),
        envelope(payload(ss_id=0.5)),
        envelope(payload(type_name=None)),
        envelope(payload()).replace(b'"payload":{', b'"payload":{"oops"'),
        envelope(payload(event_time=-5)),
        envelope(payload()).replace(b":460.0", b":NaN"),
    ]
    values: list[bytes | None] = []
    for i in range(2000):
        if rng.random() < 0.4:
            values.append(rng.choice(bad_kinds))
        else:
            values.append(envelope(payload(event_time=1669102545000 + i, input_data=float(i))))
    assert sum(v in bad_kinds for v in values) > 10 * columnar_parse.ROW_WALK_LIMIT
    batch = decode(values, offsets=list(range(2000)))
    offsets, reasons = (
        batch.quarantine.column("offset").to_pylist(),
        batch.quarantine.column("reason").to_pylist(),
    )
    got = dict(zip(offsets, reasons, strict=True))
    alone = {kind: single_reason(kind).split(" ")[0] for kind in bad_kinds}
    expected = {i: alone[v] for i, v in enumerate(values) if v in bad_kinds}
    assert {i: r.split(" ")[0] for i, r in got.items()} == expected
    assert batch.readings.column("offset").to_pylist() == [i for i in range(2000) if i not in expected]
    assert batch.readings.column("value").to_pylist() == [float(i) for i in range(2000) if i not in expected]


def test_series_id_cache_bound_keeps_ids_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "_SERIES_ID_CACHE_SIZE", 3)
    monkeypatch.setattr(decode_module, "_SERIES_IDS", {})
    for round_ in range(3):
        keys = [(f"pos {round_} {i}", f"type {i % 2}") for i in range(10)]
        batch = decode([envelope(payload(position=p, type_name=t)) for p, t in keys])
        assert batch.readings.column("series_id").to_pylist() == [series_id(p, t) for p, t in keys]
        assert len(decode_module._SERIES_IDS) <= 10
