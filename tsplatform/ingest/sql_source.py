"""``tsplatform sql-source``: poll a SQL table or view (PostgreSQL, MariaDB/MySQL), publish new rows to Kafka.

For deployments without Kafka Connect. ``--dsn`` picks the database: ``mysql://`` or ``mariadb://`` URLs go to
MariaDB/MySQL (PyMySQL), anything else is a PostgreSQL conninfo or URI (psycopg 3). What differs between the
two (connecting, identifier quoting, column types, the database clock, error classes) lives in one place, the
:class:`Dialect` objects; the polling itself is shared.

Two modes, like the Connect JDBC source connector's, with one deliberate difference.

**Incrementing (``--id-column``, recommended).** Rows are read in id order, whatever their timestamp::

    SELECT <columns>, id FROM <table> WHERE id > :high ORDER BY id LIMIT :batch

so a row inserted late with an old ``event_time`` (sensors buffer and upload late) is published like any
other. The Connect connector's ``timestamp+incrementing`` mode reads ``(ts, id) > (last_ts, last_id)`` instead
and skips such a row for good once a newer timestamp was published; this poller did the same before. Ids
are allocated at insert but become visible at commit, so a transaction that commits after a higher id was
read leaves a *gap*: the ids skipped between rows read are remembered (as ranges, with the database time
they were first seen) and looked up again at every poll, and a late commit is published when it appears.
A gap is given up after ``--gap-grace-ms`` (default 10 minutes; rolled-back inserts and sequence jumps leave
gaps that never fill): only a transaction that stays open longer than that between taking its id and
committing can still be missed. ``event_time`` plays no part in what is read; ``--delay-ms`` does not apply.

**Timestamp (no ``--id-column``).** ``ts > :last_ts AND ts < :cutoff ORDER BY ts``, ``cutoff = database
now - delay`` (``--delay-ms``, Connect's ``timestamp.delay.interval.ms``, default 5 s), read from the
database's clock so client clock skew does not matter. A full batch whose last timestamp is shared by more
rows is completed with all rows of that timestamp, so a batch boundary never splits a timestamp. What it
can miss: a row whose timestamp is older than ``cutoff`` when it becomes visible (uploaded late, or committed
after more than the delay), and a row inserted later with a timestamp already published. Prefer an id
column.

Each row is published in the contract's envelope (:mod:`tsplatform.ingest.envelope`; the table's columns
mapped onto the contract fields with ``--map``), keyed by series (``message_key``). Delivery is at least once:
a batch is produced, ``flush()`` ed and every delivery report checked, and only THEN is the position saved,
atomically (write aside, ``fsync``, rename), to ``<state>/sql_source/<safe name>.json``. A crash between
publish and save re-publishes that batch on restart; nothing is lost. A stop on SIGINT/SIGTERM finishes the
current batch and its save first, so a stop and restart publishes every row exactly once.

Timestamp columns: PostgreSQL ``timestamp with time zone``, ``timestamp`` (read as UTC: the session time zone
is set to UTC), MariaDB/MySQL ``DATETIME`` (UTC wall time) and ``TIMESTAMP`` (the session time zone is
``+00:00``, so it reads as UTC whatever the server's zone), or an integer of epoch milliseconds. Table,
schema and column names are untrusted: they are always quoted by the dialect, never formatted in raw, and
the state file name is a slug plus a SHA-256 digest, never the raw name.
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
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import orjson
import typer

from tsplatform.errors import BadInput, ConfigError, ServiceUnavailable
from tsplatform.ingest.envelope import encode_reading, message_key

DEFAULT_TOPIC_PREFIX = "sensor_data_source_"
DSN_ENV = "TSPLATFORM_SQL_SOURCE_DSN"
STATE_VERSION = 2
#: Default ``--delay-ms`` of timestamp mode (Connect's ``timestamp.delay.interval.ms``).
DEFAULT_TIMESTAMP_DELAY_MS = 5_000
#: Default ``--gap-grace-ms`` of incrementing mode: how long a skipped id is looked for.
DEFAULT_GAP_GRACE_MS = 600_000
#: Gap ranges kept at most (the oldest are given up first beyond it) and looked up per query.
MAX_GAP_RANGES = 10_000
GAP_RANGES_PER_QUERY = 500

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

TimeKind = Literal["timestamptz", "timestamp", "epoch_ms"]
ColumnKind = Literal["timestamptz", "timestamp", "integer", "other"]
#: A range of ids not seen yet, ``(first id, last id, database time first seen in epoch ms)``.
Gap = tuple[int, int, int]


# --- the database dialects: every difference between PostgreSQL and MariaDB/MySQL ------------------
class Dialect:
    """How one kind of database is reached and spoken to. Both drivers use ``%s`` placeholders."""

    name: str = "?"
    #: SQL returning the database's current time (UTC; aware or naive-UTC datetime).
    now_sql: str = ""

    def connect(self, dsn: str) -> Any:
        raise NotImplementedError

    def quote_char(self) -> str:
        raise NotImplementedError

    def quote(self, name: str) -> str:
        """``name`` as one quoted identifier; ``%`` doubled because every query goes with parameters."""
        if not name or "\x00" in name:
            raise ConfigError(f"sql-source: invalid identifier {name!r}")
        q = self.quote_char()
        return q + name.replace(q, q + q).replace("%", "%%") + q

    def column_kinds(self, description: Sequence[Any]) -> dict[str, ColumnKind]:
        raise NotImplementedError

    def is_missing_table(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def is_connection_lost(self, exc: BaseException) -> bool:
        raise NotImplementedError

    @property
    def error(self) -> type[BaseException]:
        """The driver's base error class."""
        raise NotImplementedError


class PostgresDialect(Dialect):
    name = "PostgreSQL"
    now_sql = "SELECT clock_timestamp()"
    _TIMESTAMPTZ, _TIMESTAMP = 1184, 1114
    _INTEGERS = frozenset({20, 21, 23})  # int8, int2, int4

    def connect(self, dsn: str) -> Any:
        import psycopg

        conn = psycopg.connect(dsn, connect_timeout=10)
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()
        return conn

    def quote_char(self) -> str:
        return '"'

    def column_kinds(self, description: Sequence[Any]) -> dict[str, ColumnKind]:
        kinds: dict[str, ColumnKind] = {}
        for d in description:
            oid = d.type_code
            kinds[d.name] = (
                "timestamptz" if oid == self._TIMESTAMPTZ
                else "timestamp" if oid == self._TIMESTAMP
                else "integer" if oid in self._INTEGERS
                else "other"
            )  # fmt: skip
        return kinds

    def is_missing_table(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.errors.UndefinedTable)

    def is_connection_lost(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.OperationalError)

    @property
    def error(self) -> type[BaseException]:
        import psycopg

        return psycopg.Error


class MySqlDialect(Dialect):
    """MariaDB and MySQL through PyMySQL; the session time zone is ``+00:00``."""

    name = "MariaDB/MySQL"
    now_sql = "SELECT UTC_TIMESTAMP(6)"
    _NO_SUCH_TABLE = 1146

    def connect(self, dsn: str) -> Any:
        from tsplatform.services.mariadb import connect

        return connect(dsn, timeout_s=10)

    def quote_char(self) -> str:
        return "`"

    def column_kinds(self, description: Sequence[Any]) -> dict[str, ColumnKind]:
        from pymysql.constants import FIELD_TYPE

        integers = {FIELD_TYPE.TINY, FIELD_TYPE.SHORT, FIELD_TYPE.LONG, FIELD_TYPE.LONGLONG, FIELD_TYPE.INT24}
        kinds: dict[str, ColumnKind] = {}
        for d in description:
            code = d[1]
            kinds[d[0]] = (
                "timestamp" if code in (FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP)
                else "integer" if code in integers
                else "other"
            )  # fmt: skip
        return kinds

    def is_missing_table(self, exc: BaseException) -> bool:
        import pymysql

        return isinstance(exc, pymysql.err.ProgrammingError) and exc.args[:1] == (self._NO_SUCH_TABLE,)

    def is_connection_lost(self, exc: BaseException) -> bool:
        import pymysql

        return isinstance(exc, pymysql.err.OperationalError | pymysql.err.InterfaceError)

    @property
    def error(self) -> type[BaseException]:
        import pymysql

        return pymysql.MySQLError


POSTGRES, MYSQL = PostgresDialect(), MySqlDialect()


def dialect_for(dsn: str) -> Dialect:
    """MariaDB/MySQL for ``mysql://`` and ``mariadb://`` URLs, PostgreSQL for anything else."""
    return MYSQL if dsn.split("://", 1)[0].lower() in ("mysql", "mariadb") else POSTGRES


def dialect_of(conn: Any) -> Dialect:
    """The dialect of an open connection (psycopg or PyMySQL)."""
    return MYSQL if type(conn).__module__.startswith("pymysql") else POSTGRES


# --- configuration and position ------------------------------------------------------------------
@dataclass(frozen=True)
class SourceConfig:
    """What to poll and where to publish it.

    ``columns`` maps a contract field (``position``, ``input_data``, ...) to the table's column when the
    names differ; unmapped fields use the contract name. The time field is ``time_column``; the
    incrementing id (optional) is ``id_column``. ``delay_ms`` >= 0 (timestamp mode only); ``gap_grace_ms``
    >= 0 (incrementing mode only); ``batch_size`` >= 1.
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
    gap_grace_ms: int = DEFAULT_GAP_GRACE_MS

    def __post_init__(self) -> None:
        if not self.table:
            raise ConfigError("sql-source: --table is empty")
        if self.delay_ms < 0:
            raise ConfigError(f"sql-source: --delay-ms must be >= 0, got {self.delay_ms}")
        if self.id_column is not None and self.delay_ms:
            raise ConfigError(
                "sql-source: --delay-ms is for timestamp mode; with --id-column rows are read by id, and "
                "rows committed late are found by their ids (see --gap-grace-ms)"
            )
        if self.gap_grace_ms < 0:
            raise ConfigError(f"sql-source: --gap-grace-ms must be >= 0, got {self.gap_grace_ms}")
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
    """Where the source stands.

    ``last_time`` is the time of the last published row (``datetime`` or epoch ms ``int``): the position of
    timestamp mode, informative in incrementing mode. ``last_id`` is the highest id read (incrementing mode;
    ``None`` otherwise) and ``gaps`` the id ranges below it not seen yet (:data:`Gap`).
    """

    last_time: dt.datetime | int
    last_id: int | None
    time_kind: TimeKind
    gaps: tuple[Gap, ...] = ()


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


def _decode_gaps(raw: Any) -> tuple[Gap, ...]:
    gaps = []
    for item in raw or ():
        lo, hi, seen = (int(x) for x in item)
        if lo > hi:
            raise ValueError(f"gap {item!r} is empty")
        gaps.append((lo, hi, seen))
    return tuple(gaps)


def load_position(path: Path, config: SourceConfig) -> Position | None:
    """The saved position, ``None`` when there is none yet. A file of another source or mode is an error.

    Version-1 files (no gaps) are read too: their id becomes the high id, with no gaps.
    """
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("version") not in (1, STATE_VERSION):
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
        return Position(
            _decode_time(state["last_time"], kind), last_id, kind, _decode_gaps(state.get("gaps"))
        )
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
        "gaps": [list(g) for g in position.gaps],
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


def _table_sql(config: SourceConfig, dialect: Dialect) -> str:
    if config.schema:
        return f"{dialect.quote(config.schema)}.{dialect.quote(config.table)}"
    return dialect.quote(config.table)


def _display_table(config: SourceConfig) -> str:
    return f"{config.schema}.{config.table}" if config.schema else config.table


def inspect_table(conn: Any, config: SourceConfig, dialect: Dialect | None = None) -> TableShape:
    """Check the table and columns exist (``SELECT * ... LIMIT 0``) and find the time column's kind."""
    dialect = dialect or dialect_of(conn)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {_table_sql(config, dialect)} LIMIT 0", [])
            cur.fetchall()
            kinds = dialect.column_kinds(cur.description or ())
    except dialect.error as exc:
        conn.rollback()
        if dialect.is_missing_table(exc):
            raise ConfigError(f"sql-source: table or view {_display_table(config)!r} does not exist") from exc
        raise ConfigError(f"sql-source: cannot read {_display_table(config)!r}: {exc}") from exc
    conn.rollback()
    missing = [c for c in (config.time_column, config.id_column) if c is not None and c not in kinds]
    missing += [
        config.column_for(f)
        for f, required in CONTRACT_FIELDS
        if required and f != "event_time" and config.column_for(f) not in kinds
    ]
    if missing:
        raise ConfigError(
            f"sql-source: {_display_table(config)!r} has no column(s) {missing}; "
            f"columns are {sorted(kinds)} (map them with --time-column/--id-column/--map)"
        )
    column_kind = kinds[config.time_column]
    if column_kind == "other":
        raise ConfigError(
            f"sql-source: time column {config.time_column!r} must be a timestamp or an integer of epoch "
            f"milliseconds"
        )
    kind: TimeKind = "epoch_ms" if column_kind == "integer" else column_kind
    if config.id_column is not None and kinds[config.id_column] != "integer":
        raise ConfigError(f"sql-source: id column {config.id_column!r} must be an integer column")
    selected = {f: config.column_for(f) for f, _ in CONTRACT_FIELDS if config.column_for(f) in kinds}
    return TableShape(selected=selected, time_kind=kind)


def _db_now(conn: Any, dialect: Dialect) -> dt.datetime:
    """The database's current time, aware UTC."""
    with conn.cursor() as cur:
        cur.execute(dialect.now_sql, [])
        row = cur.fetchone()
    assert row is not None
    now: dt.datetime = row[0]
    return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)


def _in_kind(instant: dt.datetime, kind: TimeKind) -> dt.datetime | int:
    """An aware UTC instant in the time column's representation."""
    if kind == "epoch_ms":
        return int(instant.timestamp() * 1000)
    return instant if kind == "timestamptz" else instant.replace(tzinfo=None)


def build_batch_query(
    config: SourceConfig,
    shape: TableShape,
    position: Position | None,
    cutoff: dt.datetime | int | None,
    dialect: Dialect = POSTGRES,
) -> tuple[str, list[Any]]:
    """The poll query and its parameters (identifiers quoted by ``dialect``, values bound).

    Incrementing mode: ``id > last_id ORDER BY id`` (``cutoff`` unused). Timestamp mode:
    ``ts < cutoff AND ts > last_time ORDER BY ts``.
    """
    q = dialect.quote
    columns = [q(c) for c in shape.selected.values()]
    where: list[str] = []
    params: list[Any] = []
    if config.id_column is not None:
        ident = q(config.id_column)
        columns.append(ident)
        if position is not None and position.last_id is not None:
            where.append(f"{ident} > %s")
            params.append(position.last_id)
        order = ident
    else:
        ts = q(config.time_column)
        where.append(f"{ts} < %s")
        params.append(cutoff)
        if position is not None:
            where.append(f"{ts} > %s")
            params.append(position.last_time)
        order = ts
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""
    query = (
        f"SELECT {', '.join(columns)} FROM {_table_sql(config, dialect)}{where_sql} ORDER BY {order} LIMIT %s"
    )
    return query, [*params, config.batch_size]


def _gap_query(
    config: SourceConfig, shape: TableShape, gaps: Sequence[Gap], dialect: Dialect
) -> tuple[str, list]:
    q = dialect.quote
    ident = q(config.id_column or "")
    columns = [*(q(c) for c in shape.selected.values()), ident]
    ranges = " OR ".join(f"{ident} BETWEEN %s AND %s" for _ in gaps)
    params = [v for lo, hi, _ in gaps for v in (lo, hi)]
    return (
        f"SELECT {', '.join(columns)} FROM {_table_sql(config, dialect)} WHERE {ranges} ORDER BY {ident}",
        params,
    )


@dataclass(frozen=True)
class Batch:
    """Rows of one poll (``{contract field: value, "_id": id}``) and the position after them."""

    rows: list[dict[str, Any]]
    position: Position | None
    expired_gap_ids: int = 0


def _remove_ids(gaps: Sequence[Gap], found: Sequence[int]) -> list[Gap]:
    """``gaps`` without the ``found`` ids (a range split around each)."""
    out = list(gaps)
    for i in sorted(set(found)):
        for k, (lo, hi, seen) in enumerate(out):
            if lo <= i <= hi:
                out[k : k + 1] = [g for g in ((lo, i - 1, seen), (i + 1, hi, seen)) if g[0] <= g[1]]
                break
    return out


def _new_gaps(previous_high: int, ids: Sequence[int], now_ms: int) -> list[Gap]:
    """Ranges of ids skipped between ``previous_high`` and the ascending ``ids`` just read."""
    gaps: list[Gap] = []
    last = previous_high
    for i in ids:
        if i > last + 1:
            gaps.append((last + 1, i - 1, now_ms))
        last = i
    return gaps


def fetch_batch(
    conn: Any,
    config: SourceConfig,
    shape: TableShape,
    position: Position | None,
    dialect: Dialect | None = None,
) -> Batch:
    """The next batch and the position after it (not saved); see the module docstring for each mode."""
    dialect = dialect or dialect_of(conn)
    now = _db_now(conn, dialect)
    fields = list(shape.selected)
    gap_rows: list[tuple] = []
    expired = 0
    with conn.cursor() as cur:
        if config.id_column is not None:
            gaps = list(position.gaps) if position is not None else []
            now_ms = int(now.timestamp() * 1000)
            for start in range(0, len(gaps), GAP_RANGES_PER_QUERY):
                query, params = _gap_query(config, shape, gaps[start : start + GAP_RANGES_PER_QUERY], dialect)
                cur.execute(query, params)
                gap_rows += cur.fetchall()
            query, params = build_batch_query(config, shape, position, None, dialect)
            cur.execute(query, params)
            rows = list(cur.fetchall())
            # Ids start at 1 (auto-increment, serial): on the first poll, ids below the first one read are
            # awaited like any gap (one range, looked up by the primary key).
            previous_high = position.last_id if position is not None and position.last_id is not None else 0
            new_ids = [int(r[len(fields)]) for r in rows]
            gaps = _remove_ids(gaps, [int(r[len(fields)]) for r in gap_rows])
            gaps += _new_gaps(previous_high, new_ids, now_ms)
            fresh = [g for g in gaps if now_ms - g[2] <= config.gap_grace_ms]
            if len(fresh) > MAX_GAP_RANGES:  # bounded memory: the oldest are given up first
                fresh = sorted(fresh, key=lambda g: g[2])[-MAX_GAP_RANGES:]
                fresh.sort()
            expired = sum(hi - lo + 1 for lo, hi, _ in gaps) - sum(hi - lo + 1 for lo, hi, _ in fresh)
            rows = gap_rows + rows
        else:
            cutoff = _in_kind(now - dt.timedelta(milliseconds=config.delay_ms), shape.time_kind)
            query, params = build_batch_query(config, shape, position, cutoff, dialect)
            cur.execute(query, params)
            rows = list(cur.fetchall())
            if len(rows) == config.batch_size:
                # Complete the last timestamp so the next `ts > last` cannot skip its rows.
                last_ts = rows[-1][fields.index("event_time")]
                rows = [r for r in rows if r[fields.index("event_time")] != last_ts]
                cols = ", ".join(dialect.quote(c) for c in shape.selected.values())
                ts = dialect.quote(config.time_column)
                cur.execute(f"SELECT {cols} FROM {_table_sql(config, dialect)} WHERE {ts} = %s", [last_ts])
                rows += cur.fetchall()
    conn.rollback()  # end the read transaction: the next poll sees newly committed rows
    out = []
    for row in rows:
        record = dict(zip(fields, row[: len(fields)], strict=True))
        record["_id"] = row[len(fields)] if config.id_column is not None else None
        out.append(record)
    new_position = position
    if config.id_column is not None:
        known = [position.last_id] if position is not None and position.last_id is not None else []
        high = max([r["_id"] for r in out] + known, default=None)
        times = [r["event_time"] for r in out if r["event_time"] is not None]
        last_time = times[-1] if times else (position.last_time if position else None)
        if last_time is None:  # only NULL times so far: the time is informative in this mode
            last_time = _in_kind(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), shape.time_kind)
        if high is not None:
            new_position = Position(last_time, int(high), shape.time_kind, tuple(fresh))
        elif position is not None:
            new_position = replace(position, gaps=tuple(fresh))
    elif out:
        new_position = Position(out[-1]["event_time"], None, shape.time_kind)
    return Batch(out, new_position, expired)


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
    """What a run did: rows published, batches, the position it ended at, and gap ids given up."""

    published: int = 0
    batches: int = 0
    position: Position | None = None
    state_file: Path | None = None
    expired_gap_ids: int = 0


@contextmanager
def _connect(dsn: str, dialect: Dialect) -> Iterator[Any]:
    try:
        conn = dialect.connect(dsn)
    except dialect.error as exc:
        text = str(exc.args[-1] if dialect is MYSQL and exc.args else exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise ServiceUnavailable(
            f"sql-source: cannot connect to the {dialect.name} database: {first}",
            setting=DSN_ENV,
        ) from exc
    except ConfigError as exc:  # a malformed mysql:// URL
        raise ConfigError(f"sql-source: --dsn: {exc.message}", setting=DSN_ENV) from exc
    try:
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
    ``once`` stops at the first poll that finds no row (gaps still open are looked for by the next run).
    """
    stop = stop or threading.Event()
    dialect = dialect_for(dsn)
    path = state_file_path(state_dir, config.source_name)
    summary = RunSummary(state_file=path)
    with _connect(dsn, dialect) as conn:
        shape = inspect_table(conn, config, dialect)
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
                batch = fetch_batch(conn, config, shape, position, dialect)
            except dialect.error as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if dialect.is_connection_lost(exc):
                    raise ServiceUnavailable(
                        f"sql-source: lost the database connection while reading {_display_table(config)!r}: "
                        f"{first}; restart to resume from the saved position",
                        setting=DSN_ENV,
                    ) from exc
                raise ConfigError(f"sql-source: reading {_display_table(config)!r} failed: {first}") from exc
            rows = batch.rows
            summary.expired_gap_ids += batch.expired_gap_ids
            if not rows:
                if batch.position != position and batch.position is not None:  # gaps given up
                    save(path, config, batch.position, published_total)
                    position = summary.position = batch.position
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
            assert batch.position is not None
            position = batch.position
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
        ...,
        "--dsn",
        envvar=DSN_ENV,
        help="mysql://user:password@host:port/db (or mariadb://) for MariaDB/MySQL; otherwise a PostgreSQL "
        "conninfo or URI.",
        show_default=False,
    ),
    schema: str | None = typer.Option(None, "--schema", help="Schema of the table (default: search_path)."),
    topic: str | None = typer.Option(None, "--topic", help="Target topic. Default <topic prefix><table>."),
    topic_prefix: str = typer.Option(DEFAULT_TOPIC_PREFIX, "--topic-prefix", help="Connect topic.prefix."),
    time_column: str = typer.Option("event_time", "--time-column", help="Timestamp (or epoch ms) column."),
    id_column: str | None = typer.Option(
        None,
        "--id-column",
        help="Strictly increasing integer id (auto-increment / serial). Rows are then read in id order: a "
        "row inserted late with an old timestamp is never skipped (unlike Connect's timestamp+incrementing "
        "mode).",
    ),
    mapping: list[str] = typer.Option(
        [], "--map", help="FIELD=COLUMN for contract fields named differently (repeatable)."
    ),
    delay_ms: int | None = typer.Option(
        None,
        "--delay-ms",
        help=f"Timestamp mode only (default {DEFAULT_TIMESTAMP_DELAY_MS}): read rows older than database "
        "now - delay. It can MISS a row whose timestamp is older than that when the row becomes visible "
        "(uploaded late or committed slowly) and a row added later with an already published timestamp: "
        "use --id-column for late data.",
        show_default=False,
    ),
    gap_grace_ms: int = typer.Option(
        DEFAULT_GAP_GRACE_MS,
        "--gap-grace-ms",
        help="With --id-column: how long an id skipped by a transaction not yet committed is looked for "
        "(rolled-back ids never appear).",
    ),
    batch_size: int = typer.Option(10_000, "--batch-size", help="Rows per poll query and Kafka flush."),
    once: bool = typer.Option(False, "--once", help="Publish everything available, print a summary, exit."),
    poll_interval: float = typer.Option(5.0, "--poll-interval", help="Seconds between polls when idle."),
    name: str | None = typer.Option(None, "--name", help="Position name (default: schema.table->topic)."),
) -> None:
    """Poll a SQL table/view (PostgreSQL or MariaDB/MySQL) and publish new rows to Kafka, at least once.

    With --id-column (incrementing mode) rows are read in id order and no committed row is skipped,
    whatever its event time. Without it (timestamp mode) rows are read in time order behind --delay-ms and
    late rows can be missed (see --delay-ms).
    """
    from rich.console import Console

    from tsplatform.settings import get_settings

    settings = get_settings()
    if delay_ms is None:
        delay_ms = 0 if id_column is not None else DEFAULT_TIMESTAMP_DELAY_MS
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
        gap_grace_ms=gap_grace_ms,
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
        if position.gaps:
            where += f", {sum(hi - lo + 1 for lo, hi, _ in position.gaps)} id(s) awaited"
    if summary.expired_gap_ids:
        console.print(
            f"gave up {summary.expired_gap_ids} id(s) not committed within "
            f"--gap-grace-ms={config.gap_grace_ms}"
        )
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
    "MYSQL",
    "POSTGRES",
    "Batch",
    "Dialect",
    "Position",
    "Publisher",
    "RunSummary",
    "SourceConfig",
    "build_batch_query",
    "dialect_for",
    "fetch_batch",
    "inspect_table",
    "load_position",
    "register",
    "row_to_reading",
    "run_source",
    "save_position",
    "state_file_path",
]
