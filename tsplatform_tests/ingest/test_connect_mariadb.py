"""The Kafka Connect route for real: MariaDB's binlog -> Debezium (MariaDB connector) in Apache Kafka's own
Connect worker -> Kafka -> ``ingest_once`` -> ``raw_readings``/``quarantine``.

One worker for the module (``services.start("connect")``: starting it takes about a minute), with the
connector of ``docker/connect/debezium-source.json`` registered on the session's MariaDB (database
``sensors``).
Tests share its tables and topic, so each uses its own block of sensor ids and looks only at its own rows.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pandas as pd
import pytest

from tsplatform.errors import TsplatformError
from tsplatform.services import connect
from tsplatform.services.manager import ServiceManager
from tsplatform_tests.ingest.mariadb_source import (
    Reading,
    add_sensors,
    committed_values,
    expected_multiset,
    insert_readings,
    land,
    landed_multiset,
    new_ss_base,
    readings_for,
    wait_for,
)

pytestmark = pytest.mark.integration

TOPIC = "sensor_data_source_SENSOR_DATA_VIEW"  # the connector's RegexRouter target: the contract's topic
T0 = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0) - dt.timedelta(days=2)


@pytest.fixture(scope="module")
def worker(mariadb_service: ServiceManager) -> Iterator[ServiceManager]:
    """The session's services with a Connect worker running the Debezium connector (RUNNING)."""
    try:
        mariadb_service.start("connect")
    except TsplatformError as exc:
        pytest.fail(f"Kafka Connect did not start: {exc.one_line()}", pytrace=False)
    yield mariadb_service
    mariadb_service.stop("connect")


def _ss_ids_in_topic(bootstrap: str) -> dict[int, list[int]]:
    """sensor_data ids published per ss_id (committed records only: the consumer reads read_committed)."""
    out: dict[int, list[int]] = {}
    for value in committed_values(bootstrap, TOPIC):
        payload = orjson.loads(value)["payload"]
        out.setdefault(payload["ss_id"], []).append(payload["id"])
    return out


def _arrived(bootstrap: str, ss_ids: set[int]) -> int:
    return sum(len(v) for k, v in _ss_ids_in_topic(bootstrap).items() if k in ss_ids)


def _ours(frame: pd.DataFrame, ss_ids: set[int]) -> pd.DataFrame:
    return frame[frame["ss_id"].isin(ss_ids)]


def _connector_state(url: str) -> dict:
    name = connect.connector_name()
    with urllib.request.urlopen(f"{url}/connectors/{name}/status", timeout=10) as response:
        return json.loads(response.read())


def test_rows_in_and_out_of_order_and_malformed_rows_arrive_through_debezium(
    worker: ServiceManager, tmp_path: Path
) -> None:
    dsn, bootstrap = worker.mariadb_dsn, worker.kafka_bootstrap
    env = worker.env()  # what `tsplatform services env` prints
    assert env["TSPLATFORM_MARIADB_DSN"] == dsn and dsn.startswith("mysql://tsplatform:")
    assert env["TSPLATFORM_CONNECT_URL"] == worker.connect_url
    assert _connector_state(worker.connect_url)["connector"]["state"] == "RUNNING"
    base = new_ss_base()
    sensors = add_sensors(dsn, base, "connect")
    ids = sorted(sensors)
    in_order = readings_for(ids, T0, 30)
    out_of_order = readings_for(ids, T0 - dt.timedelta(days=1), 12)[::-1]
    bad = [
        Reading(base, T0 + dt.timedelta(hours=2), None),  # NULL reading
        Reading(base + 999, T0 + dt.timedelta(hours=2), 5.0),  # unknown sensor
        Reading(base, dt.datetime(1960, 1, 1), 5.0),  # out-of-range time
    ]
    insert_readings(dsn, in_order)
    insert_readings(dsn, out_of_order + bad)
    ours = {*ids, base + 999}
    total = len(in_order) + len(out_of_order) + len(bad)
    wait_for(lambda: _arrived(bootstrap, ours) >= total, "Debezium to publish every row")

    raw, quarantine, _ = land(tmp_path, TOPIC)
    raw = _ours(raw, ours)
    assert landed_multiset(raw) == expected_multiset(in_order + out_of_order, sensors)  # exactly once
    for ss_id, (position, type_name, unit, rstart, rend) in sensors.items():
        rows = raw[raw["ss_id"] == ss_id]
        assert set(rows["position"]) == {position} and set(rows["type_name"]) == {type_name}
        assert rows["unit"].isna().all() if unit is None else set(rows["unit"]) == {unit}
        assert set(rows["rstart"]) == {rstart} and set(rows["rend"]) == {rend}
    mine = [
        (orjson.loads(r)["payload"]["ss_id"], reason)
        for r, reason in zip(quarantine["raw"], quarantine["reason"], strict=True)
        if orjson.loads(r)["payload"]["ss_id"] in ours
    ]
    reasons = sorted(reason.split(":")[0] + ":" + reason.split(":")[1] for _, reason in mine)
    assert len(mine) == 3, mine
    assert reasons[0].startswith("absurd_timestamp:")
    assert reasons[1:] == ["missing_field:input_data", "missing_field:position"]


def test_restarts_of_the_worker_and_of_mariadb_mid_stream_lose_and_repeat_nothing(
    worker: ServiceManager, tmp_path: Path
) -> None:
    dsn, bootstrap = worker.mariadb_dsn, worker.kafka_bootstrap
    sensors = add_sensors(dsn, new_ss_base(), "restarts")
    ids = set(sensors)
    waves = [readings_for(sorted(ids), T0 - dt.timedelta(days=3 + k), 15) for k in range(4)]
    inserted: list[Reading] = []

    def insert(wave: list[Reading]) -> None:
        insert_readings(dsn, wave)
        inserted.extend(wave)

    insert(waves[0])
    wait_for(lambda: _arrived(bootstrap, ids) >= len(inserted), "the first wave")
    worker.stop("connect", kill=True)  # the worker dies (SIGKILL) mid-stream
    insert(waves[1])
    worker.start("connect")  # same internal topics: resumes from its committed source offsets
    wait_for(lambda: _arrived(bootstrap, ids) >= len(inserted), "the second wave after the worker restart")
    worker.stop("mariadb")  # the source database restarts under the running connector
    worker.start("mariadb")
    insert(waves[2])
    insert(waves[3][::-1])
    wait_for(lambda: _arrived(bootstrap, ids) >= len(inserted), "the waves after the MariaDB restart")
    state = _connector_state(worker.connect_url)
    assert [t["state"] for t in state["tasks"]] == ["RUNNING"], state

    published = [i for k, v in _ss_ids_in_topic(bootstrap).items() if k in ids for i in v]
    assert len(published) == len(set(published)) == len(inserted)  # no row repeated in Kafka
    raw, _, _ = land(tmp_path, TOPIC)
    assert landed_multiset(_ours(raw, ids)) == expected_multiset(inserted, sensors)
