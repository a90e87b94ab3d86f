"""The one partitions definition: business days in the business time zone.

A partition key is a business date (YYYY-MM-DD). The last partition is
yesterday's day (end_offset=0): a day is only processed once it has ended.
"""

from __future__ import annotations

import dagster as dg

from pipelines.settings import load_settings

SETTINGS = load_settings()

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=SETTINGS.partitions_start,
    timezone=SETTINGS.business_timezone,
    end_offset=0,
)
