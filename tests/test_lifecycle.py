"""Lifecycle stages, group churn, cohort retention and the churn warning (analytics/lifecycle.py)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest

from analytics.lifecycle import (
    CHURN,
    CHURN_WARNING,
    COHORT_RETENTION,
    LIFECYCLE,
    STAGE_ORDER,
    STAGE_ZH,
    LifecycleParams,
    churn,
    churn_warning,
    cohort_retention,
    lifecycle,
)
from tests.c360_kit import AS_OF, assert_schema, c360_table, prospect, run


def buyer(key: str, days_ago: list[int], *, as_of: dt.date = AS_OF, amount: float = 50.0, **override) -> dict:
    """Customer-360 purchase facts of a customer who bought `amount` on each of the days
    `days_ago` before `as_of`, computed as customer360 defines them."""
    dates = sorted(as_of - dt.timedelta(days=d) for d in set(days_ago))
    n = len(dates)
    ago = [(as_of - d).days for d in dates]
    gaps = [(b - a).days for a, b in itertools.pairwise(dates)]
    n12 = sum(0 <= a <= 364 for a in ago)
    nprev = sum(365 <= a <= 729 for a in ago)
    row = {
        "as_of_date": as_of,
        "customer_key": key,
        "has_purchased": True,
        "first_purchase_date": dates[0],
        "last_purchase_date": dates[-1],
        "purchase_days": n,
        "frequency": n - 1,
        "recency_days": (dates[-1] - dates[0]).days,
        "days_since_last": ago[-1],
        "age_days": ago[0],
        "purchase_cycle_days": (dates[-1] - dates[0]).days / (n - 1) if n > 1 else None,
        "last_gap_days": gaps[-1] if gaps else None,
        "max_gap_days": max(gaps) if gaps else None,
        "purchase_days_12m": n12,
        "purchase_days_prev_12m": nprev,
        "net_monetary": amount * n,
        "net_monetary_12m": amount * n12,
        "net_monetary_prev_12m": amount * nprev,
        "repeat_purchase_rate": (n - 1) / n,
        "category_count": 1,
    }
    return {**row, **override}


# One customer per rule, with the defaults of LifecycleParams (days_ago = purchase days before AS_OF).
FLAT = [690, 600, 510, 420, 330, 240, 150, 60]  # 4 purchase days in each 12m window, cycle 90
STAGE_CASES: dict[str, tuple[dict, str, str]] = {
    "p": (prospect("p"), "potential", "no_purchase"),
    "new": (buyer("new", [60]), "development", "new_customer"),
    "gone1": (buyer("gone1", [400]), "termination", "beyond_churn_threshold"),  # single: 400 > 365
    "gone3": (buyer("gone3", [300, 270, 240]), "termination", "beyond_churn_threshold"),  # cycle 30 -> 90 < 240
    # cycle 440/3 = 146.7 -> today's threshold 440 > gap 380, but before the return: cycle 30 -> 90 < 380
    "back": (buyer("back", [500, 470, 440, 60]), "recovery", "returned_after_churn"),
    "back2": (buyer("back2", [500, 30]), "recovery", "returned_after_churn"),  # single before: 470 > 365
    # returned 200 days ago: past the 180-day recovery window; 1 vs 3 purchase days -> frequency fell
    "back_old": (buyer("back_old", [600, 570, 540, 200]), "decline", "frequency_fell"),
    "late": (buyer("late", [200, 170, 140, 110, 80]), "decline", "overdue_vs_cycle"),  # 80 > 2 x 30, <= 90
    "late1": (buyer("late1", [200]), "decline", "overdue_vs_cycle"),  # single: 200 > 180, <= 365
    "fewer": (buyer("fewer", [700, 650, 600, 550, 500, 450, 400, 30, 10]), "decline", "frequency_fell"),
    "cheaper": (
        buyer("cheaper", FLAT, net_monetary_12m=200.0, net_monetary_prev_12m=400.0),
        "decline",
        "spend_fell",
    ),  # 200 < 0.7 x 400
    "more": (buyer("more", [700, 400, 300, 200, 100, 10]), "growth", "frequency_rising"),  # 4 > 1.3 x 2
    "dearer": (
        buyer("dearer", FLAT, net_monetary_12m=600.0, net_monetary_prev_12m=400.0),
        "growth",
        "spend_rising",
    ),  # 600 > 1.3 x 400
    "young": (buyer("young", [120]), "growth", "young_relationship"),
    "steady": (buyer("steady", FLAT), "maturity", "steady"),
    # spend fell by 78 %, but from below the 100 CNY base: no trend
    "small": (buyer("small", FLAT, net_monetary_12m=20.0, net_monetary_prev_12m=90.0), "maturity", "steady"),
}


def stage_table() -> ir.Table:
    return c360_table([row for row, _, _ in STAGE_CASES.values()])


def test_lifecycle_schema_and_types():
    assert_schema(lifecycle(stage_table(), LifecycleParams()), LIFECYCLE)


def test_every_stage_rule_on_hand_computed_customers(con):
    out = run(con, lifecycle(stage_table(), LifecycleParams(), settings_version="v1"), ["customer_key"])
    got = {r.customer_key: (r.stage, r.rule) for r in out.itertuples()}
    assert got == {k: (stage, rule) for k, (_, stage, rule) in STAGE_CASES.items()}
    assert set(out.stage) == set(STAGE_ZH)
    assert (out.stage_zh == out.stage.map(STAGE_ZH)).all()
    assert (out.stage_order == out.stage.map(STAGE_ORDER)).all()
    assert set(out.settings_version) == {"v1"}


def test_thresholds_and_trends_are_reported(con):
    out = run(con, lifecycle(stage_table(), LifecycleParams()), ["customer_key"]).set_index("customer_key")
    assert pd.isna(out.loc["p", "churn_threshold_days"]) and pd.isna(out.loc["p", "days_since_last"])
    assert out.loc["new", "churn_threshold_days"] == 365.0  # single purchase day
    assert out.loc["gone3", "churn_threshold_days"] == 90.0  # max(3 x 30, 90)
    assert out.loc["back", "churn_threshold_days"] == pytest.approx(440.0)  # 3 x 440 / 3
    assert out.loc["more", "frequency_trend"] == 2.0 and out.loc["more", "spend_trend"] == 2.0
    assert out.loc["dearer", "spend_trend"] == 1.5 and out.loc["dearer", "frequency_trend"] == 1.0
    assert pd.isna(out.loc["new", "frequency_trend"]) and pd.isna(out.loc["new", "spend_trend"])
    assert out.loc["late", "days_since_last"] == 80 and out.loc["late", "purchase_cycle_days"] == 30.0


def test_development_takes_precedence_over_termination(con):
    # first purchase 85 days ago, cycle 5: 80 days silent is beyond max(15, 10) but the customer is new
    t = c360_table([buyer("x", [85, 80])])
    out = run(con, lifecycle(t, LifecycleParams(min_churn_days=10)), ["customer_key"])
    assert (out.stage[0], out.rule[0]) == ("development", "new_customer")
    out = run(con, lifecycle(t, LifecycleParams(min_churn_days=10, new_days=30)), ["customer_key"])
    assert (out.stage[0], out.rule[0]) == ("termination", "beyond_churn_threshold")


def test_recovery_precedes_decline_and_ends_with_the_window(con):
    t = c360_table([STAGE_CASES["back"][0]])
    assert run(con, lifecycle(t, LifecycleParams()), ["customer_key"]).stage[0] == "recovery"
    # the same customer with a 50-day window: the 1-vs-3 frequency drop decides
    out = run(con, lifecycle(t, LifecycleParams(recovery_days=50)), ["customer_key"])
    assert (out.stage[0], out.rule[0]) == ("decline", "frequency_fell")


def test_termination_boundary_is_strict(con):
    # cycle 30 -> threshold 90: 90 days silent is still decline, 91 is termination
    t = c360_table([buyer("a", [150, 120, 90]), buyer("b", [151, 121, 91])])
    out = run(con, lifecycle(t, LifecycleParams()), ["customer_key"])
    assert list(out.stage) == ["decline", "termination"]


def test_each_customer_gets_exactly_one_stage(con):
    rows = [row for row, _, _ in STAGE_CASES.values()]
    other = [{**r, "as_of_date": dt.date(2025, 3, 31)} for r in rows]
    out = con.execute(lifecycle(c360_table(rows + other), LifecycleParams()))
    assert len(out) == 2 * len(rows)
    assert out.groupby(["as_of_date", "customer_key"]).size().eq(1).all()
    assert out.stage.notna().all() and out.stage.isin(list(STAGE_ZH)).all()


def test_shuffling_input_rows_changes_nothing(con):
    rows = [row for row, _, _ in STAGE_CASES.values()]
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    keys = ["as_of_date", "customer_key"]
    a = run(con, lifecycle(c360_table(rows), LifecycleParams()), keys)
    b = run(con, lifecycle(c360_table(shuffled), LifecycleParams()), keys)
    pd.testing.assert_frame_equal(a, b)
    a = run(con, churn_warning(c360_table(rows), LifecycleParams()), keys)
    b = run(con, churn_warning(c360_table(shuffled), LifecycleParams()), keys)
    pd.testing.assert_frame_equal(a, b)


def _two_snapshots() -> tuple[list[dict], list[dict]]:
    earlier = dt.date(2025, 3, 31)
    first = [row for row, _, _ in STAGE_CASES.values()]
    second = [
        buyer("new", [20], as_of=earlier),
        buyer("late", [110, 80, 50, 20], as_of=earlier),
        buyer("fewer", [600, 500, 400, 30], as_of=earlier, net_monetary_12m=900.0),
        {**prospect("p"), "as_of_date": earlier},
    ]
    return first, second


def test_two_as_of_dates_in_one_call_equal_two_calls(con):
    first, second = _two_snapshots()
    keys = ["as_of_date", "customer_key"]
    p = LifecycleParams()
    for fn in (lifecycle, churn_warning):
        together = run(con, fn(c360_table(first + second), p), keys)
        apart = pd.concat([con.execute(fn(c360_table(first), p)), con.execute(fn(c360_table(second), p))])
        pd.testing.assert_frame_equal(together, apart.sort_values(keys).reset_index(drop=True))


# --- churn warning ----------------------------------------------------------------------


def warning_table() -> ir.Table:
    return c360_table(
        [
            # cycle 30, 50 days silent > 1.5 x 30; frequency rising -> growth; last bought 2025-05-11
            buyer("due", [110, 80, 50]),
            # same shape, more at risk; equal values: ranked by key
            buyer("due-y", [110, 80, 50], net_monetary_12m=500.0),
            buyer("due-x", [110, 80, 50], net_monetary_12m=500.0),
            # 2 vs 7 purchase days and 100 vs 350 CNY: both trends fell, not overdue (10 days, cycle 86)
            STAGE_CASES["fewer"][0],
            STAGE_CASES["cheaper"][0],  # spend fell only: not a warning criterion
            STAGE_CASES["gone3"][0],  # terminated: already lost
            STAGE_CASES["steady"][0],
            STAGE_CASES["new"][0],  # single purchase: no cycle to be overdue against
            prospect("p"),
        ]
    )


def test_churn_warning_schema_and_types():
    assert_schema(churn_warning(warning_table(), LifecycleParams()), CHURN_WARNING)


def test_churn_warning_ranks_value_at_risk_with_reasons(con):
    out = run(con, churn_warning(warning_table(), LifecycleParams(), settings_version="v"), ["risk_rank"])
    assert list(out.customer_key) == ["due-x", "due-y", "due", "fewer"]
    assert list(out.risk_rank) == [1, 2, 3, 4]
    assert list(out.value_at_risk) == [Decimal("500.00"), Decimal("500.00"), Decimal("150.00"), Decimal("100.00")]
    assert list(out.reasons) == ["overdue_vs_cycle"] * 3 + ["frequency_fell,spend_fell"]
    due = out.set_index("customer_key").loc["due"]
    assert due.overdue_ratio == pytest.approx(50 / 30)
    assert due.expected_next_purchase_date == pd.Timestamp(2025, 6, 10)  # 2025-05-11 + 30 days
    assert (due.stage, due.stage_zh) == ("growth", "成长期")
    fewer = out.set_index("customer_key").loc["fewer"]
    assert fewer.overdue_ratio == pytest.approx(10 / 86.25) and fewer.stage == "decline"
    assert fewer.expected_next_purchase_date == pd.Timestamp(AS_OF - dt.timedelta(days=10) + dt.timedelta(days=86))
    assert set(out.settings_version) == {"v"}


def test_churn_warning_multiple_moves_the_cut(con):
    out = run(con, churn_warning(warning_table(), LifecycleParams(warn_multiple=2.0)), ["risk_rank"])
    assert list(out.customer_key) == ["fewer"]  # 50 days is not beyond 2 x 30


# --- group churn --------------------------------------------------------------------------

D = dt.date

# churn_days = 90, quarters 2024Q3..2025Q2 (as of 2025-06-30). Cohort = quarter of first purchase.
#   a: always active                                                    cohort 2024Q2
#   b: active at Q3 start; silent since 2024-07-20 -> lost in Q4;       cohort 2024Q2
#      returns 2025-02-15: outside Q1's base, back in Q2's base, kept
#   c: single purchase 2024-06-15 -> lost in Q3                         cohort 2024Q2
#   d: last 2024-10-01 -> 91 days at 2024-12-31 -> lost in Q4           cohort 2024Q3
#   e: last 2024-10-02 -> exactly 90 days at 2024-12-31: kept; lost Q1  cohort 2024Q3
#   f: first purchase in Q2 2025: never in a base                       cohort 2025Q2
PURCHASES = {
    "a": [D(2024, 5, 10), D(2024, 7, 15), D(2024, 9, 20), D(2024, 12, 10), D(2025, 3, 5), D(2025, 6, 1)],
    "b": [D(2024, 6, 1), D(2024, 7, 20), D(2025, 2, 15), D(2025, 5, 20)],
    "c": [D(2024, 6, 15)],
    "d": [D(2024, 8, 5), D(2024, 10, 1)],
    "e": [D(2024, 9, 1), D(2024, 10, 2)],
    "f": [D(2025, 4, 10)],
}


def purchases_table(by_customer: dict[str, list[dt.date]], as_of: dt.date = AS_OF) -> ir.Table:
    rows = [
        {"as_of_date": as_of, "customer_key": k, "purchase_date": d, "net_amount": 10.0}
        for k, days in by_customer.items()
        for d in days
        if d <= as_of
    ]
    schema = {"as_of_date": "date", "customer_key": "string", "purchase_date": "date", "net_amount": "decimal(18, 2)"}
    return ibis.memtable(pd.DataFrame(rows)).cast(schema)


def test_churn_schema_and_types():
    assert_schema(churn(purchases_table(PURCHASES), LifecycleParams()), CHURN)


def test_churn_per_period_and_cohort_counts_lapse_and_return(con):
    params = LifecycleParams(churn_days=90, max_periods=4)
    out = run(con, churn(purchases_table(PURCHASES), params), ["period", "cohort"])
    got = {(r.period, r.cohort): (r.customers_at_start, r.lost) for r in out.itertuples()}
    assert got == {
        ("2024Q3", "2024Q2"): (3, 1),
        ("2024Q3", "all"): (3, 1),
        ("2024Q4", "2024Q2"): (2, 1),
        ("2024Q4", "2024Q3"): (2, 1),
        ("2024Q4", "all"): (4, 2),
        ("2025Q1", "2024Q2"): (1, 0),
        ("2025Q1", "2024Q3"): (1, 1),
        ("2025Q1", "all"): (2, 1),
        ("2025Q2", "2024Q2"): (2, 0),
        ("2025Q2", "all"): (2, 0),
    }
    all_rows = out[out.cohort == "all"].set_index("period")
    assert all_rows.loc["2024Q3", "period_start"] == pd.Timestamp(2024, 7, 1)
    assert all_rows.loc["2024Q3", "period_end"] == pd.Timestamp(2024, 9, 30)
    q3 = all_rows.loc["2024Q3"]
    assert q3.churn_rate == pytest.approx(1 / 3) and q3.retention_rate == pytest.approx(2 / 3)
    assert q3.annual_churn_rate == pytest.approx(65 / 81)  # 1 - (2/3)^4
    assert q3.group_lifecycle_years == pytest.approx(81 / 65)
    assert all_rows.loc["2024Q4", "annual_churn_rate"] == pytest.approx(0.9375)
    q2 = all_rows.loc["2025Q2"]
    assert q2.churn_rate == 0.0 and q2.annual_churn_rate == 0.0 and pd.isna(q2.group_lifecycle_years)


def test_seed_example_100_customers_20_lost_in_a_year_is_5_years(con):
    as_of = D(2025, 12, 31)
    history = {f"c{i:03d}": [D(2024, 12, 1)] + ([D(2025, 11, 15)] if i >= 20 else []) for i in range(100)}
    params = LifecycleParams(period="year", max_periods=1)
    out = run(con, churn(purchases_table(history, as_of), params), ["cohort"])
    row = out[out.cohort == "all"].iloc[0]
    assert (row.period, row.customers_at_start, row.lost) == ("2025", 100, 20)
    assert row.churn_rate == 0.2 and row.annual_churn_rate == 0.2
    assert row.group_lifecycle_years == pytest.approx(5.0)


def test_only_complete_periods_up_to_max_periods(con):
    table = purchases_table(PURCHASES, D(2025, 6, 15))
    out = con.execute(churn(table, LifecycleParams(max_periods=2)))
    assert set(out.period) == {"2025Q1", "2024Q4"}  # 2025Q2 is not over on 2025-06-15
    out = con.execute(churn(purchases_table(PURCHASES), LifecycleParams(period="month", max_periods=3)))
    assert set(out.period) == {"2025-06", "2025-05", "2025-04"}
    assert set(out[out.period == "2025-06"].period_end) == {pd.Timestamp(2025, 6, 30)}
    # periods starting before the first purchase in the data have nobody at their start: left out
    out = con.execute(churn(purchases_table(PURCHASES), LifecycleParams(max_periods=40)))
    assert out.period_start.min() == pd.Timestamp(2024, 7, 1)


def test_churn_two_as_of_dates_and_shuffle(con):
    earlier = D(2025, 3, 31)
    both = purchases_table(PURCHASES).union(purchases_table(PURCHASES, earlier))
    keys = ["as_of_date", "period", "cohort"]
    params = LifecycleParams(churn_days=90)
    together = run(con, churn(both, params), keys)
    apart = pd.concat(
        [
            con.execute(churn(purchases_table(PURCHASES), params)),
            con.execute(churn(purchases_table(PURCHASES, earlier), params)),
        ]
    )
    pd.testing.assert_frame_equal(together, apart.sort_values(keys).reset_index(drop=True))
    shuffled = dict(reversed(list(PURCHASES.items())))
    again = run(con, churn(purchases_table(shuffled).union(purchases_table(shuffled, earlier)), params), keys)
    pd.testing.assert_frame_equal(together, again)


# --- cohort retention ---------------------------------------------------------------------

COHORTS = {
    "a": [D(2024, 12, 5), D(2024, 12, 20), D(2025, 2, 10), D(2025, 3, 1)],
    "b": [D(2024, 12, 28), D(2025, 1, 3)],
    "c": [D(2025, 1, 15)],
    "d": [D(2025, 3, 2)],  # cohort 2025-03 is not complete on 2025-03-15
}


def test_cohort_retention_schema_and_types():
    assert_schema(cohort_retention(purchases_table(COHORTS, D(2025, 3, 15)), LifecycleParams()), COHORT_RETENTION)


def test_cohort_retention_counts_complete_months(con):
    table = purchases_table(COHORTS, D(2025, 3, 15))
    out = run(con, cohort_retention(table, LifecycleParams(), settings_version="v"), ["cohort", "months_since"])
    got = [(r.cohort, r.months_since, r.cohort_size, r.active_customers, r.retention) for r in out.itertuples()]
    assert got == [
        ("2024-12", 0, 2, 2, 1.0),
        ("2024-12", 1, 2, 1, 0.5),  # b in January
        ("2024-12", 2, 2, 1, 0.5),  # a in February (a's March purchase: month not complete)
        ("2025-01", 0, 1, 1, 1.0),
        ("2025-01", 1, 1, 0, 0.0),  # nobody of the cohort in February: a zero row, not a gap
    ]
    assert set(out.settings_version) == {"v"}
    # a month ending on the as-of date is complete
    out = con.execute(cohort_retention(purchases_table(COHORTS, D(2025, 3, 31)), LifecycleParams()))
    assert ("2025-03", 0) in set(zip(out.cohort, out.months_since, strict=True))
    # the newest two complete months are 2025-01 and 2025-02 (2025-02 has no first purchases)
    out = con.execute(cohort_retention(table, LifecycleParams(cohort_months=2)))
    assert set(out.cohort) == {"2025-01"}


def test_cohort_retention_two_as_of_dates_in_one_call(con):
    a, b = D(2025, 3, 15), D(2025, 1, 31)
    keys = ["as_of_date", "cohort", "months_since"]
    p = LifecycleParams()
    together = run(con, cohort_retention(purchases_table(COHORTS, a).union(purchases_table(COHORTS, b)), p), keys)
    apart = pd.concat([con.execute(cohort_retention(purchases_table(COHORTS, x), p)) for x in (a, b)]).sort_values(keys)
    pd.testing.assert_frame_equal(together, apart.reset_index(drop=True))


# --- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period": "week"}, "period must be one of"),
        ({"trend_drop": 1.0}, "trend_drop"),
        ({"spend_drop": 0.0}, "spend_drop"),
        ({"decline_multiple": 4.0}, "decline_multiple must not exceed churn_multiple"),
        ({"churn_multiple": 0.0}, "churn_multiple must be positive"),
        ({"young_days": 30}, "young_days"),
        ({"min_churn_days": -1}, "min_churn_days"),
        ({"single_purchase_decline_days": 400}, "single_purchase_decline_days"),
        ({"churn_days": 0}, "churn_days"),
        ({"max_periods": 0}, "max_periods"),
        ({"trend_min_base": 0}, "trend_min_base"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LifecycleParams(**kwargs)
