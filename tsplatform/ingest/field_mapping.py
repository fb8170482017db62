"""The payload field mapping, and the Kafka Connect schemas checked against it.

:class:`FieldMapping` says which payload fields hold the time, the value, the series keys and the
sensor attributes. :func:`schema_incompatibility` tells whether a Connect struct schema can feed a
mapping, and :class:`SchemaCache` keeps one :class:`SchemaVerdict` (``schema_id`` fingerprint and
incompatibility, if any) per distinct envelope schema, by canonical JSON and by the envelope's byte
prefix. How the decoder uses them: :mod:`tsplatform.ingest.decode`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import pyarrow as pa

TimeUnit = Literal["ms", "s", "us", "iso"]

ENVELOPE_PREFIX = b'{"schema":'
_PAYLOAD_INFIX = b',"payload":'
#: Largest integer a float64 holds exactly (ss_id is read as float64, then checked and cast to int64).
MAX_EXACT_INT = 2.0**53

STRING_ATTRIBUTES = ("unit",)
INTEGER_ATTRIBUTES = ("ss_id",)
_FLOAT_ATTRIBUTES = ("rstart", "rend", *(f"rlev{i}" for i in range(1, 9)))
ATTRIBUTE_COLUMNS: tuple[str, ...] = (*INTEGER_ATTRIBUTES, *STRING_ATTRIBUTES, *_FLOAT_ATTRIBUTES)

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
            fields.append(pa.field(source, pa.string() if column in STRING_ATTRIBUTES else pa.float64()))
        return pa.schema(fields)


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
        if column in STRING_ATTRIBUTES:
            expected[source] = _CONNECT_STRING
        elif column in INTEGER_ATTRIBUTES:
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
