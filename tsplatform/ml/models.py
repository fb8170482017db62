"""Forecasting models behind one interface: fit on series, predict a horizon, save and load safely.

Every family is a :class:`Forecaster` made by :func:`make_forecaster` (``family``, ``**params``):

- ``fit(series, val=None)``: ``series`` is a list of 1-D training arrays, one for a per-series model, many
  for one **global** model across all series of a type (windows pooled). ``val[i]``, when given, is the
  validation part that directly *continues* ``series[i]``; the model takes the input context of the first
  validation windows from the end of ``series[i]``. Models that train iteratively (LSTM) stop early on it.
  Windows (input or target) holding a NaN are skipped in training.
- ``predict(histories, horizon)``: one forecast row per history, shape ``(len(histories), horizon)``,
  multi-step. Only the last :attr:`Forecaster.context_length` values of a history are used; they must be
  finite (ValueError otherwise). Window models trained for horizon H predict longer horizons recursively.
- ``save(directory)`` / :func:`load_forecaster`: safe formats only. ``forecaster.json`` holds the family
  and params; ``arrays.npz`` (loaded with ``allow_pickle=False``) holds fitted numbers (scalers, ridge
  weights, statsmodels parameters); the LSTM's ``state.pt`` is a ``state_dict`` loaded with
  ``torch.load(weights_only=True)``. No pickle anywhere.

Scaling inside the models (values passed in and returned are always in the caller's units):

- ``linear`` and ``lstm`` z-score with the mean and std pooled over all training values (one scaler per
  model, so a global model learns on one scale; fit on the training series only) and, with
  ``normalize="last"`` (default), subtract each window's last input value from its inputs and targets
  (NLinear's last-value normalisation; the LSTM needs it: ETTh1 MSE 0.24 without, ~0.06 with).
- naive, seasonal naive, ETS and ARIMA work on the raw values.

Families: ``naive``, ``seasonal_naive``, ``ets``, ``arima``, ``linear`` (``variant`` ``"nlinear"`` or
``"dlinear"``, closed-form ridge), ``lstm``, ``ensemble`` (mean of member forecasters).
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

FORMAT_VERSION = 1
META_FILE = "forecaster.json"
ARRAYS_FILE = "arrays.npz"
STATE_FILE = "state.pt"

#: Called by iterative models after each epoch with (epoch starting at 1, metrics); see LSTMForecaster.
EpochCallback = Callable[[int, dict[str, float]], None]


# ---------------------------------------------------------------------------------------------------
# input checks and windows
# ---------------------------------------------------------------------------------------------------
def as_series_list(series: Sequence[np.ndarray] | np.ndarray, what: str = "series") -> list[np.ndarray]:
    """A list of 1-D float arrays (a single 1-D array becomes a list of one). Raises ValueError."""
    if isinstance(series, np.ndarray) and series.ndim == 1:
        series = [series]
    if isinstance(series, np.ndarray) and series.ndim == 2:
        series = list(series)
    out = []
    for i, s in enumerate(series):
        array = np.array(s, dtype=float)  # a copy: arrays from Ray arrive read-only
        if array.ndim != 1:
            raise ValueError(f"{what}[{i}] must be 1-D, got shape {array.shape}")
        out.append(array)
    if not out:
        raise ValueError(f"{what} is empty: at least one series is needed")
    return out


def contexts(histories: Sequence[np.ndarray] | np.ndarray, length: int) -> np.ndarray:
    """The last ``length`` values of each history as an (n, length) array; ValueError if short or NaN."""
    rows = as_series_list(histories, "histories")
    out = np.empty((len(rows), length))
    for i, history in enumerate(rows):
        if len(history) < length:
            raise ValueError(f"histories[{i}] has {len(history)} values; this model needs at least {length}")
        tail = history[len(history) - length :]
        if not np.isfinite(tail).all():
            raise ValueError(f"histories[{i}] has NaN/inf among its last {length} values")
        out[i] = tail
    return out


def training_windows(
    series: list[np.ndarray], input_len: int, horizon: int, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled (X, Y) windows over all series: X (n, input_len), Y (n, horizon); NaN windows dropped."""
    xs, ys = [], []
    for s in series:
        if len(s) < input_len + horizon:
            continue
        w = sliding_window_view(s, input_len + horizon)[::stride]
        w = w[np.isfinite(w).all(axis=1)]
        xs.append(w[:, :input_len])
        ys.append(w[:, input_len:])
    if not xs or sum(len(x) for x in xs) == 0:
        raise ValueError(
            f"no complete window of input_len {input_len} + horizon {horizon} without NaN in the series"
        )
    return np.concatenate(xs), np.concatenate(ys)


def validation_windows(
    series: list[np.ndarray], val: list[np.ndarray], input_len: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose targets lie inside ``val[i]`` (inputs may reach back into ``series[i]``)."""
    if len(val) != len(series):
        raise ValueError(f"val has {len(val)} arrays for {len(series)} series; val[i] continues series[i]")
    joined = [np.concatenate([s[-input_len:], v]) for s, v in zip(series, val, strict=True)]
    return training_windows(joined, input_len, horizon)


def pooled_scaler(series: list[np.ndarray]) -> tuple[float, float]:
    """(mean, std) over all finite training values; std 1 for a constant series."""
    values = np.concatenate([s[np.isfinite(s)] for s in series])
    if values.size == 0:
        raise ValueError("no finite training value")
    std = float(values.std())
    return float(values.mean()), std if std > 0 and math.isfinite(std) else 1.0


# ---------------------------------------------------------------------------------------------------
# the interface
# ---------------------------------------------------------------------------------------------------
class Forecaster(ABC):
    """A forecasting model; see the module docstring for the contract of each method."""

    family: ClassVar[str]
    #: Default params of the family; ``make_forecaster`` rejects unknown names.
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"unknown params for {self.family!r}: {sorted(unknown)}; known: {sorted(self.defaults)}"
            )
        self.params: dict[str, Any] = {**copy.deepcopy(self.defaults), **params}
        self.fitted = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"

    @property
    @abstractmethod
    def context_length(self) -> int:
        """How many of a history's most recent values ``predict`` uses (histories need at least this)."""

    @abstractmethod
    def fit(self, series: Sequence[np.ndarray], val: Sequence[np.ndarray] | None = None) -> Self:
        """Fit on training series (list: one per-series, many for a global model); returns self."""

    @abstractmethod
    def predict(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        """Forecast ``horizon`` steps after each history; shape (n, horizon)."""

    # -- persistence: JSON params + npz arrays (+ torch state_dict) ---------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        """Fitted numbers to save (override)."""
        return {}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:  # noqa: B027 (an optional hook)
        """Restore what :meth:`_arrays` returned (override)."""

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"{self.family} forecaster is not fitted")

    def save(self, directory: Path | str) -> Path:
        """Write the fitted model into ``directory`` (created); returns it."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"format_version": FORMAT_VERSION, "family": self.family, "params": self.params}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        arrays = self._arrays()
        if arrays:
            np.savez(directory / ARRAYS_FILE, **arrays)
        return directory

    @classmethod
    def _load(cls, directory: Path, params: dict[str, Any]) -> Forecaster:
        model = cls(**params)
        path = directory / ARRAYS_FILE
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                model._set_arrays({k: data[k] for k in data.files})
        model.fitted = True
        return model


def _check_horizon(horizon: int) -> int:
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    return int(horizon)


# ---------------------------------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------------------------------
class NaiveForecaster(Forecaster):
    """The last value, repeated over the horizon."""

    family = "naive"
    defaults: ClassVar[dict[str, Any]] = {}

    @property
    def context_length(self) -> int:
        return 1

    def fit(self, series: Sequence[np.ndarray], val: Sequence[np.ndarray] | None = None) -> Self:
        as_series_list(series)
        self.fitted = True
        return self

    def predict(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        horizon = _check_horizon(horizon)
        return np.repeat(contexts(histories, 1), horizon, axis=1)


class SeasonalNaiveForecaster(Forecaster):
    """The last full season (``season`` samples, e.g. 24 for hourly data), repeated over the horizon."""

    family = "seasonal_naive"
    defaults: ClassVar[dict[str, Any]] = {"season": 24}

    @property
    def context_length(self) -> int:
        return int(self.params["season"])

    def fit(self, series: Sequence[np.ndarray], val: Sequence[np.ndarray] | None = None) -> Self:
        if int(self.params["season"]) < 1:
            raise ValueError(f"season must be >= 1, got {self.params['season']!r}")
        as_series_list(series)
        self.fitted = True
        return self

    def predict(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        horizon = _check_horizon(horizon)
        last = contexts(histories, self.context_length)
        reps = -(-horizon // self.context_length)
        return np.tile(last, (1, reps))[:, :horizon]


class _StatsmodelsForecaster(Forecaster):
    """Parameters estimated on the (first, or each and averaged) training series; at prediction time the
    model is re-filtered with those fixed parameters on the last ``history`` values of each history (one
    statsmodels call per history, so O(n) Python calls: fine for thousands, not for millions)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.fitted_params: np.ndarray | None = None

    @property
    def context_length(self) -> int:
        return int(self.params["history"])

    @abstractmethod
    def _estimate(self, values: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _forecast(self, values: np.ndarray, horizon: int) -> np.ndarray: ...

    def fit(self, series: Sequence[np.ndarray], val: Sequence[np.ndarray] | None = None) -> Self:
        rows = as_series_list(series)
        estimates = []
        for s in rows:
            s = s[np.isfinite(s)]
            tail = s[-int(self.params["fit_length"]) :] if self.params["fit_length"] else s
            if len(tail) < 10:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimates.append(self._estimate(tail))
        if not estimates:
            raise ValueError(f"{self.family}: no training series long enough to estimate the model")
        self.fitted_params = np.mean(estimates, axis=0)
        self.fitted = True
        return self

    def predict(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        self._check_fitted()
        horizon = _check_horizon(horizon)
        rows = contexts(histories, self.context_length)
        out = np.empty((len(rows), horizon))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, values in enumerate(rows):
                out[i] = self._forecast(values, horizon)
        return out

    def _arrays(self) -> dict[str, np.ndarray]:
        assert self.fitted_params is not None
        return {"fitted_params": self.fitted_params}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.fitted_params = arrays["fitted_params"]


class ETSForecaster(_StatsmodelsForecaster):
    """statsmodels ``ETSModel`` (additive error; ``trend`` None/"add", ``damped_trend``, ``seasonal``
    None/"add" with ``season`` samples). Smoothing parameters are estimated on up to ``fit_length``
    training values; predictions re-run the filter with them on the last ``history`` values, with
    heuristic initial states (needs ``history`` >= 2 seasons + 10 when seasonal)."""

    family = "ets"
    defaults: ClassVar[dict[str, Any]] = {
        "trend": "add",
        "damped_trend": True,
        "seasonal": "add",
        "season": 24,
        "history": 336,
        "fit_length": 2000,
    }

    def _model(self, values: np.ndarray, heuristic: bool = False) -> Any:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        seasonal = self.params["seasonal"]
        return ETSModel(
            values,
            error="add",
            trend=self.params["trend"],
            damped_trend=bool(self.params["damped_trend"]) and self.params["trend"] is not None,
            seasonal=seasonal,
            seasonal_periods=int(self.params["season"]) if seasonal else None,
            initialization_method="heuristic" if heuristic else "estimated",
        )

    def _n_smoothing(self) -> int:
        p = self.params
        return (
            1
            + (p["trend"] is not None)
            + (p["seasonal"] is not None)
            + bool(p["damped_trend"] and p["trend"] is not None)
        )

    def _estimate(self, values: np.ndarray) -> np.ndarray:
        result = self._model(values, heuristic=True).fit(disp=False)
        return np.asarray(result.params[: self._n_smoothing()], dtype=float)

    def _forecast(self, values: np.ndarray, horizon: int) -> np.ndarray:
        assert self.fitted_params is not None
        result = self._model(values, heuristic=True).smooth(self.fitted_params)
        return np.asarray(result.forecast(horizon), dtype=float)


class ARIMAForecaster(_StatsmodelsForecaster):
    """statsmodels ``SARIMAX`` with ``order`` (p, d, q) and a constant (``trend="c"`` when d == 0).
    Parameters are estimated by maximum likelihood on up to ``fit_length`` training values; predictions
    run the Kalman filter with them on the last ``history`` values of each history."""

    family = "arima"
    defaults: ClassVar[dict[str, Any]] = {"order": [2, 0, 1], "history": 336, "fit_length": 2000}

    def _model(self, values: np.ndarray) -> Any:
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        p, d, q = (int(v) for v in self.params["order"])
        return SARIMAX(values, order=(p, d, q), trend="c" if d == 0 else "n")

    def _estimate(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(self._model(values).fit(disp=False).params, dtype=float)

    def _forecast(self, values: np.ndarray, horizon: int) -> np.ndarray:
        assert self.fitted_params is not None
        result = self._model(values).filter(self.fitted_params, cov_type="none")  # no Hessian: 2x faster
        return np.asarray(result.forecast(horizon), dtype=float)


# ---------------------------------------------------------------------------------------------------
# window models: linear (ridge) and LSTM
# ---------------------------------------------------------------------------------------------------
class _WindowForecaster(Forecaster):
    """Direct multi-output models over (input_len -> horizon) windows, z-scored by a pooled scaler."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.center = 0.0
        self.scale = 1.0

    @property
    def context_length(self) -> int:
        return int(self.params["input_len"])

    def _check_params(self) -> None:
        for name in ("input_len", "horizon"):
            value = self.params[name]
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.params.get("normalize", "last") not in ("last", "none"):
            raise ValueError(f"normalize must be 'last' or 'none', got {self.params['normalize']!r}")

    @abstractmethod
    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        """(n, input_len) z-scored inputs -> (n, horizon) z-scored forecasts."""

    def predict(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        self._check_fitted()
        horizon = _check_horizon(horizon)
        x = (contexts(histories, self.context_length) - self.center) / self.scale
        steps: list[np.ndarray] = []
        done = 0
        while done < horizon:  # recursive beyond the trained horizon
            y = self._predict_scaled(x)
            steps.append(y)
            done += y.shape[1]
            x = np.concatenate([x, y], axis=1)[:, -self.context_length :]
        return np.concatenate(steps, axis=1)[:, :horizon] * self.scale + self.center


class LinearForecaster(_WindowForecaster):
    """Linear map from ``input_len`` inputs to ``horizon`` outputs, fitted in closed form by ridge
    regression (``alpha`` on z-scored values, intercept not penalised) over all training windows.

    ``variant="nlinear"``: inputs and targets minus the window's last input value (Zeng et al. 2023's
    NLinear). ``variant="dlinear"``: inputs split into a moving-average trend (``kernel`` samples, ends
    padded with the edge values) and the remainder, one linear map each (DLinear)."""

    family = "linear"
    defaults: ClassVar[dict[str, Any]] = {
        "input_len": 336,
        "horizon": 96,
        "variant": "nlinear",
        "alpha": 1.0,
        "kernel": 25,
        "stride": 1,
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.weights: np.ndarray | None = None  # (features + 1, horizon), last row the intercept

    def _features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features, offset to add back to the targets)."""
        if self.params["variant"] == "nlinear":
            last = x[:, -1:]
            return x - last, last
        if self.params["variant"] == "dlinear":
            k = int(self.params["kernel"])
            front, back = (k - 1) // 2, k // 2
            padded = np.concatenate(
                [np.repeat(x[:, :1], front, axis=1), x, np.repeat(x[:, -1:], back, axis=1)], axis=1
            )
            trend = sliding_window_view(padded, k, axis=1).mean(axis=2)
            return np.concatenate([x - trend, trend], axis=1), np.zeros((len(x), 1))
        raise ValueError(f"variant must be 'nlinear' or 'dlinear', got {self.params['variant']!r}")

    def fit(self, series: Sequence[np.ndarray], val: Sequence[np.ndarray] | None = None) -> Self:
        self._check_params()
        rows = as_series_list(series)
        self.center, self.scale = pooled_scaler(rows)
        scaled = [(s - self.center) / self.scale for s in rows]
        x, y = training_windows(scaled, int(self.params["input_len"]), int(self.params["horizon"]),
                                int(self.params["stride"]))  # fmt: skip
        features, offset = self._features(x)
        target = y - offset
        f_mean, t_mean = features.mean(axis=0), target.mean(axis=0)
        fc = features - f_mean
        gram = fc.T @ fc + float(self.params["alpha"]) * np.eye(fc.shape[1])
        w = np.linalg.solve(gram, fc.T @ (target - t_mean))
        self.weights = np.vstack([w, (t_mean - f_mean @ w)[None, :]])
        self.fitted = True
        return self

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        assert self.weights is not None
        features, offset = self._features(x)
        return features @ self.weights[:-1] + self.weights[-1] + offset

    def _arrays(self) -> dict[str, np.ndarray]:
        assert self.weights is not None
        return {"weights": self.weights, "scaler": np.array([self.center, self.scale])}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights = arrays["weights"]
        self.center, self.scale = (float(v) for v in arrays["scaler"])


def torch_device(requested: str = "auto") -> str:
    """``"cuda"`` when requested or available (``"auto"``), else ``"cpu"``."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


class LSTMForecaster(_WindowForecaster):
    """The study's LSTM regressor (PyTorch): ``num_layers`` stacked LSTM layers of ``hidden_size`` units
    read the input window, a linear head maps the last hidden state to all ``horizon`` outputs at once.

    ``patch_len`` > 1 feeds the window as ``input_len / patch_len`` steps of ``patch_len`` values (input
    length must be a multiple): far fewer recurrent steps, so much faster on long inputs (1 = one value per
    step, the study's model). Trained with Adam (``lr``) on MSE in mini-batches of ``batch_size`` windows,
    ``windows_per_epoch`` windows sampled per epoch (all when None), at most ``epochs`` epochs; with
    ``val``, stops after ``patience`` epochs without a better validation MSE and keeps the best weights.
    Seeded by ``seed``: deterministic on the CPU. Runs on CUDA when available (``device="auto"``).
    """

    family = "lstm"
    defaults: ClassVar[dict[str, Any]] = {
        "input_len": 96,
        "horizon": 96,
        "hidden_size": 32,
        "num_layers": 1,
        "lr": 0.005,
        "patch_len": 1,
        "dropout": 0.0,
        "normalize": "last",
        "batch_size": 64,
        "epochs": 30,
        "windows_per_epoch": None,
        "patience": 5,
        "weight_decay": 0.0,
        "seed": 0,
        "device": "auto",
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.network: Any = None
        self.history: list[dict[str, float]] = []  # per-epoch train/val losses of the last fit

    def _check_params(self) -> None:
        super()._check_params()
        if int(self.params["input_len"]) % int(self.params["patch_len"]):
            raise ValueError(
                f"input_len {self.params['input_len']} must be a multiple of "
                f"patch_len {self.params['patch_len']}"
            )

    def _build(self) -> Any:
        import torch
        from torch import nn

        p = self.params

        class Regressor(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(
                    input_size=int(p["patch_len"]),
                    hidden_size=int(p["hidden_size"]),
                    num_layers=int(p["num_layers"]),
                    dropout=float(p["dropout"]) if int(p["num_layers"]) > 1 else 0.0,
                    batch_first=True,
                )
                self.head = nn.Linear(int(p["hidden_size"]), int(p["horizon"]))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                steps = x.reshape(x.shape[0], -1, int(p["patch_len"]))
                output, _ = self.lstm(steps)
                return self.head(output[:, -1])

        return Regressor()

    def _offset(self, x: np.ndarray) -> np.ndarray:
        return x[:, -1:] if self.params["normalize"] == "last" else np.zeros((len(x), 1))

    def fit(
        self,
        series: Sequence[np.ndarray],
        val: Sequence[np.ndarray] | None = None,
        *,
        on_epoch: EpochCallback | None = None,
    ) -> Self:
        """As :meth:`Forecaster.fit`; ``on_epoch(epoch, {"train_mse", "val_mse"})`` after each epoch,
        MSEs in the caller's units (val_mse NaN without ``val``), e.g. to report to Ray Tune."""
        import torch

        self._check_params()
        p = self.params
        rows = as_series_list(series)
        self.center, self.scale = pooled_scaler(rows)
        scaled = [(s - self.center) / self.scale for s in rows]
        input_len, horizon = int(p["input_len"]), int(p["horizon"])
        x, y = training_windows(scaled, input_len, horizon)
        offset = self._offset(x)
        x, y = x - offset, y - offset
        if val is not None:
            val_rows = [(v - self.center) / self.scale for v in as_series_list(val, "val")]
            vx, vy = validation_windows(scaled, val_rows, input_len, horizon)
            v_offset = self._offset(vx)
            vx, vy = vx - v_offset, vy - v_offset

        device = torch_device(p["device"])
        torch.manual_seed(int(p["seed"]))
        generator = np.random.default_rng(int(p["seed"]))
        network = self._build().to(device)
        optimiser = torch.optim.Adam(
            network.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"])
        )
        loss_fn = torch.nn.MSELoss()
        x_t = torch.from_numpy(x.astype(np.float32)).to(device)
        y_t = torch.from_numpy(y.astype(np.float32)).to(device)
        if val is not None:
            vx_t = torch.from_numpy(vx.astype(np.float32)).to(device)
            vy_t = torch.from_numpy(vy.astype(np.float32)).to(device)
        per_epoch = min(len(x), int(p["windows_per_epoch"] or len(x)))
        batch = int(p["batch_size"])
        best, best_state, stale = math.inf, None, 0
        self.history = []
        for epoch in range(1, int(p["epochs"]) + 1):
            network.train()
            order = torch.from_numpy(generator.permutation(len(x))[:per_epoch]).to(device)
            total = 0.0
            for start in range(0, per_epoch, batch):
                idx = order[start : start + batch]
                optimiser.zero_grad()
                loss = loss_fn(network(x_t[idx]), y_t[idx])
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(idx)
            metrics = {"train_mse": total / per_epoch * self.scale**2, "val_mse": math.nan}
            if val is not None:
                metrics["val_mse"] = self._mse(network, vx_t, vy_t) * self.scale**2
            self.history.append(metrics)
            self.network = network
            self.fitted = True
            if on_epoch is not None:
                on_epoch(epoch, metrics)
            if val is None:
                continue
            if metrics["val_mse"] < best:
                best, stale = metrics["val_mse"], 0
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            else:
                stale += 1
                if stale >= int(p["patience"]):
                    break
        if best_state is not None:
            network.load_state_dict(best_state)
        network.eval()
        self.network = network
        self.fitted = True
        return self

    @staticmethod
    def _mse(network: Any, x: Any, y: Any, chunk: int = 4096) -> float:
        import torch

        network.eval()
        with torch.no_grad():
            total = sum(
                float(((network(x[i : i + chunk]) - y[i : i + chunk]) ** 2).sum())
                for i in range(0, len(x), chunk)
            )
        return total / (y.shape[0] * y.shape[1])

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        import torch

        offset = self._offset(x)
        device = next(self.network.parameters()).device
        self.network.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(x), 4096):
                chunk = torch.from_numpy((x[i : i + 4096] - offset[i : i + 4096]).astype(np.float32)).to(
                    device
                )
                out.append(self.network(chunk).cpu().numpy().astype(float))
        return np.concatenate(out) + offset

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"scaler": np.array([self.center, self.scale])}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.center, self.scale = (float(v) for v in arrays["scaler"])

    def save(self, directory: Path | str) -> Path:
        import torch

        directory = super().save(directory)
        torch.save(
            {k: v.detach().cpu() for k, v in self.network.state_dict().items()}, directory / STATE_FILE
        )
        return directory

    @classmethod
    def _load(cls, directory: Path, params: dict[str, Any]) -> Forecaster:
        import torch

        model = super()._load(directory, params)
        assert isinstance(model, LSTMForecaster)
        network = model._build()
        network.load_state_dict(torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True))
        network.to(torch_device(model.params["device"])).eval()
        model.network = network
        return model


# ---------------------------------------------------------------------------------------------------
# ensemble
# ---------------------------------------------------------------------------------------------------
class EnsembleForecaster(Forecaster):
    """The plain mean of member forecasters' predictions. ``params["members"]`` lists each member's
    ``{"family": ..., "params": {...}}``; :func:`ensemble_of` builds one from already-fitted members."""

    family = "ensemble"
    defaults: ClassVar[dict[str, Any]] = {"members": []}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.members: list[Forecaster] = [
            make_forecaster(m["family"], **m.get("params", {})) for m in self.params["members"]
        ]
        if not self.members:
            raise ValueError("an ensemble needs at least one member")

    @property
    def context_length(self) -> int:
        return max(m.context_length for m in self.members)

    def fit(self, series: Sequence[np.ndarray], val: Sequence[np.ndarray] | None = None) -> Self:
        for member in self.members:
            member.fit(series, val)
        self.fitted = True
        return self

    def predict(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        self._check_fitted()
        return np.mean([m.predict(histories, horizon) for m in self.members], axis=0)

    def save(self, directory: Path | str) -> Path:
        directory = super().save(directory)
        for i, member in enumerate(self.members):
            member.save(directory / f"member_{i:02d}")
        return directory

    @classmethod
    def _load(cls, directory: Path, params: dict[str, Any]) -> Forecaster:
        model = cls(**params)
        model.members = [load_forecaster(directory / f"member_{i:02d}") for i in range(len(model.members))]
        model.fitted = True
        return model


def ensemble_of(members: Sequence[Forecaster]) -> EnsembleForecaster:
    """A fitted ensemble (mean) of fitted members (kept as they are, not refitted)."""
    for m in members:
        m._check_fitted()
    model = EnsembleForecaster(members=[{"family": m.family, "params": m.params} for m in members])
    model.members = list(members)
    model.fitted = True
    return model


# ---------------------------------------------------------------------------------------------------
# registry of families
# ---------------------------------------------------------------------------------------------------
FAMILIES: dict[str, type[Forecaster]] = {
    cls.family: cls
    for cls in (
        NaiveForecaster,
        SeasonalNaiveForecaster,
        ETSForecaster,
        ARIMAForecaster,
        LinearForecaster,
        LSTMForecaster,
        EnsembleForecaster,
    )
}


def make_forecaster(family: str, **params: Any) -> Forecaster:
    """An unfitted forecaster of ``family`` (a key of :data:`FAMILIES`) with ``params`` over its defaults."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[family](**params)


def load_forecaster(directory: Path | str) -> Forecaster:
    """Load what :meth:`Forecaster.save` wrote (JSON + npz + torch state_dict; never unpickles)."""
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"no saved forecaster at {directory} ({META_FILE} missing)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported forecaster format {meta.get('format_version')!r} in {directory}")
    family = meta.get("family")
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r} in {meta_path}")
    return FAMILIES[family]._load(directory, meta["params"])
