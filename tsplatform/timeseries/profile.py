"""Descriptive statistics of one series (univariate profile) and correlations of aligned series
(multivariate)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tsplatform.timeseries.dtypes import value_series, with_datetime_index

PROFILE_QUANTILES: dict[str, float] = {"q01": 0.01, "q25": 0.25, "median": 0.5, "q75": 0.75, "q99": 0.99}
#: The names :func:`value_statistics` returns, in order.
VALUE_STATISTICS = ("mean", "std", "min", *PROFILE_QUANTILES, "max")


def _flag_series(flags: pd.Series | pd.DataFrame) -> pd.Series:
    if isinstance(flags, pd.DataFrame):
        if "is_anomaly" not in flags:
            raise ValueError("flags DataFrame needs an 'is_anomaly' column")
        flags = flags["is_anomaly"]
    return flags.fillna(False).astype(bool)


def value_statistics(observed: np.ndarray) -> dict[str, float]:
    """``mean``, ``std`` (sample, ddof=1), ``min``, the ``PROFILE_QUANTILES`` (linear) and ``max`` of a
    float array without NaN; NaN where undefined (empty; ``std`` of one value)."""
    count = len(observed)
    if not count:
        return dict.fromkeys(VALUE_STATISTICS, float("nan"))
    quantiles = np.quantile(observed, list(PROFILE_QUANTILES.values()))
    return {
        "mean": float(observed.mean()),
        "std": float(observed.std(ddof=1)) if count > 1 else float("nan"),
        "min": float(observed.min()),
        **{name: float(q) for name, q in zip(PROFILE_QUANTILES, quantiles, strict=True)},
        "max": float(observed.max()),
    }


def profile(
    series: pd.Series,
    flags: pd.Series | pd.DataFrame | None = None,
    period: pd.Timedelta | str | None = None,
) -> dict[str, Any]:
    """Profile of ``series`` as a flat dict of floats (JSON/Mongo friendly).

    - ``count``: number of non-NaN values; ``mean``, ``std`` (sample, ddof=1), ``min``, ``q01``, ``q25``,
      ``median``, ``q75``, ``q99``, ``max`` over those values (linear quantiles; NaN when count is 0).
    - ``missing_rate``: with ``period``, 1 - (distinct timestamps carrying a value) / (expected slots), where
      expected slots = floor((last - first) / period) + 1 over the series' timestamps, clipped to [0, 1].
      Without ``period`` (nothing is estimated here): the share of rows whose value is NaN.
    - ``duplicate_rate``: share of rows whose timestamp repeats an earlier row's timestamp.
    - ``anomaly_rate``: flagged / count over the non-NaN rows (``flags``: bool Series or the DataFrame of
      ``detect_anomalies``, aligned on the series index); NaN without flags.
    Every rate is NaN for an empty series.
    """
    series = value_series(series)
    values = series.to_numpy(dtype=float)
    present = ~np.isnan(values)
    count = int(present.sum())
    observed = values[present]
    result: dict[str, Any] = {"count": count}
    rows = len(values)
    if period is not None and rows:
        step = pd.Timedelta(period)
        if step <= pd.Timedelta(0):
            raise ValueError(f"period must be positive, got {period!r}")
        expected = (series.index.max() - series.index.min()) // step + 1
        distinct = series.index[present].nunique()
        result["missing_rate"] = float(np.clip(1.0 - distinct / expected, 0.0, 1.0))
    else:
        result["missing_rate"] = float(1.0 - count / rows) if rows else float("nan")
    result.update(value_statistics(observed))
    result["duplicate_rate"] = float(series.index.duplicated().sum() / rows) if rows else float("nan")
    if flags is None or count == 0:
        result["anomaly_rate"] = float("nan")
    else:
        flagged = _flag_series(with_datetime_index(flags))
        if len(flagged) != rows or not flagged.index.equals(series.index):
            raise ValueError("flags must be indexed exactly like the series")
        result["anomaly_rate"] = float((flagged.to_numpy() & present).sum() / count)
    return result


def correlations(aligned: pd.DataFrame, min_periods: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pearson correlation of the columns of an aligned frame (see ``align``) with pairwise complete rows.

    Returns ``(corr, counts)``: ``counts[a][b]`` is the number of rows where both a and b are non-NaN;
    ``corr`` is NaN where that count is below ``min_periods`` or a column is constant over the shared rows.
    """
    present = aligned.notna().astype(np.int64)
    counts = present.T @ present
    corr = aligned.astype(float).corr(method="pearson", min_periods=min_periods)
    return corr, counts
