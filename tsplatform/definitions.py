"""The one Definitions object: assets, checks, jobs, sensors, schedules and resources by environment."""

from __future__ import annotations

from typing import Any

import dagster as dg

from tsplatform.assets.analyse import period_estimates
from tsplatform.assets.clean import validated_readings
from tsplatform.assets.compaction import compact_raw_readings_job, compact_raw_readings_schedule
from tsplatform.assets.decompose import decompositions
from tsplatform.assets.denoise import denoised_readings
from tsplatform.assets.ingest import ingest_kafka, kafka_offset_sensor, quarantine, raw_readings
from tsplatform.assets.ml import (
    accuracy_drift_sensor,
    forecast_accuracy,
    forecasts,
    training_sets,
    tuned_models,
)
from tsplatform.assets.regularize import regularized_readings
from tsplatform.assets.retention import retention_job, retention_schedule
from tsplatform.assets.summarize import correlations, hourly_readings, series_profiles
from tsplatform.resources.catalog import CatalogResource
from tsplatform.resources.kafka import KafkaResource
from tsplatform.resources.lake import LakeResource
from tsplatform.resources.ml import RayResource, RegistryResource
from tsplatform.resources.spark import spark_resource
from tsplatform.settings import get_settings


def resources_for(environment: str) -> dict[str, Any]:
    """Resource set of an environment (``TSPLATFORM_ENVIRONMENT``: local, test, docker).

    All three read their endpoints from settings; they differ in what the environment provides:
    local and test use the services of ``tsplatform services up`` / the test fixtures and local Spark,
    docker points Spark at the cluster master and the lake at the shared volume (both via settings).
    """
    if environment not in ("local", "test", "docker"):
        raise ValueError(f"unknown TSPLATFORM_ENVIRONMENT {environment!r}: expected local, test or docker")
    spark = spark_resource()
    return {
        "kafka": KafkaResource(),
        "lake": LakeResource(),
        "catalog": CatalogResource(),
        "spark": spark,
        "metastore": spark,  # retention drops Hive partitions through the same Spark session
        "registry": RegistryResource(),
        "ray": RayResource(),
    }


defs = dg.Definitions(
    assets=[
        raw_readings,
        quarantine,
        validated_readings,
        period_estimates,
        regularized_readings,
        denoised_readings,
        decompositions,
        hourly_readings,
        series_profiles,
        correlations,
        training_sets,
        tuned_models,
        forecasts,
        forecast_accuracy,
    ],
    jobs=[ingest_kafka, retention_job, compact_raw_readings_job],
    sensors=[
        kafka_offset_sensor,
        accuracy_drift_sensor,
        dg.AutomationConditionSensorDefinition(
            "automation_sensor",
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=get_settings().automation_interval_s,
            use_user_code_server=True,  # day_has_readings (assets/automation.py) is Python
            # emit_backfills stays True: with False (runs at once, no wait for the backfill daemon's loop)
            # this Dagster launched one run per day partition, not one run over the range
            description=(
                "Evaluates the assets' automation conditions: new and late data re-materialize their day and "
                "every day whose lookback window includes it; several days at once run as a backfill."
            ),
        ),
    ],
    schedules=[retention_schedule, compact_raw_readings_schedule],
    resources=resources_for(get_settings().environment),
    # A run's steps share one process and so one Spark session (a JVM and a Hive metastore client):
    # a run of the whole graph over a day range pays Spark's start-up once, not once per asset.
    # Spark distributes the work inside each step.
    executor=dg.in_process_executor,
)
