"""The MAN rule for prospects (analytics/prospects.py): hand-computed evidence for all eight
combinations, thresholds as parameters, newest version per as-of date, staleness, no
personal data, and the planted MAN truth of the demo leads recovered after ingestion."""

from __future__ import annotations

import datetime as dt
import json

import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest

from analytics import synth
from analytics.prospects import (
    MAN_ACTIONS,
    MAN_ACTIONS_ZH,
    MAN_CODES,
    MAN_LABELS,
    MAN_ZH,
    PROSPECTS,
    SOURCE_ZH,
    ProspectParams,
    prospects,
)
from quality.contracts import LEAD_SOURCES, LEADS

AS_OF = dt.date(2025, 3, 31)
DAY = dt.date(2025, 3, 1)

_CONTRACT_TYPES = {
    "id": "string",
    "text": "string",
    "enum": "string",
    "money": "decimal(18, 2)",
    "timestamp": "timestamp('UTC')",
    "bool": "boolean",
}
_MART_TYPES = {"VARCHAR": "string", "BIGINT": "int64", "DATE": "date", "BOOLEAN": "boolean"}
PII = ("organisation", "contact_name", "phone", "email")


def lead(lead_id: str, day: dt.date = DAY, delivered: dt.date | None = None, **over: object) -> dict:
    """A staging.leads row: an enterprise with no evidence at all unless told otherwise."""
    row = {
        "lead_id": lead_id,
        "created_at": pd.Timestamp(f"{day}T06:30:00Z"),
        "source": "web_form",
        "organisation": f"秘密机械有限公司{lead_id}",
        "contact_name": f"王秘密{lead_id}",
        "phone": f"1390000{len(lead_id):04d}",
        "email": f"secret.{lead_id.lower()}@example.cn",
        "kind": "enterprise",
        "region": "上海市",
        "industry": "manufacturing",
        "declared_budget": None,
        "credit_rating": None,
        "contact_role": "engineer",
        "need": "none",
        "requested_quote": False,
        "business_date": day,
        "_partition_date": delivered or day,
    }
    return {**row, **over}


def leads_table(rows: list[dict]) -> ir.Table:
    df = pd.DataFrame(rows)
    df["declared_budget"] = df["declared_budget"].astype(object)
    schema = {c.name: _CONTRACT_TYPES[c.type] for c in LEADS.columns}
    return ibis.memtable(df).cast({**schema, "business_date": "date", "_partition_date": "date"})


def dates(*days: dt.date) -> ir.Table:
    return ibis.memtable(pd.DataFrame({"as_of_date": list(days)})).cast({"as_of_date": "date"})


def run(con, rows: list[dict], *days: dt.date, params: ProspectParams | None = None) -> pd.DataFrame:
    out = con.execute(prospects(leads_table(rows), dates(*(days or (AS_OF,))), params, settings_version="v1"))
    return out.sort_values(["as_of_date", "lead_id"]).reset_index(drop=True)


#: one lead per combination: (budget, rating, role, need, quote) and the expected evidence
EIGHT = {
    "L-MAN": (
        ("80000.00", None, "executive", "stated_need", False),
        "money: budget >= 50000; authority: role executive; need: need stated_need",
    ),
    "L-MAn": ((None, "A", "owner", "interest", False), "money: credit A; authority: role owner"),
    "L-MaN": (("50000.00", "C", "engineer", "none", True), "money: budget >= 50000; need: quote requested"),
    "L-mAN": (
        ("49999.99", "D", "purchasing_manager", "urgent", True),
        "authority: role purchasing_manager; need: need urgent, quote requested",
    ),
    "L-Man": (("120000.00", "B", "assistant", "none", False), "money: budget >= 50000, credit B"),
    "L-mAn": ((None, "unknown", "owner", "interest", False), "authority: role owner"),
    "L-maN": (("1000.00", None, "other", "stated_need", False), "need: need stated_need"),
    "L-man": ((None, None, "engineer", "none", False), "no evidence"),
}


def eight_rows() -> list[dict]:
    fields = ("declared_budget", "credit_rating", "contact_role", "need", "requested_quote")
    return [lead(i, **dict(zip(fields, values, strict=True))) for i, (values, _) in EIGHT.items()]


def test_schema_is_the_mart_schema():
    expr = prospects(leads_table(eight_rows()), dates(AS_OF))
    assert list(expr.columns) == PROSPECTS.names
    assert [str(t) for t in expr.schema().types] == [_MART_TYPES[c.sql_type] for c in PROSPECTS.columns]


def test_all_eight_combinations_hand_computed(con):
    out = run(con, eight_rows()).set_index("lead_id")
    for lead_id, (_, evidence) in EIGHT.items():
        code = lead_id[2:]
        row = out.loc[lead_id]
        assert row.man_code == code
        assert (bool(row.has_money), bool(row.has_authority), bool(row.has_need)) == tuple(c.isupper() for c in code)
        assert row.evidence == evidence
        assert (row.man_label, row.man_label_zh, row.action, row.action_zh) == (
            MAN_LABELS[code],
            MAN_ZH[code],
            MAN_ACTIONS[code],
            MAN_ACTIONS_ZH[code],
        )
    assert out["priority"].to_dict() == {"L-MAN": 1, "L-MaN": 2, "L-mAN": 3, "L-MAn": 4, "L-maN": 5, "L-Man": 6,
                                         "L-mAn": 7, "L-man": 8}  # fmt: skip
    first = out.loc["L-MAN"]
    assert (first.source, first.source_zh, first.kind, first.kind_zh, first.region) == (
        "web_form",
        "网站表单",
        "enterprise",
        "企业客户",
        "上海市",
    )
    assert (first.created_date, first.updated_date, first.age_days, bool(first.stale)) == (
        pd.Timestamp(DAY),
        pd.Timestamp(DAY),
        30,
        False,
    )
    assert set(out["settings_version"]) == {"v1"} and set(out["as_of_date"]) == {pd.Timestamp(AS_OF)}


def test_label_tables_cover_every_code_and_source():
    assert sorted(MAN_CODES) == sorted(c1 + c2 + c3 for c1 in "Mm" for c2 in "Aa" for c3 in "Nn")
    for table in (MAN_LABELS, MAN_ZH, MAN_ACTIONS, MAN_ACTIONS_ZH):
        assert set(table) == set(MAN_CODES) and all(table.values())
    assert set(SOURCE_ZH) == set(LEAD_SOURCES)
    assert MAN_CODES[0] == "MAN" and MAN_CODES[-1] == "man"


def test_thresholds_and_evidence_sets_are_parameters(con):
    params = ProspectParams(
        money_budget_threshold=100_000,
        money_credit_ratings=("A",),
        authority_roles=("owner",),
        need_values=("urgent",),
        quote_is_need=False,
    )
    out = run(con, eight_rows(), params=params).set_index("lead_id")
    assert out["man_code"].to_dict() == {
        "L-MAN": "man",  # 80,000 < 100,000; an executive no longer counts; stated_need no longer counts
        "L-MAn": "MAn",
        "L-MaN": "man",  # 50,000 < 100,000; the quote no longer counts
        "L-mAN": "maN",
        "L-Man": "Man",  # 120,000 >= 100,000 (rating B no longer counts on its own)
        "L-mAn": "mAn",
        "L-maN": "man",
        "L-man": "man",
    }
    assert out.loc["L-Man", "evidence"] == "money: budget >= 100000"
    no_ratings = run(con, eight_rows(), params=ProspectParams(money_credit_ratings=())).set_index("lead_id")
    assert no_ratings.loc["L-MAn", "man_code"] == "mAn" and no_ratings.loc["L-Man", "man_code"] == "Man"


def test_priority_order_is_a_parameter(con):
    params = ProspectParams(priority_order=tuple(reversed(MAN_CODES)))
    out = run(con, eight_rows(), params=params).set_index("lead_id")
    assert out.loc["L-man", "priority"] == 1 and out.loc["L-MAN", "priority"] == 8


def test_newest_version_known_by_each_as_of_date_wins(con):
    rows = [
        lead("L-1", need="interest"),
        lead("L-1", delivered=dt.date(2025, 3, 10), need="interest", contact_role="executive"),
        lead("L-1", delivered=dt.date(2025, 3, 20), need="urgent", contact_role="executive"),
        lead("L-2", day=dt.date(2025, 3, 12), credit_rating="A"),
    ]
    d1, d2, d3 = dt.date(2025, 3, 5), dt.date(2025, 3, 10), dt.date(2025, 3, 31)
    out = run(con, rows, d1, d2, d3)
    got = [(r.as_of_date.date(), r.lead_id, r.man_code, r.updated_date.date()) for r in out.itertuples()]
    assert got == [
        (d1, "L-1", "man", DAY),
        (d2, "L-1", "mAn", d2),
        (d3, "L-1", "mAN", dt.date(2025, 3, 20)),
        (d3, "L-2", "Man", dt.date(2025, 3, 12)),
    ]
    assert out.loc[out.lead_id == "L-1", "created_date"].dt.date.tolist() == [DAY] * 3


def test_a_version_counts_only_once_its_business_date_and_delivery_are_known(con):
    late = lead("L-1", delivered=dt.date(2025, 3, 9), need="urgent")  # created on the 1st, delivered on the 9th
    out = run(con, [late], dt.date(2025, 3, 8), dt.date(2025, 3, 9))
    assert out["as_of_date"].dt.date.tolist() == [dt.date(2025, 3, 9)]
    assert out.loc[0, "age_days"] == 8


def test_stale_after_max_age_days_without_update(con):
    rows = [lead("L-old"), lead("L-updated"), lead("L-updated", delivered=dt.date(2025, 5, 1), need="urgent")]
    d90, d91 = DAY + dt.timedelta(days=90), DAY + dt.timedelta(days=91)
    out = run(con, rows, d90, d91)
    got = {(r.as_of_date.date(), r.lead_id): (r.age_days, r.stale) for r in out.itertuples()}
    assert got == {
        (d90, "L-old"): (90, False),
        (d90, "L-updated"): (90, False),
        (d91, "L-old"): (91, True),
        (d91, "L-updated"): (91, False),  # updated on 1 May: 31 days ago
    }
    strict = run(con, rows, d90, params=ProspectParams(max_age_days=30)).set_index("lead_id")
    assert strict["stale"].to_dict() == {"L-old": True, "L-updated": False}


def test_no_personal_data_reaches_the_mart(con):
    rows = eight_rows()
    out = run(con, rows)
    assert not set(PII) & set(out.columns)
    assert {c.name for c in LEADS.columns if c.pii} == set(PII)
    secrets = {str(r[c]) for r in rows for c in PII}
    cells = {str(v) for v in out.to_numpy().ravel()}
    assert not [s for s in secrets if any(s in cell for cell in cells)]


def test_shuffling_input_rows_changes_nothing(con):
    rows = [
        *eight_rows(),
        lead("L-1", need="interest"),
        lead("L-1", delivered=dt.date(2025, 3, 20), need="urgent"),
        lead("L-2", day=dt.date(2025, 3, 12)),
    ]
    days = (dt.date(2025, 3, 15), AS_OF)
    expected = run(con, rows, *days)
    for seed in (1, 2, 3):
        shuffled = pd.DataFrame(rows).sample(frac=1, random_state=seed).to_dict("records")
        pd.testing.assert_frame_equal(run(con, shuffled, *days), expected)


def test_every_lead_lands_once_per_snapshot(con):
    rows = [*eight_rows(), lead("L-1"), lead("L-1", delivered=dt.date(2025, 3, 20), need="urgent")]
    rows.append(lead("L-late", day=dt.date(2025, 3, 25)))
    out = run(con, rows, dt.date(2025, 3, 21), AS_OF)
    counts = out.groupby("as_of_date")["lead_id"].agg(["size", "nunique"])
    assert counts.to_dict("index") == {
        pd.Timestamp(2025, 3, 21): {"size": 9, "nunique": 9},
        pd.Timestamp(AS_OF): {"size": 10, "nunique": 10},
    }


def test_two_as_of_dates_in_one_call_equal_two_calls(con):
    rows = [*eight_rows(), lead("L-1"), lead("L-1", delivered=dt.date(2025, 3, 20), contact_role="owner")]
    d1, d2 = dt.date(2025, 3, 10), AS_OF
    both = run(con, rows, d1, d2)
    apart = pd.concat([run(con, rows, d1), run(con, rows, d2)], ignore_index=True)
    pd.testing.assert_frame_equal(both, apart)


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"money_budget_threshold": 0}, "money_budget_threshold"),
        ({"money_budget_threshold": float("nan")}, "money_budget_threshold"),
        ({"money_credit_ratings": ("AA",)}, "money_credit_ratings"),
        ({"money_credit_ratings": "AB"}, "money_credit_ratings"),
        ({"authority_roles": ()}, "authority_roles"),
        ({"authority_roles": ("ceo",)}, "authority_roles"),
        ({"need_values": ("wants_it",)}, "need_values"),
        ({"need_values": (), "quote_is_need": False}, "need"),
        ({"max_age_days": 0}, "max_age_days"),
        ({"max_age_days": 1.5}, "max_age_days"),
        ({"priority_order": ("MAN",) * 8}, "priority_order"),
    ],
)
def test_bad_parameters_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        ProspectParams(**kw)


def test_demo_leads_recover_the_planted_man_truth(con, tmp_path):
    """Generated leads (with planted defects) go through ingestion; the MAN counts of the
    snapshot at the period's end equal the planted ones, and converted leads keep their ids."""
    from quality.ingest import chunks, ensure_tables, ingest_batch
    from quality.router import RouteContext

    start, days = dt.date(2025, 1, 1), 120
    landing = tmp_path / "landing"
    synth.generate(landing, customers=1200, days=days, seed=4, defects=0.05, start=start, log=lambda *_: None)
    truth = json.loads((landing / "ground_truth.json").read_text(encoding="utf-8"))["leads"]
    ensure_tables(con, LEADS)
    for batch in chunks([start + dt.timedelta(days=d) for d in range(days)], 31):
        ingest_batch(con, LEADS, batch, landing_root=landing, ctx=RouteContext(), run_id="t")
    staged = con.table("leads", database="staging")
    end = start + dt.timedelta(days=days - 1)
    out = con.execute(prospects(staged, dates(end)))
    assert len(out) == out["lead_id"].nunique() == truth["leads"] > 150
    assert out["man_code"].value_counts().to_dict() == {k: v for k, v in truth["man_counts_at_end"].items() if v}
    assert truth["man_counts_at_end"] != truth["man_counts_first_version"]  # restatements moved some leads
    assert {c["lead_id"] for c in truth["converted"]} <= set(out["lead_id"])
