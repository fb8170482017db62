"""Synthetic anomalies of NAB's kinds injected into unlabelled real series: precision, recall, delay.

Series (``<datasets-dir>``, raw rows, NaN dropped; none of them was used to design or tune a detector):
B4B CO2 of 3 rooms (SCD41 meter, ~10 min, and the BMS sensor), UCI occupancy (temperature, CO2, humidity
and light, 1 min, training and test2 files), ETT (ETTh1 and ETTh2 oil temperature and HUFL load, 1 h).

For each series and each kind, one anomaly is injected at each of ``POSITIONS`` (fractions of the series,
all after the first 40 %), one copy of the series per injection. Magnitudes are in the series' own units:
``spread`` = IQR / 1.349 of its values, ``noise`` = 1.4826 * MAD of its first differences / sqrt(2),
``day`` = one day of rows at the median step (at least 10, at most a tenth of the series):

- spike: one value + 4 spread (sign alternating between positions);
- level shift: + 2 spread from the anomaly to the end;
- variance change: + Gaussian noise of 5 noise for one day;
- frequency change: + a 6-row-period sine of amplitude max(spread, 5 noise) / 2 for one day;
- drift: + a ramp from 0 to 3 spread over one day, held to the end.

An injection is **detected** when the detector flags a row in [start, start + one day] (delay: the first
such flag - start, in rows and hours); **precision** = flags inside those windows / all flags after the
first 40 % (so flags before the injection count as false); false alarms per day are also counted on the
untouched series. Detectors: the default ``detect_anomalies(s, causal=True)``, the previous tuned causal
residual (frozen NAB parameters), the causal IQR rule (the former default causal call), and the batch
IQR rule (not causal: a flag must be in the injection's window too); the batch residual rule (robust STL)
only with ``--batch-residual`` (slow).
Glitches, for cleaning (``denoised_readings`` flags the rows of ``detect_spikes`` beside the alarms): five
injections in one copy of each series, a third of a day apart from the first 50 %: one row of +-10 spread
(``glitch``), three rows of +10 spread (``3-row glitch``), or one row at the series' own 0.1 % quantile
- 3 spread (``drop-out``). Scored per injected row: recall = rows flagged / rows injected, precision =
injected rows flagged / all flags after the first 40 %; for the alarms, the spike rule and their union
(what ``denoised_readings`` flags). Series whose values were looked at while choosing the spike rule's
settings (``bench.accuracy.real_days``' B4B rooms 917810 / 925038, UCI training CO2 and Light, ETTh1 OT)
are reported apart from the other 11.
Run: ``.venv/bin/python -m bench.accuracy.injected_anomalies [--datasets-dir ../shared/datasets] [--write]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.datasets_dir import DEFAULT_DATASETS_DIR, require_datasets
from bench.record import recorded
from tsplatform.timeseries import detect_anomalies, detect_spikes, seasonal_periods

REPO = Path(__file__).resolve().parents[2]
POSITIONS = (0.5, 0.65, 0.8)
KINDS = ("spike", "level shift", "variance change", "frequency change", "drift")
ROOMS = ("917810", "925038", "999169")
#: the previous tuned causal detector (bench/accuracy/nab.py, chosen on the 11 first NAB files)
PREVIOUS_TUNED = {"window": 288, "scale_window": 3000, "n_cycles": 5, "smooth": 10, "surprise_window": 5000,
                  "z_clip": 100.0, "c": 5.75, "refractory": 200}  # fmt: skip


def _series(index: pd.DatetimeIndex, values: np.ndarray, name: str) -> pd.Series:
    series = pd.Series(values.astype(float), index=index, name=name).dropna()
    series = series[~series.index.duplicated()].sort_index()
    return series


def load_series(root: Path) -> dict[str, pd.Series]:
    """The unlabelled real series, raw rows (NaN and duplicate timestamps dropped)."""
    out: dict[str, pd.Series] = {}
    for room in ROOMS:
        frame = pd.read_csv(root / "b4b_co2" / f"{room}_raw_properties.csv", low_memory=False)
        for source, label in (("CO2-meter-SCD4x", "SCD41"), ("bms", "BMS")):
            rows = frame[(frame["source"] == source) & frame["co2__ppm"].notna()]
            index = pd.DatetimeIndex(pd.to_datetime(rows["timestamp"], utc=True))
            out[f"b4b {room} CO2 {label}"] = _series(index, rows["co2__ppm"].to_numpy(), room)
    for file_name in ("datatraining.csv", "datatest2.csv"):
        frame = pd.read_csv(root / "occupancy_uci" / file_name)
        index = pd.DatetimeIndex(pd.to_datetime(frame["date"])).tz_localize("UTC")
        for column in ("Temperature", "CO2", "Humidity", "Light"):
            out[f"occupancy {file_name[:-4]} {column}"] = _series(index, frame[column].to_numpy(), column)
    for file_name in ("ETTh1.csv", "ETTh2.csv"):
        frame = pd.read_csv(root / "ett" / file_name)
        index = pd.DatetimeIndex(pd.to_datetime(frame["date"])).tz_localize("UTC")
        for column in ("OT", "HUFL"):
            out[f"ett {file_name[:-4]} {column}"] = _series(index, frame[column].to_numpy(), column)
    return out


def scales(series: pd.Series) -> tuple[float, float, int]:
    """(spread, noise, rows per day) of a series; see the module docstring."""
    values = series.to_numpy()
    q1, q3 = np.quantile(values, [0.25, 0.75])
    diffs = np.diff(values)
    noise = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / np.sqrt(2)
    spread = max(float(q3 - q1) / 1.349, noise, 1e-9)
    steps = np.diff(series.index.asi8)
    step = float(np.median(steps[steps > 0]))
    day = int(np.clip(round(86400e9 / step), 10, len(series) // 10))
    return spread, max(noise, 1e-3 * spread), day


def inject(series: pd.Series, kind: str, start: int, sign: float) -> tuple[pd.Series, int]:
    """A copy with one anomaly of ``kind`` at row ``start``; returns (copy, rows of its detection window)."""
    spread, noise, day = scales(series)
    values = series.to_numpy().copy()
    end = min(start + day, len(values))
    rng = np.random.default_rng(start)
    if kind == "spike":
        values[start] += sign * 4 * spread
    elif kind == "level shift":
        values[start:] += sign * 2 * spread
    elif kind == "variance change":
        values[start:end] += rng.normal(0.0, 5 * noise, end - start)
    elif kind == "frequency change":
        amplitude = max(spread, 5 * noise) / 2
        values[start:end] += amplitude * np.sin(2 * np.pi * np.arange(end - start) / 6)
    elif kind == "drift":
        ramp = np.linspace(0.0, 3 * spread, end - start)
        values[start:end] += sign * ramp
        values[end:] += sign * 3 * spread
    else:
        raise ValueError(kind)
    return pd.Series(values, index=series.index), day


def previous_tuned(series: pd.Series) -> np.ndarray:
    steps = np.diff(series.index.asi8)
    weekly = seasonal_periods(pd.Timedelta(int(np.median(steps[steps > 0])), unit="ns"))[-1:]
    return detect_anomalies(series, "residual", causal=True, periods=weekly, **PREVIOUS_TUNED)[
        "is_anomaly"
    ].to_numpy()


DETECTORS: dict[str, Callable[[pd.Series], np.ndarray]] = {
    "**default causal** (`causal=True`)": lambda s: detect_anomalies(s, causal=True)["is_anomaly"].to_numpy(),
    "previous tuned causal residual": previous_tuned,
    "causal IQR, expanding (former default causal)": lambda s: detect_anomalies(s, "iqr", causal=True)[
        "is_anomaly"
    ].to_numpy(),
    "batch IQR (k 3)": lambda s: detect_anomalies(s, "iqr")["is_anomaly"].to_numpy(),
    "spike rule (`detect_spikes`, for cleaning; not an event detector)": lambda s: detect_spikes(s),
}
#: batch robust STL: ~1-2 s CPU per call on the 17k-34k-row series (288 calls); only with --batch-residual
BATCH_RESIDUAL = {
    "batch residual (STL, c 5)": lambda s: detect_anomalies(s, "residual")["is_anomaly"].to_numpy(),
}


GLITCHES = ("glitch", "3-row glitch", "drop-out")
GLITCHES_PER_COPY = 5
#: series whose values were looked at while choosing detect_spikes' settings (bench.accuracy.real_days)
SEEN_BY_SPIKE_RULE = (
    "b4b 917810",
    "b4b 925038",
    "occupancy datatraining CO2",
    "occupancy datatraining Light",
    "ett ETTh1 OT",
)


def _alarms(s: pd.Series) -> np.ndarray:
    return detect_anomalies(s, causal=True)["is_anomaly"].to_numpy()


CLEANING: dict[str, Callable[[pd.Series], np.ndarray]] = {
    "alarms (default causal)": _alarms,
    "spike rule (`detect_spikes`)": lambda s: detect_spikes(s),
    "**both** (`denoised_readings`' `is_anomaly`)": lambda s: _alarms(s) | detect_spikes(s),
}


def inject_glitches(series: pd.Series, kind: str) -> tuple[pd.Series, np.ndarray]:
    """A copy with ``GLITCHES_PER_COPY`` glitches of ``kind`` a third of a day apart from half the series;
    returns (copy, the injected rows)."""
    spread, _noise, day = scales(series)
    values = series.to_numpy().copy()
    first, gap = len(values) // 2, max(day // 3, 4)
    rows: list[int] = []
    for k in range(GLITCHES_PER_COPY):
        start = first + k * gap
        if kind == "glitch":
            values[start] += (1 if k % 2 == 0 else -1) * 10 * spread
            rows.append(start)
        elif kind == "3-row glitch":
            values[start : start + 3] += 10 * spread
            rows.extend(range(start, start + 3))
        elif kind == "drop-out":
            values[start] = float(np.quantile(series.to_numpy(), 0.001)) - 3 * spread
            rows.append(start)
        else:
            raise ValueError(kind)
    return pd.Series(values, index=series.index), np.array(rows)


def evaluate_glitches(series: dict[str, pd.Series], detector: Callable[[pd.Series], np.ndarray]) -> dict:
    """Per (seen by the spike rule's design?, kind): rows injected, rows flagged, all flags after 40 %."""
    out = {(seen, kind): [0, 0, 0] for seen in (True, False) for kind in GLITCHES}
    for name, s in series.items():
        seen = name.startswith(SEEN_BY_SPIKE_RULE)
        for kind in GLITCHES:
            copy, rows = inject_glitches(s, kind)
            flags = detector(copy)
            counts = out[(seen, kind)]
            counts[0] += len(rows)
            counts[1] += int(flags[rows].sum())
            counts[2] += int(flags[int(0.4 * len(s)) :].sum())
    return out


def evaluate(series: dict[str, pd.Series], detector: Callable[[pd.Series], np.ndarray]) -> dict:
    """Per kind: detected, injected, delays (rows, hours), flags inside / after 40 %; and clean false
    alarms per day."""
    per_kind = {
        kind: {"hit": 0, "n": 0, "delay_rows": [], "delay_h": [], "inside": 0, "flags": 0} for kind in KINDS
    }
    clean_flags, clean_days = 0, 0.0
    for s in series.values():
        n = len(s)
        first = int(0.4 * n)
        flags = detector(s)
        clean_flags += int(flags[first:].sum())
        clean_days += (s.index[-1] - s.index[first]) / pd.Timedelta(days=1)
        for k, position in enumerate(POSITIONS):
            start = int(position * n)
            for kind in KINDS:
                copy, window = inject(s, kind, start, 1.0 if k % 2 == 0 else -1.0)
                flagged = np.flatnonzero(detector(copy))
                flagged = flagged[flagged >= first]
                inside = flagged[(flagged >= start) & (flagged <= start + window)]
                stats = per_kind[kind]
                stats["n"] += 1
                stats["flags"] += len(flagged)
                stats["inside"] += len(inside)
                if len(inside):
                    stats["hit"] += 1
                    stats["delay_rows"].append(int(inside[0] - start))
                    stats["delay_h"].append((s.index[inside[0]] - s.index[start]) / pd.Timedelta(hours=1))
    return {"kinds": per_kind, "clean_per_day": clean_flags / clean_days}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--write", action="store_true", help="also record the report in BENCHMARKS.md")
    parser.add_argument("--batch-residual", action="store_true", help="also the batch STL rule (slow)")
    args = parser.parse_args()
    with recorded("bench.accuracy.injected_anomalies", write=args.write):
        run(args)


def run(args: argparse.Namespace) -> None:
    series = load_series(require_datasets(args.datasets_dir, "b4b_co2", "occupancy_uci", "ett"))
    print(f"{len(series)} series, {sum(len(s) for s in series.values()):,} rows; per series and kind "
          f"{len(POSITIONS)} injections ({len(series) * len(POSITIONS)} per kind)\n")  # fmt: skip
    print("| series | rows | median step | spread | noise | rows per day |")
    print("|---|---|---|---|---|---|")
    for name, s in series.items():
        spread, noise, day = scales(s)
        steps = np.diff(s.index.asi8)
        step = pd.Timedelta(int(np.median(steps[steps > 0])), unit="ns")
        print(f"| {name} | {len(s)} | {step} | {spread:.4g} | {noise:.4g} | {day} |")
    print(
        "\n| detector | kind | recall | precision | median delay: rows (hours) | false alarms / day, clean |"
    )
    print("|---|---|---|---|---|---|")
    detectors = {**DETECTORS, **(BATCH_RESIDUAL if args.batch_residual else {})}
    for label, detector in detectors.items():
        started = time.process_time()
        result = evaluate(series, detector)
        cpu = time.process_time() - started
        hits = sum(v["hit"] for v in result["kinds"].values())
        total = sum(v["n"] for v in result["kinds"].values())
        inside = sum(v["inside"] for v in result["kinds"].values())
        flags = sum(v["flags"] for v in result["kinds"].values())
        for kind, v in result["kinds"].items():
            delay = (
                f"{np.median(v['delay_rows']):.0f} ({np.median(v['delay_h']):.2f})"
                if v["delay_rows"]
                else "-"
            )
            precision = f"{v['inside'] / v['flags']:.2f}" if v["flags"] else "-"
            print(f"| {label} | {kind} | {v['hit']}/{v['n']} | {precision} | {delay} | |")
        precision = f"{inside / flags:.2f}" if flags else "-"
        print(
            f"| {label} | **all** | **{hits}/{total}** | **{precision}** | | "
            f"{result['clean_per_day']:.2f} ({cpu:.0f} s CPU) |"
        )

    print(
        "\n**Glitches, for cleaning**: rows flagged of rows injected (recall) and injected rows flagged of"
        f" all flags after the first 40 % (precision); {GLITCHES_PER_COPY} glitches a copy, one copy per"
        " series and kind\n"
    )
    print("| flags | kind | 11 series not looked at: recall | precision | 7 looked at: recall | precision |")
    print("|---|---|---|---|---|---|")
    for label, detector in CLEANING.items():
        result = evaluate_glitches(series, detector)
        for kind in GLITCHES:
            cells = []
            for seen in (False, True):
                injected, hit, flags = result[(seen, kind)]
                cells += [f"{hit}/{injected}", f"{hit / flags:.2f}" if flags else "-"]
            print(f"| {label} | {kind} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
