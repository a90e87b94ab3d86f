"""Recommended actions per customer group (analytics/strategy.py)."""

from __future__ import annotations

import datetime as dt
import importlib
import re

import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest

from analytics.strategy import (
    DIMENSION_CODES,
    DIMENSIONS,
    SEGMENT_STRATEGY,
    STRATEGIES,
    UNMAPPED,
    UNMAPPED_ZH,
    segment_strategy,
    strategy_for,
)
from tests import c360_kit
from tests.c360_kit import assert_schema

D1 = dt.date(2025, 6, 30)
D2 = dt.date(2025, 7, 31)

#: The codes the brief fixes for every dimension (other modules emit these).
EXPECTED_CODES = {
    "rfm_segment": (
        "champions",
        "loyal",
        "potential_loyalist",
        "new",
        "promising",
        "need_attention",
        "about_to_sleep",
        "at_risk",
        "cant_lose",
        "hibernating",
        "lost",
    ),
    "seed_group": ("protect", "develop", "avoid"),
    "value_tier": ("platinum", "gold", "iron", "lead"),
    "value_group": ("very_high", "high", "moderate", "low", "very_low"),
    "lifecycle_stage": ("potential", "development", "growth", "maturity", "decline", "termination", "recovery"),
    "loyalty_level": ("high", "medium", "low"),
    "credit_loyalty": ("HH", "HL", "LH", "LL"),
    "scale_loyalty": ("HH", "HL", "LH", "LL"),
    "cube": ("HHH", "HHL", "HLH", "HLL", "LHH", "LHL", "LLH", "LLL"),
    "current_potential": ("strategic", "invest", "maintain", "reconsider"),
}


def assign(rows: list[tuple[dt.date, str, str | None]]) -> ir.Table:
    df = pd.DataFrame(rows, columns=["as_of_date", "customer_key", "code"])
    return ibis.memtable(df).cast({"as_of_date": "date", "customer_key": "string", "code": "string"})


def run(con, expr: ir.Table) -> pd.DataFrame:
    return c360_kit.run(con, expr, ["as_of_date", "dimension", "code"])  # a null code sorts last


def row(df: pd.DataFrame, date: dt.date, dim: str, code: str | None) -> pd.Series:
    sel = (df.as_of_date == pd.Timestamp(date)) & (df.dimension == dim)
    sel &= df.code.isna() if code is None else df.code == code
    assert sel.sum() == 1, (date, dim, code)
    return df[sel].iloc[0]


def test_every_listed_code_has_a_strategy() -> None:
    assert DIMENSION_CODES == EXPECTED_CODES
    assert len(STRATEGIES) == sum(len(c) for c in EXPECTED_CODES.values())


@pytest.mark.parametrize("key", sorted(STRATEGIES))
def test_each_strategy_is_complete_and_bilingual(key: tuple[str, str]) -> None:
    s = STRATEGIES[key]
    assert s.label and s.actions and len(s.actions) > 20
    assert re.search(r"[\u4e00-\u9fff]", s.label_zh) and re.search(r"[\u4e00-\u9fff]", s.actions_zh)
    assert s.priority in (1, 2, 3, 4)


def test_domain_rules_show_in_the_actions() -> None:
    top = STRATEGIES[("value_tier", "platinum")].actions.lower()
    assert "key-account manager" in top and "priority supply" in top and "executive" in top
    assert "frequency" in STRATEGIES[("value_tier", "iron")].actions
    decline = STRATEGIES[("lifecycle_stage", "decline")]
    assert "correct" in decline.actions and "compensate" in decline.actions and "预警长效机制" in decline.actions_zh
    assert "Understand" in STRATEGIES[("lifecycle_stage", "potential")].actions
    assert STRATEGIES[("cube", "HHH")].priority == 1 and STRATEGIES[("cube", "LLL")].priority == 4


def test_strategy_for_returns_actions_and_rejects_unknown() -> None:
    assert strategy_for("current_potential", "invest") == (
        STRATEGIES[("current_potential", "invest")].actions,
        STRATEGIES[("current_potential", "invest")].actions_zh,
    )
    with pytest.raises(KeyError, match="rfm_segment"):
        strategy_for("rfm_segment", "vip")


@pytest.mark.parametrize(
    ("module", "dict_name", "dimension"),
    [
        ("analytics.rfm", "SEGMENT_ZH", "rfm_segment"),
        ("analytics.rfm", "SEED_GROUP_ZH", "seed_group"),
        ("analytics.value", "TIER_ZH", "value_tier"),
        ("analytics.value", "VALUE_GROUP_ZH", "value_group"),
        ("analytics.lifecycle", "STAGE_ZH", "lifecycle_stage"),
        ("analytics.loyalty", "LEVEL_ZH", "loyalty_level"),
    ],
)
def test_codes_and_chinese_labels_match_the_assigning_modules(module: str, dict_name: str, dimension: str) -> None:
    try:
        labels = getattr(importlib.import_module(module), dict_name)
    except (ImportError, AttributeError):
        pytest.skip(f"{module}.{dict_name} not available")
    assert {code: s.label_zh for code, s in DIMENSIONS[dimension].items()} == dict(labels)


def test_counts_zero_groups_and_shares(con) -> None:
    rfm = assign(
        [
            (D1, "a", "champions"),
            (D1, "b", "champions"),
            (D1, "c", "lost"),
            (D1, "d", "new"),
            (D2, "a", "loyal"),
        ]
    )
    tier = assign([(D1, "a", "platinum"), (D1, "b", "lead")])
    expr = segment_strategy({"rfm_segment": rfm, "value_tier": tier}, settings_version="v1")
    assert_schema(expr, SEGMENT_STRATEGY)
    df = run(con, expr)
    # every code of both dimensions on both dates: (11 + 4) x 2
    assert len(df) == 30
    assert set(df.dimension) == {"rfm_segment", "value_tier"}
    assert (df.settings_version == "v1").all()
    r = row(df, D1, "rfm_segment", "champions")
    assert r.customers == 2 and r.customer_share == pytest.approx(0.5) and r.priority == 1
    assert r.label == "Champions" and r.label_zh == "冠军客户"
    assert r.actions == STRATEGIES[("rfm_segment", "champions")].actions
    assert row(df, D1, "rfm_segment", "lost").customer_share == pytest.approx(0.25)
    assert row(df, D1, "rfm_segment", "at_risk").customers == 0
    assert row(df, D1, "rfm_segment", "at_risk").customer_share == 0.0
    assert row(df, D2, "rfm_segment", "loyal").customer_share == 1.0
    assert row(df, D1, "value_tier", "gold").customers == 0
    # value tiers have no rows on D2: zero customers and no share (nothing was assigned)
    d2_tier = df[(df.as_of_date == pd.Timestamp(D2)) & (df.dimension == "value_tier")]
    assert (d2_tier.customers == 0).all() and d2_tier.customer_share.isna().all()
    assert df.groupby(["as_of_date", "dimension"]).customers.sum().to_dict() == {
        (pd.Timestamp(D1), "rfm_segment"): 4,
        (pd.Timestamp(D1), "value_tier"): 2,
        (pd.Timestamp(D2), "rfm_segment"): 1,
        (pd.Timestamp(D2), "value_tier"): 0,
    }


def test_unknown_and_null_codes_are_reported_not_lost(con) -> None:
    rfm = assign([(D1, "a", "champions"), (D1, "b", "vip_plus"), (D1, "c", "vip_plus"), (D1, "d", None)])
    df = run(con, segment_strategy({"rfm_segment": rfm}))
    assert len(df) == 11 + 2
    odd = row(df, D1, "rfm_segment", "vip_plus")
    assert odd.customers == 2 and odd.customer_share == pytest.approx(0.5)
    assert (odd.label, odd.label_zh, odd.actions, odd.actions_zh) == (UNMAPPED, UNMAPPED_ZH, UNMAPPED, UNMAPPED_ZH)
    assert pd.isna(odd.priority)
    null = row(df, D1, "rfm_segment", None)
    assert null.customers == 1 and null.actions == UNMAPPED
    assert df.customers.sum() == 4


def test_every_dimension_at_once(con) -> None:
    rows = {dim: assign([(D1, "k", codes[0])]) for dim, codes in EXPECTED_CODES.items()}
    df = run(con, segment_strategy(rows))
    assert len(df) == len(STRATEGIES)
    assert set(zip(df.dimension, df.code, strict=True)) == set(STRATEGIES)
    assert (df.groupby("dimension").customers.sum() == 1).all()


def test_distinct_customers_are_counted(con) -> None:
    rfm = assign([(D1, "a", "new"), (D1, "a", "new"), (D1, "b", "new")])
    df = run(con, segment_strategy({"rfm_segment": rfm}))
    assert row(df, D1, "rfm_segment", "new").customers == 2


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        segment_strategy({})
    with pytest.raises(ValueError, match="unknown dimensions"):
        segment_strategy({"rfm": assign([(D1, "a", "new")])})


def test_shuffling_and_two_dates_in_one_call(con) -> None:
    rows = [(D1 if i % 3 else D2, f"c{i}", EXPECTED_CODES["lifecycle_stage"][i % 7]) for i in range(40)]
    rows.append((D1, "z", "unknown_stage"))
    both = run(con, segment_strategy({"lifecycle_stage": assign(rows)}))
    shuffled = pd.DataFrame(rows).sample(frac=1, random_state=3).itertuples(index=False, name=None)
    pd.testing.assert_frame_equal(both, run(con, segment_strategy({"lifecycle_stage": assign(list(shuffled))})))
    one = [run(con, segment_strategy({"lifecycle_stage": assign([r for r in rows if r[0] == d])})) for d in (D1, D2)]
    pd.testing.assert_frame_equal(both, pd.concat(one, ignore_index=True))
