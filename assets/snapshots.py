"""The one shape every mart asset has: for the run's business days, build the
snapshots in batches of days, replace them in the warehouse, report.

A mart is a snapshot per as-of date (= partition). The analytics functions compute a
whole table of as-of dates in one expression, so a backfill builds a month of
snapshots in one query per mart instead of thirty; a nightly run is a batch of one.
Each batch of every table of the asset is written in one transaction (delete the
batch's dates, insert), so a rerun of a partition replaces it exactly.

`mart_asset` turns a compute function into a partitioned multi-asset (one asset key
per table) with the house conventions: warehouse pool, single-run backfills, row
count and markdown preview of the last snapshot, and a plot where a person would
rather look.
"""

import datetime as dt
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import dagster as dg
import ibis
import ibis.expr.types as ir
import pandas as pd

from analytics.charts import Chart
from analytics.identity import Scratch
from analytics.schema import MartSchema
from assets import plots
from assets.reporting import markdown, partition_days
from pipelines import warehouse as wh
from pipelines.partitions import daily_partitions
from pipelines.resources import WAREHOUSE_POOL, PipelineSettings, WarehouseResource
from pipelines.settings import Settings
from pipelines.warehouse import Replace

#: Days per batch: a month of snapshots per query keeps the joins small on one machine.
BATCH_DAYS = 31
#: Marts every other mart builds on: a snapshot missing there is an error, not an empty result.
BASE_MARTS = ("marts.customer_identity", "marts.customer_360")


def batches(days: Sequence[dt.date], size: int = BATCH_DAYS) -> Iterator[list[dt.date]]:
    for i in range(0, len(days), size):
        yield list(days[i : i + size])


def as_of_table(days: Sequence[dt.date]) -> ir.Table:
    return ibis.memtable(pd.DataFrame({"as_of_date": list(days)}), schema={"as_of_date": "date"})


@dataclass
class Batch:
    """What a compute function gets: the connection, the batch's as-of dates, settings."""

    con: object
    days: list[dt.date]
    settings: Settings
    secret_source: Callable[[], bytes]
    scratch: Scratch
    log: Callable[[str], None]
    as_of: ir.Table = field(init=False)

    def __post_init__(self) -> None:
        self.as_of = as_of_table(self.days)

    @property
    def version(self) -> str:
        return self.settings.version

    @property
    def secret(self) -> bytes:
        """The identity HMAC secret (read, and warned about, only by marts that need it)."""
        return self.secret_source()

    def staging(self, feed: str) -> ir.Table:
        return self.con.table(feed, database="staging")

    def mart(self, schema: MartSchema) -> ir.Table:
        """An upstream mart's snapshots for this batch's dates.

        The base marts (identity, 360) have a row for every day on which any customer
        record is known; a missing snapshot means the upstream asset was not built for
        that day, and reading on would silently produce empty marts."""
        schema_name, name = schema.table.split(".")
        if not wh.exists(self.con, schema.table):
            raise RuntimeError(f"{schema.table} does not exist yet: materialize it (it is upstream of this asset).")
        if schema.table in BASE_MARTS:
            self._require_snapshots(schema)
        t = self.con.table(name, database=schema_name)
        return t.filter(t.as_of_date.isin(self.days))

    def _require_snapshots(self, schema: MartSchema) -> None:
        if not wh.exists(self.con, "staging.customers"):
            return
        first = wh.sql_df(self.con, "SELECT min(_partition_date) AS d FROM staging.customers")["d"].iloc[0]
        if first is None or pd.isna(first):
            return
        marks = ", ".join("?" for _ in self.days)
        have = wh.sql_df(
            self.con, f"SELECT DISTINCT as_of_date FROM {schema.table} WHERE as_of_date IN ({marks})", self.days
        )
        present = set(pd.to_datetime(have["as_of_date"]).dt.date)
        missing = [d for d in self.days if d >= pd.Timestamp(first).date() and d not in present]
        if missing:
            shown = ", ".join(str(d) for d in missing[:5]) + (" …" if len(missing) > 5 else "")
            raise RuntimeError(
                f"{schema.table} has no snapshot for {shown}: materialize {schema.table.replace('.', '/')} "
                "for these days first (it is upstream of this asset)."
            )


@dataclass(frozen=True)
class Report:
    """How to present a table in the asset's metadata."""

    #: columns to sort the preview by (descending when prefixed with '-').
    order_by: tuple[str, ...] = ()
    #: columns left out of the preview.
    hide: tuple[str, ...] = ("settings_version",)
    #: plot(frame of the last snapshot) -> a chart (analytics/charts.py), or None.
    plot: Callable[[pd.DataFrame], Chart | None] | None = None
    #: extra metadata from the last snapshot.
    extra: Callable[[pd.DataFrame], dict] | None = None
    #: the columns plot and extra read (empty: all). A per-customer snapshot has millions of
    #: rows at scale: loading all its columns for a summary costs gigabytes.
    columns: tuple[str, ...] = ()


#: Key columns of the marts with a row per customer or lead: their Report must name `columns`.
ENTITY_KEYS = ("customer_key", "lead_id")

#: Rows of the last snapshot shown in the asset's metadata.
PREVIEW_ROWS = 20


def _count(con, schema: MartSchema, day: dt.date) -> int:
    return int(wh.sql_df(con, f"SELECT count(*) AS n FROM {schema.table} WHERE as_of_date = ?", [day])["n"].iloc[0])


def _preview(con, schema: MartSchema, day: dt.date, report: Report, rows: int) -> dg.MetadataValue:
    """The first PREVIEW_ROWS rows in the report's order, sorted and cut by the engine (plain
    SQL: Ibis' conversion of a result to pandas is far slower on millions of rows)."""
    order = ", ".join(
        f"{wh.quote(con, c.lstrip('-'))} {'DESC' if c.startswith('-') else 'ASC'} NULLS LAST" for c in report.order_by
    )
    sql = f"SELECT * FROM {schema.table} WHERE as_of_date = ?" + (f" ORDER BY {order}" if order else "")
    shown = wh.sql_df(con, f"{sql} LIMIT {PREVIEW_ROWS}", [day])
    shown = shown.drop(columns=[c for c in report.hide if c in shown.columns])
    if shown.empty:
        return markdown(shown)
    note = f"\n\n_{rows - PREVIEW_ROWS} more rows not shown_" if rows > PREVIEW_ROWS else ""
    return dg.MetadataValue.md(shown.to_markdown(index=False) + note)


def mart_asset(
    *,
    name: str,
    tables: Sequence[tuple[MartSchema, Report]],
    deps: Sequence[str | MartSchema],
    group: str,
    compute: Callable[[Batch], dict[str, ir.Table]],
    description: str,
    bookkeeping: Sequence[MartSchema] = (),
) -> dg.AssetsDefinition:
    """A partitioned multi-asset writing `tables` (keys marts/<table>) from `compute`,
    which returns {table name: Ibis expression for the batch's dates}. `bookkeeping` tables
    (per as-of date, not assets) are returned by `compute` too and written in the same
    transaction as the marts."""
    for schema, report in tables:
        if (report.plot or report.extra) and not report.columns and set(ENTITY_KEYS) & set(schema.key):
            raise ValueError(
                f"{schema.table}: a snapshot per customer or lead has millions of rows at scale; "
                "name the columns its plot and extra read (Report.columns)"
            )
    dep_keys = [dg.AssetKey(d.split("/")) if isinstance(d, str) else dg.AssetKey(d.table.split(".")) for d in deps]
    specs = [
        dg.AssetSpec(
            key=dg.AssetKey(schema.table.split(".")),
            deps=dep_keys,
            description=schema.description,
            group_name=group,
            kinds={"duckdb", "ibis"},
            metadata={
                "grain": "as_of_date, " + ", ".join(schema.key) if schema.key else "as_of_date",
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(c.name, c.sql_type, description=c.comment) for c in schema.columns]
                ),
            },
        )
        for schema, _ in tables
    ]

    @dg.multi_asset(
        name=name,
        specs=specs,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        description=description,
    )
    def _mart(context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: PipelineSettings):
        from pipelines.settings import identity_secret

        days = partition_days(context)
        cfg = settings.value
        secret = functools.cache(lambda: identity_secret(context.log.warning))
        started = time.monotonic()
        with warehouse.connect() as con:
            written = [schema for schema, _ in tables] + list(bookkeeping)
            for schema in written:
                wh.ensure_table(con, schema.table, schema.columns, schema.description)
            done = 0
            for batch_days in batches(days):
                with Scratch(con) as scratch:
                    batch = Batch(con, batch_days, cfg, secret, scratch, context.log.info)
                    exprs = compute(batch)
                    missing = {s.table for s in written} ^ set(exprs)
                    if missing:
                        raise RuntimeError(f"{name}: compute returned {sorted(exprs)}, expected the asset's tables")
                    wh.replace_rows(
                        con,
                        [
                            Replace(
                                schema.table,
                                schema.columns,
                                exprs[schema.table],
                                {"as_of_date": batch_days},
                                key=schema.key,
                            )
                            for schema in written
                        ],
                    )
                done += len(batch_days)
                elapsed = time.monotonic() - started
                context.log.info(f"{name}: {done}/{len(days)} snapshots, through {batch_days[-1]} ({elapsed:.0f}s)")
            for schema, report in tables:
                rows = _count(con, schema, days[-1])
                meta: dict = {
                    "dagster/row_count": rows,
                    "snapshots": len(days),
                    "last_as_of_date": days[-1].isoformat(),
                    "preview": _preview(con, schema, days[-1], report, rows),
                }
                if rows and (report.plot is not None or report.extra is not None):
                    last = wh.snapshot_df(con, schema.table, days[-1], report.columns)
                    if report.plot is not None:
                        chart = report.plot(last)
                        if chart is not None:
                            meta["plot"] = plots.metadata(chart)
                    if report.extra is not None:
                        meta.update(report.extra(last))
                yield dg.MaterializeResult(asset_key=dg.AssetKey(schema.table.split(".")), metadata=meta)

    return _mart


def customer_mart(
    *,
    schema: MartSchema,
    function: Callable[..., ir.Table],
    params: str,
    report: Report,
    group: str,
    description: str,
) -> dg.AssetsDefinition:
    """The common case: one table computed by `function(customer_360, settings.<params>)`."""
    from analytics.customer360 import CUSTOMER_360

    name = schema.table.split(".")[1]

    def compute(b: Batch) -> dict[str, ir.Table]:
        table = function(b.mart(CUSTOMER_360), getattr(b.settings, params), settings_version=b.version)
        return {schema.table: table}

    return mart_asset(
        name=name, tables=[(schema, report)], deps=[CUSTOMER_360], group=group, compute=compute, description=description
    )
