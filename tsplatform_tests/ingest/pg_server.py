"""Run a throw-away PostgreSQL server (Debian's ``postgresql`` package) for tests and benchmarks.

``initdb`` into a fresh temp dir, ``postgres`` on a free 127.0.0.1 port with its unix socket in that dir,
fast shutdown and removal on exit. PostgreSQL refuses to run as root, so under root (CI) the server runs
as the ``postgres`` user via ``setpriv`` (the temp dir is chowned to it). Raises :class:`PostgresError`
with the cause (and the server log) when the binaries are missing or the server does not come up.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tsplatform.services.process import free_port

SUPERUSER = "tsplatform"
STARTUP_TIMEOUT_S = 60.0


class PostgresError(RuntimeError):
    """The server could not be set up (message says why)."""


def postgres_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` (or the dir of ``postgres`` on PATH)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise PostgresError(
        "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): run `make system-deps`"
    )


def _run_as_prefix(base: Path) -> list[str]:
    """Command prefix that drops root privileges to ``postgres`` (empty when not root)."""
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresError("running as root but there is no `postgres` user to run the server as") from exc
    for path in [base, *base.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"]


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)  # fast shutdown
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@contextmanager
def running_postgres() -> Iterator[str]:
    """Yield the conninfo (superuser ``tsplatform``, trust auth, database ``postgres``) of a new server."""
    bindir = postgres_bindir()
    base = Path(tempfile.mkdtemp(prefix="tsplatform-pg-"))
    try:
        data, sockets, log = base / "data", base / "sockets", base / "postgres.log"
        sockets.mkdir()
        log.touch()
        prefix = _run_as_prefix(base)
        initdb = subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if initdb.returncode != 0:
            raise PostgresError(f"initdb failed ({initdb.returncode}): {initdb.stderr.strip()[-2000:]}")
        port = free_port()
        with log.open("ab") as log_file:
            server = subprocess.Popen(
                [
                    *prefix,
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-k",
                    str(sockets),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "shared_buffers=32MB",
                    "-c",
                    "max_connections=40",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        conninfo = f"host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres connect_timeout=5"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                try:
                    with psycopg.connect(conninfo) as conn:
                        conn.execute("SELECT 1")
                    break
                except psycopg.OperationalError as exc:
                    if server.poll() is not None or time.monotonic() > deadline:
                        tail = log.read_text()[-3000:]
                        raise PostgresError(
                            f"PostgreSQL did not start on port {port} ({exc}); log:\n{tail}"
                        ) from exc
                    time.sleep(0.2)
            yield conninfo
        finally:
            _stop(server)
    finally:
        shutil.rmtree(base, ignore_errors=True)
