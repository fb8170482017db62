"""Ray Tune + ASHA search with a real local Ray: a reproducible champion on a tiny budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tsplatform.ml.evaluation import forecast_metrics
from tsplatform.ml.models import make_forecaster
from tsplatform.ml.tuning import (
    TuningProgress,
    default_search_space,
    ensure_ray,
    trial_params,
    tune_forecaster,
    validation_predictions,
)
from tsplatform_tests.ml.conftest import seasonal_series

HORIZON = 24
FIXED = {"lstm": {"epochs": 4, "patch_len": 12, "windows_per_epoch": 128, "batch_size": 32, "patience": 2}}


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import ray

    started = not ray.is_initialized()
    ensure_ray(num_cpus=2, state_dir=tmp_path_factory.mktemp("ray-state"))
    yield
    if started:
        ray.shutdown()


def space() -> dict:
    from ray import tune

    return {
        "family": tune.choice(["linear", "lstm"]),
        "input_len": tune.choice([24, 48]),
        "hidden_size": tune.choice([2, 4, 8]),
        "lr": tune.loguniform(0.001, 0.1),
        "num_layers": tune.randint(1, 3),
    }


def search(storage: Path, seed: int, updates: list[TuningProgress] | None = None, **kwargs):
    series = seasonal_series(700, seed=3)
    return tune_forecaster(
        [series[:450]], [series[450:600]], horizon=HORIZON, param_space=space(), fixed_params=FIXED,
        num_samples=4, grace_period=1, seed=seed, max_concurrent_trials=1, storage_dir=storage,
        progress=None if updates is None else updates.append, **kwargs,
    )  # fmt: skip


@pytest.mark.integration  # a real local Ray
def test_same_seed_same_champion_which_beats_seasonal_naive(ray_session: None, tmp_path: Path) -> None:
    updates: list[TuningProgress] = []
    first = search(tmp_path / "a", seed=7, updates=updates, ensemble_size=3)
    second = search(tmp_path / "b", seed=7, ensemble_size=3)
    assert first.best_config == second.best_config
    assert first.val_metrics == pytest.approx(second.val_metrics, rel=1e-9)
    assert [t.config for t in first.trials] == [t.config for t in second.trials]
    # progress: one update per finished trial, counting up to the trial budget
    assert [u.done for u in updates] == [1, 2, 3, 4]
    assert all(u.total == 4 for u in updates)
    assert updates[-1].best_val_mse == pytest.approx(min(t.best_val_mse for t in first.trials))
    # the champion is fitted, scored on validation, and beats seasonal naive there
    series = seasonal_series(700, seed=3)
    naive = make_forecaster("seasonal_naive", season=24).fit([series[:450]])
    predicted, actual = validation_predictions(naive, [series[:450]], [series[450:600]], HORIZON)
    assert first.val_metrics["mse"] < forecast_metrics(actual, predicted)["mse"]
    champion_pred, _ = validation_predictions(first.champion, [series[:450]], [series[450:600]], HORIZON)
    assert forecast_metrics(actual, champion_pred)["mse"] == pytest.approx(first.val_metrics["mse"])
    assert first.val_metrics["mse"] <= first.best_single_val_mse + 1e-12
    assert first.trial_epochs == sum(t.epochs for t in first.trials) > 0
    # another seed samples other configurations
    other = search(tmp_path / "c", seed=8)
    assert [t.config for t in other.trials] != [t.config for t in first.trials]


@pytest.mark.integration  # a real local Ray
def test_the_champion_is_the_best_epoch_not_the_last(ray_session: None, tmp_path: Path) -> None:
    """A trial's best checkpoint is reloaded (get_best_checkpoint), so the champion's validation MSE is
    the trial's best reported one even when later epochs were worse."""
    from ray import tune

    series = seasonal_series(700, seed=3)
    lstm_only = {"family": "lstm", "input_len": 48, "hidden_size": 8, "num_layers": 1,
                 "lr": tune.choice([0.09])}  # fmt: skip
    fixed = {"lstm": {**FIXED["lstm"], "epochs": 6, "patience": 6}}
    result = tune_forecaster(
        [series[:450]], [series[450:600]], horizon=HORIZON, param_space=lstm_only, fixed_params=fixed,
        num_samples=1, scheduler="fifo", seed=0, storage_dir=tmp_path,
    )  # fmt: skip
    (trial,) = result.trials
    assert result.val_metrics["mse"] == pytest.approx(trial.best_val_mse, rel=1e-4)


def test_trial_params_keep_only_what_the_family_uses() -> None:
    config = {"family": "linear", "input_len": 96.0, "hidden_size": 8, "lr": 0.01, "num_layers": 2}
    assert trial_params(config, 24, None) == {"input_len": 96, "horizon": 24}
    lstm = trial_params({**config, "family": "lstm"}, 24, {"lstm": {"epochs": 3}})
    assert lstm == {
        "input_len": 96,
        "hidden_size": 8,
        "lr": 0.01,
        "num_layers": 2,
        "epochs": 3,
        "horizon": 24,
    }
    with pytest.raises(ValueError, match="unknown model family"):
        trial_params({"family": "gbm"}, 24, None)


def test_default_space_is_the_studys() -> None:
    from ray.tune.search.sample import Categorical, Float, Integer

    space = default_search_space()
    assert isinstance(space["hidden_size"], Categorical)
    assert space["hidden_size"].categories == [2, 4, 8, 16, 32, 64]
    assert isinstance(space["lr"], Float) and (space["lr"].lower, space["lr"].upper) == (0.001, 0.1)
    assert isinstance(space["num_layers"], Integer)
    assert sorted({space["num_layers"].sample() for _ in range(300)}) == [1, 2, 3, 4, 5]


def test_per_family_selection_takes_the_k_best_of_each_family_and_scores_their_mean() -> None:
    """Pure: real fitted models as candidates; ``k`` comes from ``sizes``, the members are each family's
    best on all of validation, and the score is the MSE of their plain mean."""
    import numpy as np

    from tsplatform.ml.tuning import TrialSummary, select_per_family

    series = seasonal_series(900, seed=5)
    train, val = [series[:600]], [series[600:]]
    models = [
        ("linear", make_forecaster("linear", input_len=n, horizon=HORIZON, alpha=a).fit(train))
        for n, a in ((24, 1.0), (48, 1.0), (96, 10.0), (48, 1000.0))
    ] + [
        ("seasonal", make_forecaster("seasonal_naive", season=24).fit(train)),
        ("seasonal", make_forecaster("naive").fit(train)),
    ]
    candidates = [(TrialSummary({"family": f}, 0.0, 1, "done"), m) for f, m in models]
    chosen, score = select_per_family(candidates, train, val, HORIZON, sizes=(1, 2))

    errors = []
    for _, model in models:
        predicted, actual = validation_predictions(model, train, val, HORIZON)
        errors.append(forecast_metrics(actual, predicted)["mse"])
    k = len(chosen) // 2
    assert k in (1, 2) and len(chosen) == 2 * k
    linear, seasonal = sorted(range(4), key=errors.__getitem__), sorted((4, 5), key=errors.__getitem__)
    assert sorted(chosen) == sorted(linear[:k] + seasonal[:k])
    mean = np.mean([validation_predictions(models[i][1], train, val, HORIZON)[0] for i in chosen], axis=0)
    assert score == pytest.approx(float(np.mean((mean - actual) ** 2)), rel=1e-12)


def test_per_family_candidates_are_one_per_input_window() -> None:
    """Trials that see the same window and differ only in fitting (alpha, lr, width) are one candidate,
    the best of them; a different input length, variant or patch length is another."""
    from tsplatform.ml.tuning import TrialSummary, distinct_trials, input_window

    configs = [
        {"family": "linear", "input_len": 336, "variant": "nlinear", "alpha": 285.0, "patch_len": 8},
        {"family": "linear", "input_len": 336, "variant": "nlinear", "alpha": 901.0, "patch_len": 24},
        {"family": "lstm", "input_len": 504, "patch_len": 24, "hidden_size": 32, "lr": 0.04, "num_layers": 2},
        {"family": "linear", "input_len": 504, "variant": "nlinear", "alpha": 219.0, "patch_len": 8},
        {"family": "lstm", "input_len": 504, "patch_len": 24, "hidden_size": 16, "lr": 1e-3, "num_layers": 2},
        {"family": "linear", "input_len": 336, "variant": "dlinear", "alpha": 143.0, "patch_len": 8},
        {"family": "lstm", "input_len": 504, "patch_len": 8, "hidden_size": 16, "lr": 1e-3, "num_layers": 2},
    ]
    ranked = [TrialSummary(c, 0.09 + i / 1000, 1, "done") for i, c in enumerate(configs)]
    fixed = {"lstm": {"epochs": 4}}  # patch_len from the config, as in the ETTh1 search
    by_window = distinct_trials(ranked, HORIZON, fixed, by_window=True)
    assert [configs.index(t.config) for t in by_window] == [0, 2, 3, 5, 6]
    assert len(distinct_trials(ranked, HORIZON, fixed)) == len(configs)  # all differ in params
    assert input_window("linear", trial_params(configs[1], HORIZON, None)) == {
        "family": "linear", "input_len": 336, "variant": "nlinear"
    }  # fmt: skip
    assert input_window("lstm", trial_params(configs[2], HORIZON, None)) == {
        "family": "lstm", "input_len": 504, "patch_len": 24
    }  # fmt: skip
