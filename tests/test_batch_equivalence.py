"""A backfill routes many days in one batch; a nightly run routes one day. Both must
give the same rows, because a day's fate may depend only on itself and earlier days."""

import datetime as dt

import pandas as pd

from analytics import synth
from pipelines.warehouse import Warehouse
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
