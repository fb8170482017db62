"""The Forecaster families: accuracy on a seasonal series, global fits, safe save/load, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tsplatform.ml.evaluation import rolling_origin_evaluate
from tsplatform.ml.models import (
    FAMILIES,
    Forecaster,
    ensemble_of,
    load_forecaster,
    make_forecaster,
)
from tsplatform_tests.ml.conftest import SEASON, seasonal_series

HORIZON = 24
TRAIN_END, VAL_END = 800, 1000
TINY_LSTM = {
    **{"input_len": 48, "horizon": HORIZON, "hidden_size": 8, "num_layers": 1, "lr": 0.01, "patch_len": 12},
    **{"epochs": 15, "batch_size": 32, "windows_per_epoch": 256, "patience": 3},
}

#: (family, params) of every family as unit-tested; each should beat naive on a seasonal series.
SEASONAL_MODELS: list[tuple[str, dict]] = [
    ("seasonal_naive", {"season": SEASON}),
    ("ets", {"season": SEASON, "history": 96, "fit_length": 400}),
    ("arima", {"order": [2, 0, 1], "history": 96, "fit_length": 400}),
    ("linear", {"input_len": 48, "horizon": HORIZON, "variant": "nlinear"}),
    ("linear", {"input_len": 48, "horizon": HORIZON, "variant": "dlinear", "kernel": 5}),
    ("lstm", TINY_LSTM),
]


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    return seasonal_series(1200)


def fit(family: str, params: dict, series: np.ndarray) -> Forecaster:
    return make_forecaster(family, **params).fit([series[:TRAIN_END]], [series[TRAIN_END:VAL_END]])


def test_mse(model: Forecaster, series: np.ndarray) -> float:
    return rolling_origin_evaluate(model, series, VAL_END, len(series), HORIZON, stride=6).metrics["mse"]


test_mse.__test__ = False  # a helper, not a test


@pytest.mark.parametrize(("family", "params"), SEASONAL_MODELS, ids=lambda v: v if isinstance(v, str) else "")
def test_family_beats_naive_on_a_seasonal_series(family: str, params: dict, series: np.ndarray) -> None:
    naive = test_mse(fit("naive", {}, series), series)
    model_mse = test_mse(fit(family, params, series), series)
    # naive repeats one value over a whole 24-step cycle of amplitude 3: MSE ~ 9; the noise floor is 0.09
    assert naive > 5
    assert model_mse < 0.5 * naive, (family, params, model_mse, naive)


def test_linear_recovers_a_noise_free_seasonal_series_almost_exactly() -> None:
    clean = seasonal_series(600, noise=0.0)
    model = make_forecaster("linear", input_len=48, horizon=HORIZON, alpha=1e-6).fit([clean[:400]])
    mse = rolling_origin_evaluate(model, clean, 400, 600, HORIZON).metrics["mse"]
    assert mse < 1e-6


@pytest.mark.parametrize(("family", "params"), [("naive", {}), *SEASONAL_MODELS],
                         ids=lambda v: v if isinstance(v, str) else "")  # fmt: skip
def test_save_and_load_reproduce_predictions_exactly(
    family: str, params: dict, series: np.ndarray, tmp_path: Path
) -> None:
    model = fit(family, params, series)
    histories = [series[:VAL_END], series[: VAL_END + 7], series[: VAL_END + 30]]
    before = model.predict(histories, HORIZON)
    model.save(tmp_path / "model")
    loaded = load_forecaster(tmp_path / "model")
    assert type(loaded) is type(model)
    assert loaded.params == json.loads(json.dumps(model.params))
    np.testing.assert_array_equal(loaded.predict(histories, HORIZON), before)
    # safe formats only: JSON params, npz arrays, a torch state_dict
    assert {p.suffix for p in (tmp_path / "model").iterdir()} <= {".json", ".npz", ".pt"}


def test_ensemble_is_the_mean_of_its_members_and_round_trips(series: np.ndarray, tmp_path: Path) -> None:
    members = [fit("linear", {"input_len": n, "horizon": HORIZON}, series) for n in (24, 48)]
    members.append(fit("seasonal_naive", {"season": SEASON}, series))
    ensemble = ensemble_of(members)
    histories = [series[:VAL_END], series[: VAL_END + 5]]
    expected = np.mean([m.predict(histories, HORIZON) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict(histories, HORIZON), expected)
    assert ensemble.context_length == 48
    ensemble.save(tmp_path / "ens")
    loaded = load_forecaster(tmp_path / "ens")
    np.testing.assert_array_equal(loaded.predict(histories, HORIZON), ensemble.predict(histories, HORIZON))
    # an ensemble built from params fits its members itself
    refit = make_forecaster("ensemble", members=[{"family": m.family, "params": m.params} for m in members])
    refit.fit([series[:TRAIN_END]], [series[TRAIN_END:VAL_END]])
    np.testing.assert_allclose(refit.predict(histories, HORIZON), expected)


def test_global_lstm_across_series_of_different_levels_and_phases() -> None:
    many = [
        seasonal_series(900, level=level, amplitude=amp, phase=phase, seed=i)
        for i, (level, amp, phase) in enumerate([(10, 3, 0), (50, 6, 1.0), (-5, 2, 2.5), (20, 4, 4.0)])
    ]
    train, val = [s[:600] for s in many], [s[600:750] for s in many]
    model = make_forecaster("lstm", **TINY_LSTM).fit(train, val)
    naive = make_forecaster("naive").fit(train)
    for s in many:
        model_mse = rolling_origin_evaluate(model, s, 750, 900, HORIZON, stride=6).metrics["mse"]
        naive_mse = rolling_origin_evaluate(naive, s, 750, 900, HORIZON, stride=6).metrics["mse"]
        assert model_mse < 0.5 * naive_mse
    out = model.predict([s[:750] for s in many], HORIZON)
    assert out.shape == (4, HORIZON)
    # one batched call equals one call per series
    np.testing.assert_allclose(out[2], model.predict([many[2][:750]], HORIZON)[0], rtol=1e-6)


def test_lstm_is_deterministic_on_the_cpu(series: np.ndarray) -> None:
    a = fit("lstm", {**TINY_LSTM, "epochs": 3}, series).predict([series[:VAL_END]], HORIZON)
    b = fit("lstm", {**TINY_LSTM, "epochs": 3}, series).predict([series[:VAL_END]], HORIZON)
    c = fit("lstm", {**TINY_LSTM, "epochs": 3, "seed": 1}, series).predict([series[:VAL_END]], HORIZON)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_lstm_reports_epochs_and_keeps_the_best_weights(series: np.ndarray) -> None:
    seen: list[tuple[int, dict]] = []
    model = make_forecaster("lstm", **{**TINY_LSTM, "epochs": 6, "patience": 10})
    model.fit([series[:TRAIN_END]], [series[TRAIN_END:VAL_END]], on_epoch=lambda e, m: seen.append((e, m)))
    assert [e for e, _ in seen] == [1, 2, 3, 4, 5, 6]
    best = min(m["val_mse"] for _, m in seen)
    val_mse = rolling_origin_evaluate(model, series, TRAIN_END, VAL_END, HORIZON).metrics["mse"]
    assert val_mse == pytest.approx(best, rel=1e-4)  # the restored best epoch, in the caller's units


def test_longer_horizons_are_predicted_recursively(series: np.ndarray) -> None:
    model = fit("linear", {"input_len": 48, "horizon": HORIZON}, series)
    long = model.predict([series[:VAL_END]], 3 * HORIZON + 5)
    assert long.shape == (1, 3 * HORIZON + 5)
    np.testing.assert_allclose(long[0, :HORIZON], model.predict([series[:VAL_END]], HORIZON)[0])
    assert np.mean((long[0] - series[VAL_END : VAL_END + 77]) ** 2) < 1.0


def test_training_skips_windows_with_nan(series: np.ndarray) -> None:
    holed = series[:TRAIN_END].copy()
    holed[100:110] = np.nan
    model = make_forecaster("linear", input_len=48, horizon=HORIZON).fit([holed])
    assert np.isfinite(model.predict([series[:VAL_END]], HORIZON)).all()


def test_bad_input_gets_clear_errors(series: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model family"):
        make_forecaster("prophet")
    with pytest.raises(ValueError, match="unknown params"):
        make_forecaster("linear", hidden_size=3)
    with pytest.raises(ValueError, match="multiple of patch_len"):
        make_forecaster("lstm", input_len=50, patch_len=12).fit([series])
    model = fit("linear", {"input_len": 48, "horizon": HORIZON}, series)
    with pytest.raises(ValueError, match="needs at least 48"):
        model.predict([series[:10]], HORIZON)
    holed = series[:VAL_END].copy()
    holed[-3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict([holed], HORIZON)
    with pytest.raises(ValueError, match="horizon"):
        model.predict([series], 0)
    with pytest.raises(ValueError, match="no complete window"):
        make_forecaster("linear", input_len=48, horizon=HORIZON).fit([series[:50]])
    with pytest.raises(ValueError, match="val has 2 arrays for 1 series"):
        make_forecaster("lstm", **TINY_LSTM).fit([series[:500]], [series[500:600], series[600:700]])
    with pytest.raises(RuntimeError, match="not fitted"):
        make_forecaster("arima").predict([series], 3)
    with pytest.raises(FileNotFoundError):
        load_forecaster(tmp_path / "nothing")


@pytest.mark.security  # models load only in safe formats (issue 11)
def test_loading_refuses_a_pickled_object_in_the_weights(series: np.ndarray, tmp_path: Path) -> None:
    import pickle

    import torch

    model = fit("lstm", {**TINY_LSTM, "epochs": 1}, series)
    model.save(tmp_path / "m")
    # a tampered state.pt that would run code when unpickled
    torch.save({"weights": Evil()}, tmp_path / "m" / "state.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_forecaster(tmp_path / "m")


class Evil:
    def __reduce__(self) -> tuple:
        return (print, ("unpickled!",))


def test_every_family_is_registered() -> None:
    assert set(FAMILIES) == {"naive", "seasonal_naive", "ets", "arima", "linear", "lstm", "ensemble"}
