"""Declarative automation of the asset graph: which day partitions new and late data request.

Real Dagster instance and the real Definitions; materializations and check results are reported as
runless events, so the test is about the conditions, not the computation (tsplatform_tests/test_graph.py
runs the graph itself).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

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
    return {(first + dt.timedelta(days=i)).isoformat() for i in range(count) if first + dt.timedelta(days=i) <= last}


def materialize(instance: dg.DagsterInstance, asset: str, day: str, passed: bool = True) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=day))
    for check in CHECKED.get(asset, ()):
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(asset), check_name=check, passed=passed, partition=day
            )
        )


def requested(result: dg.AutomationResult | object, asset: str) -> set[str]:
    return set(result.get_requested_partitions(dg.AssetKey(asset)))  # type: ignore[attr-defined]


def test_late_data_requests_its_day_and_every_window_that_includes_it() -> None:
    from tsplatform.definitions import defs

    today = dt.datetime.now(dt.UTC).date()
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
        expected = {
            "validated_readings": {late.isoformat()},
            "period_estimates": keys(late, PERIOD_LOOKBACK_DAYS, today),
            "regularized_readings": keys(late, PERIOD_LOOKBACK_DAYS, today),
            "denoised_readings": keys(late, PERIOD_LOOKBACK_DAYS + ANOMALY_LOOKBACK_DAYS - 1, today),
            "decompositions": keys(
                late, PERIOD_LOOKBACK_DAYS + ANOMALY_LOOKBACK_DAYS + DECOMPOSITION_LOOKBACK_DAYS - 2, today
            ),
            "hourly_readings": keys(late, PERIOD_LOOKBACK_DAYS + ANOMALY_LOOKBACK_DAYS - 1, today),
            "series_profiles": keys(late, PERIOD_LOOKBACK_DAYS + ANOMALY_LOOKBACK_DAYS - 1, today),
            "correlations": keys(late, PERIOD_LOOKBACK_DAYS + ANOMALY_LOOKBACK_DAYS - 1, today),
        }
        for asset, days in expected.items():
            assert requested(result, asset) == days, asset
        assert not requested(result, "raw_readings")
        # evaluated again without new data: nothing more
        again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert again.total_requested == 0


def test_a_failed_blocking_check_stops_the_days_below_it() -> None:
    from tsplatform.definitions import defs

    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        day = DAYS[0].isoformat()
        materialize(instance, "raw_readings", day)
        materialize(instance, "validated_readings", day)
        materialize(instance, "period_estimates", day, passed=False)  # a blocking check failed
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        assert day not in requested(result, "regularized_readings")
        assert day not in requested(result, "decompositions")
        # the same graph with the check passing goes ahead
        materialize(instance, "period_estimates", day, passed=True)
        fixed = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert day in requested(fixed, "regularized_readings")
