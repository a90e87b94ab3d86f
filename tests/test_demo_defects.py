"""Ground truth planted by the demo generator is found by the pipeline: every planted
bad row is in quarantine with its expected reason, every rejected file has its
sidecar, nothing is quarantined that was not planted, and rows read = clean +
quarantined + deduplicated for every feed and day. Runs every real Dagster asset (ingestion
and all marts) over the whole range as one single-run backfill, and checks the marts'
invariants on the result: every customer in exactly one segment, tier, stage and cell per
snapshot; the planted duplicate records merged and no two persons merged."""

import json

import pytest

from pipelines.warehouse import Warehouse
from quality.contracts import FEEDS
from tests.conftest import DEMO_DAYS as DAYS

MARTS = (
    "customer_identity",
    "customer_360",
    "rfm_segments",
    "value_tiers",
    "loyalty",
    "customer_tiers",
    "lifecycle",
    "segment_strategy",
    "pareto_groups",
    "prospects",
    "survey_exclusions",
    "nps",
    "satisfaction_index",
)


@pytest.fixture(scope="module")
def loaded(demo_pipeline):
    """(run result, planted defects, landing folder, tables) of the session's demo pipeline run."""
    with Warehouse(demo_pipeline.settings.warehouse_path).connect(read_only=True) as con:
        tables = {
            name: Warehouse.sql_df(con, sql)
            for name, sql in {
                "quarantine": " UNION ALL ".join(
                    f"SELECT '{f}' AS feed, _source_file, _source_line, reason_code FROM quarantine.{f}" for f in FEEDS
                ),
                "staging_lines": " UNION ALL ".join(
                    f"SELECT '{f}' AS feed, _source_file, _source_line FROM staging.{f}" for f in FEEDS
                ),
                "log": "SELECT * FROM meta.ingest_log",
                "rejected": "SELECT * FROM meta.rejected_files",
                "summary": "SELECT as_of_date, count(*) AS n FROM marts.customer_360 GROUP BY 1",
                "surveys": "SELECT response_id, business_date, _partition_date FROM staging.surveys",
                **{m: f"SELECT * FROM marts.{m}" for m in MARTS},
            }.items()
        }
    return demo_pipeline.result, demo_pipeline.defects, demo_pipeline.landing, tables


def _source(d):
    return f"{d['feed']}/{d['business_date']}/{d['file']}"


def test_backfill_run_succeeds_with_a_snapshot_per_day(loaded):
    result, _, _, tables = loaded
    assert result.success
    assert len(tables["summary"]) == DAYS


def test_every_feed_and_day_balances(loaded):
    log = loaded[3]["log"]
    assert "leads" in FEEDS
    assert len(log) == len(FEEDS) * DAYS
    assert set(log["feed"]) == set(FEEDS)
    assert (log["rows_read"] == log["clean"] + log["quarantined"] + log["deduplicated"]).all()


def test_every_planted_bad_row_has_its_reason(loaded):
    _, defects, _, tables = loaded
    q = tables["quarantine"].set_index(["_source_file", "_source_line"])["reason_code"]
    rows = [d for d in defects if d["line"] is not None and d["expected"] not in ("DEDUPLICATED", "CLEAN")]
    assert rows, "the generator planted no row defects"
    assert {d["feed"] for d in rows} == set(FEEDS)
    wrong = [(d, q.get((_source(d), d["line"]))) for d in rows if q.get((_source(d), d["line"])) != d["expected"]]
    assert not wrong, wrong[:5]


def test_nothing_is_quarantined_that_was_not_planted(loaded):
    _, defects, _, tables = loaded
    planted = {(_source(d), d["line"]) for d in defects if d["line"] is not None}
    q = tables["quarantine"].to_dict("records")
    extra = [r for r in q if (r["_source_file"], r["_source_line"]) not in planted]
    assert not extra, extra[:5]


def test_clean_and_deduplicated_plants(loaded):
    _, defects, _, tables = loaded
    staged = set(map(tuple, tables["staging_lines"][["_source_file", "_source_line"]].to_numpy().tolist()))
    quarantined = set(map(tuple, tables["quarantine"][["_source_file", "_source_line"]].to_numpy().tolist()))
    for d in defects:
        where = (_source(d), d["line"])
        if d["expected"] == "CLEAN":
            assert where in staged, d
        elif d["expected"] == "DEDUPLICATED":
            assert where not in staged and where not in quarantined, d


def test_every_rejected_file_has_its_sidecar(loaded):
    _, defects, landing, tables = loaded
    files = [d for d in defects if d["expected"].startswith("FILE_REJECTED:")]
    assert files, "the generator planted no file defects"
    rejected = {
        (r["feed"], str(r["_partition_date"])[:10], r["file_name"]): r["reason_code"]
        for r in tables["rejected"].to_dict("records")
    }
    for d in files:
        reason = d["expected"].split(":", 1)[1]
        assert rejected.get((d["feed"], d["business_date"], d["file"])) == reason, d
        sidecar = landing / "rejected" / d["feed"] / d["business_date"] / (d["file"] + ".reason.json")
        assert json.loads(sidecar.read_text(encoding="utf-8"))["reason_code"] == reason


def _keys(frame, day):
    return frame.loc[frame.as_of_date == day, "customer_key"]


def test_every_customer_is_in_exactly_one_segment_tier_stage_and_cell(loaded):
    t = loaded[3]
    c360 = t["customer_360"]
    days = sorted(c360.as_of_date.unique())
    assert len(days) == DAYS
    for day in days:
        everyone = set(_keys(c360, day))
        buyers = set(c360.loc[(c360.as_of_date == day) & c360.has_purchased, "customer_key"])
        assert len(everyone) == (c360.as_of_date == day).sum()
        for mart, population in (
            ("rfm_segments", buyers),
            ("value_tiers", buyers),
            ("loyalty", buyers),
            ("customer_tiers", buyers),
            ("lifecycle", everyone),
        ):
            keys = _keys(t[mart], day)
            assert keys.is_unique and set(keys) == population, (mart, day)
        strategy = t["segment_strategy"]
        per_dimension = strategy[strategy.as_of_date == day].groupby("dimension").customers.sum()
        expected = {d: len(buyers) for d in per_dimension.index if d != "lifecycle_stage"}
        assert per_dimension.drop("lifecycle_stage").to_dict() == expected
        assert per_dimension["lifecycle_stage"] == len(everyone)
        groups = t["pareto_groups"]
        assert groups[groups.as_of_date == day].customers.sum() == len(buyers)


def test_planted_duplicates_are_merged_and_no_two_persons_are(loaded):
    _, _, landing, t = loaded
    import pandas as pd

    truth = pd.read_parquet(landing / "ground_truth_customers.parquet")[["customer_ref", "person_id"]]
    identity = t["customer_identity"]
    last = identity[identity.as_of_date == identity.as_of_date.max()].merge(truth, on="customer_ref")
    assert (last.groupby("customer_key").person_id.nunique() == 1).all()
    linked = last[last.match_rules != ""]
    assert len(linked) and (linked.records_in_customer > 1).all()
    # a person whose records share no identifier cannot be merged: all others are
    split = last.groupby("person_id").customer_key.nunique()
    assert (split > 1).mean() < 0.05


def test_prospects_carry_no_personal_data(loaded):
    prospects = loaded[3]["prospects"]
    assert len(prospects)
    assert not {"organisation", "contact_name", "phone", "email"} & set(prospects.columns)


def test_every_survey_response_is_counted_once_per_snapshot(loaded):
    """Each snapshot's exclusions count every staged response known by then exactly once
    (kept or excluded with one reason), per wave and pooled; NPS and the index see the kept ones."""
    t = loaded[3]
    surveys, ex, nps, index = t["surveys"], t["survey_exclusions"], t["nps"], t["satisfaction_index"]
    assert len(surveys) and (ex.responses == ex.kept + ex.excluded).all()
    reasons = ex[[c for c in ex.columns if c.startswith("excluded_")]].sum(axis=1)
    assert (reasons == ex.excluded).all()
    for day in sorted(ex.as_of_date.unique()):
        known = ((surveys.business_date <= day) & (surveys._partition_date <= day)).sum()
        snap = ex[ex.as_of_date == day].set_index("wave")
        assert snap.loc["all", "responses"] == known == snap.drop("all").responses.sum(), day
        overall = nps[(nps.as_of_date == day) & (nps.wave == "all") & (nps.segment_type == "all")].iloc[0]
        assert overall.n + overall.n_excluded == snap.loc["all", "kept"]
        sat = index[(index.as_of_date == day) & (index.wave == "all") & (index.segment_type == "all")]
        assert (sat.n <= snap.loc["all", "kept"]).all() and set(sat.status) <= {"ok", "small_sample", "not_fitted"}


def test_the_exports_carry_no_personal_data(loaded):
    """The issue's scan: bi.duckdb and every Parquet export, column names and values, find
    nothing that looks like personal data (the warehouse itself does: staging keeps it)."""
    from quality.pii import scan_duckdb, scan_parquet

    exports = loaded[2].parent / "wh" / "exports"
    assert (exports / "bi.duckdb").exists() and any(exports.rglob("*.parquet"))
    findings = scan_duckdb(exports / "bi.duckdb") + scan_parquet(exports)
    assert findings == [], "\n".join(map(str, findings))
    assert scan_duckdb(loaded[2].parent / "wh" / "crm.duckdb"), "the scanner must see staging's personal data"


def test_quarantine_evidence_shows_no_contact_details(demo_pipeline):
    """Every reason_detail of the demo's quarantine (planted bad rows of every kind) is free of
    anything the scrubber would take for a phone, id number, e-mail, card or tax id."""
    from quality.pii import scrub_text

    with Warehouse(demo_pipeline.settings.warehouse_path).connect(read_only=True) as con:
        details = Warehouse.sql_df(
            con, " UNION ALL ".join(f"SELECT reason_detail FROM quarantine.{f}" for f in FEEDS)
        ).reason_detail
    assert len(details) > 50
    leaked = [d for d in details if scrub_text(d) != d]
    assert not leaked, leaked[:5]
