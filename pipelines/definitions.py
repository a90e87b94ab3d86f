"""The Dagster code location (workspace.yaml points here)."""

from __future__ import annotations

import dagster as dg

from assets.customers import customer_assets
from assets.ingest import ingest_assets
from pipelines.jobs import crm_daily
from pipelines.resources import build_resources

#: Every asset, in layers: ingestion, then the marts.
ALL_ASSETS = [*ingest_assets, *customer_assets]

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[crm_daily],
    resources=build_resources(),
    executor=dg.in_process_executor,
)
