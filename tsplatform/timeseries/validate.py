"""Reading validation (Pandera schema + timestamp and range checks) and de-duplication.

A reading frame has ``position``, ``type_name``, ``series_id`` (str), ``event_time`` (datetime64[ms, UTC])
and ``value`` (float64), optionally ``rstart`` / ``rend`` (float64, the sensor's valid range) and any other
columns (ss_id, unit, rlev1..8, topic, partition, offset, ingested_at, schema_id, ...), which pass through
untouched. ``series_id`` may be left out: it is then derived from the key (:func:`tsplatform.ids.series_id`;
None where the key is not two strings) and added to both outputs.

Column dtypes: the key columns may be ``object``, ``string`` (python or pyarrow storage), ``category`` or
pyarrow strings; ``event_time`` also a pyarrow timestamp; ``value`` / ``rstart`` / ``rend`` also nullable or
pyarrow numbers (:mod:`tsplatform.timeseries.dtypes`, missing entries as None / NaN / NaT). Valid rows come
back with the key columns as ``object`` (str); rejected rows keep the input's dtypes and values.

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

Speed design (the whole cleaning chain of one ~150-row series-day has a 5 ms budget, while Pandera's own
``validate`` alone costs ~2.5 ms per call at that size): ``readings_schema`` stays the single definition of
a valid reading (the ``validated_readings`` asset check runs it as is on whole partitions).
``validate_readings`` takes a numpy fast path when the frame has the usual column dtypes (object keys,
datetime64 ``event_time``, float64 ``value`` / ``rstart`` / ``rend``); it then evaluates the schema on
the valid rows with :func:`schema_failure_cases`: the schema's own columns, ``required``, ``nullable``,
dtypes (through Pandera's dtype engine) and ``Check`` functions, read from ``readings_schema`` at call
time and applied vectorised in one pass, without Pandera's per-call machinery. Whenever that finds any
failure, or the schema uses a feature the evaluator does not reproduce (uniqueness, coercion, regex
columns, parsers, frame-level checks, ...), or the frame has other dtypes, the reference implementation
runs instead (``_validate_readings_reference``: pandas parsing per column, then
``readings_schema.validate(lazy=True)``), so the results are the same; the tests compare both
implementations, and the evaluator with Pandera's failure cases, on randomized and adversarial frames.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache, partial

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandas.api.types import infer_dtype
from pandera.engines import pandas_engine

from tsplatform.ids import series_ids
from tsplatform.timeseries.dtypes import numpy_columns

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


def _str_mask(values: np.ndarray) -> np.ndarray:
    """``isinstance(v, str)`` for every element of an object array (one pass, no pandas dispatch)."""
    if infer_dtype(values, skipna=False) == "string":  # C check: every element is a str (the usual case)
        return np.ones(values.size, dtype=bool)
    return np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=values.size)


def _str_series(s: pd.Series) -> pd.Series:
    """Element-wise ``isinstance(v, str)`` as a bool Series on ``s``'s index."""
    if s.dtype == object:
        return pd.Series(_str_mask(s.to_numpy()), index=s.index, name=s.name)
    return s.map(lambda v: isinstance(v, str)).astype(bool)


def is_str(s: pd.Series) -> pd.Series | bool:
    """Element-wise ``isinstance(v, str)`` (NaN / None / NA are not str): ``True`` when every element passes,
    else a bool Series on ``s``'s index (Pandera takes either; only failing elements are reported)."""
    if s.dtype == object:  # one pass over the object array (Series.map costs ~50 µs more per call)
        mask = _str_mask(s.to_numpy())
        return True if mask.all() else pd.Series(mask, index=s.index, name=s.name)
    return s.map(lambda v: isinstance(v, str)).astype(bool)


def is_finite(s: pd.Series) -> pd.Series | bool:
    """Element-wise ``np.isfinite`` (a ufunc on the array, no Series dispatch): ``True`` when every element
    is finite, else a bool Series on ``s``'s index."""
    mask = np.isfinite(s.to_numpy())
    return True if mask.all() else pd.Series(mask, index=s.index, name=s.name)


readings_schema = pa.DataFrameSchema(
    {
        "position": pa.Column(object, checks=pa.Check(is_str, element_wise=False), nullable=False),
        "type_name": pa.Column(object, checks=pa.Check(is_str, element_wise=False), nullable=False),
        "series_id": pa.Column(object, checks=pa.Check(is_str, element_wise=False), nullable=False),
        "event_time": pa.Column(EVENT_TIME_DTYPE, nullable=False),
        "value": pa.Column("float64", checks=pa.Check(is_finite, element_wise=False), nullable=False),
        "rstart": pa.Column("float64", nullable=True, required=False),
        "rend": pa.Column("float64", nullable=True, required=False),
    },
    strict=False,
    name="readings",
    description="Validated sensor readings: series key, UTC millisecond event time, finite float value.",
)
"""Pandera schema of a validated reading frame (extra columns allowed)."""


def _check_columns(df: pd.DataFrame) -> None:
    derivable = "position" in df.columns and "type_name" in df.columns  # series_id can be derived
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns and not (c == "series_id" and derivable)]
    if missing:
        raise ValueError(f"readings frame lacks required column(s): {', '.join(missing)}")


def _with_series_id(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` itself when it has ``series_id``, else a shallow copy with the derived ids (None where the key
    is not two strings), inserted after ``type_name``."""
    if "series_id" in df.columns:
        return df
    keys = numpy_columns(df, ("position", "type_name"))
    position, type_name = keys["position"], keys["type_name"]
    both = _str_mask(position.to_numpy(dtype=object)) & _str_mask(type_name.to_numpy(dtype=object))
    ids = np.full(len(df), None, dtype=object)
    if both.any():
        ids[both] = series_ids(position[both], type_name[both]).to_numpy()
    out = df.copy(deep=False)
    out.insert(list(df.columns).index("type_name") + 1, "series_id", ids)
    return out


_NUMPY_DTYPE_COLUMNS = (*KEY_COLUMNS, "event_time", "value", "rstart", "rend")


def _inputs(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(original, work)``: the input with ``series_id`` (derived when absent), whose rows the rejected
    frame keeps, and the same with numpy dtypes for the checks (see the module doc)."""
    _check_columns(df)
    original = _with_series_id(df)
    return original, numpy_columns(original, _NUMPY_DTYPE_COLUMNS)


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


def _now_utc(now: pd.Timestamp | None) -> pd.Timestamp:
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if now_ts.tzinfo is None:
        now_ts = now_ts.tz_localize("UTC")
    return now_ts


# reasons of the fast path, by code (0 = valid); flagged in the reference implementation's order
_FAST_REASONS = np.array(
    [
        None,
        "unparseable_timestamp",
        *(f"schema:{c}" for c in KEY_COLUMNS),
        "non_finite_value",
        "future_timestamp",
        "outside_day",
        "value_out_of_range",
    ],
    dtype=object,
)
_FLOAT64 = np.dtype("float64")
_OBJECT = np.dtype(object)


def _fast_path_applies(df: pd.DataFrame) -> bool:
    """The usual reading dtypes: unique column names, object keys, datetime64 ``event_time`` (any unit,
    naive or tz-aware), float64 ``value`` and (when present) ``rstart`` / ``rend``."""
    if not df.columns.is_unique:
        return False
    et = df["event_time"].dtype
    if not (isinstance(et, pd.DatetimeTZDtype) or (isinstance(et, np.dtype) and et.kind == "M")):
        return False
    if any(df[c].dtype != _OBJECT for c in KEY_COLUMNS):
        return False
    return all(df[c].dtype == _FLOAT64 for c in ("value", "rstart", "rend") if c in df.columns)


def _rows(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The same frame as ``frame[mask].copy()`` for a bool array ``mask`` (a copy when all True, else the
    taken rows; the index as pandas gives it), without pandas' boolean-indexing bookkeeping."""
    if mask.all():
        return frame.copy()
    if not mask.any():  # no block takes for an empty result
        out = frame.iloc[:0].copy()
        out.index = frame.index[mask]
        return out
    return frame.take(np.flatnonzero(mask))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@lru_cache(maxsize=64)
def _day_bounds_ms(day: dt.date) -> tuple[int, int]:
    """``[day 00:00 UTC, day+1 00:00 UTC)`` for whole-millisecond stamps: t < start <=> t_ms < ceil(start)."""
    start = pd.Timestamp(day, tz="UTC")
    end = start + pd.Timedelta(days=1)
    return _ceil_div(start.value, 1_000_000), _ceil_div(end.value, 1_000_000)


def validate_readings(
    df: pd.DataFrame, *, day: dt.date | None = None, now: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``df`` into ``(valid_df, rejected_df)``; never raises on bad rows.

    ``day``: when given, readings outside ``[day 00:00 UTC, day+1 00:00 UTC)`` are rejected.
    ``now``: future cut-off (default: current UTC time; naive = UTC). ``rejected_df`` has every input
    column (original values) plus ``reason`` (see the module doc). Raises ValueError only when a required
    column is missing entirely. Fast path and reference implementation: see the module doc (same results).
    """
    original, df = _inputs(df)
    now_ts = _now_utc(now)
    if pd.isna(now_ts) or not _fast_path_applies(df):  # (a NaT cut-off compares False everywhere)
        return _validate_readings_reference(original, day=day, now=now_ts)
    raw_time = df["event_time"]
    parsed = raw_time if raw_time.dtype == EVENT_TIME_DTYPE else parse_event_time(raw_time)
    t_ms = parsed.array.asi8  # int64 milliseconds since the epoch (UTC); NaT is the int64 minimum
    nat = t_ms == np.iinfo(np.int64).min
    code = np.zeros(len(df), dtype=np.int8)

    def flag(mask: np.ndarray, reason: int) -> None:
        code[mask & (code == 0)] = reason

    flag(nat, 1)
    for i, col in enumerate(KEY_COLUMNS):
        flag(~_str_mask(df[col].to_numpy()), 2 + i)  # the object dtype is checked above
    # float64 ``value`` / ``rstart`` / ``rend`` are numeric: no ``schema:value`` / ``schema:r*`` here
    value = df["value"].to_numpy()
    flag(~np.isfinite(value), 5)
    # whole-millisecond stamps against ns bounds: t > now  <=>  t_ms > floor(now_ns / 1e6), etc.
    flag(~nat & (t_ms > now_ts.value // 1_000_000), 6)
    if day is not None:
        start_ms, end_ms = _day_bounds_ms(day)
        flag(~nat & ((t_ms < start_ms) | (t_ms >= end_ms)), 7)
    with np.errstate(invalid="ignore"):
        if "rstart" in df.columns:
            bound = df["rstart"].to_numpy()
            flag(~np.isnan(bound) & (value < bound), 8)
        if "rend" in df.columns:
            bound = df["rend"].to_numpy()
            flag(~np.isnan(bound) & (value > bound), 8)

    ok = code == 0
    work = df
    if parsed is not raw_time:
        work = df.copy(deep=False)
        work["event_time"] = parsed
    valid = _rows(work, ok)
    cases = schema_failure_cases(valid)
    if cases is None or cases:  # the schema rejects something (or cannot be evaluated here): reference path
        return _validate_readings_reference(original, day=day, now=now_ts)
    bad = ~ok
    rejected = _rows(original, bad)
    rejected.insert(len(rejected.columns), "reason", _FAST_REASONS[code[bad]])
    return valid, rejected


def schema_failure_cases(
    frame: pd.DataFrame, schema: pa.DataFrameSchema | None = None
) -> list[tuple[str, str, object]] | None:
    """Failure cases of ``schema`` (default ``readings_schema``) on ``frame`` as ``(column, check, index)``
    triples, evaluated vectorised from the schema's own definition; ``index`` is None for a column-level
    failure (missing required column, wrong dtype, a check returning a scalar False). ``check`` is
    ``column_in_dataframe``, ``dtype``, ``not_nullable`` or the Check's name.

    Mirrors ``schema.validate(frame, lazy=True)`` (which rows of which column fail) for the schema features
    used here: required / optional columns, ``nullable``, dtype, and vectorised, element-wise or built-in
    Checks with ``ignore_na``. Returns None (meaning "run Pandera") when the schema or frame uses anything
    else (frame-level checks, uniqueness, coercion, regex columns, parsers, strictness, an index schema,
    duplicate column names, grouped checks) or a check raises or returns an unexpected shape.
    """
    schema = readings_schema if schema is None else schema
    if not _schema_is_simple(schema) or not frame.columns.is_unique:
        return None
    cases: list[tuple[str, str, object]] = []
    for name, column in schema.columns.items():
        if name not in frame.columns:
            if column.required:
                cases.append((name, "column_in_dataframe", None))
            continue
        series = frame[name]
        nulls = series.array.isna()  # what Series.isna / hasnans compute, without building a Series
        has_nans = bool(nulls.any())
        if not column.nullable and has_nans:  # (Pandera reports every null of a non-nullable column)
            cases.extend((name, "not_nullable", i) for i in series.index[nulls])
        if column.dtype is not None:
            dtype_ok = column.dtype.check(_engine_dtype(series.dtype), series)
            if not isinstance(dtype_ok, bool | np.bool_):
                return None
            if not dtype_ok:
                cases.append((name, "dtype", None))
        for check in column.checks:
            obj = series.dropna() if check.ignore_na and has_nans else series
            try:
                if check.is_builtin_check(getattr(check._check_fn, "__name__", "")):
                    out = check(obj).check_output
                elif check.element_wise:
                    out = obj.map(partial(check._check_fn, **check._check_kwargs))
                else:
                    out = check._check_fn(obj, **check._check_kwargs)
            except Exception:
                return None
            if isinstance(out, bool | np.bool_):
                if not out:
                    cases.append((name, check.name, None))
            elif isinstance(out, pd.Series) and out.index.equals(obj.index):
                failed = ~out.to_numpy(dtype=bool)
                if failed.any():
                    cases.extend((name, check.name, i) for i in obj.index[failed])
            else:
                return None
    return cases


@lru_cache(maxsize=256)
def _engine_dtype(dtype: object) -> object:
    """Pandera's engine dtype for a pandas / numpy dtype (cached: ~0.1 ms per lookup for object columns)."""
    return pandas_engine.Engine.dtype(dtype)


def row_rules_only(schema: pa.DataFrameSchema) -> bool:
    """``schema`` declares only rules on rows and columns (required, nullable, dtype, ungrouped checks,
    regex columns, frame-wide checks): no parsers, coercion, uniqueness, ordering, strictness, index,
    frame dtype, added columns, dropped rows or grouped checks. The features that re-implementations of
    its evaluation (:func:`schema_failure_cases`, :func:`tsplatform.spark_checks.schema_failures`) can
    split by column and row."""
    if (
        schema.parsers
        or schema.index is not None
        or schema.dtype is not None
        or schema.coerce
        or schema.strict is not False
        or schema.ordered
        or schema.unique
        or schema.unique_column_names
        or schema.add_missing_columns
        or schema.drop_invalid_rows
        or any(check.groupby is not None for check in schema.checks)
    ):
        return False
    return not any(
        column.coerce or column.unique or column.parsers or any(c.groupby is not None for c in column.checks)
        for column in schema.columns.values()
    )


def _schema_is_simple(schema: pa.DataFrameSchema) -> bool:
    """Only the schema features :func:`schema_failure_cases` reproduces (see its docstring): rules on rows
    and columns, without frame-wide checks or regex columns."""
    return (
        row_rules_only(schema)
        and not schema.checks
        and not any(column.regex for column in schema.columns.values())
    )


def _validate_readings_reference(
    df: pd.DataFrame, *, day: dt.date | None = None, now: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference implementation of :func:`validate_readings` for any input: pandas parsing per column,
    then ``readings_schema.validate(lazy=True)`` on the rows that passed, its failures quarantined."""
    original, df = _inputs(df)
    now_ts = _now_utc(now)
    work = df.copy()
    reason = pd.Series(pd.NA, index=df.index, dtype="object")

    def flag(mask: pd.Series | np.ndarray, code: str) -> None:
        reason[np.asarray(mask, dtype=bool) & reason.isna().to_numpy()] = code

    work["event_time"] = parse_event_time(df["event_time"])
    flag(work["event_time"].isna(), "unparseable_timestamp")
    for col in KEY_COLUMNS:
        flag(~_str_series(df[col]), f"schema:{col}")
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
    rejected = original[~ok].copy()
    rejected["reason"] = reason[~ok].astype(str)
    return valid, rejected


def _is_nan_like(v: object) -> bool:
    return isinstance(v, float | np.floating) and bool(np.isnan(v))


def deduplicate(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove exact duplicates, then same ``(series_id, event_time)`` duplicates; keep the first.

    Without a ``series_id`` column the series key is ``(position, type_name)`` (the same partition of the
    rows). Key and time columns may have any of the dtypes of :mod:`tsplatform.timeseries.dtypes` (equal
    values are equal whatever their dtype); both outputs keep the input's dtypes.

    "Exact" means equal in every column except the Kafka provenance columns (topic, partition, offset,
    ingested_at, schema_id), so a reading delivered twice is an exact duplicate. "First" is the lowest
    ``offset`` when that column exists (stable, so ties keep input order), else input order. Returns
    ``(deduped_df, duplicates_df)``; both keep the input row order and index, and ``duplicates_df`` adds
    ``reason`` = ``exact_duplicate`` or ``same_timestamp``. Vectorised (``DataFrame.duplicated``).

    Fast path: one series (every ``series_id`` the same string) with datetime64 ``event_time`` and no
    repeated time has nothing to drop (an exact duplicate repeats the time too), so ``df`` is returned as a
    copy with an empty ``duplicates_df``, without the per-column factorisation of ``DataFrame.duplicated``.
    """
    key = _dedup_key(df)
    work = numpy_columns(df, (*key, "event_time"))
    if _one_series_distinct_times(work, key):
        duplicates = _rows(df, np.zeros(len(df), dtype=bool))
        duplicates.insert(len(duplicates.columns), "reason", np.empty(0, dtype=object))
        return df.copy(), duplicates
    return _deduplicate_reference(df)


def _dedup_key(df: pd.DataFrame) -> tuple[str, ...]:
    """The series key columns of :func:`deduplicate`; ValueError when ``df`` has none or no ``event_time``."""
    key = ("series_id",) if "series_id" in df.columns else ("position", "type_name")
    for col in (*key, "event_time"):
        if col not in df.columns:
            raise ValueError(f"deduplicate needs column {col!r} (or series_id)")
    return key


def _one_series_distinct_times(df: pd.DataFrame, key: tuple[str, ...] = ("series_id",)) -> bool:
    """True when ``key`` is the single column ``series_id``, holds one string throughout, and ``event_time``
    (datetime64) never repeats."""
    if key != ("series_id",) or not df.columns.is_unique or len(df) == 0:
        return False
    sid = df["series_id"].to_numpy()
    if sid.dtype != _OBJECT or not isinstance(sid[0], str) or not (sid == sid[0]).all():
        return False
    times = df["event_time"].array
    if not isinstance(times, pd.arrays.DatetimeArray):
        return False
    t = np.sort(times.asi8)
    return bool((t[1:] != t[:-1]).all())


def _deduplicate_reference(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`deduplicate` for any input (``DataFrame.duplicated`` on the payload, then on the key)."""
    key = _dedup_key(df)
    work = numpy_columns(df, tuple(df.columns))  # equal values compare equal whatever their dtype
    order = (
        np.argsort(df["offset"].to_numpy(), kind="stable") if "offset" in df.columns else np.arange(len(df))
    )
    ordered = work.iloc[order]
    payload = [c for c in df.columns if c not in PROVENANCE_COLUMNS]
    exact = ordered.duplicated(subset=payload, keep="first").to_numpy()
    same_ts = np.zeros(len(df), dtype=bool)
    remaining = ordered[~exact]
    same_ts[np.flatnonzero(~exact)] = remaining.duplicated(
        subset=[*key, "event_time"], keep="first"
    ).to_numpy()
    reason = np.full(len(df), None, dtype=object)
    reason[order[exact]] = "exact_duplicate"
    reason[order[same_ts]] = "same_timestamp"
    dropped = pd.notna(reason)
    duplicates = df[dropped].copy()
    duplicates["reason"] = reason[dropped].astype(str)
    return df[~dropped], duplicates


def validate_series(frame: pd.DataFrame, day: dt.date, now: pd.Timestamp) -> pd.DataFrame:
    """One day of one or many series: valid + de-duplicated rows (``reason`` null) and rejected rows with a
    reason (validation and de-duplication are vectorised over series)."""
    valid, rejected = validate_readings(frame, day=day, now=now)
    kept, duplicates = deduplicate(valid)
    parts = [p for p in (kept, rejected, duplicates) if len(p)]
    if not parts:
        return frame.iloc[0:0].assign(reason=pd.Series(dtype=object))
    # ``reason`` joins after the concat: a column of None in ``kept`` made pandas test each of its values
    # for a valid NA of the other parts' dtype (a quarter of the call's time on a day of 1.44M readings)
    reasons = [
        np.full(len(kept), None, dtype=object),
        *(p["reason"].to_numpy(dtype=object) for p in (rejected, duplicates)),
    ]
    out = pd.concat([p.drop(columns="reason", errors="ignore") for p in parts], ignore_index=True)
    out["reason"] = np.concatenate(reasons)
    out["event_time"] = pd.to_datetime(out["event_time"], utc=True, errors="coerce").dt.as_unit("ms")
    return out


def as_readings(frame: pd.DataFrame) -> pd.DataFrame:
    """A Spark batch as the reading frame ``readings_schema`` describes (UTC millisecond event_time)."""
    out = frame.copy()
    out["event_time"] = pd.to_datetime(out["event_time"], utc=True).astype(EVENT_TIME_DTYPE)
    return out
