"""Loaders for the real series in the shared datasets directory (benchmarks only; tests never read it).

Every loader returns ``RealSeries`` items: a name, a UTC-indexed float Series (file order, duplicates kept)
and the nominal sampling period documented in the datasets README (the ground truth of the period
benchmark).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.datasets_dir import DEFAULT_DATASETS_DIR, require_datasets

NAB_FILES: dict[str, str] = {
    "realKnownCause/ambient_temperature_system_failure.csv": "1h",
    "realKnownCause/cpu_utilization_asg_misconfiguration.csv": "5min",
    "realKnownCause/ec2_request_latency_system_failure.csv": "5min",
    "realKnownCause/machine_temperature_system_failure.csv": "5min",
    "realKnownCause/nyc_taxi.csv": "30min",
    "realKnownCause/rogue_agent_key_hold.csv": "5min",
    "realKnownCause/rogue_agent_key_updown.csv": "5min",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv": "5min",
    "realAWSCloudwatch/grok_asg_anomaly.csv": "5min",
    "realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv": "5min",
    "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv": "5min",
}
UCI_FILES = ("datatraining.csv", "datatest.csv", "datatest2.csv")
B4B_ROOMS: dict[str, dict[str, str]] = {
    "917810": {"CO2-meter-SCD4x": "10min", "bms": "1min"},
    "925038": {"CO2-meter-SCD4x": "10min", "bms": "1h"},
    "999169": {"CO2-meter-SCD4x": "10min", "bms": "1min"},
}


@dataclass(frozen=True)
class RealSeries:
    name: str
    values: pd.Series  # DatetimeIndex (UTC), file order, duplicates kept
    nominal_period: pd.Timedelta
    seasonal: bool = False  # strong daily cycle (used by the imputation benchmark)


def _series(index: pd.Series, values: pd.Series) -> pd.Series:
    out = pd.Series(values.to_numpy(dtype="float64"), index=pd.DatetimeIndex(index), name="value")
    out.index.name = "event_time"
    return out


def nab(root: Path) -> Iterator[RealSeries]:
    for rel, period in NAB_FILES.items():
        df = pd.read_csv(root / "nab" / rel)
        ts = pd.to_datetime(df["timestamp"]).dt.tz_localize("UTC")
        name = "nab/" + rel.split("/", 1)[1].removesuffix(".csv")
        seasonal = any(k in rel for k in ("nyc_taxi", "ambient_temperature"))
        yield RealSeries(name, _series(ts, df["value"]), pd.Timedelta(period), seasonal)


def ett(root: Path) -> Iterator[RealSeries]:
    for name in ("ETTh1", "ETTh2"):
        df = pd.read_csv(root / "ett" / f"{name}.csv")
        ts = pd.to_datetime(df["date"]).dt.tz_localize("UTC")
        yield RealSeries(f"ett/{name}/OT", _series(ts, df["OT"]), pd.Timedelta("1h"), True)


def uci(root: Path, column: str = "CO2") -> Iterator[RealSeries]:
    for fname in UCI_FILES:
        df = pd.read_csv(root / "occupancy_uci" / fname)
        ts = pd.to_datetime(df["date"]).dt.tz_localize("UTC")
        yield RealSeries(
            f"uci/{fname.removesuffix('.csv')}/{column}", _series(ts, df[column]), pd.Timedelta("1min")
        )


def b4b(root: Path) -> Iterator[RealSeries]:
    """SCD41 and bms sources of the 3 rooms, CO2 (timestamps parsed with their offsets, ``utc=True``).

    All rows of a source are kept for the period (rows without CO2 still carry a timestamp); rows
    without CO2 are dropped from ``values`` only when ``with_values`` callers filter them.
    """
    for room, sources in B4B_ROOMS.items():
        df = pd.read_csv(root / "b4b_co2" / f"{room}_raw_properties.csv")
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
        for source, period in sources.items():
            part = df[df["source"] == source]
            label = "scd41" if source.startswith("CO2") else "bms"
            yield RealSeries(
                f"b4b/{room}/{label}/co2", _series(part["timestamp"], part["co2__ppm"]), pd.Timedelta(period)
            )


def all_real(root: Path = DEFAULT_DATASETS_DIR) -> list[RealSeries]:
    """Every NAB file, ETTh1/2 OT, the 3 UCI files (CO2), SCD41 and bms of the 3 B4B rooms (22 series)."""
    require_datasets(root, "nab", "ett", "occupancy_uci", "b4b_co2")
    return [*nab(root), *ett(root), *uci(root), *b4b(root)]
