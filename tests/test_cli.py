"""The command line: helpful errors for bad input, demo data on demand."""

import json

import pytest

from pipelines.cli import landing_days, main


def test_demo_data_writes_landing_and_ground_truth(tmp_path, capsys):
    out = tmp_path / "landing"
    assert (
        main(
            ["demo-data", "--customers", "50", "--days", "5", "--seed", "1", "--out", str(out), "--start", "2025-01-01"]
        )
        == 0
    )
    assert landing_days(out) == [f"2025-01-0{d}" for d in range(1, 6)]
    assert json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))["bgnbd"]["r"] > 0
    assert "rows" in capsys.readouterr().out


def test_run_without_landing_data_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRM_LANDING", str(tmp_path / "nothing"))
    monkeypatch.setenv("CRM_WAREHOUSE", str(tmp_path / "wh.duckdb"))
    assert main(["run"]) == 2
    assert "demo-data" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["demo-data", "--out", "x", "--defects", "0.9"], ["run", "--start", "2025-13-01"]])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2


def test_snapshot_plan_keeps_recent_days_and_month_ends():
    import datetime as dt

    from pipelines.jobs import snapshot_days

    d = dt.date.fromisoformat
    plan = snapshot_days(d("2025-01-01"), d("2025-04-10"), 5)
    assert plan == [
        [d("2025-01-31")],
        [d("2025-02-28")],
        [d("2025-03-31")],
        [d("2025-04-06"), d("2025-04-07"), d("2025-04-08"), d("2025-04-09"), d("2025-04-10")],
    ]
    assert snapshot_days(d("2025-01-01"), d("2025-01-03"), 5) == [[d("2025-01-01"), d("2025-01-02"), d("2025-01-03")]]
    assert len(snapshot_days(d("2025-01-01"), d("2025-04-10"), 0)[0]) == 100
