"""Value tiers, the 80/20 curves and the five value groups (analytics/value.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import partial

import numpy as np
import pandas as pd
import pytest

from analytics.value import (
    PARETO,
    PARETO_GROUPS,
    TIER_ZH,
    VALUE_GROUP_ZH,
    VALUE_TIERS,
    ValueParams,
    pareto,
    pareto_groups,
    value_tiers,
)
from tests import c360_kit
from tests.c360_kit import assert_schema, cdnow_c360, cdnow_table, run

AS_OF = dt.date(2024, 6, 30)
c360_table = partial(c360_kit.c360_table, as_of=AS_OF)

# Ten buyers a..j and one prospect z (excluded).
#   profit_12m:       500 300 300 200 100  50   0 -10 -20 -20   (total 1400)
#   strictly larger:    0   1   1   3   4   5   6   7   8   8   -> profit_rank 1 2 2 4 5 6 7 8 9 9
#   net_monetary_12m: 1000 500 500 200 100 100 50  30  20   0   (total 2500)
FIXTURE = pd.DataFrame(
    {
        "customer_key": list("abcdefghij"),
        "profit_12m": [500.0, 300, 300, 200, 100, 50, 0, -10, -20, -20],
        "profit": [-1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "net_monetary_12m": [1000.0, 500, 500, 200, 100, 100, 50, 30, 20, 0],
        "marketing_cost_12m": [100.0, 0, 20, 20, 20, 20, 20, 20, 20, 40],
    }
)
PROSPECT = {"customer_key": "z", "has_purchased": False, "profit_12m": 9999.0, "net_monetary_12m": 0.0}


def fixture_table():
    return c360_table([*FIXTURE.to_dict("records"), PROSPECT])


def dec(*values) -> list[Decimal]:
    return [Decimal(str(v)).quantize(Decimal("0.01")) for v in values]


def test_schemas_and_types():
    t = fixture_table()
    assert_schema(value_tiers(t), VALUE_TIERS)
    assert_schema(pareto(t), PARETO)
    assert_schema(pareto_groups(t), PARETO_GROUPS)
    assert (VALUE_TIERS.table, PARETO.table, PARETO_GROUPS.table) == (
        "marts.value_tiers",
        "marts.pareto",
        "marts.pareto_groups",
    )


# --- value tiers -----------------------------------------------------------------------------------


def test_hand_computed_tiers_with_custom_cutoffs(con):
    params = ValueParams(tier_cutoffs=(0.1, 0.3, 0.6))
    out = run(con, value_tiers(fixture_table(), params, settings_version="v1"), ["customer_key"])
    assert list(out.customer_key) == list("abcdefghij")
    assert list(out.profit_rank) == [1, 2, 2, 4, 5, 6, 7, 8, 9, 9]
    assert list(out.top_share) == [0.0, 0.1, 0.1, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.8]
    # share_above < 0.1 platinum, < 0.3 gold, < 0.6 iron: d sits exactly on 0.3 and is iron.
    assert list(out.tier) == ["platinum", "gold", "gold", "iron", "iron", "iron", "lead", "lead", "lead", "lead"]
    assert list(out.tier_zh) == [TIER_ZH[t] for t in out.tier]
    assert list(out.negative_profit) == [False] * 7 + [True] * 3
    assert list(out.profit_12m) == dec(500, 300, 300, 200, 100, 50, 0, -10, -20, -20)
    assert list(out.net_monetary_12m) == dec(1000, 500, 500, 200, 100, 100, 50, 30, 20, 0)
    contribution = out.annual_profit_contribution.tolist()
    assert contribution[0] == 5.0 and np.isnan(contribution[1])  # cost 0 -> null
    assert contribution[2:] == [15.0, 10.0, 5.0, 2.5, 0.0, -0.5, -1.0, -0.5]
    assert set(out.settings_version) == {"v1"}


def test_default_cutoffs_on_ten_customers_leave_gold_empty(con):
    out = run(con, value_tiers(fixture_table()), ["customer_key"])
    # 1 %: only share_above 0; 5 %: nobody else (the next share is 0.1); 20 %: b and c.
    assert list(out.tier) == ["platinum", "iron", "iron"] + ["lead"] * 7


def test_lifetime_basis_ranks_and_flags_on_profit(con):
    out = run(con, value_tiers(fixture_table(), ValueParams(basis="profit")), ["customer_key"])
    assert list(out.profit_rank) == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert list(out.negative_profit) == [True] + [False] * 9
    assert list(out.tier) == ["lead"] * 8 + ["iron", "platinum"]


# --- Pareto curves ---------------------------------------------------------------------------------


def test_hand_computed_pareto_with_ten_points(con):
    out = run(con, pareto(fixture_table(), ValueParams(pareto_points=10)), ["measure", "percentile"])
    revenue = out[out.measure == "revenue"]
    assert list(revenue.percentile) == list(range(1, 11))
    assert list(revenue.customers) == list(range(1, 11))
    assert list(revenue.customer_share) == pytest.approx([p / 10 for p in range(1, 11)])
    assert list(revenue.cumulative_value) == dec(1000, 1500, 2000, 2200, 2300, 2400, 2450, 2480, 2500, 2500)
    expected = [1000, 1500, 2000, 2200, 2300, 2400, 2450, 2480, 2500, 2500]
    assert list(revenue.value_share) == pytest.approx([v / 2500 for v in expected], abs=1e-12)
    assert revenue.top20_value_share.tolist() == pytest.approx([0.6] * 10, abs=1e-12)
    profit = out[out.measure == "profit"]
    cumulative = [500, 800, 1100, 1300, 1400, 1450, 1450, 1440, 1420, 1400]
    assert list(profit.cumulative_value) == dec(*cumulative)
    # Above 1 in the middle: the loss-making tail pulls the total below the top's profit.
    assert list(profit.value_share) == pytest.approx([v / 1400 for v in cumulative], abs=1e-12)
    assert max(profit.value_share) > 1
    assert profit.top20_value_share.tolist() == pytest.approx([800 / 1400] * 10, abs=1e-12)


def test_pareto_percentile_covers_ceiling_of_customers(con):
    out = run(con, pareto(fixture_table(), ValueParams(pareto_points=4)), ["measure", "percentile"])
    revenue = out[out.measure == "revenue"]
    # ceil(p / 4 x 10) = 3, 5, 8, 10
    assert list(revenue.customers) == [3, 5, 8, 10]
    assert list(revenue.cumulative_value) == dec(2000, 2300, 2480, 2500)


def test_pareto_default_has_hundred_points_per_measure(con):
    out = run(con, pareto(fixture_table()), ["measure", "percentile"])
    assert out.groupby("measure").percentile.apply(list).map(lambda p: p == list(range(1, 101))).all()
    # With 10 customers and 100 points, percentiles 11..20 all cover ceil(p / 10) = 2 customers.
    revenue = out[out.measure == "revenue"].set_index("percentile")
    assert revenue.loc[20, "customers"] == 2
    assert revenue.loc[20, "value_share"] == revenue.loc[20, "top20_value_share"]


def test_pareto_value_share_is_null_when_the_total_is_zero(con):
    rows = [{"customer_key": k, "net_monetary_12m": v, "profit_12m": 0.0} for k, v in (("p", 5.0), ("q", -5.0))]
    out = run(con, pareto(c360_table(rows), ValueParams(pareto_points=2)), ["measure", "percentile"])
    assert out.value_share.isna().all() and out.top20_value_share.isna().all()
    assert list(out[out.measure == "revenue"].cumulative_value) == dec(5, 0)


def test_shares_keep_their_sign_when_the_snapshot_loses_money(con):
    rows = [{"customer_key": "p", "profit_12m": 30.0}, {"customer_key": "q", "profit_12m": -50.0}]
    curve = run(con, pareto(c360_table(rows), ValueParams(pareto_points=2)), ["measure", "percentile"])
    profit = curve[curve.measure == "profit"]
    # total -20: shares are divided by |total| so the earning customer stays positive
    assert list(profit.value_share) == pytest.approx([1.5, -1.0])
    assert list(profit.top20_value_share) == pytest.approx([1.5, 1.5])
    groups = run(con, pareto_groups(c360_table(rows)), ["group_order"])
    # share_above 0 -> very_high, 0.5 -> low
    assert list(groups.profit) == dec(30, 0, 0, -50, 0)
    assert list(groups.profit_share) == pytest.approx([1.5, 0, 0, -2.5, 0])


# --- five value groups -----------------------------------------------------------------------------


def test_hand_computed_five_groups_with_a_negative_group(con):
    out = run(con, pareto_groups(fixture_table(), settings_version="v1"), ["group_order"])
    # Cumulative shares 0.018, 0.11, 0.373, 0.578: a (0) | b c (0.1) | d (0.3) | e f (0.4, 0.5) | g h i j
    assert list(out.value_group) == ["very_high", "high", "moderate", "low", "very_low"]
    assert list(out.value_group_zh) == ["很高", "高", "适度", "低", "很低"]
    assert list(out.group_order) == [1, 2, 3, 4, 5]
    assert list(out.customers) == [1, 2, 1, 2, 4]
    assert list(out.customer_share) == pytest.approx([0.1, 0.2, 0.1, 0.2, 0.4])
    assert list(out.revenue) == dec(1000, 1000, 200, 200, 100)
    assert list(out.revenue_share) == pytest.approx([0.4, 0.4, 0.08, 0.08, 0.04])
    assert list(out.profit) == dec(500, 600, 200, 150, -50)
    assert list(out.profit_share) == pytest.approx([500 / 1400, 600 / 1400, 200 / 1400, 150 / 1400, -50 / 1400])
    assert out.profit_share.iloc[-1] < 0
    assert sum(out.profit_share) == pytest.approx(1.0)
    assert list(out.avg_profit) == dec(500, 300, 200, 75, -12.5)
    assert set(out.settings_version) == {"v1"}


def test_group_boundaries_on_a_hundred_distinct_customers(con):
    # share_above = i / 100: very_high i < 1.8, high < 11, moderate < 37.3, low < 57.8, very_low rest.
    rows = [{"customer_key": f"c{i:03d}", "profit_12m": float(1000 - i)} for i in range(100)]
    out = run(con, pareto_groups(c360_table(rows)), ["group_order"])
    assert list(out.customers) == [2, 9, 27, 20, 42]


def test_group_boundary_uses_exact_cumulative_shares(con):
    # In floats 0.1 + 0.2 = 0.30000000000000004, which would put the customer with 3/10 above in
    # "high"; the cut-offs are rounded so that they compare as the decimals written.
    rows = [{"customer_key": f"c{i}", "profit_12m": float(100 - i)} for i in range(10)]
    params = ValueParams(group_shares=(0.1, 0.2, 0.3, 0.2, 0.2))
    out = run(con, pareto_groups(c360_table(rows), params), ["group_order"])
    assert list(out.customers) == [1, 2, 3, 2, 2]


def test_empty_groups_and_snapshots_without_buyers_still_have_five_rows(con):
    rows = [
        {"customer_key": k, "profit_12m": p, "net_monetary_12m": 10.0}
        for k, p in (("p", 30.0), ("q", 20.0), ("r", -5.0))
    ]
    nobody = c360_table([{"customer_key": "x", "has_purchased": False}], as_of=dt.date(2024, 7, 31))
    out = run(con, pareto_groups(c360_table(rows).union(nobody)), ["as_of_date", "group_order"])
    first = out[out.as_of_date == pd.Timestamp(AS_OF)]
    # n = 3: shares above 0, 1/3, 2/3 -> very_high, moderate (< 0.373), very_low (>= 0.578)
    assert list(first.customers) == [1, 0, 1, 0, 1]
    assert list(first.profit) == dec(30, 0, 20, 0, -5)
    assert list(first.profit_share) == pytest.approx([30 / 45, 0, 20 / 45, 0, -5 / 45])
    assert list(first.customer_share) == pytest.approx([1 / 3, 0, 1 / 3, 0, 1 / 3])
    assert first.avg_profit.isna().tolist() == [False, True, False, True, False]
    empty = out[out.as_of_date == pd.Timestamp(2024, 7, 31)]
    assert list(empty.group_order) == [1, 2, 3, 4, 5]
    assert (empty.customers == 0).all() and (empty.profit_share == 0).all() and empty.avg_profit.isna().all()


# --- parameters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tier_cutoffs": (0.05, 0.01, 0.2)}, "strictly increasing"),
        ({"tier_cutoffs": (0.0, 0.05, 0.2)}, "strictly increasing"),
        ({"tier_cutoffs": (0.01, 0.05, 1.0)}, "strictly increasing"),
        ({"tier_cutoffs": (0.01, 0.05)}, "three cumulative shares"),
        ({"basis": "revenue"}, "basis"),
        ({"group_shares": (0.2, 0.2, 0.2, 0.2, 0.1)}, "sum to 1"),
        ({"group_shares": (0.5, 0.5)}, "five shares"),
        ({"group_shares": (1.5, -0.5, 0, 0, 0)}, "five shares"),
        ({"pareto_points": 0}, "positive integer"),
        ({"pareto_points": 2.5}, "positive integer"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ValueParams(**kwargs)


def test_defaults_and_labels():
    params = ValueParams(tier_cutoffs=[0.01, 0.05, 0.2], group_shares=[0.018, 0.092, 0.263, 0.205, 0.422])
    assert params.tier_cutoffs == (0.01, 0.05, 0.2)
    assert params.group_cutoffs == (0.018, 0.11, 0.373, 0.578, 1.0)
    hash(params)
    assert list(TIER_ZH) == ["platinum", "gold", "iron", "lead"]
    assert list(VALUE_GROUP_ZH.values()) == ["很高", "高", "适度", "低", "很低"]


# --- determinism, snapshots, completeness ----------------------------------------------------------

MARTS = [
    (value_tiers, ["as_of_date", "customer_key"]),
    (pareto, ["as_of_date", "measure", "percentile"]),
    (pareto_groups, ["as_of_date", "group_order"]),
]


@pytest.mark.parametrize(("mart", "keys"), MARTS)
def test_shuffled_input_gives_identical_output(con, mart, keys):
    rows = [*FIXTURE.to_dict("records"), PROSPECT]
    shuffled = [rows[i] for i in pd.DataFrame(rows).sample(frac=1, random_state=11).index]
    pd.testing.assert_frame_equal(run(con, mart(c360_table(rows)), keys), run(con, mart(c360_table(shuffled)), keys))


@pytest.mark.parametrize(("mart", "keys"), MARTS)
def test_two_as_of_dates_in_one_call_equal_separate_calls(con, mart, keys):
    first = fixture_table()
    later = FIXTURE.assign(
        profit_12m=FIXTURE.profit_12m[::-1].to_numpy(), net_monetary_12m=FIXTURE.net_monetary_12m + 7
    )
    second = c360_table(later, as_of=dt.date(2024, 7, 31))
    params = ValueParams(pareto_points=10)
    together = run(con, mart(first.union(second), params), keys)
    apart = pd.concat([con.execute(mart(first, params)), con.execute(mart(second, params))])
    pd.testing.assert_frame_equal(together, apart.sort_values(keys).reset_index(drop=True))


def test_every_buyer_exactly_one_tier_and_value_group(con):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "customer_key": [f"c{i:03d}" for i in range(300)],
            "profit_12m": rng.choice([-20.0, 0.0, 5.0, 5.0, 80.0, 400.0], 300),
            "net_monetary_12m": rng.integers(0, 100_000, 300) / 100,
            "has_purchased": rng.random(300) < 0.9,
        }
    )
    buyers = frame[frame.has_purchased]
    tiers = con.execute(value_tiers(c360_table(frame)))
    assert sorted(tiers.customer_key) == sorted(buyers.customer_key)
    assert tiers.tier.isin(list(TIER_ZH)).all() and tiers.tier_zh.notna().all()
    groups = con.execute(pareto_groups(c360_table(frame)))
    assert len(groups) == 5 and groups.customers.sum() == len(buyers)
    assert groups.customer_share.sum() == pytest.approx(1.0)
    assert groups.profit_share.sum() == pytest.approx(1.0)
    # Ties never straddle a group: each profit value lies in exactly one group.
    tiers_by_profit = tiers.groupby("profit_12m").tier.nunique()
    assert (tiers_by_profit == 1).all()


# --- CDNOW: the check against an independent plain-pandas computation ---------------------


def pandas_pareto(keys: pd.Series, cents: pd.Series, points: int) -> pd.DataFrame:
    ordered = pd.DataFrame({"key": keys, "cents": cents}).sort_values(["cents", "key"], ascending=[False, True])
    cumulative = ordered.cents.cumsum().to_numpy()
    n, total = len(ordered), int(ordered.cents.sum())
    p = np.arange(1, points + 1)
    k = -(-p * n // points)
    top20 = -(-n // 5)
    return pd.DataFrame(
        {
            "percentile": p,
            "customers": k,
            "cumulative_cents": cumulative[k - 1],
            "value_share": cumulative[k - 1] / total,
            "top20_value_share": cumulative[top20 - 1] / total,
        }
    )


def test_cdnow_pareto_agrees_with_plain_pandas(con):
    facts = cdnow_c360()
    out = run(con, pareto(cdnow_table(facts)), ["measure", "percentile"])
    for measure, cents in (("revenue", facts.cents_12m), ("profit", facts.profit_cents_12m)):
        got = out[out.measure == measure].reset_index(drop=True)
        expected = pandas_pareto(facts.customer_key, cents, 100)
        assert got.percentile.tolist() == expected.percentile.tolist()
        assert got.customers.tolist() == expected.customers.tolist()
        assert got.cumulative_value.map(lambda d: int(d * 100)).tolist() == expected.cumulative_cents.tolist()
        np.testing.assert_allclose(got.value_share, expected.value_share, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.top20_value_share, expected.top20_value_share, rtol=0, atol=1e-9)
    profit = out[out.measure == "profit"]
    assert profit.value_share.max() > 1  # many CDNOW customers lose money under the made-up margin


def test_value_groups_per_customer_add_up_to_the_group_table(con):
    from analytics.value import pareto_groups, value_groups

    c360 = c360_table([{"customer_key": f"C{i:02d}", "profit_12m": Decimal(100 - 7 * i)} for i in range(30)])
    per_customer = con.execute(value_groups(c360)).value_group.value_counts().to_dict()
    table = con.execute(pareto_groups(c360)).set_index("value_group").customers.to_dict()
    assert {k: v for k, v in table.items() if v} == per_customer
