"""Reading the source table of ``tsplatform sql-source``: one poll at a time.

:func:`inspect_table` checks the table and its columns, :func:`build_batch_query` is the poll query of
either mode, :func:`fetch_batch` reads the next :class:`Batch` (and, in incrementing mode, keeps the id
gaps) and :func:`row_to_reading` turns a fetched row into a contract payload.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from tsplatform.errors import ConfigError
from tsplatform.ingest.sql_dialects import POSTGRES, Dialect, dialect_of
from tsplatform.ingest.sql_position import Gap, Position, TimeKind
from tsplatform.ingest.sql_source_config import CONTRACT_FIELDS, SourceConfig

#: Gap ranges kept at most (the oldest are given up first beyond it) and looked up per query.
MAX_GAP_RANGES = 10_000
GAP_RANGES_PER_QUERY = 500
_INT_FIELDS = frozenset({"ss_id"})
_STR_FIELDS = frozenset({"position", "type_name", "unit"})


@dataclass(frozen=True)
class TableShape:
    """The columns found in the table: contract field -> column, plus the time kind."""

    selected: dict[str, str]
    time_kind: TimeKind


def _table_sql(config: SourceConfig, dialect: Dialect) -> str:
    if config.schema:
        return f"{dialect.quote(config.schema)}.{dialect.quote(config.table)}"
    return dialect.quote(config.table)


def display_table(config: SourceConfig) -> str:
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
            raise ConfigError(f"sql-source: table or view {display_table(config)!r} does not exist") from exc
        raise ConfigError(f"sql-source: cannot read {display_table(config)!r}: {exc}") from exc
    conn.rollback()
    missing = [c for c in (config.time_column, config.id_column) if c is not None and c not in kinds]
    missing += [
        config.column_for(f)
        for f, required in CONTRACT_FIELDS
        if required and f != "event_time" and config.column_for(f) not in kinds
    ]
    if missing:
        raise ConfigError(
            f"sql-source: {display_table(config)!r} has no column(s) {missing}; "
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
