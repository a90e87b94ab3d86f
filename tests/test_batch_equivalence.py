"""A backfill routes many days in one batch; a nightly run routes one day. Both must
give the same rows, because a day's fate may depend only on itself and earlier days."""

import datetime as dt

import pandas as pd
import pytest

from analytics import synth
from pipelines.warehouse import Warehouse
from quality import ingest
from quality.contracts import FEEDS
from quality.ingest import chunks, ensure_tables, ingest_batch, ingest_day
from quality.router import RouteContext

START = dt.date(2025, 1, 1)
#: Several batches with a short one at the end: 10 + 10 + 4 days.
DAYS = 24


def _load(landing, wh_path, batch_days):
    days = [START + dt.timedelta(days=i) for i in range(DAYS)]
    with Warehouse(wh_path).connect() as con:
        for contract in FEEDS.values():
            ensure_tables(con, contract)
            for batch in chunks(days, batch_days):
                if len(batch) == 1:
                    ingest_day(con, contract, batch[0], landing_root=landing, ctx=RouteContext(), run_id="r")
                else:
                    ingest_batch(con, contract, batch, landing_root=landing, ctx=RouteContext(), run_id="r")
        return {
            t: Warehouse.sql_df(con, f"SELECT * FROM {t} ORDER BY ALL")
            for f in FEEDS
            for t in (f"staging.{f}", f"quarantine.{f}")
        } | {"log": Warehouse.sql_df(con, "SELECT * FROM meta.ingest_log ORDER BY ALL")}


def test_backfill_batch_equals_day_by_day(tmp_path):
    landing = tmp_path / "landing"
    synth.generate(landing, customers=250, days=DAYS, seed=5, defects=0.05, start=START, log=lambda *a: None)
    # Rejected files are moved on first sight: give each run its own copy of the landing zone.
    import shutil

    shutil.copytree(landing, tmp_path / "landing2")
    one_by_one = _load(landing, tmp_path / "a.duckdb", batch_days=1)
    batched = _load(tmp_path / "landing2", tmp_path / "b.duckdb", batch_days=10)
    for name, frame in one_by_one.items():
        assert len(frame), name if name.startswith("staging") else None
        pd.testing.assert_frame_equal(frame, batched[name], obj=name)


def test_chunks_split_at_gaps_and_length():
    d = [START + dt.timedelta(days=i) for i in (0, 1, 2, 5, 6)]
    assert chunks(d, 2) == [[d[0], d[1]], [d[2]], [d[3], d[4]]]


def test_chunks_end_before_the_row_budget():
    """Batches are routed in memory: the manifests' row counts cap them (a day bigger than the
    budget is a batch alone, never split)."""
    d = [START + dt.timedelta(days=i) for i in range(6)]
    rows = dict(zip(d, [400, 500, 200, 1500, 100, 100], strict=True))
    assert chunks(d, 31, rows, 1000) == [[d[0], d[1]], [d[2]], [d[3]], [d[4], d[5]]]
    assert chunks(d, 31, rows) == [d] == chunks(d, 31)


# --- a day too big to hold, routed in key chunks ------------------------------------------


def _load_days(landing, wh_path, days, max_rows):
    """Every feed, day by day (chunked when a day declares more than `max_rows`): every
    table in a canonical order, and the order the rows were written in."""
    with Warehouse(wh_path).connect() as con:
        for contract in FEEDS.values():
            ensure_tables(con, contract)
            for day in days:
                ingest_day(con, contract, day, landing_root=landing, ctx=RouteContext(), run_id="r", max_rows=max_rows)
        tables = [t for f in FEEDS for t in (f"staging.{f}", f"quarantine.{f}")]
        out = {t: Warehouse.sql_df(con, f"SELECT * FROM {t} ORDER BY ALL") for t in tables}
        out |= {
            f"{t} (written order)": Warehouse.sql_df(con, f"SELECT _source_file, _source_line FROM {t} ORDER BY rowid")
            for t in tables
        }
        return out | {"log": Warehouse.sql_df(con, "SELECT * FROM meta.ingest_log ORDER BY ALL")}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_big_day_in_key_chunks_equals_the_day_whole(tmp_path, caplog, monkeypatch, fmt):
    """Sharded demo data (several files per feed and day) with planted defects: duplicates,
    conflicting versions, orphans, re-deliveries. Every day routed in key chunks of at most
    ~40 rows (Parquet files read in slices of 7) gives the rows, reasons, counts and row order
    of the day routed whole."""
    import logging
    import shutil

    monkeypatch.setattr(ingest, "SPILL_PIECE_ROWS", 7)
    landing = tmp_path / "landing"
    synth.generate(
        landing, customers=360, days=8, seed=11, defects=0.08, start=START, log=lambda *a: None, shard_size=120, fmt=fmt
    )
    shutil.copytree(landing, tmp_path / "landing2")
    days = [START + dt.timedelta(days=i) for i in range(8)]
    whole = _load_days(landing, tmp_path / "a.duckdb", days, max_rows=None)
    with caplog.at_level(logging.INFO, logger="quality.ingest"):
        chunked = _load_days(tmp_path / "landing2", tmp_path / "b.duckdb", days, max_rows=40)
    split = [r.getMessage() for r in caplog.records if "key chunks" in r.getMessage()]
    assert any(m.startswith("orders ") for m in split) and any(m.startswith("customers ") for m in split)
    assert not any(m.startswith("surveys ") for m in split)  # a surveys day is routed whole
    for name, frame in whole.items():
        pd.testing.assert_frame_equal(frame, chunked[name], obj=name)
    assert len(whole["staging.orders"]) and len(whole["quarantine.orders"])


def test_a_return_finds_its_original_in_another_chunk(tmp_path):
    """Same-day returns whose originals sit in other chunks: found when the original is a
    completed line still standing after the same-day checks (even one held back later for
    an unknown customer), an orphan when it is missing or was itself quarantined."""
    from tests import landing_kit as lk

    day = "2025-03-01"
    rows = [
        lk.order("O-1", day),
        lk.order("O-3", day, quantity="two"),  # CAST_ERROR: not an original
        lk.order("O-4", day, customer_ref="CRM-9999999"),  # UNKNOWN_CUSTOMER, but a completed original
        lk.order("O-5", day, line_no="2"),
        lk.order("O-5", day, line_no="2"),  # an exact copy: counted once
    ]
    returns = [
        lk.order(f"R-{n}", day, status="returned", original_order_id=orig)
        for n, orig in ((1, "O-1"), (2, "O-404"), (3, "O-3"), (4, "O-4"), (5, "O-5"), (6, " Ｏ-１"))
    ]
    results = {}
    for name, max_rows in (("whole", None), ("chunked", 1)):
        landing = tmp_path / name / "landing"
        lk.write_day(landing, "customers", day, {"c.csv": lk.csv_text("customers", [lk.customer(day=day)])})
        lk.write_day(
            landing,
            "orders",
            day,
            {
                "a.csv": lk.csv_text("orders", returns[:3] + rows[:2]),
                "b.csv": lk.csv_text("orders", rows[2:] + returns[3:]),
            },
        )
        with Warehouse(tmp_path / name / "w.duckdb").connect() as con:
            for feed in ("customers", "orders"):
                ensure_tables(con, FEEDS[feed])
                ingest_day(
                    con,
                    FEEDS[feed],
                    dt.date(2025, 3, 1),
                    landing_root=landing,
                    ctx=RouteContext(),
                    run_id="r",
                    max_rows=max_rows,
                )
            results[name] = (
                Warehouse.sql_df(con, "SELECT order_id, line_no FROM staging.orders ORDER BY ALL"),
                Warehouse.sql_df(
                    con, "SELECT _source_file, _source_line, reason_code FROM quarantine.orders ORDER BY ALL"
                ),
                Warehouse.sql_df(
                    con, "SELECT rows_read, clean, quarantined, deduplicated FROM meta.ingest_log WHERE feed = 'orders'"
                ),
            )
    for whole, chunked in zip(results["whole"], results["chunked"], strict=True):
        pd.testing.assert_frame_equal(whole, chunked)
    clean, quarantined, counts = results["chunked"]
    assert set(clean["order_id"]) == {"O-1", "O-5", "R-1", "R-4", "R-5", "R-6"}
    assert quarantined["reason_code"].value_counts().to_dict() == {
        "ORPHAN_RETURN": 2,
        "CAST_ERROR": 1,
        "UNKNOWN_CUSTOMER": 1,
    }
    assert counts.iloc[0].tolist() == [11, 6, 4, 1]
