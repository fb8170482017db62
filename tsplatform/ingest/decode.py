"""Decode Kafka record values (Connect JSON envelope or bare payload) into ``raw_readings`` rows.

Every input record ends in exactly one of two Arrow tables: ``readings`` (``RAW_READINGS_SCHEMA``) or
``quarantine`` (``QUARANTINE_SCHEMA``, with a reason, the original bytes and the provenance).

How it is fast (no per-record JSON parsing in Python):

1. Envelope records of an already-seen schema are recognised by their byte prefix
   ``{"schema":<schema JSON>,"payload":``: the schema is never parsed again (its compatibility verdict and
   fingerprint are cached, one entry per distinct schema) and the payload is sliced out.
2. A chunk of ``CHUNK_RECORDS`` such records (the common case) is checked and sliced by one list
   comprehension, newline-joined, and parsed at once by Arrow's JSON reader (``pyarrow.json``, in
   parallel blocks) with an explicit schema for the mapped fields.
3. Checks (missing fields, timestamps, finiteness, integral ``ss_id``, UTF-8) are vectorised over the
   columns; ``series_id`` is computed once per distinct key.

Anything else takes a per-record route that still ends in the same columnar parse: a record whose prefix
is unknown is parsed once with ``orjson`` (which registers its schema's prefix); a chunk that Arrow rejects
is re-read around the rejected row (Arrow names it), and that row is classified alone with ``orjson``
for an exact reason; past ``ROW_WALK_LIMIT`` rejected rows in a chunk (a flood of bad records), the rest
of the chunk is screened record by record with ``orjson`` and the records that pass are read again.

Quarantine reasons (``code`` or ``code:detail``):

=========================  ===========================================================================
``empty_message``          ``None`` value (tombstone), zero bytes, or an envelope whose payload is null
``malformed_json``         not valid JSON (also invalid UTF-8, or nested deeper than ``MAX_JSON_DEPTH``);
                           detail = the parser's message
``not_an_object``          the value (or the envelope's payload) is not a JSON object; detail = its type
``missing_field``          a required field (time, value, a series key) is absent or null; detail = field
``wrong_type``             a mapped field has the wrong JSON type (e.g. a string value, a fractional
                           ``ss_id``, a number out of range); detail = field
``unparseable_timestamp``  an ISO-8601 time field that does not parse, or a NaN/Infinity epoch
``absurd_timestamp``       before 1970-01-01 or more than one day after ``now``; detail = the instant
``oversized_field``        a series key or ``unit`` longer than ``max_text_chars`` characters (setting
                           ``TSPLATFORM_MAX_TEXT_CHARS``, default 256); detail = field, length and limit
``non_finite_value``       the value (or a numeric attribute) is the non-JSON token NaN, Infinity or
                           -Infinity (JSON has none; some producers emit them); detail = field. The
                           token in an unmapped field is ignored on the columnar route but makes the
                           record ``malformed_json`` on the per-record route (orjson rejects it).
``incompatible_schema``    the envelope's schema lacks a required field of the mapping or declares a
                           mapped field with an incompatible type; detail says which
``unsupported_record``     Arrow rejected the record and no more specific reason was found (never
                           expected; kept so that nothing is lost silently)
=========================  ===========================================================================

Timestamps: epoch numbers in ``FieldMapping.time_unit`` (``ms``, ``s``, ``us``; integers or floats)
are converted to UTC milliseconds, rounded to the nearest millisecond; ``iso`` strings are parsed as
ISO-8601 (a string without offset is taken as UTC). Series keys are kept exactly as received; they
must be JSON strings.

``schema_id`` (16 hex digits): for envelope records the first 16 hex digits of SHA-256 over the
canonical schema JSON (keys sorted, compact); for bare payloads the same over the sorted list of
``[field, json_type]`` of the fields present with a non-null value (``json_type`` in number, string,
boolean, object, array). A new optional field therefore yields a new id without a quarantine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from tsplatform.ids import series_ids
from tsplatform.ingest.schema import QUARANTINE_SCHEMA, RAW_READINGS_SCHEMA, UTC_MS
from tsplatform.settings import DEFAULT_MAX_TEXT_CHARS

TimeUnit = Literal["ms", "s", "us", "iso"]

#: Records parsed by one call of Arrow's JSON reader (bounds memory and the cost of a rejected chunk).
CHUNK_RECORDS = 65_536
#: Block size of a threaded Arrow read (blocks are parsed in parallel).
BLOCK_BYTES = 1 << 20
#: Deepest nesting of arrays/objects accepted on the per-record route (orjson re-serialises at most 255).
MAX_JSON_DEPTH = 64
#: ``absurd_timestamp`` when an event time is later than ``now`` plus this many milliseconds (1 day).
MAX_FUTURE_MS = 86_400_000

ENVELOPE_PREFIX = b'{"schema":'
_PAYLOAD_INFIX = b',"payload":'
_TIME_FACTORS_TO_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001}
#: Largest integer a float64 holds exactly (ss_id is read as float64, then checked and cast to int64).
_MAX_EXACT_INT = 2.0**53
_ROW_IN_ERROR = re.compile(r" in row (\d+)")
_NON_FINITE_TOKEN = re.compile(rb"(?<=[:\[,])(\s*)-?(?:NaN|Infinity)(?=\s*[,}\]])")
_NON_FINITE_MARK = b"\\u0000non-finite"

_STRING_ATTRIBUTES = ("unit",)
_INTEGER_ATTRIBUTES = ("ss_id",)
_FLOAT_ATTRIBUTES = ("rstart", "rend", *(f"rlev{i}" for i in range(1, 9)))
ATTRIBUTE_COLUMNS: tuple[str, ...] = (*_INTEGER_ATTRIBUTES, *_STRING_ATTRIBUTES, *_FLOAT_ATTRIBUTES)

#: Connect schema types accepted per kind of mapped field.
_CONNECT_NUMERIC = frozenset({"int8", "int16", "int32", "int64", "float", "double", "float32", "float64"})
_CONNECT_INTEGER = frozenset({"int8", "int16", "int32", "int64"})
_CONNECT_STRING = frozenset({"string"})


@dataclass(frozen=True)
class FieldMapping:
    """Which payload fields hold the time, the value, the series key and the sensor attributes.

    * ``time``: epoch number in ``time_unit`` (``ms``, ``s``, ``us``) or an ISO-8601 string (``iso``).
    * ``value``: the reading (JSON number).
    * ``series_keys``: one or two string fields. The first becomes ``position``, the second ``type_name``;
      with one key, ``type_name`` is the constant ``type_name``.
    * ``attributes``: ``(column, field)`` pairs for the optional ``raw_readings`` attribute columns
      (``ss_id``, ``unit``, ``rstart``, ``rend``, ``rlev1``..``rlev8``); absent fields give nulls.
    """

    time: str = "event_time"
    value: str = "input_data"
    series_keys: tuple[str, ...] = ("position", "type_name")
    type_name: str = "value"
    time_unit: TimeUnit = "ms"
    attributes: tuple[tuple[str, str], ...] = tuple((c, c) for c in ATTRIBUTE_COLUMNS)

    def __post_init__(self) -> None:
        if self.time_unit not in ("ms", "s", "us", "iso"):
            raise ValueError(f"invalid time_unit {self.time_unit!r}: expected one of ms, s, us, iso")
        if not 1 <= len(self.series_keys) <= 2:
            raise ValueError(f"series_keys must name 1 or 2 fields, got {len(self.series_keys)}")
        unknown = [c for c, _ in self.attributes if c not in ATTRIBUTE_COLUMNS]
        if unknown:
            raise ValueError(
                f"unknown attribute column(s) {unknown}: expected some of {list(ATTRIBUTE_COLUMNS)}"
            )
        fields = self.source_fields
        if any(not isinstance(f, str) or not f for f in fields):
            raise ValueError("field names of a FieldMapping must be non-empty strings")
        if len(set(fields)) != len(fields):
            raise ValueError(f"a field is mapped twice in {fields}")

    @property
    def required_fields(self) -> tuple[str, ...]:
        """Fields every record must carry (non-null): time, value and the series keys."""
        return (self.time, self.value, *self.series_keys)

    @property
    def source_fields(self) -> tuple[str, ...]:
        return (*self.required_fields, *(f for _, f in self.attributes))

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> FieldMapping:
        """Build from a JSON-like dict; ``attributes`` may be a ``{column: field}`` object."""
        known = {f.name for f in dataclasses.fields(cls)}
        extra = set(spec) - known
        if extra:
            raise ValueError(f"unknown FieldMapping key(s) {sorted(extra)}: expected some of {sorted(known)}")
        kwargs: dict[str, Any] = dict(spec)
        if "series_keys" in kwargs:
            keys = kwargs["series_keys"]
            kwargs["series_keys"] = (keys,) if isinstance(keys, str) else tuple(keys)
        if "attributes" in kwargs:
            attrs = kwargs["attributes"]
            pairs = attrs.items() if isinstance(attrs, Mapping) else attrs
            kwargs["attributes"] = tuple((str(c), str(f)) for c, f in pairs)
        return cls(**kwargs)

    @classmethod
    def from_settings(cls, settings: Any | None = None) -> FieldMapping:
        """The mapping of ``settings.field_mapping`` (env ``TSPLATFORM_FIELD_MAPPING``, a JSON object)."""
        if settings is None:
            from tsplatform.settings import get_settings

            settings = get_settings()
        spec = getattr(settings, "field_mapping", None) or {}
        return cls.from_dict(spec)

    def arrow_read_schema(self) -> pa.Schema:
        """Explicit Arrow schema for the mapped fields (numbers as float64, checked afterwards)."""
        fields = [pa.field(self.time, pa.string() if self.time_unit == "iso" else pa.float64())]
        fields.append(pa.field(self.value, pa.float64()))
        fields += [pa.field(k, pa.string()) for k in self.series_keys]
        for column, source in self.attributes:
            fields.append(pa.field(source, pa.string() if column in _STRING_ATTRIBUTES else pa.float64()))
        return pa.schema(fields)


@dataclass(frozen=True)
class DecodedBatch:
    """The outcome of :func:`decode_records`: accepted readings and quarantined records."""

    readings: pa.Table
    quarantine: pa.Table

    @property
    def total(self) -> int:
        return self.readings.num_rows + self.quarantine.num_rows


@dataclass(frozen=True)
class SchemaVerdict:
    """A Connect schema's fingerprint and, if it cannot be decoded with the mapping, why."""

    schema_id: str
    reason: str | None


@dataclass
class SchemaCache:
    """Compatibility verdicts per distinct envelope schema, for one :class:`FieldMapping`.

    ``by_prefix`` maps the exact byte prefix ``{"schema":<schema>,"payload":`` to its verdict (the fast
    path), ``by_canonical`` the canonical schema JSON (any layout). Bounded: cleared past ``max_entries``.
    """

    mapping: FieldMapping
    max_entries: int = 1024
    by_prefix: dict[bytes, SchemaVerdict] = field(default_factory=dict)
    by_canonical: dict[bytes, SchemaVerdict] = field(default_factory=dict)

    def verdict(self, schema: Any) -> SchemaVerdict:
        canonical = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        found = self.by_canonical.get(canonical)
        if found is None:
            if len(self.by_canonical) >= self.max_entries:
                self.by_canonical.clear()
            found = SchemaVerdict(fingerprint(canonical), schema_incompatibility(schema, self.mapping))
            self.by_canonical[canonical] = found
        return found

    def remember_prefix(self, value: bytes, schema: Any, found: SchemaVerdict) -> None:
        """Register ``value``'s prefix for the fast path if it is the compact layout of ``schema``."""
        prefix = ENVELOPE_PREFIX + orjson.dumps(schema) + _PAYLOAD_INFIX
        if value.startswith(prefix):
            if len(self.by_prefix) >= self.max_entries:
                self.by_prefix.clear()
            self.by_prefix[prefix] = found


_CACHES: dict[FieldMapping, SchemaCache] = {}


def schema_cache(mapping: FieldMapping) -> SchemaCache:
    """The process-wide :class:`SchemaCache` of ``mapping``."""
    cache = _CACHES.get(mapping)
    if cache is None:
        if len(_CACHES) >= 64:
            _CACHES.clear()
        cache = _CACHES[mapping] = SchemaCache(mapping)
    return cache


def fingerprint(canonical: bytes) -> str:
    """First 16 hex digits of SHA-256 of ``canonical`` bytes."""
    return hashlib.sha256(canonical).hexdigest()[:16]


def schema_incompatibility(schema: Any, mapping: FieldMapping) -> str | None:
    """Why a Connect struct schema cannot feed ``mapping`` (``incompatible_schema:<detail>``), or ``None``.

    Required fields (time, value, series keys) must be declared; mapped fields must have a compatible type:
    epoch time an integer or floating type (``string`` for ``iso``), value and numeric attributes a number,
    ``ss_id`` an integer, keys and ``unit`` a string. Optionality is not checked (a null is quarantined
    per record); unmapped and new optional fields are accepted.
    """
    fields = schema.get("fields") if isinstance(schema, dict) else None
    if not isinstance(schema, dict) or schema.get("type") != "struct" or not isinstance(fields, list):
        return "incompatible_schema:not a struct schema with a field list"
    declared: dict[str, str] = {}
    for item in fields:
        if isinstance(item, dict) and isinstance(item.get("field"), str):
            declared[item["field"]] = str(item.get("type"))
    expected: dict[str, frozenset[str]] = {
        mapping.time: _CONNECT_STRING if mapping.time_unit == "iso" else _CONNECT_NUMERIC,
        mapping.value: _CONNECT_NUMERIC,
        **{k: _CONNECT_STRING for k in mapping.series_keys},
    }
    for column, source in mapping.attributes:
        if column in _STRING_ATTRIBUTES:
            expected[source] = _CONNECT_STRING
        elif column in _INTEGER_ATTRIBUTES:
            expected[source] = _CONNECT_INTEGER
        else:
            expected[source] = _CONNECT_NUMERIC
    for name in mapping.required_fields:
        if name not in declared:
            return f"incompatible_schema:required field {name} missing from the schema"
    for name, types in expected.items():
        if name in declared and declared[name] not in types:
            return f"incompatible_schema:{name} declared {declared[name]}, expected one of {sorted(types)}"
    return None


# --- per-record classification (rare path) -------------------------------------------------------


def _loads(value: bytes) -> Any:
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


def _json_type(value: Any) -> str:
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
    if column in _STRING_ATTRIBUTES:
        return "string"
    return "integer" if column in _INTEGER_ATTRIBUTES else "number"


def _is_envelope(obj: dict[str, Any]) -> bool:
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
        obj = _loads(patched)
    except orjson.JSONDecodeError:
        return None
    if isinstance(obj, dict) and _is_envelope(obj):
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
        obj = _loads(value)
    except orjson.JSONDecodeError as exc:
        return _non_finite_token_reason(value, mapping) or f"malformed_json:{str(exc).splitlines()[0][:120]}"
    if not isinstance(obj, dict):
        return f"not_an_object:{_json_type(obj)}"
    payload: Any = obj
    if _is_envelope(obj):
        verdict = cache.verdict(obj["schema"])
        if verdict.reason:
            return verdict.reason
        payload = obj["payload"]
        if payload is None:
            return "empty_message:null payload"
        if not isinstance(payload, dict):
            return f"not_an_object:payload is {_json_type(payload)}"
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
            kind == "number" or (float(item).is_integer() and abs(item) <= _MAX_EXACT_INT)
        ):
            continue
        return f"wrong_type:{name} (got {_json_type(item)})"
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


# --- columnar parsing ------------------------------------------------------------------------------


@dataclass
class _Parsed:
    """Rows parsed by Arrow: their record indices, mapped columns and ``schema_id`` per row."""

    indices: list[np.ndarray] = field(default_factory=list)
    tables: list[pa.Table] = field(default_factory=list)
    schema_ids: list[np.ndarray] = field(default_factory=list)  # int32 codes into ``id_names``
    id_names: list[str] = field(default_factory=list)
    _codes: dict[str, int] = field(default_factory=dict)

    def code(self, schema_id: str) -> int:
        """Small integer standing for ``schema_id`` (ids are materialised once, at the end)."""
        found = self._codes.get(schema_id)
        if found is None:
            found = self._codes[schema_id] = len(self.id_names)
            self.id_names.append(schema_id)
        return found

    def codes(self, ids: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.code(i) for i in ids), dtype=np.int32, count=len(ids))


_JSON_TYPE_OF_ARROW = (
    (pa.types.is_integer, "number"),
    (pa.types.is_floating, "number"),
    (pa.types.is_string, "string"),
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_struct, "object"),
    (pa.types.is_list, "array"),
    (pa.types.is_timestamp, "string"),
)


def _arrow_json_type(dtype: pa.DataType) -> str | None:
    for test, name in _JSON_TYPE_OF_ARROW:
        if test(dtype):
            return name
    return None


def _schemaless_ids(table: pa.Table, parsed: _Parsed) -> np.ndarray:
    """``schema_id`` per row of a bare-payload table: fingerprint of its non-null fields and JSON types."""
    columns = [(name, _arrow_json_type(table.schema.field(name).type)) for name in table.column_names]
    columns = [(name, kind) for name, kind in columns if kind is not None]
    if table.num_rows == 0:
        return np.empty(0, dtype=np.int32)
    present = np.column_stack(
        [table.column(name).is_valid().to_numpy(zero_copy_only=False) for name, _ in columns]
        or [np.zeros(table.num_rows, dtype=bool)]
    )
    shapes, inverse = np.unique(np.packbits(present, axis=1), axis=0, return_inverse=True)
    ids = []
    for shape in shapes:
        bits = np.unpackbits(shape)[: len(columns)].astype(bool)
        fields = sorted([name, kind] for (name, kind), on in zip(columns, bits, strict=True) if on)
        ids.append(parsed.code(fingerprint(orjson.dumps(fields))))
    return np.asarray(ids, dtype=np.int32)[inverse.reshape(-1)]


@dataclass(frozen=True)
class _Lines:
    """Newline-joined JSON lines with the byte offset of each line: any run of lines is a zero-copy slice."""

    joined: bytes
    bounds: np.ndarray  # bounds[i] = first byte of line i; bounds[n] = len(joined) + 1

    @classmethod
    def of(cls, lines: list[bytes]) -> _Lines:
        lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
        bounds = np.zeros(len(lines) + 1, dtype=np.int64)
        np.cumsum(lengths + 1, out=bounds[1:])
        return cls(b"\n".join(lines), bounds)

    def buffer(self, start: int, stop: int) -> pa.Buffer:
        return pa.py_buffer(memoryview(self.joined)[int(self.bounds[start]) : int(self.bounds[stop]) - 1])


def _read_lines(
    lines: _Lines, start: int, stop: int, options: pajson.ParseOptions, *, threaded: bool
) -> pa.Table:
    """One Arrow read of lines ``start``..``stop`` (newline-free JSON each); row count checked.

    ``threaded`` parses blocks of ``BLOCK_BYTES`` in parallel (row numbers in errors are then relative to
    a block); otherwise one block, so that an error's row number is the line number.
    """
    data = lines.buffer(start, stop)
    if threaded:
        read = pajson.ReadOptions(use_threads=True, block_size=BLOCK_BYTES)
    else:
        read = pajson.ReadOptions(use_threads=False, block_size=max(data.size + 1, 1 << 16))
    table = pajson.read_json(pa.BufferReader(data), read_options=read, parse_options=options)
    if table.num_rows != stop - start:
        raise pa.ArrowInvalid(f"expected {stop - start} rows, Arrow read {table.num_rows}")
    return table


def _single_line_layout(
    lines: list[bytes], indices: list[int], ids: list[str] | None, ctx: _Context
) -> tuple[list[bytes], list[int], list[str] | None]:
    """Re-serialise the rare lines holding a raw CR/LF (Arrow reads newline-delimited JSON)."""
    joined = b"\n".join(lines)
    if joined.count(b"\n") == len(lines) - 1 and b"\r" not in joined:
        return lines, indices, ids
    out_lines: list[bytes] = []
    out_indices: list[int] = []
    out_ids: list[str] | None = [] if ids is not None else None
    for k, line in enumerate(lines):
        if b"\n" in line or b"\r" in line:
            try:
                line = orjson.dumps(_loads(line))
            except orjson.JSONDecodeError:
                ctx.reject(indices[k], None)
                continue
        out_lines.append(line)
        out_indices.append(indices[k])
        if out_ids is not None and ids is not None:
            out_ids.append(ids[k])
    return out_lines, out_indices, out_ids


@dataclass
class _Context:
    """Shared state of one :func:`decode_records` call."""

    mapping: FieldMapping
    cache: SchemaCache
    values: Sequence[bytes | None]
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    reasons: dict[int, str] = field(default_factory=dict)
    parsed: _Parsed = field(default_factory=_Parsed)

    def reject(self, index: int, error: BaseException | None) -> None:
        """Quarantine record ``index`` with its own reason (or Arrow's error if none is found)."""
        reason = classify_record(self.values[index], self.mapping, self.cache)
        if reason is None:
            detail = str(error).splitlines()[0][:120] if error is not None else "unreadable"
            reason = f"unsupported_record:{detail}"
        self.reasons[index] = reason


#: Rejected rows located one by one with Arrow in a chunk before the rest of it is screened with orjson.
ROW_WALK_LIMIT = 8


def _parse_group(
    lines: list[bytes], indices: list[int], ids: list[str] | None, ctx: _Context, *, screened: bool = False
) -> None:
    """Parse JSON object ``lines`` with Arrow in chunks; rows Arrow rejects are classified one by one.

    ``ids`` is the ``schema_id`` per line (envelope records) or ``None`` (bare payloads: computed per row,
    unmapped fields inferred). A rejected chunk is read again as one block, where Arrow stops at the first
    bad row and names it: the rows before it are kept, the row is classified alone, and reading goes on
    after it (halving when no row is named). A chunk with more than ``ROW_WALK_LIMIT`` rejected rows is
    a flood of bad records: its remaining lines are screened one by one with orjson (about 1 µs each, far
    less than an Arrow call per bad row) and the lines that pass are read again (``screened``).
    """
    lines, indices, ids = _single_line_layout(lines, indices, ids, ctx)
    joined = _Lines.of(lines)
    read_schema = ctx.mapping.arrow_read_schema()
    options = pajson.ParseOptions(
        explicit_schema=read_schema, unexpected_field_behavior="ignore" if ids is not None else "infer"
    )
    for chunk_start in range(0, len(lines), CHUNK_RECORDS):
        chunk_stop = min(chunk_start + CHUNK_RECORDS, len(lines))
        pending = [(chunk_start, chunk_stop, True)]
        rejected = 0
        while pending:
            if rejected > ROW_WALK_LIMIT and not screened:
                rows = sorted(k for start, stop, _ in pending for k in range(start, stop))
                _screen(rows, lines, indices, ids, ctx)
                break
            start, stop, threaded = pending.pop()
            if start >= stop:
                continue
            try:
                table = _read_lines(joined, start, stop, options, threaded=threaded)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                if threaded:  # read again as one block, for a usable row number
                    pending.append((start, stop, False))
                    continue
                if stop - start == 1:
                    ctx.reject(indices[start], exc)
                    rejected += 1
                    continue
                match = _ROW_IN_ERROR.search(str(exc))
                row = int(match[1]) if match else -1
                if 0 <= row < stop - start:  # rows before it read fine; the row itself is retried alone
                    pending += [(start + row + 1, stop, False), (start + row, start + row + 1, False)]
                    if row > 0:
                        pending.append((start, start + row, False))
                else:  # no row named: halve
                    middle = (start + stop) // 2
                    pending += [(middle, stop, False), (start, middle, False)]
                continue
            schema_ids = (
                _schemaless_ids(table, ctx.parsed) if ids is None else ctx.parsed.codes(ids[start:stop])
            )
            ctx.parsed.tables.append(table.select(read_schema.names))
            ctx.parsed.indices.append(np.asarray(indices[start:stop], dtype=np.int64))
            ctx.parsed.schema_ids.append(schema_ids)


def _screen(
    rows: list[int], lines: list[bytes], indices: list[int], ids: list[str] | None, ctx: _Context
) -> None:
    """Classify ``rows`` of ``lines`` with orjson; parse the ones that pass with Arrow (screened)."""
    good_lines: list[bytes] = []
    good_indices: list[int] = []
    good_ids: list[str] | None = [] if ids is not None else None
    mapping = ctx.mapping
    for k in rows:
        try:
            payload = _loads(lines[k])
        except orjson.JSONDecodeError:
            ctx.reject(indices[k], None)
            continue
        reason = payload_problem(payload, mapping) if isinstance(payload, dict) else None
        if reason is not None or not isinstance(payload, dict):
            if reason is None:
                ctx.reject(indices[k], None)
            else:
                ctx.reasons[indices[k]] = reason
            continue
        good_lines.append(lines[k])
        good_indices.append(indices[k])
        if good_ids is not None and ids is not None:
            good_ids.append(ids[k])
    if good_lines:
        _parse_group(good_lines, good_indices, good_ids, ctx, screened=True)


# --- vectorised checks ------------------------------------------------------------------------------


def _np(column: pa.ChunkedArray | pa.Array, dtype: Any = np.float64) -> np.ndarray:
    """Column as numpy with nulls as NaN (floats)."""
    return column.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _invalid_utf8_rows(column: pa.ChunkedArray) -> np.ndarray:
    """Boolean mask of rows whose string bytes are not valid UTF-8 (Arrow's reader does not check)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    try:
        array.validate(full=True)
        return np.zeros(len(array), dtype=bool)
    except pa.ArrowInvalid:
        raw = array.view(pa.binary()).to_pylist()
        bad = np.zeros(len(array), dtype=bool)
        for i, item in enumerate(raw):
            if item is not None:
                try:
                    item.decode("utf-8")
                except UnicodeDecodeError:
                    bad[i] = True
        return bad


def _event_time_ms(column: pa.ChunkedArray, unit: TimeUnit) -> tuple[np.ndarray, np.ndarray]:
    """Epoch milliseconds (float, NaN where missing/invalid) and a mask of unparseable non-null times."""
    if unit == "iso":
        text = column.to_pandas()
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        ms = np.full(len(text), np.nan)
        ok = parsed.notna().to_numpy()
        naive = parsed[ok].dt.tz_localize(None).to_numpy()
        ms[ok] = naive.astype("datetime64[ms]").astype(np.int64)
        unparseable = text.notna().to_numpy() & ~ok
        return ms, unparseable
    raw = _np(column)
    unparseable = ~np.isnan(raw) & ~np.isfinite(raw)
    with np.errstate(invalid="ignore", over="ignore"):
        ms = np.rint(raw * _TIME_FACTORS_TO_MS[unit])
    ms[unparseable] = np.nan
    nan_token = np.isnan(raw) & column.is_valid().to_numpy(zero_copy_only=False)
    return ms, unparseable | nan_token


def _first_reasons(checks: list[tuple[np.ndarray, str | np.ndarray]], n: int) -> np.ndarray:
    """Per row the reason of the first failing check (``None`` if all pass); checks in priority order."""
    reasons = np.full(n, None, dtype=object)
    open_rows = np.ones(n, dtype=bool)
    for failed, reason in checks:
        hit = failed & open_rows
        if hit.any():
            reasons[hit] = reason if isinstance(reason, str) else reason[hit]
            open_rows &= ~hit
    return reasons


def _oversized_rows(column: pa.ChunkedArray, name: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Mask of rows whose string has more than ``limit`` characters, and their ``oversized_field`` reasons.

    Bytes bound characters from above, so only strings longer than ``limit`` bytes are counted (invalid
    UTF-8 is counted with replacement characters; such rows are rejected earlier anyway).
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(array)
    lengths = pc.fill_null(pc.binary_length(array.view(pa.binary())), 0).to_numpy(zero_copy_only=False)
    candidates = np.flatnonzero(lengths > limit)
    over = np.zeros(n, dtype=bool)
    reasons = np.full(n, None, dtype=object)
    if len(candidates):
        raw = array.view(pa.binary()).take(pa.array(candidates)).to_pylist()
        for k, item in zip(candidates, raw, strict=True):
            chars = len(item.decode("utf-8", errors="replace"))
            if chars > limit:
                over[k] = True
                reasons[k] = f"oversized_field:{name} ({chars} characters, limit {limit})"
    return over, reasons


def _check_rows(
    table: pa.Table, mapping: FieldMapping, now_ms: int, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
) -> tuple[np.ndarray, np.ndarray]:
    """Reasons per row (``None`` = accepted) and event time in ms (int64, 0 where rejected)."""
    n = table.num_rows
    checks: list[tuple[np.ndarray, str | np.ndarray]] = []
    for name in mapping.series_keys:
        column = table.column(name)
        checks.append((column.is_null().to_numpy(zero_copy_only=False), f"missing_field:{name}"))
        checks.append((_invalid_utf8_rows(column), f"malformed_json:invalid UTF-8 in {name}"))
        checks.append(_oversized_rows(column, name, max_text_chars))
    time_column = table.column(mapping.time)
    checks.append((time_column.is_null().to_numpy(zero_copy_only=False), f"missing_field:{mapping.time}"))
    value = _np(table.column(mapping.value))
    value_null = table.column(mapping.value).is_null().to_numpy(zero_copy_only=False)
    checks.append((value_null, f"missing_field:{mapping.value}"))
    ms, unparseable = _event_time_ms(time_column, mapping.time_unit)
    checks.append((unparseable, f"unparseable_timestamp:{mapping.time}"))
    absurd = (ms < 0) | (ms > now_ms + MAX_FUTURE_MS)
    if absurd.any():
        instants = np.full(n, "", dtype=object)
        for i in np.flatnonzero(absurd):
            try:
                shown = pd.Timestamp(int(ms[i]), unit="ms", tz="UTC").isoformat()
            except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
                shown = f"{ms[i]:.0f} ms"
            instants[i] = f"absurd_timestamp:{mapping.time}={shown}"
        checks.append((absurd, instants))
    checks.append((~value_null & ~np.isfinite(value), f"non_finite_value:{mapping.value}"))
    for column, source in mapping.attributes:
        data = table.column(source)
        if column in _STRING_ATTRIBUTES:
            checks.append((_invalid_utf8_rows(data), f"malformed_json:invalid UTF-8 in {source}"))
            checks.append(_oversized_rows(data, source, max_text_chars))
            continue
        numbers = _np(data)
        valid = data.is_valid().to_numpy(zero_copy_only=False)
        checks.append((valid & ~np.isfinite(numbers), f"non_finite_value:{source}"))
        if column in _INTEGER_ATTRIBUTES:
            with np.errstate(invalid="ignore"):
                bad = valid & ((np.abs(numbers) > _MAX_EXACT_INT) | (numbers != np.trunc(numbers)))
            checks.append((bad, f"wrong_type:{source} (got non-integer number)"))
    reasons = _first_reasons(checks, n)
    accepted = reasons == None  # noqa: E711 (element-wise on an object array)
    event_ms = np.where(accepted, np.nan_to_num(ms, nan=0.0, posinf=0.0, neginf=0.0), 0).astype(np.int64)
    return reasons, event_ms


def _series_id_column(position: pa.Array, type_name: pa.Array) -> pa.Array:
    """``series_id`` per row, computed once per distinct key with :func:`tsplatform.ids.series_ids`."""
    if len(position) == 0:
        return pa.array([], pa.string())
    p_codes = pc.dictionary_encode(position)
    t_codes = pc.dictionary_encode(type_name)
    n_types = len(t_codes.dictionary)
    combined = p_codes.indices.to_numpy().astype(np.int64) * n_types + t_codes.indices.to_numpy()
    unique, inverse = np.unique(combined, return_inverse=True)
    positions = p_codes.dictionary.take(pa.array(unique // n_types)).to_pylist()
    types = t_codes.dictionary.take(pa.array(unique % n_types)).to_pylist()
    pairs = list(zip(positions, types, strict=True))
    ids = [_SERIES_IDS.get(pair) for pair in pairs]  # pairs are distinct
    missing = [k for k, found in enumerate(ids) if found is None]
    if missing:
        new = [pairs[k] for k in missing]
        computed = series_ids(pd.Series([p for p, _ in new], dtype=object),
                              pd.Series([t for _, t in new], dtype=object)).tolist()  # fmt: skip
        for k, computed_id in zip(missing, computed, strict=True):
            ids[k] = computed_id
        if len(_SERIES_IDS) + len(new) > _SERIES_ID_CACHE_SIZE:
            _SERIES_IDS.clear()
        _SERIES_IDS.update(zip(new, computed, strict=True))
    return pa.array(ids, pa.string()).take(pa.array(inverse.reshape(-1)))


#: ``series_id`` of the keys seen recently (ids are pure functions of the key; bounded memory).
_SERIES_IDS: dict[tuple[str, str], str] = {}
_SERIES_ID_CACHE_SIZE = 200_000


def _provenance(n: int, topic: str, partitions: np.ndarray, offsets: np.ndarray, ingested_ms: int) -> dict:
    return {
        "topic": pa.repeat(pa.scalar(topic, pa.string()), n),
        "partition": pa.array(partitions, pa.int32()),
        "offset": pa.array(offsets, pa.int64()),
        "ingested_at": pa.array(np.full(n, ingested_ms, dtype=np.int64), pa.int64()).cast(UTC_MS),
    }


def _readings_table(
    table: pa.Table,
    schema_ids: np.ndarray,
    id_names: list[str],
    event_ms: np.ndarray,
    mapping: FieldMapping,
    prov: dict,
) -> pa.Table:
    n = table.num_rows
    position = table.column(mapping.series_keys[0]).combine_chunks()
    if len(mapping.series_keys) == 2:
        type_name = table.column(mapping.series_keys[1]).combine_chunks()
    else:
        type_name = pa.repeat(pa.scalar(mapping.type_name, pa.string()), n)
    attributes = dict(mapping.attributes)
    columns: dict[str, pa.Array] = {
        "position": position,
        "type_name": type_name,
        "series_id": _series_id_column(position, type_name),
        "event_time": pa.array(event_ms, pa.int64()).cast(UTC_MS),
        "value": table.column(mapping.value).combine_chunks().cast(pa.float64()),
    }
    for column in ATTRIBUTE_COLUMNS:
        dtype = RAW_READINGS_SCHEMA.field(column).type
        source = attributes.get(column)
        if source is None:
            columns[column] = pa.nulls(n, dtype)
        else:
            columns[column] = table.column(source).combine_chunks().cast(dtype)
    columns.update(prov)
    columns["schema_id"] = pa.array(id_names, pa.string()).take(pa.array(schema_ids, pa.int32()))
    return pa.Table.from_arrays([columns[f.name] for f in RAW_READINGS_SCHEMA], schema=RAW_READINGS_SCHEMA)


# --- entry point ------------------------------------------------------------------------------------


def _as_ms(ts: pd.Timestamp) -> int:
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def decode_records(
    values: Sequence[bytes | None],
    *,
    keys: Sequence[bytes | None] | None,
    topic: str,
    partitions: Sequence[int] | np.ndarray,
    offsets: Sequence[int] | np.ndarray,
    ingested_at: pd.Timestamp,
    mapping: FieldMapping = FieldMapping(),
    now: pd.Timestamp | None = None,
    cache: SchemaCache | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> DecodedBatch:
    """Decode Kafka record values into ``raw_readings`` rows; the rest into quarantine with a reason.

    ``keys``, ``partitions`` and ``offsets`` are per record (same length as ``values``); ``keys`` may be
    ``None``. ``ingested_at`` and ``now`` (default: the current time) are instants (naive = UTC);
    ``now`` bounds the future (``absurd_timestamp`` beyond ``now`` + 1 day). Readings keep the input order,
    as do quarantine rows. Series keys and ``unit`` longer than ``max_text_chars`` characters are
    quarantined (``oversized_field``). Raises ``ValueError`` only for inconsistent arguments, never for
    bad records.
    """
    n = len(values)
    partitions_np = np.asarray(partitions, dtype=np.int64).reshape(-1)
    offsets_np = np.asarray(offsets, dtype=np.int64).reshape(-1)
    if len(partitions_np) != n or len(offsets_np) != n or (keys is not None and len(keys) != n):
        raise ValueError(
            f"decode_records: values ({n}), keys ({'-' if keys is None else len(keys)}), partitions "
            f"({len(partitions_np)}) and offsets ({len(offsets_np)}) must have the same length"
        )
    cache = cache or schema_cache(mapping)
    ingested_ms = _as_ms(ingested_at)
    now_ms = _as_ms(now) if now is not None else _as_ms(pd.Timestamp.now(tz="UTC"))
    if max_text_chars < 1:
        raise ValueError(f"decode_records: max_text_chars must be >= 1, got {max_text_chars}")
    ctx = _Context(mapping=mapping, cache=cache, values=values, max_text_chars=max_text_chars)
    groups = _Groups()
    for start in range(0, n, CHUNK_RECORDS):
        chunk = values[start : start + CHUNK_RECORDS]
        if not _read_uniform_chunk(chunk, start, ctx):
            _split_records(chunk, start, ctx, groups)
    if groups.env_lines:
        _parse_group(groups.env_lines, groups.env_indices, groups.env_ids, ctx)
    if groups.bare_lines:
        _parse_group(groups.bare_lines, groups.bare_indices, None, ctx)

    readings = _accepted_readings(ctx, now_ms, topic, partitions_np, offsets_np, ingested_ms)
    quarantine = _quarantine_table(ctx.reasons, values, keys, topic, partitions_np, offsets_np, ingested_ms)
    if readings.num_rows + quarantine.num_rows != n:  # the no-loss invariant, checked on every call
        raise AssertionError(
            f"decode_records lost records: {n} in, {readings.num_rows} readings "
            f"+ {quarantine.num_rows} quarantined"
        )
    return DecodedBatch(readings=readings, quarantine=quarantine)


@dataclass
class _Groups:
    """Payload lines to parse: envelope payloads (with their schema id) and bare payloads."""

    env_lines: list[bytes] = field(default_factory=list)
    env_indices: list[int] = field(default_factory=list)
    env_ids: list[str] = field(default_factory=list)
    bare_lines: list[bytes] = field(default_factory=list)
    bare_indices: list[int] = field(default_factory=list)


def _read_uniform_chunk(chunk: Sequence[bytes | None], start: int, ctx: _Context) -> bool:
    """Fast path: a chunk of compact envelopes of one known, compatible schema, read in one Arrow call.

    Every record must be ``P{...}`` + ``}`` with ``P`` the cached prefix ``{"schema":...,"payload":``; the
    payload slices are newline-joined (a count proves that no slice holds a newline) and Arrow verifies
    each is an object of the right field types. Returns False, recording nothing, when the chunk is not
    like that or Arrow rejects it: the chunk then takes the per-record path.
    """
    first = chunk[0] if chunk else None
    if not first:
        return False
    prefix = next((p for p in ctx.cache.by_prefix if first.startswith(p)), None)
    if prefix is None and first.startswith(ENVELOPE_PREFIX):  # a schema not seen yet: learn it from `first`
        try:
            obj = _loads(first)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(obj, dict) or not _is_envelope(obj):
            return False
        ctx.cache.remember_prefix(first, obj["schema"], ctx.cache.verdict(obj["schema"]))
        prefix = next((p for p in ctx.cache.by_prefix if first.startswith(p)), None)
    if prefix is None or ctx.cache.by_prefix[prefix].reason is not None:
        return False
    verdict = ctx.cache.by_prefix[prefix]
    cut = len(prefix)
    opening = prefix + b"{"  # the payload must be an object (Arrow reads a bare `null` as a row of nulls)
    try:
        lines = [v[cut:-1] for v in chunk if v.startswith(opening) and v.endswith(b"}")]  # type: ignore[union-attr]
    except AttributeError:  # a None (tombstone) in the chunk
        return False
    m = len(chunk)
    if len(lines) != m:
        return False
    payloads = b"\n".join(lines)
    if payloads.count(b"\n") != m - 1:  # a raw line break inside a record
        return False
    read_schema = ctx.mapping.arrow_read_schema()
    options = pajson.ParseOptions(explicit_schema=read_schema, unexpected_field_behavior="ignore")
    try:
        table = pajson.read_json(
            pa.BufferReader(payloads),
            read_options=pajson.ReadOptions(use_threads=True, block_size=BLOCK_BYTES),
            parse_options=options,
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    if table.num_rows != m:
        return False
    ctx.parsed.tables.append(table.select(read_schema.names))
    ctx.parsed.indices.append(np.arange(start, start + m, dtype=np.int64))
    ctx.parsed.schema_ids.append(np.full(m, ctx.parsed.code(verdict.schema_id), dtype=np.int32))
    return True


def _split_records(values: Sequence[bytes | None], start: int, ctx: _Context, groups: _Groups) -> None:
    """Route each record: empty -> quarantine; known envelope prefix -> payload slice; else orjson path.

    This loop is the only per-record Python of the common case, so it is kept to a prefix test and a slice.
    """
    reasons = ctx.reasons
    by_prefix = ctx.cache.by_prefix
    env_lines, env_indices, env_ids = groups.env_lines, groups.env_indices, groups.env_ids
    bare_lines, bare_indices = groups.bare_lines, groups.bare_indices
    prefix, prefix_len, verdict = b"\x00", 1, SchemaVerdict("", None)
    for i, value in enumerate(values, start):
        if not value:
            reasons[i] = "empty_message"
            continue
        if not value.startswith(prefix):
            prefix = next((p for p in by_prefix if value.startswith(p)), b"") if by_prefix else b""
            if not prefix:
                prefix = b"\x00"
                if value.startswith(b"{") and b'"payload"' not in value:
                    # An object that cannot be an envelope: a bare payload, Arrow validates it.
                    bare_lines.append(value)
                    bare_indices.append(i)
                else:
                    _slow_path(i, value, ctx, groups)
                continue
            prefix_len, verdict = len(prefix), by_prefix[prefix]
        if verdict.reason is not None:
            reasons[i] = verdict.reason
        elif value.endswith(b"}") and value.startswith(b"{", prefix_len):
            env_lines.append(value[prefix_len:-1])
            env_indices.append(i)
            env_ids.append(verdict.schema_id)
        else:
            _slow_path(i, value, ctx, groups)


def _slow_path(i: int, value: bytes, ctx: _Context, groups: _Groups) -> None:
    """A record that may be an envelope in an unknown layout: parse it fully with orjson."""
    try:
        obj = _loads(value)
    except orjson.JSONDecodeError:
        ctx.reject(i, None)
        return
    if not isinstance(obj, dict):
        ctx.reasons[i] = f"not_an_object:{_json_type(obj)}"
        return
    if not _is_envelope(obj):
        groups.bare_lines.append(orjson.dumps(obj))
        groups.bare_indices.append(i)
        return
    verdict = ctx.cache.verdict(obj["schema"])
    ctx.cache.remember_prefix(value, obj["schema"], verdict)
    payload = obj["payload"]
    if verdict.reason is not None:
        ctx.reasons[i] = verdict.reason
    elif payload is None:
        ctx.reasons[i] = "empty_message:null payload"
    elif not isinstance(payload, dict):
        ctx.reasons[i] = f"not_an_object:payload is {_json_type(payload)}"
    else:
        groups.env_lines.append(orjson.dumps(payload))
        groups.env_indices.append(i)
        groups.env_ids.append(verdict.schema_id)


def _accepted_readings(
    ctx: _Context,
    now_ms: int,
    topic: str,
    partitions: np.ndarray,
    offsets: np.ndarray,
    ingested_ms: int,
) -> pa.Table:
    parsed, mapping, reasons = ctx.parsed, ctx.mapping, ctx.reasons
    if not parsed.tables:
        return RAW_READINGS_SCHEMA.empty_table()
    table = pa.concat_tables(parsed.tables)
    indices = np.concatenate(parsed.indices)
    schema_ids = np.concatenate(parsed.schema_ids)
    order = np.argsort(indices, kind="stable")
    if not np.all(order[:-1] < order[1:]):
        table, indices, schema_ids = table.take(pa.array(order)), indices[order], schema_ids[order]
    row_reasons, event_ms = _check_rows(table, mapping, now_ms, ctx.max_text_chars)
    rejected = np.flatnonzero(row_reasons != None)  # noqa: E711
    for k in rejected:
        reasons[int(indices[k])] = row_reasons[k]
    if len(rejected):
        keep = row_reasons == None  # noqa: E711
        table = table.filter(pa.array(keep))
        indices, schema_ids, event_ms = indices[keep], schema_ids[keep], event_ms[keep]
    prov = _provenance(len(indices), topic, partitions[indices], offsets[indices], ingested_ms)
    return _readings_table(table, schema_ids, parsed.id_names, event_ms, mapping, prov)


def _quarantine_table(
    reasons: dict[int, str],
    values: Sequence[bytes | None],
    keys: Sequence[bytes | None] | None,
    topic: str,
    partitions: np.ndarray,
    offsets: np.ndarray,
    ingested_ms: int,
) -> pa.Table:
    rows = np.fromiter(sorted(reasons), dtype=np.int64, count=len(reasons))
    columns = {
        "reason": pa.array([reasons[int(i)] for i in rows], pa.string()),
        "raw": pa.array([values[int(i)] for i in rows], pa.binary()),
        "key": (
            pa.array([keys[int(i)] for i in rows], pa.binary())
            if keys is not None
            else pa.nulls(len(rows), pa.binary())
        ),
        **_provenance(len(rows), topic, partitions[rows], offsets[rows], ingested_ms),
    }
    return pa.Table.from_arrays([columns[f.name] for f in QUARANTINE_SCHEMA], schema=QUARANTINE_SCHEMA)
