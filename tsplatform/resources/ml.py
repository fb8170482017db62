"""ML resources: the MLflow model registry and the Ray runtime the tuning runs on."""

from __future__ import annotations

import dagster as dg

from tsplatform.ml.registry import ModelRegistry
from tsplatform.settings import get_settings


class RegistryResource(dg.ConfigurableResource):
    """The MLflow tracking/registry store; empty fields mean the settings (``TSPLATFORM_MLFLOW_URI``,
    default the SQLite store under the state dir; ``TSPLATFORM_MLFLOW_ARTIFACTS``)."""

    tracking_uri: str = ""
    artifact_root: str = ""

    def registry(self) -> ModelRegistry:
        settings = get_settings()
        return ModelRegistry(
            self.tracking_uri or settings.mlflow_tracking_uri,
            self.artifact_root or settings.mlflow_artifact_root,
        )


class RayResource(dg.ConfigurableResource):
    """Where Ray Tune runs: a cluster at ``address`` (``ray://...``), else a local Ray with ``num_cpus``
    (no dashboard, temp files under the state dir). Empty/0 mean ``TSPLATFORM_RAY_ADDRESS`` /
    ``TSPLATFORM_RAY_NUM_CPUS`` (default: every CPU). A Ray already running in the process is reused."""

    address: str = ""
    num_cpus: int = 0

    def ensure(self, attempts: int = 5) -> None:
        """Start (or connect to) Ray now, retrying a local start-up that timed out (Ray gives its raylet a
        fixed 30 s, which a loaded machine can miss). Tuning then reuses this Ray."""
        from tsplatform.ml.tuning import ensure_ray

        ensure_ray(
            address=self.address or None,
            num_cpus=self.num_cpus or get_settings().ray_num_cpus,
            start_attempts=attempts,
        )
