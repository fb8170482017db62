"""Fuzzing through a real ingestion run: mutated records (the decoder fuzz corpus, sized under the broker's
1 MB message limit) published to a real topic and landed by the Kafka offset sensor's Dagster runs; every
offset ends in raw_readings or in the quarantine with a reason, exactly once."""

from __future__ import annotations

import random

import dagster as dg
import pandas as pd
import pytest
from confluent_kafka import Producer

from tsplatform.ids import is_series_id
from tsplatform.lake import Lake
from tsplatform_tests.ingest.test_ingest_e2e import env_settings, run_sensor_and_runs
from tsplatform_tests.ingest.workload import read_dataset
from tsplatform_tests.reliability.budget import scaled
from tsplatform_tests.reliability.fuzz_corpus import mutated_record
from tsplatform_tests.reliability.test_fuzz_decoder import REASON_CODES

pytestmark = [pytest.mark.fuzz, pytest.mark.integration]


def test_mutated_records_through_a_real_ingestion_run(services, fresh_topic, tmp_path) -> None:  # type: ignore[no-untyped-def]
    n = scaled(3_000, 100_000)
    rng = random.Random(17)
    base_ms = int(pd.Timestamp("2024-05-01", tz="UTC").value // 10**6)
    topic = fresh_topic(partitions=2, prefix="fuzz")
    sent: dict[tuple[int, int], bytes | None] = {}
    producer = Producer({"bootstrap.servers": services.kafka_bootstrap, "linger.ms": 20,
                         "message.max.bytes": 2_000_000})  # fmt: skip
    errors: list[str] = []

    def delivered(err, msg) -> None:  # type: ignore[no-untyped-def]
        if err is not None:
            errors.append(str(err))
        else:
            sent[(msg.partition(), msg.offset())] = msg.value()

    for _ in range(n):
        value = mutated_record(rng, base_ms, max_string=900_000)
        while True:
            try:
                producer.produce(topic, value=value, key=str(rng.random()).encode(), on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(120) == 0 and not errors, errors[:3]
    with env_settings(tmp_path, topic, max_per_run=1_000) as settings, dg.instance_for_test() as instance:
        _cursor, runs = run_sensor_and_runs(instance, None)
        assert runs >= 2
        lake = Lake(settings.lake_uri)
        raw = read_dataset(lake, "raw_readings")
        quarantine = read_dataset(lake, "quarantine")
    landed = list(zip(raw["partition"], raw["offset"], strict=True))
    held = list(zip(quarantine["partition"], quarantine["offset"], strict=True))
    assert len(landed) + len(held) == len(sent) == n
    assert set(landed) | set(held) == set(sent)  # every offset, once
    assert quarantine["reason"].str.split(":").str[0].isin(REASON_CODES).all()
    raws = [None if b is None else bytes(b) for b in quarantine["raw"]]
    expected = [sent[k] if sent[k] else None for k in held]
    assert [r or None for r in raws] == expected  # the original bytes are kept
    assert raw["series_id"].map(is_series_id).all()
    assert raw["position"].str.len().le(256).all()
    print(
        f"\nfuzz: {n} mutated messages through Kafka and ingestion: "
        f"{len(landed)} landed, {len(held)} quarantined"
    )
