"""Jobs. `crm_daily` materializes everything for a range of business days (the nightly
run); `crm_ingest` and `crm_marts` split it in its two layers, so a long backfill can
load every day but build mart snapshots only for the days that are kept (see
`snapshot_days`)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

INGEST = dg.AssetSelection.key_prefixes(["staging"], ["quarantine"])
MARTS = dg.AssetSelection.key_prefixes(["marts"], ["exports"], ["reports"])

crm_daily = dg.define_asset_job(
    "crm_daily",
    selection=dg.AssetSelection.all(),
    description="Ingest every feed for the business day(s), then build the marts.",
)
crm_ingest = dg.define_asset_job(
    "crm_ingest",
    selection=INGEST,
    description="Ingest every feed for the business day(s): staging and quarantine.",
)
crm_marts = dg.define_asset_job(
    "crm_marts",
    selection=MARTS,
    description="Build the mart snapshots for the business day(s) from staging, then export and report them.",
)

JOBS = [crm_daily, crm_ingest, crm_marts]


def is_month_end(day: dt.date) -> bool:
    return (day + dt.timedelta(days=1)).day == 1


def retained(day: dt.date, newest: dt.date, recent_days: int) -> bool:
    """Whether a mart snapshot is kept: one of the last `recent_days` days up to `newest`, or
    a month-end (recent_days <= 0 keeps every day). The one rule behind what a long run
    builds (`snapshot_days`) and what pruning may delete (pipelines/retention.py)."""
    return recent_days <= 0 or day > newest - dt.timedelta(days=recent_days) or is_month_end(day)


def snapshot_days(start: dt.date, end: dt.date, recent_days: int) -> list[list[dt.date]]:
    """The mart snapshots worth building for a range, as contiguous runs of days: every
    day of the last `recent_days` days, and each month-end before them (the snapshots
    analysts compare over time). recent_days <= 0 means every day."""
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    if recent_days <= 0 or len(days) <= recent_days:
        return [days] if days else []
    recent = days[-recent_days:]
    month_ends = [d for d in days[:-recent_days] if retained(d, end, recent_days)]
    return [[d] for d in month_ends] + [recent]
