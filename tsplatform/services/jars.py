"""Service jars: resolved once from Maven Central into ``<jars>/<service>/`` and reused.

Each service has a pom under ``tsplatform/services/java/`` (``kafka-pom.xml``, ``mongo-pom.xml``,
``connect-pom.xml`` for the Kafka Connect worker and ``debezium-pom.xml`` for its connector plugin, which goes
to ``<jars>/connect-plugins/debezium/``, the worker's ``plugin.path``);
``mvn dependency:copy-dependencies -DincludeScope=runtime`` copies its runtime jars into a temporary
directory that is renamed into place when complete, followed by a stamp holding the pom's sha256.
A second fetch with an unchanged pom finds the stamp and returns immediately; a changed pom re-resolves.
A file lock serialises concurrent fetches into the same cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tsplatform.errors import MissingDependency, ServiceUnavailable

JAVA_DIR = Path(__file__).resolve().parent / "java"
SERVICES: tuple[str, ...] = ("kafka", "mongo", "connect", "debezium")
#: Jar sets resolved somewhere other than ``<jars>/<name>`` (relative to the jar cache).
TARGET_DIRS: dict[str, str] = {"debezium": "connect-plugins/debezium"}
#: Kafka Connect's ``plugin.path`` under the jar cache (each sub-directory is one plugin).
CONNECT_PLUGINS_DIR = "connect-plugins"
STAMP_NAME = ".resolved-pom.sha256"
MVN_TIMEOUT_S = 900


def pom_path(service: str) -> Path:
    """The pom listing ``service``'s runtime jars."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    return JAVA_DIR / f"{service}-pom.xml"


def pom_digest(service: str) -> str:
    """sha256 (hex) of the service's pom: the cache key of its resolved jars."""
    return hashlib.sha256(pom_path(service).read_bytes()).hexdigest()


def target_dir(jars_dir: Path, service: str) -> Path:
    """Where ``service``'s jars are resolved: ``<jars_dir>/<service>`` unless :data:`TARGET_DIRS` says."""
    return jars_dir / TARGET_DIRS.get(service, service)


def is_resolved(jars_dir: Path, service: str) -> bool:
    """True when ``service``'s target dir holds jars resolved from the current pom."""
    target = target_dir(jars_dir, service)
    stamp = target / STAMP_NAME
    try:
        return stamp.read_text(encoding="ascii").strip() == pom_digest(service) and any(target.glob("*.jar"))
    except OSError:
        return False


def find_mvn() -> str:
    """Path of ``mvn``; :class:`MissingDependency` if absent."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingDependency(
            "mvn (Apache Maven 3.8+) not found on PATH; it resolves the service jars once "
            "(Debian: apt-get install maven)"
        )
    return mvn


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _mvn_env(java_home: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if java_home is not None:
        env["JAVA_HOME"] = str(java_home)
    return env


def resolve(jars_dir: Path, service: str, *, java_home: Path | None = None) -> bool:
    """Resolve ``service``'s jars into ``<jars_dir>/<service>``; returns False if already resolved.

    Raises :class:`MissingDependency` without ``mvn`` and :class:`ServiceUnavailable` when Maven fails
    (e.g. Maven Central unreachable), with the last line Maven printed.
    """
    jars_dir = jars_dir.expanduser().resolve()
    if is_resolved(jars_dir, service):
        return False
    mvn = find_mvn()
    target = target_dir(jars_dir, service)
    with _file_lock(jars_dir / f".{service}.lock"):
        if is_resolved(jars_dir, service):  # another process finished while we waited
            return False
        digest = pom_digest(service)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{service}-", dir=target.parent))
        try:
            cmd = [
                mvn, "-q", "-B", "-f", str(pom_path(service)),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ]  # fmt: skip
            try:
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=MVN_TIMEOUT_S, env=_mvn_env(java_home)
                )
            except subprocess.TimeoutExpired as exc:
                raise ServiceUnavailable(
                    f"Maven did not resolve the {service} jars within {MVN_TIMEOUT_S} s"
                ) from exc
            if proc.returncode != 0 or not any(staging.glob("*.jar")):
                lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
                cause = lines[-1] if lines else f"exit code {proc.returncode}"
                raise ServiceUnavailable(
                    f"Maven could not resolve the {service} jars from {pom_path(service).name}: {cause}"
                )
            (staging / STAMP_NAME).write_text(digest + "\n", encoding="ascii")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return True


def classpath(jars_dir: Path, service: str) -> str:
    """The ``-cp`` value for ``service`` (Java expands the ``dir/*`` wildcard itself)."""
    target = target_dir(jars_dir.expanduser().resolve(), service)
    if not is_resolved(jars_dir, service):
        raise MissingDependency(
            f"the {service} jars are not resolved in {target}; run `tsplatform services fetch`",
            setting="TSPLATFORM_JARS_DIR",
        )
    return f"{target}{os.sep}*"
