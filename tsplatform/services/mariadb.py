"""MariaDB (Debian's ``mariadb-server``) on 127.0.0.1: the study's source database, for development and tests.

Layout under ``<state>/mariadb/``: ``data/`` (the data dir, created once with ``mariadb-install-db``; the
binary log ``binlog.*`` lives there too), ``credentials.json`` (user, password and database of the client
account, generated once, mode 0600) and ``bootstrap.sql`` (rewritten at every start, run by the server with
``--init-file``: creates or updates that account and the database). After the server answers, the study's
schema (``docker/mariadb/init.sql``, the very file the docker deployment runs) is applied; it is idempotent.

The server runs unprivileged: under root it is started with ``--user=mysql`` (the data dir is chowned to
that account). The binary log is on, in ROW format with full row images, as Debezium's MySQL/MariaDB
connector requires; the session and server time zone is UTC.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from tsplatform.errors import ConfigError, MissingDependency, ServiceUnavailable

#: The study's schema: sensor table, readings table, SENSOR_DATA_VIEW (shared with docker/compose.yaml).
SCHEMA_SQL = Path(__file__).resolve().parents[2] / "docker" / "mariadb" / "init.sql"
SERVICE_ACCOUNT = "mysql"
DEFAULT_USER = "tsplatform"
DEFAULT_DATABASE = "sensors"
#: Privileges Debezium's binlog reader needs on top of the database's own (MariaDB 10.5+ names).
REPLICATION_GRANTS = "RELOAD, PROCESS, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR, REPLICATION CLIENT"
_SOCKET_MAX = 100  # sun_path is 108 bytes
_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


@dataclass(frozen=True)
class Credentials:
    """The client account of the local server (``user`` may create tables in ``database``)."""

    user: str
    password: str
    database: str

    def dsn(self, port: int, host: str = "127.0.0.1") -> str:
        """``mysql://<user>:<password>@<host>:<port>/<database>`` (user and password URL-quoted)."""
        user, password = quote(self.user, safe=""), quote(self.password, safe="")
        return f"mysql://{user}:{password}@{host}:{port}/{self.database}"


def base_dir(state_dir: Path) -> Path:
    return state_dir / "mariadb"


def data_dir(state_dir: Path) -> Path:
    return base_dir(state_dir) / "data"


def find_binaries() -> tuple[Path, Path]:
    """``(mariadbd, mariadb-install-db)``; :class:`MissingDependency` without Debian's mariadb-server."""
    server = shutil.which("mariadbd") or next(
        (str(p) for p in (Path("/usr/sbin/mariadbd"), Path("/usr/sbin/mysqld")) if p.is_file()), None
    )
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if server is None or install is None:
        raise MissingDependency(
            "MariaDB server binaries (mariadbd, mariadb-install-db) not found: run `make system-deps` "
            "(Debian: apt-get install mariadb-server)"
        )
    return Path(server), Path(install)


def credentials(state_dir: Path, user: str | None = None, password: str | None = None,
                database: str | None = None) -> Credentials:  # fmt: skip
    """The account of this state dir: explicit values win, else the saved ones, else generated and saved."""
    path = base_dir(state_dir) / "credentials.json"
    saved: dict[str, str] = {}
    if path.is_file():
        try:
            saved = {k: str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f"MariaDB credentials file {path} is unreadable ({exc}); remove it") from exc
    creds = Credentials(
        user=user or saved.get("user") or DEFAULT_USER,
        password=password or saved.get("password") or secrets.token_urlsafe(18),
        database=database or saved.get("database") or DEFAULT_DATABASE,
    )
    for label, value in (("user", creds.user), ("database", creds.database)):
        if not _NAME.match(value):
            raise ConfigError(
                f"MariaDB {label} {value!r} must be 1-64 letters, digits or underscores",
                setting=f"TSPLATFORM_MARIADB_{label.upper()}",
            )
    if "'" in creds.password or "\\" in creds.password:
        raise ConfigError(
            "the MariaDB password may not contain ' or \\", setting="TSPLATFORM_MARIADB_PASSWORD"
        )
    if {"user": creds.user, "password": creds.password, "database": creds.database} != saved:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(creds.__dict__) + "\n", encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)
    return creds


def parse_dsn(dsn: str) -> dict[str, object]:
    """``mysql://`` or ``mariadb://`` URL -> PyMySQL ``connect`` keyword arguments (host, port, user, ...)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("mysql", "mariadb"):
        raise ConfigError(f"not a mysql:// or mariadb:// URL: {parts.scheme}://...")
    database = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not database:
        raise ConfigError(
            "a MariaDB/MySQL URL needs a host and a database: mysql://user:password@host:port/db"
        )
    return {
        "host": parts.hostname,
        "port": parts.port or 3306,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "database": database,
    }


def bootstrap_sql(creds: Credentials) -> str:
    """Statements the server runs at every start (``--init-file``; one statement per line)."""
    account = f"'{creds.user}'@'127.0.0.1'"
    db = f"`{creds.database}`"
    return "\n".join(
        [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{creds.password}';",
            f"ALTER USER {account} IDENTIFIED BY '{creds.password}';",
            f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;",
            f"GRANT ALL PRIVILEGES ON {db}.* TO {account};",
            # Scratch databases `<database>_<suffix>` (tests, benchmarks): `_` escaped, `%` the wildcard.
            f"GRANT ALL PRIVILEGES ON `{creds.database}\\_%`.* TO {account};",
            f"GRANT {REPLICATION_GRANTS} ON *.* TO {account};",
            "",
        ]
    )


def _service_account() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root (``mysql``), else ``None`` (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError as exc:
        raise MissingDependency(
            f"running as root but there is no `{SERVICE_ACCOUNT}` account to run MariaDB as "
            "(apt-get install mariadb-server creates it)"
        ) from exc


def _hand_over(path: Path, account: pwd.struct_passwd, state_dir: Path) -> None:
    """chown ``path`` (recursively) to ``account`` and make sure it can reach it from ``/``.

    Directories of the state dir on the way get the search bit for others (``o+x``: enter, not list); a
    directory outside the state dir that the account cannot enter is an error naming it.
    """
    for item in [path, *path.rglob("*")]:
        os.lchown(item, account.pw_uid, account.pw_gid)
    state_dir = state_dir.resolve()
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if mode & stat.S_IXOTH:
            continue
        if parent == state_dir or state_dir in parent.parents:
            parent.chmod(mode | stat.S_IXOTH)
        else:
            raise ConfigError(
                f"MariaDB runs as `{account.pw_name}` and cannot enter {parent}: put the state dir "
                "elsewhere or allow others to enter that directory (chmod o+x)",
                setting="TSPLATFORM_STATE_DIR",
            )


def socket_path(state_dir: Path) -> Path:
    """The server's unix socket (unused by tsplatform, required by the server): short enough for sun_path."""
    preferred = base_dir(state_dir) / "mysqld.sock"
    if len(str(preferred)) <= _SOCKET_MAX:
        return preferred
    import hashlib

    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]
    return Path("/tmp") / f"tsplatform-mariadb-{digest}.sock"


def prepare(state_dir: Path, creds: Credentials, *, log_path: Path) -> None:
    """Create the data dir once (``mariadb-install-db``), write ``bootstrap.sql``, hand both over."""
    _server, install = find_binaries()
    account = _service_account()
    base = base_dir(state_dir)
    base.mkdir(parents=True, exist_ok=True)
    (base / "bootstrap.sql").write_text(bootstrap_sql(creds), encoding="utf-8")
    (base / "bootstrap.sql").chmod(0o600)
    data = data_dir(state_dir)
    fresh = not (data / "mysql").is_dir()
    if fresh:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
    if account is not None:
        _hand_over(base, account, state_dir)
    if not fresh:
        return
    cmd = [str(install), "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=socket",
           "--skip-test-db", "--skip-name-resolve"]  # fmt: skip
    if account is not None:
        cmd.append(f"--user={account.pw_name}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=base)
    except subprocess.TimeoutExpired as exc:
        raise ServiceUnavailable("mariadb-install-db took more than 300 s") from exc
    with log_path.open("a", encoding="utf-8") as log:
        log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        cause = lines[-1] if lines else f"exit code {proc.returncode}"
        raise ServiceUnavailable(f"mariadb-install-db failed: {cause} (see {log_path})")


def server_command(state_dir: Path, port: int, markers: list[str]) -> list[str]:
    """``mariadbd`` on 127.0.0.1:``port``, binlog in ROW format, UTC, small buffers, with ``markers``."""
    server, _install = find_binaries()
    account = _service_account()
    base, data = base_dir(state_dir), data_dir(state_dir)
    cmd = [
        str(server), "--no-defaults",
        f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1",
        f"--socket={socket_path(state_dir)}", f"--pid-file={base / 'mariadbd.pid'}",
        f"--init-file={base / 'bootstrap.sql'}",
        "--skip-name-resolve", "--default-time-zone=+00:00",
        "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
        # Debezium reads the binary log: ROW events with full images, a server id, triggers allowed.
        f"--log-bin={data / 'binlog'}", "--binlog-format=ROW", "--binlog-row-image=FULL", "--server-id=1",
        "--log-bin-trust-function-creators=1", "--binlog-expire-logs-seconds=604800",
        # Sized for development and tests.
        "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M", "--max-connections=100",
        "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0",
        *markers,
    ]  # fmt: skip
    if account is not None:
        cmd.insert(2, f"--user={account.pw_name}")
    return cmd


def marker_args(service: str, state_dir: Path) -> list[str]:
    """Options that identify our server on its command line (``--loose-``: the server ignores them)."""
    return [f"--loose-tsplatform-service={service}", f"--loose-tsplatform-state={state_dir}"]


def connect(dsn: str, *, timeout_s: float = 10.0, autocommit: bool = False, multi_statements: bool = False):
    """A PyMySQL connection for a ``mysql://`` URL, session time zone UTC, utf8mb4."""
    import pymysql
    from pymysql.constants import CLIENT

    return pymysql.connect(
        **parse_dsn(dsn),  # type: ignore[arg-type]
        charset="utf8mb4",
        connect_timeout=max(1, int(timeout_s)),
        read_timeout=max(30, int(timeout_s)),
        write_timeout=max(30, int(timeout_s)),
        init_command="SET time_zone = '+00:00'",
        autocommit=autocommit,
        client_flag=CLIENT.MULTI_STATEMENTS if multi_statements else 0,
    )


def mariadb_summary(dsn: str, timeout_s: float = 5.0) -> str:
    """``"server <version>, binlog ROW"`` from a successful query; :class:`ServiceUnavailable` otherwise."""
    import pymysql

    try:
        conn = connect(dsn, timeout_s=timeout_s, autocommit=True)
    except pymysql.MySQLError as exc:
        raise ServiceUnavailable(
            f"MariaDB at {_redact(dsn)} is not reachable: {exc.args[-1] if exc.args else exc}",
            setting="TSPLATFORM_MARIADB_DSN",
        ) from exc
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), @@binlog_format")
            version, binlog = cur.fetchone()
        return f"server {str(version).split('-')[0]}, binlog {binlog}"
    finally:
        conn.close()


def scratch_dsn(dsn: str, suffix: str) -> str:
    """Create the empty database ``<database>_<suffix>`` (tests, benchmarks) and return its URL."""
    if not re.fullmatch(r"[a-z0-9]{1,20}", suffix):
        raise ConfigError(f"scratch database suffix {suffix!r} must be 1-20 lowercase letters or digits")
    params = parse_dsn(dsn)
    name = f"{params['database']}_{suffix}"
    conn = connect(dsn, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    finally:
        conn.close()
    return dsn.rsplit("/", 1)[0] + "/" + name


#: What the schema script creates; :func:`schema_missing` looks for these.
SCHEMA_OBJECTS = {"sensor", "sensor_data", "SENSOR_DATA_VIEW", "sensor_data_events"}
SCHEMA_TRIGGER = "sensor_data_events_fill"


def schema_missing(dsn: str) -> bool:
    """True when a table, the view or the trigger of the study's schema is absent from ``dsn``'s database.

    The schema is applied only then: re-running its DDL on every start would put it in the binary log
    again, for Debezium to parse each time.
    """
    conn = connect(dsn, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
            tables = {row[0] for row in cur.fetchall()}
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() "
                "AND TRIGGER_NAME = %s",
                [SCHEMA_TRIGGER],
            )
            (triggers,) = cur.fetchone()
    finally:
        conn.close()
    return not tables >= SCHEMA_OBJECTS or not triggers


def apply_schema(dsn: str, schema: Path = SCHEMA_SQL) -> None:
    """Run the study's schema script (idempotent) on the database of ``dsn``."""
    import pymysql

    try:
        script = schema.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"MariaDB schema {schema} is unreadable: {exc.strerror}") from exc
    conn = connect(dsn, autocommit=True, multi_statements=True)
    try:
        with conn.cursor() as cur:
            cur.execute(script)
            while cur.nextset():
                pass
    except pymysql.MySQLError as exc:
        raise ServiceUnavailable(f"applying {schema.name} to MariaDB failed: {exc}") from exc
    finally:
        conn.close()


def _redact(dsn: str) -> str:
    return re.sub(r"(//[^:/@]+:)[^@/]*@", r"\1***@", dsn)
