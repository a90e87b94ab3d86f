"""Jobs. One job materializes everything for a range of business days."""

from __future__ import annotations

import dagster as dg

from pipelines.partitions import daily_partitions

crm_daily = dg.define_asset_job(
    "crm_daily",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions,
    description="Ingest every feed for the business day(s), then build the marts.",
)
