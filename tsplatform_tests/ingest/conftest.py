"""A real PostgreSQL server for the ``sql-source`` tests (Debian's ``postgresql`` package).

One server per test session (:func:`tsplatform_tests.ingest.pg_server.running_postgres`: temp dir, free
127.0.0.1 port, run as the ``postgres`` user under root, stopped and removed at the end) and a fresh
database per test. If the binaries are missing or the server does not come up, the fixture FAILS with
the cause and the server log (never skips): install them with ``make system-deps``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tsplatform_tests.ingest.pg_server import PostgresError, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Conninfo (superuser ``tsplatform``, trust auth, database ``postgres``) of a running server."""
    with contextlib.ExitStack() as stack:
        try:
            conninfo = stack.enter_context(running_postgres())
        except PostgresError as exc:
            pytest.fail(f"PostgreSQL test server: {exc}", pytrace=False)
        yield conninfo


@pytest.fixture()
def postgres_dsn(postgres_server: str) -> Iterator[str]:
    """Conninfo of a fresh, empty database on the session server (dropped after the test)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # name is generated above, not external input
    yield postgres_server.replace("dbname=postgres", f"dbname={name}")
    with psycopg.connect(postgres_server, autocommit=True) as conn, contextlib.suppress(psycopg.Error):
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def mariadb_service(services):  # type: ignore[no-untyped-def]
    """The session's service manager with the local MariaDB running too (``services.start("mariadb")``).

    Stopped again after the module (its data dir is kept), so the session's other tests see only Kafka and
    MongoDB-wire in ``services.status()``.
    """
    from tsplatform.errors import TsplatformError

    try:
        services.start("mariadb")
    except TsplatformError as exc:
        pytest.fail(f"MariaDB did not start: {exc.one_line()}", pytrace=False)
    yield services
    services.stop("mariadb")


@pytest.fixture()
def mariadb_dsn(mariadb_service) -> str:  # type: ignore[no-untyped-def]
    """URL of a fresh scratch database ``sensors_t<hex>`` with the study's schema (left for inspection)."""
    from tsplatform.services import mariadb

    dsn = mariadb.scratch_dsn(mariadb_service.mariadb_dsn, f"t{uuid.uuid4().hex[:12]}")
    mariadb.apply_schema(dsn)
    return dsn
