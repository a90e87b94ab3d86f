"""Ingestion assets: one per feed, daily partitions, landing → staging + quarantine.

Each feed's asset owns two tables, `staging.<feed>` and `quarantine.<feed>`, so
it is a multi-asset with both keys. A backfill runs as a single run
(BackfillPolicy.single_run): the asset receives the whole range and loads the days
in order, each day in its own transaction — which is what makes a 500-day
backfill take minutes, not hours.

Blocking checks (they stop the marts downstream when they fail):
- rows_balance: for every day, rows read = clean + quarantined + deduplicated;
- quarantine_rate: share of quarantined rows in the run at most the ceiling;
- gx_suite: the contract's Great Expectations suite passes on the clean rows.
"""

import functools
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.reporting import markdown, partition_days
from pipelines.partitions import daily_partitions
from pipelines.resources import WAREHOUSE_POOL, PipelineSettings, WarehouseResource
from quality import landing, suites
from quality.contracts import FEEDS, FeedContract
from quality.ingest import DayResult, chunks, ensure_tables, ingest_batch
from quality.router import RouteContext

ROWS_BALANCE = "rows_balance"
QUARANTINE_RATE = "quarantine_rate"
GX_SUITE = "gx_suite"

#: Days routed and written together (one transaction): bounds memory in long backfills, with
#: the settings' `ingest_batch_rows` (a single day above it is routed in key chunks).
BATCH_DAYS = 31


def staging_key(feed: str) -> dg.AssetKey:
    return dg.AssetKey(["staging", feed])


def quarantine_key(feed: str) -> dg.AssetKey:
    return dg.AssetKey(["quarantine", feed])


def _upstream(contract: FeedContract) -> list[dg.AssetKey]:
    # Customer references are checked against staging.customers of the same day.
    return [staging_key("customers")] if contract.customer_column else []


def _column_doc(contract: FeedContract) -> str:
    rows = "\n".join(
        f"| `{c.name}` | {c.sql_type} | {'yes' if c.required else ''} | {c.description} |" for c in contract.columns
    )
    return f"{contract.description}\n\n| column | type | required | meaning |\n|---|---|---|---|\n{rows}"


def day_table(results: list[DayResult]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "day": r.day.isoformat(),
                "status": r.status,
                "files": r.files_read,
                "rejected_files": len(r.rejected),
                "rows_read": r.rows_read,
                "clean": r.clean,
                "quarantined": r.quarantined,
                "deduplicated": r.deduplicated,
                "balanced": r.balanced,
            }
            for r in results
        ]
    )


def _validate(
    clean: pd.DataFrame, contract: FeedContract, warehouse, batch: list, *, docs: bool
) -> suites.SuiteOutcome:
    """The GX suite on one batch's clean rows, as soon as the batch is written: holding a whole
    backfill's rows for one validation would cost gigabytes at scale. Data Docs (`docs`) are
    written for the run's last batch; a batch that fails writes them too (the evidence a person
    needs), and then the later batches leave them alone."""
    folder, name = warehouse.docs_dir / contract.name, f"{contract.name}_{batch[0]}_{batch[-1]}"
    outcome = suites.validate(clean, contract, docs_dir=folder if docs else None, run_name=name)
    if not outcome.success and not docs:
        outcome = suites.validate(clean, contract, docs_dir=folder, run_name=name)
    return outcome


def build_ingest_asset(contract: FeedContract) -> dg.AssetsDefinition:
    feed = contract.name
    skey, qkey = staging_key(feed), quarantine_key(feed)

    @dg.multi_asset(
        name=f"ingest_{feed}",
        specs=[
            dg.AssetSpec(
                skey,
                description=f"Clean rows of the {feed} feed.\n\n{_column_doc(contract)}",
                deps=_upstream(contract),
                group_name="ingest",
                kinds={"duckdb"},
            ),
            dg.AssetSpec(
                qkey,
                description=f"Rows of the {feed} feed held back, with a reason code.",
                group_name="ingest",
                kinds={"duckdb"},
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                ROWS_BALANCE,
                asset=skey,
                blocking=True,
                description="rows read = clean + quarantined + deduplicated, every day",
            ),
            dg.AssetCheckSpec(
                QUARANTINE_RATE,
                asset=skey,
                blocking=True,
                description="quarantined share of the run's rows at most the ceiling",
            ),
            dg.AssetCheckSpec(
                GX_SUITE,
                asset=skey,
                blocking=True,
                description="Great Expectations contract suite passes on the clean rows",
            ),
        ],
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def _ingest(context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: PipelineSettings):
        days = partition_days(context)
        cfg = settings.value
        run_id = context.run.run_id
        results: list[DayResult] = []
        outcomes: list[suites.SuiteOutcome] = []
        gx_seconds = 0.0
        started = time.monotonic()
        ctx = RouteContext(
            business_timezone=cfg.business_timezone,
            min_valid_date=cfg.min_date,
            source_timezone=cfg.source_timezones.get(feed),
        )
        landing_root = Path(cfg.landing_path)
        rows = {d: landing.declared_rows(landing_root, feed, d.isoformat()) for d in days}
        plan = chunks(days, BATCH_DAYS, rows, cfg.ingest_batch_rows)
        with warehouse.connect() as con:
            ensure_tables(con, contract)

            def check(clean: pd.DataFrame, batch: list, last: bool) -> None:
                nonlocal gx_seconds
                checked = time.monotonic()
                docs = last and all(o.success for o in outcomes)
                outcomes.append(_validate(clean, contract, warehouse, batch, docs=docs))
                gx_seconds += time.monotonic() - checked

            for i, batch in enumerate(plan):
                batch_results, _ = ingest_batch(
                    con,
                    contract,
                    batch,
                    landing_root=landing_root,
                    ctx=ctx,
                    run_id=run_id,
                    speeder_seconds=cfg.speeder_seconds,
                    attention_answer=cfg.attention_check_answer,
                    max_rows=cfg.ingest_batch_rows,
                    on_clean=functools.partial(check, batch=batch, last=i == len(plan) - 1),
                )
                results += batch_results
                context.log.info(
                    f"{feed}: {len(results)}/{len(days)} days loaded, through {batch[-1]} "
                    f"({time.monotonic() - started:.0f}s)"
                )
        outcome = suites.SuiteOutcome.combine(outcomes)
        context.log.info(f"{feed}: {outcome.summary}; validated in {gx_seconds:.2f}s over {len(outcomes)} batch(es)")

        table = day_table(results)
        totals = table[["rows_read", "clean", "quarantined", "deduplicated", "rejected_files"]].sum()
        reasons = pd.Series(dtype="int64")
        for r in results:
            reasons = reasons.add(pd.Series(r.reasons, dtype="int64"), fill_value=0)
        reason_table = reasons.astype("int64").rename_axis("reason_code").reset_index(name="rows")
        rejected = pd.DataFrame(
            [
                {"day": r.day.isoformat(), "file": f.file_name, "reason": f.reason_code, "detail": f.reason_detail}
                for r in results
                for f in r.rejected
            ]
        )
        unbalanced = table.loc[~table["balanced"], "day"].tolist()
        rate = float(totals["quarantined"] / totals["rows_read"]) if totals["rows_read"] else 0.0
        incomplete = table.loc[table["status"] == "incomplete", "day"].tolist()

        yield dg.MaterializeResult(
            asset_key=skey,
            metadata={
                "dagster/row_count": int(totals["clean"]),
                "days": len(days),
                "rows_read": int(totals["rows_read"]),
                "deduplicated": int(totals["deduplicated"]),
                "rejected_files": markdown(rejected),
                "incomplete_days": ", ".join(incomplete) or "none",
                "per_day": markdown(table.tail(20)),
                "gx_data_docs": outcome.docs_index or "not written",
            },
        )
        yield dg.MaterializeResult(
            asset_key=qkey,
            metadata={"dagster/row_count": int(totals["quarantined"]), "by_reason": markdown(reason_table)},
        )
        yield dg.AssetCheckResult(
            asset_key=skey,
            check_name=ROWS_BALANCE,
            passed=not unbalanced,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"unbalanced_days": ", ".join(unbalanced) or "none", **{k: int(v) for k, v in totals.items()}},
        )
        yield dg.AssetCheckResult(
            asset_key=skey,
            check_name=QUARANTINE_RATE,
            passed=rate <= cfg.quarantine_ceiling,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "rate": rate,
                "ceiling": cfg.quarantine_ceiling,
                "worst_days": markdown(
                    table.assign(rate=table["quarantined"] / table["rows_read"].clip(lower=1)).sort_values(
                        "rate", ascending=False
                    )[["day", "rows_read", "quarantined", "rate"]],
                    5,
                ),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=skey,
            check_name=GX_SUITE,
            passed=outcome.success,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "summary": outcome.summary,
                "expectations": outcome.evaluated,
                "failed": ", ".join(outcome.failed) or "none",
                "errored": ", ".join(outcome.errored) or "none",
            },
        )

    return _ingest


ingest_assets = [build_ingest_asset(c) for c in FEEDS.values()]
