"""`make bench` end to end at a tiny scale: every stage runs in its own process, the results
file has each stage and the core ratio, and `--resume` continues a run that was cut short
(a 100M run outlasts a working session) by skipping the stages it finished."""

import json

from bench import pipeline_bench as pb


def test_a_tiny_bench_runs_and_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pb, "RESULTS", tmp_path / "results")
    work = tmp_path / "work"
    args = ["--scale", "3000", "--days", "10", "--work", str(work), "--skip-peer", "--skip-clv", "--progress", "600"]
    args += ["--memory-limit", "1GB"]
    assert pb.main(args) == 0
    (first,) = (tmp_path / "results").glob("pipeline_*.json")
    record = json.loads(first.read_text())
    stages = ["generate", "ingest_a", "marts_a", "nightly_a", "ingest_b", "marts", "exports", "floor", "nightly_b"]
    assert [s for s in stages if not record["stages"][s]["ok"]] == []
    assert "inputs" not in record["stages"]  # the peer's inputs: not built when the peer is skipped
    assert record["failed_stage"] is None and record["ratios"]["core_over_floor"] > 0
    assert record["stages"]["floor"]["result"]["memory_limit"] == "953.6 MiB"  # the floor in the same budget
    first.unlink()

    # cut short after ingest_b: the checkpoint holds what was finished, the warehouse what it wrote
    checkpoint = json.loads((work / "stages.json").read_text())
    kept = ["generate", "ingest_a", "marts_a", "nightly_a", "ingest_b"]
    (work / "stages.json").write_text(json.dumps({k: checkpoint[k] for k in kept}))
    capsys.readouterr()
    assert pb.main([*args, "--resume"]) == 0
    shown = capsys.readouterr().out
    assert all(f"== {s}: done by an earlier invocation" in shown for s in kept[1:])
    assert all(f"== {s}: " in shown and f"== {s}: done" not in shown for s in ("marts", "exports", "floor"))
    (second,) = (tmp_path / "results").glob("pipeline_*.json")
    resumed = json.loads(second.read_text())
    assert resumed["failed_stage"] is None
    assert resumed["stages"]["ingest_a"] == checkpoint["ingest_a"]  # the earlier measurement is kept
    assert resumed["stages"]["marts"]["ok"] and resumed["stages"]["marts"] != checkpoint["marts"]

    # a run cut short and not resumed: its results from the checkpoint alone
    second.unlink()
    (work / "stages.json").write_text(json.dumps({k: checkpoint[k] for k in kept}))
    assert pb.main([*args, "--report-only"]) == 1
    (partial,) = (tmp_path / "results").glob("pipeline_*.json")
    reported = json.loads(partial.read_text())
    assert reported["failed_stage"] == "not run: marts, exports, floor"
    assert reported["stages"]["ingest_b"] == checkpoint["ingest_b"] and "marts" not in reported


def test_skip_half_nightly_ingests_every_day_once(tmp_path, monkeypatch):
    """Without marts_a / nightly_a, ingest_b starts the day after ingest_a: every generated row
    is ingested by exactly one of ingest_a, ingest_b and nightly_b."""
    monkeypatch.setattr(pb, "RESULTS", tmp_path / "results")
    args = ["--scale", "3000", "--days", "10", "--work", str(tmp_path / "work"), "--skip-peer", "--skip-clv"]
    assert pb.main([*args, "--skip-half-nightly", "--progress", "600"]) == 0
    (path,) = (tmp_path / "results").glob("pipeline_*.json")
    record = json.loads(path.read_text())
    st = record["stages"]
    assert "marts_a" not in st and "nightly_a" not in st and record["failed_stage"] is None
    assert st["ingest_b"]["spec"]["first"] == "2025-01-06" and st["ingest_b"]["spec"]["last"] == "2025-01-09"
    assert {f["days"] for f in record["ingest"]["per_feed"]["ingest_b"].values()} == {4}
    generated = st["generate"]["result"]["summary"]["rows"]
    ingested = {
        feed: sum(st[s]["result"]["feed_rows"].get(feed, 0) for s in ("ingest_a", "ingest_b", "nightly_b"))
        for feed in generated
    }
    assert ingested == generated
