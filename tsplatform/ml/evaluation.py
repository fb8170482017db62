"""Forecast error metrics and rolling-origin evaluation.

Metrics compare arrays of the same shape, pooled over all points: ``mse``, ``rmse``, ``mae`` in the
values' units (squared for MSE); ``mape`` in percent of ``|actual|``, over the points whose actual is
not ~0 (|actual| > 1e-8; NaN when none is). NaN pairs are ignored by every metric.

Rolling-origin evaluation (:func:`rolling_origin_evaluate`): for a series and a range of target indices,
forecast from every origin ``o`` (stride ``stride``) whose ``horizon`` targets ``o .. o+horizon-1`` all
lie in ``[start, stop)``, from the history ``series[:o]`` (the model sees only its last
``context_length`` values), and pool the errors over all windows: the protocol of the long-horizon
benchmarks (ETTh1 etc.: stride 1, MSE averaged over every test window).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tsplatform.ml.models import Forecaster

METRICS: tuple[str, ...] = ("mse", "rmse", "mae", "mape")


def _pairs(actual: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    if a.shape != p.shape:
        raise ValueError(f"actual {a.shape} and predicted {p.shape} differ in shape")
    keep = np.isfinite(a) & np.isfinite(p)
    return a[keep], p[keep]


def mse(actual: np.ndarray, predicted: np.ndarray) -> float:
    a, p = _pairs(actual, predicted)
    return float(np.mean((p - a) ** 2)) if a.size else float("nan")


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(mse(actual, predicted)))


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    a, p = _pairs(actual, predicted)
    return float(np.mean(np.abs(p - a))) if a.size else float("nan")


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error in % over the points with |actual| > 1e-8 (NaN if none)."""
    a, p = _pairs(actual, predicted)
    keep = np.abs(a) > 1e-8
    return float(100 * np.mean(np.abs(p[keep] - a[keep]) / np.abs(a[keep]))) if keep.any() else float("nan")


def forecast_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """All of :data:`METRICS` at once."""
    return {
        "mse": mse(actual, predicted),
        "rmse": rmse(actual, predicted),
        "mae": mae(actual, predicted),
        "mape": mape(actual, predicted),
    }


@dataclass(frozen=True)
class RollingEvaluation:
    """Pooled metrics with the forecasts and actuals behind them (rows = windows, columns = steps)."""

    metrics: dict[str, float]
    origins: np.ndarray  # (n,) index of each window's first target
    predicted: np.ndarray  # (n, horizon)
    actual: np.ndarray  # (n, horizon)


def rolling_origins(start: int, stop: int, horizon: int, stride: int = 1) -> np.ndarray:
    """Origins o (first target index) with o >= start and o + horizon <= stop, every ``stride``."""
    if horizon < 1 or stride < 1:
        raise ValueError("horizon and stride must be >= 1")
    return np.arange(start, stop - horizon + 1, stride)


def rolling_origin_predictions(
    forecaster: Forecaster,
    series: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    batch: int = 8192,
) -> np.ndarray:
    """Forecasts (len(origins), horizon), each from ``series[:o]`` (its last ``context_length`` values)."""
    values = np.asarray(series, dtype=float)
    context = forecaster.context_length
    if len(origins) and origins.min() < context:
        raise ValueError(f"origin {int(origins.min())} leaves less history than context_length {context}")
    out = []
    for i in range(0, len(origins), batch):
        chunk = origins[i : i + batch]
        histories = [values[o - context : o] for o in chunk]
        out.append(forecaster.predict(histories, horizon))
    return np.concatenate(out) if out else np.empty((0, horizon))


def rolling_origin_evaluate(
    forecaster: Forecaster,
    series: np.ndarray | Sequence[np.ndarray],
    start: int | Sequence[int],
    stop: int | Sequence[int] | None = None,
    horizon: int = 1,
    stride: int = 1,
) -> RollingEvaluation:
    """Pooled metrics of ``forecaster`` over the rolling windows with targets in ``[start, stop)``.

    ``series`` is one array or a list (then ``start``/``stop`` are one value for all or one per
    series; ``stop`` defaults to each series' length). Raises ValueError when no window fits.
    """
    rows = [np.asarray(series, dtype=float)] if isinstance(series, np.ndarray) else [
        np.asarray(s, dtype=float) for s in series
    ]  # fmt: skip
    starts = [start] * len(rows) if np.isscalar(start) else list(start)  # type: ignore[list-item]
    stops = (
        [len(r) for r in rows] if stop is None else [stop] * len(rows) if np.isscalar(stop) else list(stop)
    )  # type: ignore[list-item]
    origins_all, predicted, actual = [], [], []
    for values, lo, hi in zip(rows, starts, stops, strict=True):
        origins = rolling_origins(int(lo), int(hi), horizon, stride)
        if not len(origins):
            continue
        predicted.append(rolling_origin_predictions(forecaster, values, origins, horizon))
        actual.append(np.stack([values[o : o + horizon] for o in origins]))
        origins_all.append(origins)
    if not predicted:
        raise ValueError(f"no window of horizon {horizon} fits between start and stop")
    p, a = np.concatenate(predicted), np.concatenate(actual)
    return RollingEvaluation(forecast_metrics(a, p), np.concatenate(origins_all), p, a)
