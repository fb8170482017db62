"""The model registry on MLflow: champions per target, their metrics and lineage, loaded in safe formats only.

One registered model per target (a series, or a global group of series); its current champion carries the
alias ``champion``. A registered version's artifacts are the forecaster's own ``save(directory)`` output
(``forecaster.json`` with family and params, ``arrays.npz``, a torch ``state_dict`` ``state.pt``). Loading
downloads those files, refuses any other format and any pickle stream (whatever its name), then calls
``tsplatform.ml.models.load_forecaster``; nothing is unpickled and no model code is executed
(``MLFLOW_ALLOW_MODEL_CODE_EXECUTION=false``; the ``mlflow.pytorch`` pickle flavour is never used).

Store: the tracking/registry URI of settings (default the SQLite database ``<state>/mlflow/mlflow.db``;
a server ``http(s)://`` URI when configured). Experiments are created with an explicit artifact root
(default ``<state>/mlflow/artifacts``), never MLflow's ``./mlruns`` relative to the working directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tsplatform.errors import BadInput, TsplatformError

CHAMPION_ALIAS = "champion"
MODEL_ARTIFACT_PATH = "forecaster"
#: File suffixes a registered forecaster may consist of (anything else is refused at load).
SAFE_SUFFIXES: frozenset[str] = frozenset(
    {".json", ".npz", ".npy", ".pt", ".safetensors", ".txt", ".csv", ".md", ".yaml", ".yml"}
)
_PICKLE_MAGIC = re.compile(rb"^\x80[\x02-\x05]")  # pickle protocol 2..5 header
_MODEL_NAME_UNSAFE = re.compile(r"[^a-z0-9_-]+")
METRIC_NAMES: tuple[str, ...] = ("mse", "rmse", "mae", "mape")


class UnsafeModelArtifact(TsplatformError):
    """A registered model's files are not in an accepted safe format (e.g. a pickle)."""


class ModelNotFound(TsplatformError):
    """No registered model (or no champion) for a target."""


class Forecaster(Protocol):
    """What the registry needs of a model (``tsplatform.ml``'s forecaster interface)."""

    def predict(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray: ...

    def save(self, directory: str | Path) -> None: ...


@dataclass(frozen=True)
class Champion:
    """A registered champion version: what ``tsplatform models`` lists and forecasts are stamped with."""

    target: str
    name: str
    version: int
    family: str
    metrics: dict[str, float]
    params: dict[str, str]
    lineage: dict[str, str]
    run_id: str
    created: dt.datetime

    @property
    def label(self) -> str:
        """``<registered name>/<version>``: the ``model`` column of ``forecasts``."""
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class Lineage:
    """Where a model came from: the day partitions of its training data, that data's checksum, the code."""

    partitions: Sequence[str]
    data_checksum: str
    code_version: str = field(default_factory=lambda: code_version())

    def as_tags(self) -> dict[str, str]:
        return {
            "lineage.partitions": json.dumps(list(self.partitions)),
            "lineage.partition_range": f"{min(self.partitions)}..{max(self.partitions)}"
            if self.partitions
            else "",
            "lineage.data_checksum": self.data_checksum,
            "lineage.code_version": self.code_version,
        }


def registered_model_name(target: str) -> str:
    """Registered model name of a target (series_id or group name): ``ts-<target>`` in ``[a-z0-9_-]``.

    A target with other characters is slugged and suffixed with 12 hex digits of its SHA-256, so distinct
    targets never share a name and the name is safe in ``models:/<name>@champion`` URIs.
    """
    if not target:
        raise BadInput("a model target needs a non-empty name")
    slug = _MODEL_NAME_UNSAFE.sub("_", target.lower()).strip("_")[:64]
    if slug == target:
        return f"ts-{target}"
    digest = hashlib.sha256(target.encode("utf-8")).hexdigest()[:12]
    return f"ts-{slug}-{digest}"


def code_version() -> str:
    """The git commit of the running code (``+dirty`` when modified), else the package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return f"{sha}+dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"tsplatform=={version('tsplatform')}"
        except PackageNotFoundError:
            return "unknown"


def data_checksum(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 over the float64 bytes (and lengths) of the training arrays, in order."""
    digest = hashlib.sha256()
    for array in arrays:
        values = np.ascontiguousarray(np.asarray(array, dtype="<f8"))
        digest.update(len(values).to_bytes(8, "little"))
        digest.update(values.tobytes())
    return digest.hexdigest()


def check_safe_artifacts(directory: Path) -> None:
    """Raise :class:`UnsafeModelArtifact` unless every file under ``directory`` is in a safe format.

    Refused: suffixes outside :data:`SAFE_SUFFIXES`, any file starting with a pickle header, ``.npy``/``.npz``
    that need pickle (object arrays), ``.pt`` files that are not plain tensors (``torch.load`` with
    ``weights_only=True`` fails).
    """
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory)
        if path.suffix.lower() not in SAFE_SUFFIXES:
            raise UnsafeModelArtifact(
                f"model file {relative} has a format that is not accepted ({path.suffix!r})"
            )
        with path.open("rb") as handle:
            if _PICKLE_MAGIC.match(handle.read(2)):
                raise UnsafeModelArtifact(f"model file {relative} is a pickle: refused")
        if path.suffix.lower() in (".npy", ".npz"):
            try:
                with np.load(path, allow_pickle=False) as loaded:  # type: ignore[call-arg]
                    for key in getattr(loaded, "files", []):
                        loaded[key]
            except (ValueError, OSError) as exc:
                raise UnsafeModelArtifact(
                    f"model file {relative} is not a plain numeric array: {exc}"
                ) from exc
            except AttributeError:  # a .npy gives an ndarray (no context manager in old numpy)
                pass
        elif path.suffix.lower() == ".pt":
            import torch

            try:
                torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise UnsafeModelArtifact(f"model file {relative} is not a plain state_dict: {exc}") from exc


def load_forecaster_dir(directory: Path) -> Any:
    """Load a forecaster saved by its own ``save`` (safety-checked first, then ``load_forecaster``)."""
    from tsplatform.ml.models import load_forecaster

    check_safe_artifacts(directory)
    return load_forecaster(directory)


def _floats(values: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and np.isfinite(float(v))}


class ModelRegistry:
    """MLflow tracking + registry for tsplatform forecasters (see the module doc)."""

    def __init__(self, tracking_uri: str, artifact_root: str | None = None) -> None:
        os.environ["MLFLOW_ALLOW_MODEL_CODE_EXECUTION"] = "false"
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @classmethod
    def from_settings(cls) -> ModelRegistry:
        from tsplatform.settings import get_settings

        settings = get_settings()
        return cls(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)

    # --- experiments and runs ----------------------------------------------------------------
    def experiment_name(self, target: str) -> str:
        return f"tsplatform/{registered_model_name(target)}"

    def ensure_experiment(self, target: str) -> str:
        """Id of the target's experiment, created with this registry's artifact root when new."""
        name = self.experiment_name(target)
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if self.artifact_root:
            location = f"{self.artifact_root.rstrip('/')}/{registered_model_name(target)}"
        return self.client.create_experiment(name, artifact_location=location)

    def log_trials(
        self, target: str, trials: Sequence[Mapping[str, Any]], parent_run_id: str | None = None
    ) -> int:
        """Log each trial (``{"params": {...}, "metrics": {...}}``) as its own run; returns the count.

        For searches whose trials were not logged live (by Ray's ``MLflowLoggerCallback``).
        """
        from mlflow.entities import Metric, Param, RunTag

        experiment_id = self.ensure_experiment(target)
        now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        for i, trial in enumerate(trials):
            tags = {"tsplatform.target": target, "tsplatform.kind": "trial"}
            if parent_run_id:
                tags["mlflow.parentRunId"] = parent_run_id
            run = self.client.create_run(experiment_id, tags=tags, run_name=f"trial-{i:04d}")
            self.client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, v, now, 0) for k, v in _floats(trial.get("metrics", {})).items()],
                params=[Param(k, str(v)[:6000]) for k, v in trial.get("params", {}).items()],
                tags=[RunTag("trial_id", str(trial.get("trial_id", i)))],
            )
            self.client.set_terminated(run.info.run_id)
        return len(trials)

    # --- registering -------------------------------------------------------------------------
    def register_champion(
        self,
        target: str,
        model: Forecaster,
        *,
        family: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        lineage: Lineage,
        extra_metrics: Mapping[str, float] | None = None,
    ) -> Champion:
        """Log ``model`` (its own safe ``save`` output) with params, metrics and lineage in a run, register it
        as a new version of the target's model and point the ``champion`` alias at it.

        ``metrics`` are the champion's headline figures (mse, rmse, mae, mape; on held-out data);
        ``extra_metrics`` anything else (validation scores, the seasonal-naive baseline...).
        """
        name = registered_model_name(target)
        experiment_id = self.ensure_experiment(target)
        tags = {"tsplatform.target": target, "tsplatform.kind": "champion", "tsplatform.family": family}
        tags.update(lineage.as_tags())
        run = self.client.create_run(experiment_id, tags=tags, run_name=f"champion-{family}")
        run_id = run.info.run_id
        try:
            from mlflow.entities import Metric, Param

            now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
            all_metrics = {**_floats(metrics), **_floats(extra_metrics or {})}
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in all_metrics.items()],
                params=[Param(k, str(v)[:6000]) for k, v in {"family": family, **params}.items()],
            )
            with tempfile.TemporaryDirectory(prefix="tsplatform-model-") as tmp:
                staging = Path(tmp) / MODEL_ARTIFACT_PATH
                model.save(staging)
                check_safe_artifacts(staging)  # refuse to register what could not be loaded back
                self.client.log_artifacts(run_id, str(staging), artifact_path=MODEL_ARTIFACT_PATH)
            self.client.set_terminated(run_id)
        except BaseException:
            self.client.set_terminated(run_id, status="FAILED")
            raise
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name, tags={"tsplatform.target": target})
        version_tags = {
            **{f"metric.{k}": repr(v) for k, v in _floats(metrics).items()},
            **{f"metric.{k}": repr(v) for k, v in _floats(extra_metrics or {}).items()},
            **{f"param.{k}": str(v)[:5000] for k, v in params.items()},
            "family": family,
            **lineage.as_tags(),
        }
        source = f"{run.info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT_PATH}"
        version = self.client.create_model_version(name, source=source, run_id=run_id, tags=version_tags)
        self.client.set_registered_model_alias(name, CHAMPION_ALIAS, version.version)
        return self._champion(target, self.client.get_model_version(name, version.version))

    # --- reading -----------------------------------------------------------------------------
    def _champion(self, target: str, version: Any) -> Champion:
        tags = dict(version.tags or {})
        return Champion(
            target=target,
            name=version.name,
            version=int(version.version),
            family=tags.get("family", ""),
            metrics={k[len("metric.") :]: float(v) for k, v in tags.items() if k.startswith("metric.")},
            params={k[len("param.") :]: v for k, v in tags.items() if k.startswith("param.")},
            lineage={k[len("lineage.") :]: v for k, v in tags.items() if k.startswith("lineage.")},
            run_id=version.run_id or "",
            created=dt.datetime.fromtimestamp(version.creation_timestamp / 1000, tz=dt.UTC),
        )

    def champion(self, target: str) -> Champion | None:
        """The target's champion version, or ``None`` when it has none."""
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_model_version_by_alias(registered_model_name(target), CHAMPION_ALIAS)
        except MlflowException:
            return None
        return self._champion(target, version)

    def champions(self) -> list[Champion]:
        """Every registered target's champion, by name."""
        found: list[Champion] = []
        token: str | None = None
        while True:
            page = self.client.search_registered_models(max_results=1000, page_token=token)
            for model in page:
                target = (model.tags or {}).get("tsplatform.target")
                if not target or CHAMPION_ALIAS not in (model.aliases or {}):
                    continue
                champion = self.champion(target)
                if champion is not None:
                    found.append(champion)
            token = page.token
            if not token:
                break
        return sorted(found, key=lambda c: c.name)

    def versions(self, target: str) -> list[int]:
        """Every registered version number of the target's model, ascending."""
        name = registered_model_name(target)
        return sorted(int(v.version) for v in self.client.search_model_versions(f"name='{name}'"))

    def load(self, target: str, version: int | None = None) -> tuple[Any, Champion]:
        """The target's champion (or ``version``) forecaster, loaded from the registry, safe formats only."""
        champion = self.champion(target) if version is None else self._version(target, version)
        if champion is None:
            raise ModelNotFound(f"no champion registered for {target!r} (run `tsplatform tune` first)")
        with tempfile.TemporaryDirectory(prefix="tsplatform-load-") as tmp:
            local = self.client.download_artifacts(champion.run_id, MODEL_ARTIFACT_PATH, dst_path=tmp)
            return load_forecaster_dir(Path(local)), champion

    def _version(self, target: str, version: int) -> Champion | None:
        from mlflow.exceptions import MlflowException

        try:
            return self._champion(
                target, self.client.get_model_version(registered_model_name(target), str(version))
            )
        except MlflowException:
            return None
