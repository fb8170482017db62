"""The data side of the ML pipeline, pure pandas/numpy: training sets, forecast frames and their scoring.

- :func:`target_frames`: per target series, the target and the other series at its position (covariates)
  aligned on the target's own regular, epoch-anchored grid (period from :func:`estimate_period`), gaps up to
  twice the period interpolated linearly, longer gaps imputed linearly; rows before the target's first or
  after its last observation dropped.
- :func:`training_set`: those frames split by time into train / validation / test (in that order), a scaler
  per feature fitted on the train split only, in one long table (the ``training_sets`` dataset).
- :func:`forecast_rows`: a forecaster's next ``horizon`` steps per target from the end of its history, in the
  ``forecasts`` contract.
- :func:`score_forecasts`: past forecasts against the actuals that arrived since, per (series, issue time),
  beside seasonal naive on the same points (the ``forecast_accuracy`` contract).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsplatform.ml.evaluation import forecast_metrics
from tsplatform.ml.models import SeasonalNaiveForecaster
from tsplatform.timeseries.impute import impute
from tsplatform.timeseries.period import estimate_period
from tsplatform.timeseries.resample import align
from tsplatform.timeseries.scale import Scaler, fit_scaler

FORECAST_COLUMNS: tuple[str, ...] = (
    "series_id",
    "position",
    "type_name",
    "issued_at",
    "event_time",
    "value",
    "model",
)
ACCURACY_COLUMNS: tuple[str, ...] = (
    "series_id",
    "position",
    "type_name",
    "issued_at",
    "n",
    "mse",
    "mae",
    "mape",
    "naive_mse",
    "naive_mae",
    "naive_mape",
)
TRAINING_SET_COLUMNS: tuple[str, ...] = (
    "series_id",
    "position",
    "type_name",
    "feature",
    "feature_type_name",
    "role",
    "event_time",
    "split",
    "value",
    "value_scaled",
    "scale_center",
    "scale_scale",
    "period_s",
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
SEASON = pd.Timedelta(days=1)
MIN_POINTS = 8


@dataclass(frozen=True)
class TargetFrame:
    """One target on its regular grid: ``frame`` columns are the target's series_id first, then covariates."""

    series_id: str
    position: str
    type_name: str
    period: pd.Timedelta
    frame: pd.DataFrame
    covariate_types: Mapping[str, str]

    @property
    def values(self) -> np.ndarray:
        return self.frame[self.series_id].to_numpy(dtype=float)

    @property
    def season_length(self) -> int:
        """Samples per day (the seasonal naive lag), at least 1."""
        return max(1, round(SEASON / self.period))


def _series(group: pd.DataFrame) -> pd.Series:
    # nanosecond index: align() compares raw int64 stamps of the series and the (ns) grid
    times = pd.DatetimeIndex(pd.to_datetime(group["event_time"], utc=True)).as_unit("ns")
    series = pd.Series(group["value"].to_numpy(dtype=float), index=times)
    series = series[~series.index.duplicated(keep="first")].sort_index()
    return series.dropna()


def grid_period(times: pd.DatetimeIndex) -> pd.Timedelta:
    """The series' sampling period (cluster-and-GCD estimate), rounded to whole seconds."""
    period = estimate_period(times).period
    return max(pd.Timedelta(seconds=1), pd.Timedelta(seconds=round(period.total_seconds())))


def _fill(values: pd.Series) -> pd.Series:
    filled = impute(values, "linear") if values.isna().any() else values
    return filled.ffill().bfill()


def target_frames(
    readings: pd.DataFrame, targets: Iterable[str] | None = None, covariates: bool = True
) -> tuple[list[TargetFrame], dict[str, str]]:
    """Regular aligned frames per target (see the module doc) and ``{series_id: reason}`` for targets skipped.

    ``readings``: columns series_id, position, type_name, event_time, value (any order, duplicates allowed).
    ``targets``: series_ids to build (default every series). A target that is absent, has fewer than
    :data:`MIN_POINTS` readings or no estimable period is skipped with a reason, never silently.
    ``covariates=False``: the target alone (forecasting needs no covariates; saves the alignments).
    """
    if readings.empty:
        return [], {t: "no readings" for t in (targets or [])}
    keys = (
        readings[["series_id", "position", "type_name"]].drop_duplicates("series_id").set_index("series_id")
    )
    wanted = list(dict.fromkeys(targets)) if targets else sorted(keys.index)
    series = {sid: _series(group) for sid, group in readings.groupby("series_id", sort=True)}
    by_position = (
        {pos: list(ids) for pos, ids in keys.groupby("position").groups.items()} if covariates else {}
    )
    built: list[TargetFrame] = []
    skipped: dict[str, str] = {}
    for sid in wanted:
        if sid not in keys.index:
            skipped[sid] = "no readings in the window"
            continue
        target = series[sid]
        if len(target) < MIN_POINTS:
            skipped[sid] = f"only {len(target)} readings (< {MIN_POINTS})"
            continue
        try:
            period = grid_period(target.index)
        except ValueError as exc:
            skipped[sid] = f"no sampling period: {exc}"
            continue
        position, type_name = keys.at[sid, "position"], keys.at[sid, "type_name"]
        at_position = by_position[position] if covariates else []
        peers = [p for p in at_position if p != sid and len(series[p]) >= 2]
        aligned = align({sid: target, **{p: series[p] for p in peers}}, grid=period)
        first, last = target.index[0], target.index[-1]
        aligned = aligned[(aligned.index >= first) & (aligned.index <= last)]
        if len(aligned) < MIN_POINTS:
            skipped[sid] = f"only {len(aligned)} grid points (< {MIN_POINTS})"
            continue
        aligned = aligned.apply(_fill)
        aligned = aligned.dropna(axis=1, how="all")  # a covariate with no overlap at all
        built.append(
            TargetFrame(
                series_id=sid,
                position=str(position),
                type_name=str(type_name),
                period=period,
                frame=aligned,
                covariate_types={p: str(keys.at[p, "type_name"]) for p in aligned.columns if p != sid},
            )
        )
    return built, skipped


def split_bounds(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """``(train_end, val_end)`` row indices of a time split of ``n`` rows (each split gets >= 1 row)."""
    if n < 3:
        raise ValueError(f"cannot split {n} rows into train, validation and test")
    n_test = max(1, math.floor(n * test_fraction))
    n_val = max(1, math.floor(n * val_fraction))
    train_end = n - n_test - n_val
    if train_end < 1:
        raise ValueError(f"cannot split {n} rows with val={val_fraction}, test={test_fraction}")
    return train_end, train_end + n_val


def training_set(frames: Sequence[TargetFrame], val_fraction: float, test_fraction: float) -> pd.DataFrame:
    """The long ``training_sets`` table of :data:`TRAINING_SET_COLUMNS` (see the module doc).

    One row per (target, feature, grid time). ``role`` is ``target`` or ``covariate``; ``value_scaled`` uses
    the feature's scaler fitted on the train split only (``scale_center``/``scale_scale``, z-score).
    """
    parts: list[pd.DataFrame] = []
    for target in frames:
        n = len(target.frame)
        train_end, val_end = split_bounds(n, val_fraction, test_fraction)
        split = np.empty(n, dtype=object)
        split[:train_end], split[train_end:val_end], split[val_end:] = SPLITS
        for feature in target.frame.columns:
            values = target.frame[feature].to_numpy(dtype=float)
            scaler = fit_scaler(values[:train_end])
            parts.append(
                pd.DataFrame(
                    {
                        "series_id": target.series_id,
                        "position": target.position,
                        "type_name": target.type_name,
                        "feature": feature,
                        "feature_type_name": target.type_name
                        if feature == target.series_id
                        else target.covariate_types[feature],
                        "role": "target" if feature == target.series_id else "covariate",
                        "event_time": target.frame.index,
                        "split": split,
                        "value": values,
                        "value_scaled": scaler.transform(values),
                        "scale_center": float(scaler.center),
                        "scale_scale": float(scaler.scale),
                        "period_s": target.period.total_seconds(),
                    }
                )
            )
    if not parts:
        return empty_frame(TRAINING_SET_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out["event_time"] = pd.to_datetime(out["event_time"], utc=True).dt.as_unit("ms")
    return out[list(TRAINING_SET_COLUMNS)]


@dataclass(frozen=True)
class TargetSplit:
    """A target's series from the ``training_sets`` table: values per split and the train-split scaler."""

    series_id: str
    position: str
    type_name: str
    period: pd.Timedelta
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    scaler: Scaler
    end: pd.Timestamp

    @property
    def season_length(self) -> int:
        return max(1, round(SEASON / self.period))


def target_splits(table: pd.DataFrame) -> list[TargetSplit]:
    """The targets of a ``training_sets`` table (role ``target`` rows), in series_id order."""
    rows = table[table["role"] == "target"].sort_values(["series_id", "event_time"], kind="stable")
    out: list[TargetSplit] = []
    for sid, group in rows.groupby("series_id", sort=True):
        values = {s: group.loc[group["split"] == s, "value"].to_numpy(dtype=float) for s in SPLITS}
        first = group.iloc[0]
        out.append(
            TargetSplit(
                series_id=str(sid),
                position=str(first["position"]),
                type_name=str(first["type_name"]),
                period=pd.Timedelta(seconds=float(first["period_s"])),
                train=values["train"],
                val=values["val"],
                test=values["test"],
                scaler=Scaler(
                    "standard",
                    np.asarray(float(first["scale_center"])),
                    np.asarray(float(first["scale_scale"])),
                ),
                end=pd.Timestamp(group["event_time"].iloc[-1]),
            )
        )
    return out


def empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def forecast_rows(
    frames: Sequence[TargetFrame],
    predictions: Mapping[str, np.ndarray],
    models: Mapping[str, str],
) -> pd.DataFrame:
    """The ``forecasts`` rows: per target with a prediction, ``issued_at`` = its last grid time (the origin),
    ``event_time`` = origin + k·period for k = 1..horizon."""
    parts = []
    for target in frames:
        if target.series_id not in predictions:
            continue
        values = np.asarray(predictions[target.series_id], dtype=float)
        origin = target.frame.index[-1]
        parts.append(
            pd.DataFrame(
                {
                    "series_id": target.series_id,
                    "position": target.position,
                    "type_name": target.type_name,
                    "issued_at": origin,
                    "event_time": origin + target.period * np.arange(1, len(values) + 1),
                    "value": values,
                    "model": models[target.series_id],
                }
            )
        )
    if not parts:
        return empty_frame(FORECAST_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    for column in ("issued_at", "event_time"):
        out[column] = pd.to_datetime(out[column], utc=True).dt.as_unit("ms")
    return out[list(FORECAST_COLUMNS)]


def score_forecasts(forecasts: pd.DataFrame, readings: pd.DataFrame) -> pd.DataFrame:
    """The ``forecast_accuracy`` rows of :data:`ACCURACY_COLUMNS` for ``forecasts`` whose actuals arrived.

    Actuals: each series' readings interpolated linearly at the forecast times (no bridging of gaps longer
    than twice its period, no extrapolation past its last reading). ``n`` counts the forecast points with an
    actual; a (series, issued_at) with none is left out (its actuals have not arrived). Seasonal naive on the
    same points: the actuals one day (in the series' period) before, from ``readings`` up to the issue time.
    """
    if forecasts.empty or readings.empty:
        return empty_frame(ACCURACY_COLUMNS)
    observed = {sid: _series(group) for sid, group in readings.groupby("series_id", sort=False)}
    rows = []
    for (sid, issued_at), group in forecasts.groupby(["series_id", "issued_at"], sort=True):
        history = observed.get(sid)
        if history is None or len(history) < 2:
            continue
        times = pd.DatetimeIndex(pd.to_datetime(group["event_time"], utc=True)).as_unit("ns")
        actual = align({sid: history}, grid=times)[sid].to_numpy()
        have = np.isfinite(actual)
        if not have.any():
            continue
        predicted = group["value"].to_numpy(dtype=float)
        period = times[1] - times[0] if len(times) > 1 else pd.Timedelta(times[0] - pd.Timestamp(issued_at))
        season = max(1, round(SEASON / period))
        past = history[history.index <= pd.Timestamp(issued_at)]
        naive = np.full(len(times), np.nan)
        if len(past) >= 2:
            grid = pd.date_range(end=pd.Timestamp(issued_at), periods=season, freq=period).as_unit("ns")
            past_grid = align({sid: past}, grid=grid)[sid].to_numpy()
            if np.isfinite(past_grid).all():
                naive = (
                    SeasonalNaiveForecaster(season=season)
                    .fit([past_grid])
                    .predict([past_grid], len(times))[0]
                )
        model_err = forecast_metrics(actual[have], predicted[have])
        naive_err = forecast_metrics(actual[have], naive[have])
        first = group.iloc[0]
        rows.append(
            {
                "series_id": sid,
                "position": first["position"],
                "type_name": first["type_name"],
                "issued_at": issued_at,
                "n": int(have.sum()),
                **{k: model_err[k] for k in ("mse", "mae", "mape")},
                **{f"naive_{k}": naive_err[k] for k in ("mse", "mae", "mape")},
            }
        )
    if not rows:
        return empty_frame(ACCURACY_COLUMNS)
    out = pd.DataFrame(rows)
    out["issued_at"] = pd.to_datetime(out["issued_at"], utc=True).dt.as_unit("ms")
    out["n"] = out["n"].astype("int64")
    return out[list(ACCURACY_COLUMNS)]


def drifted_targets(
    accuracy: pd.DataFrame, validation_mse: Mapping[str, float], factor: float
) -> dict[str, dict[str, float]]:
    """Targets whose pooled live MSE (weighted by ``n``) exceeds ``factor`` × their champion's validation MSE.

    Returns ``{series_id: {"live_mse", "val_mse", "ratio"}}``; targets without a validation MSE are skipped.
    """
    drifted: dict[str, dict[str, float]] = {}
    for sid, group in accuracy.groupby("series_id", sort=True):
        val = validation_mse.get(str(sid))
        if val is None or not np.isfinite(val) or group["n"].sum() == 0:
            continue
        live = float(np.average(group["mse"], weights=group["n"]))
        ratio = live / val if val > 0 else math.inf
        if ratio > factor:
            drifted[str(sid)] = {"live_mse": live, "val_mse": float(val), "ratio": ratio}
    return drifted
