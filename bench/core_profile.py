"""CPU per stage of the graph's core chain: ``bench.graph_day --profile-core N [--history D]``."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from bench.day_generator import BENCH_DAY as DAY
from bench.day_generator import generate_day
from bench.graph_peer import _tagged, seasons_of

NO_STATE = "no state: selects where a slot needs filling"  # the first-day label


def timed_into(
    cpu: dict[str, float], name: str, fn: Callable[..., pd.DataFrame], *args: object, **kwargs: object
) -> pd.DataFrame:
    """``fn(*args, **kwargs)``, its CPU seconds added to ``cpu[name]``."""
    started = time.process_time()
    out = fn(*args, **kwargs)
    cpu[name] = cpu.get(name, 0.0) + time.process_time() - started
    return out


def profile_core(series: int, history: int = 0) -> None:
    """CPU ms per series of each stage of :func:`run_peer_chain` over ``series`` generated series, with
    no imputation state (the first day: ``select_imputation`` runs) and with a freshly chosen method. BLAS
    and OpenMP pools are held to one thread, as in :func:`run_peer` and Spark's Python workers: with
    OpenBLAS's second thread spinning after statsmodels' calls, the process's CPU time doubled for every
    stage that ran after an imputation selection."""
    import scipy.linalg  # noqa: F401  (load every BLAS the chain uses before limiting them)
    import statsmodels.api  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        if history:
            _profile_core_history(series, history)
        else:
            _profile_core(series)


def _profile_core_history(series: int, history: int) -> None:
    """CPU ms per series of the per-series stages on ``DAY`` when the ``history`` days before it are already
    in the lake, beside the same day without them: each stage reads its lookback window as its asset does
    (periods and the grid 7 days, anomalies 2, decompositions 28). Methods are already chosen (``linear``;
    selections are measured by the plain ``--profile-core``)."""
    from tsplatform.partitions import ANOMALY_LOOKBACK_DAYS, DECOMPOSITION_LOOKBACK_DAYS, PERIOD_LOOKBACK_DAYS
    from tsplatform.settings import get_settings
    from tsplatform.timeseries import stages
    from tsplatform.timeseries.validate import validate_series

    settings, now = get_settings(), pd.Timestamp.now(tz="UTC")
    every_day = [DAY - dt.timedelta(days=history - i) for i in range(history + 1)]
    valid_days = []
    for day in every_day:  # the same series every day, other gaps
        raw = generate_day(day, series=series, gap_seed=day.toordinal()).to_pandas()
        checked = validate_series(raw, day, now)
        valid_days.append(checked[checked["reason"].isna()])
    chosen = {
        "imputation_method": "linear",
        "imputation_selected": (DAY - dt.timedelta(days=1)).isoformat(),  # fresh on DAY: no selection
    }
    options = {"max_gap_s": settings.impute_max_gap_s, "reselect_days": settings.imputation_reselect_days}
    cpu: dict[str, dict[str, float]] = {"first day": {}, f"with {history} days of history": {}}

    def timed(column: str, *args: Any, **kw: Any) -> pd.DataFrame:
        return timed_into(cpu[column], *args, **kw)

    def window(frame: pd.DataFrame, days: int) -> pd.DataFrame:  # what the asset reads for DAY
        return frame[frame["event_time"] >= pd.Timestamp(DAY - dt.timedelta(days=days - 1), tz="UTC")]

    everything = pd.concat(valid_days, ignore_index=True)
    for _, valid in everything.groupby("series_id", sort=False):
        past = valid[valid["event_time"] < pd.Timestamp(DAY, tz="UTC")]
        # the history the assets would have written before the day (untimed)
        est_past = stages.estimate_periods(past, every_day[:-1], PERIOD_LOOKBACK_DAYS)
        reg_past = stages.regularize_series(
            past, est_past, every_day[:-1], chosen, lookback_days=PERIOD_LOOKBACK_DAYS, **options
        )
        den_past = stages.denoise_series(reg_past, every_day[:-1], ANOMALY_LOOKBACK_DAYS)
        for column, valid_rows, reg_before, den_before in (
            ("first day", window(valid, 1), reg_past.iloc[0:0], den_past.iloc[0:0]),
            (f"with {history} days of history", valid, reg_past, den_past),
        ):
            rows = window(valid_rows, PERIOD_LOOKBACK_DAYS)
            est = timed(
                column, "estimate_periods", stages.estimate_periods, rows, [DAY], PERIOD_LOOKBACK_DAYS
            )
            reg = timed(
                column,
                "regularize_series (method chosen)",
                stages.regularize_series,
                rows,
                est,
                [DAY],
                chosen,
                lookback_days=PERIOD_LOOKBACK_DAYS,
                **options,
            )
            reg_window = window(pd.concat([reg_before, reg], ignore_index=True), ANOMALY_LOOKBACK_DAYS)
            den = timed(
                column, "denoise_series", stages.denoise_series, reg_window, [DAY], ANOMALY_LOOKBACK_DAYS
            )
            seasons = seasons_of(est)
            den_window = window(pd.concat([den_before, den], ignore_index=True), DECOMPOSITION_LOOKBACK_DAYS)
            timed(
                column,
                "decompose_series",
                stages.decompose_series,
                den_window,
                est,
                [DAY],
                seasons,
                lookback_days=DECOMPOSITION_LOOKBACK_DAYS,
            )
    columns = list(cpu)
    print(
        f"### Per-series stages on one day, with and without history ({series} generated series, "
        "one process)\n"
    )
    print("| stage | " + " | ".join(f"{c}: CPU ms per series" for c in columns) + " | ratio |")
    print("|---|" + "---:|" * (len(columns) + 1))
    for name in cpu[columns[0]]:
        first, later = (1000 * cpu[c][name] / series for c in columns)
        print(f"| {name} | {first:.1f} | {later:.1f} | {later / first:.1f}x |")
    first, later = (1000 * sum(cpu[c].values()) / series for c in columns)
    print(f"| **the four stages** | **{first:.1f}** | **{later:.1f}** | **{later / first:.1f}x** |")


def _profile_core(series: int) -> None:
    from tsplatform.partitions import ANOMALY_LOOKBACK_DAYS, DECOMPOSITION_LOOKBACK_DAYS, PERIOD_LOOKBACK_DAYS
    from tsplatform.settings import get_settings
    from tsplatform.timeseries import stages
    from tsplatform.timeseries.validate import validate_series

    raw = generate_day(DAY, series=series).to_pandas()
    settings, days, now = get_settings(), [DAY], pd.Timestamp.now(tz="UTC")
    fresh = {"imputation_method": "linear", "imputation_selected": (DAY - dt.timedelta(days=1)).isoformat()}
    cpu: dict[str, float] = {}

    def timed(*args: Any, **kw: Any) -> pd.DataFrame:
        return timed_into(cpu, *args, **kw)

    checked = timed("validate_series (all series at once)", validate_series, raw, DAY, now)
    valid_all = checked[checked["reason"].isna()]
    sources = [_tagged(valid_all, "validated", valid_all["value"], pd.Series(False, index=valid_all.index))]
    denoised, first_days = [], []
    for _, valid in valid_all.groupby("series_id", sort=False):
        est = timed("estimate_periods", stages.estimate_periods, valid, days, PERIOD_LOOKBACK_DAYS)
        regular = {}
        for label, state in ((NO_STATE, None), ("method chosen", fresh)):
            regular[label] = timed(
                f"regularize_series ({label})",
                stages.regularize_series,
                valid,
                est,
                days,
                state,
                lookback_days=PERIOD_LOOKBACK_DAYS,
                max_gap_s=settings.impute_max_gap_s,
                reselect_days=settings.imputation_reselect_days,
            )
        reg = regular["method chosen"]
        first_days.append(regular[NO_STATE])
        den = timed("denoise_series", stages.denoise_series, reg, days, ANOMALY_LOOKBACK_DAYS)
        seasons = seasons_of(est)
        timed(
            "decompose_series",
            stages.decompose_series,
            den,
            est,
            days,
            seasons,
            lookback_days=DECOMPOSITION_LOOKBACK_DAYS,
        )
        denoised.append(den)
        sources += [
            _tagged(reg, "regularized", reg["value"], reg["is_imputed"]),
            _tagged(den, "denoised", den["value"], den["is_anomaly"]),
            _tagged(est, "estimate", est["period_s"], pd.Series(False, index=est.index)),
        ]
    timed("hourly_series (all series at once)", stages.hourly_series, pd.concat(denoised), days)
    timed("profile_series (all series at once)", stages.profile_series, pd.concat(sources), days)
    steady = sum(v for k, v in cpu.items() if "no state" not in k)
    first = steady - cpu["regularize_series (method chosen)"] + cpu[f"regularize_series ({NO_STATE})"]
    selecting = sum(1 for frame in first_days if frame["imputation_selected"].notna().any())
    print(f"### Core chain CPU per series ({series} generated series, one process)\n")
    print("| stage | CPU ms per series |")
    print("|---|---:|")
    for name, value in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {1000 * value / series:.1f} |")
    print(
        f"\n{selecting} of the {series} series have a slot to fill on their first day and select an "
        "imputation method there.\n"
        f"\nchain per series: {1000 * first / series:.0f} ms on a series' first day, "
        f"{1000 * steady / series:.0f} ms once chosen; x 10,000 series = {10_000 * first / series:.0f} / "
        f"{10_000 * steady / series:.0f} CPU s (the 60 s goal on 2 cores is 120 CPU s for everything)"
    )
