"""The customer 360 asset takes the nightly path on a one-day run after the day before was
built, and its rows are those of the full build; a re-ingested feed day or a settings change
sends it back to the full build. Runs on a copy of the session's demo warehouse."""

import dataclasses
import datetime as dt
import shutil

import dagster as dg
import pytest

from assets.customers import customer_360_asset
from pipelines.resources import build_resources
from pipelines.warehouse import Warehouse
from tests.conftest import DEMO_DAYS, DEMO_START
from tests.parity_kit import differences

LAST = DEMO_START + dt.timedelta(days=DEMO_DAYS - 1)


@pytest.fixture
def copy(demo_pipeline, tmp_path):
    source = demo_pipeline.settings.warehouse_path
    target = tmp_path / "crm.duckdb"
    shutil.copyfile(source, target)
    return dataclasses.replace(demo_pipeline.settings, warehouse_path=str(target))


def _snapshot(settings, day):
    with Warehouse(settings.warehouse_path).connect() as con:
        return Warehouse.sql_df(con, "SELECT * FROM marts.customer_360 WHERE as_of_date = ?", [day])


def _run(settings, day) -> str:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [customer_360_asset], resources=build_resources(settings), partition_key=day.isoformat(), instance=instance
    )
    assert result.success
    return "\n".join(e.user_message for e in instance.all_logs(result.run_id))


def test_a_one_day_run_is_built_from_the_day_before_and_equals_the_full_build(copy):
    full = _snapshot(copy, LAST)
    log = _run(copy, LAST)
    assert "customers recomputed, the rest carried forward" in log
    assert differences(full, _snapshot(copy, LAST)) == []


def test_a_reingested_day_sends_the_run_back_to_the_full_build(copy):
    full = _snapshot(copy, LAST)
    with Warehouse(copy.warehouse_path).connect() as con:
        con.raw_sql(
            f"UPDATE meta.ingest_log SET run_id = 'again' WHERE _partition_date = DATE '{DEMO_START}'"
        ).fetchall()
    log = _run(copy, LAST)
    assert "were ingested again; rebuilding" in log
    assert "carried forward" not in log
    assert differences(full, _snapshot(copy, LAST)) == []


def test_without_the_day_before_the_run_is_a_full_build(copy):
    with Warehouse(copy.warehouse_path).connect() as con:
        con.raw_sql(
            f"DELETE FROM meta.customer_360_inputs WHERE as_of_date = DATE '{LAST - dt.timedelta(days=1)}'"
        ).fetchall()
    log = _run(copy, LAST)
    assert "carried forward" not in log
