"""The nightly schedule: yesterday's business day, every asset, at `nightly_at` in the
business time zone (the partitions' zone, so "yesterday" is the business day that just
ended, not the server's).

The landing sensor (pipelines/sensors.py) is the usual trigger: it starts a day as soon
as its files are complete. The schedule is the backstop for a deployment that prefers a
fixed time; both can run, because a partition's run replaces its rows (a second run of
the same day changes nothing)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipelines.jobs import crm_daily
from pipelines.settings import Settings


def nightly_schedule(settings: Settings) -> dg.ScheduleDefinition:
    at = dt.time.fromisoformat(settings.nightly_at)
    return dg.build_schedule_from_partitioned_job(
        crm_daily,
        name="crm_nightly",
        hour_of_day=at.hour,
        minute_of_hour=at.minute,
        description=f"Every asset for yesterday's business day, daily at {settings.nightly_at} "
        f"({settings.business_timezone}).",
        default_status=dg.DefaultScheduleStatus.RUNNING
        if settings.automation_running
        else dg.DefaultScheduleStatus.STOPPED,
    )
