"""The declarative automation of the asset graph: named, composed ``AutomationCondition``s.

``eager()`` only looks at the newest day partition, and it waits while ANY dependency partition is
missing — with a lookback window (day D reads D-6..D) the first days of a series' history would wait
forever, and late data for an old day would never flow downstream. These conditions drop both filters:

* ``upstream_updated``: a partition this day depends on — its own day or a day of its lookback window —
  was updated since this day was last requested or materialized, or is requested on this tick. Late
  data for day D therefore reaches D and every day whose window includes D; each change once.
* ``upstream_settled``: nothing upstream of the day, and the day itself, is in progress.
* ``upstream_checks_passed``: no blocking check failed on the latest materialization of any dependency
  partition (a failing blocking check stops the graph below it; a lookback day that was never
  materialized, before a series' history starts, does not block).

``validated_on_new_or_late_raw`` (``validated_readings``) is ``eager`` without its latest-window filter:
the raw day must exist (``validated_readings`` has no lookback), and no ingestion run may be in progress
(``no_ingestion_in_progress``): an ingestion run reports its days one by one at its end, and a tick between
two of them split one batch of landed days into two validations and so two graph runs (seen in
``test_graph``). Waiting for the run to finish validates the batch's days together.

``on_new_or_late_data`` is the rest of the graph, for the days that have readings (``day_has_readings``):
a window reaching past the last day with data does not make Dagster compute empty days, and every asset of
a day range is requested for the same days, so one backfill run takes the range through the whole graph
instead of one run per asset.
Days whose inputs did not change are never requested.

``day_has_readings`` is Python evaluated by the automation sensor in the code server
(``use_user_code_server=True`` on the sensor in ``definitions.py``).
"""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from tsplatform.assets.ingest import ingest_kafka

AC = dg.AutomationCondition
RAW_READINGS = dg.AssetKey("raw_readings")
#: The job that lands raw_readings.
INGEST_JOB = ingest_kafka.name


class DayHasReadings(dg.AutomationCondition):
    """True for the day partitions whose ``raw_readings`` day exists: readings (or quarantined records) of
    that UTC day have landed. The assets of the graph share ``raw_readings``' daily partitions."""

    @property
    def name(self) -> str:
        return "day_has_readings"

    @property
    def description(self) -> str:
        return "raw_readings has the day (readings of that day landed)"

    @property
    def requires_cursor(self) -> bool:
        return False

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:  # type: ignore[override]
        candidates = context.candidate_subset
        if candidates.is_empty or candidates.partitions_def is None:
            return dg.AutomationResult(context=context, true_subset=candidates)
        view = context.asset_graph_view
        days = candidates.expensively_compute_partition_keys()
        raw_days = view.get_subset_from_partition_keys(RAW_READINGS, candidates.partitions_def, days)
        missing = await view.compute_missing_subset(key=RAW_READINGS, from_subset=raw_days)
        landed = days - missing.expensively_compute_partition_keys()
        return dg.AutomationResult(
            context=context, true_subset=candidates.compute_intersection_with_partition_keys(landed)
        )


day_has_readings = DayHasReadings()


class NoIngestionInProgress(dg.AutomationCondition):
    """True for every candidate while no ``ingest_kafka`` run (the only writer of ``raw_readings``) is queued
    or running: the days it is landing are not all reported yet. A steady stream leaves gaps between its
    runs (one every Kafka sensor interval, seconds each), so this delays validation, never stops it."""

    @property
    def name(self) -> str:
        return "no_ingestion_in_progress"

    @property
    def description(self) -> str:
        return f"no {INGEST_JOB} run queued or in progress"

    @property
    def requires_cursor(self) -> bool:
        return False

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:  # type: ignore[override]
        candidates = context.candidate_subset
        if candidates.is_empty:
            return dg.AutomationResult(context=context, true_subset=candidates)
        instance = context.asset_graph_view.instance
        busy = instance.get_runs_count(dg.RunsFilter(job_name=INGEST_JOB, statuses=IN_PROGRESS_RUN_STATUSES))
        true_subset = context.get_empty_subset() if busy else candidates
        return dg.AutomationResult(context=context, true_subset=true_subset)


no_ingestion_in_progress = NoIngestionInProgress()

upstream_updated = AC.any_deps_updated().since_last_handled().with_label("upstream_updated")
upstream_settled = (~AC.any_deps_in_progress() & ~AC.in_progress()).with_label("upstream_settled")
upstream_checks_passed = (
    ~AC.any_deps_match(AC.any_checks_match(AC.check_failed(), blocking_only=True))
).with_label("upstream_checks_passed")

#: validated_readings: any raw day updated (the newest day or late data), once the raw runs are done
#: (the ingestion runs, and the partitions' own in-progress runs).
validated_on_new_or_late_raw = (
    AC.eager().without(AC.in_latest_time_window()) & no_ingestion_in_progress
).with_label("validated_on_new_or_late_raw")

#: Everything below validated_readings: any day whose inputs (lookback days included) changed.
on_new_or_late_data = (
    upstream_updated & upstream_settled & upstream_checks_passed & day_has_readings
).with_label("on_new_or_late_data")
