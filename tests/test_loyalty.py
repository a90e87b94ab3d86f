"""Loyalty index: indicator scores, renormalised weights and levels (analytics/loyalty.py)."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest

from analytics.loyalty import INDICATORS, LEVEL_ZH, LOYALTY, LoyaltyParams, loyalty
from tests.c360_kit import AS_OF, assert_schema, c360_table, prospect, run

# Defaults: weights repeat .25, tenure .15, trend .15, breadth .10, full_price .10, recommend .15,
# satisfaction .10; tenure saturates at 1095 days, breadth at 5 categories.
#   loyal:  repeat .8, tenure 1 (2000 d), trend 3/(3+1) = .75, breadth (3-1)/4 = .5, full price .6,
#           recommend 9/10 = .9, satisfaction (10-1)/9 = 1
#           -> .2 + .15 + .1125 + .05 + .06 + .135 + .1 = .8075 -> 80.75, high, 7 indicators
#   quiet:  the same behaviour, no survey -> (.2 + .15 + .1125 + .05 + .06) / .75 = 76.3333.., high, 5
#   fresh:  one purchase 30 days ago, signed up 30 days ago, one category, all full price, no survey:
#           repeat 0, tenure 30/1095, trend null (no previous year), breadth 0, full price 1
#           -> (.15 x 30/1095 + .1) / (.25 + .15 + .1 + .1) = 17.3516.., low, 4
#   middle: repeat .5, tenure 547/1095, trend 0 (0 vs 2 purchase days), breadth .25, full price .5,
#           recommend 5 -> .5, satisfaction 5.5 -> .5
#           -> .125 + .15 x 547/1095 + 0 + .025 + .05 + .075 + .05 = 39.9932.., medium, 7
BASE = {"has_purchased": True, "age_days": 900}
LOYAL = {
    **BASE,
    "customer_key": "loyal",
    "repeat_purchase_rate": 0.8,
    "tenure_days": 2000,
    "purchase_days_12m": 3,
    "purchase_days_prev_12m": 1,
    "category_count": 3,
    "full_price_share": 0.6,
    "recommend": 9,
    "satisfaction": 10.0,
}
QUIET = {**LOYAL, "customer_key": "quiet", "recommend": None, "satisfaction": None}
FRESH = {
    "customer_key": "fresh",
    "has_purchased": True,
    "age_days": 30,
    "repeat_purchase_rate": 0.0,
    "tenure_days": 30,
    "purchase_days_12m": 1,
    "purchase_days_prev_12m": 0,
    "category_count": 1,
    "full_price_share": 1.0,
    "recommend": None,  # no survey (a BIGINT would default to 0)
}
MIDDLE = {
    **BASE,
    "customer_key": "middle",
    "repeat_purchase_rate": 0.5,
    "tenure_days": 547,
    "purchase_days_12m": 0,
    "purchase_days_prev_12m": 2,
    "category_count": 2,
    "full_price_share": 0.5,
    "recommend": 5,
    "satisfaction": 5.5,
}
ROWS = [LOYAL, QUIET, FRESH, MIDDLE, prospect("p", satisfaction=9.0)]


def test_schema_and_types():
    assert_schema(loyalty(c360_table(ROWS), LoyaltyParams()), LOYALTY)


def test_hand_computed_index_levels_and_scores(con):
    out = run(con, loyalty(c360_table(ROWS), LoyaltyParams(), settings_version="v"), ["customer_key"])
    out = out.set_index("customer_key")
    assert list(out.index) == ["fresh", "loyal", "middle", "quiet"]  # the prospect is not scored
    assert out.loc["loyal"].loyalty_index == pytest.approx(80.75)
    assert out.loc["quiet"].loyalty_index == pytest.approx(76.333333, abs=1e-6)
    assert out.loc["fresh"].loyalty_index == pytest.approx(100 * (0.15 * 30 / 1095 + 0.1) / 0.6, abs=1e-6)
    assert out.loc["middle"].loyalty_index == pytest.approx(100 * (0.325 + 0.15 * 547 / 1095), abs=1e-6)
    assert out.indicators_used.to_dict() == {"fresh": 4, "loyal": 7, "middle": 7, "quiet": 5}
    assert out.loyalty_level.to_dict() == {"fresh": "low", "loyal": "high", "middle": "medium", "quiet": "high"}
    assert (out.loyalty_level_zh == out.loyalty_level.map(LEVEL_ZH)).all()
    loyal = out.loc["loyal"]
    scores = [loyal[f"{name}_score"] for name in INDICATORS]
    assert scores == pytest.approx([0.8, 1.0, 0.75, 0.5, 0.6, 0.9, 1.0])
    assert out.loc["middle"].tenure_score == pytest.approx(547 / 1095)
    assert out.loc["middle"].trend_score == 0.0
    assert pd.isna(out.loc["fresh"].trend_score) and pd.isna(out.loc["quiet"].recommend_score)
    assert set(out.settings_version) == {"v"}


def test_trend_needs_a_previous_year(con):
    rows = [
        {**MIDDLE, "customer_key": "none", "purchase_days_12m": 0, "purchase_days_prev_12m": 0},
        {**MIDDLE, "customer_key": "flat", "purchase_days_12m": 2, "purchase_days_prev_12m": 2},
        {**MIDDLE, "customer_key": "new", "purchase_days_12m": 4, "purchase_days_prev_12m": 0, "age_days": 364},
        {**MIDDLE, "customer_key": "old", "purchase_days_12m": 4, "purchase_days_prev_12m": 0, "age_days": 365},
    ]
    out = run(con, loyalty(c360_table(rows), LoyaltyParams()), ["customer_key"]).set_index("customer_key")
    assert out.trend_score.to_dict() == pytest.approx(
        {"flat": 0.5, "new": float("nan"), "none": float("nan"), "old": 1.0}, nan_ok=True
    )
    assert out.indicators_used.to_dict() == {"flat": 7, "new": 6, "none": 6, "old": 7}


def test_scores_saturate_and_clip(con):
    row = {**LOYAL, "tenure_days": 5000, "category_count": 12, "recommend": 10, "satisfaction": 1.0}
    out = run(con, loyalty(c360_table([row]), LoyaltyParams(breadth_saturation=3)), ["customer_key"]).iloc[0]
    assert (out.tenure_score, out.breadth_score, out.recommend_score, out.satisfaction_score) == (1.0, 1.0, 1.0, 0.0)


def test_cutoffs_are_inclusive_and_zero_weights_are_ignored(con):
    only_repeat = dict.fromkeys(INDICATORS, 0.0) | {"repeat": 1.0}
    rows = [
        {**LOYAL, "customer_key": k, "repeat_purchase_rate": r} for k, r in {"a": 0.67, "b": 0.34, "c": 0.3399}.items()
    ]
    out = run(con, loyalty(c360_table(rows), LoyaltyParams(weights=only_repeat)), ["customer_key"])
    assert list(out.loyalty_index) == pytest.approx([67.0, 34.0, 33.99])
    assert list(out.loyalty_level) == ["high", "medium", "low"]
    assert set(out.indicators_used) == {1}


def _snapshots() -> tuple[list[dict], list[dict]]:
    earlier = dt.date(2025, 3, 31)
    first = [{**r, "as_of_date": AS_OF} for r in ROWS]
    second = [{**r, "as_of_date": earlier, "tenure_days": 100} for r in (LOYAL, FRESH)]
    return first, second


def test_two_as_of_dates_in_one_call_equal_two_calls(con):
    first, second = _snapshots()
    keys = ["as_of_date", "customer_key"]
    together = run(con, loyalty(c360_table(first + second), LoyaltyParams()), keys)
    apart = pd.concat([con.execute(loyalty(c360_table(rows), LoyaltyParams())) for rows in (first, second)])
    pd.testing.assert_frame_equal(together, apart.sort_values(keys).reset_index(drop=True))
    # every buying customer gets exactly one level per snapshot
    assert together.groupby(keys).size().eq(1).all() and len(together) == 6
    assert together.loyalty_level.isin(list(LEVEL_ZH)).all()


def test_shuffling_input_rows_changes_nothing(con):
    first, second = _snapshots()
    rows = first + second
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    keys = ["as_of_date", "customer_key"]
    a = run(con, loyalty(c360_table(rows), LoyaltyParams()), keys)
    b = run(con, loyalty(c360_table(shuffled), LoyaltyParams()), keys)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": {"repeat": 1.0}}, "missing"),
        ({"weights": dict.fromkeys(INDICATORS, 0.2)}, "sum to 1"),
        ({"weights": dict.fromkeys(INDICATORS, 0.0) | {"repeat": 1.5, "tenure": -0.5}}, "negative"),
        ({"weights": dict.fromkeys(INDICATORS, 0.0) | {"repeat": 1.0, "loyalty": 0.0}}, "unknown"),
        ({"tenure_saturation_days": 0}, "tenure_saturation_days"),
        ({"breadth_saturation": 1}, "breadth_saturation"),
        ({"high_cutoff": 30.0}, "medium_cutoff < high_cutoff"),
        ({"medium_cutoff": 0.0}, "medium_cutoff"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LoyaltyParams(**kwargs)
