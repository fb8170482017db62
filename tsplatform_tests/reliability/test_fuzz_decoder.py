"""Fuzzing the Kafka record decoder with hypothesis: random and mutated envelopes give zero crashes and
every record ends in exactly one place, the readings or the quarantine with a documented reason."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tsplatform.ids import is_series_id
from tsplatform.ingest.decode import decode_records
from tsplatform.ingest.field_mapping import FieldMapping, SchemaCache
from tsplatform.ingest.row_checks import MAX_FUTURE_MS
from tsplatform.settings import DEFAULT_MAX_TEXT_CHARS
from tsplatform_tests.reliability.budget import FULL, fuzz_examples, time_limit
from tsplatform_tests.reliability.fuzz_corpus import mutated_record, valid_envelope

pytestmark = pytest.mark.fuzz

NOW = pd.Timestamp("2026-01-01T00:00:00Z")
NOW_MS = int(NOW.value // 10**6)
BASE_MS = NOW_MS - 3 * 86_400_000
#: Every quarantine reason code the decoder documents (tsplatform/ingest/decode.py).
REASON_CODES = {
    "empty_message", "malformed_json", "not_an_object", "missing_field", "wrong_type",
    "unparseable_timestamp", "absurd_timestamp", "oversized_field", "non_finite_value",
    "incompatible_schema", "unsupported_record",
}  # fmt: skip
FUZZ_SETTINGS = settings(
    max_examples=fuzz_examples(60, 3000),
    deadline=None,
    derandomize=not FULL,  # the default suite is reproducible; the full run explores
    phases=list(Phase) if FULL else [Phase.explicit, Phase.generate],  # bounded: no shrinking time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
fuzzed = {"messages": 0, "quarantined": 0}


def check_accounted_for(values: list[bytes | None], mapping: FieldMapping = FieldMapping()) -> None:
    """Decode ``values`` and assert the no-loss contract and the invariants of every accepted reading."""
    n = len(values)
    with time_limit(120, f"decoding {n} records"):
        batch = decode_records(
            values, keys=None, topic="fuzz", partitions=[0] * n, offsets=list(range(n)),
            ingested_at=NOW, mapping=mapping, now=NOW, cache=SchemaCache(mapping),
        )  # fmt: skip
    readings, quarantine = batch.readings, batch.quarantine
    offsets = readings.column("offset").to_pylist() + quarantine.column("offset").to_pylist()
    assert sorted(offsets) == list(range(n))  # each record exactly once
    for reason in quarantine.column("reason").to_pylist():
        assert reason and reason.split(":", 1)[0] in REASON_CODES, reason
    assert quarantine.column("raw").to_pylist() == [
        values[o] for o in quarantine.column("offset").to_pylist()
    ]
    if readings.num_rows:
        frame = readings.to_pandas()
        assert np.isfinite(frame["value"]).all()
        ms = pd.to_datetime(frame["event_time"], utc=True).dt.as_unit("ms").astype("int64")
        assert ((ms >= 0) & (ms <= NOW_MS + MAX_FUTURE_MS)).all()
        for column in ("position", "type_name", "unit"):
            lengths = frame[column].dropna().str.len()
            assert (lengths <= DEFAULT_MAX_TEXT_CHARS).all(), column
        assert frame["series_id"].map(is_series_id).all()
    fuzzed["messages"] += n
    fuzzed["quarantined"] += quarantine.num_rows


@FUZZ_SETTINGS
@given(rng=st.randoms(use_true_random=False), size=st.integers(1, 40), valid_share=st.floats(0, 1))
def test_mutated_envelopes_are_all_accounted_for(rng: random.Random, size: int, valid_share: float) -> None:
    values = [
        valid_envelope(rng, BASE_MS) if rng.random() < valid_share else mutated_record(rng, BASE_MS, 100_000)
        for _ in range(size)
    ]
    check_accounted_for(values)


@FUZZ_SETTINGS
@given(values=st.lists(st.one_of(st.none(), st.binary(max_size=300)), min_size=1, max_size=30))
def test_random_bytes_are_all_accounted_for(values: list[bytes | None]) -> None:
    check_accounted_for(values)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ_SETTINGS
@given(
    rng=st.randoms(use_true_random=False),
    changes=st.dictionaries(st.sampled_from(["event_time", "input_data", "position", "type_name", "unit",
                                             "ss_id", "rstart", "rlev3", "extra"]), json_values, max_size=4),
    bare=st.booleans(),
)  # fmt: skip
def test_wrong_types_at_every_field_are_accounted_for(rng: random.Random, changes: dict, bare: bool) -> None:
    import json

    obj = json.loads(valid_envelope(rng, BASE_MS))
    obj["payload"].update(changes)
    record = json.dumps(obj["payload"] if bare else obj, allow_nan=True).encode()
    check_accounted_for([record, valid_envelope(rng, BASE_MS), record])


@pytest.mark.parametrize(
    "mapping", [FieldMapping(), FieldMapping(time_unit="iso"), FieldMapping(time_unit="s")]
)
def test_extreme_records_are_accounted_for(mapping: FieldMapping) -> None:
    # regression: 1000-deep nesting crashed decode_records (orjson re-serialises at most 255 levels)
    """The costly shapes once each: a 10 MB string, 100k-deep nesting, lone surrogates, NaN, year 9999."""
    rng = random.Random(1)
    good = valid_envelope(rng, BASE_MS)
    huge = good.replace(b'"unit":"ppm"', b'"unit":"' + b"u" * (10 * 1024 * 1024) + b'"')
    nested = good[:-2] + b',"extra":' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    # a layout the fast path does not know (space after "payload":) takes orjson's per-record route
    nested_1000 = (
        good[:-2].replace(b'"payload":', b'"payload": ') + b',"x":' + b"[" * 1000 + b"]" * 1000 + b"}}"
    )
    values = [
        huge,
        huge.replace(b'"unit":', b'"position":', 1),
        nested,
        nested_1000,
        b"[" * 1000 + b"]" * 1000,
        good.replace(b'"ppm"', b'"\\ud800"'),
        good.replace(b'"ppm"', b'"\xed\xa0\x80"'),
        good.replace(b'"input_data":', b'"input_data":NaN,"x":'),
        good.replace(b'"position":', b'"position":"a","position":'),
        b"\xff" * 1000,
        None,
        good,
    ]
    check_accounted_for(values, mapping)


@pytest.fixture(scope="module", autouse=True)
def _report():  # type: ignore[no-untyped-def]
    """Print this module's figures after its tests (for BENCHMARKS.md; run with -s)."""
    yield
    print(f"\nfuzz: decoder {fuzzed['messages']} messages, {fuzzed['quarantined']} quarantined, 0 crashes")
