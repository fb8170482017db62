"""The database dialects of ``tsplatform sql-source``: every difference between PostgreSQL and
MariaDB/MySQL (connecting, identifier quoting, column types, the database clock, error classes).

:func:`dialect_for` picks one from a ``--dsn``, :func:`dialect_of` from an open connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from tsplatform.errors import ConfigError

ColumnKind = Literal["timestamptz", "timestamp", "integer", "other"]


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
