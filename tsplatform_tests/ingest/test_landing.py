"""Landing with offset marks: steady-state landings read nothing, redeliveries are still skipped exactly."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tsplatform.ingest.landing import land_quarantine, land_readings
from tsplatform.ingest.offset_marks import OFFSET_MARKS, load_offset_marks
from tsplatform.ingest.schema import QUARANTINE_SCHEMA, RAW_READINGS_SCHEMA
from tsplatform.lake import Lake

DAY = dt.date(2026, 11, 20)
T0_MS = int(dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp() * 1000)


def readings(offsets: range, partition: int = 0, topic: str = "t") -> pa.Table:
    """One reading per offset, spread over two event days (every 12 h)."""
    n = len(offsets)
    times = np.array([T0_MS + o * 12 * 3_600_000 // 10 for o in offsets], dtype=np.int64)
    columns = {
        "position": ["p"] * n,
        "type_name": ["CO2"] * n,
        "series_id": ["s"] * n,
        "event_time": pa.array(times, pa.timestamp("ms", tz="UTC")),
        "value": np.arange(n, dtype=np.float64),
        "topic": [topic] * n,
        "partition": pa.array([partition] * n, pa.int32()),
        "offset": pa.array(list(offsets), pa.int64()),
        "ingested_at": pa.array([T0_MS] * n, pa.timestamp("ms", tz="UTC")),
        "schema_id": ["v1"] * n,
    }
    return pa.table(
        {f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in RAW_READINGS_SCHEMA},
        schema=RAW_READINGS_SCHEMA,
    )


def quarantined(offsets: range, partition: int = 0) -> pa.Table:
    n = len(offsets)
    return pa.table(
        {
            "reason": ["malformed JSON"] * n,
            "raw": [b"{"] * n,
            "key": [None] * n,
            "topic": ["t"] * n,
            "partition": pa.array([partition] * n, pa.int32()),
            "offset": pa.array(list(offsets), pa.int64()),
            "ingested_at": pa.array([T0_MS] * n, pa.timestamp("ms", tz="UTC")),
        },
        schema=QUARANTINE_SCHEMA,
    )


def landed_offsets(lake: Lake, dataset: str) -> list[tuple[int, int]]:
    rows = [
        (p, o)
        for day in lake.days(dataset)
        for t in [lake.read_partition(dataset, day, columns=["partition", "offset"])]
        if t is not None
        for p, o in zip(t["partition"].to_pylist(), t["offset"].to_pylist(), strict=True)
    ]
    return sorted(rows)


def no_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a steady-state landing read landed data")

    monkeypatch.setattr(Lake, "read_partition", fail)


def test_a_steady_state_landing_reads_no_landed_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(str(tmp_path))
    assert land_readings(lake, readings(range(0, 20)))[1:] == (20, 0)
    assert json.loads(lake.read_metadata("raw_readings", OFFSET_MARKS) or b"") == {"t": {"0": 19}}
    with monkeypatch.context() as m:
        no_reads(m)
        assert land_readings(lake, readings(range(20, 40)))[1:] == (20, 0)
        assert land_readings(lake, readings(range(0, 5), partition=1))[1:] == (5, 0)  # a new partition
        assert land_readings(lake, readings(range(0, 5), topic="u"))[1:] == (5, 0)  # a new topic
    assert load_offset_marks(lake, "raw_readings") == {"t": {0: 39, 1: 4}, "u": {0: 4}}


def test_a_redelivery_is_skipped_exactly(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    land_readings(lake, readings(range(0, 30)))
    assert land_readings(lake, readings(range(20, 50)))[1:] == (20, 10)  # 20..29 already landed
    assert landed_offsets(lake, "raw_readings") == [(0, o) for o in range(50)]


def test_marks_raised_by_a_landing_that_died_never_lose_its_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(str(tmp_path))
    land_readings(lake, readings(range(0, 10)))
    with monkeypatch.context() as m:
        m.setattr(Lake, "write_file", lambda *_a, **_k: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(OSError, match="disk full"):
            land_readings(lake, readings(range(10, 20)))
    assert load_offset_marks(lake, "raw_readings") == {"t": {0: 19}}  # raised before the data
    assert land_readings(lake, readings(range(10, 20)))[1:] == (10, 0)  # looked up, then landed
    assert landed_offsets(lake, "raw_readings") == [(0, o) for o in range(20)]


@pytest.mark.parametrize("marks", [None, b"not json", b'{"t": []}'])
def test_marks_are_rebuilt_from_the_data_when_absent_or_unreadable(
    tmp_path: Path, marks: bytes | None
) -> None:
    lake = Lake(str(tmp_path))
    land_readings(lake, readings(range(0, 30)))
    path = tmp_path / "raw_readings" / OFFSET_MARKS
    if marks is None:
        path.unlink()  # a lake landed before marks existed
    else:
        path.write_bytes(marks)
    assert land_readings(lake, readings(range(25, 35)))[1:] == (5, 5)
    assert landed_offsets(lake, "raw_readings") == [(0, o) for o in range(35)]
    assert load_offset_marks(lake, "raw_readings") == {"t": {0: 34}}


def test_quarantine_reads_its_days_only_for_a_redelivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(str(tmp_path))
    assert land_quarantine(lake, quarantined(range(0, 10)), DAY) == (10, 0)
    with monkeypatch.context() as m:
        no_reads(m)
        assert land_quarantine(lake, quarantined(range(10, 20)), DAY + dt.timedelta(days=1)) == (10, 0)
    # redelivered on a later ingestion day: found on the earlier days, only the new ones land
    assert land_quarantine(lake, quarantined(range(5, 25)), DAY + dt.timedelta(days=2)) == (5, 15)
    assert landed_offsets(lake, "quarantine") == [(0, o) for o in range(25)]
    assert load_offset_marks(lake, "quarantine") == {"t": {0: 24}}


def test_metadata_names_are_checked(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    for name in ("../x.json", "marks.json", "_x/../y.json", "_X.json"):
        with pytest.raises(ValueError, match="metadata name"):
            lake.write_metadata("raw_readings", name, b"{}")
        with pytest.raises(ValueError, match="metadata name"):
            lake.read_metadata("raw_readings", name)
