"""Session-wide test environment and the real local services (Kafka KRaft + MongoDB-wire server).

Imported by pytest before any test module, so the environment below is in place before anything
imports pyspark or dagster:

- ``PYSPARK_PYTHON`` / ``PYSPARK_DRIVER_PYTHON`` = this interpreter, ``SPARK_LOCAL_IP=127.0.0.1``,
  ``RAY_AUTH_MODE=disabled``, ``DAGSTER_DISABLE_TELEMETRY=1``;
- ``TSPLATFORM_STATE_DIR`` = a fresh temp dir for the session (removed at the end);
- ``TSPLATFORM_JARS_DIR`` = the shared jar cache (kept across sessions): an explicit
  ``TSPLATFORM_JARS_DIR``, else ``$TSPLATFORM_STATE_DIR/jars`` of the caller (``make test``), else
  ``<repo>/.tsplatform/jars``. It is filled by ``tsplatform services fetch`` on first use.

Fixtures (``integration`` tests use them; a service that cannot start FAILS the test, never skips):

- ``services`` (session): a :class:`~tsplatform.services.ServiceManager` with Kafka and MongoDB-wire
  running on free ports; ``TSPLATFORM_KAFKA_BOOTSTRAP``, ``TSPLATFORM_MONGO_URI`` and a per-session
  ``TSPLATFORM_MONGO_DB`` are set in ``os.environ`` and ``get_settings`` is reset;
- ``kafka_bootstrap``: the broker's ``host:port``;
- ``fresh_topic``: factory ``fresh_topic(partitions=1, prefix="t") -> str`` creating a unique topic;
- ``mongo_client``: a pymongo client (session); ``mongo_db``: a unique database per test, dropped after.

Sub-folder conftests add their own fixtures on top of these.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.database import Database

REPO_ROOT = Path(__file__).resolve().parent.parent


def _session_environment() -> tuple[Path, Path]:
    """Set the session environment (see module doc); returns (state dir, jars dir)."""
    caller_state = os.environ.get("TSPLATFORM_STATE_DIR")
    jars_dir = os.environ.get("TSPLATFORM_JARS_DIR") or (
        str(Path(caller_state).expanduser().resolve() / "jars")
        if caller_state
        else str(REPO_ROOT / ".tsplatform" / "jars")
    )
    state_dir = Path(tempfile.mkdtemp(prefix="tsplatform-test-"))
    os.environ.update(
        {
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "RAY_AUTH_MODE": "disabled",
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "TSPLATFORM_STATE_DIR": str(state_dir),
            "TSPLATFORM_JARS_DIR": jars_dir,
        }
    )
    return state_dir, Path(jars_dir)


SESSION_STATE_DIR, SESSION_JARS_DIR = _session_environment()

# Imported after the environment is set (settings read it).
from tsplatform.errors import TsplatformError  # noqa: E402
from tsplatform.services.manager import ServiceManager  # noqa: E402
from tsplatform.settings import get_settings  # noqa: E402

get_settings.cache_clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(SESSION_STATE_DIR, ignore_errors=True)


#: The modules that take minutes, longest first (the ``--durations`` of whole-suite runs). They start
#: first, so that under ``make test`` (xdist ``--dist=loadfile --no-loadscope-reorder``: modules are handed
#: to workers in collection order) no long module starts last and runs alone at the end.
LONG_MODULES_FIRST = (
    "tsplatform_tests/test_demo.py",
    "tsplatform_tests/test_graph.py",
    "tsplatform_tests/ingest/test_connect_mariadb.py",
    "tsplatform_tests/mlops/test_assets.py",
    "tsplatform_tests/test_ui_browser.py",
    "tsplatform_tests/test_backfill.py",
    "tsplatform_tests/test_sql.py",
    "tsplatform_tests/ingest/test_compaction_e2e.py",
    "tsplatform_tests/reliability/test_faults.py",
    "tsplatform_tests/ml/test_tuning.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the long modules to the front, in ``LONG_MODULES_FIRST`` order; a stable sort, so every
    other module keeps pytest-randomly's shuffled order (which runs before this hook)."""
    rank = {path: i for i, path in enumerate(LONG_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(scope="session")
def services() -> Iterator[ServiceManager]:
    """Kafka + MongoDB-wire for the whole session, in the session's temp state dir, on free ports."""
    try:
        manager = ServiceManager.up_on_free_ports(SESSION_STATE_DIR, jars_dir=SESSION_JARS_DIR)
    except TsplatformError as exc:
        ServiceManager(SESSION_STATE_DIR, jars_dir=SESSION_JARS_DIR).down()
        pytest.fail(f"local services did not start: {exc.one_line()}", pytrace=False)
    saved = {
        k: os.environ.get(k)
        for k in ("TSPLATFORM_KAFKA_BOOTSTRAP", "TSPLATFORM_MONGO_URI", "TSPLATFORM_MONGO_DB")
    }
    os.environ["TSPLATFORM_KAFKA_BOOTSTRAP"] = manager.kafka_bootstrap
    os.environ["TSPLATFORM_MONGO_URI"] = manager.mongo_uri
    os.environ["TSPLATFORM_MONGO_DB"] = f"tsplatform_test_{uuid.uuid4().hex[:10]}"
    get_settings.cache_clear()
    try:
        yield manager
    finally:
        manager.down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def kafka_bootstrap(services: ServiceManager) -> str:
    """``bootstrap.servers`` of the session's broker."""
    return services.kafka_bootstrap


@pytest.fixture
def fresh_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Factory: ``fresh_topic(partitions=1, prefix="t")`` creates a unique topic and returns its name.

    Waits until every partition has a leader, so producing right away succeeds.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    def create(partitions: int = 1, prefix: str = "t") -> str:
        # a client per call, gone when it returns: a client kept alive past the session's broker would
        # log connection errors after the test summary
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        futures[name].result(timeout=30)
        for _ in range(100):
            topic = admin.list_topics(topic=name, timeout=10).topics.get(name)
            if (
                topic is not None
                and topic.error is None
                and len(topic.partitions) == partitions
                and all(p.leader >= 0 for p in topic.partitions.values())
            ):
                return name
            time.sleep(0.1)
        pytest.fail(f"topic {name} has no leader for every partition after creation")

    return create


@pytest.fixture(scope="session")
def mongo_client(services: ServiceManager) -> Iterator[MongoClient]:
    """A pymongo ``MongoClient`` connected to the session's MongoDB-wire server."""
    client: MongoClient = MongoClient(services.mongo_uri, serverSelectionTimeoutMS=10_000)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def mongo_db(mongo_client: MongoClient) -> Iterator[Database]:
    """A unique, empty database for one test (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield mongo_client[name]
    finally:
        mongo_client.drop_database(name)


@pytest.fixture(scope="module", autouse=True)
def _isolated_hive_database() -> None:
    """In-process tests share one Spark session, hence one Hive metastore: drop the ``tsplatform`` database
    (external tables: metadata only, no data) before each test module, so that a table or partition
    registered over another module's lake never answers this module's queries, whatever the order."""
    if "pyspark" not in sys.modules:
        return
    from pyspark.sql import SparkSession

    session = SparkSession._instantiatedSession
    if session is None or session.sparkContext._jsc is None:
        return
    session.sql("DROP DATABASE IF EXISTS tsplatform CASCADE")
