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
