"""The partitions definitions and the lookback windows between them: defined once here and imported by
every asset, check and sensor."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from tsplatform.settings import get_settings

#: UTC day partitions from ``TSPLATFORM_START_DATE``; the series is a column, never a partition key.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=get_settings().start_date.isoformat(),
    timezone="UTC",
    end_offset=1,  # today's partition exists while the day is still filling
)

#: Days of ``validated_readings`` a period estimate (and the imputation history) looks back over.
PERIOD_LOOKBACK_DAYS = 7
#: Days of ``denoised_readings`` a decomposition is fitted over.
DECOMPOSITION_LOOKBACK_DAYS = 28
#: Days of ``regularized_readings`` the causal anomaly detector sees, ending at the day: the day and the one
#: week of history its long window holds (``timeseries.anomaly_likelihood``: the error scale and the
#: distribution of the surprise over a week of rows; the seasonal stream's 3 previous days). With 2 days an
#: hourly or 30-minute series never left the detector's warm-up of 100 rows, and no stream had its week.
ANOMALY_LOOKBACK_DAYS = 8


def lookback(days: int) -> dg.TimeWindowPartitionMapping:
    """Day D depends on the ``days`` days ending at D (D-days+1 .. D); a window reaching before the first
    partition is cut at it."""
    return dg.TimeWindowPartitionMapping(start_offset=-(days - 1), allow_nonexistent_upstream_partitions=True)


def days_of(window: dg.TimeWindow) -> list[dt.date]:
    """The UTC days of a partition time window (``context.partition_time_window``), ascending."""
    first = window.start.astimezone(dt.UTC).date()
    last = window.end.astimezone(dt.UTC).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days)]
