"""Reading validation (Pandera schema + timestamp and range checks) and de-duplication.

A reading frame has ``position``, ``type_name``, ``series_id`` (str), ``event_time`` (datetime64[ms, UTC])
and ``value`` (float64), optionally ``rstart`` / ``rend`` (float64, the sensor's valid range) and any other
columns (ss_id, unit, rlev1..8, topic, partition, offset, ingested_at, schema_id, ...), which pass through
untouched.

Rejection reasons (column ``reason`` of the rejected frame; one per row, the first that applies, in
this order):

==========================  ==========================================================================
``unparseable_timestamp``   ``event_time`` is null or cannot be parsed as a time
``schema:<column>``         a key column is null or not a string, or ``value`` / ``rstart`` / ``rend`` is
                            present but not numeric
``non_finite_value``        ``value`` is null, NaN or ±inf
``future_timestamp``        ``event_time`` is later than ``now`` (default: the current UTC time)
``outside_day``             ``day`` was given and ``event_time`` is not inside that UTC day
``value_out_of_range``      ``rstart``/``rend`` present and not null, and value < rstart or value > rend
==========================  ==========================================================================

``event_time`` parsing: datetime64 values (tz-aware converted to UTC, naive taken as UTC), integers as
epoch milliseconds (the Kafka Connect ``Timestamp`` logical type), strings element-wise via
``pd.to_datetime(utc=True, format="mixed")`` (naive strings are UTC; offsets are honoured per string).
Valid rows come back with ``event_time`` as datetime64[ms, UTC] and ``value`` as float64; rejected rows
keep their original column values plus ``reason``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pandera.pandas as pa

REQUIRED_COLUMNS = ("position", "type_name", "series_id", "event_time", "value")
KEY_COLUMNS = ("position", "type_name", "series_id")
PROVENANCE_COLUMNS = ("topic", "partition", "offset", "ingested_at", "schema_id")
REASONS = (
    "unparseable_timestamp",
    "schema:<column>",
    "non_finite_value",
    "future_timestamp",
    "outside_day",
    "value_out_of_range",
)
EVENT_TIME_DTYPE = pd.DatetimeTZDtype("ms", "UTC")


def _is_str(s: pd.Series) -> pd.Series:
    return s.map(lambda v: isinstance(v, str)).astype(bool)


readings_schema = pa.DataFrameSchema(
    {
        "position": pa.Column(object, checks=pa.Check(_is_str, element_wise=False), nullable=False),
        "type_name": pa.Column(object, checks=pa.Check(_is_str, element_wise=False), nullable=False),
        "series_id": pa.Column(object, checks=pa.Check(_is_str, element_wise=False), nullable=False),
        "event_time": pa.Column(EVENT_TIME_DTYPE, nullable=False),
        "value": pa.Column(
            "float64", checks=pa.Check(lambda s: np.isfinite(s), element_wise=False), nullable=False
        ),
        "rstart": pa.Column("float64", nullable=True, required=False),
        "rend": pa.Column("float64", nullable=True, required=False),
    },
    strict=False,
    name="readings",
    description="Validated sensor readings: series key, UTC millisecond event time, finite float value.",
)
"""Pandera schema of a validated reading frame (extra columns allowed)."""


def _check_columns(df: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"readings frame lacks required column(s): {', '.join(missing)}")


def parse_event_time(raw: pd.Series) -> pd.Series:
    """``raw`` as datetime64[ms, UTC]; unparseable entries become NaT (see the module doc for the rules)."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        parsed = raw.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed = raw.dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        parsed = pd.to_datetime(raw, unit="ms", utc=True, errors="coerce")
    else:
        numeric = raw.map(
            lambda v: isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        )
        parsed = pd.Series(pd.NaT, index=raw.index, dtype=pd.DatetimeTZDtype("ns", "UTC"))
        if numeric.any():
            parsed[numeric] = pd.to_datetime(
                raw[numeric].astype("float64"), unit="ms", utc=True, errors="coerce"
            )
        text = ~numeric & raw.notna()
        if text.any():
            # per element: pandas' ISO8601 fast path applies the first string's UTC offset to later naive
            # strings (measured with pandas 2.3: "+09:00" then "12:00:00" gave 03:00 UTC)
            parsed[text] = pd.to_datetime(raw[text].astype(str), utc=True, errors="coerce", format="mixed")
    return parsed.astype(EVENT_TIME_DTYPE)


def validate_readings(
    df: pd.DataFrame, *, day: dt.date | None = None, now: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``df`` into ``(valid_df, rejected_df)``; never raises on bad rows.

    ``day``: when given, readings outside ``[day 00:00 UTC, day+1 00:00 UTC)`` are rejected.
    ``now``: future cut-off (default: current UTC time; naive = UTC). ``rejected_df`` has every input
    column (original values) plus ``reason`` (see the module doc). Raises ValueError only when a required
    column is missing entirely.
    """
    _check_columns(df)
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now_ts.tzinfo is None:
        now_ts = now_ts.tz_localize("UTC")
    work = df.copy()
    reason = pd.Series(pd.NA, index=df.index, dtype="object")

    def flag(mask: pd.Series | np.ndarray, code: str) -> None:
        reason[np.asarray(mask, dtype=bool) & reason.isna().to_numpy()] = code

    work["event_time"] = parse_event_time(df["event_time"])
    flag(work["event_time"].isna(), "unparseable_timestamp")
    for col in KEY_COLUMNS:
        flag(~_is_str(df[col]), f"schema:{col}")
    value_numeric = pd.to_numeric(df["value"], errors="coerce")
    not_numeric = value_numeric.isna() & df["value"].notna() & ~df["value"].map(_is_nan_like).astype(bool)
    flag(not_numeric, "schema:value")
    work["value"] = value_numeric.astype("float64")
    flag(~np.isfinite(work["value"].to_numpy()), "non_finite_value")
    for col in ("rstart", "rend"):
        if col in work.columns:
            bound = pd.to_numeric(df[col], errors="coerce")
            flag(bound.isna() & df[col].notna() & ~df[col].map(_is_nan_like).astype(bool), f"schema:{col}")
            work[col] = bound.astype("float64")
    flag(work["event_time"] > now_ts, "future_timestamp")
    if day is not None:
        start = pd.Timestamp(day, tz="UTC")
        end = start + pd.Timedelta(days=1)
        flag((work["event_time"] < start) | (work["event_time"] >= end), "outside_day")
    if "rstart" in work.columns:
        flag(work["rstart"].notna() & (work["value"] < work["rstart"]), "value_out_of_range")
    if "rend" in work.columns:
        flag(work["rend"].notna() & (work["value"] > work["rend"]), "value_out_of_range")

    ok = reason.isna().to_numpy()
    valid = work[ok]
    try:  # the schema as the last line of defence: anything it still rejects is quarantined, not raised
        valid = readings_schema.validate(valid, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        bad = cases.dropna(subset=["index"])
        for column, rows in bad.groupby("column")["index"]:
            reason[reason.index.isin(rows.tolist()) & reason.isna()] = f"schema:{column}"
        if bad.empty:  # a column-level failure (e.g. dtype): quarantine the whole batch with that reason
            first = cases.iloc[0]
            reason[reason.isna()] = f"schema:{first['column']}"
        ok = reason.isna().to_numpy()
        valid = work[ok]
    rejected = df[~ok].copy()
    rejected["reason"] = reason[~ok].astype(str)
    return valid, rejected


def _is_nan_like(v: object) -> bool:
    return isinstance(v, float | np.floating) and bool(np.isnan(v))


def deduplicate(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove exact duplicates, then same ``(series_id, event_time)`` duplicates; keep the first.

    "Exact" means equal in every column except the Kafka provenance columns (topic, partition, offset,
    ingested_at, schema_id), so a reading delivered twice is an exact duplicate. "First" is the lowest
    ``offset`` when that column exists (stable, so ties keep input order), else input order. Returns
    ``(deduped_df, duplicates_df)``; both keep the input row order and index, and ``duplicates_df`` adds
    ``reason`` = ``exact_duplicate`` or ``same_timestamp``. Vectorised (``DataFrame.duplicated``).
    """
    for col in ("series_id", "event_time"):
        if col not in df.columns:
            raise ValueError(f"deduplicate needs column {col!r}")
    order = (
        np.argsort(df["offset"].to_numpy(), kind="stable") if "offset" in df.columns else np.arange(len(df))
    )
    ordered = df.iloc[order]
    payload = [c for c in df.columns if c not in PROVENANCE_COLUMNS]
    exact = ordered.duplicated(subset=payload, keep="first").to_numpy()
    same_ts = np.zeros(len(df), dtype=bool)
    remaining = ordered[~exact]
    same_ts[np.flatnonzero(~exact)] = remaining.duplicated(
        subset=["series_id", "event_time"], keep="first"
    ).to_numpy()
    reason = np.full(len(df), None, dtype=object)
    reason[order[exact]] = "exact_duplicate"
    reason[order[same_ts]] = "same_timestamp"
    dropped = pd.notna(reason)
    duplicates = df[dropped].copy()
    duplicates["reason"] = reason[dropped].astype(str)
    return df[~dropped], duplicates
