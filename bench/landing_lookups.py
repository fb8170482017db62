"""Cost of the exactly-once lookup when a lake has accumulated many small files.

A live stream lands every ~30 s (the offset sensor's interval), and each run writes one file per touched
day: after a day, that day partition holds ~2880 files, and with a chronically broken device every run
also adds a quarantine file. This builds such a lake in a temp dir (``--files`` raw files of
``--rows`` readings in one day partition; ``--quarantine-days`` x ``--quarantine-files`` quarantine files)
and times one more steady-state run's landing (``--rows`` new readings + 1 quarantined record):

* ours: ``land_readings`` + ``land_quarantine`` with the offset marks (rows above their mark are not
  looked up);
* baseline, same run and lake: the same calls with every row treated as possibly landed
  (``landing.above_marks`` patched to False), i.e. the lookup every landing did before the marks: read the
  offsets of each touched raw day and of every quarantine day.

    .venv/bin/python -m bench.landing_lookups [--files 2880] [--rows 100] [--quarantine-days 30]
        [--quarantine-files 96] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import tempfile
import time
from unittest import mock

import numpy as np
import pyarrow as pa

from tsplatform.ingest import landing
from tsplatform.ingest.landing import land_quarantine, land_readings
from tsplatform.ingest.schema import QUARANTINE_SCHEMA, RAW_READINGS_SCHEMA
from tsplatform.lake import Lake

DAY = dt.date(2026, 11, 20)
DAY_MS = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC).timestamp() * 1000)


def readings(start: int, n: int) -> pa.Table:
    columns = {
        "position": ["p"] * n,
        "type_name": ["CO2"] * n,
        "series_id": ["s"] * n,
        "event_time": pa.array(np.full(n, DAY_MS), pa.timestamp("ms", tz="UTC")),
        "value": np.arange(n, dtype=np.float64),
        "topic": ["t"] * n,
        "partition": pa.array(np.zeros(n, np.int32)),
        "offset": pa.array(np.arange(start, start + n, dtype=np.int64)),
        "ingested_at": pa.array(np.full(n, DAY_MS), pa.timestamp("ms", tz="UTC")),
        "schema_id": ["v1"] * n,
    }
    return pa.table(
        {f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in RAW_READINGS_SCHEMA},
        schema=RAW_READINGS_SCHEMA,
    )


def quarantined(offset: int) -> pa.Table:
    return pa.table(
        {
            "reason": ["malformed JSON"],
            "raw": [b"{"],
            "key": [None],
            "topic": ["t"],
            "partition": pa.array([1], pa.int32()),
            "offset": pa.array([offset], pa.int64()),
            "ingested_at": pa.array([DAY_MS], pa.timestamp("ms", tz="UTC")),
        },
        schema=QUARANTINE_SCHEMA,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2880)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--quarantine-days", type=int, default=30)
    parser.add_argument("--quarantine-files", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(tmp)
        t0 = time.perf_counter()
        for i in range(args.files):
            land_readings(lake, readings(i * args.rows, args.rows))
        q = 0
        for d in range(args.quarantine_days):
            for _ in range(args.quarantine_files):
                land_quarantine(lake, quarantined(q), DAY - dt.timedelta(days=d))
                q += 1
        print(
            f"lake: {args.files} raw files x {args.rows} readings in one day, "
            f"{args.quarantine_days} x {args.quarantine_files} quarantine files (built in "
            f"{time.perf_counter() - t0:.0f} s)\n"
        )
        next_offset = args.files * args.rows
        timings: dict[str, list[float]] = {"ours (offset marks)": [], "baseline (look up every row)": []}
        for _ in range(args.repeats):
            for label in timings:
                patch = (
                    mock.patch.object(landing, "above_marks", lambda t, _m: np.zeros(t.num_rows, bool))
                    if label.startswith("baseline")
                    else contextlib.nullcontext()
                )
                with patch:
                    started = time.perf_counter()
                    _, landed, _ = land_readings(lake, readings(next_offset, args.rows))
                    q_landed, _ = land_quarantine(lake, quarantined(q), DAY)
                    timings[label].append(time.perf_counter() - started)
                assert landed == args.rows and q_landed == 1, (landed, q_landed)
                next_offset += args.rows
                q += 1
        print("| landing of one more run | median s | min s | max s |")
        print("|---|---:|---:|---:|")
        for label, values in timings.items():
            print(f"| {label} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |")


if __name__ == "__main__":
    main()
