"""Scalers fitted on a training split, and supervised windows for forecasting.

- :func:`fit_scaler` learns per-feature statistics on the *training* values only and returns a :class:`Scaler`
  whose ``transform`` / ``inverse_transform`` apply them to any later data (no leakage from the test split).
- :func:`make_windows` cuts a (T,) or (T, F) array into input / target windows with
  ``numpy.lib.stride_tricks.sliding_window_view`` (no Python loop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

ScalerKind = Literal["standard", "minmax"]
_KINDS: tuple[str, ...] = ("standard", "minmax")


@dataclass(frozen=True)
class Scaler:
    """An affine per-feature map ``z = (x - center) / scale`` fitted on training data.

    ``kind="standard"``: center = mean, scale = population std (ddof=0).
    ``kind="minmax"``: center = min, scale = max - min, so training values map onto [0, 1].
    A constant feature (scale 0, or not finite) gets scale 1: it maps to 0 and inverts exactly, no division
    by zero.
    ``center`` and ``scale`` have shape (F,) for 2-D training data and shape () for 1-D.
    """

    kind: ScalerKind
    center: np.ndarray
    scale: np.ndarray

    def transform(
        self, values: np.ndarray | pd.Series | pd.DataFrame
    ) -> np.ndarray | pd.Series | pd.DataFrame:
        """Scale ``values`` (same feature layout as the training data); pandas objects keep their index."""
        return self._apply(values, lambda x: (x - self.center) / self.scale)

    def inverse_transform(
        self, values: np.ndarray | pd.Series | pd.DataFrame
    ) -> np.ndarray | pd.Series | pd.DataFrame:
        """Undo :meth:`transform`: ``x = z * scale + center``."""
        return self._apply(values, lambda z: z * self.scale + self.center)

    def _apply(
        self, values: np.ndarray | pd.Series | pd.DataFrame, func: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray | pd.Series | pd.DataFrame:
        if isinstance(values, pd.DataFrame):
            return pd.DataFrame(
                func(values.to_numpy(dtype=float)), index=values.index, columns=values.columns
            )
        if isinstance(values, pd.Series):
            return pd.Series(func(values.to_numpy(dtype=float)), index=values.index, name=values.name)
        return func(np.asarray(values, dtype=float))


def fit_scaler(train: np.ndarray | pd.Series | pd.DataFrame, kind: ScalerKind = "standard") -> Scaler:
    """Fit a :class:`Scaler` on training values (1-D series or 2-D samples x features); NaN are ignored.

    Raises ValueError for an unknown ``kind`` or when a feature has no finite training value.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown scaler kind {kind!r}; expected one of {_KINDS}")
    values = np.asarray(train, dtype=float)
    if values.ndim not in (1, 2):
        raise ValueError(f"training values must be 1-D or 2-D, got {values.ndim}-D")
    finite = np.isfinite(values)
    if values.size == 0 or not finite.any(axis=0).all():
        raise ValueError("cannot fit a scaler: a feature has no finite training value")
    if kind == "standard":
        center = np.nanmean(values, axis=0)
        scale = np.nanstd(values, axis=0)
    else:
        center = np.nanmin(values, axis=0)
        scale = np.nanmax(values, axis=0) - center
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return Scaler(kind=kind, center=np.asarray(center, dtype=float), scale=np.asarray(scale, dtype=float))


def make_windows(
    values: np.ndarray | pd.Series | pd.DataFrame, input_len: int, horizon: int, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Supervised windows ``(X, y)`` from a (T,) or (T, F) array.

    Window j (0-based) uses rows ``[j*stride, j*stride + input_len)`` as input and the next ``horizon``
    rows as target, so n = floor((T - input_len - horizon) / stride) + 1. Shapes: X (n, input_len[, F]),
    y (n, horizon[, F]). The arrays are fresh contiguous copies (safe to modify). NaN are passed through.
    Raises ValueError when ``input_len``, ``horizon`` or ``stride`` < 1, or T < input_len + horizon.
    """
    for name, number in (("input_len", input_len), ("horizon", horizon), ("stride", stride)):
        if int(number) != number or number < 1:
            raise ValueError(f"{name} must be a positive integer, got {number!r}")
    array = np.asarray(values, dtype=float)
    if array.ndim not in (1, 2):
        raise ValueError(f"values must be 1-D or 2-D, got {array.ndim}-D")
    length = input_len + horizon
    if array.shape[0] < length:
        raise ValueError(
            f"series too short for windows: {array.shape[0]} rows < input_len + horizon = {length}"
        )
    windows = sliding_window_view(array, length, axis=0)[::stride]  # (n, [F,] length)
    if array.ndim == 2:
        windows = np.moveaxis(windows, -1, 1)  # (n, length, F)
    return np.ascontiguousarray(windows[:, :input_len]), np.ascontiguousarray(windows[:, input_len:])
