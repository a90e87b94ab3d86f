"""The Dagster code location: it loads, and its assets materialize a partition on a
temporary warehouse, identically when rerun; a failing blocking check stops the
marts."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from pipelines.resources import build_resources
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse
from quality.contracts import FEEDS
from tests import landing_kit as kit

DAY = "2025-03-01"

EXPECTED_KEYS = {
    *(
        f"{layer}/{feed}"
        for layer in ("staging", "quarantine")
        for feed in ("customers", "orders", "payments", "surveys", "interactions", "leads")
    ),
    *(
        f"marts/{mart}"
        for mart in (
            "customer_identity",
            "customer_360",
            "rfm_segments",
            "value_tiers",
            "pareto",
            "pareto_groups",
            "loyalty",
            "customer_tiers",
            "tier_matrix",
            "lifecycle",
            "churn",
            "cohort_retention",
            "churn_warning",
            "segment_migration",
            "segment_strategy",
            "shopping_lists",
            "prospects",
            "clv",
            "clv_models",
            "clv_validation",
            "clv_tracking",
            "survey_exclusions",
            "satisfaction_index",
            "satisfaction_paths",
            "csd",
            "nps",
            "kano",
            "ipa",
            "survey_coverage",
            "satisfaction_loyalty",
            "survey_comments",
        )
    ),
    "exports/marts",
    "reports/html",
}


def test_definitions_load_with_every_asset_and_check():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == EXPECTED_KEYS
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("staging/orders", "rows_balance") in checks and ("staging/surveys", "gx_suite") in checks
    assert defs.resolve_job_def("crm_daily") is not None


def _landing(root, day=DAY):
    prev = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
    kit.write_day(root, "customers", day, {"c.csv": kit.csv_text("customers", [kit.customer(day=day)])})
    kit.write_day(
        root,
        "orders",
        day,
        {
            "o.csv": kit.csv_text(
                "orders",
                [
                    kit.order("O-1", day=day),
                    kit.order("O-2", day=day, line_no="1"),
                    kit.order("O-2", day=day, line_no="2"),
                    kit.order("RT-1", day=day, status="returned", original_order_id="O-1", quantity="1"),
                ],
            )
        },
    )
    kit.write_day(root, "payments", day, {"p.csv": kit.csv_text("payments", [kit.payment(day=day)])})
    kit.write_day(root, "surveys", day, {"s.csv": kit.csv_text("surveys", [kit.survey(day=day)])})
    kit.write_day(root, "interactions", day, {"i.csv": kit.csv_text("interactions", [kit.interaction(day=day)])})
    return prev


def _materialize(tmp_path, settings_kw=None, partition=DAY, assets=None):
    from pipelines.definitions import ALL_ASSETS

    settings = Settings(
        warehouse_path=str(tmp_path / "wh" / "crm.duckdb"),
        landing_path=str(tmp_path / "landing"),
        **(settings_kw or {}),
    )
    return dg.materialize(
        assets or ALL_ASSETS,
        partition_key=partition,
        resources=build_resources(settings),
        raise_on_error=False,
    ), settings


def _snapshot(settings):
    """Every table of the warehouse, sorted (ids of the run aside: the run id, and the
    bookkeeping derived from it: the ingest fingerprint and the write id)."""
    per_run = ["run_id", "ingest_fingerprint", "write_id"]
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        tables = [t for t, _ in Warehouse.table_counts(con, ["staging", "quarantine", "marts", "meta"])]
        return {
            t: Warehouse.sql_df(con, f"SELECT * FROM {t} ORDER BY ALL").drop(columns=per_run, errors="ignore")
            for t in tables
        }


def test_materialize_one_partition_and_rerun_is_identical(tmp_path):
    _landing(tmp_path / "landing")
    result, settings = _materialize(tmp_path)
    assert result.success
    first = _snapshot(settings)
    assert {"marts.customer_identity", "marts.customer_360"} <= set(first)
    c360 = first["marts.customer_360"]
    assert len(c360) == 1
    row = c360.iloc[0]
    # 3 lines of 2 x 59.90 bought, 1 x 59.90 returned
    assert (row.order_count, row.frequency, float(row.gross_amount), float(row.net_monetary)) == (2, 0, 359.4, 299.5)
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert len(checks) == 3 * len(FEEDS) and all(checks.values()), checks

    again, _ = _materialize(tmp_path)
    assert again.success
    second = _snapshot(settings)
    for table in first:
        pd.testing.assert_frame_equal(first[table], second[table], obj=table)


def test_data_docs_hold_no_raw_personal_data(tmp_path):
    from assets.ingest import ingest_assets

    _landing(tmp_path / "landing")
    result, settings = _materialize(tmp_path, assets=ingest_assets)
    assert result.success
    docs = tmp_path / "wh" / "data_docs"
    pages = [p.read_text(encoding="utf-8", errors="ignore") for p in docs.rglob("*") if p.is_file()]
    assert any("customers" in p for p in pages), "Data Docs were written"
    row = kit.customer()
    for value in (row["name"], row["phone"], row["email"].lower(), "Zhang.Wei"):
        assert not any(value in p for p in pages), value


def test_a_day_above_ingest_batch_rows_is_loaded_in_key_chunks_with_the_same_rows(tmp_path, caplog):
    """`ingest_batch_rows` sizes what is routed in memory; a day above it is routed in key
    chunks (the returned order line and its original may fall in different chunks) and loads
    the same rows, passing the same checks."""
    import logging

    from assets.ingest import ingest_assets

    _landing(tmp_path / "a" / "landing")
    _landing(tmp_path / "b" / "landing")
    whole, settings = _materialize(tmp_path / "a", assets=ingest_assets)
    with caplog.at_level(logging.INFO, logger="quality.ingest"):
        chunked, chunked_settings = _materialize(tmp_path / "b", {"ingest_batch_rows": 1}, assets=ingest_assets)
    assert whole.success and chunked.success
    assert "orders 2025-03-01: 4 declared rows, routed in 4 key chunks" in caplog.text
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in chunked.get_asset_check_evaluations()}
    assert len(checks) == 3 * len(FEEDS) and all(checks.values()), checks
    a, b = _snapshot(settings), _snapshot(chunked_settings)
    assert set(a) == set(b)
    for table in a:
        pd.testing.assert_frame_equal(a[table], b[table], obj=table)


@pytest.mark.parametrize("rows", [0, -5, "1M"])
def test_ingest_batch_rows_must_be_a_number_of_rows(tmp_path, rows):
    from pipelines.settings import load_settings

    path = tmp_path / "s.yaml"
    path.write_text(f"ingest_batch_rows: {rows}\n")
    with pytest.raises(ValueError, match="ingest_batch_rows"):
        load_settings(path)


def test_blocking_check_failure_stops_the_marts(tmp_path):
    _landing(tmp_path / "landing")
    kit.write_day(
        tmp_path / "landing",
        "orders",
        DAY,
        {"o.csv": kit.csv_text("orders", [kit.order("O-1"), kit.order("O-2", currency="XYZ")])},
    )
    result, settings = _materialize(tmp_path, {"quarantine_ceiling": 0.2})
    assert not result.success
    with Warehouse(settings.warehouse_path).connect(read_only=True) as con:
        assert not Warehouse.exists(con, "marts.customer_360")
        assert Warehouse.sql_df(con, "SELECT reason_code FROM quarantine.orders")["reason_code"].tolist() == [
            "UNKNOWN_CURRENCY"
        ]


@pytest.mark.parametrize("name", ["warehouse_path", "landing_path"])
def test_settings_env_override(monkeypatch, name, tmp_path):
    from pipelines.settings import load_settings

    env = {"warehouse_path": "CRM_WAREHOUSE", "landing_path": "CRM_LANDING"}[name]
    monkeypatch.setenv(env, str(tmp_path / "x"))
    assert getattr(load_settings(), name) == str(tmp_path / "x")


def test_unknown_setting_is_a_clear_error(tmp_path):
    from pipelines.settings import load_settings

    path = tmp_path / "s.yaml"
    path.write_text("quarantine_cieling: 0.1\n")
    with pytest.raises(ValueError, match="unknown settings"):
        load_settings(path)


def test_a_mart_without_its_upstream_snapshot_fails_with_a_clear_message(tmp_path):
    from assets.customers import customer_360_asset, customer_identity_asset
    from assets.ingest import ingest_assets
    from assets.value import rfm_segments_asset

    _landing(tmp_path / "landing")
    result, settings = _materialize(tmp_path, assets=[*ingest_assets, customer_identity_asset, customer_360_asset])
    assert result.success
    # the next day has customers but no customer_360 snapshot yet (the first day has one)
    nxt = "2025-03-02"
    kit.write_day(tmp_path / "landing", "customers", nxt, {"c.csv": kit.csv_text("customers", [kit.customer(day=nxt)])})
    dg.materialize(ingest_assets, partition_key=nxt, resources=build_resources(settings), raise_on_error=False)
    lonely = dg.materialize(
        [rfm_segments_asset], partition_key=nxt, resources=build_resources(settings), raise_on_error=False
    )
    assert not lonely.success
    failure = next(e for e in lonely.all_events if e.is_step_failure)
    assert "marts.customer_360 has no snapshot for 2025-03-02" in failure.event_specific_data.error.to_string()


def test_a_per_customer_report_must_name_the_columns_its_summary_reads():
    """A per-customer snapshot has millions of rows at scale: a plot or summary that loaded all
    its columns cost gigabytes (prospects took 15 GB at 100M order lines)."""
    from analytics.lifecycle import LIFECYCLE
    from assets.snapshots import Report, mart_asset

    with pytest.raises(ValueError, match="name the columns"):
        mart_asset(
            name="x",
            tables=[(LIFECYCLE, Report(extra=lambda last: {}))],
            deps=[],
            group="g",
            compute=lambda b: {},
            description="",
        )
