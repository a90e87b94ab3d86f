"""Backfills and retention: `crm-pipeline backfill` over a range equals the same days run one
by one (every staging, quarantine and mart table); bad ranges and selections are refused
with a message; pruning keeps exactly the recent days and the month-ends and never touches
staging."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.retention import prune_exports, prune_snapshots
from pipelines.warehouse import Warehouse
from tests import backfill_kit as bk


def _env(monkeypatch, root, name, landing=None):
    monkeypatch.setenv("CRM_LANDING", str(landing or root / "landing"))
    monkeypatch.setenv("CRM_WAREHOUSE", str(root / f"{name}.duckdb"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return root / f"{name}.duckdb"


def test_a_backfill_equals_the_same_days_run_one_by_one(cli_backfill, tmp_path, monkeypatch):
    """The reference is one CLI backfill over the range (conftest.cli_backfill)."""
    assert f"Backfilling {bk.DAYS} business days" in cli_backfill.output and "as one run" in cli_backfill.output
    apart = _env(monkeypatch, tmp_path, "apart", cli_backfill.landing)
    for i in range(bk.DAYS):
        day = str(bk.START + dt.timedelta(days=i))
        assert main(["backfill", "--from", day, "--to", day, "--log-level", "ERROR"]) == 0
    together, one_by_one = cli_backfill.tables, bk.tables(apart)
    assert "marts.rfm_segments" in together and "marts.satisfaction_index" in together
    bk.assert_same(together, one_by_one)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2025-01-03", "--to", "2025-01-01"], "before --from"),
        (["--from", "2024-12-01", "--to", "2025-01-01"], "outside the partitions"),
        (["--from", "2025-01-01", "--to", "2099-01-01"], "outside the partitions"),
        (["--from", "2025-01-01", "--to", "2025-01-01", "--assets", "key:marts/nope"], "selects no asset"),
        (["--from", "2025-01-01", "--to", "2025-01-01", "--assets", "key:(("], "not a valid asset selection"),
    ],
)
def test_bad_backfills_are_refused_with_a_reason(argv, message, tmp_path, monkeypatch, capsys):
    _env(monkeypatch, tmp_path, "w")
    assert main(["backfill", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_selection_backfills_only_the_selected_assets(cli_backfill, tmp_path, monkeypatch):
    path = _env(monkeypatch, tmp_path, "selected", cli_backfill.landing)
    day = str(bk.START)
    assert main(["backfill", "--from", day, "--to", day, "--assets", "key:staging/customers"]) == 0
    with Warehouse(path).connect(read_only=True) as con:
        have = set(
            Warehouse.sql_df(con, "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables")["t"]
        )
    assert {"staging.customers", "quarantine.customers"} <= have and not any(t.startswith("marts.") for t in have)


def test_pruning_keeps_recent_days_and_month_ends_only(tmp_path):
    """Snapshots 30 and 31 Jan, 15 and 28 Feb, 1-10 Mar; keep the last 5 days (6-10 Mar) and
    the month-ends (31 Jan, 28 Feb). Deleted: 30 Jan, 15 Feb, 1-5 Mar. Staging untouched."""
    d = dt.date.fromisoformat
    days = [d("2025-01-30"), d("2025-01-31"), d("2025-02-15"), d("2025-02-28")]
    days += [d("2025-03-01") + dt.timedelta(days=i) for i in range(10)]
    with Warehouse(tmp_path / "w.duckdb").connect() as con:
        raw = Warehouse._raw(con)
        raw.execute("CREATE SCHEMA marts; CREATE SCHEMA staging")
        raw.execute("CREATE TABLE marts.m (as_of_date DATE, customer_key VARCHAR)")
        raw.execute("CREATE TABLE staging.s (business_date DATE)")
        for day in days:
            raw.execute("INSERT INTO marts.m VALUES (?, 'a'), (?, 'b')", [day, day])
            raw.execute("INSERT INTO staging.s VALUES (?)", [day])
        dry = prune_snapshots(con, 5, dry_run=True)
        assert Warehouse.sql_df(con, "SELECT count(*) AS n FROM marts.m")["n"][0] == 2 * len(days)
        (result,) = prune_snapshots(con, 5)
        assert result == dry[0]
        expected_gone = [d("2025-01-30"), d("2025-02-15")] + [d("2025-03-01") + dt.timedelta(days=i) for i in range(5)]
        assert result.deleted_dates == expected_gone and result.deleted_rows == 14 and result.kept_dates == 7
        left = sorted(pd.to_datetime(Warehouse.sql_df(con, "SELECT DISTINCT as_of_date FROM marts.m")["as_of_date"]))
        assert [x.date() for x in left] == sorted(set(days) - set(expected_gone))
        assert Warehouse.sql_df(con, "SELECT count(*) AS n FROM staging.s")["n"][0] == len(days)
        assert prune_snapshots(con, 5)[0].deleted_dates == []  # a second prune finds nothing
    for day in (d("2025-02-15"), d("2025-02-28")):  # an exported deleted date and a kept one
        (tmp_path / "exports" / "m" / f"as_of_date={day}").mkdir(parents=True)
    assert prune_exports(tmp_path / "exports", [result]) == 1
    assert [p.name for p in (tmp_path / "exports" / "m").iterdir()] == ["as_of_date=2025-02-28"]
