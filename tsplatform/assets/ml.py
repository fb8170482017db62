"""ML assets: ``training_sets`` → ``tuned_models`` (MLflow registry) → ``forecasts`` → ``forecast_accuracy``.

Thin wrappers over :mod:`tsplatform.ml.pipeline` and :mod:`tsplatform.ml.champion`; all daily-partitioned,
datasets in the lake (one Parquet file per day partition, replaced atomically).

- ``training_sets`` (day D): the :data:`INPUT_DATASET` readings of the window ``D - window + 1 .. D`` on each
  target's regular grid with its position's covariates, split by time, scalers fit on the train split.
- ``tuned_models`` (day D): Ray Tune per target on D's training set; the champion registered (alias
  ``champion``). Weekly by cron, and on demand by :data:`accuracy_drift_sensor` when accuracy drifts.
- ``forecasts`` (day D): from each target's last reading up to the end of D, the next horizon from its
  champion. Daily by cron.
- ``forecast_accuracy`` (day D): forecasts whose target time falls in D scored against D's actuals, beside
  seasonal naive; re-scored when late actuals arrive. Its check ``error_within_drift_factor`` fails when a
  target's live MSE exceeds its champion's validation MSE × ``TSPLATFORM_DRIFT_FACTOR``; the sensor turns
  each such failure into a retraining run of the drifted targets.
"""

# No `from __future__ import annotations`: Dagster resolves op config/resource annotations at decoration.
import datetime as dt
import json
import math
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from tsplatform.lake import Lake
from tsplatform.partitions import daily_partitions
from tsplatform.resources.lake import LakeResource
from tsplatform.resources.ml import RayResource, RegistryResource
from tsplatform.settings import get_settings

#: The readings the models learn from and forecast. The one place to switch to ``denoised_readings``.
INPUT_DATASET = "validated_readings"
INPUT_COLUMNS = ["series_id", "position", "type_name", "event_time", "value"]
#: Days of history ``forecasts`` reads behind its day (enough context for every model's input length).
FORECAST_HISTORY_DAYS = 7
#: Days of forecasts ``forecast_accuracy`` reads (a forecast issued on D-1 reaches into D).
ACCURACY_LOOKBACK_DAYS = 2
DRIFT_CHECK = "error_within_drift_factor"
UTC_MS = pa.timestamp("ms", tz="UTC")

FORECASTS_SCHEMA = pa.schema(
    [
        pa.field("series_id", pa.string(), nullable=False),
        pa.field("position", pa.string(), nullable=False),
        pa.field("type_name", pa.string(), nullable=False),
        pa.field("issued_at", UTC_MS, nullable=False),
        pa.field("event_time", UTC_MS, nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
    ]
)
ACCURACY_SCHEMA = pa.schema(
    [
        pa.field("series_id", pa.string(), nullable=False),
        pa.field("position", pa.string(), nullable=False),
        pa.field("type_name", pa.string(), nullable=False),
        pa.field("issued_at", UTC_MS, nullable=False),
        pa.field("n", pa.int64(), nullable=False),
        *[pa.field(m, pa.float64()) for m in ("mse", "mae", "mape", "naive_mse", "naive_mae", "naive_mape")],
    ]
)
TRAINING_SETS_SCHEMA = pa.schema(
    [
        pa.field("series_id", pa.string(), nullable=False),
        pa.field("position", pa.string(), nullable=False),
        pa.field("type_name", pa.string(), nullable=False),
        pa.field("feature", pa.string(), nullable=False),
        pa.field("feature_type_name", pa.string(), nullable=False),
        pa.field("role", pa.string(), nullable=False),
        pa.field("event_time", UTC_MS, nullable=False),
        pa.field("split", pa.string(), nullable=False),
        *[
            pa.field(c, pa.float64())
            for c in ("value", "value_scaled", "scale_center", "scale_scale", "period_s")
        ],
    ]
)

_SETTINGS = get_settings()
TRAINING_WINDOW_DAYS = _SETTINGS.training_window_days
#: Weekly retraining: Mondays 02:00 UTC.
RETRAIN_CRON = "0 2 * * 1"
#: Daily forecasts: 00:30 UTC, once the day's first readings are in.
FORECAST_CRON = "30 0 * * *"


def window_days(day: dt.date, days: int) -> list[dt.date]:
    """``days`` day partitions ending at ``day`` (oldest first), none before the first partition."""
    first = _SETTINGS.start_date
    return [d for d in (day - dt.timedelta(days=i) for i in range(days - 1, -1, -1)) if d >= first]


def read_readings(lake: Lake, days: list[dt.date], dataset: str = INPUT_DATASET) -> pd.DataFrame:
    """The readings of ``days`` (columns :data:`INPUT_COLUMNS`; empty frame when none)."""
    table = lake.read_days(dataset, days, columns=INPUT_COLUMNS)
    if table is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in INPUT_COLUMNS})
    frame = table.to_pandas()
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    return frame


def _write(lake: Lake, dataset: str, day: dt.date, frame: pd.DataFrame, schema: pa.Schema) -> None:
    table = pa.Table.from_pandas(frame[[f.name for f in schema]], schema=schema, preserve_index=False)
    lake.write_file(dataset, day, f"{day.isoformat()}.parquet", table)


class TargetsConfig(dg.Config):
    """Which series to model: series_ids; empty = ``TSPLATFORM_FORECAST_TARGETS``, else every series."""

    targets: list[str] = []  # noqa: RUF012 - pydantic copies field defaults


def _targets(config: TargetsConfig) -> list[str] | None:
    return list(config.targets) or list(_SETTINGS.forecast_targets) or None


@dg.asset(
    partitions_def=daily_partitions,
    deps=[
        dg.AssetDep(
            INPUT_DATASET,
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-(TRAINING_WINDOW_DAYS - 1)),
        )
    ],
    group_name="ml",
    kinds={"pandas", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Per target series: the training window on a regular grid with its position's covariates, "
    "split by time (train/val/test), scalers fit on the train split.",
)
def training_sets(
    context: dg.AssetExecutionContext, config: TargetsConfig, lake: LakeResource
) -> dg.MaterializeResult:
    from tsplatform.ml.pipeline import target_frames, training_set

    day = dt.date.fromisoformat(context.partition_key)
    the_lake = lake.lake()
    days = window_days(day, TRAINING_WINDOW_DAYS)
    readings = read_readings(the_lake, days)
    frames, skipped = target_frames(readings, _targets(config))
    table = training_set(frames, get_settings().validation_fraction, get_settings().test_fraction)
    _write(the_lake, "training_sets", day, table, TRAINING_SETS_SCHEMA)
    for sid, reason in skipped.items():
        context.log.warning(f"training_sets: target {sid} skipped: {reason}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "targets": len(frames),
            "skipped": dg.MetadataValue.json(skipped),
            "window": f"{days[0]}..{days[-1]}" if days else "",
            "covariates": int((table["role"] == "covariate").groupby(table["feature"]).any().sum())
            if len(table)
            else 0,
        }
    )


def _metrics_table(reports: list[Any]) -> str:
    lines = [
        "| target | model | family | test MSE | test MAE | test MAPE % | seasonal naive MSE | naive MAE | "
        "naive MAPE % | val MSE |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        t, n = r.test_metrics, r.naive_test_metrics
        lines.append(
            f"| {r.target} | {r.champion.label} | {r.champion.family} | {t['mse']:.4g} | {t['mae']:.4g} | "
            f"{t['mape']:.3g} | {n['mse']:.4g} | {n['mae']:.4g} | {n['mape']:.3g} | "
            f"{r.val_metrics['mse']:.4g} |"
        )
    return "\n".join(lines)


class TunedModelsConfig(TargetsConfig):
    """``targets`` as in training_sets (the drift sensor names the drifted ones); ``scope`` ``series``
    tunes one model per target series, ``global`` one model per type over all its series."""

    scope: str = "series"


@dg.asset(
    partitions_def=daily_partitions,
    deps=[training_sets],
    group_name="ml",
    kinds={"ray", "mlflow", "pytorch"},
    automation_condition=dg.AutomationCondition.on_cron(RETRAIN_CRON),
    description="Ray Tune (ASHA) per target on the day's training set; the champion registered in MLflow "
    "with alias 'champion', its held-out metrics beside seasonal naive, and its lineage.",
)
def tuned_models(
    context: dg.AssetExecutionContext,
    config: TunedModelsConfig,
    lake: LakeResource,
    registry: RegistryResource,
    ray: RayResource,
) -> dg.MaterializeResult:
    from tsplatform.ml.champion import global_target, tune_and_register
    from tsplatform.ml.pipeline import target_splits

    if config.scope not in ("series", "global"):
        raise dg.Failure(f"tuned_models: scope must be 'series' or 'global', got {config.scope!r}")
    settings = get_settings()
    day = dt.date.fromisoformat(context.partition_key)
    the_lake = lake.lake()
    table = the_lake.read_partition("training_sets", day)
    if table is None:
        raise dg.Failure(f"tuned_models: no training_sets partition for {day} (materialize it first)")
    splits = target_splits(table.to_pandas())
    wanted = set(_targets(config) or [s.series_id for s in splits])
    if config.scope == "series":
        groups = {s.series_id: [s] for s in splits if s.series_id in wanted}
    else:  # a global model per type of a wanted series, over every series of that type
        types = {s.type_name for s in splits if s.series_id in wanted}
        groups = {}
        for s in splits:
            if s.type_name in types:
                groups.setdefault(global_target(s.type_name), []).append(s)
    partitions = [d.isoformat() for d in window_days(day, TRAINING_WINDOW_DAYS)]
    the_registry = registry.registry()
    reports, failed = [], {}
    for target, group in groups.items():
        try:
            report = tune_and_register(
                target,
                group,
                registry=the_registry,
                horizon=settings.forecast_horizon,
                partitions=partitions,
                num_samples=settings.tune_num_samples,
                time_budget_s=settings.tune_time_budget_s,
                max_epochs=settings.tune_max_epochs,
                families=settings.tune_families,
                progress=lambda p, t=target: context.log.info(f"tuning {t}: {p}"),
                address=ray.address or None,
                num_cpus=ray.num_cpus or settings.ray_num_cpus,
            )
        except (ValueError, RuntimeError) as exc:  # too little data for this target: the others go on
            failed[target] = str(exc)
            context.log.warning(f"tuned_models: {target}: {exc}")
            continue
        reports.append(report)
        context.log.info(
            f"{target}: champion {report.champion.label} test MSE {report.test_metrics['mse']:.4g} "
            f"(seasonal naive {report.naive_test_metrics['mse']:.4g})"
        )
    if groups and not reports:
        raise dg.Failure(f"tuned_models: no target could be tuned: {failed}")
    mean = lambda xs: float(np.mean(xs)) if xs else math.nan  # noqa: E731
    return dg.MaterializeResult(
        metadata={
            "champions": dg.MetadataValue.md(_metrics_table(reports)),
            "targets": len(reports),
            "failed": dg.MetadataValue.json(failed),
            "champion_test_mse": mean([r.test_metrics["mse"] for r in reports]),
            "seasonal_naive_test_mse": mean([r.naive_test_metrics["mse"] for r in reports]),
            "beats_seasonal_naive": sum(r.beats_seasonal_naive for r in reports),
            "model_versions": dg.MetadataValue.json({r.target: r.champion.label for r in reports}),
            "trials": sum(r.trials for r in reports),
        }
    )


def forecast_day(
    lake: Lake, registry: Any, day: dt.date, targets: list[str] | None
) -> tuple[pd.DataFrame, dict]:
    """The ``forecasts`` rows of ``day`` (see the module doc) and ``{series_id: reason}`` for skipped ones."""
    from tsplatform.ml.champion import serve_forecasts
    from tsplatform.ml.pipeline import forecast_rows, target_frames

    readings = read_readings(lake, window_days(day, FORECAST_HISTORY_DAYS))
    frames, skipped = target_frames(readings, targets)
    histories = {f.series_id: f.values for f in frames}
    type_names = {f.series_id: f.type_name for f in frames}
    predictions, labels, not_served = serve_forecasts(registry, histories, type_names)
    skipped.update(not_served)
    return forecast_rows(frames, predictions, labels), skipped


@dg.asset(
    partitions_def=daily_partitions,
    deps=[
        dg.AssetDep(
            INPUT_DATASET,
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-(FORECAST_HISTORY_DAYS - 1)),
        ),
        dg.AssetDep(tuned_models, partition_mapping=dg.LastPartitionMapping()),
    ],
    group_name="ml",
    kinds={"mlflow", "parquet"},
    automation_condition=dg.AutomationCondition.on_cron(FORECAST_CRON).ignore(
        dg.AssetSelection.assets(tuned_models)
    ),
    description="The next horizon per target from its registered champion, issued at its last reading.",
)
def forecasts(
    context: dg.AssetExecutionContext, config: TargetsConfig, lake: LakeResource, registry: RegistryResource
) -> dg.MaterializeResult:
    day = dt.date.fromisoformat(context.partition_key)
    the_lake = lake.lake()
    rows, skipped = forecast_day(the_lake, registry.registry(), day, _targets(config))
    _write(the_lake, "forecasts", day, rows, FORECASTS_SCHEMA)
    for sid, reason in skipped.items():
        context.log.warning(f"forecasts: {sid} not forecast: {reason}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "series": int(rows["series_id"].nunique()) if len(rows) else 0,
            "skipped": dg.MetadataValue.json(skipped),
            "models": dg.MetadataValue.json(sorted(set(rows["model"])))
            if len(rows)
            else dg.MetadataValue.json([]),
        }
    )


def accuracy_day(lake: Lake, day: dt.date) -> pd.DataFrame:
    """``forecast_accuracy`` rows of ``day``: forecasts with event_time in ``day`` against its actuals."""
    from tsplatform.ml.pipeline import score_forecasts

    days = window_days(day, ACCURACY_LOOKBACK_DAYS)
    table = lake.read_days("forecasts", days)
    if table is None:
        return score_forecasts(pd.DataFrame(), pd.DataFrame())
    issued = table.to_pandas()
    for column in ("issued_at", "event_time"):
        issued[column] = pd.to_datetime(issued[column], utc=True)
    start = pd.Timestamp(day, tz="UTC")
    issued = issued[(issued["event_time"] >= start) & (issued["event_time"] < start + pd.Timedelta(days=1))]
    return score_forecasts(issued, read_readings(lake, days))


@dg.asset(
    partitions_def=daily_partitions,
    deps=[
        dg.AssetDep(forecasts, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1)),
        dg.AssetDep(INPUT_DATASET, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1)),
    ],
    group_name="ml",
    kinds={"pandas", "parquet"},
    automation_condition=dg.AutomationCondition.eager().without(
        dg.AutomationCondition.in_latest_time_window()
    ),
    check_specs=[dg.AssetCheckSpec(DRIFT_CHECK, asset="forecast_accuracy")],
    description="Past forecasts scored against the actuals of the day as they arrive, beside seasonal naive.",
)
def forecast_accuracy(
    context: dg.AssetExecutionContext, lake: LakeResource, registry: RegistryResource
) -> dg.MaterializeResult:
    from tsplatform.ml.champion import validation_mse
    from tsplatform.ml.pipeline import drifted_targets

    day = dt.date.fromisoformat(context.partition_key)
    the_lake = lake.lake()
    scores = accuracy_day(the_lake, day)
    _write(the_lake, "forecast_accuracy", day, scores, ACCURACY_SCHEMA)
    factor = get_settings().drift_factor
    type_names = dict(zip(scores["series_id"], scores["type_name"], strict=True)) if len(scores) else {}
    reference = validation_mse(registry.registry().champions(), type_names)
    drifted = drifted_targets(scores, reference, factor)
    pooled = lambda c: float(np.average(scores[c], weights=scores["n"])) if len(scores) else math.nan  # noqa: E731
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scores),
            "points": int(scores["n"].sum()) if len(scores) else 0,
            "mse": pooled("mse"),
            "naive_mse": pooled("naive_mse"),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=DRIFT_CHECK,
                passed=not drifted,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "drifted": dg.MetadataValue.json(drifted),
                    "drift_factor": factor,
                    "targets_scored": len(type_names),
                    "targets_with_reference": len(reference),
                },
            )
        ],
    )


@dg.sensor(
    name="accuracy_drift_sensor",
    target=[training_sets, tuned_models],
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Retrains (training_sets + tuned_models) the targets whose forecast_accuracy check "
    f"{DRIFT_CHECK} failed, for the day of the failure.",
)
def accuracy_drift_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    key = dg.AssetCheckKey(dg.AssetKey("forecast_accuracy"), DRIFT_CHECK)
    after = int(context.cursor or 0)
    records = context.instance.event_log_storage.get_asset_check_execution_history(
        key, limit=100, status={AssetCheckExecutionRecordStatus.FAILED}
    )
    requests = []
    newest = after
    for record in sorted((r for r in records if r.id > after), key=lambda r: r.id):
        newest = max(newest, record.id)
        run = context.instance.get_run_by_id(record.run_id)
        partition = (run.tags.get("dagster/partition") if run else None) or record.partition
        event = record.event.dagster_event if record.event else None
        evaluation = event.event_specific_data if event else None
        drifted = getattr(evaluation, "metadata", {}).get("drifted")
        targets = sorted(getattr(drifted, "data", None) or {})
        if not partition or not targets:
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"drift-{record.id}",
                partition_key=partition,
                run_config={"ops": {"tuned_models": {"config": {"targets": targets}}}},
                tags={
                    "tsplatform/trigger": "accuracy_drift",
                    "tsplatform/drifted": json.dumps(targets)[:1000],
                },
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=str(newest))
