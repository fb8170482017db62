"""Pure unit tests of sql-source's dialects and id-gap bookkeeping (no database)."""

from __future__ import annotations

import pytest

from tsplatform.errors import ConfigError
from tsplatform.ingest.sql_dialects import MYSQL, POSTGRES, dialect_for
from tsplatform.ingest.sql_polling import _new_gaps, _remove_ids
from tsplatform.services.mariadb import Credentials, parse_dsn


def test_dsn_picks_the_dialect() -> None:
    assert dialect_for("mysql://u:p@h:3306/db") is MYSQL
    assert dialect_for("mariadb://u:p@h/db") is MYSQL
    assert dialect_for("postgresql://u@h/db") is POSTGRES
    assert dialect_for("host=127.0.0.1 dbname=x") is POSTGRES


def test_identifiers_are_quoted_per_dialect_and_percent_is_escaped() -> None:
    assert POSTGRES.quote('a"b %s') == '"a""b %%s"'
    assert MYSQL.quote("a`b %s") == "`a``b %%s`"
    with pytest.raises(ConfigError, match="invalid identifier"):
        MYSQL.quote("bad\x00name")


def test_new_gaps_are_the_ranges_skipped_between_ids_read() -> None:
    assert _new_gaps(0, [1, 2, 3], now_ms=5) == []
    assert _new_gaps(0, [2, 3, 7, 8, 10], now_ms=5) == [(1, 1, 5), (4, 6, 5), (9, 9, 5)]
    assert _new_gaps(100, [], now_ms=5) == []


def test_found_ids_split_their_gap() -> None:
    gaps = [(4, 10, 1), (20, 20, 2)]
    assert _remove_ids(gaps, [4, 7, 20]) == [(5, 6, 1), (8, 10, 1)]
    assert _remove_ids(gaps, []) == gaps


def test_mysql_urls_round_trip_with_quoted_credentials() -> None:
    dsn = Credentials("tsplatform", "p@ss/w:rd", "sensors").dsn(3307)
    assert dsn == "mysql://tsplatform:p%40ss%2Fw%3Ard@127.0.0.1:3307/sensors"
    assert parse_dsn(dsn) == {
        "host": "127.0.0.1",
        "port": 3307,
        "user": "tsplatform",
        "password": "p@ss/w:rd",
        "database": "sensors",
    }
    with pytest.raises(ConfigError, match="needs a host and a database"):
        parse_dsn("mysql://u:p@h:3306/")
