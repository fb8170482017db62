"""NAB's artificial "daily pattern" anomalies injected into NAB's two anomaly-free daily series.

NAB's artificial set has daily square-ish waves (low at night, high by day) in which one day breaks the
pattern: the jump up does not come, the high phase is flat at a middle level, or it jumps lower or higher.
A one-step (random-walk) forecast sees nothing unusual in a day that stays low or flat: only the time of day
says the value is wrong. This benchmark injects those kinds into ``artificialNoAnomaly/art_daily_small_noise``
and ``art_daily_perfect_square_wave`` (14 days at 5 minutes each, no anomaly; NAB scores them as clean), one
copy per injection, on the high phase of one day (days 4 to 12):

- no jump: the high phase stays at the day's low level;
- flat middle: the high phase at the middle of the low and high levels;
- jump down / jump up: the high phase lowered / raised by a quarter of the low-high difference.

Noise of the series' own level (1.4826 * MAD of its first differences / sqrt(2)) is added to the injected
values. An injection is **detected** when a flag falls within 12 hours of the high phase's start (NAB's
window on these files is ~1.4 days, centred on the anomaly); delay = first such flag - start. False alarms
per day are counted on the untouched series and outside those windows. Detectors: the default
``detect_anomalies(s, causal=True)`` and the same without its seasonal stream (``seasonal_gate=None``).
The series were not used to choose the seasonal stream's gate (that came from NAB's 33 files: their real
series stay under it but for 3.7 % of one file's rows, these two reach 0.99-1.0), but its design was aimed
at this kind of anomaly, so this is a check that it works as meant, not evidence of generality; the generality
checks are ``bench.accuracy.nab`` (every file unchanged) and ``bench.accuracy.injected_anomalies``.

Run: ``.venv/bin/python -m bench.accuracy.daily_pattern [--datasets-dir ../shared/datasets] [--write]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.accuracy.nab import default_alarms
from bench.datasets_dir import DEFAULT_DATASETS_DIR, require_datasets
from bench.record import recorded

FILES = ("art_daily_small_noise.csv", "art_daily_perfect_square_wave.csv")
DAYS = tuple(range(4, 13))
KINDS = ("no jump", "flat middle", "jump down", "jump up")
WINDOW = pd.Timedelta(hours=12)
DETECTORS: dict[str, Callable[[pd.Series], np.ndarray]] = {
    "default causal call": lambda s: default_alarms(s).astype(bool),
    "without the seasonal stream": lambda s: default_alarms(s, seasonal_gate=None).astype(bool),
}


def load(root: Path) -> dict[str, pd.Series]:
    series = {}
    for name in FILES:
        frame = pd.read_csv(root / "nab" / "artificialNoAnomaly" / name)
        index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"])).tz_localize("UTC")
        series[name] = pd.Series(frame["value"].to_numpy(float), index=index)
    return series


def inject(series: pd.Series, kind: str, day: int, seed: int) -> tuple[pd.Series, pd.Timestamp]:
    """A copy of ``series`` with ``kind`` on the high phase of day ``day``, and the phase's start."""
    values = series.to_numpy(dtype=float).copy()
    low, high = np.quantile(values, [0.1, 0.9])
    day_of_row = (series.index - series.index[0]) // pd.Timedelta(days=1)
    rows = np.flatnonzero((day_of_row == day) & (values > (low + high) / 2))
    noise = 1.4826 * np.median(np.abs(np.diff(values) - np.median(np.diff(values)))) / np.sqrt(2)
    jitter = np.random.default_rng(seed).normal(0.0, noise, rows.size) if noise > 0 else 0.0
    new = {
        "no jump": low + jitter,
        "flat middle": (low + high) / 2 + jitter,
        "jump down": values[rows] - (high - low) / 4,
        "jump up": values[rows] + (high - low) / 4,
    }[kind]
    values[rows] = new
    return pd.Series(values, index=series.index), series.index[rows[0]]


def run(root: Path) -> None:
    series = load(root)
    print(f"{len(series)} series x {len(KINDS)} kinds x {len(DAYS)} days = "
          f"{len(series) * len(KINDS) * len(DAYS)} injections\n")  # fmt: skip
    print("| detector | kind | detected | median delay (hours) | false alarms / day, outside the windows |")
    print("|---|---|---|---|---|")
    for label, detect in DETECTORS.items():
        clean_alarms = sum(int(detect(s).sum()) for s in series.values())
        clean_days = sum((s.index[-1] - s.index[0]) / pd.Timedelta(days=1) for s in series.values())
        total = 0
        for kind in KINDS:
            found, delays, false, days = 0, [], 0, 0.0
            for i, clean in enumerate(series.values()):
                for day in DAYS:
                    copy, start = inject(clean, kind, day, seed=1000 * i + day)
                    flags = copy.index[detect(copy)]
                    near = flags[(flags >= start - WINDOW) & (flags <= start + WINDOW)]
                    if len(near):
                        found += 1
                        delays.append((near[0] - start) / pd.Timedelta(hours=1))
                    false += len(flags) - len(near)
                    days += (copy.index[-1] - copy.index[0]) / pd.Timedelta(days=1) - 1
            n = len(series) * len(DAYS)
            total += found
            delay = f"{np.median(delays):.1f}" if delays else "-"
            print(f"| {label} | {kind} | {found}/{n} | {delay} | {false / days:.2f} |")
        print(f"| **{label}** | **all** | **{total}/{len(KINDS) * n}** | | untouched series: "
              f"{clean_alarms / clean_days:.2f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--write", action="store_true", help="also record the report in BENCHMARKS.md")
    args = parser.parse_args()
    with recorded("bench.accuracy.daily_pattern", write=args.write):
        run(require_datasets(args.datasets_dir, "nab"))


if __name__ == "__main__":
    main()
