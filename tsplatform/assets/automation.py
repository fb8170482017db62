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
the raw day must exist (``validated_readings`` has no lookback). ``on_new_or_late_data`` is the rest of
the graph. Days whose inputs did not change are never requested.
"""

from __future__ import annotations

import dagster as dg

AC = dg.AutomationCondition

upstream_updated = AC.any_deps_updated().since_last_handled().with_label("upstream_updated")
upstream_settled = (~AC.any_deps_in_progress() & ~AC.in_progress()).with_label("upstream_settled")
upstream_checks_passed = (
    ~AC.any_deps_match(AC.any_checks_match(AC.check_failed(), blocking_only=True))
).with_label("upstream_checks_passed")

#: validated_readings: any raw day updated (the newest day or late data), once the raw runs are done.
validated_on_new_or_late_raw = (
    AC.eager().without(AC.in_latest_time_window()).with_label("validated_on_new_or_late_raw")
)

#: Everything below validated_readings: any day whose inputs (lookback days included) changed.
on_new_or_late_data = (upstream_updated & upstream_settled & upstream_checks_passed).with_label(
    "on_new_or_late_data"
)
