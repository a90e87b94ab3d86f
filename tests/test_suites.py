"""The GX suite is a second gate behind the router: it passes the clean rows the router
emits, and it fails (naming the expectation) on clean rows the router should never have
let through, so a router bug cannot reach the marts unnoticed."""

from __future__ import annotations

import datetime as dt
import gc

import pandas as pd
import pytest

from pipelines.warehouse import Warehouse
from quality import suites
from quality.contracts import FEEDS
from quality.ingest import ensure_tables, ingest_day
from quality.router import RouteContext
from quality.suites import SuiteOutcome, expectations_for, validate
from tests import landing_kit as kit

DAY = "2025-03-01"


@pytest.fixture(scope="module")
def clean_orders(tmp_path_factory):
    landing = tmp_path_factory.mktemp("suite") / "landing"
    rows = [kit.order(f"O-{i}") for i in range(1, 5)]
    kit.write_day(landing, "customers", DAY, {"c.csv": kit.csv_text("customers", [kit.customer()])})
    kit.write_day(landing, "orders", DAY, {"o.csv": kit.csv_text("orders", rows)})
    with Warehouse(":memory:").connect() as con:
        for feed in ("customers", "orders"):
            ensure_tables(con, FEEDS[feed])
        ingest_day(
            con, FEEDS["customers"], dt.date.fromisoformat(DAY), landing_root=landing, ctx=RouteContext(), run_id="r"
        )
        result, clean = ingest_day(
            con, FEEDS["orders"], dt.date.fromisoformat(DAY), landing_root=landing, ctx=RouteContext(), run_id="r"
        )
    assert result.clean == 4
    return clean


def test_the_routers_clean_rows_pass_every_expectation(clean_orders, tmp_path):
    outcome = validate(clean_orders, FEEDS["orders"], docs_dir=tmp_path / "docs")
    assert outcome.success and not outcome.failed and not outcome.errored
    assert outcome.evaluated == len(expectations_for(FEEDS["orders"])) > 10
    assert outcome.docs_index and (tmp_path / "docs" / "index.html").exists()


@pytest.mark.parametrize(
    ("column", "value", "expectation"),
    [
        ("currency", "XYZ", "expect_column_values_to_be_in_set(currency)"),
        ("order_id", None, "expect_column_values_to_not_be_null(order_id)"),
        ("quantity", -3, "expect_column_values_to_be_between(quantity)"),
        ("line_no", None, "expect_column_values_to_not_be_null(line_no)"),
    ],
)
def test_a_row_the_router_should_have_stopped_fails_the_suite(clean_orders, column, value, expectation):
    bad = clean_orders.copy()
    bad[column] = bad[column].astype("object")
    bad.loc[bad.index[0], column] = value
    outcome = validate(bad, FEEDS["orders"])
    assert not outcome.success
    assert any(f.startswith(expectation) and f.endswith(": 1 unexpected") for f in outcome.failed), outcome.failed


def test_a_duplicate_event_key_fails_the_suite(clean_orders):
    outcome = validate(pd.concat([clean_orders, clean_orders.iloc[:1]], ignore_index=True), FEEDS["orders"])
    assert not outcome.success and any("unique" in f for f in outcome.failed), outcome.failed


def test_a_run_validated_batch_by_batch_fails_when_any_batch_fails(clean_orders):
    """The ingest asset validates each batch as it is written (a backfill's rows are never held
    together); the run's outcome must still fail when one early batch fails."""
    bad = clean_orders.copy()
    bad.loc[bad.index[0], "currency"] = "XYZ"
    first, second = validate(bad, FEEDS["orders"]), validate(clean_orders, FEEDS["orders"])
    run = SuiteOutcome.combine([first, second])
    assert not run.success and run.failed == first.failed and run.evaluated == second.evaluated
    assert SuiteOutcome.combine([second, second]).success
    assert SuiteOutcome.combine([]).success


def _frames_alive() -> int:
    return sum(isinstance(o, pd.DataFrame) for o in gc.get_objects())


@pytest.mark.parametrize("collect_rows", [1, 10**9])
def test_a_big_validated_frame_is_freed_when_validation_ends(clean_orders, monkeypatch, collect_rows):
    """GX's context holds the frames it validates in reference cycles; with Python's automatic
    collection off (as between its rare full collections), a frame of COLLECT_ROWS or more is
    still freed by the time `validate` returns, and a smaller one is left to Python."""
    monkeypatch.setattr(suites, "COLLECT_ROWS", collect_rows)
    gc.collect()
    gc.disable()
    try:
        before = _frames_alive()
        assert validate(clean_orders.copy(), FEEDS["orders"]).success
        left = _frames_alive() - before
    finally:
        gc.enable()
    assert (left == 0) if collect_rows == 1 else (left > 0)
