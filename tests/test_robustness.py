"""The warehouse survives what happens to real deployments:

- write, audit, publish: new rows that fail their audit (outside the slice they replace,
  duplicate keys) publish nothing, in any table of the write;
- two `crm-pipeline backfill` processes started together on one warehouse and one
  persistent Dagster instance both succeed, and the warehouse equals a single run's;
- a process SIGKILLed in the middle of publishing a mart (after its DELETE, before its
  COMMIT) leaves every table as it was, and the next run frees the dead run's pool slot
  and completes.

The processes are real (`python -m pipelines.cli`), with DAGSTER_HOME pointing at a
persistent instance configured like `make run`'s (dagster.yaml: warehouse pool of 1).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import textwrap
import time

import pandas as pd
import pytest

from analytics.schema import Col
from pipelines.warehouse import AuditFailed, Replace, Warehouse
from tests.backfill_kit import RANGE, TIMEOUT_S, Site, assert_same, tables

# --- write, audit, publish -----------------------------------------------------------------------

COLS = [Col("as_of_date", "DATE", ""), Col("k", "VARCHAR", ""), Col("v", "BIGINT", "")]
D1, D2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)


def _frame(rows):
    return pd.DataFrame(rows, columns=["as_of_date", "k", "v"])


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([(D2, "a", 1), (D2, "a", 2)], "1 duplicate rows on (as_of_date, k)"),
        ([(D2, None, 1), (D2, None, 2)], "1 duplicate rows on (as_of_date, k)"),  # nulls compare equal
        ([(None, "a", 1)], "1 rows outside the slice"),
        ([(D2, "a", 1), (D1, "b", 1)], "1 rows outside the slice"),
    ],
)
def test_rows_that_fail_their_audit_publish_nothing_in_any_table(con, rows, problem):
    for t in ("marts.one", "marts.two"):
        Warehouse.ensure_table(con, t, COLS)
        Warehouse.replace_rows(con, [Replace(t, COLS, _frame([(D1, "x", 1), (D2, "y", 2)]), {}, key=("k",))])
    good = Replace("marts.one", COLS, _frame([(D2, "z", 9)]), {"as_of_date": [D2]}, key=("k",))
    bad = Replace("marts.two", COLS, _frame(rows), {"as_of_date": [D2]}, key=("k",))
    with pytest.raises(AuditFailed, match="nothing published") as failed:
        Warehouse.replace_rows(con, [good, bad])
    assert problem in str(failed.value) and "marts.two" in str(failed.value)
    for t in ("marts.one", "marts.two"):
        after = Warehouse.sql_df(con, f"SELECT k, v FROM {t} ORDER BY k")
        assert after.values.tolist() == [["x", 1], ["y", 2]], t
    # the same write with good rows publishes both tables
    Warehouse.replace_rows(con, [good, Replace("marts.two", COLS, _frame([(D2, "w", 3)]), {"as_of_date": [D2]})])
    assert Warehouse.sql_df(con, "SELECT k FROM marts.two ORDER BY k").k.tolist() == ["w", "x"]


def test_an_empty_write_deletes_the_slice():
    with Warehouse(":memory:").connect() as con:
        Warehouse.ensure_table(con, "marts.one", COLS)
        Warehouse.replace_rows(con, [Replace("marts.one", COLS, _frame([(D1, "x", 1), (D2, "y", 2)]), {})])
        Warehouse.replace_rows(con, [Replace("marts.one", COLS, _frame([]), {"as_of_date": [D2]}, key=("k",))])
        assert Warehouse.sql_df(con, "SELECT k FROM marts.one").k.tolist() == ["x"]


# --- real processes -------------------------------------------------------------------------------


def test_two_processes_started_together_both_succeed_and_corrupt_nothing(cli_backfill, tmp_path):
    """The reference is the same backfill run alone (conftest.cli_backfill)."""
    site = Site(tmp_path, cli_backfill.landing, "shared")
    procs = [site.start("backfill", *RANGE) for _ in range(2)]
    outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]
    assert_same(tables(site.warehouse), cli_backfill.tables)


#: Runs the real CLI with one change: the first DELETE from a mart table (inside the publish
#: transaction) writes a marker and sleeps, so the test can SIGKILL the process right there.
KILLED_MID_PUBLISH = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from pipelines.warehouse import Warehouse

    marker = Path(os.environ["CRM_TEST_MARKER"])
    original = Warehouse._raw

    class Stalling:
        def __init__(self, raw):
            self._raw = raw
        def __getattr__(self, name):
            return getattr(self._raw, name)
        def execute(self, sql, *args, **kwargs):
            out = self._raw.execute(sql, *args, **kwargs)
            if sql.startswith('DELETE FROM "marts".'):
                marker.write_text(sql)
                time.sleep(3600)
            return out

    Warehouse._raw = staticmethod(lambda con: Stalling(original(con)))
    from pipelines.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_a_process_killed_while_publishing_a_mart_leaves_the_snapshot_and_the_next_run_completes(
    cli_backfill, tmp_path
):
    site = Site(tmp_path, cli_backfill.landing, "killed")
    shutil.copy(cli_backfill.site.warehouse, site.warehouse)  # the snapshots a finished run left
    before = tables(site.warehouse)

    marker = tmp_path / "publishing"
    site.env["CRM_TEST_MARKER"] = str(marker)
    proc = site.start("backfill", *RANGE, code=KILLED_MID_PUBLISH)
    deadline = time.monotonic() + TIMEOUT_S
    while not marker.exists():
        assert proc.poll() is None, f"the run ended before publishing a mart:\n{proc.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, "no mart publish within the timeout"
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert 'DELETE FROM "marts".' in marker.read_text()

    assert_same(tables(site.warehouse), before)  # the killed transaction never happened
    out = site.run("backfill", *RANGE)  # waits for no slot: the dead run's is freed
    assert f"lost its process {proc.pid}: marked failed, warehouse slot freed" in out
    assert_same(tables(site.warehouse), cli_backfill.tables)
