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

This module routes the records and builds the two tables; the pieces live in
:mod:`tsplatform.ingest.field_mapping` (``FieldMapping``, Connect schema verdicts and fingerprints),
:mod:`tsplatform.ingest.columnar_parse` (Arrow reads of payload lines, ``CHUNK_RECORDS``,
``ROW_WALK_LIMIT``), :mod:`tsplatform.ingest.record_classification` (the per-record ``orjson`` route,
``MAX_JSON_DEPTH``) and :mod:`tsplatform.ingest.row_checks` (the vectorised checks, ``MAX_FUTURE_MS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from tsplatform.ids import series_ids
from tsplatform.ingest.columnar_parse import BLOCK_BYTES, CHUNK_RECORDS, DecodeContext, parse_group
from tsplatform.ingest.field_mapping import (
    ATTRIBUTE_COLUMNS,
    ENVELOPE_PREFIX,
    FieldMapping,
    SchemaCache,
    SchemaVerdict,
    schema_cache,
)
from tsplatform.ingest.record_classification import is_envelope, json_type, parse_json
from tsplatform.ingest.row_checks import check_rows
from tsplatform.ingest.schema import QUARANTINE_SCHEMA, RAW_READINGS_SCHEMA, UTC_MS
from tsplatform.settings import DEFAULT_MAX_TEXT_CHARS


@dataclass(frozen=True)
class DecodedBatch:
    """The outcome of :func:`decode_records`: accepted readings and quarantined records."""

    readings: pa.Table
    quarantine: pa.Table

    @property
    def total(self) -> int:
        return self.readings.num_rows + self.quarantine.num_rows


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
    ctx = DecodeContext(mapping=mapping, cache=cache, values=values, max_text_chars=max_text_chars)
    groups = _Groups()
    for start in range(0, n, CHUNK_RECORDS):
        chunk = values[start : start + CHUNK_RECORDS]
        if not _read_uniform_chunk(chunk, start, ctx):
            _split_records(chunk, start, ctx, groups)
    if groups.env_lines:
        parse_group(groups.env_lines, groups.env_indices, groups.env_ids, ctx)
    if groups.bare_lines:
        parse_group(groups.bare_lines, groups.bare_indices, None, ctx)

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


def _read_uniform_chunk(chunk: Sequence[bytes | None], start: int, ctx: DecodeContext) -> bool:
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
            obj = parse_json(first)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(obj, dict) or not is_envelope(obj):
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


def _split_records(values: Sequence[bytes | None], start: int, ctx: DecodeContext, groups: _Groups) -> None:
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


def _slow_path(i: int, value: bytes, ctx: DecodeContext, groups: _Groups) -> None:
    """A record that may be an envelope in an unknown layout: parse it fully with orjson."""
    try:
        obj = parse_json(value)
    except orjson.JSONDecodeError:
        ctx.reject(i, None)
        return
    if not isinstance(obj, dict):
        ctx.reasons[i] = f"not_an_object:{json_type(obj)}"
        return
    if not is_envelope(obj):
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
        ctx.reasons[i] = f"not_an_object:payload is {json_type(payload)}"
    else:
        groups.env_lines.append(orjson.dumps(payload))
        groups.env_indices.append(i)
        groups.env_ids.append(verdict.schema_id)


def _accepted_readings(
    ctx: DecodeContext,
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
    row_reasons, event_ms = check_rows(table, mapping, now_ms, ctx.max_text_chars)
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
