"""A real PostgreSQL server for the ``sql-source`` tests (Debian's ``postgresql`` package).

One server per test session: ``initdb`` into a fresh temp dir, ``postgres`` on a free 127.0.0.1 port with
its unix socket in that dir, stopped (fast shutdown) and removed at the end. PostgreSQL refuses to run
as root, so under root (CI) the server runs as the ``postgres`` user via ``setpriv``. If the binaries are
missing or the server does not come up, the fixture FAILS with the server log (never skips): install them
with ``make system-deps``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PG_SUPERUSER = "tsplatform"
STARTUP_TIMEOUT_S = 60.0


def _postgres_bindir() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    pytest.fail("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): run `make system-deps`")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as_prefix(base: Path) -> list[str]:
    """Command prefix that drops root privileges to ``postgres`` (empty when not root)."""
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root but there is no `postgres` user to run the PostgreSQL server as")
    for path in [base, *base.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Conninfo (superuser ``tsplatform``, trust auth, database ``postgres``) of a running server."""
    bindir = _postgres_bindir()
    base = Path(tempfile.mkdtemp(prefix="tsplatform-pg-"))
    data, sockets, log = base / "data", base / "sockets", base / "postgres.log"
    sockets.mkdir()
    log.touch()
    prefix = _run_as_prefix(base)
    initdb = subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", PG_SUPERUSER, "--auth=trust",
         "-E", "UTF8", "--no-locale", "--no-sync"],
        capture_output=True, text=True, check=False,
    )
    if initdb.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"initdb failed ({initdb.returncode}): {initdb.stderr.strip()[-2000:]}")
    port = _free_port()
    with log.open("ab") as log_file:
        server = subprocess.Popen(
            [*prefix, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "shared_buffers=32MB", "-c", "max_connections=40"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
    conninfo = f"host=127.0.0.1 port={port} user={PG_SUPERUSER} dbname=postgres connect_timeout=5"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(conninfo) as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.OperationalError as exc:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"PostgreSQL did not start on port {port} ({exc}); log:\n{log.read_text()[-3000:]}"
                    )
                time.sleep(0.2)
        yield conninfo
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def postgres_dsn(postgres_server: str) -> Iterator[str]:
    """Conninfo of a fresh, empty database on the session server (dropped after the test)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # name is generated above, not external input
    yield postgres_server.replace("dbname=postgres", f"dbname={name}")
    with psycopg.connect(postgres_server, autocommit=True) as conn, contextlib.suppress(psycopg.Error):
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
