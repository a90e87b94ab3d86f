"""Mart snapshot retention: keep every day of the last `snapshot_recent_days` days and every
month-end; delete the other snapshots (`crm-pipeline prune`).

What is kept is decided by `pipelines.jobs.retained`, the same rule that decides which
snapshots a long run builds, so pruning can never delete a snapshot a run would rebuild.
"Recent" is counted back from each table's newest snapshot (not from today): a paused
pipeline does not lose its history. Each table is pruned in its own transaction; staging,
quarantine and meta are never touched (they are the inputs every snapshot is rebuilt from).
The Parquet exports of deleted snapshots are removed with them.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines import warehouse as wh
from pipelines.jobs import retained
from pipelines.warehouse import Warehouse


@dataclass(frozen=True)
class Pruned:
    table: str
    kept_dates: int
    deleted_dates: list[dt.date]
    deleted_rows: int


def mart_tables(con) -> list[str]:
    """Every marts.* table that has snapshots (an as_of_date column)."""
    rows = wh.sql_df(
        con,
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.columns "
        "WHERE table_schema = 'marts' AND column_name = 'as_of_date' ORDER BY 1",
    )
    return rows["t"].tolist()


def prune_snapshots(con, recent_days: int, *, dry_run: bool = False) -> list[Pruned]:
    """Delete the snapshots `retained` does not keep, table by table; `dry_run` only reports."""
    out = []
    for table in mart_tables(con):
        dates = wh.sql_df(con, f"SELECT as_of_date, count(*) AS n FROM {table} GROUP BY 1 ORDER BY 1")
        if dates.empty:
            out.append(Pruned(table, 0, [], 0))
            continue
        days = [pd.Timestamp(d).date() for d in dates.as_of_date]
        newest = max(days)
        drop = [d for d in days if not retained(d, newest, recent_days)]
        rows = int(dates.n[[d in set(drop) for d in days]].sum())
        if drop and not dry_run:
            marks = ", ".join("?" for _ in drop)
            raw = Warehouse._raw(con)
            raw.execute("BEGIN TRANSACTION")
            try:
                raw.execute(f"DELETE FROM {table} WHERE as_of_date IN ({marks})", drop)
                if wh.exists(con, wh.WRITES_TABLE):
                    raw.execute(
                        f"DELETE FROM {wh.WRITES_TABLE} WHERE table_name = ? AND as_of_date IN ({marks})",
                        [table, *drop],
                    )
                raw.execute("COMMIT")
            except Exception:
                raw.execute("ROLLBACK")
                raise
        out.append(Pruned(table, len(days) - len(drop), drop, rows))
    return out


def prune_exports(root: Path, pruned: list[Pruned]) -> int:
    """Remove the Parquet folders of the deleted snapshots (pipelines/exports.py layout);
    bi.duckdb follows the warehouse at the next export. Returns the folders removed."""
    removed = 0
    for p in pruned:
        table = p.table.split(".", 1)[1]
        for day in p.deleted_dates:
            folder = Path(root) / table / f"as_of_date={day.isoformat()}"
            if folder.is_dir():
                shutil.rmtree(folder)
                removed += 1
    return removed
