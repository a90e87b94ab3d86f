"""The Dagster code location (workspace.yaml points here)."""

from __future__ import annotations

import dagster as dg

from assets.customers import customer_summary
from assets.ingest import ingest_assets
from pipelines.jobs import crm_daily
from pipelines.resources import build_resources

defs = dg.Definitions(
    assets=[*ingest_assets, customer_summary],
    jobs=[crm_daily],
    resources=build_resources(),
    executor=dg.in_process_executor,
)
