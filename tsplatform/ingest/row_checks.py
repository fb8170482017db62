"""Vectorised checks of the rows Arrow parsed, in priority order.

Per row the quarantine reason of the first failing check (missing fields, invalid UTF-8, oversized
series keys or ``unit``, unparseable or absurd timestamps, non-finite numbers, a fractional ``ss_id``)
and the event time in UTC milliseconds: :func:`check_rows`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tsplatform.ingest.field_mapping import (
    INTEGER_ATTRIBUTES,
    MAX_EXACT_INT,
    STRING_ATTRIBUTES,
    FieldMapping,
    TimeUnit,
)
from tsplatform.settings import DEFAULT_MAX_TEXT_CHARS

#: ``absurd_timestamp`` when an event time is later than ``now`` plus this many milliseconds (1 day).
MAX_FUTURE_MS = 86_400_000
_TIME_FACTORS_TO_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001}


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


def check_rows(
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
        if column in STRING_ATTRIBUTES:
            checks.append((_invalid_utf8_rows(data), f"malformed_json:invalid UTF-8 in {source}"))
            checks.append(_oversized_rows(data, source, max_text_chars))
            continue
        numbers = _np(data)
        valid = data.is_valid().to_numpy(zero_copy_only=False)
        checks.append((valid & ~np.isfinite(numbers), f"non_finite_value:{source}"))
        if column in INTEGER_ATTRIBUTES:
            with np.errstate(invalid="ignore"):
                bad = valid & ((np.abs(numbers) > MAX_EXACT_INT) | (numbers != np.trunc(numbers)))
            checks.append((bad, f"wrong_type:{source} (got non-integer number)"))
    reasons = _first_reasons(checks, n)
    accepted = reasons == None  # noqa: E711 (element-wise on an object array)
    event_ms = np.where(accepted, np.nan_to_num(ms, nan=0.0, posinf=0.0, neginf=0.0), 0).astype(np.int64)
    return reasons, event_ms
