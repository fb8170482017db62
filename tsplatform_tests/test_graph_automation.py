"""Declarative automation of the asset graph: which day partitions new and late data request.

Real Dagster instance and the real Definitions; materializations and check results are reported as
runless events, so the test is about the conditions, not the computation (tsplatform_tests/test_graph.py
runs the graph itself).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from tsplatform.partitions import (
    ANOMALY_LOOKBACK_DAYS,
    DECOMPOSITION_LOOKBACK_DAYS,
    PERIOD_LOOKBACK_DAYS,
)

GRAPH = (
    "validated_readings",
    "period_estimates",
    "regularized_readings",
    "denoised_readings",
    "decompositions",
    "hourly_readings",
    "series_profiles",
    "correlations",
)
CHECKED = {  # blocking checks the conditions look at
    "validated_readings": ("matches_reading_schema", "unique_series_timestamps"),
    "period_estimates": ("matches_schema", "one_row_per_series_day"),
    "regularized_readings": ("matches_schema", "one_row_per_series_time", "on_regular_grid"),
    "denoised_readings": ("matches_schema", "one_row_per_series_time", "no_unprocessed_flags"),
}
START = dt.date(2024, 3, 1)
DAYS = [START + dt.timedelta(days=i) for i in range(14)]


def keys(first: dt.date, count: int, last: dt.date) -> set[str]:
    """``count`` day keys from ``first``, not past ``last`` (the partitions that exist)."""
    return {
        (first + dt.timedelta(days=i)).isoformat()
        for i in range(count)
        if first + dt.timedelta(days=i) <= last
    }


def late_requests(late: dt.date, last: dt.date) -> dict[str, set[str]]:
    """Asset -> the days that late data for day ``late`` must re-materialize: ``late`` and every later day
    whose lookback window (through the chain of windows) includes it, up to ``last`` (the last day with
    readings)."""
    period = PERIOD_LOOKBACK_DAYS
    denoise = PERIOD_LOOKBACK_DAYS + ANOMALY_LOOKBACK_DAYS - 1
    return {
        "validated_readings": {late.isoformat()},
        "period_estimates": keys(late, period, last),
        "regularized_readings": keys(late, period, last),
        "denoised_readings": keys(late, denoise, last),
        "decompositions": keys(late, denoise + DECOMPOSITION_LOOKBACK_DAYS - 1, last),
        "hourly_readings": keys(late, denoise, last),
        "series_profiles": keys(late, denoise, last),
        "correlations": keys(late, denoise, last),
    }


def materialize(instance: dg.DagsterInstance, asset: str, day: str, passed: bool = True) -> None:
    """Report a materialization of ``asset`` for ``day`` and its blocking checks' results against it."""
    key = dg.AssetKey(asset)
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=day))
    checks = CHECKED.get(asset, ())
    if not checks:
        return
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
    ).records[0]
    target = AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )
    for check in checks:
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name=check,
                passed=passed,
                partition=day,
                target_materialization_data=target,
            )
        )


def requested(result: dg.AutomationResult | object, asset: str) -> set[str]:
    return set(result.get_requested_partitions(dg.AssetKey(asset)))  # type: ignore[attr-defined]


def test_late_data_requests_its_day_and_every_window_that_includes_it() -> None:
    """Late data for day D requests D and every later day whose lookback window includes D, among the days
    that have readings: the windows reaching past the last day with data request nothing there."""
    from tsplatform.definitions import defs

    last = DAYS[-1]  # the last day with readings: the windows of the late day reach past it
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0  # no data: nothing to do
        for day in DAYS:  # the 14 days landed and processed once
            materialize(instance, "raw_readings", day.isoformat())
            for asset in GRAPH:
                materialize(instance, asset, day.isoformat())
        settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        # the backlog above was reported after the first evaluation: every window that saw it is requested
        quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
        assert quiet.total_requested == 0, quiet.get_requested_partitions(dg.AssetKey("validated_readings"))

        late = DAYS[3]  # late data lands for an old day
        materialize(instance, "raw_readings", late.isoformat())
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=quiet.cursor)
        expected = late_requests(late, last)
        for asset, days in expected.items():
            assert requested(result, asset) == days, asset
        assert not requested(result, "raw_readings")
        # evaluated again without new data: nothing more
        again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert again.total_requested == 0


def test_new_days_request_exactly_those_days_of_every_asset() -> None:
    """Three days of readings land at once: on the same tick every asset of the graph is requested for
    exactly those three days (no empty day past the data), so one backfill run can take them through it."""
    from tsplatform.definitions import defs

    landed = {day.isoformat() for day in DAYS[:3]}
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        for day in sorted(landed):
            materialize(instance, "raw_readings", day)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        for asset in GRAPH:
            assert requested(result, asset) == landed, asset


def test_a_30_day_backfill_is_one_run_per_asset() -> None:
    """Dagster's run requests for 30 days of every asset downstream of raw_readings: each asset appears in
    exactly one run, which covers the whole range (BackfillPolicy.single_run)."""
    from dagster._core.definitions.automation_tick_evaluation_context import (
        build_run_requests_with_backfill_policies,
    )
    from dagster._core.definitions.events import AssetKeyPartitionKey

    from tsplatform.definitions import defs

    graph = defs.get_repository_def().asset_graph
    days = [(START + dt.timedelta(days=i)).isoformat() for i in range(30)]
    wanted = [AssetKeyPartitionKey(dg.AssetKey(a), d) for a in GRAPH for d in days]
    with dg.instance_for_test() as instance:
        requests = build_run_requests_with_backfill_policies(wanted, graph, instance)
    runs_of = {a: [r for r in requests if dg.AssetKey(a) in (r.asset_selection or [])] for a in GRAPH}
    for asset, runs in runs_of.items():
        assert len(runs) == 1, asset
        tags = runs[0].tags
        assert tags["dagster/asset_partition_range_start"] == days[0], asset
        assert tags["dagster/asset_partition_range_end"] == days[-1], asset


def test_days_landed_by_a_running_ingestion_wait_for_it_and_then_go_together() -> None:
    """An ingestion run reports its days one by one at its end: while it is queued or running nothing is
    requested (a tick between two of its days split one batch into two validations and two graph runs);
    once it has finished, every day it landed is requested on one tick, for every asset of the graph."""
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.test_utils import create_run_for_test

    from tsplatform.definitions import defs

    landed = {day.isoformat() for day in DAYS[:3]}
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        ingestion = create_run_for_test(instance, job_name="ingest_kafka", status=dg.DagsterRunStatus.STARTED)
        materialize(instance, "raw_readings", DAYS[0].isoformat())  # the first of its days is reported
        during = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        assert during.total_requested == 0
        for day in sorted(landed - {DAYS[0].isoformat()}):
            materialize(instance, "raw_readings", day)
        still = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=during.cursor)
        assert still.total_requested == 0
        success = DagsterEvent(DagsterEventType.RUN_SUCCESS.value, "ingest_kafka", message="finished")
        instance.report_dagster_event(success, run_id=ingestion.run_id)
        assert instance.get_run_by_id(ingestion.run_id).status == dg.DagsterRunStatus.SUCCESS
        after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=still.cursor)
        for asset in GRAPH:
            assert requested(after, asset) == landed, asset
