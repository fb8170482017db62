"""Raw day partitions for the asset-graph tests, derived from the real extracts in tsplatform_tests/data.

24 series at 8 positions: the SCD41 CO2, humidity and temperature of two B4B rooms (~10 min), NAB EC2 CPU
and request latency (5 min), the UCI occupancy room's five sensors (every 10th row of a 1-min grid with
±1 s jitter), and shifted copies of a room and the UCI sensors at other positions (values and phases
unchanged, their history starting some days later). Each base series is tiled onto the test days
(whole days, so phases are kept). Defects injected on top (:data:`DEFECTS`): a 3-hour gap, a 30-hour gap
(longer than the 1-day imputation limit), exact and same-timestamp duplicates, spikes, and late data
(rows of one day held back, landed later).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from tsplatform.ids import series_id
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.lake import Lake
from tsplatform_tests.timeseries.extracts import DATA_DIR

DAY = pd.Timedelta(days=1)


def _b4b_room(path: str) -> dict[str, pd.Series]:
    frame = pd.read_csv(DATA_DIR / path)
    frame = frame[frame["source"] == "CO2-meter-SCD4x"]
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], utc=True))
    return {
        column: pd.Series(frame[column].to_numpy(float), index=index).dropna().sort_index()
        for column in ("co2__ppm", "rel_humidity__0", "temp_in__degC")
    }


def _nab(path: str) -> pd.Series:
    frame = pd.read_csv(DATA_DIR / path)
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"])).tz_localize("UTC")
    return pd.Series(frame["value"].to_numpy(float), index=index).sort_index()


def _uci() -> dict[str, pd.Series]:
    frame = pd.read_csv(DATA_DIR / "uci_occupancy_datatest_first_day.csv").iloc[::10]
    index = pd.DatetimeIndex(pd.to_datetime(frame["date"])).tz_localize("UTC")
    return {
        c: pd.Series(frame[c].to_numpy(float), index=index)
        for c in ("Temperature", "Humidity", "Light", "CO2", "HumidityRatio")
    }


def base_series() -> list[tuple[str, str, pd.Series, int]]:
    """``(position, type_name, values, first day offset)`` of the 24 test series."""
    room_a = _b4b_room("b4b_925038_co2_2022-10-10_16.csv")
    room_b = _b4b_room("b4b_999169_scd41_2022-10-28_31.csv")
    uci = _uci()
    out: list[tuple[str, str, pd.Series, int]] = []
    out += [("광 주 A", name, s, 0) for name, s in room_a.items()]
    out += [("room/B", name, s, 0) for name, s in room_b.items()]
    out.append(("ec2 825cc2", "cpu_utilization", _nab("nab_ec2_cpu_utilization_825cc2_2014-04-13_16.csv"), 0))
    out.append(("ec2 latency", "request_latency", _nab("nab_ec2_request_latency_2014-03-08_09.csv"), 0))
    out += [("uci lab", name, s, 0) for name, s in uci.items()]
    out += [("광 주 A copy", name, s, 2) for name, s in room_a.items()]  # starts mid-window
    out += [("uci lab copy", name, s, 1) for name, s in uci.items()]
    out += [("room/B copy", name, s, 3) for name, s in room_b.items()]
    return out


def tile(values: pd.Series, first: dt.date, days: int) -> pd.Series:
    """``values`` repeated from UTC day ``first`` for ``days`` days (shifted by whole days)."""
    origin = values.index[0].floor("D")
    length = math.ceil((values.index[-1] - values.index[0]) / DAY) * DAY  # whole days: phases kept
    start, stop = pd.Timestamp(first, tz="UTC"), pd.Timestamp(first, tz="UTC") + days * DAY
    parts = []
    shift = start - origin
    while origin + shift < stop:
        parts.append(pd.Series(values.to_numpy(), index=values.index + shift))
        shift += length
    tiled = pd.concat(parts)
    return tiled[(tiled.index >= start) & (tiled.index < stop)]


@dataclass
class GraphData:
    """Readings of the test days; ``late``: rows held back from the first landing."""

    start: dt.date
    days: int
    readings: pd.DataFrame
    late: pd.DataFrame
    defects: dict[str, str] = field(default_factory=dict)

    @property
    def day_list(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]


#: What is injected where (series index in :func:`base_series`, day offset).
DEFECTS = {
    "gap_3h": (0, 3),
    "gap_30h": (1, 5),
    "exact_duplicates": (2, 4),
    "same_timestamp": (3, 4),
    "spikes": (4, 8),
    "late": (6, 11),
}


def build(start: dt.date, days: int = 14) -> GraphData:
    rows = []
    late = []
    t0 = pd.Timestamp(start, tz="UTC")
    active = {name: where for name, where in DEFECTS.items() if where[1] < days}
    for i, (position, type_name, values, offset) in enumerate(base_series()):
        if offset >= days:
            continue
        s = tile(values, start + dt.timedelta(days=offset), days - offset).round(6)
        frame = pd.DataFrame(
            {"position": position, "type_name": type_name, "event_time": s.index, "value": s}
        )
        frame = frame.reset_index(drop=True)
        if "gap_3h" in active and i == DEFECTS["gap_3h"][0]:
            lo = t0 + DEFECTS["gap_3h"][1] * DAY + pd.Timedelta(hours=9)
            frame = frame[(frame["event_time"] < lo) | (frame["event_time"] >= lo + pd.Timedelta(hours=3))]
        if "gap_30h" in active and i == DEFECTS["gap_30h"][0]:
            lo = t0 + DEFECTS["gap_30h"][1] * DAY + pd.Timedelta(hours=6)
            frame = frame[(frame["event_time"] < lo) | (frame["event_time"] >= lo + pd.Timedelta(hours=30))]
        if "exact_duplicates" in active and i == DEFECTS["exact_duplicates"][0]:
            day = t0 + DEFECTS["exact_duplicates"][1] * DAY
            frame = pd.concat([frame, frame[frame["event_time"].between(day, day + DAY)].iloc[10:15]])
        if "same_timestamp" in active and i == DEFECTS["same_timestamp"][0]:
            day = t0 + DEFECTS["same_timestamp"][1] * DAY
            extra = frame[frame["event_time"].between(day, day + DAY)].iloc[20:23].copy()
            extra["value"] += 1.0
            frame = pd.concat([frame, extra])
        if "spikes" in active and i == DEFECTS["spikes"][0]:
            day = t0 + DEFECTS["spikes"][1] * DAY
            hit = frame.index[frame["event_time"].between(day, day + DAY)][[30, 60, 90, 120]]
            frame.loc[hit, "value"] = frame.loc[hit, "value"] * 20 + 500
        if "late" in active and i == DEFECTS["late"][0]:
            day = t0 + DEFECTS["late"][1] * DAY
            held = frame["event_time"].between(day + pd.Timedelta(hours=6), day + pd.Timedelta(hours=12))
            late.append(frame[held])
            frame = frame[~held]
        rows.append(frame)
    readings = pd.concat(rows)
    return GraphData(
        start, days, raw_rows(readings), raw_rows(pd.concat(late) if late else readings.iloc[0:0])
    )


def raw_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (``position``, ``type_name``, ``event_time``, ``value``) as ``raw_readings`` rows of one
    Kafka partition in row order (offsets 0..n-1), with a sensor range of +-1e6. Also used by
    ``bench.accuracy.real_days``."""
    out = frame.reset_index(drop=True).copy()
    out["series_id"] = [series_id(p, t) for p, t in zip(out["position"], out["type_name"], strict=True)]
    out["event_time"] = pd.to_datetime(out["event_time"], utc=True).dt.as_unit("ms")
    out["ss_id"] = 1
    out["unit"] = "u"
    out["rstart"], out["rend"] = -1e6, 1e6
    out["topic"], out["partition"] = "t", 0
    out["offset"] = np.arange(len(out), dtype=np.int64)
    out["ingested_at"] = pd.Timestamp("2024-06-01", tz="UTC").as_unit("ms")
    out["schema_id"] = "s"
    for f in RAW_READINGS_SCHEMA:
        if f.name not in out:
            out[f.name] = None
    return out[[f.name for f in RAW_READINGS_SCHEMA]]


def by_day(frame: pd.DataFrame) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    days = frame["event_time"].dt.floor("D")
    for day, rows in frame.groupby(days, sort=True):
        yield day.date(), rows


def land(lake: Lake, frame: pd.DataFrame, name: str) -> list[dt.date]:
    """Write ``frame`` into the raw_readings day partitions as file ``name`` (as a landing run would)."""
    touched = []
    for day, rows in by_day(frame):
        table = pa.Table.from_pandas(rows, schema=RAW_READINGS_SCHEMA, preserve_index=False)
        lake.write_file("raw_readings", day, name, table)
        touched.append(day)
    return touched
