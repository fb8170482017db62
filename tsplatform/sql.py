"""``tsplatform sql "<query>"``: Spark SQL over the Hive tables of the lake (database ``tsplatform``).

The query runs on a Spark session built from the settings (:func:`tsplatform.resources.spark.spark_conf`:
the same master and metastore as the assets), with ``tsplatform`` as the current database, so both
``SELECT * FROM denoised_readings`` and ``tsplatform.denoised_readings`` work. At most ``--limit`` rows
(default 100; 0 = all) are fetched to the driver and printed as a table (``--format table``, rich), or as
CSV or JSON lines for scripts. A query Spark rejects (syntax, unknown table or column, a failing job)
is one line ``error: ...`` on stderr and exit code 2; so is a metastore another process holds (the
embedded Derby metastore admits one process at a time: stop ``dagster dev`` or point
``TSPLATFORM_SPARK_CONF`` at a shared metastore).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tsplatform.errors import ServiceUnavailable, TsplatformError
from tsplatform.hive import DATABASE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_LIMIT = 100


class QueryError(TsplatformError):
    """Spark could not parse, analyse or run the query."""


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def spark_session() -> SparkSession:
    """A Spark session with the settings' Hive metastore (the current one, if this process has one).

    The JVM's own console output (start-up warnings, log4j) goes to ``<state>/logs/spark-sql.log``, not
    to the terminal: the command's stdout carries only the result, its stderr only its one-line errors.
    """
    from pyspark.sql import SparkSession

    from tsplatform.resources.spark import hive_session_builder, is_remote
    from tsplatform.settings import get_settings

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    remote = get_settings().spark_remote
    builder = hive_session_builder()
    log_path = get_settings().state_path / "logs" / "spark-sql.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _output_to(log_path):  # the JVM inherits these for its lifetime
            session = builder.getOrCreate()
            if not is_remote(session):  # a Spark Connect server keeps its own log level
                session.sparkContext.setLogLevel("ERROR")
            session.catalog.listDatabases()  # opens the metastore now: a held Derby lock fails here
    except Exception as exc:  # py4j / JVM start-up / metastore / gRPC errors: one line
        if remote:
            raise ServiceUnavailable(
                f"the Spark Connect server at {remote} does not answer ({type(exc).__name__}: "
                f"{_first_line(exc)}); `tsplatform services status`, or `tsplatform services up spark`",
                setting="TSPLATFORM_SPARK_REMOTE",
            ) from exc
        raise ServiceUnavailable(
            f"cannot start Spark with the Hive metastore ({type(exc).__name__}: {_first_line(exc)}); "
            f"the embedded Derby metastore admits one process at a time; Spark's log: {log_path}",
            setting="TSPLATFORM_SPARK_CONF",
        ) from exc
    return session


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at ``path`` (appending) for the block; child processes started in
    it (the JVM) keep writing there, this process gets its own stdout and stderr back."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(target)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (Spark appends plans and JVM stacks), at most 400 chars."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:400]


def run_query(
    spark: SparkSession, query: str, limit: int = DEFAULT_LIMIT
) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """Run ``query``; returns (column names, at most ``limit`` rows, whether more rows exist).

    ``limit`` 0 fetches every row. Rows come through Arrow, so timestamps are naive datetimes in the
    session time zone (UTC), whatever the local time zone. Raises :class:`QueryError` with Spark's
    one-line reason.
    """
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):  # we print the error ourselves
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
    if not query.strip():
        raise QueryError("empty query")
    if limit < 0:
        raise QueryError(f"--limit must be >= 0, not {limit}")
    try:
        if spark.catalog.databaseExists(DATABASE):
            spark.catalog.setCurrentDatabase(DATABASE)
        frame = spark.sql(query)
        result = (frame if limit == 0 else frame.limit(limit + 1)).toPandas()
    except (PySparkException, Py4JJavaError) as exc:
        raise QueryError(f"query failed: {_first_line(exc)}") from exc
    rows = list(result.itertuples(index=False, name=None))
    more = limit > 0 and len(rows) > limit
    return list(frame.columns), rows[:limit] if limit else rows, more


def _is_null(value: Any) -> bool:
    import pandas as pd

    return value is None or (not isinstance(value, list | tuple | dict) and bool(pd.isna(value)))


def _cell(value: Any) -> str:
    if _is_null(value):
        return "null"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _json_value(value.tolist())
    if _is_null(value):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return value


def print_result(
    columns: list[str], rows: list[tuple[Any, ...]], more: bool, fmt: OutputFormat, limit: int
) -> None:
    """Print the rows on stdout; the row count (and a note when ``limit`` cut them) goes with the table."""
    if fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([_cell(v) if not _is_null(v) else "" for v in row] for row in rows)
        return
    if fmt is OutputFormat.json:
        for row in rows:
            print(
                json.dumps(dict(zip(columns, (_json_value(v) for v in row), strict=True)), ensure_ascii=False)
            )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, show_lines=False)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console = Console()
    width = console.measure(table).maximum
    if width > console.width and not console.is_terminal:  # piped: never wrap or cut cells
        console = Console(width=width)
    console.print(table)
    note = f" (--limit {limit}; more rows exist)" if more else ""
    console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}{note}", highlight=False)


def sql_command(
    query: str = typer.Argument(..., help='Spark SQL, e.g. "SELECT * FROM denoised_readings LIMIT 5".'),
    limit: int = typer.Option(DEFAULT_LIMIT, "--limit", "-n", help="Rows to fetch and print; 0 = all."),
    fmt: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", help="table, csv or json (lines)."
    ),
) -> None:
    """Run Spark SQL against the Hive tables (database tsplatform) and print the result."""
    columns, rows, more = run_query(spark_session(), query, limit)
    print_result(columns, rows, more, fmt, limit)


def register(app: typer.Typer) -> None:
    """Add ``sql`` to the ``tsplatform`` app."""
    app.command("sql")(sql_command)
