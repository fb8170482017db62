"""``tsplatform replay``: option handling (unit) and publishing to the real broker (integration)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tsplatform.cli import app, main
from tsplatform.errors import BadInput
from tsplatform.ingest.decode import decode_records
from tsplatform.ingest.envelope import message_key
from tsplatform.ingest.field_mapping import FieldMapping, SchemaCache
from tsplatform.ingest.replay import ColumnMap, parse_time_shift, prepare_readings, shift_times
from tsplatform.services.process import free_port
from tsplatform.settings import get_settings

DATA = Path(__file__).resolve().parent.parent / "data" / "b4b_917810_2022-10-30_dst.csv"
B4B_MAP = ColumnMap(time_column="timestamp", value_column="co2__ppm", position_column="id",
                    type_name_column="source", constants={"unit": "ppm"})  # fmt: skip
B4B_ARGS = ["--time-column", "timestamp", "--value-column", "co2__ppm", "--position-column", "id",
            "--type-name-column", "source", "--unit", "ppm", "--no-progress"]  # fmt: skip


def expected_b4b() -> pd.DataFrame:
    """The readings the B4B slice must yield (rows with a CO2 value), in UTC."""
    raw = pd.read_csv(DATA)
    raw = raw[raw["co2__ppm"].notna()]
    return pd.DataFrame({
        "position": raw["id"].astype(str), "type_name": raw["source"],
        "event_time": pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601"), "value": raw["co2__ppm"],
    }).reset_index(drop=True)  # fmt: skip


# --- unit ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "base", "expected"),
    [
        ("+3y2d", "2022-10-30T00:00:00Z", "2025-11-01T00:00:00Z"),
        ("-1d12h", "2022-10-30T00:00:00Z", "2022-10-28T12:00:00Z"),
        ("90m", "2022-10-30T00:00:00Z", "2022-10-30T01:30:00Z"),
        ("3600", "2022-10-30T00:00:00Z", "2022-10-30T01:00:00Z"),
        ("1mo", "2022-01-31T00:00:00Z", "2022-02-28T00:00:00Z"),
        ("+1w30s", "2022-10-30T00:00:00Z", "2022-11-06T00:00:30Z"),
    ],
)
def test_parse_time_shift(text: str, base: str, expected: str) -> None:
    assert pd.Timestamp(base) + parse_time_shift(text) == pd.Timestamp(expected)


@pytest.mark.parametrize("text", ["", "3x", "+1.5y", "d3", "1d-2h"])
def test_invalid_time_shift_is_a_clear_error(text: str) -> None:
    with pytest.raises(BadInput, match="time shift"):
        parse_time_shift(text)


def test_prepare_readings_maps_columns_and_counts_skipped_rows() -> None:
    prepared = prepare_readings(pd.read_csv(DATA), B4B_MAP)
    expected = expected_b4b()
    assert prepared.skipped == {"missing or non-finite value": 8}
    pd.testing.assert_series_equal(prepared.frame["event_time"], expected["event_time"], check_names=False)
    assert prepared.frame["position"].tolist() == expected["position"].tolist()
    assert prepared.frame["type_name"].tolist() == expected["type_name"].tolist()
    assert prepared.frame["value"].tolist() == expected["value"].tolist()
    assert set(prepared.frame["unit"]) == {"ppm"}
    # The DST change: 02:00+0200 and 02:00+0100 are one hour apart in UTC.
    scd = prepared.frame[prepared.frame["type_name"] == "CO2-meter-SCD4x"]["event_time"]
    assert {pd.Timestamp("2022-10-30T00:00:00Z"), pd.Timestamp("2022-10-30T01:00:00Z")} <= set(scd)

    lenient = prepare_readings(pd.read_csv(DATA), B4B_MAP, publish_invalid=True)
    assert lenient.skipped == {} and len(lenient.frame) == 152
    assert int(lenient.frame["value"].isna().sum()) == 8


def test_prepare_readings_constants_naive_times_and_errors() -> None:
    raw = pd.DataFrame({"ts": ["2024-01-01 00:00:00", "not a time", "2024-01-01 00:10:00"], "v": [1, 2, "x"]})
    cmap = ColumnMap(time_column="ts", value_column="v", position="광 주 A", type_name="CO2", tz="Asia/Seoul")
    prepared = prepare_readings(raw, cmap)
    assert prepared.skipped == {"missing or unparseable time": 1, "missing or non-finite value": 1}
    assert prepared.frame["event_time"].tolist() == [pd.Timestamp("2023-12-31T15:00:00Z")]
    assert prepared.frame[["position", "type_name"]].iloc[0].tolist() == ["광 주 A", "CO2"]
    default_type = prepare_readings(raw, ColumnMap(time_column="ts", value_column="v", position="p"))
    assert set(default_type.frame["type_name"]) == {"v"}
    with pytest.raises(BadInput, match="name the series"):
        prepare_readings(raw, ColumnMap(time_column="ts", value_column="v"))
    with pytest.raises(BadInput, match="no column 'value'"):
        prepare_readings(raw, ColumnMap(time_column="ts", position="p"))
    epoch = pd.DataFrame({"t": [1_700_000_000], "value": [1.0]})
    seconds = prepare_readings(epoch, ColumnMap(time_column="t", position="p", time_unit="s"))
    assert seconds.frame["event_time"].iloc[0] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")


def test_shift_to_now_puts_the_last_reading_at_now() -> None:
    frame = prepare_readings(pd.read_csv(DATA), B4B_MAP).frame
    gaps = frame["event_time"].diff()
    now = pd.Timestamp("2026-05-01T12:00:00Z")
    shift_times(frame, shift=None, to_now=True, now=now)
    assert frame["event_time"].max() == now
    pd.testing.assert_series_equal(frame["event_time"].diff(), gaps)
    with pytest.raises(BadInput, match="not both"):
        shift_times(frame, shift="+1d", to_now=True)


def test_unreachable_kafka_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("TSPLATFORM_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["replay", str(DATA), "--topic", "t", *B4B_ARGS])
    finally:
        get_settings.cache_clear()
    assert exit_info.value.code == 2
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 1 and "127.0.0.1" in err_lines[0], err_lines


# --- integration (real broker) ---------------------------------------------------------------------


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> list:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])
    messages: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                assert message.error() is None, message.error()
                messages.append(message)
        # Nothing more than expected arrives.
        messages += [m for m in consumer.consume(num_messages=1000, timeout=1.0) if m.error() is None]
    finally:
        consumer.close()
    return messages


def decode_messages(messages: list) -> tuple[pa.Table, pa.Table]:
    batch = decode_records(
        [m.value() for m in messages], keys=[m.key() for m in messages], topic=messages[0].topic(),
        partitions=[m.partition() for m in messages], offsets=[m.offset() for m in messages],
        ingested_at=pd.Timestamp.now(tz="UTC"), cache=SchemaCache(FieldMapping()),
    )  # fmt: skip
    return batch.readings, batch.quarantine


@pytest.mark.integration
def test_replay_publishes_keyed_envelopes_that_decode_back(
    kafka_bootstrap: str, fresh_topic: Callable[..., str]
) -> None:
    topic = fresh_topic(partitions=2, prefix="replay")
    assert os.environ["TSPLATFORM_KAFKA_BOOTSTRAP"] == kafka_bootstrap
    result = CliRunner().invoke(app, ["replay", str(DATA), "--topic", topic, *B4B_ARGS])
    assert result.exit_code == 0, result.output
    assert f"published 144 readings of 2 series to {topic}" in result.stdout
    assert "skipped 8 row(s): missing or non-finite value" in result.stderr

    messages = consume_all(kafka_bootstrap, topic, 144)
    assert len(messages) == 144
    partition_of_key: dict[bytes, int] = {}
    for message in messages:
        assert partition_of_key.setdefault(message.key(), message.partition()) == message.partition()
    assert set(partition_of_key) == {message_key("917810", "CO2-meter-SCD4x"), message_key("917810", "bms")}

    readings, quarantine = decode_messages(messages)
    assert quarantine.num_rows == 0 and readings.num_rows == 144
    got = readings.to_pandas().sort_values(["type_name", "event_time"]).reset_index(drop=True)
    expected = expected_b4b().sort_values(["type_name", "event_time"]).reset_index(drop=True)
    assert got["event_time"].tolist() == expected["event_time"].tolist()
    assert got["value"].tolist() == expected["value"].tolist()
    assert got["position"].tolist() == expected["position"].tolist()
    assert set(got["unit"]) == {"ppm"}
    keys_by_offset = {(m.partition(), m.offset()): m.key() for m in messages}
    for row in readings.to_pylist():
        key = message_key(row["position"], row["type_name"])
        assert keys_by_offset[(row["partition"], row["offset"])] == key


@pytest.mark.integration
def test_replay_bare_payloads_invalid_rows_shift_and_limit(
    kafka_bootstrap: str, fresh_topic: Callable[..., str]
) -> None:
    topic = fresh_topic(partitions=1, prefix="replay")
    before = pd.Timestamp.now(tz="UTC")
    result = CliRunner().invoke(
        app, ["replay", str(DATA), "--topic", topic, *B4B_ARGS, "--no-envelope", "--publish-invalid",
              "--shift-to-now"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"published 152 readings of 3 series to {topic}" in result.stdout
    messages = consume_all(kafka_bootstrap, topic, 152)
    assert len(messages) == 152
    assert all(m.value().startswith(b'{"ss_id"') for m in messages)  # bare payloads
    readings, quarantine = decode_messages(messages)
    assert readings.num_rows == 144
    assert quarantine.column("reason").to_pylist() == ["missing_field:input_data"] * 8
    latest_ms = readings.column("event_time").cast(pa.int64()).to_numpy().max()
    latest = pd.Timestamp(latest_ms, unit="ms", tz="UTC")
    assert before - pd.Timedelta(seconds=1) <= latest <= pd.Timestamp.now(tz="UTC")

    limited = fresh_topic(partitions=1, prefix="replay")
    result = CliRunner().invoke(app, ["replay", str(DATA), "--topic", limited, *B4B_ARGS, "--limit", "10",
                                      "--time-shift", "+3y2d"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "published 10 readings of" in result.stdout
    readings, _ = decode_messages(consume_all(kafka_bootstrap, limited, 10))
    times = np.sort(readings.column("event_time").cast(pa.int64()).to_numpy())
    first = expected_b4b()["event_time"].sort_values().iloc[0] + pd.DateOffset(years=3, days=2)
    assert readings.num_rows == 10 and times[0] == first.value // 10**6


@pytest.mark.integration
def test_replay_speedup_preserves_gaps(
    kafka_bootstrap: str, fresh_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = fresh_topic(partitions=1, prefix="replay")
    csv = tmp_path / "three.csv"
    csv.write_text(
        "timestamp,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:00:30Z,2\n2024-01-01T00:01:00Z,3\n"
    )
    before_ms = time.time() * 1000
    result = CliRunner().invoke(app, ["replay", str(csv), "--topic", topic, "--position", "광 주 A",
                                      "--type-name", "CO2", "--speedup", "30", "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    messages = consume_all(kafka_bootstrap, topic, 3)
    stamps = [m.timestamp()[1] for m in messages]  # producer create times, ms
    assert [m.key() for m in messages] == [message_key("광 주 A", "CO2")] * 3
    # 60 s of data at 30x: message i goes out no earlier than i s after the start (a lower bound only, so
    # a slow machine cannot fail it; the exact schedule is checked with a controllable clock below)
    for i, stamp in enumerate(stamps):
        assert stamp >= before_ms + 1000 * i - 5, (i, stamps, before_ms)


class VirtualClock:
    """A monotonic clock that only moves when ``sleep`` is called."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.integration
def test_publish_paces_readings_by_event_time_on_its_clock(
    kafka_bootstrap: str, fresh_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsplatform.ingest import replay

    topic = fresh_topic(partitions=1, prefix="replay")
    frame = pd.DataFrame({
        "position": "광 주 A", "type_name": "CO2", "value": [1.0, 2.0, 3.0, 4.0],
        "event_time": pd.to_datetime(["2024-01-01T00:00:00Z", "2024-01-01T00:00:30Z",
                                      "2024-01-01T00:00:30Z", "2024-01-01T00:01:12Z"], utc=True),
    })  # fmt: skip
    clock = VirtualClock()
    produced_at: list[float] = []
    original = replay._produce

    def recording(*args: object, **kwargs: object) -> None:
        produced_at.append(clock())
        original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(replay, "_produce", recording)
    result = replay.publish(
        frame, topic, get_settings(), speedup=30, progress=False, clock=clock, sleep=clock.sleep
    )
    assert (result.published, result.failed) == (4, 0)
    # due at (t_i - t_0) / 30 s after the start: 0, 1, 1 (same event time: no wait), 2.4
    assert produced_at == pytest.approx([1000.0, 1001.0, 1001.0, 1002.4])
    assert max(clock.sleeps) <= 0.5
    values = [m.value() for m in consume_all(kafka_bootstrap, topic, 4)]
    assert values == replay.encode_readings(frame, envelope=True)  # in order, one message per reading
