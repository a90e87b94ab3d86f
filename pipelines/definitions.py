"""The Dagster code location (workspace.yaml points here)."""

from __future__ import annotations

import dagster as dg

from assets.clv import clv_assets
from assets.customers import customer_assets
from assets.exports import export_assets
from assets.ingest import ingest_assets
from assets.lifecycle import lifecycle_assets
from assets.migration import migration_assets
from assets.satisfaction import satisfaction_assets
from assets.strategy import strategy_assets
from assets.value import value_assets
from pipelines.jobs import JOBS
from pipelines.partitions import SETTINGS
from pipelines.resources import build_resources
from pipelines.schedules import nightly_schedule
from pipelines.sensors import failure_alert, landing_sensor

#: Every asset, in layers: ingestion, the marts, then the exports.
ALL_ASSETS = [
    *ingest_assets,
    *customer_assets,
    *value_assets,
    *lifecycle_assets,
    *migration_assets,
    *strategy_assets,
    *clv_assets,
    *satisfaction_assets,
    *export_assets,
]

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=JOBS,
    schedules=[nightly_schedule(SETTINGS)],
    sensors=[landing_sensor(SETTINGS), failure_alert(SETTINGS)],
    resources=build_resources(SETTINGS),
    executor=dg.in_process_executor,
)
