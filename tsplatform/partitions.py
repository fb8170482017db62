"""The partitions definitions: defined once here and imported by every asset, check and sensor."""

from __future__ import annotations

import dagster as dg

from tsplatform.settings import get_settings

#: UTC day partitions from ``TSPLATFORM_START_DATE``; the series is a column, never a partition key.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=get_settings().start_date.isoformat(),
    timezone="UTC",
    end_offset=1,  # today's partition exists while the day is still filling
)
