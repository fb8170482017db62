"""MongoDB-wire-protocol server (mongo-java-server, H2 backend) bound to 127.0.0.1.

``MongoLauncher.java`` runs as a Java 17 single-source program. Data lives in ``<state>/mongo/data.mv``
(an H2 MVStore file, committed about every second and on SIGTERM), so it survives restarts.
"""

from __future__ import annotations

from pathlib import Path

from tsplatform.services.jars import JAVA_DIR

LAUNCHER = JAVA_DIR / "MongoLauncher.java"
HEAP_OPTS: tuple[str, ...] = ("-Xms64m", "-Xmx384m")
LOG4J_CONFIG = JAVA_DIR / "log4j2.properties"


def data_file(state_dir: Path) -> Path:
    """The H2 store of the local MongoDB-wire server."""
    return state_dir / "mongo" / "data.mv"


def server_command(
    java: Path, classpath: str, port: int, store: Path, markers: list[str], tmp_dir: Path
) -> list[str]:
    """``java -cp <jars>/* MongoLauncher.java PORT DATAFILE`` with heap, markers and log4j config."""
    return [
        str(java), *HEAP_OPTS, *markers,
        "-Djava.awt.headless=true",
        f"-Djava.io.tmpdir={tmp_dir}",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp", classpath,
        str(LAUNCHER), str(port), str(store),
    ]  # fmt: skip
