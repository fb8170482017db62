"""``tsplatform replay``: publish a CSV or Parquet dataset to Kafka as Connect JSON records, keyed by series.

Steps: read the file; map the time, value and series columns (or series constants); drop the rows that
cannot be encoded (missing/unparseable time, missing or non-finite value, missing key) and count them
(``--publish-invalid`` publishes NaN/missing values as ``input_data: null`` instead, so that the pipeline
quarantines them, while rows without a time or key are still skipped); shift the times (``--time-shift``
or ``--shift-to-now``); sort by time; publish in time order, as fast as possible (``--speedup 0``) or
with the original inter-arrival gaps divided by ``--speedup``. Delivery errors are counted and make the
command exit non-zero. Kafka settings come from :func:`tsplatform.settings.get_settings`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tsplatform.errors import BadInput, ServiceUnavailable
from tsplatform.ingest.envelope import encode_readings, message_keys
from tsplatform.settings import Settings, get_settings

_SHIFT_PART = re.compile(r"(\d+(?:\.\d+)?)(y|mo|w|d|h|min|m|s|ms)")
_SHIFT_UNITS = {"w": "weeks", "d": "days", "h": "hours", "min": "minutes", "m": "minutes", "s": "seconds",
                "ms": "milliseconds"}  # fmt: skip
_ATTRIBUTES = ("ss_id", "unit", "rstart", "rend", *(f"rlev{i}" for i in range(1, 9)))


def parse_time_shift(text: str) -> pd.DateOffset:
    """``"+3y2d"``, ``"-1d12h"``, ``"90m"``, ``"3600"`` (plain number = seconds) -> a calendar-aware offset.

    Units: ``y`` years, ``mo`` months, ``w`` weeks, ``d`` days, ``h`` hours, ``m``/``min`` minutes,
    ``s`` seconds, ``ms`` milliseconds. Years and months are calendar units (``pd.DateOffset``).
    """
    raw = text.strip().replace(" ", "")
    sign = -1 if raw.startswith("-") else 1
    body = raw.lstrip("+-")
    if not body:
        raise BadInput(f"empty time shift {text!r}")
    if re.fullmatch(r"\d+(\.\d+)?", body):
        return pd.DateOffset(seconds=sign * float(body))
    parts = _SHIFT_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise BadInput(f"invalid time shift {text!r}: expected e.g. +3y2d, -12h30m or seconds")
    kwargs: dict[str, float] = {}
    for number, unit in parts:
        if unit in ("y", "mo"):
            if "." in number:
                raise BadInput(f"invalid time shift {text!r}: years and months must be whole numbers")
            key = "years" if unit == "y" else "months"
            kwargs[key] = kwargs.get(key, 0) + sign * int(number)
        else:
            key = _SHIFT_UNITS[unit]
            kwargs[key] = kwargs.get(key, 0) + sign * float(number)
    return pd.DateOffset(**kwargs)  # type: ignore[arg-type]


def load_table(path: Path) -> pd.DataFrame:
    """A CSV (also ``.csv.gz``/``.txt``) or Parquet file as a DataFrame; a clear error otherwise."""
    if not path.is_file():
        raise BadInput(f"no such file: {path}")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {' '.join(str(exc).split())[:200]}") from exc


@dataclass(frozen=True)
class ColumnMap:
    """How the file's columns become readings (see ``tsplatform replay --help``)."""

    time_column: str = "timestamp"
    value_column: str = "value"
    position_column: str | None = None
    position: str | None = None
    type_name_column: str | None = None
    type_name: str | None = None
    time_format: str = "ISO8601"
    time_unit: str = "ms"
    tz: str | None = None
    constants: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """Readings ready to encode, and the counts of rows left out (by cause)."""

    frame: pd.DataFrame
    skipped: dict[str, int]


def _times(column: pd.Series, cmap: ColumnMap) -> pd.Series:
    """UTC instants of the time column (NaT where missing or unparseable)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column
    elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        unit = {"ms": "ms", "s": "s", "us": "us"}.get(cmap.time_unit)
        if unit is None:
            raise BadInput(f"--time-unit must be ms, s or us for numeric times, got {cmap.time_unit!r}")
        parsed = pd.to_datetime(column, unit=unit, errors="coerce", utc=True)
    else:
        text = column.astype("string")
        if cmap.tz:
            parsed = pd.to_datetime(text, format=cmap.time_format, errors="coerce")
        else:
            parsed = pd.to_datetime(text, format=cmap.time_format, errors="coerce", utc=True)
    if getattr(parsed.dt, "tz", None) is None:
        try:
            parsed = parsed.dt.tz_localize(cmap.tz or "UTC", ambiguous="NaT", nonexistent="NaT")
        except Exception as exc:  # unknown zone name
            raise BadInput(f"cannot use time zone {cmap.tz!r}: {exc}") from exc
    return parsed.dt.tz_convert("UTC")


def _key_column(
    raw: pd.DataFrame, column: str | None, constant: str | None, default: str | None, what: str
) -> pd.Series:
    """A series-key column: a constant, a named column, the column named like the key, or ``default``."""
    if column is not None and constant is not None:
        raise BadInput(f"give either --{what} or --{what}-column, not both")
    if constant is not None:
        return pd.Series(constant, index=raw.index, dtype=object)
    column = column or (what.replace("-", "_") if what.replace("-", "_") in raw.columns else None)
    if column is None:
        if default is not None:
            return pd.Series(default, index=raw.index, dtype=object)
        raise BadInput(f"name the series: --{what} TEXT or --{what}-column COLUMN")
    if column not in raw.columns:
        raise BadInput(f"no column {column!r} in the file (columns: {', '.join(map(str, raw.columns))})")
    keys = raw[column]
    return keys.where(keys.isna(), keys.astype(str)).astype(object)


def prepare_readings(raw: pd.DataFrame, cmap: ColumnMap, *, publish_invalid: bool = False) -> Prepared:
    """Map ``raw`` to the reading columns of :func:`tsplatform.ingest.envelope.encode_readings`.

    Rows with a missing/unparseable time or a missing key are skipped and counted; rows whose value is
    missing or not finite are skipped and counted too, unless ``publish_invalid`` (then sent as null).
    """
    for column in (cmap.time_column, cmap.value_column):
        if column not in raw.columns:
            raise BadInput(f"no column {column!r} in the file (columns: {', '.join(map(str, raw.columns))})")
    frame = pd.DataFrame(
        {
            "position": _key_column(raw, cmap.position_column, cmap.position, None, "position"),
            "type_name": _key_column(
                raw, cmap.type_name_column, cmap.type_name, cmap.value_column, "type-name"
            ),
            "event_time": _times(raw[cmap.time_column], cmap),
            "value": pd.to_numeric(raw[cmap.value_column], errors="coerce").astype(float),
        },
        index=raw.index,
    )
    for name in _ATTRIBUTES:
        if name in cmap.constants and cmap.constants[name] is not None:
            frame[name] = cmap.constants[name]
        elif name in raw.columns:
            frame[name] = raw[name]
    skipped: dict[str, int] = {}
    bad_time = frame["event_time"].isna().to_numpy()
    bad_key = (frame["position"].isna() | frame["type_name"].isna()).to_numpy()
    bad_value = ~np.isfinite(frame["value"].to_numpy(dtype=float))
    causes = (("missing or unparseable time", bad_time), ("missing series key", bad_key & ~bad_time))
    for cause, mask in causes:
        if mask.any():
            skipped[cause] = int(mask.sum())
    drop = bad_time | bad_key
    value_only = bad_value & ~drop
    if value_only.any():
        if publish_invalid:
            frame.loc[value_only, "value"] = np.nan
        else:
            skipped["missing or non-finite value"] = int(value_only.sum())
            drop |= value_only
    return Prepared(frame=frame.loc[~drop].reset_index(drop=True), skipped=skipped)


def shift_times(
    frame: pd.DataFrame, *, shift: str | None, to_now: bool, now: pd.Timestamp | None = None
) -> None:
    """Shift ``frame.event_time`` in place by ``shift`` or so that the latest reading lands at ``now``."""
    if shift and to_now:
        raise BadInput("give either --time-shift or --shift-to-now, not both")
    if frame.empty:
        return
    if shift:
        frame["event_time"] = frame["event_time"] + parse_time_shift(shift)
    elif to_now:
        now = now if now is not None else pd.Timestamp.now(tz="UTC")
        frame["event_time"] = frame["event_time"] + (now - frame["event_time"].max())


@dataclass
class PublishResult:
    published: int = 0
    failed: int = 0
    series: int = 0
    first_error: str | None = None


def publish(
    frame: pd.DataFrame,
    topic: str,
    settings: Settings,
    *,
    envelope: bool = True,
    speedup: float = 0.0,
    progress: bool = True,
    batch_size: int = 10_000,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishResult:
    """Publish ``frame`` (time-sorted readings) to ``topic``; returns delivered/failed counts.

    ``speedup`` 0 publishes as fast as possible; N > 0 waits so that reading i goes out
    ``(t_i - t_0) / N`` seconds of ``clock`` after the start (t = event time), sleeping with ``sleep`` in
    steps of at most 0.5 s while serving delivery reports (tests pass a controllable clock).
    """
    from confluent_kafka import KafkaException, Producer

    from tsplatform.services.health import check_kafka

    check_kafka(settings.kafka_bootstrap, settings.kafka_security, timeout_s=10)
    result = PublishResult(series=int(frame.groupby(["position", "type_name"], sort=False).ngroups))

    def delivered(err: Any, _msg: Any) -> None:
        if err is None:
            result.published += 1
        else:
            result.failed += 1
            if result.first_error is None:
                result.first_error = str(err)

    try:
        producer = Producer(settings.kafka_client_config(**{
            "linger.ms": 20, "enable.idempotence": True, "compression.type": "lz4",
            "queue.buffering.max.messages": 200_000, "log_level": 0,
        }))  # fmt: skip
    except KafkaException as exc:
        raise ServiceUnavailable(
            f"cannot create a Kafka producer: {exc}", setting="TSPLATFORM_KAFKA_BOOTSTRAP"
        ) from exc
    times_ms = frame["event_time"].dt.tz_convert(None).to_numpy(dtype="datetime64[ms]").astype(np.int64)
    started = clock()
    bar = Progress(
        TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(), console=Console(stderr=True), disable=not progress,
    )  # fmt: skip
    with bar:
        task = bar.add_task("publish", total=len(frame), rate="")
        for start in range(0, len(frame), batch_size):
            part = frame.iloc[start : start + batch_size]
            if part["value"].notna().all():
                values = encode_readings(part, envelope=envelope)
            else:
                values = _encode_lenient(part, envelope)
            keys = message_keys(part)
            for k, (value, key) in enumerate(zip(values, keys, strict=True)):
                if speedup > 0:
                    due = started + (times_ms[start + k] - times_ms[0]) / 1000.0 / speedup
                    while (wait := due - clock()) > 0:
                        producer.poll(0)  # serve delivery reports while waiting
                        sleep(min(wait, 0.5))
                _produce(producer, topic, value, key, delivered)
            producer.poll(0)
            elapsed = max(clock() - started, 1e-9)
            bar.update(task, advance=len(part), rate=f"{(start + len(part)) / elapsed:,.0f}/s")
    remaining = producer.flush(60)
    if remaining:
        result.failed += remaining
        result.first_error = result.first_error or f"{remaining} message(s) not delivered within 60 s"
    return result


def _produce(producer: Any, topic: str, value: bytes, key: bytes, callback: Any) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=callback)
            return
        except BufferError:  # local queue full: serve delivery reports, then retry
            producer.poll(0.1)


def _encode_lenient(part: pd.DataFrame, envelope: bool) -> list[bytes]:
    """Encode rows some of which have a null value (``--publish-invalid``)."""
    from tsplatform.ingest.envelope import encode_reading

    attributes = [c for c in _ATTRIBUTES if c in part.columns]
    out = []
    for row in part.to_dict("records"):
        value = row["value"]
        extras = {c: (None if pd.isna(row[c]) else row[c]) for c in attributes}
        levels = [extras.pop(f"rlev{i}", None) for i in range(1, 9)]
        out.append(
            encode_reading(
                row["position"], row["type_name"], row["event_time"],
                None if pd.isna(value) else float(value),
                ss_id=extras.get("ss_id"), unit=extras.get("unit"), rstart=extras.get("rstart"),
                rend=extras.get("rend"), rlev=levels, envelope=envelope,
            )
        )  # fmt: skip
    return out


def replay(
    path: Path = typer.Argument(..., help="CSV or Parquet file to publish.", show_default=False),
    topic: str = typer.Option("", "--topic", "-t", help="Target topic; default: first of TSPLATFORM_TOPICS."),
    time_column: str = typer.Option("timestamp", help="Column holding the event time."),
    time_format: str = typer.Option(
        "ISO8601", help="pandas/strftime format of text times (ISO8601, mixed, %d/%m/%Y %H:%M...)."
    ),
    time_unit: str = typer.Option("ms", help="Unit of a numeric (epoch) time column: ms, s or us."),
    utc: bool = typer.Option(
        True, "--utc/--no-utc", help="Naive times are UTC (default); with --no-utc give their zone with --tz."
    ),
    tz: str = typer.Option("", help="Zone of naive times, e.g. Europe/Amsterdam (offsets in the text win)."),
    value_column: str = typer.Option("value", help="Column holding the reading."),
    position_column: str = typer.Option("", help="Column holding the series position."),
    position: str = typer.Option("", help="Constant position for every row (e.g. '광 주 A')."),
    type_name_column: str = typer.Option("", help="Column holding the series type name."),
    type_name: str = typer.Option("", help="Constant type name (default: the value column's name)."),
    unit: str = typer.Option("", help="Constant unit, e.g. ppm."),
    ss_id: int = typer.Option(None, help="Constant sensor id (ss_id)."),
    rstart: float = typer.Option(None, help="Constant start of the sensor's valid range."),
    rend: float = typer.Option(None, help="Constant end of the sensor's valid range."),
    rlev: list[float] = typer.Option(None, help="Alert level, repeat up to 8 times (rlev1..rlev8)."),
    time_shift: str = typer.Option("", help="Shift event times, e.g. +3y2d, -12h, or seconds."),
    shift_to_now: bool = typer.Option(False, help="Shift event times so that the last reading is now."),
    speedup: float = typer.Option(0.0, help="0 = as fast as possible; N = real time divided by N."),
    limit: int = typer.Option(0, help="Publish at most this many readings (the earliest); 0 = all."),
    no_envelope: bool = typer.Option(False, "--no-envelope", help="Bare payloads (schemas.enable=false)."),
    publish_invalid: bool = typer.Option(
        False, help="Publish rows with a missing/non-finite value as input_data null (quarantined later)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Publish a CSV/Parquet dataset to Kafka in the Connect JSON envelope, keyed by series."""
    if speedup < 0:
        raise BadInput(f"--speedup must be >= 0, got {speedup}")
    if not utc and not tz:
        raise BadInput("--no-utc needs --tz ZONE (the zone of naive times)")
    if rlev and len(rlev) > 8:
        raise BadInput(f"at most 8 --rlev values, got {len(rlev)}")
    settings = get_settings()
    target = topic or (settings.topics[0] if settings.topics else "")
    if not target:
        raise BadInput("no topic: give --topic or set TSPLATFORM_TOPICS")
    constants: dict[str, Any] = {"ss_id": ss_id, "unit": unit or None, "rstart": rstart, "rend": rend}
    for i, level in enumerate(rlev or [], start=1):
        constants[f"rlev{i}"] = level
    cmap = ColumnMap(
        time_column=time_column, value_column=value_column,
        position_column=position_column or None, position=position or None,
        type_name_column=type_name_column or None, type_name=type_name or None,
        time_format=time_format, time_unit=time_unit, tz=tz or None, constants=constants,
    )  # fmt: skip
    prepared = prepare_readings(load_table(path), cmap, publish_invalid=publish_invalid)
    frame = prepared.frame.sort_values("event_time", kind="stable").reset_index(drop=True)
    if limit > 0:
        frame = frame.iloc[:limit]
    shift_times(frame, shift=time_shift or None, to_now=shift_to_now)
    for cause, count in prepared.skipped.items():
        typer.echo(f"skipped {count} row(s): {cause}", err=True)
    result = publish(frame, target, settings, envelope=not no_envelope, speedup=speedup, progress=progress)
    typer.echo(f"published {result.published} readings of {result.series} series to {target}")
    if result.failed:
        typer.echo(f"error: {result.failed} delivery failure(s); first: {result.first_error}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``replay`` to the ``tsplatform`` app."""
    app.command("replay")(replay)
