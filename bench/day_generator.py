"""A synthetic day of raw readings for the asset-graph benchmarks, generated straight into a lake.

``series`` series x ``samples`` readings (default 10,000 x 144: 1.44M readings) of one UTC day, nominally
every ``86400 / samples`` s, each series with its own phase, as ``raw_readings`` rows with Kafka provenance
(``topic``, ``partition`` 0..3, increasing ``offset`` in arrival order). Realistic defects, seeded:

* jitter: every timestamp off its grid slot by up to +-``jitter_s`` (default 20 s of 600 s);
* gaps: ``gap_rate`` of the series (default 20%) lose one run of 1..12 consecutive samples;
* duplicates: ``dup_rate`` of the readings (default 1%) arrive twice (same time and value, a later offset);
* spikes: ``spike_rate`` of the readings (default 0.5%) are +-(8..15) sigma outliers.

Values are a daily sine (per-series amplitude and level, CO2/temperature/humidity-like types) plus noise.
Everything is vectorised numpy/Arrow: 1.44M readings take about a second. ``write_day`` writes the day in
arrival order as ``files`` Parquet files (e.g. 2,880 for a day of 30-second ingestion runs).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tsplatform.ids import series_id
from tsplatform.ingest.schema import RAW_READINGS_SCHEMA
from tsplatform.lake import Lake

TYPES = (("CO2", "ppm", 420.0, 150.0, 8.0), ("TEMP", "C", 21.0, 2.5, 0.15), ("HUMI", "%", 45.0, 8.0, 0.6))
DAY_MS = 86_400_000
GAP_RATE = 0.2  # share of the series with a gap in the day
BENCH_DAY = dt.date(2024, 3, 5)  #: the benchmarks' day (bench.graph_day and its peer and core profile)


def generate_day(
    day: dt.date,
    *,
    series: int = 10_000,
    samples: int = 144,
    jitter_s: float = 20.0,
    gap_rate: float = GAP_RATE,
    dup_rate: float = 0.01,
    spike_rate: float = 0.005,
    seed: int = 7,
    gap_seed: int | None = None,
    first_offset: int = 0,
) -> pa.Table:
    """The day's raw readings (``RAW_READINGS_SCHEMA``), in arrival order; see the module docstring.

    ``gap_seed``: draw which series have a gap (and where) from this seed instead, everything else as with
    ``seed`` alone: the same series on another day with other gaps. ``first_offset``: the first Kafka offset
    of each partition (a later day's readings follow an earlier day's)."""
    rng = np.random.default_rng(seed)
    period_ms = DAY_MS // samples
    start_ms = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    kinds = np.arange(series) % len(TYPES)
    positions = [f"site {i // len(TYPES) // 50:03d} room {i // len(TYPES) % 50:02d}" for i in range(series)]
    type_names = [TYPES[k][0] for k in kinds]
    ids = [series_id(p, t) for p, t in zip(positions, type_names, strict=True)]

    # grid slots per series, minus one gap run for some series
    s_idx = np.repeat(np.arange(series), samples)
    slot = np.tile(np.arange(samples), series)
    keep = np.ones(series * samples, dtype=bool)
    gapped = np.flatnonzero(rng.random(series) < gap_rate)
    lengths = rng.integers(1, 13, len(gapped))
    starts = rng.integers(0, samples - 12, len(gapped))
    if gap_seed is not None:  # drawn after the draws above: the rest of rng's stream stays the same
        gaps = np.random.default_rng(gap_seed)
        gapped = np.flatnonzero(gaps.random(series) < gap_rate)
        lengths = gaps.integers(1, 13, len(gapped))
        starts = gaps.integers(0, samples - 12, len(gapped))
    for s, lo, n in zip(gapped, starts, lengths, strict=True):
        keep[s * samples + lo : s * samples + lo + n] = False
    s_idx, slot = s_idx[keep], slot[keep]

    phase = rng.integers(0, period_ms, series)
    jitter = rng.uniform(-jitter_s * 1000, jitter_s * 1000, len(slot)).astype(np.int64)
    t = np.clip(start_ms + phase[s_idx] + slot * period_ms + jitter, start_ms, start_ms + DAY_MS - 1)
    level = np.array([TYPES[k][2] for k in kinds]) * rng.uniform(0.9, 1.1, series)
    amplitude = np.array([TYPES[k][3] for k in kinds]) * rng.uniform(0.5, 1.5, series)
    sigma = np.array([TYPES[k][4] for k in kinds])
    angle = 2 * np.pi * ((t - start_ms) / DAY_MS - 0.3)
    value = level[s_idx] + amplitude[s_idx] * np.sin(angle) + rng.normal(0, 1, len(t)) * sigma[s_idx]
    spikes = rng.random(len(t)) < spike_rate
    value[spikes] += (
        rng.choice([-1, 1], spikes.sum()) * rng.uniform(8, 15, spikes.sum()) * sigma[s_idx[spikes]]
    )

    # duplicates re-sent later; arrival order = event time (+ a little network reordering)
    dups = np.flatnonzero(rng.random(len(t)) < dup_rate)
    s_idx, t, value = (np.concatenate([a, a[dups]]) for a in (s_idx, t, value))
    arrival = np.argsort(
        t
        + rng.integers(0, 60_000, len(t))
        + np.r_[np.zeros(len(t) - len(dups)), np.full(len(dups), 300_000)],
        kind="stable",
    )
    s_idx, t, value = s_idx[arrival], t[arrival], np.round(value[arrival], 3)
    n = len(t)

    def by_series(values: list[str]) -> pa.Array:
        return pc.take(pa.array(values, pa.string()), pa.array(s_idx))

    columns = {
        "position": by_series(positions),
        "type_name": by_series(type_names),
        "series_id": by_series(ids),
        "event_time": pa.array(t, pa.timestamp("ms", tz="UTC")),
        "value": pa.array(value),
        "ss_id": pa.array(s_idx.astype(np.int64)),
        "unit": by_series([TYPES[k][1] for k in kinds]),
        "rstart": pa.array(np.full(n, -1e6)),
        "rend": pa.array(np.full(n, 1e6)),
        "topic": pa.array(np.full(n, "sensor_data_source_SENSOR_DATA_VIEW", dtype=object), pa.string()),
        "partition": pa.array((np.arange(n) % 4).astype(np.int32)),
        "offset": pa.array((first_offset + np.arange(n) // 4).astype(np.int64)),
        "ingested_at": pa.array(t + 30_000, pa.timestamp("ms", tz="UTC")),
        "schema_id": pa.array(np.full(n, "bench", dtype=object), pa.string()),
    }
    return pa.table(
        {f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in RAW_READINGS_SCHEMA},
        schema=RAW_READINGS_SCHEMA,
    )


def write_day(lake: Lake, day: dt.date, table: pa.Table, *, files: int = 2) -> list[str]:
    """Write ``table`` as ``raw_readings/<day>`` in ``files`` arrival-order slices; returns the paths."""
    per_file = -(-table.num_rows // files)
    return [
        lake.write_file("raw_readings", day, f"part-{i:05d}.parquet", table.slice(i * per_file, per_file))
        for i in range(files)
        if i * per_file < table.num_rows
    ]
