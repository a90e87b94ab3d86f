"""CLI backfills in tests: a landing folder, a warehouse and a persistent Dagster instance per
site, run as real `python -m pipelines.cli` processes; and the comparison of two warehouses
table by table (staging, quarantine, marts), ignoring the columns that name the run."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from pipelines.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
START = dt.date(2025, 1, 1)
DAYS = 2
END = START + dt.timedelta(days=DAYS - 1)
RANGE = ["--from", str(START), "--to", str(END), "--log-level", "ERROR"]
#: Columns that name the run that wrote a row, not its content.
RUN_COLUMNS = {"run_id", "loaded_at", "_loaded_at"}
TIMEOUT_S = 900


def tables(path: Path) -> dict[str, pd.DataFrame]:
    """Every staging, quarantine and mart table, sorted on all columns, run columns dropped."""
    with Warehouse(path).connect(read_only=True) as con:
        names = Warehouse.sql_df(
            con,
            "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
            "WHERE table_schema IN ('staging', 'quarantine', 'marts') ORDER BY 1",
        )["t"]
        out = {}
        for t in names:
            frame = Warehouse.sql_df(con, f"SELECT * FROM {t}")
            frame = frame.drop(columns=[c for c in frame.columns if c in RUN_COLUMNS])
            out[t] = frame.sort_values(list(frame.columns)).reset_index(drop=True) if len(frame) else frame
        return out


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert set(a) == set(b) and any(t.startswith("marts.") and len(f) for t, f in a.items())
    for t in a:
        pd.testing.assert_frame_equal(a[t], b[t], check_dtype=False, obj=t)


class Site:
    """A landing folder, a warehouse and a persistent Dagster instance (make run's dagster.yaml)."""

    def __init__(self, root: Path, landing: Path, name: str) -> None:
        self.warehouse = root / name / "crm.duckdb"
        self.home = root / name / "dagster_home"
        self.home.mkdir(parents=True)
        shutil.copy(ROOT / "dagster.yaml", self.home / "dagster.yaml")
        self.env = {
            **os.environ,
            "CRM_LANDING": str(landing),
            "CRM_WAREHOUSE": str(self.warehouse),
            "DAGSTER_HOME": str(self.home),
            "GX_ANALYTICS_ENABLED": "False",
            "DAGSTER_DISABLE_TELEMETRY": "1",
        }

    def start(self, *args: str, code: str | None = None) -> subprocess.Popen:
        cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "pipelines.cli", *args]
        return subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def run(self, *args: str) -> str:
        proc = self.start(*args)
        out, _ = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0, out[-3000:]
        return out
