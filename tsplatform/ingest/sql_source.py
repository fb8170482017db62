"""``tsplatform sql-source``: poll a SQL table or view and publish its new rows to Kafka.

For deployments without Kafka Connect. It behaves like the Connect JDBC source connector in
``timestamp+incrementing`` mode. With a timestamp column ``ts`` and a strictly incrementing id column
``id``, every poll runs::

    SELECT <columns> FROM <table>
    WHERE ts < :cutoff AND (ts, id) > (:last_ts, :last_id)
    ORDER BY ts, id LIMIT :batch

(the row comparison means ``ts > last_ts OR (ts = last_ts AND id > last_id)`` and can use an index on
``(ts, id)``)
and without an id column ``ts > :last_ts`` (timestamp mode). ``cutoff = db_now - delay`` (``--delay-ms``,
Connect's ``timestamp.delay.interval.ms``) so that a row committed late, with a timestamp earlier than
rows already visible, is still read as long as it commits within the delay. ``db_now`` is the
database's clock, so client clock skew does not matter. In timestamp mode a full batch whose last
timestamp is shared by more rows is completed with all rows of that timestamp, so a batch boundary never
splits a timestamp (with a plain ``LIMIT``, the rows of that timestamp beyond the limit would be skipped
by the next ``ts > last_ts``). Prefer an id column: timestamp mode cannot tell apart rows inserted later
with an already published timestamp.

Each row is published in the contract's envelope (:mod:`tsplatform.ingest.envelope`; the table's columns
mapped onto the contract fields with ``--map``), keyed by series (``message_key``).
Delivery is at least once: a batch is produced, ``flush()`` ed and every delivery report checked, and
only THEN is the position (the last row's ``(ts, id)``) saved, atomically (write aside, ``fsync``,
rename), to ``<state>/sql_source/<safe name>.json``. A crash between publish and save re-publishes
that batch on restart; nothing is lost.

Timestamp columns may be ``timestamp with time zone``, ``timestamp`` (read as UTC: the session time
zone is set to UTC) or integer epoch milliseconds. Table, schema and column names are untrusted: they
are always quoted with :class:`psycopg.sql.Identifier`, never formatted into SQL, and the state file
name is a slug plus a SHA-256 digest, never the raw name. PostgreSQL only (psycopg 3).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import orjson
import psycopg
import typer
from psycopg import sql

from tsplatform.errors import BadInput, ConfigError, ServiceUnavailable
from tsplatform.ingest.envelope import encode_reading, message_key

DEFAULT_TOPIC_PREFIX = "sensor_data_source_"
DSN_ENV = "TSPLATFORM_SQL_SOURCE_DSN"
STATE_VERSION = 1

#: Contract fields (ARCHITECTURE.md, "The message contract") in envelope order, and whether required.
CONTRACT_FIELDS: tuple[tuple[str, bool], ...] = (
    ("ss_id", False),
    ("rstart", False),
    *((f"rlev{i}", False) for i in range(1, 9)),
    ("rend", False),
    ("event_time", True),
    ("input_data", False),
    ("position", True),
    ("type_name", True),
    ("unit", False),
)
_INT_FIELDS = frozenset({"ss_id"})
_STR_FIELDS = frozenset({"position", "type_name", "unit"})

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SLUG = re.compile(r"[^a-z0-9]+")

# PostgreSQL type OIDs of the supported timestamp columns.
_TIMESTAMPTZ_OID, _TIMESTAMP_OID = 1184, 1114
_INTEGER_OIDS = frozenset({20, 21, 23})  # int8, int2, int4

TimeKind = Literal["timestamptz", "timestamp", "epoch_ms"]


# --- configuration and position ------------------------------------------------------------------
@dataclass(frozen=True)
class SourceConfig:
    """What to poll and where to publish it.

    ``columns`` maps a contract field (``position``, ``input_data``, ...) to the table's column when the
    names differ; unmapped fields use the contract name. The time field is ``time_column``; the
    incrementing id (optional) is ``id_column``. ``delay_ms`` >= 0; ``batch_size`` >= 1.
    """

    table: str
    schema: str | None = None
    topic: str | None = None
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    time_column: str = "event_time"
    id_column: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    delay_ms: int = 0
    batch_size: int = 10_000
    name: str | None = None

    def __post_init__(self) -> None:
        if not self.table:
            raise ConfigError("sql-source: --table is empty")
        if self.delay_ms < 0:
            raise ConfigError(f"sql-source: --delay-ms must be >= 0, got {self.delay_ms}")
        if self.batch_size < 1:
            raise ConfigError(f"sql-source: --batch-size must be >= 1, got {self.batch_size}")
        unknown = sorted(set(self.columns) - {f for f, _ in CONTRACT_FIELDS})
        if unknown:
            known = ", ".join(f for f, _ in CONTRACT_FIELDS)
            raise ConfigError(f"sql-source: unknown contract field(s) {unknown} in --map; known: {known}")
        if "event_time" in self.columns:
            raise ConfigError("sql-source: map the time column with --time-column, not --map event_time=...")
        topic = self.resolved_topic
        if not _TOPIC_NAME.match(topic) or topic in {".", ".."}:
            raise ConfigError(
                f"sql-source: topic {topic!r} is not a valid Kafka topic name (letters, digits, '.', '_', "
                "'-', at most 249): pass --topic"
            )

    @property
    def resolved_topic(self) -> str:
        """``--topic``, else the Connect convention ``<topic prefix><table>``."""
        return self.topic or f"{self.topic_prefix}{self.table}"

    @property
    def source_name(self) -> str:
        """Identity of the stream the position belongs to (``--name``, else ``schema.table->topic``)."""
        return self.name or f"{self.schema or ''}.{self.table}->{self.resolved_topic}"

    def column_for(self, contract_field: str) -> str:
        if contract_field == "event_time":
            return self.time_column
        return self.columns.get(contract_field, contract_field)


@dataclass(frozen=True)
class Position:
    """The last published row: its timestamp (``datetime`` or epoch ms ``int``) and id (or ``None``)."""

    last_time: dt.datetime | int
    last_id: int | None
    time_kind: TimeKind


def state_file_path(state_dir: Path, source_name: str) -> Path:
    """``<state>/sql_source/<slug>-<16 hex>.json``: slug for humans, SHA-256 of the name for identity."""
    digest = hashlib.sha256(source_name.encode("utf-8")).hexdigest()[:16]
    slug = _SLUG.sub("_", source_name.lower()).strip("_")[:48]
    return state_dir / "sql_source" / f"{slug}-{digest}.json"


def _encode_time(value: dt.datetime | int) -> str | int:
    return value if isinstance(value, int) else value.isoformat()


def _decode_time(value: Any, kind: TimeKind) -> dt.datetime | int:
    if kind == "epoch_ms":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected epoch ms integer, got {value!r}")
        return value
    parsed = dt.datetime.fromisoformat(str(value))
    if (kind == "timestamptz") != (parsed.tzinfo is not None):
        raise ValueError(f"time {value!r} does not match column kind {kind}")
    return parsed


def load_position(path: Path, config: SourceConfig) -> Position | None:
    """The saved position, ``None`` when there is none yet. A file of another source or mode is an error."""
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported version {state.get('version')!r}")
        for key, expected in (
            ("source", config.source_name),
            ("time_column", config.time_column),
            ("id_column", config.id_column),
        ):
            if state.get(key) != expected:
                raise ConfigError(
                    f"sql-source: position file {path} was written with {key}={state.get(key)!r}, not "
                    f"{expected!r}; use the same options or pass another --name"
                )
        kind: TimeKind = state["time_kind"]
        last_id = state.get("last_id")
        if last_id is not None and not isinstance(last_id, int):
            raise ValueError(f"last_id {last_id!r} is not an integer")
        return Position(_decode_time(state["last_time"], kind), last_id, kind)
    except ConfigError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"sql-source: position file {path} is unreadable ({exc}); fix or remove it"
        ) from exc


def save_position(path: Path, config: SourceConfig, position: Position, published_total: int) -> None:
    """Durably replace the position file: write a temp file, ``fsync``, rename, ``fsync`` the directory."""
    state = {
        "version": STATE_VERSION,
        "source": config.source_name,
        "schema": config.schema,
        "table": config.table,
        "topic": config.resolved_topic,
        "time_column": config.time_column,
        "id_column": config.id_column,
        "time_kind": position.time_kind,
        "last_time": _encode_time(position.last_time),
        "last_id": position.last_id,
        "published_total": published_total,
        "updated_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(state, out, ensure_ascii=False, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(
            f"sql-source: cannot save the position to {path} ({exc.strerror or exc}); the last batch was "
            "published and will be published again on restart",
            setting="TSPLATFORM_STATE_DIR",
        ) from exc


# --- reading the table ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TableShape:
    """The columns found in the table: contract field -> column, plus the time kind."""

    selected: dict[str, str]
    time_kind: TimeKind


def _table_ident(config: SourceConfig) -> sql.Composable:
    if config.schema:
        return sql.Identifier(config.schema, config.table)
    return sql.Identifier(config.table)


def _display_table(config: SourceConfig) -> str:
    return f"{config.schema}.{config.table}" if config.schema else config.table


def inspect_table(conn: psycopg.Connection, config: SourceConfig) -> TableShape:
    """Check the table and columns exist (``SELECT * ... LIMIT 0``) and find the time column's kind."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(_table_ident(config)))
            types = {d.name: d.type_code for d in cur.description or ()}
    except psycopg.errors.UndefinedTable as exc:
        conn.rollback()
        raise ConfigError(f"sql-source: table or view {_display_table(config)!r} does not exist") from exc
    except psycopg.Error as exc:
        conn.rollback()
        raise ConfigError(f"sql-source: cannot read {_display_table(config)!r}: {exc}") from exc
    conn.rollback()
    missing = [c for c in (config.time_column, config.id_column) if c is not None and c not in types]
    missing += [
        config.column_for(f)
        for f, required in CONTRACT_FIELDS
        if required and f != "event_time" and config.column_for(f) not in types
    ]
    if missing:
        raise ConfigError(
            f"sql-source: {_display_table(config)!r} has no column(s) {missing}; "
            f"columns are {sorted(types)} (map them with --time-column/--id-column/--map)"
        )
    type_oid = types[config.time_column]
    kind: TimeKind
    if type_oid == _TIMESTAMPTZ_OID:
        kind = "timestamptz"
    elif type_oid == _TIMESTAMP_OID:
        kind = "timestamp"
    elif type_oid in _INTEGER_OIDS:
        kind = "epoch_ms"
    else:
        raise ConfigError(
            f"sql-source: time column {config.time_column!r} must be a timestamp or an integer of epoch "
            f"milliseconds (type oid {type_oid})"
        )
    if config.id_column is not None and types[config.id_column] not in _INTEGER_OIDS:
        raise ConfigError(f"sql-source: id column {config.id_column!r} must be an integer column")
    selected = {f: config.column_for(f) for f, _ in CONTRACT_FIELDS if config.column_for(f) in types}
    return TableShape(selected=selected, time_kind=kind)


def _cutoff(conn: psycopg.Connection, kind: TimeKind, delay_ms: int) -> dt.datetime | int:
    """The database's ``now() - delay`` in the time column's representation."""
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    now: dt.datetime = row[0].astimezone(dt.UTC)
    cutoff = now - dt.timedelta(milliseconds=delay_ms)
    if kind == "epoch_ms":
        return int(cutoff.timestamp() * 1000)
    return cutoff if kind == "timestamptz" else cutoff.replace(tzinfo=None)


def build_batch_query(
    config: SourceConfig, shape: TableShape, position: Position | None, cutoff: dt.datetime | int
) -> tuple[sql.Composed, list[Any]]:
    """The poll query and its parameters (identifiers quoted, values bound)."""
    ts = sql.Identifier(config.time_column)
    columns = [sql.Identifier(c) for c in shape.selected.values()]
    if config.id_column is not None:
        columns.append(sql.Identifier(config.id_column))
    where = [sql.SQL("{} < %s").format(ts)]
    params: list[Any] = [cutoff]
    order = [ts]
    if config.id_column is not None:
        ident = sql.Identifier(config.id_column)
        order.append(ident)
        if position is not None:
            # Row comparison == `ts > t OR (ts = t AND id > i)`, and it can use an index on (ts, id).
            where.append(sql.SQL("({ts}, {id}) > (%s, %s)").format(ts=ts, id=ident))
            params += [position.last_time, position.last_id]
    elif position is not None:
        where.append(sql.SQL("{} > %s").format(ts))
        params.append(position.last_time)
    query = sql.SQL("SELECT {cols} FROM {table} WHERE {where} ORDER BY {order} LIMIT %s").format(
        cols=sql.SQL(", ").join(columns),
        table=_table_ident(config),
        where=sql.SQL(" AND ").join(where),
        order=sql.SQL(", ").join(order),
    )
    return query, [*params, config.batch_size]


def fetch_batch(
    conn: psycopg.Connection, config: SourceConfig, shape: TableShape, position: Position | None
) -> list[dict[str, Any]]:
    """The next batch of rows as ``{contract field: value, "_id": id}``, in ``(ts, id)`` order."""
    cutoff = _cutoff(conn, shape.time_kind, config.delay_ms)
    query, params = build_batch_query(config, shape, position, cutoff)
    fields = list(shape.selected)
    with conn.cursor() as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
        if config.id_column is None and len(rows) == config.batch_size:
            # Timestamp mode: complete the last timestamp so the next `ts > last` cannot skip its rows.
            last_ts = rows[-1][fields.index("event_time")]
            rows = [r for r in rows if r[fields.index("event_time")] != last_ts]
            cur.execute(
                sql.SQL("SELECT {cols} FROM {table} WHERE {ts} = %s").format(
                    cols=sql.SQL(", ").join(sql.Identifier(c) for c in shape.selected.values()),
                    table=_table_ident(config),
                    ts=sql.Identifier(config.time_column),
                ),
                [last_ts],
            )
            rows += cur.fetchall()
    conn.rollback()  # end the read transaction: the next poll sees newly committed rows
    out = []
    for row in rows:
        record = dict(zip(fields, row[: len(fields)], strict=True))
        record["_id"] = row[len(fields)] if config.id_column is not None else None
        out.append(record)
    return out


def row_to_reading(record: Mapping[str, Any], time_kind: TimeKind) -> dict[str, Any]:
    """A fetched row as a contract payload: event_time in epoch ms (UTC), numbers as int/float.

    A value of the wrong SQL type (e.g. text in a numeric field) is passed on as text, so that the
    decoder quarantines the message with ``wrong_type`` rather than the poller failing.
    """
    reading: dict[str, Any] = {}
    for name, _ in CONTRACT_FIELDS:
        value = record.get(name)
        if value is None:
            reading[name] = None
        elif name == "event_time":
            reading[name] = value if time_kind == "epoch_ms" else _epoch_ms(value, time_kind)
        elif name in _STR_FIELDS or isinstance(value, bool) or not isinstance(value, Decimal | int | float):
            reading[name] = str(value)
        elif name in _INT_FIELDS:
            reading[name] = int(value) if math.isfinite(value) and value == int(value) else float(value)
        else:
            reading[name] = float(value)
    return reading


def _epoch_ms(value: dt.datetime, time_kind: TimeKind) -> int:
    aware = value if time_kind == "timestamptz" else value.replace(tzinfo=dt.UTC)
    delta = aware - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


# --- publishing ----------------------------------------------------------------------------------
def encode_message(reading: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """``(key, value)`` of one reading: the series key and the contract envelope.

    A row the envelope encoder refuses (a NULL series key, a NaN/Infinity or text value) is published as
    a bare JSON payload (with the ``NaN``/``Infinity`` token Connect's JsonConverter would write), so the
    ingestion decoder quarantines it with the exact reason instead of the poller stalling on it.
    """
    key = message_key(reading["position"], reading["type_name"])
    try:
        value = encode_reading(
            reading["position"],
            reading["type_name"],
            reading["event_time"],
            reading["input_data"],
            ss_id=reading["ss_id"],
            unit=reading["unit"],
            rstart=reading["rstart"],
            rend=reading["rend"],
            rlev=[reading[f"rlev{i}"] for i in range(1, 9)],
        )
    except (ValueError, TypeError):
        return key, _bare_payload(reading)
    return key, value


def _bare_payload(reading: Mapping[str, Any]) -> bytes:
    value = reading.get("input_data")
    body = orjson.dumps({name: reading.get(name) for name, _ in CONTRACT_FIELDS})
    if isinstance(value, float) and not math.isfinite(value):
        token = b"NaN" if math.isnan(value) else (b"Infinity" if value > 0 else b"-Infinity")
        body = body.replace(b'"input_data":null', b'"input_data":' + token, 1)
    return body


class Publisher:
    """Kafka producer that publishes a batch and confirms every delivery (idempotent, ``acks=all``)."""

    def __init__(self, client_config: Mapping[str, Any], topic: str, timeout_s: float = 60.0) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.timeout_s = timeout_s
        self._bootstrap = str(client_config.get("bootstrap.servers", "?"))
        self._closed = False
        self._producer = Producer(
            {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "compression.type": "zstd",
                "message.timeout.ms": int(timeout_s * 1000),
                **client_config,
            }
        )

    def publish(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Produce all messages and block until each is acknowledged; raise on any failed delivery."""
        if self._closed:
            raise RuntimeError("sql-source: publish on a closed Publisher")
        errors: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        for key, value in messages:
            while True:
                try:
                    self._producer.produce(self.topic, value=value, key=key, on_delivery=on_delivery)
                    break
                except BufferError:
                    self._producer.poll(0.5)  # local queue full: serve delivery reports, retry
        remaining = self._producer.flush(self.timeout_s + 5.0)
        if remaining or errors:
            failed = len(errors) + remaining
            cause = errors[0] if errors else "delivery not confirmed before the timeout"
            raise ServiceUnavailable(
                f"sql-source: {failed} of {len(messages)} messages to topic {self.topic!r} at "
                f"{self._bootstrap} were not delivered: {cause}",
                setting="TSPLATFORM_KAFKA_BOOTSTRAP",
            )

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop what a failed ``publish`` left queued and shut the producer down (idempotent)."""
        if not self._closed:
            self._closed = True
            self._producer.purge()
            self._producer.close()


# --- the poll loop -------------------------------------------------------------------------------
@dataclass
class RunSummary:
    """What a run did: rows published, batches, and the position it ended at."""

    published: int = 0
    batches: int = 0
    position: Position | None = None
    state_file: Path | None = None


@contextmanager
def _connect(dsn: str) -> Iterator[psycopg.Connection]:
    try:
        conn = psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as exc:
        raise ServiceUnavailable(
            f"sql-source: cannot connect to the database: {str(exc).strip().splitlines()[0]}",
            setting=DSN_ENV,
        ) from exc
    try:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()
        yield conn
    finally:
        conn.close()


def run_source(
    config: SourceConfig,
    *,
    dsn: str,
    publish: Callable[[Sequence[tuple[bytes, bytes]]], None],
    state_dir: Path,
    once: bool = True,
    poll_interval_s: float = 5.0,
    stop: threading.Event | None = None,
    on_batch: Callable[[int, Position], None] | None = None,
    save: Callable[[Path, SourceConfig, Position, int], None] = save_position,
) -> RunSummary:
    """Poll ``config.table`` and publish new rows until drained (``once``) or ``stop`` is set.

    Per batch: fetch -> encode -> ``publish`` (must raise unless every message is acknowledged) ->
    ``save`` the position (:func:`save_position`; replaceable for fault injection). A row that cannot be
    serialised at all raises :class:`BadInput` naming it, before anything of its batch is published.
    """
    stop = stop or threading.Event()
    path = state_file_path(state_dir, config.source_name)
    summary = RunSummary(state_file=path)
    with _connect(dsn) as conn:
        shape = inspect_table(conn, config)
        position = load_position(path, config)
        if position is not None and position.time_kind != shape.time_kind:
            raise ConfigError(
                f"sql-source: the time column changed type ({position.time_kind} -> {shape.time_kind}) "
                f"since position file {path} was written; remove it or pass another --name"
            )
        published_total = _published_total(path)
        summary.position = position
        while not stop.is_set():
            try:
                rows = fetch_batch(conn, config, shape, position)
            except psycopg.OperationalError as exc:
                raise ServiceUnavailable(
                    f"sql-source: lost the database connection while reading {_display_table(config)!r}: "
                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}; "
                    "restart to resume from the saved position",
                    setting=DSN_ENV,
                ) from exc
            except psycopg.Error as exc:
                raise ConfigError(f"sql-source: reading {_display_table(config)!r} failed: {exc}") from exc
            if not rows:
                if once:
                    break
                stop.wait(poll_interval_s)
                continue
            messages = []
            for record in rows:
                reading = row_to_reading(record, shape.time_kind)
                try:
                    messages.append(encode_message(reading))
                except (ValueError, TypeError) as exc:  # e.g. a value orjson cannot serialise
                    where = f"{config.time_column}={record.get('event_time')!r}"
                    if config.id_column is not None:
                        where += f", {config.id_column}={record['_id']!r}"
                    raise BadInput(f"sql-source: row ({where}) cannot be published: {exc}") from exc
            publish(messages)
            last = rows[-1]
            position = Position(last["event_time"], last["_id"], shape.time_kind)
            published_total += len(rows)
            save(path, config, position, published_total)
            summary.published += len(rows)
            summary.batches += 1
            summary.position = position
            if on_batch is not None:
                on_batch(len(rows), position)
    return summary


def _published_total(path: Path) -> int:
    try:
        return int(json.loads(path.read_text(encoding="utf-8")).get("published_total", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


# --- command line --------------------------------------------------------------------------------
def _parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        contract_field, sep, column = pair.partition("=")
        if not sep or not contract_field.strip() or not column.strip():
            raise ConfigError(f"sql-source: --map expects FIELD=COLUMN, got {pair!r}")
        mapping[contract_field.strip()] = column.strip()
    return mapping


def sql_source_command(
    table: str = typer.Option(..., "--table", help="Table or view to poll (any name; it is quoted)."),
    dsn: str = typer.Option(
        ..., "--dsn", envvar=DSN_ENV, help="PostgreSQL conninfo or URI (psycopg 3).", show_default=False
    ),
    schema: str | None = typer.Option(None, "--schema", help="Schema of the table (default: search_path)."),
    topic: str | None = typer.Option(None, "--topic", help="Target topic. Default <topic prefix><table>."),
    topic_prefix: str = typer.Option(DEFAULT_TOPIC_PREFIX, "--topic-prefix", help="Connect topic.prefix."),
    time_column: str = typer.Option("event_time", "--time-column", help="Timestamp (or epoch ms) column."),
    id_column: str | None = typer.Option(
        None, "--id-column", help="Strictly incrementing id column (timestamp+incrementing mode)."
    ),
    mapping: list[str] = typer.Option(
        [], "--map", help="FIELD=COLUMN for contract fields named differently (repeatable)."
    ),
    delay_ms: int = typer.Option(0, "--delay-ms", help="Only read rows older than db now - delay."),
    batch_size: int = typer.Option(10_000, "--batch-size", help="Rows per poll query and Kafka flush."),
    once: bool = typer.Option(False, "--once", help="Publish everything available, print a summary, exit."),
    poll_interval: float = typer.Option(5.0, "--poll-interval", help="Seconds between polls when idle."),
    name: str | None = typer.Option(None, "--name", help="Position name (default: schema.table->topic)."),
) -> None:
    """Poll a SQL table/view (timestamp+incrementing mode) and publish new rows to Kafka, at least once."""
    from rich.console import Console

    from tsplatform.settings import get_settings

    settings = get_settings()
    config = SourceConfig(
        table=table,
        schema=schema,
        topic=topic,
        topic_prefix=topic_prefix,
        time_column=time_column,
        id_column=id_column,
        columns=_parse_mapping(mapping),
        delay_ms=delay_ms,
        batch_size=batch_size,
        name=name,
    )
    console = Console(stderr=True)
    publisher = Publisher(settings.kafka_client_config(), config.resolved_topic)
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def request_stop(signum: int, _frame: Any) -> None:
        console.print(f"stopping after the current batch ({signal.Signals(signum).name})")
        stop.set()

    for sig in previous:
        signal.signal(sig, request_stop)
    started = time.monotonic()
    try:
        summary = run_source(
            config,
            dsn=dsn,
            publish=publisher.publish,
            state_dir=settings.state_path,
            once=once,
            poll_interval_s=poll_interval,
            stop=stop,
            on_batch=None if once else lambda n, p: console.print(f"published {n} rows up to {p.last_time}"),
        )
    finally:
        publisher.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    position = summary.position
    where = "nothing yet" if position is None else f"{config.time_column}={_encode_time(position.last_time)}"
    if position is not None and position.last_id is not None:
        where += f", {config.id_column}={position.last_id}"
    typer.echo(
        f"sql-source: published {summary.published} rows in {summary.batches} batches from "
        f"{_display_table(config)!r} to topic {config.resolved_topic!r} "
        f"in {time.monotonic() - started:.1f}s; "
        f"position {where} ({summary.state_file})"
    )


def register(app: typer.Typer) -> None:
    """Add ``sql-source`` to the ``tsplatform`` app."""
    app.command("sql-source")(sql_source_command)


__all__ = [
    "CONTRACT_FIELDS",
    "Position",
    "Publisher",
    "RunSummary",
    "SourceConfig",
    "build_batch_query",
    "fetch_batch",
    "inspect_table",
    "load_position",
    "register",
    "row_to_reading",
    "run_source",
    "save_position",
    "state_file_path",
]
