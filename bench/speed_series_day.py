"""Speed of the per-series-day cleaning chain on one real series-day (144 samples at 10 min).

Chain: validate_readings -> deduplicate -> estimate_period -> detect_gaps + regularize -> impute (linear,
method already chosen) -> detect_anomalies -> denoise (clip). Input: one UTC day of B4B room 925038's SCD41
CO2 (``CO2-meter-SCD4x`` rows, ``co2__ppm``) as a reading frame, as the validated_readings asset would see it.
Reports the median (and p90) wall time per step and for the whole chain over ``--repeat`` runs, for the IQR
detector and for the causal residual detector, plus the median CPU time of the whole chain
(``time.process_time``: the process's own CPU, less sensitive to other load on a shared machine than wall
time). Goal: whole chain <= 5 ms (median wall time).
Run: ``.venv/bin/python -m bench.speed_series_day [--datasets-dir ../shared/datasets] [--repeat 300]``
(``--day 2022-10-24``: another day of the same series; that one has 9 missing samples to detect and fill).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.datasets_dir import DEFAULT_DATASETS_DIR, require_datasets
from tsplatform.timeseries import (
    deduplicate,
    denoise,
    detect_anomalies,
    detect_gaps,
    estimate_period,
    impute,
    regularize,
    validate_readings,
)

DAY = dt.date(2022, 10, 20)
ROOM = "925038"


def series_day(datasets_dir: Path, day: dt.date = DAY) -> pd.DataFrame:
    frame = pd.read_csv(
        require_datasets(datasets_dir, "b4b_co2") / "b4b_co2" / f"{ROOM}_raw_properties.csv", low_memory=False
    )
    frame = frame[frame["source"] == "CO2-meter-SCD4x"]
    event_time = pd.to_datetime(frame["timestamp"], utc=True)
    rows = frame[event_time.dt.date == day]
    return pd.DataFrame(
        {
            "position": f"room {ROOM}",
            "type_name": "CO2",
            "series_id": f"room-{ROOM}--co2",
            "event_time": pd.to_datetime(rows["timestamp"], utc=True).astype("datetime64[ms, UTC]"),
            "value": rows["co2__ppm"].astype(float),
        }
    ).reset_index(drop=True)


def chain(
    readings: pd.DataFrame, detector: dict[str, Any], timings: dict[str, list[float]], day: dt.date = DAY
) -> pd.Series:
    def timed(step: str, func: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = func()
        timings.setdefault(step, []).append(time.perf_counter() - started)
        return result

    now = pd.Timestamp("2022-11-01", tz="UTC")
    valid, _ = timed("validate_readings", lambda: validate_readings(readings, day=day, now=now))
    unique, _ = timed("deduplicate", lambda: deduplicate(valid))
    estimate = timed("estimate_period", lambda: estimate_period(unique["event_time"]))
    series = pd.Series(unique["value"].to_numpy(), index=pd.DatetimeIndex(unique["event_time"]))
    timed("detect_gaps", lambda: detect_gaps(series.index, estimate))
    regular = timed("regularize", lambda: regularize(series, estimate))
    filled = timed("impute(linear)", lambda: impute(regular, "linear"))
    flags = timed("detect_anomalies", lambda: detect_anomalies(filled, **detector))
    return timed("denoise(clip)", lambda: denoise(filled, flags, "clip"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--day", type=dt.date.fromisoformat, default=DAY)
    args = parser.parse_args()
    readings = series_day(args.datasets_dir, args.day)
    detectors = {
        "iqr": {"method": "iqr"},
        "residual causal": {"method": "residual", "causal": True, "window": 72, "min_periods": 12},
    }
    for label, detector in detectors.items():
        out = chain(readings, detector, {}, args.day)  # warm-up (imports, caches)
        timings: dict[str, list[float]] = {}
        totals, cpu_totals = [], []
        for _ in range(args.repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            chain(readings, detector, timings, args.day)
            totals.append(time.perf_counter() - started)
            cpu_totals.append(time.process_time() - cpu_started)
        runs = f"detector: {label}; {args.repeat} runs"
        print(f"\n{args.day}: {len(readings)} readings -> {len(out)} samples; {runs}\n")
        print("| step | median ms | p90 ms |")
        print("|---|---|---|")
        for step, values in timings.items():
            print(f"| {step} | {1e3 * np.median(values):.3f} | {1e3 * np.quantile(values, 0.9):.3f} |")
        print(
            f"| **whole chain** | **{1e3 * np.median(totals):.3f}** | {1e3 * np.quantile(totals, 0.9):.3f} |"
        )
        print(
            f"| whole chain, CPU time | {1e3 * np.median(cpu_totals):.3f} "
            f"| {1e3 * np.quantile(cpu_totals, 0.9):.3f} |"
        )


if __name__ == "__main__":
    main()
