"""Hyperparameter search with Ray Tune and ASHA over model families and their parameters.

:func:`tune_forecaster` trains one trial per sampled configuration on ``train`` (a list of series: one
for a per-series model, many for a global one), scores it on ``val`` (``val[i]`` continues
``train[i]``) by the MSE pooled over every validation window (stride 1, targets inside ``val``, in the
caller's units), and returns the champion: the trial with the best validation MSE at its best epoch,
reloaded from that epoch's checkpoint (``get_best_checkpoint`` with ``checkpoint_score_attribute``; a
trial's last-epoch result is not its best). With ``ensemble_size`` > 1 the champion may be the plain mean
of several good trials, chosen by greedy forward selection on validation among the best
``ensemble_candidates`` distinct trials of each family (so members differ), when validation prefers it.

The search space (:func:`default_search_space`) is the study's -- ``hidden_size`` in [2, 4, 8, 16, 32,
64], ``lr`` loguniform(0.001, 0.1), ``num_layers`` 1..5 -- plus ``input_len`` and ``family``; a key that a
family does not use is ignored by its trials. Iterative trials (LSTM) report every epoch so ASHA stops
poor ones early; the others report once.

Ray: a local Ray (``ray.init(num_cpus=<CPUs>, include_dashboard=False)``) unless ``address`` (default:
``TSPLATFORM_RAY_ADDRESS``) names a cluster; an already initialised Ray is reused. Budgets: ``num_samples``
trials and ``time_budget_s`` seconds. Reproducibility: configurations are sampled from ``seed`` and each
trial is seeded, so with ``max_concurrent_trials=1`` the whole search is repeatable on the CPU; with
parallel trials ASHA's stop decisions depend on the order results arrive in (documented Ray behaviour).
Progress: ``progress(TuningProgress)`` after every finished trial; ``callbacks`` are passed to Tune
(e.g. ``ray.air.integrations.mlflow.MLflowLoggerCallback`` to log every trial).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsplatform.ml.evaluation import forecast_metrics, rolling_origin_predictions, rolling_origins
from tsplatform.ml.models import (
    FAMILIES,
    Forecaster,
    LSTMForecaster,
    as_series_list,
    ensemble_of,
    load_forecaster,
    make_forecaster,
)

log = logging.getLogger(__name__)

METRIC = "val_mse"
STUDY_HIDDEN_SIZES = (2, 4, 8, 16, 32, 64)
#: Families that need the forecast horizon as a training parameter.
WINDOW_FAMILIES = ("linear", "lstm")


def default_search_space(
    families: Sequence[str] = ("linear", "lstm"),
    input_lens: Sequence[int] = (96, 192, 336, 512, 720),
) -> dict[str, Any]:
    """The study's LSTM space plus ``input_len`` and ``family`` (Ray Tune sampling objects)."""
    from ray import tune

    return {
        "family": tune.choice(list(families)),
        "input_len": tune.choice(list(input_lens)),
        "hidden_size": tune.choice(list(STUDY_HIDDEN_SIZES)),
        "lr": tune.loguniform(0.001, 0.1),
        "num_layers": tune.randint(1, 6),  # 1..5 (the upper bound is excluded)
    }


@dataclass(frozen=True)
class TuningProgress:
    """Sent to the ``progress`` callback after each finished trial."""

    done: int
    total: int
    best_val_mse: float
    best_config: dict[str, Any] | None

    def __str__(self) -> str:
        return f"trials {self.done}/{self.total}, best val MSE {self.best_val_mse:.5g} ({self.best_config})"


@dataclass
class TrialSummary:
    config: dict[str, Any]
    best_val_mse: float
    epochs: int  # iterations reported (epochs for LSTM, 1 for the others)
    status: str
    checkpoint_path: str | None = None
    cpu_s: float = math.nan  # CPU seconds the trial's process spent (its last report)


@dataclass
class TuningResult:
    """The search outcome. ``champion`` is fitted; ``val_metrics`` are its validation MSE/RMSE/MAE/MAPE."""

    best_config: dict[str, Any]
    champion: Forecaster
    val_metrics: dict[str, float]
    trials: list[TrialSummary]
    trial_epochs: int
    wall_s: float
    ensemble_members: list[dict[str, Any]] = field(default_factory=list)
    best_single_val_mse: float = math.nan


def trial_params(
    config: dict[str, Any], horizon: int, fixed: dict[str, dict[str, Any]] | None
) -> dict[str, Any]:
    """The model params of a trial: the config's keys the family knows, the family's fixed params, and
    ``horizon`` for window families."""
    family = config["family"]
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}")
    known = FAMILIES[family].defaults
    params = {k: v for k, v in config.items() if k in known}
    params.update((fixed or {}).get(family, {}))
    if family in WINDOW_FAMILIES:
        params["horizon"] = horizon
    for key in ("hidden_size", "num_layers", "input_len"):
        if key in params:
            params[key] = int(params[key])
    return params


def validation_predictions(
    model: Forecaster, train: Sequence[np.ndarray], val: Sequence[np.ndarray], horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, actual) over every validation window (stride 1) of every series, stacked."""
    predicted, actual = [], []
    for t, v in zip(train, val, strict=True):
        joined = np.concatenate([t, v])
        origins = rolling_origins(len(t), len(joined), horizon)
        if not len(origins):
            continue
        predicted.append(rolling_origin_predictions(model, joined, origins, horizon))
        actual.append(np.stack([joined[o : o + horizon] for o in origins]))
    if not predicted:
        raise ValueError(f"no validation window of horizon {horizon}: validation series too short")
    return np.concatenate(predicted), np.concatenate(actual)


def _trial(
    config: dict[str, Any],
    train: list[np.ndarray],
    val: list[np.ndarray],
    horizon: int,
    fixed: dict[str, dict[str, Any]] | None,
) -> None:
    """A Ray Tune function trainable: fit, report ``val_mse`` (per epoch for LSTM) with checkpoints."""
    import torch
    from ray import tune

    torch.set_num_threads(1)  # one CPU per trial
    cpu_start = time.process_time()
    train = as_series_list(train)  # copies: Ray's arrays are read-only
    val = as_series_list(val, "val")
    model = make_forecaster(config["family"], **trial_params(config, horizon, fixed))

    def report(model: Forecaster, metrics: dict[str, float], best: bool) -> None:
        if best:
            with tempfile.TemporaryDirectory() as directory:
                model.save(directory)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)

    if isinstance(model, LSTMForecaster):
        best = [math.inf]

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            improved = metrics["val_mse"] < best[0]
            best[0] = min(best[0], metrics["val_mse"])
            cpu_s = time.process_time() - cpu_start
            report(model, {**metrics, "best_val_mse": best[0], "epoch": epoch, "cpu_s": cpu_s}, improved)

        model.fit(train, val, on_epoch=on_epoch)
        return
    model.fit(train, val)
    predicted, actual = validation_predictions(model, train, val, horizon)
    score = forecast_metrics(actual, predicted)["mse"]
    cpu_s = time.process_time() - cpu_start
    report(model, {"val_mse": score, "best_val_mse": score, "epoch": 1, "cpu_s": cpu_s}, True)


def ray_temp_dir(state_dir: Path) -> str:
    """Ray's temp dir under the state dir, or a short one under /tmp when that path is too long for
    Ray's Unix sockets (~107 bytes)."""
    candidate = (state_dir / "ray").resolve()
    if len(str(candidate)) <= 50:
        return str(candidate)
    return str(Path(tempfile.gettempdir()) / f"tsplatform-ray-{os.getuid()}")


def ensure_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    state_dir: Path | None = None,
    start_attempts: int = 5,
) -> None:
    """Connect to ``address`` (or ``TSPLATFORM_RAY_ADDRESS``), else start a local Ray (retried: on a loaded
    machine Ray's fixed 30-s raylet registration can time out); reuse an initialised one."""
    import ray

    if ray.is_initialized():
        return
    from tsplatform.settings import get_settings

    settings = get_settings()
    address = address or settings.ray_address
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    state = state_dir or settings.state_path
    temp = ray_temp_dir(state)
    Path(temp).mkdir(parents=True, exist_ok=True)
    for attempt in range(1, start_attempts + 1):
        try:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                _temp_dir=temp,
                log_to_driver=False,
                configure_logging=False,
            )
            return
        # A loaded machine misses Ray's fixed start-up timeouts (the raylet dies when the dashboard agent
        # has not written its port file within 15 s: ray-project/ray#65983; node.py gives up after 30 s).
        except Exception as error:
            ray.shutdown()
            if attempt == start_attempts:
                raise RuntimeError(f"local Ray did not start after {attempt} attempts: {error}") from error
            log.warning("local Ray did not start (attempt %d of %d): %s", attempt, start_attempts, error)


def _summaries(grid: Any) -> list[TrialSummary]:
    out = []
    for result in grid:
        if result.config is None:  # never started (time budget spent first)
            continue
        frame = result.metrics_dataframe
        if frame is None or METRIC not in frame or frame[METRIC].isna().all():
            out.append(TrialSummary(dict(result.config), math.inf, 0, "error" if result.error else "empty"))
            continue
        checkpoint = result.get_best_checkpoint(METRIC, "min")
        out.append(
            TrialSummary(
                config=dict(result.config),
                best_val_mse=float(frame[METRIC].min()),
                epochs=len(frame),
                status="error" if result.error else "done",
                checkpoint_path=checkpoint.path if checkpoint is not None else None,
                cpu_s=float(frame["cpu_s"].iloc[-1]) if "cpu_s" in frame else math.nan,
            )
        )
    return out


def _candidate_predictions(
    candidates: list[tuple[TrialSummary, Forecaster]],
    train: list[np.ndarray],
    val: list[np.ndarray],
    horizon: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, actual) over every validation window: shapes (candidates, windows, horizon) and
    (windows, horizon). Raises ValueError without candidates."""
    if not candidates:
        raise ValueError("no ensemble candidates")
    predictions = [validation_predictions(model, train, val, horizon) for _, model in candidates]
    return np.stack([p for p, _ in predictions]), predictions[0][1]


def select_ensemble(
    candidates: list[tuple[TrialSummary, Forecaster]],
    train: list[np.ndarray],
    val: list[np.ndarray],
    horizon: int,
    max_members: int,
) -> tuple[list[int], float]:
    """Greedy forward selection (no repeats) of members whose mean forecast minimises validation MSE;
    returns (indices into candidates, val MSE). Starts from the best single candidate."""
    predictions, actual = _candidate_predictions(candidates, train, val, horizon)
    scores = [float(np.mean((p - actual) ** 2)) for p in predictions]
    chosen = [int(np.argmin(scores))]
    best = scores[chosen[0]]
    total = predictions[chosen[0]].copy()
    while len(chosen) < max_members:
        trial_scores = {
            i: float(np.mean(((total + predictions[i]) / (len(chosen) + 1) - actual) ** 2))
            for i in range(len(candidates))
            if i not in chosen
        }
        if not trial_scores:
            break
        i = min(trial_scores, key=lambda k: trial_scores[k])
        if trial_scores[i] >= best:
            break
        chosen.append(i)
        best = trial_scores[i]
        total += predictions[i]
    return chosen, best


#: The params that decide what a window model sees of the series and how it cuts it into inputs.
WINDOW_KEYS = ("input_len", "variant", "patch_len")


def input_window(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """``family`` and the :data:`WINDOW_KEYS` among ``params``: trials that agree on it differ only in
    fitting (regularisation, learning rate, width), and their forecasts are nearly the same, so an ensemble
    gains from one of each, not from several."""
    return {"family": family, **{k: params[k] for k in WINDOW_KEYS if k in params}}


def distinct_trials(
    ranked: Sequence[TrialSummary],
    horizon: int,
    fixed: dict[str, dict[str, Any]] | None,
    *,
    by_window: bool = False,
) -> list[TrialSummary]:
    """The first of ``ranked`` (best first) per distinct model: per equal :func:`trial_params` (keys the
    family does not use ignored), or per :func:`input_window` with ``by_window``. Order kept."""
    distinct: dict[str, TrialSummary] = {}
    for t in ranked:
        params = trial_params(t.config, horizon, fixed)
        if by_window:
            params = input_window(t.config["family"], params)
        distinct.setdefault(json.dumps(params, sort_keys=True, default=str), t)
    return list(distinct.values())


def select_per_family(
    candidates: list[tuple[TrialSummary, Forecaster]],
    train: list[np.ndarray],
    val: list[np.ndarray],
    horizon: int,
    sizes: Sequence[int] = (1, 3, 5, 8),
) -> tuple[list[int], float]:
    """The plain mean of the ``k`` best candidates of each family, ``k`` in ``sizes`` chosen out of sample;
    returns (indices into candidates, val MSE over every validation window).

    The validation windows are cut in two halves (stacked per series in order, so for one series: early
    and late validation targets, ``horizon`` windows apart so that no target is shared). For each ``k``
    the members are ranked on the first half and the mean is scored on the second; the ``k`` with the
    lower score is then applied to the ranking on all windows. Unlike greedy selection on all of
    validation, nothing is both fitted and scored on the same windows -- which matters because iterative
    trials (LSTM) were early-stopped on validation, so their validation error is optimistic against the
    closed-form ones' (BENCHMARKS.md, ETTh1)."""
    stacked, actual = _candidate_predictions(candidates, train, val, horizon)
    families = [t.config["family"] for t, _ in candidates]
    half = len(actual) // 2
    first, second = slice(0, max(1, half - horizon)), slice(half, len(actual))

    def members(window: slice, k: int) -> list[int]:
        errors = np.mean((stacked[:, window] - actual[window]) ** 2, axis=(1, 2))
        chosen: list[int] = []
        for family in dict.fromkeys(families):
            ranked = sorted((i for i, f in enumerate(families) if f == family), key=lambda i: errors[i])
            chosen += ranked[:k]
        return chosen

    def score(chosen: list[int], window: slice) -> float:
        return float(np.mean((stacked[chosen][:, window].mean(axis=0) - actual[window]) ** 2))

    k = min(sizes, key=lambda size: score(members(first, size), second))
    chosen = members(slice(None), k)
    return chosen, score(chosen, slice(None))


class _ProgressCallback:
    """A Tune callback that counts finished trials and tracks the best validation MSE."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from ray import tune

        class ProgressCallback(tune.Callback):
            def __init__(self, progress: Callable[[TuningProgress], None] | None, total: int) -> None:
                self.progress = progress
                self.total = total
                self.done = 0
                self.best = math.inf
                self.best_config: dict[str, Any] | None = None

            def on_trial_result(
                self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
            ) -> None:
                value = result.get(METRIC)
                if value is not None and value < self.best:
                    self.best, self.best_config = float(value), dict(trial.config)

            def _finished(self) -> None:
                self.done += 1
                update = TuningProgress(self.done, self.total, self.best, self.best_config)
                log.info("tuning: %s", update)
                if self.progress is not None:
                    self.progress(update)

            def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
                self._finished()

            def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
                self._finished()

        return ProgressCallback(*args, **kwargs)


def tune_forecaster(
    train: Sequence[np.ndarray],
    val: Sequence[np.ndarray],
    *,
    horizon: int,
    param_space: dict[str, Any] | None = None,
    fixed_params: dict[str, dict[str, Any]] | None = None,
    num_samples: int = 16,
    time_budget_s: float | None = None,
    max_epochs: int | None = None,
    grace_period: int = 2,
    reduction_factor: int = 3,
    scheduler: str = "asha",
    seed: int = 0,
    max_concurrent_trials: int | None = None,
    ensemble_size: int = 1,
    ensemble_candidates: int = 8,
    ensemble_policy: str = "greedy",
    storage_dir: Path | str | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: Callable[[TuningProgress], None] | None = None,
    callbacks: Sequence[Any] = (),
    experiment_name: str = "tune_forecaster",
) -> TuningResult:
    """Search ``param_space`` (default :func:`default_search_space`) and return the champion.

    ``fixed_params[family]`` are params every trial of that family gets (e.g. ``{"lstm": {"epochs": 20,
    "patch_len": 24}}``); ``max_epochs`` (default: the LSTM's ``epochs``) is ASHA's ``max_t``.
    ``scheduler``: ``"asha"`` or ``"fifo"`` (every trial runs to its end, e.g. for a full grid).
    ``ensemble_size`` > 1 lets the champion be a plain mean of trials, chosen among the best
    ``ensemble_candidates`` distinct trials of each family by ``ensemble_policy``: ``"greedy"``
    (:func:`select_ensemble`, at most ``ensemble_size`` members) or ``"per_family"``
    (:func:`select_per_family`, the ``k`` <= ``ensemble_size`` best of each family, ``k`` chosen out of
    sample, at most one trial per :func:`input_window`); the champion is the mean only when it beats the
    best single trial on validation.
    ``num_samples`` is the trial budget (with ``tune.grid_search`` entries: repeats of the grid).
    Raises RuntimeError when no trial produced a validation score.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    from tsplatform.settings import get_settings

    train_rows = as_series_list(train, "train")
    val_rows = as_series_list(val, "val")
    if len(train_rows) != len(val_rows):
        raise ValueError(f"{len(val_rows)} validation series for {len(train_rows)} training series")
    space = dict(param_space or default_search_space())
    lstm_epochs = int((fixed_params or {}).get("lstm", {}).get("epochs", LSTMForecaster.defaults["epochs"]))
    max_t = int(max_epochs or lstm_epochs)
    if ensemble_policy not in ("greedy", "per_family"):
        raise ValueError(f"ensemble_policy must be 'greedy' or 'per_family', got {ensemble_policy!r}")
    if scheduler == "asha":
        trial_scheduler: Any = ASHAScheduler(
            time_attr="training_iteration", max_t=max_t, grace_period=grace_period,
            reduction_factor=reduction_factor,
        )  # fmt: skip
    elif scheduler == "fifo":
        trial_scheduler = FIFOScheduler()
    else:
        raise ValueError(f"scheduler must be 'asha' or 'fifo', got {scheduler!r}")

    state = Path(storage_dir) if storage_dir else get_settings().state_path / "tune"
    ensure_ray(address=address, num_cpus=num_cpus, state_dir=state.parent)
    grid_size = 1
    for value in space.values():
        if isinstance(value, dict) and "grid_search" in value:
            grid_size *= len(value["grid_search"])
    total = num_samples * grid_size
    progress_cb = _ProgressCallback(progress, total)
    trainable = tune.with_resources(
        tune.with_parameters(_trial, train=train_rows, val=val_rows, horizon=horizon, fixed=fixed_params),
        {"cpu": 1},
    )
    started = time.perf_counter()
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="min",
            scheduler=trial_scheduler,
            search_alg=BasicVariantGenerator(random_state=seed),
            num_samples=num_samples,
            time_budget_s=time_budget_s,
            max_concurrent_trials=max_concurrent_trials,
            reuse_actors=True,  # no torch import per trial
        ),
        run_config=tune.RunConfig(
            name=experiment_name,
            storage_path=str(state.resolve()),
            callbacks=[progress_cb, *callbacks],
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute=METRIC, checkpoint_score_order="min"
            ),
            verbose=0,
        ),
    )
    grid = tuner.fit()
    wall = time.perf_counter() - started
    trials = _summaries(grid)
    ranked = sorted((t for t in trials if t.checkpoint_path and math.isfinite(t.best_val_mse)),
                    key=lambda t: t.best_val_mse)  # fmt: skip
    if not ranked:
        errors = [str(r.error) for r in grid if r.error][:3]
        raise RuntimeError(f"no trial produced a validation score (first errors: {errors})")
    best = ranked[0]
    members: list[dict[str, Any]] = []
    champion = load_forecaster(best.checkpoint_path)
    if ensemble_size > 1:
        by_window = ensemble_policy == "per_family"
        per_family: dict[str, list[TrialSummary]] = {}  # the best of EACH family: diverse members
        for t in distinct_trials(ranked, horizon, fixed_params, by_window=by_window):
            per_family.setdefault(t.config["family"], []).append(t)
        pool = sorted((t for ts in per_family.values() for t in ts[:ensemble_candidates]),
                      key=lambda t: t.best_val_mse)  # fmt: skip
        candidates = [(t, load_forecaster(t.checkpoint_path)) for t in pool if t.checkpoint_path]
        if ensemble_policy == "per_family":
            sizes = [k for k in (1, 3, 5, 8, 13) if k <= min(ensemble_size, ensemble_candidates)] or [1]
            chosen, mean_mse = select_per_family(candidates, train_rows, val_rows, horizon, sizes)
            if mean_mse >= best.best_val_mse:  # the best single trial is better on validation
                chosen = []
        else:
            chosen, _ = select_ensemble(candidates, train_rows, val_rows, horizon, ensemble_size)
        if len(chosen) > 1:
            champion = ensemble_of([candidates[i][1] for i in chosen])
            members = [candidates[i][0].config for i in chosen]
    predicted, actual = validation_predictions(champion, train_rows, val_rows, horizon)
    result = TuningResult(
        best_config=dict(best.config) if not members else {"family": "ensemble", "members": members},
        champion=champion,
        val_metrics=forecast_metrics(actual, predicted),
        trials=trials,
        trial_epochs=sum(t.epochs for t in trials),
        wall_s=wall,
        ensemble_members=members,
        best_single_val_mse=best.best_val_mse,
    )
    log.info(
        "tuning done in %.1f s: %d trials, %d trial-epochs, champion %s, val MSE %.5g",
        *(wall, len(trials), result.trial_epochs, result.best_config, result.val_metrics["mse"]),
    )
    return result
