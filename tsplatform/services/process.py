"""Process plumbing of the local services: Java discovery, PID files, ownership checks, start and stop.

A service process is *ours* when its command line carries both marker system properties
``-Dtsplatform.service=<name>`` and ``-Dtsplatform.state=<absolute state dir>``. Only such processes are
ever signalled, so a stale PID file whose PID was reused by an unrelated process is harmless.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import psutil

from tsplatform.errors import ConfigError, MissingDependency

MIN_JAVA_MAJOR = 17


def marker_args(service: str, state_dir: Path) -> list[str]:
    """The JVM system properties that identify ``service`` of the state dir ``state_dir``."""
    return [f"-Dtsplatform.service={service}", f"-Dtsplatform.state={state_dir}"]


def _java_major(version_output: str) -> int | None:
    """Major version from ``java -version`` output (``"17.0.15"`` -> 17, ``"1.8.0_392"`` -> 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


@lru_cache(maxsize=8)
def _checked_java(java: str) -> str:
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MissingDependency(f"cannot run {java}: {exc}", setting="JAVA_HOME") from exc
    major = _java_major(proc.stderr + proc.stdout)
    if major is None or major < MIN_JAVA_MAJOR:
        raise MissingDependency(
            f"{java} is Java {major or 'of unknown version'}; Java {MIN_JAVA_MAJOR}+ (a JDK) is required",
            setting="JAVA_HOME",
        )
    return java


def find_java() -> Path:
    """The ``java`` of ``$JAVA_HOME`` if set, else the one on ``PATH``; must be Java 17+.

    Raises :class:`MissingDependency` (setting ``JAVA_HOME``) when absent or too old, and
    :class:`ConfigError` when ``JAVA_HOME`` points to a directory without ``bin/java``.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        java = Path(java_home).expanduser() / "bin" / "java"
        if not os.access(java, os.X_OK):
            raise ConfigError(f"JAVA_HOME={java_home} has no executable bin/java", setting="JAVA_HOME")
    else:
        found = shutil.which("java")
        if found is None:
            raise MissingDependency(
                "java not found on PATH and JAVA_HOME is not set; install Java 17+ "
                "(Debian: apt-get install openjdk-17-jdk-headless)",
                setting="JAVA_HOME",
            )
        java = Path(found)
    return Path(_checked_java(str(java)))


def java_home_of(java: Path) -> Path:
    """``JAVA_HOME`` matching a ``java`` executable (``<home>/bin/java``), symlinks resolved."""
    return java.resolve().parent.parent


@dataclass(frozen=True)
class PidRecord:
    """Content of ``<state>/run/<service>.pid``: the PID and the ports the process was started with."""

    pid: int
    ports: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in ``path``; ``None`` if the file is absent or unreadable (a plain PID is accepted)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if text.isdigit():
        return PidRecord(pid=int(text))
    try:
        data = json.loads(text)
        ports = {str(k): int(v) for k, v in dict(data.get("ports", {})).items()}
        return PidRecord(pid=int(data["pid"]), ports=ports, started_at=float(data.get("started_at", 0.0)))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def write_pid_file(path: Path, record: PidRecord) -> None:
    """Write ``record`` atomically (write aside, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(record.dump(), encoding="utf-8")
    tmp.replace(path)


def reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is our own child (so it does not linger as a zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _live_cmdline(pid: int) -> list[str] | None:
    """Command line of the live process ``pid``, ``None`` if it is gone or a zombie.

    A JVM's thread-group leader can exit (and show as a zombie, with an empty ``/proc/<pid>/cmdline``)
    while the other threads keep the process running; the command line is then read through a live
    thread (``/proc/<pid>/task/<tid>/cmdline``).
    """
    for attempt in range(10):  # an empty command line is transient while a process execs
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                break
            cmdline = proc.cmdline()
            if cmdline:
                return cmdline
        except psutil.ZombieProcess:
            break
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        time.sleep(0.02 * (attempt + 1))
    task_dir = Path(f"/proc/{pid}/task")
    try:
        tasks = sorted(task_dir.iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            stat = (task / "stat").read_bytes()
            if stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] in (b"Z", b"X"):
                continue
            raw = (task / "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            return raw.rstrip(b"\0").decode("utf-8", errors="replace").split("\0")
    return None


def is_ours(pid: int, markers: list[str]) -> bool:
    """True when ``pid`` is alive (not a zombie) and its command line carries every marker."""
    if pid <= 0:
        return False
    reap(pid)
    cmdline = _live_cmdline(pid)
    return cmdline is not None and all(marker in cmdline for marker in markers)


def spawn(
    cmd: list[str], *, log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start ``cmd`` detached in its own session (it outlives the caller), output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def stop_pid(pid: int, markers: list[str], *, kill: bool = False, timeout_s: float = 20.0) -> bool:
    """Stop ``pid`` if it is ours: SIGTERM (or SIGKILL if ``kill``), then SIGKILL after ``timeout_s``.

    Returns True if a process was signalled. The process's group is not signalled: only the PID
    that was verified to be ours.
    """
    if not is_ours(pid, markers):
        return False
    try:
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_ours(pid, markers):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and is_ours(pid, markers):
        time.sleep(0.1)
    return True


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` can be bound now (SO_REUSEADDR, as the Java servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free right now (another process may still take it before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that are free right now (see :func:`free_port`)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    return ports


def tail(path: Path, max_lines: int = 200) -> list[str]:
    """Last ``max_lines`` non-empty lines of a text file (empty if unreadable)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64_000))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in data.splitlines() if line.strip()][-max_lines:]
