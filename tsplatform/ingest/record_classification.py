"""The per-record route: one record parsed with ``orjson`` and given its exact quarantine reason.

Records the columnar route cannot take (an envelope in an unknown layout, a row Arrow rejects, a chunk
flooded with bad rows) are classified here: :func:`classify_record` gives a record's reason,
:func:`payload_problem` that of a parsed payload object. :func:`parse_json` is ``orjson.loads`` bounded
to ``MAX_JSON_DEPTH`` levels of nesting.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson

from tsplatform.ingest.field_mapping import (
    INTEGER_ATTRIBUTES,
    MAX_EXACT_INT,
    STRING_ATTRIBUTES,
    FieldMapping,
    SchemaCache,
)

#: Deepest nesting of arrays/objects accepted on the per-record route (orjson re-serialises at most 255).
MAX_JSON_DEPTH = 64
_NON_FINITE_TOKEN = re.compile(rb"(?<=[:\[,])(\s*)-?(?:NaN|Infinity)(?=\s*[,}\]])")
_NON_FINITE_MARK = b"\\u0000non-finite"


def parse_json(value: bytes) -> Any:
    """``orjson.loads`` that also rejects nesting deeper than ``MAX_JSON_DEPTH`` (JSONDecodeError)."""
    obj = orjson.loads(value)
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_JSON_DEPTH:
                    raise orjson.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", "", 0)
                stack.append((child, depth + 1))
    return obj


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _attribute_kind(column: str) -> str:
    if column in STRING_ATTRIBUTES:
        return "string"
    return "integer" if column in INTEGER_ATTRIBUTES else "number"


def is_envelope(obj: dict[str, Any]) -> bool:
    return len(obj) == 2 and "schema" in obj and "payload" in obj


def _non_finite_token_reason(value: bytes, mapping: FieldMapping) -> str | None:
    """``non_finite_value:<field>`` when the only JSON error is a NaN/Infinity token in a mapped field.

    Arrow's reader accepts these tokens (and the columnar checks then report ``non_finite_value``); orjson
    rejects them, so the per-record path substitutes a marker and looks where it landed.
    """
    patched, count = _NON_FINITE_TOKEN.subn(lambda m: m[1] + b'"' + _NON_FINITE_MARK + b'"', value)
    if not count:
        return None
    try:
        obj = parse_json(patched)
    except orjson.JSONDecodeError:
        return None
    if isinstance(obj, dict) and is_envelope(obj):
        obj = obj["payload"]
    if not isinstance(obj, dict):
        return None
    mark = "\x00non-finite"
    for name in mapping.source_fields:
        if obj.get(name) == mark:
            return f"unparseable_timestamp:{name}" if name == mapping.time else f"non_finite_value:{name}"
    return None


def classify_record(value: bytes | None, mapping: FieldMapping, cache: SchemaCache) -> str | None:
    """The quarantine reason of a single record, or ``None`` if it looks decodable (per-record path)."""
    if not value:
        return "empty_message"
    try:
        obj = parse_json(value)
    except orjson.JSONDecodeError as exc:
        return _non_finite_token_reason(value, mapping) or f"malformed_json:{str(exc).splitlines()[0][:120]}"
    if not isinstance(obj, dict):
        return f"not_an_object:{json_type(obj)}"
    payload: Any = obj
    if is_envelope(obj):
        verdict = cache.verdict(obj["schema"])
        if verdict.reason:
            return verdict.reason
        payload = obj["payload"]
        if payload is None:
            return "empty_message:null payload"
        if not isinstance(payload, dict):
            return f"not_an_object:payload is {json_type(payload)}"
    return payload_problem(payload, mapping)


def payload_problem(payload: dict[str, Any], mapping: FieldMapping) -> str | None:
    """``wrong_type:<field>`` or ``missing_field:<field>`` of a parsed payload object, or ``None``."""
    for name, kind in _field_kinds(mapping):
        item = payload.get(name)
        if item is None:
            continue
        kind_of_item = type(item)  # bool is not int here (type(True) is bool)
        if kind == "string":
            if kind_of_item is str:
                continue
        elif (kind_of_item is float or kind_of_item is int) and (
            kind == "number" or (float(item).is_integer() and abs(item) <= MAX_EXACT_INT)
        ):
            continue
        return f"wrong_type:{name} (got {json_type(item)})"
    for name in mapping.required_fields:
        if payload.get(name) is None:
            return f"missing_field:{name}"
    return None


@lru_cache(maxsize=64)
def _field_kinds(mapping: FieldMapping) -> tuple[tuple[str, str], ...]:
    """``(field, kind)`` of every mapped field; kind in number, integer, string."""
    kinds = {mapping.time: "string" if mapping.time_unit == "iso" else "number", mapping.value: "number"}
    kinds.update({k: "string" for k in mapping.series_keys})
    for column, source in mapping.attributes:
        kinds[source] = _attribute_kind(column)
    return tuple(kinds.items())
