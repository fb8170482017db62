"""``tsplatform sql-source``: poll a SQL table or view (PostgreSQL, MariaDB/MySQL), publish new rows to Kafka.

For deployments without Kafka Connect. ``--dsn`` picks the database: ``mysql://`` or ``mariadb://`` URLs go to
MariaDB/MySQL (PyMySQL), anything else is a PostgreSQL conninfo or URI (psycopg 3). What differs between the
two (connecting, identifier quoting, column types, the database clock, error classes) lives in one place, the
:class:`~tsplatform.ingest.sql_dialects.Dialect` objects; the polling itself is shared.

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

This module publishes (:class:`Publisher`), runs the poll loop (:func:`run_source`) and holds the command
line; the rest lives in :mod:`tsplatform.ingest.sql_source_config` (:class:`SourceConfig`, the contract
fields), :mod:`tsplatform.ingest.sql_dialects`, :mod:`tsplatform.ingest.sql_polling` (the poll queries,
batches and id gaps) and :mod:`tsplatform.ingest.sql_position` (the position and its state file).
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import typer

from tsplatform.errors import BadInput, ConfigError, ServiceUnavailable
from tsplatform.ingest.envelope import encode_reading, message_key
from tsplatform.ingest.sql_dialects import MYSQL, Dialect, dialect_for
from tsplatform.ingest.sql_polling import display_table, fetch_batch, inspect_table, row_to_reading
from tsplatform.ingest.sql_position import (
    Position,
    encode_time,
    load_position,
    save_position,
    state_file_path,
)
from tsplatform.ingest.sql_source_config import (
    CONTRACT_FIELDS,
    DEFAULT_GAP_GRACE_MS,
    DEFAULT_TOPIC_PREFIX,
    SourceConfig,
)

DSN_ENV = "TSPLATFORM_SQL_SOURCE_DSN"
#: Default ``--delay-ms`` of timestamp mode (Connect's ``timestamp.delay.interval.ms``).
DEFAULT_TIMESTAMP_DELAY_MS = 5_000


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
                        f"sql-source: lost the database connection while reading {display_table(config)!r}: "
                        f"{first}; restart to resume from the saved position",
                        setting=DSN_ENV,
                    ) from exc
                raise ConfigError(f"sql-source: reading {display_table(config)!r} failed: {first}") from exc
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
    where = "nothing yet" if position is None else f"{config.time_column}={encode_time(position.last_time)}"
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
        f"{display_table(config)!r} to topic {config.resolved_topic!r} "
        f"in {time.monotonic() - started:.1f}s; "
        f"position {where} ({summary.state_file})"
    )


def register(app: typer.Typer) -> None:
    """Add ``sql-source`` to the ``tsplatform`` app."""
    app.command("sql-source")(sql_source_command)


__all__ = [
    "Publisher",
    "RunSummary",
    "register",
    "run_source",
]
