"""Exports: Parquet per mart and as-of date, and bi.duckdb for BI tools (the rules are in
pipelines/exports.py). Partitioned like the marts, so a run exports exactly the days it
built; bi.duckdb is republished once per run, from the warehouse as a whole.

It opens the warehouse as the writer (the copy into bi.duckdb goes through the pipeline's
own connection, never a second process), so it runs in the warehouse pool.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.reporting import markdown, partition_days
from pipelines.exports import export_parquet, exported_marts, publish_bi
from pipelines.partitions import daily_partitions
from pipelines.report import ANCHOR, SECTIONS, write_report
from pipelines.resources import WAREHOUSE_POOL, PipelineSettings, WarehouseResource
from pipelines.settings import Settings

EXPORTED = exported_marts()


def export_paths(settings: Settings) -> tuple[Path, Path]:
    """(Parquet root, bi.duckdb path) from the settings (default: beside the warehouse)."""
    return settings.export_root, settings.bi_file


@dg.asset(
    key=["exports", "marts"],
    deps=[dg.AssetKey(s.table.split(".")) for s in EXPORTED],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    group_name="exports",
    kinds={"parquet", "duckdb"},
)
def exports_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: PipelineSettings):
    """The pseudonymised marts as Parquet (<export_path>/<table>/as_of_date=<day>/data.parquet)
    and as bi.duckdb (tables, <table>_latest views, comments), swapped in atomically so BI
    readers never block the pipeline. marts.customer_identity (source record ids) is never
    exported."""
    days = partition_days(context)
    root, bi_path = export_paths(settings.value)
    with warehouse.connect() as con:
        files = export_parquet(con, EXPORTED, days, root)
        bi = publish_bi(con, EXPORTED, bi_path)
    per_table = (
        pd.DataFrame([{"table": f.table, "rows": f.rows, "bytes": f.bytes} for f in files])
        .groupby("table", as_index=False)
        .sum()
    )
    per_table["latest_as_of_date"] = per_table["table"].map(lambda t: str(bi.latest.get(t) or ""))
    how = "rebuilt in full" if bi.mode == "full" else f"updated: {bi.snapshots_changed} snapshots replaced or removed"
    context.log.info(f"exports: {len(files)} Parquet files under {root}, {bi.path} ({bi.bytes:,} bytes; {how})")
    return dg.MaterializeResult(
        metadata={
            "files_written": len(files),
            "bytes_written": sum(f.bytes for f in files),
            "rows_written": sum(f.rows for f in files),
            "tables": len(EXPORTED),
            "days": len(days),
            "parquet_path": dg.MetadataValue.path(str(root.resolve())),
            "bi_path": dg.MetadataValue.path(str(bi.path.resolve())),
            "bi_bytes": bi.bytes,
            "bi_publication": bi.mode,
            "bi_snapshots_changed": bi.snapshots_changed,
            "per_table": markdown(per_table, limit=len(per_table)),
        }
    )


@dg.asset(
    key=["reports", "html"],
    deps=[dg.AssetKey(t.split(".")) for t in sorted({ANCHOR, *(f.table for s in SECTIONS for f in s.figures)})],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    group_name="exports",
    kinds={"html"},
)
def report_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: PipelineSettings):
    """The static HTML report (<report_path>/<as_of>/index.html) for the last day of the run:
    a backfill reports its newest day, not every day (`crm-pipeline report --as-of D` builds
    any other kept snapshot's)."""
    day = partition_days(context)[-1]
    with warehouse.connect() as con:
        report = write_report(con, day, settings.value.report_root, settings.version, context.log.warning)
    context.log.info(f"report: {report.path} ({report.charts} charts, {report.bytes:,} bytes)")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(report.path.resolve())),
            "as_of_date": day.isoformat(),
            "charts": report.charts,
            "missing": ", ".join(report.missing) or "none",
            "bytes": report.bytes,
        }
    )


export_assets = [exports_asset, report_asset]
