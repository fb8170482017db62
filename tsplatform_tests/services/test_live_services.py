"""The real broker and MongoDB-wire server of the session fixture: produce/consume, upserts, restarts."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable

import psutil
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from pymongo import ASCENDING, MongoClient, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from tsplatform.errors import ServiceUnavailable
from tsplatform.services.health import check_kafka, check_mongo
from tsplatform.services.manager import ServiceManager
from tsplatform.settings import get_settings

pytestmark = pytest.mark.integration


def _produce(bootstrap: str, topic: str, records: list[tuple[str, str]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    failures: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(err)

    for key, value in records:
        producer.produce(topic, key=key.encode(), value=value.encode(), on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert failures == []


def _consume(bootstrap: str, topic: str, group: str, expected: int) -> list[tuple[int, int, str, str]]:
    """(partition, offset, key, value) of ``expected`` records, committing offsets for ``group``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: list[tuple[int, int, str, str]] = []
    try:
        for _ in range(600):
            if len(received) >= expected:
                break
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            received.append((msg.partition(), msg.offset(), msg.key().decode(), msg.value().decode()))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return received


def test_session_environment_points_at_the_services(services: ServiceManager) -> None:
    settings = get_settings()
    assert settings.kafka_bootstrap == services.kafka_bootstrap
    assert settings.mongo_uri == services.mongo_uri
    assert settings.mongo_db.startswith("tsplatform_test_")
    assert os.environ["PYSPARK_PYTHON"] and os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert str(settings.state_path) == os.environ["TSPLATFORM_STATE_DIR"]
    check_kafka(settings.kafka_bootstrap, settings.kafka_security)
    check_mongo(settings.mongo_uri)
    assert [s.state for s in services.status()] == ["healthy", "healthy"]


def test_produce_and_consume_keyed_messages_over_partitions(
    kafka_bootstrap: str, fresh_topic: Callable[..., str]
) -> None:
    topic = fresh_topic(partitions=3)
    records = [(f"sensor-{i % 5}", f"reading-{i}") for i in range(40)]
    _produce(kafka_bootstrap, topic, records)
    received = _consume(kafka_bootstrap, topic, group=f"g-{topic}", expected=len(records))

    assert sorted((k, v) for _, _, k, v in received) == sorted(records)
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    for partition, _, key, _ in received:
        partitions_of_key[key].add(partition)
    assert all(len(p) == 1 for p in partitions_of_key.values())  # a key always lands on one partition
    assert len({p for _, p_set in partitions_of_key.items() for p in p_set}) >= 2
    for key in partitions_of_key:  # per key, values keep their produce order
        values = [v for _, _, k, v in sorted(received) if k == key]
        assert values == [v for k, v in records if k == key]


def test_upsert_update_operators_and_unique_index(mongo_db: Database) -> None:
    series = mongo_db["series"]
    series.create_index([("series_id", ASCENDING)], unique=True)
    for count, last in ((10, 1000), (5, 900), (7, 1200)):
        series.update_one(
            {"series_id": "s1"},
            {
                "$setOnInsert": {"position": "광 주 A", "type_name": "C02"},
                "$inc": {"count": count},
                "$max": {"last_event_ms": last},
                "$set": {"unit": "ppm"},
            },
            upsert=True,
        )
    doc = series.find_one({"series_id": "s1"}, {"_id": 0})
    assert doc == {
        "series_id": "s1",
        "position": "광 주 A",
        "type_name": "C02",
        "count": 22,
        "last_event_ms": 1200,
        "unit": "ppm",
    }
    with pytest.raises(DuplicateKeyError):
        series.insert_one({"series_id": "s1"})
    after = series.find_one_and_update(
        {"series_id": "s1"}, {"$push": {"methods": "linear"}}, return_document=ReturnDocument.AFTER
    )
    assert after["methods"] == ["linear"]
    assert any(
        ix["key"] == [("series_id", 1)] and ix.get("unique") for ix in series.index_information().values()
    )


def test_kafka_sigkill_and_restart_keeps_topics_offsets_and_port(
    services: ServiceManager, fresh_topic: Callable[..., str]
) -> None:
    bootstrap = services.kafka_bootstrap
    topic = fresh_topic(partitions=2)
    group = f"g-{topic}"
    _produce(bootstrap, topic, [(f"k{i}", f"v{i}") for i in range(10)])
    assert len(_consume(bootstrap, topic, group, expected=10)) == 10
    old_pid = services.status()[0].pid
    assert old_pid is not None

    assert services.stop("kafka", kill=True) is True
    assert not (psutil.pid_exists(old_pid) and psutil.Process(old_pid).status() != psutil.STATUS_ZOMBIE)
    with pytest.raises(ServiceUnavailable, match="TSPLATFORM_KAFKA_BOOTSTRAP"):
        check_kafka(bootstrap, timeout_s=2)

    services.start("kafka")
    assert services.kafka_bootstrap == bootstrap
    _produce(bootstrap, topic, [("k-after", "v-after")])
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=30)
    finally:
        consumer.close()
    assert sum(tp.offset for tp in committed) == 10  # the group's committed offsets survived the SIGKILL
    assert _consume(bootstrap, topic, group, expected=1)[0][2:] == ("k-after", "v-after")


def test_mongo_restart_keeps_data(services: ServiceManager, mongo_client: MongoClient) -> None:
    database = mongo_client[f"persist_{os.getpid()}"]
    database["docs"].insert_one({"_id": "kept", "n": 1})
    assert services.stop("mongo") is True
    with pytest.raises(ServiceUnavailable, match="TSPLATFORM_MONGO_URI"):
        check_mongo(services.mongo_uri, timeout_s=1)
    services.start("mongo")
    assert database["docs"].find_one({"_id": "kept"}) == {"_id": "kept", "n": 1}
    mongo_client.drop_database(database.name)


def test_catalog_reads_only_series_with_a_field(services: ServiceManager, mongo_db: Database) -> None:
    """``Catalog.series_fields`` / ``iter_series_fields`` on the real server: the documents (of the ids asked
    for) holding any of the fields, projected to them; one without those fields, or not asked for, is not
    returned."""
    from tsplatform.catalog import Catalog

    catalog = Catalog(services.mongo_uri, mongo_db.name)
    try:
        catalog.update_series_many(
            [
                {"_id": "a-1", "period_s": 60.0, "imputation_method": "linear"},
                {"_id": "b-2", "imputation_history": [["2024-03-01", "seasonal"]]},
                {"_id": "c-3", "period_s": 600.0},  # none of the fields asked for
                {"_id": "d-4", "imputation_method": "kalman"},  # not among the ids asked for below
            ]
        )
        fields = ["imputation_method", "imputation_history"]
        assert catalog.series_fields(fields, ids=["a-1", "b-2", "c-3", "x-9"]) == {
            "a-1": {"imputation_method": "linear"},
            "b-2": {"imputation_history": [["2024-03-01", "seasonal"]]},
        }
        assert dict(catalog.iter_series_fields(fields)) == {
            "a-1": {"imputation_method": "linear"},
            "b-2": {"imputation_history": [["2024-03-01", "seasonal"]]},
            "d-4": {"imputation_method": "kalman"},
        }
    finally:
        catalog.close()
