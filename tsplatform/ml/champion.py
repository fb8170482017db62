"""Tune, judge on held-out data, register: one target's champion (a series, or a global group of series).

:func:`tune_and_register` runs :func:`tsplatform.ml.tuning.tune_forecaster` (Ray Tune + ASHA) on the
targets' train/validation splits, with every trial logged to MLflow by Ray's ``MLflowLoggerCallback``;
scores the champion and seasonal naive (one day's season, in samples) on the held-out test split by rolling
origins (stride = horizon, history = everything before the origin), and registers the champion with
alias ``champion``: test MSE/RMSE/MAE/MAPE as its headline metrics, validation and seasonal-naive figures
beside them, the best configuration as params, and the lineage (day partitions, data checksum, code).
:func:`serve_forecasts` predicts the next horizon of many series from their champions, one batched
``predict`` per champion.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsplatform.ml.evaluation import rolling_origin_evaluate
from tsplatform.ml.models import SeasonalNaiveForecaster
from tsplatform.ml.pipeline import TargetSplit
from tsplatform.ml.registry import Champion, Lineage, ModelRegistry, data_checksum
from tsplatform.ml.tuning import TuningProgress, default_search_space, tune_forecaster

DEFAULT_FAMILIES: tuple[str, ...] = ("linear", "lstm")
INPUT_LEN_CANDIDATES: tuple[int, ...] = (24, 48, 96, 144, 192, 288, 336, 512, 720)


def global_target(type_name: str) -> str:
    """Target name of the global model over every series of ``type_name``."""
    return f"global:{type_name}"


@dataclass(frozen=True)
class ChampionReport:
    """The outcome of one target's search: the registered champion and the figures it was judged on."""

    target: str
    champion: Champion
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    naive_test_metrics: dict[str, float]
    trials: int
    trial_epochs: int
    wall_s: float

    @property
    def beats_seasonal_naive(self) -> bool:
        return self.test_metrics["mse"] < self.naive_test_metrics["mse"]


def input_lengths(shortest_train: int, horizon: int) -> list[int]:
    """Input-length candidates that leave at least ``2 * horizon`` training windows (at least one: 1/3 of
    the shortest training series, or 1)."""
    fitting = [n for n in INPUT_LEN_CANDIDATES if n + 3 * horizon <= shortest_train]
    return fitting or [max(1, shortest_train // 3)]


def _test_metrics(model: Any, splits: Sequence[TargetSplit], horizon: int) -> dict[str, float]:
    series = [np.concatenate([s.train, s.val, s.test]) for s in splits]
    starts = [len(s.train) + len(s.val) for s in splits]
    return rolling_origin_evaluate(model, series, starts, horizon=horizon, stride=horizon).metrics


def tune_and_register(
    target: str,
    splits: Sequence[TargetSplit],
    *,
    registry: ModelRegistry,
    horizon: int,
    partitions: Sequence[str],
    num_samples: int,
    time_budget_s: float | None,
    max_epochs: int,
    seed: int = 0,
    families: Sequence[str] = DEFAULT_FAMILIES,
    fixed_params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[TuningProgress], None] | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    max_concurrent_trials: int | None = None,
) -> ChampionReport:
    """Search, judge and register ``target``'s champion over ``splits`` (one split: a per-series model;
    many: a global model). See the module doc. Raises ValueError when a split's validation or test part is
    shorter than ``horizon`` (for a global model: when every member's is; shorter members are left out)."""
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    if not splits:
        raise ValueError(f"no training data for target {target!r}")
    short = [s.series_id for s in splits if len(s.test) < horizon or len(s.val) < horizon]
    usable = [s for s in splits if s.series_id not in short]
    if short and (len(splits) == 1 or not usable):
        raise ValueError(f"validation/test splits shorter than the horizon {horizon} for {short[:5]}")
    splits = usable  # a global model leaves out the members too short to judge, and learns from the rest
    season = min(splits[0].season_length, min(len(s.train) for s in splits))
    fixed = {k: dict(v) for k, v in (fixed_params or {}).items()}
    fixed.setdefault("lstm", {}).setdefault("epochs", max_epochs)
    fixed.setdefault("seasonal_naive", {}).setdefault("season", season)
    space = default_search_space(families, input_lengths(min(len(s.train) for s in splits), horizon))
    registry.ensure_experiment(target)
    logger = MLflowLoggerCallback(
        tracking_uri=registry.tracking_uri,
        registry_uri=registry.tracking_uri,
        experiment_name=registry.experiment_name(target),
        tags={"tsplatform.target": target, "tsplatform.kind": "trial"},
    )
    train = [s.train for s in splits]
    val = [s.val for s in splits]
    result = tune_forecaster(
        train,
        val,
        horizon=horizon,
        param_space=space,
        fixed_params=fixed,
        num_samples=num_samples,
        time_budget_s=time_budget_s,
        max_epochs=max_epochs,
        seed=seed,
        progress=progress,
        callbacks=[logger],
        address=address,
        num_cpus=num_cpus,
        max_concurrent_trials=max_concurrent_trials,
        experiment_name=registry.experiment_name(target).replace("/", "_"),
    )
    test = _test_metrics(result.champion, splits, horizon)
    naive = SeasonalNaiveForecaster(season=season).fit(train)
    naive_test = _test_metrics(naive, splits, horizon)
    params: dict[str, Any] = {
        **{k: v for k, v in result.best_config.items() if k != "members"},
        "horizon": horizon,
        "season": season,
        "period_s": splits[0].period.total_seconds(),
        "series": len(splits),
        "context_length": result.champion.context_length,
    }
    if result.ensemble_members:
        params["members"] = result.ensemble_members
    extra = {
        **{f"val_{k}": v for k, v in result.val_metrics.items()},
        **{f"seasonal_naive_{k}": v for k, v in naive_test.items()},
    }
    lineage = Lineage(
        partitions=sorted(partitions),
        data_checksum=data_checksum(a for s in splits for a in (s.train, s.val, s.test)),
    )
    champion = registry.register_champion(
        target,
        result.champion,
        family=str(result.best_config.get("family", "")),
        params=params,
        metrics=test,
        extra_metrics=extra,
        lineage=lineage,
    )
    return ChampionReport(
        target=target,
        champion=champion,
        val_metrics=dict(result.val_metrics),
        test_metrics=dict(test),
        naive_test_metrics=dict(naive_test),
        trials=len(result.trials),
        trial_epochs=result.trial_epochs,
        wall_s=result.wall_s,
    )


def serve_forecasts(
    registry: ModelRegistry,
    histories: Mapping[str, np.ndarray],
    type_names: Mapping[str, str],
    horizon: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """Next-horizon forecasts per series from its champion: the series' own, else its type's global one.

    ``histories``: ``{series_id: values on the series' grid, oldest first}``. ``horizon``: steps; default
    each champion's trained horizon. Returns ``(predictions, model labels, skipped {series_id: reason})``;
    one batched ``predict`` per champion, models loaded once each from the registry (safe formats only).
    """
    champions = {c.target: c for c in registry.champions()}
    by_champion: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for sid in histories:
        for target in (sid, global_target(type_names.get(sid, ""))):
            if target in champions:
                by_champion.setdefault(target, []).append(sid)
                break
        else:
            skipped[sid] = "no champion registered (own or global)"
    predictions: dict[str, np.ndarray] = {}
    labels: dict[str, str] = {}
    for target, sids in by_champion.items():
        model, champion = registry.load(target)
        steps = int(horizon or int(float(champion.params.get("horizon", "1"))))
        context = int(model.context_length)
        ready = []
        for sid in sids:
            history = np.asarray(histories[sid], dtype=float)
            if len(history) < context or not np.isfinite(history[-context:]).all():
                skipped[sid] = f"history of {len(history)} values, the champion needs {context} finite ones"
            else:
                ready.append(sid)
        if not ready:
            continue
        predicted = model.predict([histories[sid] for sid in ready], steps)
        for sid, row in zip(ready, predicted, strict=True):
            if np.isfinite(row).all():
                predictions[sid] = row
                labels[sid] = champion.label
            else:
                skipped[sid] = "the champion's forecast is not finite"
    return predictions, labels, skipped


def validation_mse(champions: Sequence[Champion], type_names: Mapping[str, str]) -> dict[str, float]:
    """``{series_id: its champion's validation MSE}`` (own champion first, else its type's global one)."""
    by_target = {c.target: c for c in champions}
    out: dict[str, float] = {}
    for sid, type_name in type_names.items():
        champion = by_target.get(sid) or by_target.get(global_target(type_name))
        if champion is not None and math.isfinite(champion.metrics.get("val_mse", math.nan)):
            out[sid] = champion.metrics["val_mse"]
    return out
