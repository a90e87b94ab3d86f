"""`crm-pipeline`: the command line.

    crm-pipeline demo-data --customers N --days D --seed S --out DIR [--defects RATE] [--workers W]
    crm-pipeline run [--start DAY --end DAY] [--demo-if-empty] [--all-snapshots]
    crm-pipeline backfill --from DAY --to DAY [--assets SELECTION]
    crm-pipeline prune [--dry-run]
    crm-pipeline tables

`run` ingests a range of business days as ONE run (the assets receive the whole
range), then builds the mart snapshots: for a short range every day, for a long one
the last `snapshot_recent_days` days plus every month-end (`--all-snapshots` for all).
It uses the Dagster instance in $DAGSTER_HOME when set, so the runs show up in
`make dev`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path

from pipelines.settings import Settings, load_settings
from quality.contracts import FEEDS
from quality.landing import REJECTED_DIR, is_day

log = logging.getLogger("crm_pipeline")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value < 0.5:
        raise argparse.ArgumentTypeError("--defects is a share of rows between 0 and 0.5")
    return value


def landing_days(landing: Path) -> list[str]:
    """Day folders present in the landing zone, across feeds."""
    days: set[str] = set()
    for feed in FEEDS:
        folder = landing / feed
        if folder.is_dir():
            days.update(p.name for p in folder.iterdir() if p.is_dir() and p.name != REJECTED_DIR)
    return sorted(d for d in days if is_day(d))


def cmd_demo_data(args: argparse.Namespace) -> int:
    from analytics import synth

    summary = synth.generate(
        Path(args.out),
        fmt=args.format,
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        defects=args.defects,
        start=args.start,
        shard_size=args.shard_size,
        workers=args.workers,
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _demo_defaults(settings: Settings) -> dict:
    return {"customers": 3000, "days": 450, "seed": 7, "defects": 0.01, "start": settings.start_date}


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    landing = Path(settings.landing_path)
    if not landing_days(landing):
        if not args.demo_if_empty:
            print(
                f"No landing data in {landing.resolve()}. Put feed files there (see README) or run "
                "`crm-pipeline demo-data --out landing` first.",
                file=sys.stderr,
            )
            return 2
        from analytics import synth

        params = _demo_defaults(settings)
        print(f"Landing folder {landing} is empty: generating demo data {params} …", flush=True)
        synth.generate(landing, **params)
    days = landing_days(landing)
    start = args.start or dt.date.fromisoformat(days[0])
    end = args.end or dt.date.fromisoformat(days[-1])
    if start < settings.start_date:
        print(
            f"Note: landing data starts {start}, partitions start {settings.start_date}; "
            f"starting at {settings.start_date}.",
            flush=True,
        )
        start = settings.start_date
    if end < start:
        print(f"Nothing to do: end {end} is before start {start}.", file=sys.stderr)
        return 2

    from pipelines.jobs import snapshot_days

    n_days = (end - start).days + 1
    recent = 0 if args.all_snapshots else settings.snapshot_recent_days
    plan = snapshot_days(start, end, recent)
    if len(plan) == 1 and len(plan[0]) == n_days:
        print(
            f"Materializing every asset for {n_days} business days, {start} … {end}, as one run "
            f"(warehouse {Path(settings.warehouse_path).resolve()}).",
            flush=True,
        )
        runs = [("crm_daily", start, end)]
    else:
        kept = sum(len(p) for p in plan)
        print(
            f"Ingesting {n_days} business days, {start} … {end}, as one run, then building mart snapshots for "
            f"{kept} of them: the last {recent} days and every month-end before (--all-snapshots for every day). "
            f"Warehouse {Path(settings.warehouse_path).resolve()}.",
            flush=True,
        )
        runs = [("crm_ingest", start, end)] + [("crm_marts", p[0], p[-1]) for p in plan]
    return _execute(settings, runs, args.log_level)


def _instance():
    """The Dagster instance in $DAGSTER_HOME (an ephemeral one without it). Opened under a file
    lock: two processes started together on a new DAGSTER_HOME would both create its SQLite
    tables, and the second fails ('table alembic_version already exists')."""
    import fcntl

    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    Path(home).mkdir(parents=True, exist_ok=True)
    with (Path(home) / ".crm-pipeline.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)  # storages are created on first use: inside the lock
    return instance


def _execute(settings: Settings, runs: list[tuple[str, dt.date, dt.date]], log_level: str, defs=None) -> int:
    """Run each (job, first day, last day) as one run over its range; stop at the first failure."""
    if defs is None:
        from pipelines.definitions import defs
    from pipelines.recovery import recover_dead_runs, run_tags

    instance = _instance()
    recover_dead_runs(instance)
    t0 = time.monotonic()
    for job, first, last in runs:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
                **run_tags(),
            },
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            raise_on_error=False,
        )
        if not result.success:
            print_tables(settings)
            failed = [e.step_key for e in result.all_events if e.is_step_failure]
            print(
                f"\nRun {result.run_id} ({job}, {first} … {last}) FAILED after {time.monotonic() - t0:.0f}s "
                f"(failed steps: {failed}). See the log above or `make dev`.",
                file=sys.stderr,
            )
            return 1
        print(f"{job} {first} … {last}: run {result.run_id} succeeded ({time.monotonic() - t0:.0f}s).", flush=True)
    print_tables(settings)
    print_outputs(settings)
    print(f"\nAll {len(runs)} run(s) succeeded in {time.monotonic() - t0:.0f}s.")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Every selected asset for every business day of a range, as ONE run (single-run
    backfill policies: each landing file is read once, each mart builds a month of
    snapshots per query). A rerun of the same range replaces exactly those days."""
    import dagster as dg

    from pipelines.definitions import ALL_ASSETS, defs
    from pipelines.partitions import daily_partitions
    from pipelines.resources import build_resources

    settings = load_settings()
    start, end = args.start, args.end
    keys = daily_partitions.get_partition_keys()
    last = dt.date.fromisoformat(keys[-1]) if keys else settings.start_date - dt.timedelta(days=1)
    if end < start:
        print(f"--to {end} is before --from {start}.", file=sys.stderr)
        return 2
    if start < settings.start_date or end > last:
        print(
            f"Business days {start} … {end} are outside the partitions {settings.start_date} … {last} "
            "(a day becomes a partition once it has ended in the business time zone).",
            file=sys.stderr,
        )
        return 2
    selection = dg.AssetSelection.all()
    if args.assets:
        try:
            # an ingest asset writes staging and quarantine together: select its partner too
            selection = dg.AssetSelection.from_string(args.assets).required_multi_asset_neighbors()
            chosen = selection.resolve(defs.resolve_asset_graph())
        except Exception as exc:
            print(f"--assets {args.assets!r} is not a valid asset selection: {exc}", file=sys.stderr)
            return 2
        if not chosen:
            print(
                f"--assets {args.assets!r} selects no asset; examples: 'key:marts/rfm_segments', "
                "'group:value', 'key:staging/orders+' (and everything downstream).",
                file=sys.stderr,
            )
            return 2
        print(f"Selected {len(chosen)} asset(s): {', '.join(sorted(k.to_user_string() for k in chosen))}", flush=True)
    job = dg.define_asset_job("crm_backfill", selection=selection)
    backfill_defs = dg.Definitions(
        assets=ALL_ASSETS, jobs=[job], resources=build_resources(settings), executor=dg.in_process_executor
    )
    print(f"Backfilling {(end - start).days + 1} business days, {start} … {end}, as one run.", flush=True)
    return _execute(settings, [("crm_backfill", start, end)], args.log_level, backfill_defs)


def print_tables(settings: Settings) -> None:
    """Tables with row counts, the row balance per feed, and quarantine reasons."""
    from pipelines import warehouse as wh

    warehouse = wh.open_warehouse(settings)
    path = warehouse.path
    if not path.exists():
        print(f"No warehouse at {path.resolve()} yet.")
        return
    with warehouse.connect(read_only=True) as con:
        counts = wh.table_counts(con, ["staging", "quarantine", "marts", "meta"])
        feeds = [f for f in FEEDS if wh.exists(con, f"quarantine.{f}")]
        reasons = (
            wh.sql_df(
                con,
                "SELECT tbl, reason_code, count(*) AS n FROM ("
                + " UNION ALL ".join(f"SELECT 'quarantine.{f}' AS tbl, reason_code FROM quarantine.{f}" for f in feeds)
                + ") GROUP BY ALL ORDER BY 1, 2",
            )
            if feeds
            else None
        )
        balance = (
            wh.sql_df(
                con,
                "SELECT feed, sum(rows_read)::BIGINT AS rows_read, sum(clean)::BIGINT AS clean, "
                "sum(quarantined)::BIGINT AS quarantined, "
                "sum(deduplicated)::BIGINT AS deduplicated, sum(files_rejected)::BIGINT AS files_rejected, "
                "count(*) FILTER (WHERE status = 'incomplete') AS incomplete_days "
                "FROM meta.ingest_log GROUP BY 1 ORDER BY 1",
            )
            if wh.exists(con, "meta.ingest_log")
            else None
        )
    print(f"\nWarehouse: {path.resolve()}")
    width = max((len(t) for t, _ in counts), default=10)
    for table, n in counts:
        print(f"  {table:<{width}}  {n:>12,} rows")
    if balance is not None and len(balance):
        print("\nRows read = clean + quarantined + deduplicated:")
        for b in balance.itertuples(index=False):
            extra = f"; {b.incomplete_days} incomplete days (no manifest)" if b.incomplete_days else ""
            print(
                f"  {b.feed:<13} {b.rows_read:>10,} = {b.clean:>10,} + {b.quarantined:>7,} + {b.deduplicated:>6,}"
                f"   ({b.files_rejected} files rejected{extra})"
            )
    if reasons is not None and len(reasons):
        print("\nQuarantine by reason:")
        for table, rows in reasons.groupby("tbl", sort=True):
            text = ", ".join(f"{r.reason_code} {r.n:,}" for r in rows.itertuples(index=False))
            print(f"  {table:<{width}}  {text}")
    rejected = Path(settings.landing_path) / REJECTED_DIR
    if rejected.exists():
        files = sorted(p for p in rejected.rglob("*") if p.is_file() and not p.name.endswith(".reason.json"))
        print(f"\nRejected files: {len(files)} in {rejected.resolve()} (each with a .reason.json sidecar)")
    docs = path.parent / "data_docs"
    if docs.exists():
        print(f"Great Expectations Data Docs: {docs.resolve()}/<feed>/index.html")


_DUCKDB_ONLY = (
    "`crm-pipeline {command}` works on the DuckDB warehouse only; with engine spark the marts are "
    "Parquet tables in the Spark catalog (see README, Spark)."
)


def cmd_prune(args: argparse.Namespace) -> int:
    from pipelines.retention import prune_exports, prune_snapshots
    from pipelines.warehouse import Warehouse

    settings = load_settings()
    if settings.engine != "duckdb":
        print(_DUCKDB_ONLY.format(command="prune"), file=sys.stderr)
        return 2
    if not Path(settings.warehouse_path).exists():
        print(f"No warehouse at {Path(settings.warehouse_path).resolve()}.", file=sys.stderr)
        return 2
    with Warehouse(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit).connect() as con:
        pruned = prune_snapshots(con, settings.snapshot_recent_days, dry_run=args.dry_run)
    if not args.dry_run:
        prune_exports(settings.export_root, pruned)
    verb = "would delete" if args.dry_run else "deleted"
    for p in pruned:
        if p.deleted_dates:
            n = len(p.deleted_dates)
            print(f"  {p.table}: {verb} {n} snapshot(s), {p.deleted_rows:,} rows; kept {p.kept_dates}")
    total = sum(len(p.deleted_dates) for p in pruned)
    print(
        f"{verb.capitalize()} {total} snapshot(s) in {len(pruned)} mart tables "
        f"(kept: the last {settings.snapshot_recent_days} days of each and every month-end)."
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.report import report_dates, write_report
    from pipelines.warehouse import Warehouse

    settings = load_settings()
    if settings.engine != "duckdb":
        print(_DUCKDB_ONLY.format(command="report"), file=sys.stderr)
        return 2
    if not Path(settings.warehouse_path).exists():
        print(f"No warehouse at {Path(settings.warehouse_path).resolve()}: run the pipeline first.", file=sys.stderr)
        return 2
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        dates = report_dates(con)
        if not dates:
            print("The warehouse has no mart snapshots yet: run the pipeline first.", file=sys.stderr)
            return 2
        as_of = args.as_of or dates[-1]
        if as_of not in dates:
            shown = ", ".join(str(d) for d in dates[-8:])
            print(f"No mart snapshot on {as_of}. Snapshots kept (latest): {shown}", file=sys.stderr)
            return 2
        report = write_report(con, as_of, settings.report_root, settings.version, lambda m: print(m, file=sys.stderr))
    print(f"Report for {as_of}: {report.path.resolve()} ({report.charts} charts, {report.bytes:,} bytes)")
    return 0


def print_outputs(settings: Settings) -> None:
    """Where the results are: the BI database, the Parquet exports and the newest report."""
    reports = sorted(settings.report_root.glob("*/index.html"))
    shown = [
        ("BI database (read-only for BI tools)", settings.bi_file),
        ("Parquet exports", settings.export_root),
        ("HTML report", reports[-1] if reports else None),
    ]
    print("\nOutputs:")
    for label, path in shown:
        if path is not None and path.exists():
            print(f"  {label}: {path.resolve()}")


def cmd_tables(_: argparse.Namespace) -> int:
    print_tables(load_settings())
    return 0


def main(argv: list[str] | None = None) -> int:
    # Our own messages at INFO; libraries (alembic, GX) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("crm_pipeline", "quality", "analytics", "pipelines"):
        logging.getLogger(name).setLevel(logging.INFO)
    parser = argparse.ArgumentParser(prog="crm-pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-data", help="generate demo landing files with planted ground truth")
    demo.add_argument("--customers", type=int, default=3000, help="number of persons (default 3000)")
    demo.add_argument("--days", type=int, default=450, help="length of the period in days (default 450)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--out", required=True, help="landing folder to write")
    demo.add_argument("--defects", type=_rate, default=0.0, help="share of rows with planted defects (default 0)")
    demo.add_argument("--start", type=_date, default=None, help="first day (default: settings partitions_start)")
    demo.add_argument("--format", choices=["csv", "parquet"], default="csv", help="landing file format (default csv)")
    demo.add_argument("--shard-size", type=int, default=1_000_000, help="persons simulated together (default 1000000)")
    demo.add_argument("--workers", type=int, default=None, help="shards generated at a time (default: cores)")
    demo.set_defaults(func=cmd_demo_data)

    run = sub.add_parser("run", help="materialize every asset for a range of business days")
    run.add_argument("--start", type=_date, help="first business day (default: first landing day)")
    run.add_argument("--end", type=_date, help="last business day (default: last landing day)")
    run.add_argument("--demo-if-empty", action="store_true", help="generate demo data if landing is empty")
    run.add_argument(
        "--all-snapshots",
        action="store_true",
        help="build mart snapshots for every day (default: the last snapshot_recent_days days and month-ends)",
    )
    run.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Dagster run log level on the console (default INFO; DEBUG shows every event)",
    )
    run.set_defaults(func=cmd_run)

    backfill = sub.add_parser("backfill", help="materialize (selected) assets for every day of a range, as one run")
    backfill.add_argument("--from", dest="start", type=_date, required=True, help="first business day")
    backfill.add_argument("--to", dest="end", type=_date, required=True, help="last business day")
    backfill.add_argument(
        "--assets",
        default=None,
        help="asset selection, e.g. 'group:value' or 'key:staging/orders+' (default: every asset)",
    )
    backfill.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    backfill.set_defaults(func=cmd_backfill)

    prune = sub.add_parser("prune", help="delete mart snapshots outside the retention (recent days + month-ends)")
    prune.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    prune.set_defaults(func=cmd_prune)

    report = sub.add_parser("report", help="write the HTML report of one as-of date (default: the newest)")
    report.add_argument("--as-of", type=_date, default=None, help="as-of date (default: the newest snapshot)")
    report.set_defaults(func=cmd_report)

    tables = sub.add_parser("tables", help="print the warehouse tables with row counts")
    tables.set_defaults(func=cmd_tables)

    args = parser.parse_args(argv)
    if getattr(args, "start", None) is None and args.command == "demo-data":
        args.start = load_settings().start_date
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
