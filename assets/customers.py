"""Customer marts. For now the first one: marts.customer_summary, a snapshot per
as-of date built with Ibis from staging.orders (see analytics/summary.py)."""

import time

import dagster as dg

from analytics.summary import customer_summary as summary_expr
from assets.reporting import markdown, partition_days
from pipelines.partitions import daily_partitions
from pipelines.resources import WAREHOUSE_POOL, PipelineSettings, WarehouseResource
from pipelines.warehouse import ColumnDef, Replace, Warehouse

SUMMARY_TABLE = "marts.customer_summary"
SUMMARY_COLUMNS = [
    ColumnDef("as_of_date", "DATE", "Snapshot date: built only from data up to the end of this business day."),
    ColumnDef("customer_ref", "VARCHAR", "Customer record (identity resolution comes with marts.customer_identity)."),
    ColumnDef("first_purchase_date", "DATE", "First completed purchase day."),
    ColumnDef("last_purchase_date", "DATE", "Last completed purchase day."),
    ColumnDef("order_count", "BIGINT", "Distinct completed orders."),
    ColumnDef("purchase_days", "BIGINT", "Distinct purchase days (purchase occasions)."),
    ColumnDef("frequency", "BIGINT", "Repeat purchase days: purchase_days - 1 (BG/NBD x)."),
    ColumnDef("recency_days", "BIGINT", "Days from first to last purchase day (BG/NBD t_x)."),
    ColumnDef("days_since_last", "BIGINT", "Days from the last purchase day to as_of_date (RFM recency)."),
    ColumnDef("age_days", "BIGINT", "Days from the first purchase day to as_of_date (BG/NBD T)."),
    ColumnDef("gross_amount", "DECIMAL(18,2)", "Completed line value (quantity x unit price - discount), CNY."),
    ColumnDef("returns_amount", "DECIMAL(18,2)", "Value of returned lines, CNY."),
    ColumnDef("return_count", "BIGINT", "Distinct return orders."),
    ColumnDef("net_monetary", "DECIMAL(18,2)", "gross_amount - returns_amount, CNY."),
    ColumnDef("settings_version", "VARCHAR", "Hash of the settings the row was built with."),
]


@dg.asset(
    key=["marts", "customer_summary"],
    deps=[dg.AssetKey(["staging", "orders"])],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    group_name="customers",
    kinds={"duckdb", "ibis"},
)
def customer_summary(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: PipelineSettings
) -> dg.MaterializeResult:
    """Per-customer purchase summary as of each partition date: first and last purchase,
    repeat frequency (distinct purchase days - 1), recency, age T, net monetary, order
    count. One snapshot per as-of date; a snapshot uses only data up to its date."""
    days = partition_days(context)
    started = time.monotonic()
    with warehouse.connect() as con:
        Warehouse.ensure_table(
            con, SUMMARY_TABLE, SUMMARY_COLUMNS, "Per-customer purchase summary, one snapshot per as_of_date."
        )
        orders = con.table("orders", database="staging")
        for i, day in enumerate(days, 1):
            expr = summary_expr(orders, day, settings_version=settings.version)
            Warehouse.replace_rows(con, [Replace(SUMMARY_TABLE, SUMMARY_COLUMNS, expr, {"as_of_date": day})])
            if i % 100 == 0 or i == len(days):
                context.log.info(f"customer_summary: {i}/{len(days)} snapshots ({time.monotonic() - started:.0f}s)")
        last = Warehouse.sql_df(
            con,
            f"SELECT * FROM {SUMMARY_TABLE} WHERE as_of_date = ? ORDER BY net_monetary DESC, customer_ref LIMIT 10",
            [days[-1]],
        )
        (n_last,) = Warehouse.sql_df(
            con, f"SELECT count(*) AS n FROM {SUMMARY_TABLE} WHERE as_of_date = ?", [days[-1]]
        )["n"]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(n_last),
            "snapshots": len(days),
            "last_as_of_date": days[-1].isoformat(),
            "top_customers_last_snapshot": markdown(last.drop(columns=["settings_version"])),
        }
    )
