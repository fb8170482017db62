"""Acceptance of the ML pipeline: real Ray, a real MLflow SQLite registry, a real Dagster instance, real data.

The B4B room extract (10-min CO2 with temperature and humidity at the same position) is written to the lake
as the input dataset for 2022-10-10..15; the CO2 series is the target. Tiny budgets keep it short.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from tsplatform.assets.ml import (
    DRIFT_CHECK,
    INPUT_DATASET,
    accuracy_drift_sensor,
    forecast_accuracy,
    forecasts,
    training_sets,
    tuned_models,
)
from tsplatform.lake import Lake
from tsplatform.ml.champion import _test_metrics
from tsplatform.ml.pipeline import ACCURACY_COLUMNS, FORECAST_COLUMNS, target_frames, target_splits
from tsplatform.ml.registry import CHAMPION_ALIAS, ModelRegistry, registered_model_name
from tsplatform.resources.lake import LakeResource
from tsplatform.resources.ml import RayResource, RegistryResource
from tsplatform.settings import get_settings
from tsplatform_tests.mlops.readings import CO2, DAYS, room_readings, write_days

TRAIN_DAY = dt.date(2022, 10, 15)
NEXT_DAY = dt.date(2022, 10, 16)
HORIZON = 6


@pytest.fixture
def ml_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "TSPLATFORM_FORECAST_HORIZON": str(HORIZON),
        "TSPLATFORM_FORECAST_TARGETS": CO2,
        "TSPLATFORM_TUNE_NUM_SAMPLES": "3",
        "TSPLATFORM_TUNE_MAX_EPOCHS": "2",
        "TSPLATFORM_TUNE_TIME_BUDGET_S": "600",
        "TSPLATFORM_DRIFT_FACTOR": "4",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    # Ray gives its raylet a fixed 30 s to come up; on a loaded shared machine that may take a few tries
    RayResource(num_cpus=2).ensure(attempts=10)
    yield
    get_settings.cache_clear()
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _versions(instance: dg.DagsterInstance, key: str) -> int:
    return len(instance.fetch_materializations(dg.AssetKey(key), limit=100).records)


@pytest.mark.integration
@pytest.mark.timeout(1800)  # two tiny Ray searches: ~3 min on an idle 2-core machine, far more when shared
def test_tune_register_forecast_score_and_retrain_on_drift(tmp_path: Path, ml_env: None) -> None:
    lake = Lake(str(tmp_path / "lake"))
    readings = room_readings()
    write_days(lake, readings, INPUT_DATASET, DAYS[:6])  # 2022-10-10 .. 15
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri())
    resources = {
        "lake": LakeResource(root=lake.root),
        "registry": RegistryResource(
            tracking_uri=registry.tracking_uri, artifact_root=registry.artifact_root or ""
        ),
        "ray": RayResource(num_cpus=2),
    }
    with dg.instance_for_test() as instance:
        # --- tune on the window ending 2022-10-15 and register the champion ----------------------------
        result = dg.materialize(
            [training_sets, tuned_models],
            partition_key=TRAIN_DAY.isoformat(),
            instance=instance,
            resources=resources,
        )
        assert result.success
        meta = result.asset_materializations_for_node("tuned_models")[0].metadata
        assert meta["targets"].value == 1
        assert "seasonal naive MSE" in meta["champions"].value
        champion = registry.champion(CO2)
        assert champion is not None and champion.version == 1
        alias_version = registry.client.get_model_version_by_alias(registered_model_name(CO2), CHAMPION_ALIAS)
        assert int(alias_version.version) == champion.version
        # the champion beats seasonal naive on the held-out test split
        assert champion.metrics["mse"] < champion.metrics["seasonal_naive_mse"]
        assert meta["champion_test_mse"].value < meta["seasonal_naive_test_mse"].value
        assert champion.lineage["partition_range"].endswith(TRAIN_DAY.isoformat())
        trials = registry.client.search_runs(
            [registry.client.get_experiment_by_name(registry.experiment_name(CO2)).experiment_id],
            filter_string="tags.`tsplatform.kind` = 'trial'",
        )
        assert len(trials) == 3  # every trial logged

        # reloading the registered model reproduces its registered held-out error exactly
        model, _ = registry.load(CO2)
        splits = target_splits(lake.read_partition("training_sets", TRAIN_DAY).to_pandas())
        assert _test_metrics(model, splits, HORIZON)["mse"] == champion.metrics["mse"]

        # --- daily forecasts from the registry's champion -----------------------------------------------
        result = dg.materialize(
            [forecasts], partition_key=TRAIN_DAY.isoformat(), instance=instance, resources=resources
        )
        assert result.success
        issued = lake.read_partition("forecasts", TRAIN_DAY).to_pandas()
        assert tuple(issued.columns) == FORECAST_COLUMNS
        assert len(issued) == HORIZON and set(issued["series_id"]) == {CO2}
        assert set(issued["model"]) == {champion.label}
        last_reading = readings[
            (readings["series_id"] == CO2) & (readings["event_time"] < pd.Timestamp(NEXT_DAY, tz="UTC"))
        ]
        assert issued["issued_at"].iloc[0] <= last_reading["event_time"].max()
        assert (np.diff(issued["event_time"].astype("int64")) == 600_000).all()
        # the same history through a freshly loaded model gives exactly the stored forecast
        frames, _ = target_frames(readings[readings["event_time"] < pd.Timestamp(NEXT_DAY, tz="UTC")], [CO2])
        reloaded, _ = registry.load(CO2)
        np.testing.assert_array_equal(
            reloaded.predict([frames[0].values], HORIZON)[0], issued["value"].to_numpy()
        )

        # --- actuals arrive: scored beside seasonal naive, the check passes --------------------------------
        write_days(lake, readings, INPUT_DATASET, [NEXT_DAY])
        result = dg.materialize(
            [forecast_accuracy], partition_key=NEXT_DAY.isoformat(), instance=instance, resources=resources
        )
        scores = lake.read_partition("forecast_accuracy", NEXT_DAY).to_pandas()
        assert tuple(scores.columns) == ACCURACY_COLUMNS
        assert scores["n"].sum() == HORIZON and scores["naive_mse"].notna().all()
        (check,) = result.get_asset_check_evaluations()
        assert check.check_name == DRIFT_CHECK and check.passed
        sensor_result = accuracy_drift_sensor(dg.build_sensor_context(instance=instance))
        assert not sensor_result.run_requests

        # --- simulated drift: the actuals shift by +300 ppm; the check fails and retraining is requested --
        shifted = readings.copy()
        shifted.loc[shifted["series_id"] == CO2, "value"] += 300.0
        write_days(lake, shifted, INPUT_DATASET, [NEXT_DAY])
        result = dg.materialize(
            [forecast_accuracy], partition_key=NEXT_DAY.isoformat(), instance=instance, resources=resources
        )
        (check,) = result.get_asset_check_evaluations()
        assert not check.passed
        assert CO2 in check.metadata["drifted"].value
        sensor_result = accuracy_drift_sensor(dg.build_sensor_context(instance=instance))
        (request,) = sensor_result.run_requests
        assert request.partition_key == NEXT_DAY.isoformat()
        assert request.run_config["ops"]["tuned_models"]["config"]["targets"] == [CO2]
        again = accuracy_drift_sensor(dg.build_sensor_context(instance=instance, cursor=sensor_result.cursor))
        assert not again.run_requests  # each failure is acted on once

        # the requested run retrains: a new tuned_models materialization and a new champion version
        before = _versions(instance, "tuned_models")
        result = dg.materialize(
            [training_sets, tuned_models],
            partition_key=request.partition_key,
            run_config=request.run_config,
            tags=request.tags,
            instance=instance,
            resources=resources,
        )
        assert result.success
        assert _versions(instance, "tuned_models") == before + 1
        retrained = registry.champion(CO2)
        assert retrained is not None and retrained.version == champion.version + 1
        assert retrained.lineage["partition_range"].endswith(NEXT_DAY.isoformat())
