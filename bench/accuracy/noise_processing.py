"""Noise-processing study on the real B4B SCD41 CO2 series: none / drop / clip / EMA, then a forecast.

For each room (917810, 925038, 999169): the `CO2-meter-SCD4x` rows' `co2__ppm` (timestamps parsed with
utc=True), averaged onto the epoch-anchored 10-min grid (``resample(..., "10min", "mean")``) and linearly
interpolated over gaps of at most 30 min (longer gaps stay NaN; the windows that touch a NaN are
skipped). The last 20% of the grid is the held-out test tail.

Noise: ``detect_anomalies(series, "residual")`` (robust STL on the daily season, |r - median| > 3.5 robust
sigma). Processing (``denoise``): none; drop (flagged values removed, the holes re-filled by time
interpolation as the pipeline's imputation would); clip (flagged values onto the IQR fences); EMA
(``scope="all"``, alpha 0.3: the whole series EMA-smoothed with flagged values excluded, the study's "EMA
smoothing").

Forecasters, one step ahead from 12 lagged values (2 h, ``make_windows(input_len=12, horizon=1)``): the
study's LSTM (``tsplatform.ml`` ``lstm``: one value per step, 1 layer of 32 units, Adam lr 0.005, batches
of 64 windows, at most 20 epochs, early stopping with patience 4 on the last 20% of the training part,
seed 0, last-value normalisation inside the model), ridge regression (sklearn ``Ridge(alpha=1)``) and a
small MLP (``MLPRegressor(hidden_layer_sizes=(32,), random_state=0)``); min-max scaler fitted on the
training part only (``fit_scaler``), on the unprocessed values so every variant is measured on one scale.
Metrics on the test tail, RMSE and MAE on the min-max scaled values (as the study's), MAPE in % of the ppm
values, against two targets:
- raw: the observed (unprocessed) values - every variant predicts the same truth (the fair comparison);
- processed: the variant's own processed test values (what the study appears to report; EMA makes its own
  target smoother, hence easier).
Run: ``.venv/bin/python -m bench.accuracy.noise_processing [--datasets-dir ../shared/datasets]``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPRegressor

from bench.ml_common import datasets_dir
from bench.record import recorded
from tsplatform.ml.models import Forecaster, make_forecaster
from tsplatform.timeseries import denoise, detect_anomalies, fit_scaler, make_windows, resample

ROOMS = ("917810", "925038", "999169")
GRID = "10min"
MAX_FILL = 3  # samples (30 min)
INPUT_LEN = 12
TEST_FRACTION = 0.2
LSTM_VAL_FRACTION = 0.2  # of the training part, for early stopping
LSTM_PARAMS = {"input_len": INPUT_LEN, "horizon": 1, "hidden_size": 32, "num_layers": 1, "lr": 0.005,
               "patch_len": 1, "batch_size": 64, "epochs": 20, "patience": 4, "seed": 0}  # fmt: skip
STUDY = {"none": (0.8867, 0.5924, 10.32), "drop": (0.5939, 0.4984, 8.68), "clip": (0.5784, 0.4672, 8.41),
         "ema": (0.3513, 0.1815, 4.79)}  # fmt: skip


def load_room(datasets_dir: Path, room: str) -> pd.Series:
    frame = pd.read_csv(datasets_dir / "b4b_co2" / f"{room}_raw_properties.csv", low_memory=False)
    frame = frame[(frame["source"] == "CO2-meter-SCD4x") & frame["co2__ppm"].notna()]
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], utc=True))
    series = pd.Series(frame["co2__ppm"].to_numpy(float), index=index, name=room).sort_index()
    series = series.groupby(level=0).mean()  # same-timestamp duplicates
    return resample(series, GRID, "mean").interpolate(method="time", limit=MAX_FILL, limit_area="inside")


def processed_variants(series: pd.Series) -> tuple[dict[str, pd.Series], int]:
    flags = detect_anomalies(series, "residual")
    dropped = denoise(series, flags, "drop").reindex(series.index)
    refilled = dropped.interpolate(method="time", limit_area="inside").where(series.notna())
    return {
        "none": series,
        "drop": refilled,
        "clip": denoise(series, flags, "clip"),
        "ema": denoise(series, flags, "ema", alpha=0.3, scope="all"),
    }, int(flags["is_anomaly"].sum())


def windows_without_nan(
    inputs: np.ndarray, targets: np.ndarray, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """One-step windows whose target row t is in [start, stop); inputs rows t-INPUT_LEN..t-1."""
    X, _ = make_windows(inputs, INPUT_LEN, 1)
    _, y = make_windows(targets, INPUT_LEN, 1)
    target_rows = np.arange(INPUT_LEN, len(inputs))
    keep = (target_rows >= start) & (target_rows < stop) & ~np.isnan(X).any(axis=1) & ~np.isnan(y[:, 0])
    return X[keep], y[keep, 0]


def evaluate(
    raw: pd.Series, variant: pd.Series, model_name: str
) -> dict[str, tuple[float, float, float, int]]:
    split = int(len(raw) * (1 - TEST_FRACTION))
    scaler = fit_scaler(raw.iloc[:split], kind="minmax")  # one scale for all variants: comparable errors
    x_scaled = np.asarray(scaler.transform(variant.to_numpy()))
    X_train, y_train = windows_without_nan(x_scaled, x_scaled, 0, split)
    if model_name == "lstm":
        cut = int(split * (1 - LSTM_VAL_FRACTION))
        lstm = make_forecaster("lstm", **LSTM_PARAMS).fit([x_scaled[:cut]], [x_scaled[cut:split]])
        model = _RowForecaster(lstm)
    elif model_name == "ridge":
        model = Ridge(alpha=1.0)
    else:
        model = MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, y_train)
    result = {}
    for target_name, target in (("raw", raw), ("processed", variant)):
        t_scaled = np.asarray(scaler.transform(target.to_numpy()))
        X_test, y_test = windows_without_nan(x_scaled, t_scaled, split, len(raw))
        predicted = model.predict(X_test)
        error = predicted - y_test
        ppm_true = np.asarray(scaler.inverse_transform(y_test))
        ppm_pred = np.asarray(scaler.inverse_transform(predicted))
        result[target_name] = (
            float(np.sqrt(np.mean(error**2))),
            float(np.mean(np.abs(error))),
            float(100 * np.mean(np.abs(ppm_pred - ppm_true) / np.abs(ppm_true))),
            len(y_test),
        )
    return result


class _RowForecaster:
    """sklearn-style ``predict(X)`` over the rows of X (each a 12-value history) for a tsplatform model."""

    def __init__(self, model: Forecaster) -> None:
        self.model = model

    def fit(self, X: np.ndarray, y: np.ndarray) -> _RowForecaster:
        return self  # fitted on the series itself (its own windows, early stopping on validation)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(list(X), 1)[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=None, help="default: ../shared/datasets")
    parser.add_argument("--write", action="store_true", help="also record the report in BENCHMARKS.md")
    args = parser.parse_args()
    with recorded("bench.accuracy.noise_processing", write=args.write):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark itself; prints its report (markdown)."""
    import torch

    torch.set_num_threads(1)
    args.datasets_dir = datasets_dir(args.datasets_dir)
    rows = []
    for room in ROOMS:
        raw = load_room(args.datasets_dir, room)
        variants, n_flagged = processed_variants(raw)
        print(f"room {room}: {raw.notna().sum()} grid values, {n_flagged} flagged by residual analysis")
        for model_name in ("lstm", "ridge", "mlp"):
            for name, variant in variants.items():
                for target_name, metrics in evaluate(raw, variant, model_name).items():
                    rows.append((room, model_name, name, target_name, *metrics))
    table = pd.DataFrame(rows, columns=["room", "model", "processing", "target", "rmse", "mae", "mape", "n"])
    print()
    print(
        "| model | target | processing | RMSE (scaled) | MAE (scaled) | MAPE % (ppm) | study RMSE/MAE/MAPE |"
    )
    print("|---|---|---|---|---|---|---|")
    for (model_name, target_name, name), group in table.groupby(
        ["model", "target", "processing"], sort=False
    ):
        weights = group["n"] / group["n"].sum()
        rmse = float(np.sqrt((weights * group["rmse"] ** 2).sum()))
        mae = float((weights * group["mae"]).sum())
        mape = float((weights * group["mape"]).sum())
        study = " / ".join(f"{v:g}" for v in STUDY[name])
        print(f"| {model_name} | {target_name} | {name} | {rmse:.4f} | {mae:.4f} | {mape:.2f} | {study} |")
    print()
    for model_name in ("lstm", "ridge"):
        print(f"\nper room ({model_name}, raw target): " + "; ".join(
            f"{r.room} {r.processing} {r.rmse:.4f}/{r.mae:.4f}/{r.mape:.2f}"
            for r in table[(table.model == model_name) & (table.target == "raw")].itertuples()
        ))  # fmt: skip


if __name__ == "__main__":
    main()
