"""ML assets: ``training_sets`` → ``tuned_models`` (MLflow registry) → ``forecasts`` → ``forecast_accuracy``.

Thin wrappers over :mod:`tsplatform.ml.pipeline` and :mod:`tsplatform.ml.champion`; all daily-partitioned,
datasets in the lake (one Parquet file per day partition, replaced atomically).

Every one has a single-run backfill policy, so that a range of days (a backfill, or ``dagster asset
materialize --select 'validated_readings*' --partition-range A...B``) runs as one run per asset: the
per-day assets do each day of the range in turn; ``tuned_models`` tunes once, on the range's last day.

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
import functools
import json
import math
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from tsplatform.assets.common import run_days
from tsplatform.ml.datasets import (
    ACCURACY_SCHEMA,
    FORECAST_HISTORY_DAYS,
    FORECASTS_SCHEMA,
    INPUT_DATASET,
    TRAINING_SETS_SCHEMA,
    accuracy_day,
    build_training_set,
    forecast_day,
    window_days,
    write_day,
)
from tsplatform.partitions import daily_partitions
from tsplatform.resources.lake import LakeResource
from tsplatform.resources.ml import RayResource, RegistryResource
from tsplatform.settings import get_settings

DRIFT_CHECK = "error_within_drift_factor"

#: Fixed when the definitions load (it shapes the partition mapping); the rest is read at run time.
TRAINING_WINDOW_DAYS = get_settings().training_window_days
#: Weekly retraining: Mondays 02:00 UTC.
RETRAIN_CRON = "0 2 * * 1"
#: Daily forecasts: 00:30 UTC, once the day's first readings are in.
FORECAST_CRON = "30 0 * * *"


def _days(day: dt.date, days: int) -> list[dt.date]:
    return window_days(day, days, get_settings().start_date)


class TargetsConfig(dg.Config):
    """Which series to model: series_ids; empty = ``TSPLATFORM_FORECAST_TARGETS``, else every series."""

    targets: list[str] = []  # noqa: RUF012 - pydantic copies field defaults


def _targets(config: TargetsConfig) -> list[str] | None:
    return list(config.targets) or list(get_settings().forecast_targets) or None


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
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Per target series: the training window on a regular grid with its position's covariates, "
    "split by time (train/val/test), scalers fit on the train split.",
)
def training_sets(
    context: dg.AssetExecutionContext, config: TargetsConfig, lake: LakeResource
) -> dg.MaterializeResult:
    the_lake = lake.lake()
    settings = get_settings()
    rows, targets, skipped_days, covariates, spans = 0, 0, {}, 0, []
    for day in run_days(context):
        days = _days(day, TRAINING_WINDOW_DAYS)
        spans += days[:1] + days[-1:]
        table, frames, skipped = build_training_set(
            the_lake, days, _targets(config), settings.validation_fraction, settings.test_fraction
        )
        write_day(the_lake, "training_sets", day, table, TRAINING_SETS_SCHEMA)
        for sid, reason in skipped.items():
            context.log.warning(f"training_sets {day}: target {sid} skipped: {reason}")
        rows, targets = rows + len(table), max(targets, len(frames))
        if skipped:
            skipped_days[day.isoformat()] = skipped
        if len(table):
            covariates = int((table["role"] == "covariate").groupby(table["feature"]).any().sum())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "targets": targets,
            "skipped": dg.MetadataValue.json(skipped_days),
            "window": f"{min(spans)}..{max(spans)}" if spans else "",  # the union of the days' windows
            "covariates": covariates,
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


def _log_progress(target: str, progress: Any) -> None:
    """Tuning progress into the run's logs (picklable: Ray Tune pickles its callbacks with the Tuner)."""
    dg.get_dagster_logger().info(f"tuning {target}: {progress}")


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
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Ray Tune (ASHA) per target on the day's training set; the champion registered in MLflow "
    "with alias 'champion', its held-out metrics beside seasonal naive, and its lineage. A range of days "
    "tunes once, on its last day's training set.",
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
    day = run_days(context)[-1]  # a range: one champion, from the latest training set
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
    partitions = [d.isoformat() for d in _days(day, TRAINING_WINDOW_DAYS)]
    the_registry = registry.registry()
    if groups:
        ray.ensure()
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
                progress=functools.partial(_log_progress, target),
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
            "tuned_on": day.isoformat(),
        }
    )


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
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="The next horizon per target from its registered champion, issued at its last reading.",
)
def forecasts(
    context: dg.AssetExecutionContext, config: TargetsConfig, lake: LakeResource, registry: RegistryResource
) -> dg.MaterializeResult:
    the_lake, the_registry = lake.lake(), registry.registry()
    count, series, models, skipped_days = 0, set(), set(), {}
    for day in run_days(context):
        rows, skipped = forecast_day(the_lake, the_registry, day, _targets(config), get_settings().start_date)
        write_day(the_lake, "forecasts", day, rows, FORECASTS_SCHEMA)
        for sid, reason in skipped.items():
            context.log.warning(f"forecasts {day}: {sid} not forecast: {reason}")
        count += len(rows)
        if len(rows):
            series |= set(rows["series_id"])
            models |= set(rows["model"])
        if skipped:
            skipped_days[day.isoformat()] = skipped
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": count,
            "series": len(series),
            "skipped": dg.MetadataValue.json(skipped_days),
            "models": dg.MetadataValue.json(sorted(models)),
        }
    )


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
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Past forecasts scored against the actuals of the day as they arrive, beside seasonal naive.",
)
def forecast_accuracy(
    context: dg.AssetExecutionContext, lake: LakeResource, registry: RegistryResource
) -> dg.MaterializeResult:
    from tsplatform.ml.champion import validation_mse
    from tsplatform.ml.pipeline import drifted_targets

    the_lake = lake.lake()
    per_day = []
    for day in run_days(context):  # a range: each day scored and written; the check over all of them
        scores = accuracy_day(the_lake, day, get_settings().start_date)
        write_day(the_lake, "forecast_accuracy", day, scores, ACCURACY_SCHEMA)
        per_day.append(scores)
    scores = pd.concat(per_day, ignore_index=True)
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
        tags = run.tags if run else {}
        # a range run (backfill): its check covered every day of the range; retrain for the last one
        partition = (
            tags.get("dagster/partition") or record.partition or tags.get("dagster/asset_partition_range_end")
        )
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
