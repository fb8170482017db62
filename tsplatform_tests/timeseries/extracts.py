"""Loaders for the small real extracts shipped under tsplatform_tests/data (see the README there)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
NAB_EC2_CPU_WINDOW = (pd.Timestamp("2014-04-15 07:24", tz="UTC"), pd.Timestamp("2014-04-16 11:54", tz="UTC"))


def b4b_co2_room() -> tuple[pd.Series, pd.Series]:
    """(SCD41 ~10-min CO2, BMS hourly CO2) of B4B room 925038, 2022-10-10..16 UTC, ppm."""
    frame = pd.read_csv(DATA_DIR / "b4b_925038_co2_2022-10-10_16.csv")
    frame["event_time"] = pd.to_datetime(frame["timestamp"], utc=True)
    by_source = {
        source: pd.Series(rows["co2__ppm"].to_numpy(float), index=pd.DatetimeIndex(rows["event_time"]))
        for source, rows in frame.groupby("source")
    }
    return by_source["CO2-meter-SCD4x"].sort_index(), by_source["bms"].sort_index()


def nab_ec2_cpu() -> pd.Series:
    """NAB realAWSCloudwatch/ec2_cpu_utilization_825cc2, 2014-04-13..16 (5 min, %), one labelled window."""
    frame = pd.read_csv(DATA_DIR / "nab_ec2_cpu_utilization_825cc2_2014-04-13_16.csv")
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"])).tz_localize("UTC")
    return pd.Series(frame["value"].to_numpy(float), index=index, name="cpu")
