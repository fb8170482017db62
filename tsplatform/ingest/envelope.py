"""Encode readings as Kafka Connect JsonConverter records (the message contract of ARCHITECTURE.md).

A record value is ``{"schema": <CONNECT_SCHEMA>, "payload": {...}}`` (``schemas.enable=true``) or, with
``envelope=False``, the bare payload. The schema bytes are rendered once and reused, so encoding costs one
``orjson.dumps`` of the payload per reading.

Payload fields: ``ss_id`` (int), ``rstart``, ``rlev1``..``rlev8``, ``rend`` (float), ``event_time``
(int64 epoch milliseconds, UTC; logical type ``org.apache.kafka.connect.data.Timestamp``),
``input_data`` (float), ``position``, ``type_name``, ``unit`` (string). The contract declares ``ss_id``,
``rstart``, ``rlev1``..``rlev4`` and ``rend`` non-optional; when a reading does not know one of them it is
sent as ``null`` and the schema of that message marks the field ``"optional": true`` (same field list, so
decoders accept it; the schema fingerprint differs). NaN attributes count as unknown.

Keys: :func:`message_key` is the UTF-8 JSON array ``[position, type_name]``, so that all readings of a
series land in the same partition (Kafka's default partitioner hashes the key bytes).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
import pandas as pd

TIMESTAMP_LOGICAL = "org.apache.kafka.connect.data.Timestamp"
SCHEMA_NAME = "SENSOR_DATA_VIEW"

#: Payload fields in contract order: (field, Connect type, optional in the contract).
CONTRACT_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("ss_id", "int64", False),
    ("rstart", "float", False),
    *((f"rlev{i}", "float", i > 4) for i in range(1, 9)),
    ("rend", "float", False),
    ("event_time", "int64", False),
    ("input_data", "float", True),
    ("position", "string", False),
    ("type_name", "string", False),
    ("unit", "string", True),
)
PAYLOAD_FIELDS: tuple[str, ...] = tuple(name for name, _, _ in CONTRACT_FIELDS)
#: Attribute fields a reading may lack (sent as null).
ATTRIBUTE_FIELDS: tuple[str, ...] = ("ss_id", "rstart", *(f"rlev{i}" for i in range(1, 9)), "rend", "unit")
#: Attributes the contract declares non-optional (marked optional in a message that lacks them).
_REQUIRED_ATTRIBUTES: tuple[str, ...] = tuple(
    name for name, _, optional in CONTRACT_FIELDS if not optional and name in ATTRIBUTE_FIELDS
)


def connect_schema(unknown: Iterable[str] = ()) -> dict[str, Any]:
    """The Connect struct schema of the contract; fields in ``unknown`` are marked optional."""
    unknown = set(unknown)
    fields: list[dict[str, Any]] = []
    for name, kind, optional in CONTRACT_FIELDS:
        spec: dict[str, Any] = {"type": kind, "optional": optional or name in unknown}
        if name == "event_time":
            spec.update({"name": TIMESTAMP_LOGICAL, "version": 1})
        spec["field"] = name
        fields.append(spec)
    return {"type": "struct", "name": SCHEMA_NAME, "optional": False, "fields": fields}


#: The contract schema, exactly as in ARCHITECTURE.md.
CONNECT_SCHEMA: dict[str, Any] = connect_schema()


@lru_cache(maxsize=256)
def envelope_prefix(unknown: frozenset[str] = frozenset()) -> bytes:
    """``{"schema":<schema>,"payload":`` for a given set of unknown (null) required attributes."""
    return b'{"schema":' + orjson.dumps(connect_schema(unknown)) + b',"payload":'


def message_key(position: str, type_name: str) -> bytes:
    """Kafka key of a series: UTF-8 JSON ``[position, type_name]`` (compact, non-ASCII kept)."""
    return orjson.dumps([position, type_name])


def to_epoch_ms(instant: Any) -> int:
    """Epoch milliseconds (UTC) of an int (taken as ms), ``datetime`` or ``pd.Timestamp`` (naive = UTC)."""
    if isinstance(instant, bool):
        raise ValueError(f"not an instant: {instant!r}")
    if isinstance(instant, int | np.integer):
        return int(instant)
    if isinstance(instant, dt.datetime | pd.Timestamp | np.datetime64 | str):
        ts = pd.Timestamp(instant)
        if ts is pd.NaT:
            raise ValueError("event_time is missing (NaT)")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return int(ts.value // 1_000_000)
    raise ValueError(f"not an instant: {instant!r}")


def _unknown_required(payload: dict[str, Any]) -> frozenset[str]:
    return frozenset(name for name in _REQUIRED_ATTRIBUTES if payload.get(name) is None)


def encode_reading(
    position: str,
    type_name: str,
    event_time: Any,
    value: float | None,
    *,
    ss_id: int | None = None,
    unit: str | None = None,
    rstart: float | None = None,
    rend: float | None = None,
    rlev: Iterable[float | None] = (),
    envelope: bool = True,
) -> bytes:
    """One reading as a Connect JSON record value (``envelope=False``: the bare payload).

    ``event_time`` is an instant (see :func:`to_epoch_ms`); ``rlev`` gives ``rlev1``.. in order (up to 8).
    Raises ``ValueError`` for a non-string key or a non-finite ``value`` (use ``None`` for a null reading).
    """
    if not isinstance(position, str) or not isinstance(type_name, str):
        raise ValueError(f"series key must be strings, got {position!r}, {type_name!r}")
    if value is not None and not math.isfinite(value):
        raise ValueError(f"value {value!r} is not finite (JSON has no NaN/inf)")
    levels = list(rlev)
    if len(levels) > 8:
        raise ValueError(f"at most 8 alert levels (rlev1..rlev8), got {len(levels)}")
    payload: dict[str, Any] = {"ss_id": None if ss_id is None else int(ss_id), "rstart": _num(rstart)}
    for i in range(1, 9):
        payload[f"rlev{i}"] = _num(levels[i - 1]) if i <= len(levels) else None
    payload.update(
        rend=_num(rend),
        event_time=to_epoch_ms(event_time),
        input_data=None if value is None else float(value),
        position=position,
        type_name=type_name,
        unit=unit,
    )
    body = orjson.dumps(payload)
    if not envelope:
        return body
    return envelope_prefix(_unknown_required(payload)) + body + b"}"


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def event_time_ms_column(column: pd.Series) -> np.ndarray:
    """Epoch ms (float, NaN where missing) of a datetime column (naive = UTC) or an integer ms column."""
    if pd.api.types.is_datetime64_any_dtype(column):
        values = column.dt.tz_convert("UTC") if column.dt.tz is not None else column
        ms = values.to_numpy(dtype="datetime64[ns]").astype("datetime64[ms]").astype(np.int64).astype(float)
        ms[values.isna().to_numpy()] = np.nan
        return ms
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=float, na_value=np.nan)
    raise ValueError(f"event_time column has dtype {column.dtype}: expected datetimes or epoch milliseconds")


def encode_readings(frame: pd.DataFrame, *, envelope: bool = True) -> list[bytes]:
    """Encode every row of ``frame`` (vectorised column handling, one ``orjson.dumps`` per row).

    Columns: ``position``, ``type_name`` (strings), ``event_time`` (datetimes, naive = UTC, or int epoch
    ms), ``value``; optional ``ss_id``, ``unit``, ``rstart``, ``rend``, ``rlev1``..``rlev8`` (missing
    columns and NaN/None cells are sent as null). Raises ``ValueError`` naming the first bad row when a key
    is not a string, a time is missing or a value is not finite: filter those first (see
    :func:`encodable_rows`).
    """
    missing = [c for c in ("position", "type_name", "event_time", "value") if c not in frame.columns]
    if missing:
        raise ValueError(f"encode_readings: missing column(s) {missing}")
    n = len(frame)
    ok = encodable_rows(frame)
    if not ok.all():
        first = int(np.flatnonzero(~ok)[0])
        raise ValueError(
            f"encode_readings: {int((~ok).sum())} row(s) cannot be encoded (first: row {first}, "
            "non-string key, missing time or non-finite value); filter with encodable_rows()"
        )
    ms = event_time_ms_column(frame["event_time"]).astype(np.int64).tolist()
    columns: dict[str, list[Any]] = {}
    for name in PAYLOAD_FIELDS:
        if name == "event_time":
            columns[name] = ms
        elif name == "input_data":
            columns[name] = frame["value"].to_numpy(dtype=float).tolist()
        elif name in ("position", "type_name"):
            columns[name] = frame[name].tolist()
        elif name not in frame.columns:
            columns[name] = [None] * n
        elif name == "ss_id":
            ids = pd.to_numeric(frame[name], errors="coerce")
            columns[name] = [None if pd.isna(v) else int(v) for v in ids.tolist()]
        elif name == "unit":
            columns[name] = [v if isinstance(v, str) else None for v in frame[name].tolist()]
        else:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
            values[~np.isfinite(values)] = np.nan  # orjson writes NaN as null
            columns[name] = values.tolist()
    required_unknown = _REQUIRED_ATTRIBUTES
    unknown_masks = np.zeros((n, len(required_unknown)), dtype=bool)
    for j, name in enumerate(required_unknown):
        unknown_masks[:, j] = [v is None or (isinstance(v, float) and math.isnan(v)) for v in columns[name]]
    names = PAYLOAD_FIELDS
    bodies = [orjson.dumps(dict(zip(names, row, strict=True))) for row in zip(*columns.values(), strict=True)]
    if not envelope:
        return bodies
    if not unknown_masks.any():
        prefix = envelope_prefix()
        return [prefix + body + b"}" for body in bodies]
    shapes, inverse = np.unique(unknown_masks, axis=0, return_inverse=True)
    prefixes = [
        envelope_prefix(frozenset(np.asarray(required_unknown, dtype=object)[shape.astype(bool)].tolist()))
        for shape in shapes
    ]
    return [prefixes[k] + body + b"}" for k, body in zip(inverse.reshape(-1).tolist(), bodies, strict=True)]


def encodable_rows(frame: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the rows :func:`encode_readings` accepts (string keys, a time, a finite value)."""
    keys_ok = np.ones(len(frame), dtype=bool)
    for name in ("position", "type_name"):
        is_text = (isinstance(v, str) for v in frame[name].tolist())
        keys_ok &= np.fromiter(is_text, dtype=bool, count=len(frame))
    try:
        times_ok = ~np.isnan(event_time_ms_column(frame["event_time"]))
    except ValueError:
        times_ok = np.zeros(len(frame), dtype=bool)
    values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float)
    return keys_ok & times_ok & np.isfinite(values)


def message_keys(frame: pd.DataFrame) -> list[bytes]:
    """:func:`message_key` of every row of ``frame`` (columns ``position``, ``type_name``)."""
    cache: dict[tuple[str, str], bytes] = {}
    out = []
    for key in zip(frame["position"].tolist(), frame["type_name"].tolist(), strict=True):
        encoded = cache.get(key)
        if encoded is None:
            encoded = cache[key] = message_key(*key)
        out.append(encoded)
    return out
