"""Forecast cost: one day's forecasts of 1,000 series from global champions, as the ``forecasts`` asset does.

Data: real values of NAB 5-min series (``<datasets>/nab``; the first ``--types`` files, default 10), each
file one ``type_name``; its series are windows of that file starting at different offsets (one position
each), cut to 7 days of readings (2,016 per series) ending on the forecast day, written to a temp lake as
the input dataset. Models: per type one **global** champion fitted on (up to 10 of) its series (LSTM:
hidden 32, 1 layer, input 96, horizon 24, 1 epoch; fitting is not timed) registered in a temp MLflow
SQLite registry. Measured, in the same run:

- ``forecast_day`` end to end (read 7 days from the lake, each series onto its grid, champions looked up
  and loaded from the registry in safe formats, one batched ``predict`` per champion, rows built) and the
  write of the ``forecasts`` partition, with the LSTM global champions;
- the same with NLinear global champions (closed-form ridge, same input and horizon);
- the peer/baseline: the same path with seasonal naive champions (no model computation at all).

Wall and CPU (``time.process_time``) seconds per stage. Goal: <= 30 s wall on 2 cores for the LSTM.
Run: ``.venv/bin/python -m bench.forecast_cost [--series 1000] [--datasets-dir ../shared/datasets]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.datasets_dir import DEFAULT_DATASETS_DIR, require_datasets
from tsplatform.ids import series_id
from tsplatform.lake import Lake
from tsplatform.ml.champion import global_target
from tsplatform.ml.datasets import FORECASTS_SCHEMA, INPUT_DATASET, forecast_day, write_day
from tsplatform.ml.models import make_forecaster
from tsplatform.ml.registry import Lineage, ModelRegistry

DAY = dt.date(2024, 1, 7)
DAYS = 7
STEP = pd.Timedelta(minutes=5)
HORIZON = 24
INPUT_LEN = 96


def nab_types(root: Path, points: int, count: int) -> dict[str, np.ndarray]:
    """``{type_name: values}`` of the first ``count`` NAB files (by path) long enough for ``points`` samples
    plus offsets."""
    out: dict[str, np.ndarray] = {}
    for path in sorted((root / "nab").rglob("*.csv")):
        if len(out) == count:
            break
        values = pd.read_csv(path)["value"].to_numpy(dtype=float)
        if len(values) >= points + 200 and np.isfinite(values).all():
            out[path.stem] = values
    return out


def build_readings(types: dict[str, np.ndarray], n_series: int) -> pd.DataFrame:
    points = DAYS * 288
    end = pd.Timestamp(DAY, tz="UTC") + pd.Timedelta(days=1)
    times = pd.date_range(end=end - STEP, periods=points, freq=STEP).as_unit("ms")
    names = list(types)
    frames = []
    for i in range(n_series):
        type_name = names[i % len(names)]
        values = types[type_name]
        offset = (i // len(names)) * 37 % (len(values) - points)
        position = f"bench position {i:04d}"
        frames.append(
            pd.DataFrame(
                {
                    "series_id": series_id(position, type_name),
                    "position": position,
                    "type_name": type_name,
                    "event_time": times,
                    "value": values[offset : offset + points],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_lake(lake: Lake, readings: pd.DataFrame) -> None:
    import pyarrow as pa

    for day_offset in range(DAYS):
        day = DAY - dt.timedelta(days=DAYS - 1 - day_offset)
        start = pd.Timestamp(day, tz="UTC")
        rows = readings[
            (readings["event_time"] >= start) & (readings["event_time"] < start + pd.Timedelta(days=1))
        ]
        table = pa.Table.from_pandas(rows, preserve_index=False)
        lake.write_file(INPUT_DATASET, day, f"{day}.parquet", table)


def register_globals(
    registry: ModelRegistry, readings: pd.DataFrame, family: str, params: dict[str, Any]
) -> None:
    for type_name, rows in readings.groupby("type_name"):
        series = [g["value"].to_numpy() for _, g in rows.groupby("series_id")]
        model = make_forecaster(family, **params).fit(series[:10])
        registry.register_champion(
            global_target(str(type_name)), model, family=family, params={**params, "horizon": HORIZON},
            metrics=dict.fromkeys(("mse", "rmse", "mae", "mape"), 0.0), lineage=Lineage([str(DAY)], "b"),
        )  # fmt: skip


def timed(func: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = func(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--types", type=int, default=10, help="NAB files = types = global champions")
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    args = parser.parse_args()
    types = nab_types(require_datasets(args.datasets_dir, "nab"), DAYS * 288, args.types)
    readings = build_readings(types, args.series)
    print(f"{args.series} series of {len(types)} types, {len(readings):,} readings over {DAYS} days")
    candidates = {
        "lstm (global)": ("lstm", {"input_len": INPUT_LEN, "horizon": HORIZON, "hidden_size": 32, "epochs": 1,
                                   "windows_per_epoch": 2000, "device": "cpu"}),
        "nlinear (global)": ("linear", {"input_len": INPUT_LEN, "horizon": HORIZON}),
        "seasonal naive (peer)": ("seasonal_naive", {"season": 288}),
    }  # fmt: skip
    rows = []
    for label, (family, params) in candidates.items():
        with tempfile.TemporaryDirectory(prefix="bench-forecast-") as tmp:
            lake = Lake(str(Path(tmp) / "lake"))
            write_lake(lake, readings)
            registry = ModelRegistry(f"sqlite:///{tmp}/mlflow.db", (Path(tmp) / "artifacts").as_uri())
            print(f"{label}: fitting and registering one global champion per type ...", flush=True)
            register_globals(registry, readings, family, params)
            print(f"{label}: forecasting ...", flush=True)
            registry = ModelRegistry(
                registry.tracking_uri, registry.artifact_root
            )  # a fresh client, as a run
            load_before = os.getloadavg()[0]
            (forecasts, skipped), wall, cpu = timed(forecast_day, lake, registry, DAY, None)
            _, write_wall, write_cpu = timed(write_day, lake, "forecasts", DAY, forecasts, FORECASTS_SCHEMA)
            assert not skipped, skipped
            assert forecasts["series_id"].nunique() == args.series and len(forecasts) == args.series * HORIZON
            rows.append(
                (label, len(forecasts), wall, cpu, write_wall, write_cpu, wall + write_wall, load_before)
            )
    print()
    print("| champions | rows | forecast_day wall s | CPU s | write wall s | CPU s | total wall s | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, n, wall, cpu, ww, wc, total, load in rows:
        figures = f"{wall:.2f} | {cpu:.2f} | {ww:.2f} | {wc:.2f} | **{total:.2f}** | {load:.1f}"
        print(f"| {label} | {n:,} | {figures} |")


if __name__ == "__main__":
    main()
