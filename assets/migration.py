"""Segment migration mart: transition matrices of RFM segment, value tier and lifecycle
stage between each as-of date and the snapshot a period earlier (analytics/migration.py).

Unlike the other marts it reads upstream snapshots outside its own partitions (the
from-dates), so it reads the whole upstream tables, restricted to the days it may need,
rather than `Batch.mart`'s batch days. The from-dates are not declared as partition
dependencies: a missing from-snapshot is an expected gap (pruned, or before the data
starts), logged, and gives no rows rather than a failed run.
"""

import datetime as dt

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from analytics import charts
from analytics.customer360 import CUSTOMER_360
from analytics.lifecycle import LIFECYCLE
from analytics.migration import (
    DIMENSIONS,
    ENTERED,
    EXITED,
    SEGMENT_MIGRATION,
    from_dates,
    needed_dates,
    segment_migration,
)
from analytics.rfm import RFM_SEGMENTS
from analytics.schema import MartSchema
from analytics.value import VALUE_TIERS
from assets.reporting import markdown
from assets.snapshots import Batch, Report, mart_asset


def _history(b: Batch, schema: MartSchema, days: list[dt.date]) -> ir.Table:
    """The upstream mart on `days` (batch days and from-windows). `b.mart` first, for its checks:
    the table exists and, for a base mart, has the batch's snapshots."""
    b.mart(schema)
    database, name = schema.table.split(".")
    t = b.con.table(name, database=database)
    return t.filter(t.as_of_date.isin(days))


def _log_gaps(b: Batch, dates: pd.DataFrame) -> None:
    for r in dates.sort_values(["as_of_date", "dimension"]).itertuples():
        table = DIMENSIONS[r.dimension].schema.table
        if not r.to_snapshot:
            b.log(f"segment_migration: {table} has no snapshot on {r.as_of_date:%Y-%m-%d}; no {r.dimension} rows")
        elif pd.isna(r.from_date):
            b.log(
                f"segment_migration: {table} has no snapshot between {r.earliest_date:%Y-%m-%d} and "
                f"{r.target_date:%Y-%m-%d} (from-date of {r.as_of_date:%Y-%m-%d}); no {r.dimension} rows"
            )


def _migration(b: Batch):
    params = b.settings.migration
    days = needed_dates(b.days, params)
    marts = {name: _history(b, DIMENSIONS[name].schema, days) for name in params.dimensions}
    c360 = _history(b, CUSTOMER_360, days)
    _log_gaps(b, b.con.execute(from_dates(b.days, marts, c360, params)))
    table = segment_migration(b.days, marts, c360, params, settings_version=b.version)
    return {SEGMENT_MIGRATION.table: table}


def _stayed(migration: pd.DataFrame) -> dict:
    """Per dimension: customers compared, share who stayed in their code, entered, exited."""
    m = migration.assign(
        stayed=np.where(migration.from_code == migration.to_code, migration.customers, 0),
        entered=np.where(migration.from_code == ENTERED[0], migration.customers, 0),
        exited=np.where(migration.to_code == EXITED[0], migration.customers, 0),
    )
    summary = m.groupby(["dimension", "from_date"]).agg(
        customers=("customers", "sum"), stayed=("stayed", "sum"), entered=("entered", "sum"), exited=("exited", "sum")
    )
    summary["stayed_share"] = summary.stayed / (summary.customers - summary.entered).where(lambda n: n > 0)
    return {"migration_summary": markdown(summary.reset_index())}


segment_migration_asset = mart_asset(
    name="segment_migration",
    tables=[
        (
            SEGMENT_MIGRATION,
            Report(
                order_by=("dimension", "from_code", "-customers"),
                plot=charts.lifecycle_migration_heatmap,
                extra=_stayed,
            ),
        )
    ],
    deps=[RFM_SEGMENTS, VALUE_TIERS, LIFECYCLE, CUSTOMER_360],
    group="lifecycle",
    compute=_migration,
    description="Transition matrices (customers, revenue) of RFM segment, value tier and lifecycle stage "
    "between each as-of date and the snapshot a period (default one month) earlier.",
)

migration_assets = [segment_migration_asset]
