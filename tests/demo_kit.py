"""`make run`'s demo data through the real ingestion and identity, without Dagster: the
shared start of the tests that check planted ground truth (CLV, satisfaction)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from analytics import synth
from analytics.identity import IdentityParams, Scratch, current_records, customer_identity
from pipelines.cli import _demo_defaults
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse
from quality.contracts import FEEDS
from quality.ingest import chunks, ensure_tables, ingest_batch
from quality.router import RouteContext


@dataclass
class Demo:
    """The loaded warehouse as of the demo's last day, with records and identity kept."""

    con: object
    scratch: Scratch
    truth: dict
    as_of: ir.Table
    records: ir.Table
    identity: ir.Table

    def staging(self, feed: str) -> ir.Table:
        return self.con.table(feed, database="staging")


@contextlib.contextmanager
def demo_warehouse(root: Path, feeds: Sequence[str]) -> Iterator[Demo]:
    """Generate the demo (same generator, size, seed, start and defect rate as `make run`),
    ingest `feeds` (customers always, first: the router quarantines rows of unknown records)
    in month batches, and resolve identity as of the last day."""
    spec = _demo_defaults(Settings())
    synth.generate(root / "landing", **spec, log=lambda _: None)
    truth = json.loads((root / "landing" / "ground_truth.json").read_text())
    days = [spec["start"] + dt.timedelta(days=d) for d in range(spec["days"])]
    with Warehouse(str(root / "w.duckdb")).connect() as con:
        for contract in FEEDS.values():
            ensure_tables(con, contract)
        for feed in ["customers", *(f for f in feeds if f != "customers")]:
            for batch in chunks(days, 31):
                ingest_batch(con, FEEDS[feed], batch, landing_root=root / "landing", ctx=RouteContext(), run_id="t")
        as_of = ibis.memtable(pd.DataFrame({"as_of_date": [days[-1]]}), schema={"as_of_date": "date"})
        with Scratch(con) as scratch:
            records = scratch.keep(current_records(con.table("customers", database="staging"), as_of))
            identity = scratch.keep(customer_identity(scratch, records, IdentityParams(), b"test"))
            yield Demo(con, scratch, truth, as_of, records, identity)
