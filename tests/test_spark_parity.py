"""Spark parity: the whole pipeline (ingestion and every mart) run by the same Dagster assets on
DuckDB and on Spark (local mode) over the same small landing zone, and every table compared.

One local Spark session serves the module (starting one takes seconds, the run a few minutes);
the comparison is engine-neutral (tests/parity_kit.py): floats within a relative 1e-6,
everything else exact, representation (NaN / None, Decimal / float, row order) ignored.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pipelines.exports import all_marts
from tests.parity_kit import differences

START = dt.date(2025, 1, 1)
#: History long enough for every mart to have rows (churn, CLV validation, migration, cohorts).
DAYS = 200
END = START + dt.timedelta(days=DAYS - 1)
#: Ingestion is compared over the first days (on Spark it costs seconds per feed and day).
INGEST_DAYS = 3
#: The mart snapshots compared: a month of as-of dates, one batch (segment_migration compares the
#: last day with the same day a month earlier). Then customer 360 of the last day is built again
#: as a nightly run (from the day before's snapshot), which replaces the batch's rows.
MART_START = END - dt.timedelta(days=30)
#: Columns that differ by design between two runs (the run that wrote the row).
RUN_COLUMNS = ("run_id", "loaded_at", "_loaded_at")
INGESTED = ("staging", "quarantine", "meta")


@dataclass
class Run:
    result: object
    log: str

    @property
    def success(self) -> bool:
        return self.result.success

    @property
    def all_events(self):
        return self.result.all_events


@dataclass
class Parity:
    duck: dict[str, pd.DataFrame]
    spark: dict[str, pd.DataFrame]
    spark_settings: object
    results: dict[str, object]


def _settings(root: Path, landing: Path, engine: str):
    from pipelines.settings import Settings

    return Settings(
        warehouse_path=str(root / engine / "crm.duckdb"),
        landing_path=str(landing),
        quarantine_ceiling=0.5,
        engine=engine,
        spark_master="local[2]",
        spark_conf={"spark.sql.shuffle.partitions": "2"},  # tiny data: fewer tasks per query
    )


def _materialize(settings, start: dt.date, end: dt.date, assets):
    import dagster as dg

    from pipelines.resources import build_resources

    started = time.monotonic()
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        assets,
        resources=build_resources(settings),
        instance=instance,
        raise_on_error=False,
        tags={
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": end.isoformat(),
        },
    )
    print(f"{settings.engine}: {len(assets)} assets, {start} … {end}: {time.monotonic() - started:.0f} s")
    return Run(result, "\n".join(e.user_message for e in instance.all_logs(result.run_id)))


def _tables(settings, schemas: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    from pipelines import warehouse as wh

    with wh.open_warehouse(settings).connect() as con:
        names = [t for t, _ in wh.table_counts(con, schemas)]
        return {t: wh.sql_df(con, f"SELECT * FROM {t}") for t in names}


def _copy_staging(source, target) -> None:
    """Staging of the whole history from DuckDB into Spark, through the warehouse's own write path
    (ensure_table + replace_rows of pandas frames)."""
    from pipelines import warehouse as wh
    from quality.contracts import FEEDS
    from quality.ingest import staging_columns, staging_table

    with wh.open_warehouse(source).connect() as src, wh.open_warehouse(target).connect() as dst:
        for contract in FEEDS.values():
            table, columns = staging_table(contract.name), staging_columns(contract)
            frame = wh.sql_df(src, f"SELECT * FROM {table}")
            wh.ensure_table(dst, table, columns, contract.description)
            days = [START + dt.timedelta(days=i) for i in range(DAYS)]
            wh.replace_rows(dst, [wh.Replace(table, columns, frame, {"_partition_date": days})])


@pytest.fixture(scope="module")
def parity(tmp_path_factory) -> Parity:
    """Ingestion: the first INGEST_DAYS days on both engines. Marts: the whole history ingested
    on DuckDB and copied to Spark's staging, then a month of snapshots on both engines."""
    from analytics import synth
    from assets.customers import customer_360_asset
    from assets.exports import export_assets
    from assets.ingest import ingest_assets
    from pipelines.definitions import ALL_ASSETS

    marts = [a for a in ALL_ASSETS if a not in ingest_assets and a not in export_assets]  # exports: DuckDB's
    root = tmp_path_factory.mktemp("parity")
    landing = root / "landing"
    synth.generate(landing, customers=120, days=DAYS, seed=5, defects=0.02, start=START)
    duck, spark = _settings(root, landing, "duckdb"), _settings(root, landing, "spark")
    first = START + dt.timedelta(days=INGEST_DAYS - 1)
    results = {
        "duckdb ingest": _materialize(duck, START, first, ingest_assets),
        "spark ingest": _materialize(spark, START, first, ingest_assets),
    }
    ingested = {"duck": _tables(duck, INGESTED), "spark": _tables(spark, INGESTED)}
    results["duckdb ingest (rest)"] = _materialize(duck, first + dt.timedelta(days=1), END, ingest_assets)
    _copy_staging(duck, spark)
    results["duckdb marts"] = _materialize(duck, MART_START, END, marts)
    results["spark marts"] = _materialize(spark, MART_START, END, marts)
    results["duckdb nightly"] = _materialize(duck, END, END, [customer_360_asset])
    results["spark nightly"] = _materialize(spark, END, END, [customer_360_asset])
    duck_tables = ingested["duck"] | _tables(duck, ("marts",))
    spark_tables = ingested["spark"] | _tables(spark, ("marts",))
    return Parity(duck_tables, spark_tables, spark, results)


def _failures(result) -> list[str]:
    return [
        f"{e.step_key}: {e.event_specific_data.error.message.strip()[:400]}"
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    ]


@pytest.mark.parametrize(
    "run",
    [
        "duckdb ingest",
        "spark ingest",
        "duckdb ingest (rest)",
        "duckdb marts",
        "duckdb nightly",
        "spark marts",
        "spark nightly",
    ],
)
def test_the_pipeline_runs_on_both_engines(parity, run):
    result = parity.results[run]
    assert result.success, _failures(result)


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_the_last_day_is_built_from_the_day_before(parity, engine):
    assert "customers recomputed, the rest carried forward" in parity.results[f"{engine} nightly"].log


def test_both_engines_hold_the_same_tables(parity):
    assert sorted(parity.spark) == sorted(parity.duck)
    assert {s.table for s in all_marts()} <= set(parity.duck)


@pytest.mark.parametrize("table", sorted(s.table for s in all_marts()))
def test_every_mart_is_equal_on_duckdb_and_spark(parity, table):
    duck, spark = parity.duck[table], parity.spark[table]
    assert differences(duck, spark, ignore=RUN_COLUMNS) == []


def test_the_marts_compared_are_not_empty(parity):
    """Parity of empty tables proves nothing: the demo must exercise the marts that matter."""
    empty = [s.table for s in all_marts() if parity.duck[s.table].empty]
    assert empty == []
    for table in ("marts.customer_360", "marts.rfm_segments", "marts.clv"):
        assert len(parity.duck[table]) > 1000, table


@pytest.mark.parametrize("schema", ["staging", "quarantine", "meta"])
def test_ingestion_is_equal_on_duckdb_and_spark(parity, schema):
    tables = [t for t in parity.duck if t.startswith(schema + ".")]
    assert tables
    problems = {t: differences(parity.duck[t], parity.spark[t], ignore=RUN_COLUMNS) for t in tables}
    assert {t: p for t, p in problems.items() if p} == {}
    assert sum(len(parity.duck[t]) for t in tables if t.startswith("quarantine.")) or schema != "quarantine"


def test_spark_tables_are_parquet_partitioned_by_slice(parity):
    root = Path(parity.spark_settings.spark_location) / "tables"
    rfm = root / "marts.db" / "rfm_segments"
    days = sorted(p.name for p in rfm.glob("as_of_date=*"))
    assert days == [f"as_of_date={MART_START + dt.timedelta(days=i)}" for i in range((END - MART_START).days + 1)]
    assert list((rfm / days[-1]).glob("*.parquet"))
    assert list((root / "staging.db" / "orders").glob("_partition_date=*/*.parquet"))


def test_a_rerun_on_spark_replaces_its_partition_exactly(parity):
    from assets.value import rfm_segments_asset

    result = _materialize(parity.spark_settings, END, END, [rfm_segments_asset])
    assert result.success, _failures(result)
    again = _tables_one(parity.spark_settings, "marts.rfm_segments")
    assert differences(parity.spark["marts.rfm_segments"], again) == []


def _tables_one(settings, table: str) -> pd.DataFrame:
    from pipelines import warehouse as wh

    with wh.open_warehouse(settings).connect() as con:
        return wh.sql_df(con, f"SELECT * FROM {table}")


def test_a_failed_audit_on_spark_publishes_nothing(parity):
    from analytics.rfm import RFM_SEGMENTS
    from pipelines import warehouse as wh
    from pipelines.warehouse import AuditFailed, Replace

    before = parity.spark["marts.rfm_segments"]
    day = END
    rows = before[pd.to_datetime(before["as_of_date"]).dt.date == day].copy()
    doubled = pd.concat([rows, rows.head(1)])  # a duplicate key: the audit must refuse it
    with wh.open_warehouse(parity.spark_settings).connect() as con:
        with pytest.raises(AuditFailed, match="duplicate rows"):
            wh.replace_rows(
                con,
                [Replace(RFM_SEGMENTS.table, RFM_SEGMENTS.columns, doubled, {"as_of_date": [day]}, RFM_SEGMENTS.key)],
            )
        outside = rows.assign(as_of_date=day - dt.timedelta(days=1))
        with pytest.raises(AuditFailed, match="outside the slice"):
            wh.replace_rows(con, [Replace(RFM_SEGMENTS.table, RFM_SEGMENTS.columns, outside, {"as_of_date": [day]})])
    assert differences(before, _tables_one(parity.spark_settings, "marts.rfm_segments")) == []


def test_the_spark_session_runs_in_utc(parity):
    from pipelines import warehouse as wh

    with wh.open_warehouse(parity.spark_settings).connect() as con:
        frame = wh.sql_df(con, "SELECT current_timezone() AS tz")
    assert frame["tz"].iloc[0] == "UTC"
