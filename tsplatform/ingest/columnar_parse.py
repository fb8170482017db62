"""The columnar route: newline-delimited JSON payloads parsed in chunks by Arrow's JSON reader.

:func:`parse_group` reads payload lines with an explicit schema for the mapped fields; a chunk Arrow
rejects is read again around the rejected row (Arrow names it), and that row is classified alone
(:mod:`tsplatform.ingest.record_classification`); past ``ROW_WALK_LIMIT`` rejected rows, the rest of the
chunk is screened with ``orjson`` first. :class:`DecodeContext` is the state of one
:func:`~tsplatform.ingest.decode.decode_records` call: the rows parsed so far and the quarantine reasons.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pajson

from tsplatform.ingest.field_mapping import FieldMapping, SchemaCache, fingerprint
from tsplatform.ingest.record_classification import classify_record, parse_json, payload_problem
from tsplatform.settings import DEFAULT_MAX_TEXT_CHARS

#: Records parsed by one call of Arrow's JSON reader (bounds memory and the cost of a rejected chunk).
CHUNK_RECORDS = 65_536
#: Block size of a threaded Arrow read (blocks are parsed in parallel).
BLOCK_BYTES = 1 << 20
_ROW_IN_ERROR = re.compile(r" in row (\d+)")


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
    lines: list[bytes], indices: list[int], ids: list[str] | None, ctx: DecodeContext
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
                line = orjson.dumps(parse_json(line))
            except orjson.JSONDecodeError:
                ctx.reject(indices[k], None)
                continue
        out_lines.append(line)
        out_indices.append(indices[k])
        if out_ids is not None and ids is not None:
            out_ids.append(ids[k])
    return out_lines, out_indices, out_ids


@dataclass
class DecodeContext:
    """Shared state of one :func:`~tsplatform.ingest.decode.decode_records` call."""

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


def parse_group(
    lines: list[bytes],
    indices: list[int],
    ids: list[str] | None,
    ctx: DecodeContext,
    *,
    screened: bool = False,
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
    rows: list[int], lines: list[bytes], indices: list[int], ids: list[str] | None, ctx: DecodeContext
) -> None:
    """Classify ``rows`` of ``lines`` with orjson; parse the ones that pass with Arrow (screened)."""
    good_lines: list[bytes] = []
    good_indices: list[int] = []
    good_ids: list[str] | None = [] if ids is not None else None
    mapping = ctx.mapping
    for k in rows:
        try:
            payload = parse_json(lines[k])
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
        parse_group(good_lines, good_indices, good_ids, ctx, screened=True)
