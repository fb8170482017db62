"""The graph's per-series chain day by day on real series: what a user's real data goes through.

Each series below (B4B CO2 at 1 min / 10 min / 1 h, UCI occupancy at 1 min with +-1 s jitter, ETTh1 hourly
with negative loads, NAB files with long gaps, clock roll-backs, irregular stamps, counts and artificial
waves) is cut into UTC days and run through ``tsplatform.timeseries.stages`` exactly as the assets call
them, one day at a time: ``validate_series`` per series-day, ``estimate_periods`` over the
``PERIOD_LOOKBACK_DAYS`` window, ``regularize_series`` over the same window with the imputation history
carried from day to day (as the catalog does), ``denoise_series`` over ``ANOMALY_LOOKBACK_DAYS`` of the
regularized days, ``decompose_series`` over ``DECOMPOSITION_LOOKBACK_DAYS`` of the denoised days,
``hourly_series``. Then the whole span again as one backfill (``days`` = every day at once).

Reported per series: days, the periods estimated, the share of grid slots imputed, rows flagged by the
anomaly likelihood's alarms only and rows of spikes (``detect_spikes``), rows changed by the denoising,
decomposed rows, CPU. Checks, each a count of failing series-days (0 = holds):
a stage raised; a day's grid step differs from its period estimate; an imputed value lies more than a
quarter of the window's range outside it; trend + seasons + resid differs from the denoised value (1e-6
relative); a slot without a value has a residual; an hourly mean outside [min, max]; the daily run differs
from the backfill (regularized, denoised and decomposed values, 1e-9).

    .venv/bin/python -m bench.accuracy.real_days [--datasets-dir ../shared/datasets] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from bench.datasets_dir import DEFAULT_DATASETS_DIR, require_datasets
from bench.record import recorded
from tsplatform.partitions import ANOMALY_LOOKBACK_DAYS, DECOMPOSITION_LOOKBACK_DAYS, PERIOD_LOOKBACK_DAYS
from tsplatform.settings import get_settings
from tsplatform.timeseries import stages
from tsplatform.timeseries.decompose import seasons_of_periods
from tsplatform.timeseries.validate import EVENT_TIME_DTYPE, validate_series
from tsplatform_tests.graph_data import raw_rows

STAGES = ("estimate", "regularize", "denoise", "decompose", "hourly")
#: The baseline beside the current window: the detector's history in ``denoised_readings`` until session 22.
BASELINE_ANOMALY_DAYS = 2
CHECKS = (
    "stage raised",
    "grid step != period",
    "imputed value far outside the window's range",
    "trend + seasons + resid != value",
    "residual where there is no value",
    "hourly mean outside [min, max]",
    "daily run != backfill",
)


def _csv_series(path: Path, time_column: str, value_column: str, *, utc: bool = False) -> pd.Series:
    frame = pd.read_csv(path)
    if utc:
        times = pd.to_datetime(frame[time_column], utc=True, format="ISO8601")
    else:
        times = pd.to_datetime(frame[time_column]).dt.tz_localize("UTC")
    return pd.Series(frame[value_column].to_numpy(dtype=float), index=pd.DatetimeIndex(times))


def _days(series: pd.Series, first: str | None, days: int | None) -> pd.Series:
    if first is None:
        return series
    start = pd.Timestamp(first, tz="UTC")
    end = start + pd.Timedelta(days=days) if days else series.index.max() + pd.Timedelta(seconds=1)
    return series[(series.index >= start) & (series.index < end)]


def catalog(root: Path) -> dict[str, Callable[[], pd.Series]]:
    """name -> loader of a UTC-indexed series (file order, duplicates kept)."""

    def nab(rel: str, first: str | None = None, days: int | None = None) -> Callable[[], pd.Series]:
        return lambda: _days(_csv_series(root / "nab" / rel, "timestamp", "value"), first, days)

    def b4b(room: str, source: str, column: str, first: str | None = None, days: int | None = None):  # type: ignore[no-untyped-def]
        def load() -> pd.Series:
            frame = pd.read_csv(root / "b4b_co2" / f"{room}_raw_properties.csv")
            frame = frame[frame["source"] == source]
            times = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
            return _days(
                pd.Series(frame[column].to_numpy(dtype=float), index=pd.DatetimeIndex(times)), first, days
            )

        return load

    def uci(column: str) -> Callable[[], pd.Series]:
        return lambda: _csv_series(root / "occupancy_uci" / "datatraining.csv", "date", column)

    def ett(column: str) -> Callable[[], pd.Series]:
        return lambda: _days(_csv_series(root / "ett" / "ETTh1.csv", "date", column), "2016-07-01", 35)

    return {
        "b4b 917810 CO2 SCD41 (10 min)": b4b("917810", "CO2-meter-SCD4x", "co2__ppm"),
        "b4b 917810 CO2 bms (1 min)": b4b("917810", "bms", "co2__ppm", "2022-10-18", 14),
        "b4b 925038 CO2 SCD41 (10 min)": b4b("925038", "CO2-meter-SCD4x", "co2__ppm"),
        "b4b 925038 temperature SCD41 (10 min)": b4b("925038", "CO2-meter-SCD4x", "temp_in__degC"),
        "b4b 925038 CO2 bms (1 h)": b4b("925038", "bms", "co2__ppm"),
        "b4b 999169 people xovis (5 min)": b4b("999169", "xovis", "occupancy__p"),
        "uci CO2 (1 min, +-1 s)": uci("CO2"),
        "uci Light (1 min, +-1 s)": uci("Light"),
        "uci Occupancy (0/1)": uci("Occupancy"),
        "ETTh1 OT (1 h)": ett("OT"),
        "ETTh1 MULL (1 h, negative)": ett("MULL"),
        "nab ambient temperature (1 h, gaps up to 7 d)": nab(
            "realKnownCause/ambient_temperature_system_failure.csv", "2013-08-25", 35
        ),
        "nab nyc_taxi (30 min)": nab("realKnownCause/nyc_taxi.csv", "2014-10-20", 21),
        "nab machine temperature (clock roll-back)": nab(
            "realKnownCause/machine_temperature_system_failure.csv", "2014-01-01", 14
        ),
        "nab ec2 latency (DST duplicates)": nab("realKnownCause/ec2_request_latency_system_failure.csv"),
        "nab rogue key hold (91 gaps)": nab("realKnownCause/rogue_agent_key_hold.csv"),
        "nab speed_6005 (irregular)": nab("realTraffic/speed_6005.csv"),
        "nab speed_7578 (irregular)": nab("realTraffic/speed_7578.csv"),
        "nab Twitter CVS (counts)": nab("realTweets/Twitter_volume_CVS.csv", "2015-02-26", 21),
        "nab exchange-2 cpc (1 h, gaps)": nab("realAdExchange/exchange-2_cpc_results.csv", "2011-07-01", 35),
        "nab perfect square wave (no anomaly)": nab("artificialNoAnomaly/art_daily_perfect_square_wave.csv"),
        "nab disk write bytes": nab("realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv"),
    }


def raw_readings(position: str, type_name: str, series: pd.Series) -> pd.DataFrame:
    """The series as raw_readings rows of one Kafka partition, in file order, without a sensor range (the
    test builder's +-1e6 would reject disk bytes)."""
    frame = pd.DataFrame(
        {"position": position, "type_name": type_name, "event_time": series.index, "value": series.to_numpy()}
    )
    return raw_rows(frame).assign(rstart=np.nan, rend=np.nan)


def validated(raw: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    parts = []
    for day, rows in raw.groupby(raw["event_time"].dt.date, sort=True):
        rows = rows.assign(event_time=rows["event_time"].astype(EVENT_TIME_DTYPE))
        parts.append(validate_series(rows, day, now))
    checked = pd.concat(parts, ignore_index=True)
    return checked[checked["reason"].isna()].drop(columns="reason")


def in_days(frame: pd.DataFrame, first: dt.date, last: dt.date) -> pd.DataFrame:
    if not len(frame):
        return frame
    times = stages.utc(frame["event_time"])
    return frame[(times >= stages.day_start(first)) & (times < stages.day_start(last) + stages.DAY)]


def seasons_of(estimates: pd.DataFrame) -> list[int]:
    return seasons_of_periods(estimates["period_s"]) if len(estimates) else []


@dataclass
class Outcome:
    name: str
    days: int = 0
    failures: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    cpu: Counter = field(default_factory=Counter)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def fail(self, check: str, where: str) -> None:
        self.failures[check] += 1
        self.examples.setdefault(check, where)

    def call(
        self, stage: str, day: dt.date, fn: Callable[..., pd.DataFrame], *args: Any, **kwargs: Any
    ) -> pd.DataFrame:
        started = time.process_time()
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # a stage must never raise on real data: counted, shown, not fatal
            self.fail(
                "stage raised", f"{stage} {day}: {type(exc).__name__}: {exc}; {traceback.format_exc(limit=2)}"
            )
            return pd.DataFrame()
        finally:
            self.cpu[stage] += time.process_time() - started


def denoised(
    outcome: Outcome, regularized: pd.DataFrame, day: dt.date, stage: str, history_days: int
) -> pd.DataFrame:
    """``denoise_series`` for ``day`` over the ``history_days`` of ``regularized`` ending at it."""
    window = in_days(regularized, day - dt.timedelta(days=history_days - 1), day)
    return outcome.call(stage, day, stages.denoise_series, window, [day], history_days)


def chain(outcome: Outcome, valid: pd.DataFrame, days: list[dt.date]) -> dict[str, pd.DataFrame]:
    """The per-series stages day by day, each on the windows its asset reads."""
    settings = get_settings()
    out: dict[str, list[pd.DataFrame]] = {
        k: [] for k in ("estimates", "regularized", "denoised", "decomposed", "hourly", "baseline")
    }
    state: dict[str, Any] = {"imputation_history": []}
    regularized_so_far, denoised_so_far = pd.DataFrame(), pd.DataFrame()
    for day in days:
        window = in_days(valid, day - dt.timedelta(days=PERIOD_LOOKBACK_DAYS - 1), day)
        est = outcome.call("estimate", day, stages.estimate_periods, window, [day], PERIOD_LOOKBACK_DAYS)
        reg = outcome.call(
            "regularize", day, stages.regularize_series, window, est, [day], state,
            lookback_days=PERIOD_LOOKBACK_DAYS, max_gap_s=settings.impute_max_gap_s,
            reselect_days=settings.imputation_reselect_days,
        )  # fmt: skip
        if len(reg):
            chosen = reg[reg["imputation_selected"].notna()]
            used = {
                (str(a), str(b))
                for a, b in zip(chosen["imputation_selected"], chosen["imputation_method"], strict=True)
            }
            state = {
                "imputation_history": stages.history_document("x", state, sorted(used), [day])[
                    "imputation_history"
                ]
            }
            regularized_so_far = pd.concat([regularized_so_far, reg], ignore_index=True)
        den = denoised(outcome, regularized_so_far, day, "denoise", ANOMALY_LOOKBACK_DAYS)
        if len(den):
            denoised_so_far = pd.concat([denoised_so_far, den], ignore_index=True)
        baseline = denoised(outcome, regularized_so_far, day, "baseline", BASELINE_ANOMALY_DAYS)
        if len(baseline):
            out["baseline"].append(baseline)
        window = in_days(denoised_so_far, day - dt.timedelta(days=DECOMPOSITION_LOOKBACK_DAYS - 1), day)
        dec = outcome.call(
            "decompose", day, stages.decompose_series, window, est, [day], seasons_of(est),
            lookback_days=DECOMPOSITION_LOOKBACK_DAYS,
        )  # fmt: skip
        hourly = outcome.call("hourly", day, stages.hourly_series, den, [day])
        for key, frame in zip(
            ("estimates", "regularized", "denoised", "decomposed", "hourly"),
            (est, reg, den, dec, hourly),
            strict=True,
        ):
            if len(frame):
                out[key].append(frame)
    return {k: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for k, v in out.items()}


def backfill(outcome: Outcome, valid: pd.DataFrame, days: list[dt.date]) -> dict[str, pd.DataFrame]:
    """The same stages over every day at once (one backfill run), from no imputation history."""
    settings = get_settings()
    est = outcome.call("backfill", days[0], stages.estimate_periods, valid, days, PERIOD_LOOKBACK_DAYS)
    reg = outcome.call(
        "backfill", days[0], stages.regularize_series, valid, est, days, None,
        lookback_days=PERIOD_LOOKBACK_DAYS, max_gap_s=settings.impute_max_gap_s,
        reselect_days=settings.imputation_reselect_days,
    )  # fmt: skip
    den = outcome.call("backfill", days[0], stages.denoise_series, reg, days, ANOMALY_LOOKBACK_DAYS)
    dec = outcome.call(
        "backfill", days[0], stages.decompose_series, den, est, days, seasons_of(est),
        lookback_days=DECOMPOSITION_LOOKBACK_DAYS,
    )  # fmt: skip
    return {"regularized": reg, "denoised": den, "decomposed": dec}


def check(
    outcome: Outcome, valid: pd.DataFrame, daily: dict[str, pd.DataFrame], back: dict[str, pd.DataFrame]
) -> None:
    est, reg, den, dec, hourly = (
        daily[k] for k in ("estimates", "regularized", "denoised", "decomposed", "hourly")
    )
    periods = est.set_index("_day")["period_s"] if len(est) else pd.Series(dtype=float)
    for day, rows in reg.groupby("_day") if len(reg) else []:
        steps = np.diff(stages.utc(rows["event_time"]).asi8) / 1e9
        # NaN: no estimate for the day, which passes through unmodified (a note says why)
        period = periods.get(day, np.nan)
        if len(steps) and np.isfinite(period) and not np.allclose(steps, period):
            outcome.fail("grid step != period", f"{day}: steps {sorted(set(steps))[:3]} s, period {period} s")
        imputed = rows.loc[rows["is_imputed"].astype(bool), "value"]
        if len(imputed):
            d = dt.date.fromisoformat(day)
            seen = in_days(valid, d - dt.timedelta(days=PERIOD_LOOKBACK_DAYS - 1), d)["value"]
            lo, hi = float(seen.min()), float(seen.max())
            if ((imputed < lo - (hi - lo) / 4) | (imputed > hi + (hi - lo) / 4)).any():
                outcome.fail(
                    "imputed value far outside the window's range",
                    f"{day}: [{imputed.min()}, {imputed.max()}] vs [{lo}, {hi}]",
                )
    if len(dec) and len(den):
        value = den.set_index(["_day", "event_time"])["value"]
        seasons = [c for c in dec if c.startswith("seasonal_")]
        for day, rows in dec.groupby("_day"):
            v = value.reindex(pd.MultiIndex.from_arrays([rows["_day"], rows["event_time"]])).to_numpy()
            total = rows[["trend", *seasons]].sum(axis=1, min_count=1).to_numpy() + rows["resid"].to_numpy()
            fitted = np.isfinite(rows["resid"].to_numpy())
            # float rounding scales with the components (bytes: 1e8 components leave 1e-7 on a value of 0)
            scale = float(np.nanmax(np.abs(rows[["trend", *seasons, "resid"]].to_numpy()), initial=0.0))
            if not np.allclose(total[fitted], v[fitted], rtol=1e-6, atol=1e-12 * scale + 1e-9):
                outcome.fail("trend + seasons + resid != value", str(day))
            if (fitted & np.isnan(v)).any():
                outcome.fail(
                    "residual where there is no value", f"{day}: {int((fitted & np.isnan(v)).sum())} slots"
                )
    if len(hourly):
        bad = hourly[
            (hourly["count"] > 0)
            & ((hourly["mean"] < hourly["min"] - 1e-9) | (hourly["mean"] > hourly["max"] + 1e-9))
        ]
        for day in sorted(set(bad["_day"])):
            outcome.fail("hourly mean outside [min, max]", str(day))
    for key, column in (("regularized", "value"), ("denoised", "value"), ("decomposed", "resid")):
        a, b = daily[key], back[key]
        if not len(a) and not len(b):
            continue
        a = a.set_index(["_day", "event_time"])[column] if len(a) else pd.Series(dtype=float)
        b = b.set_index(["_day", "event_time"])[column] if len(b) else pd.Series(dtype=float)
        both = a.index.union(b.index)
        x, y = a.reindex(both).to_numpy(dtype=float), b.reindex(both).to_numpy(dtype=float)
        differ = ~((np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=1e-9, atol=1e-9))
        for day in sorted({d for d, _ in both[differ]}):
            outcome.fail("daily run != backfill", f"{key} {day}")


def run_one(name: str, series: pd.Series, now: pd.Timestamp) -> Outcome:
    outcome = Outcome(name)
    valid = validated(raw_readings(name, "value", series), now)
    first, last = valid["event_time"].min().date(), valid["event_time"].max().date()
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    outcome.days = len(days)
    with threadpool_limits(1):
        daily = chain(outcome, valid, days)
        back = backfill(outcome, valid, days)
    check(outcome, valid, daily, back)
    outcome.frames = daily
    return outcome


def summary_row(o: Outcome) -> list[str]:
    est, reg, den, dec = (
        o.frames.get(k, pd.DataFrame()) for k in ("estimates", "regularized", "denoised", "decomposed")
    )
    periods = Counter(f"{p:g}" for p in est["period_s"].dropna()) if len(est) else Counter()
    period_text = ", ".join(f"{p} s x{n}" for p, n in periods.most_common(3)) or "-"
    imputed = f"{reg['is_imputed'].mean():.1%}" if len(reg) else "-"
    alarms = int((den["is_anomaly"] & ~den["is_spike"]).sum()) if len(den) else 0
    spikes = int(den["is_spike"].sum()) if len(den) else 0
    base = o.frames.get("baseline", pd.DataFrame())
    alarms_before = int((base["is_anomaly"] & ~base["is_spike"]).sum()) if len(base) else 0
    changed = int((den["value"].fillna(np.inf) != den["value_raw"].fillna(np.inf)).sum()) if len(den) else 0
    fitted = int(dec["resid"].notna().sum()) if len(dec) else 0
    cpu = sum(o.cpu.values())
    return [
        o.name,
        str(o.days),
        period_text,
        imputed,
        f"{alarms} ({alarms_before})",
        str(spikes),
        str(changed),
        f"{fitted} of {len(dec)}",
        f"{cpu:.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--write", action="store_true", help="also record the report in BENCHMARKS.md")
    args = parser.parse_args()
    root = require_datasets(args.datasets_dir, "nab", "ett", "occupancy_uci", "b4b_co2")
    now = pd.Timestamp.now(tz="UTC")
    with recorded("bench.accuracy.real_days", write=args.write):
        outcomes = [run_one(name, load(), now) for name, load in catalog(root).items()]
        days = sum(o.days for o in outcomes)
        print(f"{len(outcomes)} real series, {days} series-days, each day by day and as one backfill\n")
        columns = ("series", "days", "periods estimated (days)", "slots imputed",
                   "rows flagged by alarms only (with a 2-day window)", "spike rows",
                   "rows changed by denoising",
                   "decomposed rows with a residual", "CPU s")  # fmt: skip
        print("| " + " | ".join(columns) + " |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for o in outcomes:
            print("| " + " | ".join(summary_row(o)) + " |")
        print("\n| check | failing series-days | first example |")
        print("|---|---:|---|")
        for name in CHECKS:
            n = sum(o.failures[name] for o in outcomes)
            example = next((f"{o.name}: {o.examples[name]}" for o in outcomes if name in o.examples), "")
            print(f"| {name} | {n} | {example[:160].replace('|', '/')} |")
        cpu = Counter()
        for o in outcomes:
            cpu.update(o.cpu)
        print(
            "\nCPU by stage, all series (s): "
            + ", ".join(f"{s} {cpu[s]:.1f}" for s in (*STAGES, "backfill", "baseline"))
        )


if __name__ == "__main__":
    main()
