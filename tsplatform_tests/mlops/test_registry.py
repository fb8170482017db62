"""The MLflow registry on a real SQLite store: champion alias, metrics, lineage, safe-format loading."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from tsplatform.ml.models import LinearForecaster, NaiveForecaster
from tsplatform.ml.registry import (
    CHAMPION_ALIAS,
    Lineage,
    ModelNotFound,
    ModelRegistry,
    UnsafeModelArtifact,
    check_safe_artifacts,
    data_checksum,
    load_forecaster_dir,
    registered_model_name,
)

METRICS = {"mse": 4.0, "rmse": 2.0, "mae": 1.5, "mape": 3.0}


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri())


def fitted_linear(seed: int = 0) -> tuple[LinearForecaster, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(600)
    series = 10 + np.sin(2 * np.pi * t / 48) + 0.1 * rng.standard_normal(600)
    model = LinearForecaster(input_len=48, horizon=6).fit([series[:500]])
    return model, series


def test_registered_model_names_are_safe_and_distinct() -> None:
    assert registered_model_name("a__co2-0123456789abcdef") == "ts-a__co2-0123456789abcdef"
    unicode_a, unicode_b = registered_model_name("global:광 주 A"), registered_model_name("global:광 주 B")
    assert unicode_a != unicode_b
    for name in (unicode_a, unicode_b, registered_model_name("../../etc/passwd")):
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in name), name
    with pytest.raises(Exception, match="non-empty"):
        registered_model_name("")


def test_register_champion_alias_metrics_lineage_and_exact_reload(registry: ModelRegistry) -> None:
    model, series = fitted_linear()
    lineage = Lineage(partitions=["2022-10-14", "2022-10-15"], data_checksum=data_checksum([series[:500]]))
    champion = registry.register_champion(
        "s-1", model, family="linear", params={"input_len": 48}, metrics=METRICS,
        extra_metrics={"val_mse": 3.0, "seasonal_naive_mse": 9.0}, lineage=lineage,
    )  # fmt: skip
    assert champion.version == 1
    assert champion.label == f"{registered_model_name('s-1')}/1"
    version = registry.client.get_model_version_by_alias(champion.name, CHAMPION_ALIAS)
    assert int(version.version) == 1
    assert champion.metrics["mse"] == 4.0 and champion.metrics["val_mse"] == 3.0
    assert champion.params["input_len"] == "48"
    assert champion.lineage["partition_range"] == "2022-10-14..2022-10-15"
    assert champion.lineage["data_checksum"] == lineage.data_checksum
    assert champion.lineage["code_version"]
    run = registry.client.get_run(champion.run_id)
    assert run.data.metrics["rmse"] == 2.0 and run.data.params["family"] == "linear"

    loaded, found = registry.load("s-1")
    histories = [series[:520], series[:560]]
    np.testing.assert_array_equal(loaded.predict(histories, 6), model.predict(histories, 6))
    assert found == champion

    second = registry.register_champion(
        "s-1", NaiveForecaster().fit([series]), family="naive", params={}, metrics=METRICS, lineage=lineage
    )
    assert second.version == 2 and registry.champion("s-1").version == 2
    assert registry.versions("s-1") == [1, 2]
    assert [c.target for c in registry.champions()] == ["s-1"]


def test_artifacts_live_under_the_configured_root(registry: ModelRegistry, tmp_path: Path) -> None:
    model, _ = fitted_linear()
    registry.register_champion(
        "s-2", model, family="linear", params={}, metrics=METRICS, lineage=Lineage(["2022-10-15"], "x")
    )
    saved = list((tmp_path / "artifacts").rglob("forecaster.json"))
    assert saved, "the model's files are stored under the artifact root"
    assert not Path("mlruns").exists() or not any(Path("mlruns").rglob("forecaster.json"))


def test_missing_champion_is_a_clear_error(registry: ModelRegistry) -> None:
    assert registry.champion("nothing") is None
    with pytest.raises(ModelNotFound, match="no champion registered"):
        registry.load("nothing")


@pytest.mark.security  # models load only in safe formats (issue 11)
@pytest.mark.parametrize("name", ["model.pkl", "arrays.npz", "state.pt", "forecaster.json"])
def test_a_pickle_is_refused_whatever_its_name(tmp_path: Path, name: str) -> None:
    model, _ = fitted_linear()
    model.save(tmp_path)
    (tmp_path / name).write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    with pytest.raises(UnsafeModelArtifact):
        load_forecaster_dir(tmp_path)


@pytest.mark.security  # models load only in safe formats (issue 11)
def test_object_arrays_and_unknown_formats_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeModelArtifact, match=r"not a plain numeric array|pickle"):
        check_safe_artifacts(tmp_path)
    (tmp_path / "bad.npy").unlink()
    (tmp_path / "model.joblib").write_bytes(b"\x00")
    with pytest.raises(UnsafeModelArtifact, match="not accepted"):
        check_safe_artifacts(tmp_path)


@pytest.mark.security  # models load only in safe formats (issue 11)
def test_a_pickled_model_in_the_registry_is_refused_at_load(registry: ModelRegistry) -> None:
    """A registered version whose artifacts were replaced by a pickle never loads."""
    model, _ = fitted_linear()
    champion = registry.register_champion(
        "s-3", model, family="linear", params={}, metrics=METRICS, lineage=Lineage(["2022-10-15"], "x")
    )
    artifact_dir = Path(registry.client.get_run(champion.run_id).info.artifact_uri.removeprefix("file://"))
    (artifact_dir / "forecaster" / "model.pkl").write_bytes(pickle.dumps(model))
    with pytest.raises(UnsafeModelArtifact, match=r"pickle|not accepted"):
        registry.load("s-3")
