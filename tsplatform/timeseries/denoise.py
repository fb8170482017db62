"""Noise processing: what to do with the points flagged by ``detect_anomalies``.

- ``drop``: remove the flagged rows (the index shrinks; gaps can be re-detected and imputed downstream).
- ``clip``: move each flagged value onto the nearer bound it crossed: values above ``upper`` become ``upper``,
  below ``lower`` become ``lower``. Bounds are ``lower=`` / ``upper=`` when given, else the IQR fences
  Q1 - k*IQR, Q3 + k*IQR (``k`` = 1.5) of the unflagged values. A flagged value already inside the bounds
  (e.g. flagged by residual analysis) is kept as is.
- ``ema``: exponential moving average with smoothing factor ``alpha`` (0.3), computed over the unflagged
values
  only (flagged and NaN values are skipped, ``ignore_na``): ``m_t = alpha * x_t + (1 - alpha) * m_{t-1}``.
  ``scope="flagged"`` (default) replaces each flagged value by the EMA of the values preceding it (causal) and
  keeps the others; ``scope="all"`` returns the whole EMA-smoothed series (the study's "EMA smoothing"), still
  with flagged values excluded from the average. A flagged value with no unflagged value before it stays NaN.
NaN values in the input stay NaN (they are not noise). Flags are a bool Series on the same index, or the
DataFrame from ``detect_anomalies`` (its ``is_anomaly`` column); NaN flags count as False.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from tsplatform.timeseries.period import linear_quantiles

DenoiseMethod = Literal["drop", "clip", "ema"]
METHODS: tuple[str, ...] = ("drop", "clip", "ema")


def _flags_for(series: pd.Series, flags: pd.Series | pd.DataFrame) -> np.ndarray:
    if isinstance(flags, pd.DataFrame):
        if "is_anomaly" not in flags:
            raise ValueError("flags DataFrame needs an 'is_anomaly' column")
        flags = flags["is_anomaly"]
    if len(flags) != len(series) or not flags.index.equals(series.index):
        raise ValueError("flags must be indexed exactly like the series")
    if flags.dtype == bool:  # nothing to fill (a bool column has no NaN)
        return flags.to_numpy()
    return flags.fillna(False).to_numpy(dtype=bool)


def iqr_fences(values: np.ndarray, k: float = 1.5) -> tuple[float, float]:
    """(Q1 - k*IQR, Q3 + k*IQR) of the non-NaN values; (NaN, NaN) when there are none."""
    observed = values[~np.isnan(values)]
    if observed.size == 0:
        return float("nan"), float("nan")
    q1, q3 = linear_quantiles(observed, (0.25, 0.75))  # = np.quantile(observed, [0.25, 0.75]), cheaper
    return float(q1 - k * (q3 - q1)), float(q3 + k * (q3 - q1))


def denoise(
    series: pd.Series, flags: pd.Series | pd.DataFrame, method: DenoiseMethod = "drop", **params: Any
) -> pd.Series:
    """Process the flagged points of ``series`` with ``method`` (see the module docstring for the
    definitions).

    Params: clip: ``lower``, ``upper``, ``k``; ema: ``alpha`` in (0, 1], ``scope`` ("flagged" | "all").
    Raises ValueError for an unknown method, scope or parameter, alpha outside (0, 1], or misaligned flags.
    """
    if method not in METHODS:
        raise ValueError(f"unknown denoise method {method!r}; expected one of {METHODS}")
    flagged = _flags_for(series, flags)
    values = series.to_numpy(dtype=float)
    if method == "drop":
        _no_params(method, params)
        return series[~flagged]
    if method == "clip":
        return pd.Series(_clip(values, flagged, **params), index=series.index, name=series.name)
    return pd.Series(_ema(values, flagged, **params), index=series.index, name=series.name)


def _no_params(method: str, params: dict[str, Any]) -> None:
    if params:
        raise ValueError(f"unexpected parameter(s) for method {method!r}: {sorted(params)}")


def _clip(
    values: np.ndarray,
    flagged: np.ndarray,
    lower: float | None = None,
    upper: float | None = None,
    k: float = 1.5,
    **extra: Any,
) -> np.ndarray:
    _no_params("clip", extra)
    fence_low, fence_high = iqr_fences(np.where(flagged, np.nan, values), k)
    low = fence_low if lower is None else float(lower)
    high = fence_high if upper is None else float(upper)
    if low > high:
        raise ValueError(f"clip bounds are inverted: lower {low} > upper {high}")
    result = values.copy()
    result[flagged & (values > high)] = high
    result[flagged & (values < low)] = low
    return result


def _ema(
    values: np.ndarray, flagged: np.ndarray, alpha: float = 0.3, scope: str = "flagged", **extra: Any
) -> np.ndarray:
    _no_params("ema", extra)
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if scope not in ("flagged", "all"):
        raise ValueError(f"unknown ema scope {scope!r}; expected 'flagged' or 'all'")
    kept = pd.Series(np.where(flagged, np.nan, values))
    ema = kept.ewm(alpha=alpha, adjust=False, ignore_na=True).mean().to_numpy()
    if scope == "all":
        return np.where(np.isnan(values), np.nan, ema)
    # a flagged row is NaN in ``kept``, so the EMA there is still the EMA of the values before it
    result = values.copy()
    result[flagged] = ema[flagged]
    result[np.isnan(values)] = np.nan
    return result


PROCESSING_CHOICES: tuple[str, ...] = ("none", *METHODS)


def process(series: pd.Series, flags: pd.Series | pd.DataFrame, method: str) -> pd.Series:
    """``series`` with its flagged points processed by ``method`` on the same index: ``none`` keeps it,
    ``drop`` sets the flagged values to NaN (the row stays, so the grid stays regular), ``clip`` and
    ``ema`` (scope ``flagged``) as :func:`denoise`. Raises ValueError for an unknown method."""
    if method == "none":
        return series.astype(float)
    if method == "drop":
        flagged = _flags_for(series, flags)
        return series.astype(float).mask(flagged)
    if method not in METHODS:
        raise ValueError(f"unknown processing {method!r}; expected one of {PROCESSING_CHOICES}")
    return denoise(series.astype(float), flags, method)  # type: ignore[arg-type]


def _lagged(values: np.ndarray, lags: int) -> np.ndarray:
    """Rows ``[1, v[t-lags], ..., v[t-1]]`` for t = lags .. n-1."""
    n = values.size
    cols = [values[lags - k : n - k] for k in range(lags, 0, -1)]
    return np.column_stack([np.ones(n - lags), *cols])


def select_processing(
    series: pd.Series,
    flags: pd.Series | pd.DataFrame,
    methods: tuple[str, ...] = PROCESSING_CHOICES,
    *,
    holdout: float = 0.2,
    lags: int = 6,
) -> tuple[str, dict[str, float]]:
    """Choose the processing of flagged points by one-step-ahead forecast error against **raw** targets.

    For each method the series is processed (:func:`process`; ``drop``'s holes linearly interpolated, as
    the imputation downstream would), an AR(``lags``) least-squares forecaster is fitted on the processed
    first ``1 - holdout`` of the rows and scored (RMSE) on the last ``holdout``: inputs are the processed
    lags, targets the **raw** values (BENCHMARKS.md "Noise processing": processed targets reward
    smoothing). Returns ``(method, rmse per method)``; ties and too little data (fewer than ``4 * lags``
    training rows or ``lags`` scored targets) give ``"none"``, as does a series without flags.
    """
    flagged = _flags_for(series, flags)
    scores: dict[str, float] = {m: float("nan") for m in methods}
    raw = series.to_numpy(dtype=float)
    if not flagged.any():
        return "none", scores
    split = round(raw.size * (1 - holdout))
    for method in methods:
        processed = process(series, flags, method)
        if method == "drop":
            processed = processed.interpolate(limit_area="inside")
        p = processed.to_numpy(dtype=float)
        if p.size <= lags + 1:
            continue
        x = _lagged(p, lags)
        y_fit = p[lags:]
        y_raw = raw[lags:]
        train = np.arange(lags, raw.size) < split
        ok_train = train & np.isfinite(x).all(axis=1) & np.isfinite(y_fit)
        ok_test = ~train & np.isfinite(x).all(axis=1) & np.isfinite(y_raw)
        if ok_train.sum() < 4 * lags or ok_test.sum() < lags:
            continue
        coef, *_ = np.linalg.lstsq(x[ok_train], y_fit[ok_train], rcond=None)
        error = x[ok_test] @ coef - y_raw[ok_test]
        scores[method] = float(np.sqrt(np.mean(error**2)))
    finite = [m for m in methods if np.isfinite(scores[m])]
    if not finite:
        return "none", scores
    return min(finite, key=lambda m: (scores[m], methods.index(m))), scores
