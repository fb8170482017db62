"""The pandas peer of ``bench.graph_day``: the graph's core chain over one day in ONE process (no Spark)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.day_generator import BENCH_DAY as DAY
from tsplatform.lake import Lake


def _tagged(frame: pd.DataFrame, source: str, value: pd.Series, flag: pd.Series) -> pd.DataFrame:
    """pandas twin of ``tsplatform.assets.summarize._tagged`` (the profile's input rows)."""
    times = pd.to_datetime(frame["event_time"], utc=True) if "event_time" in frame else None
    return pd.DataFrame(
        {
            "series_id": frame["series_id"].to_numpy(),
            "position": frame["position"].to_numpy(),
            "type_name": frame["type_name"].to_numpy(),
            "event_time": times.dt.tz_localize(None).to_numpy() if times is not None else pd.NaT,
            "value": pd.to_numeric(value, errors="coerce").to_numpy(dtype=float),
            # the UTC day as text, in C (``dt.strftime`` formats every row in Python: 15% of the chain)
            "date": frame["date"].to_numpy()
            if "date" in frame
            else np.datetime_as_string(times.dt.tz_localize(None).to_numpy().astype("datetime64[D]")),
            "source": source,
            "flag": flag.astype(bool).to_numpy(),
        }
    )


def seasons_of(estimates: pd.DataFrame) -> list[int]:
    """The season lengths (samples) of a series' first period estimate; none without one."""
    from tsplatform.timeseries.decompose import seasonal_periods

    periods = estimates["period_s"].dropna()
    return sorted(seasonal_periods(pd.Timedelta(seconds=float(periods.iloc[0])))) if len(periods) else []


def run_peer_chain(raw: pd.DataFrame, assets: list[str]) -> dict[str, pd.DataFrame]:
    """The graph's core (``tsplatform.timeseries.stages``, as the assets call it) over every series of
    ``raw`` in this process: validation, hourly and profiles over all series at once (they are vectorised
    over series; the executors call them per bucket), the per-series stages per series, correlations per
    position. Returns each asset's rows."""
    from tsplatform.partitions import ANOMALY_LOOKBACK_DAYS, DECOMPOSITION_LOOKBACK_DAYS, PERIOD_LOOKBACK_DAYS
    from tsplatform.settings import get_settings
    from tsplatform.timeseries import stages
    from tsplatform.timeseries.validate import validate_series

    settings, days, now = get_settings(), [DAY], pd.Timestamp.now(tz="UTC")
    out: dict[str, list[pd.DataFrame]] = {a: [] for a in assets}
    checked = validate_series(raw.sort_values("offset", kind="stable"), DAY, now)
    valid_all = checked[checked["reason"].isna()]
    rejects = checked[checked["reason"].notna()]
    out["validated_readings"].append(valid_all)
    if len(assets) == 1:
        return {a: pd.concat(parts, ignore_index=True) for a, parts in out.items() if parts}
    sources = [
        _tagged(rejects, "rejects", rejects["value"], rejects["reason"].isin(stages.DUPLICATE_REASONS)),
        _tagged(valid_all, "validated", valid_all["value"], pd.Series(False, index=valid_all.index)),
    ]
    seasons: list[int] | None = None
    denoised = []
    for _, valid in valid_all.groupby("series_id", sort=False):
        est = stages.estimate_periods(valid, days, PERIOD_LOOKBACK_DAYS)
        reg = stages.regularize_series(
            valid,
            est,
            days,
            None,
            lookback_days=PERIOD_LOOKBACK_DAYS,
            max_gap_s=settings.impute_max_gap_s,
            reselect_days=settings.imputation_reselect_days,
        )
        den = stages.denoise_series(reg, days, ANOMALY_LOOKBACK_DAYS)
        if seasons is None:  # the Spark asset takes the seasons of every period of the day; one here
            seasons = seasons_of(est)
        dec = stages.decompose_series(den, est, days, seasons, lookback_days=DECOMPOSITION_LOOKBACK_DAYS)
        sources += [
            _tagged(reg, "regularized", reg["value"], reg["is_imputed"]),
            _tagged(den, "denoised", den["value"], den["is_anomaly"]),
            _tagged(est, "estimate", est["period_s"], pd.Series(False, index=est.index)),
        ]
        for asset, rows in (
            ("period_estimates", est),
            ("regularized_readings", reg),
            ("denoised_readings", den),
            ("decompositions", dec),
        ):
            if asset in out:
                out[asset].append(rows)
        denoised.append(den)
    all_denoised = pd.concat(denoised, ignore_index=True)
    if "hourly_readings" in out:
        out["hourly_readings"].append(stages.hourly_series(all_denoised, days))
    if "series_profiles" in out:
        out["series_profiles"].append(stages.profile_series(pd.concat(sources, ignore_index=True), days))
    if "correlations" in out:
        for _, rows in all_denoised.groupby("position", sort=False):
            out["correlations"].append(stages.correlate_position(rows, days))
    return {a: pd.concat(parts, ignore_index=True) for a, parts in out.items() if parts}


def _split_positions(raw: pd.DataFrame, processes: int) -> list[list[str]]:
    """The day's positions in ``processes`` shares of about as many readings each (largest first, each to
    the lightest share): a position's series stay together, as correlations need them."""
    shares: list[list[str]] = [[] for _ in range(processes)]
    load = [0] * processes
    for position, rows in raw["position"].value_counts().sort_values(ascending=False).items():
        lightest = load.index(min(load))
        shares[lightest].append(str(position))
        load[lightest] += int(rows)
    return shares


def _peer_share(root: str, assets: list[str], positions: list[str], out_dir: str) -> dict[str, float]:
    """One process of :func:`run_peer_split`: :func:`run_peer` over the series of ``positions``."""
    return run_peer(Lake(root), assets, Path(out_dir), positions=positions)


def run_peer_split(lake: Lake, assets: list[str], out_dir: Path, processes: int) -> dict[str, Any]:
    """:func:`run_peer` split over ``processes`` fresh processes at once, each on the series of its share of
    the positions (no Spark, nothing between them): the wall time of the core chain on that many cores,
    the floor of any engine that runs this core on them. Returns the wall seconds (start to the last
    process done, their start-up included) and the processes' CPU seconds."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    position_column = lake.read_partition("raw_readings", DAY, columns=["position"])
    shares = _split_positions(position_column.to_pandas(), processes)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as a Python worker is
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = []
        for i, positions in enumerate(shares):
            share_dir = out_dir / f"share-{i}"
            share_dir.mkdir(parents=True, exist_ok=True)
            futures.append(pool.submit(_peer_share, lake.root, assets, positions, str(share_dir)))
        results = [f.result() for f in futures]
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": sum(r["cpu_s"] for r in results),
        "share_wall_s": [round(r["wall_s"], 1) for r in results],
        "processes": processes,
    }


def run_peer(
    lake: Lake, assets: list[str], out_dir: Path, positions: list[str] | None = None
) -> dict[str, float]:
    """:func:`run_peer_chain` over the raw day in this one process, reading the lake and writing each
    asset's rows as Parquet; CPU and wall seconds. BLAS and OpenMP pools are held to one thread, as Spark
    holds its Python workers (``OMP_NUM_THREADS`` = 1 per task): with OpenBLAS's default two threads the
    peer spent 1,424 CPU s in 750 s wall on the 1.44M day, the second thread mostly spinning. With
    ``positions``, only the series of those positions (one share of :func:`run_peer_split`)."""
    import scipy.linalg  # noqa: F401  (load every BLAS the chain uses before limiting them)
    import statsmodels.api  # noqa: F401
    from threadpoolctl import threadpool_limits

    started_cpu, started = time.process_time(), time.perf_counter()
    raw = lake.read_partition("raw_readings", DAY).to_pandas()
    if positions is not None:  # one share of run_peer_split
        raw = raw[raw["position"].isin(positions)]
    with threadpool_limits(1):
        outputs = run_peer_chain(raw, assets)
    for asset, frame in outputs.items():
        frame = frame.copy()
        for column in frame.select_dtypes("object").columns:
            frame[column] = frame[column].astype(str)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out_dir / f"{asset}.parquet")
    return {
        "cpu_s": time.process_time() - started_cpu,
        "wall_s": time.perf_counter() - started,
        "steps": len(outputs),
    }


def more_peer_rounds(
    lake: Lake, assets: list[str], work: Path, processes: int, rounds: int
) -> list[tuple[float, float, float]]:
    """``rounds`` more rounds of :func:`run_peer` and :func:`run_peer_split` after a first one (the one
    process first), the order alternated from round to round: this machine's speed drifts between
    minutes. Per round: the one process's wall, the split's wall (start-up of its processes included)
    and the slower split process's own wall (without it)."""
    out = []
    for turn in range(1, rounds + 1):
        walls: dict[str, float] = {}
        for which in ("split", "one") if turn % 2 else ("one", "split"):
            if which == "one":
                walls["one"] = run_peer(lake, assets, work / "peer")["wall_s"]
            else:
                split = run_peer_split(lake, assets, work / "peer-split", processes)
                walls["split"], walls["slower"] = split["wall_s"], max(split["share_wall_s"])
        out.append((walls["one"], walls["split"], walls["slower"]))
        print(f"progress: peer round {turn + 1} {out[-1]}", file=sys.stderr, flush=True)
    return out
