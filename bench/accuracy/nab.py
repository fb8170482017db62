"""NAB accuracy of our anomaly detectors beside the published NAB reference detectors, one scorer, one run.

Scores the NAB data files shipped in ``<datasets-dir>/nab`` (33 files, 71 windows; the first 11 and the 22
DEV files reported apart too) with ``nab_scorer`` (a re-implementation of NAB's scoring: windows, scaled
sigmoid, cost profiles, null/perfect normalisation over the windows of the set scored):

1. the reference detectors' per-row ``anomaly_score`` (``nab/results/<detector>/...``) at NAB's published,
   corpus-optimised thresholds (``config/thresholds.json``), checked against SCORING.md §9, and with the
   threshold re-optimised on the 33 files;
2. **the default call** ``detect_anomalies(series, causal=True)`` (the streaming anomaly likelihood), its own
   alarms (``is_anomaly``) as NAB detections: no threshold and no parameter chosen on NAB labels at run time;
   beside it its score at a re-optimised threshold, the batch detectors (not streaming, for reference) and the
   previous tuned causal detector (parameters frozen as they were chosen on the 11 first files);
3. leave-one-category-out (a category = a NAB folder): for each held-out category, the (alarm_tail,
   record_margin) pair of a 3 x 3 grid with the best score on the other 6 categories, applied to the held-out
   one; in-sample and out-of-sample side by side, per category; then the same choosing the structure too
   (flagged row, seasonal stream, refractory period: 108 configurations);
4. per-file raw scores beside Numenta HTM and ARTime;
5. speed of the default call on 1M samples (CPU and wall time, one core).
Run: ``.venv/bin/python -m bench.accuracy.nab [--datasets-dir ../shared/datasets] [--write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from bench.accuracy.nab_scorer import (
    PROFILES,
    LabelledFile,
    labelled_file,
    load_windows,
    normalised,
    optimise_threshold,
    raw_score,
)
from bench.datasets_dir import DEFAULT_DATASETS_DIR, require_datasets
from bench.record import recorded
from tsplatform.timeseries import detect_anomalies, seasonal_periods
from tsplatform.timeseries.anomaly_likelihood import (
    SEASONAL_GATE,
    SHORT_WINDOW,
    detect_likelihood,
    likelihood_settings,
)

REPO = Path(__file__).resolve().parents[2]

REFERENCES = ("ARTime", "numenta", "contextOSE", "knncad", "windowedGaussian", "random", "null")
#: SCORING.md §9, published standard threshold: (11 first files, 22 DEV files, all 33)
EXPECTED_STANDARD = {
    "ARTime": (63.70, 76.23, 71.47),
    "numenta": (58.76, 74.19, 68.32),
    "contextOSE": (45.95, 76.59, 64.94),
    "knncad": (47.50, 60.02, 55.25),
    "windowedGaussian": (26.43, 45.60, 38.31),
    "random": (26.12, 14.19, 18.73),
    "null": (0.0, 0.0, 0.0),
}
#: the 11 files shared first (the rest are SCORING.md's DEV files)
FIRST_FILES = (
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "realAWSCloudwatch/grok_asg_anomaly.csv",
    "realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv",
    "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
    "realKnownCause/ambient_temperature_system_failure.csv",
    "realKnownCause/cpu_utilization_asg_misconfiguration.csv",
    "realKnownCause/ec2_request_latency_system_failure.csv",
    "realKnownCause/machine_temperature_system_failure.csv",
    "realKnownCause/nyc_taxi.csv",
    "realKnownCause/rogue_agent_key_hold.csv",
    "realKnownCause/rogue_agent_key_updown.csv",
)
#: the previous tuned causal detector (bench of 2026-11-26), frozen: chosen on the 11 first files
PREVIOUS_TUNED = {"window": 288, "scale_window": 3000, "n_cycles": 5, "smooth": 10, "surprise_window": 5000,
                  "z_clip": 100.0, "c": 5.75, "refractory": 200}  # fmt: skip
#: leave-one-category-out grid around the defaults (alarm_tail 1e-5, record_margin 0.01)
ALARM_TAILS = (1e-6, 1e-5, 1e-4)
RECORD_MARGINS = (None, 0.01, 0.05)
#: refractory periods of the structure-aware leave-one-category-out (the default: one day)
STRUCTURE_REFRACTORY = (pd.Timedelta(hours=12), pd.Timedelta(days=1), pd.Timedelta(days=2))


def load_corpus(root: Path) -> tuple[dict[str, LabelledFile], dict[str, pd.Series]]:
    windows = load_windows(root / "labels" / "combined_windows.json")
    files, series = {}, {}
    for name in sorted(windows):
        path = root / name
        if not path.exists():
            continue
        frame = pd.read_csv(path)
        stamps = pd.to_datetime(frame["timestamp"])
        files[name] = labelled_file(name, stamps, windows[name])
        series[name] = pd.Series(
            frame["value"].to_numpy(float), index=pd.DatetimeIndex(stamps).tz_localize("UTC")
        )
    return files, series


def reference_scores(root: Path, detector: str, names: list[str]) -> dict[str, np.ndarray]:
    scores = {}
    for name in names:
        category, file_name = name.split("/")
        frame = pd.read_csv(root / "results" / detector / category / f"{detector}_{file_name}")
        scores[name] = frame["anomaly_score"].to_numpy(float)
    return scores


def set_score(
    scores: dict[str, np.ndarray],
    files: dict[str, LabelledFile],
    names: list[str],
    profile: str,
    theta: float,
) -> float:
    """Normalised score of ``names`` (detection = score >= theta), over those files' windows."""
    cost = PROFILES[profile]
    total = sum(raw_score(scores[n], files[n], cost, theta) for n in names)
    return normalised(total, sum(len(files[n].windows) for n in names), cost)


def default_alarms(series: pd.Series, **params: float | None) -> np.ndarray:
    return detect_anomalies(series, causal=True, **params)["is_anomaly"].to_numpy(dtype=float)


def previous_tuned_alarms(series: pd.Series) -> np.ndarray:
    steps = np.diff(series.index.asi8)
    weekly = seasonal_periods(pd.Timedelta(int(np.median(steps[steps > 0])), unit="ns"))[-1:]
    result = detect_anomalies(series, "residual", causal=True, periods=weekly, **PREVIOUS_TUNED)
    return result["is_anomaly"].to_numpy(dtype=float)


def timed(detector: Callable[[pd.Series], np.ndarray], series: dict[str, pd.Series]) -> tuple[dict, float]:
    started = time.process_time()
    scores = {name: np.nan_to_num(detector(s)) for name, s in series.items()}
    return scores, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--write", action="store_true", help="also record the report in BENCHMARKS.md")
    args = parser.parse_args()
    with recorded("bench.accuracy.nab", write=args.write):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark itself; prints its report (markdown)."""
    root = require_datasets(args.datasets_dir, "nab") / "nab"
    files, series = load_corpus(root)
    names = list(files)
    first = [n for n in names if n in FIRST_FILES]
    dev = [n for n in names if n not in FIRST_FILES]
    sets = {"11 first": first, "22 DEV": dev, "all 33": names}
    windows = {label: sum(len(files[n].windows) for n in group) for label, group in sets.items()}
    print(
        f"{len(names)} files, {windows['all 33']} windows, {sum(f.n_rows for f in files.values())} rows "
        f"(11 first files: {windows['11 first']} windows; 22 DEV files: {windows['22 DEV']})\n"
    )
    thresholds = json.loads((root / "config" / "thresholds.json").read_text())
    print(
        "### Scores on the 33 files (standard / low FP / low FN; standard on the 11 first and the 22 DEV)\n"
    )
    print(
        "| detector | causal | threshold | all 33: standard / low FP / low FN | 11 first: standard "
        "| 22 DEV: standard |"
    )
    print("|---|---|---|---|---|---|")
    reference = {}
    for detector in REFERENCES:
        scores = reference_scores(root, detector, names)
        reference[detector] = scores
        published = {p: thresholds[detector][p]["threshold"] for p in PROFILES}
        profiles = [set_score(scores, files, names, p, published[p]) for p in PROFILES]
        by_set = [set_score(scores, files, sets[s], "standard", published["standard"]) for s in sets]
        check = "" if np.allclose(by_set, EXPECTED_STANDARD[detector], atol=0.005) else " **MISMATCH**"
        print(
            f"| {detector} (NAB reference) | yes | published "
            f"| {' / '.join(f'{v:.2f}' for v in profiles)}{check} | {by_set[0]:.2f} | {by_set[1]:.2f} |"
        )
        theta, total = optimise_threshold(scores, files, PROFILES["standard"])
        print(
            f"| {detector} (NAB reference) | yes | optimised on the 33 ({theta:.6g}) "
            f"| {normalised(total, windows['all 33'], PROFILES['standard']):.2f} | | |"
        )
    ours: dict[str, tuple[bool, Callable[[pd.Series], np.ndarray], bool]] = {
        "**default: `detect_anomalies(s, causal=True)`, its alarms**": (True, default_alarms, True),
        "default call, its score at an optimised threshold": (
            True, lambda s: detect_anomalies(s, causal=True)["score"].to_numpy(), False),
        "previous tuned causal residual (frozen, chosen on the 11 first), its alarms": (
            True, previous_tuned_alarms, True),
        "iqr (batch, k 3), its flags": (
            False, lambda s: detect_anomalies(s, "iqr")["is_anomaly"].to_numpy(float), True),
        "iqr (batch), its score at an optimised threshold": (
            False, lambda s: detect_anomalies(s, "iqr")["score"].to_numpy(), False),
        "residual (batch, STL, c 5), its flags": (
            False, lambda s: detect_anomalies(s, "residual")["is_anomaly"].to_numpy(float), True),
        "residual (batch), its score at an optimised threshold": (
            False, lambda s: detect_anomalies(s, "residual")["score"].to_numpy(), False),
    }  # fmt: skip
    default_scores: dict[str, np.ndarray] = {}
    for label, (causal, detector, own_alarms) in ours.items():
        scores, cpu = timed(detector, series)
        if not default_scores:
            default_scores = scores
        if own_alarms:
            profiles = [set_score(scores, files, names, p, 0.5) for p in PROFILES]
            by_set = [set_score(scores, files, sets[s], "standard", 0.5) for s in sets]
            n_alarms = int(sum(a.sum() for a in scores.values()))
            print(
                f"| {label} | {'yes' if causal else 'no'} | none ({n_alarms} alarms; {cpu:.1f} s CPU) "
                f"| {' / '.join(f'{v:.2f}' for v in profiles)} | {by_set[0]:.2f} | {by_set[1]:.2f} |"
            )
        else:
            theta, total = optimise_threshold(scores, files, PROFILES["standard"])
            print(
                f"| {label} | {'yes' if causal else 'no'} | optimised on the 33 ({theta:.6g}) "
                f"| {normalised(total, windows['all 33'], PROFILES['standard']):.2f} | | |"
            )
    report_leave_one_category_out(files, series, default_scores)
    report_structure_aware_loco(files, series)
    report_per_file(files, default_scores, reference, thresholds)
    report_speed()


def folds(names: list[str]) -> list[tuple[str, list[str]]]:
    """(category, its files) for each NAB folder among ``names``, in name order: the held-out folds."""
    categories = sorted({n.split("/")[0] for n in names})
    return [(c, [n for n in names if n.startswith(c + "/")]) for c in categories]


def best_on_the_others(raw: list[dict[str, float]], held: list[str]) -> int:
    """The index of the configuration (``raw[i]``: file -> raw score) with the best summed raw score on the
    files not in ``held``."""
    held_out = set(held)
    return int(np.argmax([sum(v for n, v in r.items() if n not in held_out) for r in raw]))


def held_out_choices(
    raw: list[dict[str, float]], names: list[str]
) -> Iterator[tuple[str, list[str], int, float]]:
    """Leave-one-category-out: per folder, (category, its files, the configuration chosen on the other
    folders, that configuration's summed raw score on the held-out files)."""
    for category, held in folds(names):
        best = best_on_the_others(raw, held)
        yield category, held, best, sum(raw[best][n] for n in held)


def report_leave_one_category_out(
    files: dict[str, LabelledFile], series: dict[str, pd.Series], default_scores: dict[str, np.ndarray]
) -> None:
    names = list(files)
    standard = PROFILES["standard"]
    grid = [(tail, margin) for tail in ALARM_TAILS for margin in RECORD_MARGINS]
    raw = []  # per grid point: {file: raw S}
    for tail, margin in grid:
        raw.append(
            {n: raw_score(default_alarms(s, alarm_tail=tail, record_margin=margin), files[n], standard, 0.5)
             for n, s in series.items()}
        )  # fmt: skip
    default_raw = {n: raw_score(default_scores[n], files[n], standard, 0.5) for n in names}
    n_windows = sum(len(f.windows) for f in files.values())
    print("\n### Leave-one-category-out (standard profile, alarms)\n")
    print(
        f"Grid: alarm_tail {ALARM_TAILS} x record_margin {tuple(RECORD_MARGINS)} (defaults 1e-05, 0.01)."
        "\nFor each held-out NAB folder the pair with the best summed raw score on the other folders"
        " is applied to it."
        "\n"
    )
    print("| held-out category | files | windows | chosen on the others (alarm_tail, record_margin) "
          "| raw S out-of-sample | raw S, defaults | raw S, best pair for it (in-sample) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    total_out = 0.0
    for category, held, best, out in held_out_choices(raw, names):
        total_out += out
        best_in = max(sum(r[n] for n in held) for r in raw)
        print(
            f"| {category} | {len(held)} | {sum(len(files[n].windows) for n in held)} | {grid[best]} "
            f"| {out:.3f} | {sum(default_raw[n] for n in held):.3f} | {best_in:.3f} |"
        )
    in_sample_default = normalised(sum(default_raw.values()), n_windows, standard)
    in_sample_best = max(normalised(sum(r.values()), n_windows, standard) for r in raw)
    print(
        f"\n**In-sample, defaults: {in_sample_default:.2f}; in-sample, best grid pair: {in_sample_best:.2f}; "
        f"leave-one-category-out: {normalised(total_out, n_windows, standard):.2f}** (standard, 33 files)."
    )
    print("Whole grid, in-sample standard score on the 33 files:")
    for (tail, margin), r in zip(grid, raw, strict=True):
        score = normalised(sum(r.values()), n_windows, standard)
        print(f"- alarm_tail {tail:g}, record_margin {margin}: {score:.2f}")


def structure_alarms(
    series: pd.Series,
    step: pd.Timedelta,
    onsets: bool,
    seasonal: bool,
    refractory: pd.Timedelta,
    tail: float,
    margin: float | None,
) -> np.ndarray:
    """The default call's alarms with its structural switches set: the flagged row (onset or the alarm's
    own row), the seasonal stream on or off, the refractory period (at least SHORT_WINDOW of the series'
    ``step``s), the grid pair."""
    _, alarms = detect_likelihood(
        series,
        alarm_tail=tail,
        record_margin=margin,
        seasonal_gate=SEASONAL_GATE if seasonal else None,
        flag_onsets=onsets,
        refractory=max(refractory, SHORT_WINDOW * step),
    )
    return alarms.astype(float)


def report_structure_aware_loco(files: dict[str, LabelledFile], series: dict[str, pd.Series]) -> None:
    """Leave-one-category-out that also chooses the structure: for each held-out folder, the configuration
    (every structural switch the code has x the 3 x 3 grid) with the best summed raw score on the others."""
    names = list(files)
    standard = PROFILES["standard"]
    configs = [
        (onsets, seasonal, refractory, tail, margin)
        for onsets in (True, False)
        for seasonal in (True, False)
        for refractory in STRUCTURE_REFRACTORY
        for tail in ALARM_TAILS
        for margin in RECORD_MARGINS
    ]
    steps = {n: likelihood_settings(pd.DatetimeIndex(s.index)).step for n, s in series.items()}  # once each
    raw = [
        {n: raw_score(structure_alarms(s, steps[n], *c), files[n], standard, 0.5) for n, s in series.items()}
        for c in configs
    ]
    default = configs.index((True, True, pd.Timedelta(days=1), 1e-5, 0.01))
    n_windows = sum(len(f.windows) for f in files.values())
    print("\n### Structure-aware leave-one-category-out (standard profile, alarms)\n")
    print(
        f"{len(configs)} configurations: flagged row (the event's onset / the alarm's own row) x seasonal "
        f"stream (on / off) x refractory period ({' / '.join(str(r) for r in STRUCTURE_REFRACTORY)}) x the "
        "3 x 3 grid. For each held-out folder the configuration with the best summed raw score on the other "
        "folders is applied to it.\n"
    )
    print("| held-out category | chosen on the others (onset, seasonal, refractory, alarm_tail, "
          "record_margin) | raw S out-of-sample | raw S, defaults |")  # fmt: skip
    print("|---|---|---|---|")
    total_out = 0.0
    for category, held, best, out in held_out_choices(raw, names):
        total_out += out
        onsets, seasonal, refractory, tail, margin = configs[best]
        print(
            f"| {category} | ({onsets}, {seasonal}, {refractory}, {tail:g}, {margin}) | {out:.3f} "
            f"| {sum(raw[default][n] for n in held):.3f} |"
        )
    in_sample = [normalised(sum(r.values()), n_windows, standard) for r in raw]
    best_config = configs[int(np.argmax(in_sample))]
    print(
        f"\n**In-sample, defaults: {in_sample[default]:.2f}; in-sample, best configuration: "
        f"{max(in_sample):.2f} {best_config}; structure-aware leave-one-category-out: "
        f"{normalised(total_out, n_windows, standard):.2f}** (standard, 33 files)."
    )


def report_per_file(
    files: dict[str, LabelledFile], ours: dict[str, np.ndarray], reference: dict[str, dict], thresholds: dict
) -> None:
    standard = PROFILES["standard"]
    print("\n### Per file: raw standard score (alarms after the probation)\n")
    print("| file | windows | default call | Numenta HTM | ARTime |")
    print("|---|---|---|---|---|")
    for name, labelled in files.items():
        cells = [f"{raw_score(ours[name], labelled, standard, 0.5):.3f} ({int(ours[name].sum())})"]
        for detector in ("numenta", "ARTime"):
            theta = thresholds[detector]["standard"]["threshold"]
            detections = (reference[detector][name] >= theta).astype(float)
            cells.append(f"{raw_score(detections, labelled, standard, 0.5):.3f} ({int(detections.sum())})")
        print(f"| {name} | {len(labelled.windows)} | {' | '.join(cells)} |")
    print("(in brackets: rows flagged, probation included)")


def report_speed() -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    values = 10 * np.sin(2 * np.pi * np.arange(n) / 1440) + rng.normal(0, 1, n)
    values[rng.integers(0, n, 50)] += 30.0
    series = pd.Series(values, index=index)
    detect_anomalies(series.iloc[:10_000], causal=True)  # imports, caches
    cpu, wall = [], []
    for _ in range(3):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        detect_anomalies(series, causal=True)
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started_wall)
    print(
        "\n### Speed\n\nDefault causal call on 1,000,000 1-minute samples (sine + noise + 50 spikes),"
        " best of 3: "
        f"{min(cpu):.2f} s CPU, {min(wall):.2f} s wall (load average {os.getloadavg()[0]:.1f}); goal <= 5 s."
    )


if __name__ == "__main__":
    main()
