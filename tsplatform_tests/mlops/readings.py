"""Real readings for the ML pipeline tests: the B4B room 925038 extract (tsplatform_tests/data/README.md).

The SCD41 sensor's three measurements, 2022-10-10..16 UTC at ~10 min, become three series at one position
(CO2 is the target, temperature and relative humidity its covariates), in the lake's reading columns.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from tsplatform.ids import series_id
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.lake import Lake
from tsplatform_tests.timeseries.extracts import DATA_DIR

POSITION = "woning 925038 — kamer 1"
CO2 = series_id(POSITION, "CO2")
MEASUREMENTS = {"co2__ppm": "CO2", "temp_in__degC": "temperature", "rel_humidity__0": "humidity"}
DAYS = [dt.date(2022, 10, 10) + dt.timedelta(days=i) for i in range(7)]


def room_readings() -> pd.DataFrame:
    """Columns series_id, position, type_name, event_time (UTC, ms), value; one row per reading."""
    frame = pd.read_csv(DATA_DIR / "b4b_925038_co2_2022-10-10_16.csv")
    frame = frame[frame["source"] == "CO2-meter-SCD4x"]
    times = pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("ms")
    parts = [
        pd.DataFrame(
            {
                "series_id": series_id(POSITION, type_name),
                "position": POSITION,
                "type_name": type_name,
                "event_time": times.to_numpy(),
                "value": frame[column].to_numpy(dtype=float),
            }
        )
        for column, type_name in MEASUREMENTS.items()
    ]
    out = pd.concat(parts, ignore_index=True)
    out["event_time"] = pd.to_datetime(out["event_time"], utc=True).dt.as_unit("ms")
    return out


def write_days(lake: Lake, readings: pd.DataFrame, dataset: str, days: list[dt.date]) -> None:
    """Write ``readings`` of ``days`` as the day partitions of ``dataset`` in the lake's reading schema."""
    for day in days:
        start = pd.Timestamp(day, tz="UTC")
        rows = readings[
            (readings["event_time"] >= start) & (readings["event_time"] < start + pd.Timedelta(days=1))
        ]
        rows = rows.copy()
        rows["topic"], rows["partition"], rows["schema_id"] = "t", 0, "s"
        rows["offset"] = range(len(rows))
        rows["ingested_at"] = start + pd.Timedelta(days=1)
        rows["ingested_at"] = rows["ingested_at"].dt.as_unit("ms")
        for field in RAW_READINGS_SCHEMA:
            if field.name not in rows:
                rows[field.name] = None
        table = pa.Table.from_pandas(rows[[f.name for f in RAW_READINGS_SCHEMA]], schema=RAW_READINGS_SCHEMA,
                                     preserve_index=False)  # fmt: skip
        lake.write_file(dataset, day, f"{day.isoformat()}.parquet", table)
