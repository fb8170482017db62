"""Mutated Kafka record values for fuzzing the decoder and a real ingestion run.

:func:`mutated_record` turns a valid Connect envelope (or bare payload) into one of many hostile shapes,
driven by a ``random.Random`` (hypothesis passes ``st.randoms()``; the ingestion run a seeded one), so the
same mutator serves both. Sizes are bounded by ``max_string`` (10 MB at the decoder, under the broker's
1 MB message limit through Kafka).
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson

from tsplatform.ingest.envelope import encode_readings

FIELDS = ("ss_id", "rstart", "rend", *(f"rlev{i}" for i in range(1, 9)), "event_time", "input_data",
          "position", "type_name", "unit")  # fmt: skip
#: JSON values of every type, and edge cases of each.
ODD_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1.5, 2**63, -(2**63) - 1, 10**400, 1e308, -0.0, "", "x", "1669102545000",
    "2024-03-01T00:00:00Z", [], [1, 2], {}, {"a": 1}, "\u0000", "광 주 A", "\ud83c\udf21",
)  # fmt: skip
#: Event times at the edges: epoch 0, negative, year 9999, beyond int64 ms, fractional.
ODD_TIMES: tuple[Any, ...] = (0, -1, -86_400_000, 253_402_300_799_999, 253_402_300_800_000 * 1000,
                              9.2e18, 1.5, 1_700_000_000_000.7)  # fmt: skip
NON_FINITE = (b"NaN", b"Infinity", b"-Infinity")


def valid_envelope(rng: random.Random, base_ms: int) -> bytes:
    """A valid reading of one of a few series (the day of ``base_ms``), as the Connect envelope."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "position": [rng.choice(["광 주 A", "room 1", "it's", "../x"])],
            "type_name": [rng.choice(["CO2", "temp °C"])],
            "event_time": [pd.Timestamp(base_ms + rng.randrange(86_400_000), unit="ms", tz="UTC")],
            "value": [round(rng.uniform(-100, 5000), 3)],
            "unit": ["ppm"],
        }
    )
    return encode_readings(frame)[0]


def _replace_token(raw: bytes, field: str, token: bytes) -> bytes:
    """Put the raw ``token`` as the JSON value of ``field`` (text-level: NaN, duplicates, bad bytes)."""
    obj = json.loads(raw)
    marker = "\u0001MARK\u0001"
    target = obj.get("payload", obj)
    target[field] = marker
    return json.dumps(obj, ensure_ascii=False).encode().replace(json.dumps(marker).encode(), token)


def mutated_record(rng: random.Random, base_ms: int, max_string: int = 10 * 1024 * 1024) -> bytes | None:
    """One hostile record value (or ``None``, a tombstone)."""
    good = valid_envelope(rng, base_ms)
    obj = json.loads(good)
    payload = obj["payload"]
    kind = rng.randrange(18)
    if kind == 0:  # wrong type at a random field
        payload[rng.choice(FIELDS)] = rng.choice(ODD_VALUES)
    elif kind == 1:  # a missing field
        payload.pop(rng.choice(FIELDS))
    elif kind == 2:  # timestamps at the edges
        payload["event_time"] = rng.choice(ODD_TIMES)
    elif kind == 3:  # NaN / Infinity tokens (not JSON; some producers emit them)
        return _replace_token(
            good, rng.choice(["input_data", "event_time", "rstart", "ss_id"]), rng.choice(NON_FINITE)
        )
    elif kind == 4:  # invalid UTF-8 inside a string
        return _replace_token(good, rng.choice(["position", "type_name", "unit"]), b'"bad \xff\xfe \xc3("')
    elif kind == 5:  # lone surrogates, escaped and as raw (CESU) bytes
        token = rng.choice([b'"\\ud800"', b'"x\\udfff"', b'"\xed\xa0\x80"'])
        return _replace_token(good, rng.choice(["position", "type_name", "unit"]), token)
    elif kind == 6:  # deep nesting
        depth = rng.choice([64, 1000, 100_000])
        return _replace_token(good, rng.choice((*FIELDS, "extra")), b"[" * depth + b"]" * depth)
    elif kind == 7:  # a huge string in a key, an attribute or an unmapped field
        size = rng.choice([257, 70_000, max_string])
        payload[rng.choice(["position", "unit", "extra"])] = "y" * size
    elif kind == 8:  # duplicated keys (last or first wins depending on the parser)
        return good[:-2] + b',"position":"dup ' + str(rng.randrange(9)).encode() + b'"}}'
    elif kind == 9:  # schema drift: a new optional field, a changed declared type, a dropped declaration
        drift = rng.randrange(3)
        if drift == 0:
            obj["schema"]["fields"].append({"type": "string", "optional": True, "field": "site"})
            payload["site"] = "north"
        elif drift == 1:
            for f in obj["schema"]["fields"]:
                if f["field"] == rng.choice(["input_data", "event_time", "position"]):
                    f["type"] = rng.choice(["string", "boolean", "bytes", "struct"])
        else:
            obj["schema"]["fields"] = [f for f in obj["schema"]["fields"] if f["field"] != "event_time"]
    elif kind == 10:  # not an envelope: bare payload, array, scalar, null payload
        bare = orjson.dumps(payload)
        others = [bare, b"[1,2,3]", b"42", b'"text"', b"null", b'{"schema":null,"payload":null}']
        return rng.choice([*others, b'{"payload":' + bare + b"}"])
    elif kind == 11:  # truncated
        return good[: rng.randrange(1, len(good))]
    elif kind == 12:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    elif kind == 13:  # bit flips in a valid record
        data = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    elif kind == 14:  # empty / tombstone / whitespace
        return rng.choice([None, b"", b" ", b"\n"])
    elif kind == 15:  # raw control characters and line breaks inside strings and between tokens
        return good.replace(b'"payload":', b'"payload":\n\r\t ').replace(b'"ppm"', b'"p\\npm"')
    elif kind == 16:  # payload is not an object
        obj["payload"] = rng.choice([[payload], "payload", 3.5, True])
    else:  # unchanged: valid records mixed in
        return good
    if rng.random() < 0.5:
        try:
            return orjson.dumps(obj)
        except TypeError:  # lone surrogates: orjson refuses them, json escapes them (\ud800)
            pass
    return json.dumps(obj).encode()
