"""The customer-tier matrix (analytics/tiers.py): credit grades, the high/low splits, the
cube order, the current x potential cells and the per-cell mart."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import partial

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pytest

from analytics.strategy import DIMENSIONS, strategy_for
from analytics.tiers import (
    CUBE_CODES,
    CUSTOMER_TIERS,
    TIER_MATRIX,
    VIEWS,
    TierMatrixParams,
    customer_tiers,
    tier_matrix,
)
from tests import c360_kit
from tests.c360_kit import AS_OF, assert_schema, mart_table

AS_OF_2 = dt.date(2025, 7, 31)

# Besides the kit's defaults (a buyer; no money, purchases or overdue invoices): an individual
# that reports no revenue and paid every invoice on time.
_DEFAULTS = {"kind": "individual", "annual_revenue": None, "arrears_ratio": 0.0, "avg_days_late": 0.0}
c360_table = partial(c360_kit.c360_table, defaults=_DEFAULTS)


def loyalty_table(index: dict[str, float | None], as_of: dt.date = AS_OF) -> ir.Table:
    df = pd.DataFrame(
        {
            "as_of_date": as_of,
            "customer_key": list(index),
            "loyalty_index": [np.nan if v is None else v for v in index.values()],
            "loyalty_level": "medium",
        }
    )
    return ibis.memtable(df).cast({"as_of_date": "date", "loyalty_index": "float64"})


def tiers(con, rows: list[dict], loyalty: dict[str, float | None] | None = None, **params) -> pd.DataFrame:
    keys = [r["customer_key"] for r in rows]
    lo = loyalty_table(loyalty if loyalty is not None else dict.fromkeys(keys, 0.0))
    expr = customer_tiers(c360_table(rows), lo, TierMatrixParams(**params))
    return con.execute(expr).set_index("customer_key").sort_index()


# -- credit grade ---------------------------------------------------------------------------

CREDIT_ROWS = [
    # no invoices at all: no history -> B (high)
    {"customer_key": "a", "arrears_ratio": None, "avg_days_late": None},
    # never late; owes everything on an invoice not yet due -> A
    {"customer_key": "b", "arrears_ratio": 0.9},
    # late twice, on average exactly 15 days -> B (C needs more than 15)
    {"customer_key": "c", "overdue_count": 2, "avg_days_late": 15.0},
    {"customer_key": "d", "overdue_count": 2, "avg_days_late": 15.5},
    # one invoice open past due with high arrears is not yet D (needs 2) -> C by lateness
    {"customer_key": "e", "overdue_count": 3, "overdue_open_count": 1, "arrears_ratio": 0.9, "avg_days_late": 59.9},
    {"customer_key": "f", "overdue_count": 1, "avg_days_late": 60.0},
    # two open overdue invoices and half of the invoiced amount unpaid -> D
    {"customer_key": "g", "overdue_count": 3, "overdue_open_count": 2, "arrears_ratio": 0.5, "avg_days_late": 10.0},
    {"customer_key": "h", "overdue_count": 3, "overdue_open_count": 2, "arrears_ratio": 0.49, "avg_days_late": 10.0},
    # never paid anything and already overdue -> D
    {"customer_key": "i", "overdue_count": 1, "overdue_open_count": 1, "arrears_ratio": 1.0, "avg_days_late": None},
    # nothing paid yet but nothing due yet -> A
    {"customer_key": "j", "arrears_ratio": 1.0, "avg_days_late": None},
]


def test_credit_grades_follow_the_rules(con) -> None:
    df = tiers(con, CREDIT_ROWS)
    assert df.credit_grade.to_dict() == dict(zip("abcdefghij", "BABCCDDBDA", strict=True))
    grades = dict(zip("abcdefghij", "BABCCDDBDA", strict=True))
    assert df.credit_level.to_dict() == {k: "high" if g in "AB" else "low" for k, g in grades.items()}
    assert set(zip(df.credit_level, df.credit_level_zh, strict=True)) == {("high", "高信用"), ("low", "低信用")}


def test_credit_thresholds_are_parameters(con) -> None:
    df = tiers(
        con,
        CREDIT_ROWS,
        no_history_grade="C",
        high_credit_grades=("A",),
        credit_c_min_days_late=10.0,
        credit_d_min_days_late=15.5,
    )
    assert df.credit_grade.to_dict() == dict(zip("abcdefghij", "CACDDDDBDA", strict=True))
    assert (df.credit_level == np.where(df.credit_grade == "A", "high", "low")).all()


# -- loyalty and scale ----------------------------------------------------------------------


def test_loyalty_is_high_from_the_index_threshold(con) -> None:
    rows = [{"customer_key": k} for k in "abcd"]
    df = tiers(con, rows, {"a": 50.0, "b": 49.99, "c": None, "d": 100.0})
    assert df.loyalty_level.to_dict() == {"a": "high", "b": "low", "c": "low", "d": "high"}
    df = tiers(con, rows, {"a": 50.0, "b": 49.99, "c": None, "d": 100.0}, loyalty_high_index=60.0)
    assert df.loyalty_level.to_dict() == {"a": "low", "b": "low", "c": "low", "d": "high"}


def test_scale_top_share_is_tie_aware(con) -> None:
    # ten customers; strictly larger counts: 0, 1, 1, 3, ... -> the top 20 % are a, b and c (b, c tie)
    volumes = [100, 90, 90, 80, 70, 60, 50, 40, 30, 20]
    rows = [{"customer_key": k, "net_monetary_12m": v} for k, v in zip("abcdefghij", volumes, strict=True)]
    df = tiers(con, rows)
    assert sorted(df.index[df.scale_level == "high"]) == ["a", "b", "c"]
    df = tiers(con, rows, scale_top_share=0.1)
    assert sorted(df.index[df.scale_level == "high"]) == ["a"]


def test_nobody_is_large_with_nothing_bought(con) -> None:
    rows = [{"customer_key": k, "net_monetary_12m": v} for k, v in zip("abc", [0.0, 0.0, -5.0], strict=True)]
    assert (tiers(con, rows).scale_level == "low").all()


def test_scale_by_employees(con) -> None:
    rows = [
        {"customer_key": "a", "kind": "enterprise", "employees": 100, "net_monetary_12m": 1.0},
        {"customer_key": "b", "kind": "enterprise", "employees": 99, "net_monetary_12m": 1000.0},
        {"customer_key": "c", "kind": "individual", "employees": None, "net_monetary_12m": 5000.0},
    ]
    df = tiers(con, rows, scale_basis="employees")
    assert df.scale_level.to_dict() == {"a": "high", "b": "low", "c": "low"}


# -- cells and the cube order ---------------------------------------------------------------

CELL_ROWS = [
    # k1: A, loyal, large -> HHH; k2: D, loyal, small -> LHL; k3: no history (B), not loyal -> HLL;
    # k4: C, not loyal -> LLL. Only k1 is in the top 20 % of volume (others have 1+ larger of 4).
    {"customer_key": "k1", "net_monetary_12m": 1000.0, "profit_12m": 100.0},
    {"customer_key": "k2", "net_monetary_12m": 200.0, "profit_12m": -50.0, "overdue_count": 4, "avg_days_late": 90.0},
    {"customer_key": "k3", "net_monetary_12m": 300.0, "profit_12m": 30.0, "arrears_ratio": None, "avg_days_late": None},
    {"customer_key": "k4", "net_monetary_12m": 100.0, "profit_12m": 20.0, "overdue_count": 1, "avg_days_late": 30.0},
]
CELL_LOYALTY = {"k1": 80.0, "k2": 55.0, "k3": 20.0, "k4": 10.0}


def test_cells_and_default_cube_rank(con) -> None:
    df = tiers(con, CELL_ROWS, CELL_LOYALTY)
    assert df.credit_loyalty_cell.to_dict() == {"k1": "HH", "k2": "LH", "k3": "HL", "k4": "LL"}
    assert df.scale_loyalty_cell.to_dict() == {"k1": "HH", "k2": "LH", "k3": "LL", "k4": "LL"}
    assert df.cube_cell.to_dict() == {"k1": "HHH", "k2": "LHL", "k3": "HLL", "k4": "LLL"}
    assert df.cube_rank.to_dict() == {"k1": 1, "k2": 6, "k3": 4, "k4": 8}


def test_cube_order_is_configurable(con) -> None:
    loyalty_first = ("HHH", "LHH", "HHL", "LHL", "HLH", "LLH", "HLL", "LLL")
    df = tiers(con, CELL_ROWS, CELL_LOYALTY, cube_order=loyalty_first)
    assert df.cube_rank.to_dict() == {"k1": 1, "k2": 4, "k3": 7, "k4": 8}


@pytest.mark.parametrize(
    "order",
    [
        ("HHH", "HHL", "HLH", "HLL", "LHH", "LHL", "LLH"),  # seven cells
        ("HHH", "HHH", "HLH", "HLL", "LHH", "LHL", "LLH", "LLL"),  # a duplicate
        ("HHH", "HHL", "HLH", "HLL", "LHH", "LHL", "LLH", "LLX"),  # not a cell
    ],
)
def test_bad_cube_order_is_rejected(order: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="cube_order"):
        TierMatrixParams(cube_order=order)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("credit_c_min_days_late", 60.0),
        ("credit_d_min_open_overdue", 0),
        ("credit_d_min_arrears_ratio", 1.5),
        ("no_history_grade", "E"),
        ("high_credit_grades", ()),
        ("high_credit_grades", ("A", "B", "C", "D")),
        ("high_credit_grades", ("A", "X")),
        ("loyalty_high_index", 101.0),
        ("scale_basis", "revenue"),
        ("scale_top_share", 0.0),
        ("current_top_share", 1.2),
        ("potential_top_share", -0.1),
        ("scale_min_employees", 0),
        ("potential_growth_cap", 0.5),
        ("potential_loyal_uplift", -1.0),
        ("potential_default_margin", 2.0),
    ],
)
def test_bad_parameters_are_rejected(field: str, value) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        TierMatrixParams(**{field: value})


# -- current and potential value -------------------------------------------------------------


def test_potential_value_estimate(con) -> None:
    rows = [
        # frequency doubled (2 -> 4 days): wallet 1000 x 2; margin 200/1000 -> (2000 - 1000) x 0.2
        {"customer_key": "p1", "net_monetary_12m": 1000.0, "net_monetary_prev_12m": 500.0, "purchase_days_12m": 4,
         "purchase_days_prev_12m": 2, "gross_margin_12m": 200.0},
        # spent 400 last year: (400 - 100) x 30/100
        {"customer_key": "p2", "net_monetary_12m": 100.0, "net_monetary_prev_12m": 400.0, "gross_margin_12m": 30.0},
        # loyal: wallet 200 x 1.5; margin 50/200 -> 100 x 0.25
        {"customer_key": "p3", "net_monetary_12m": 200.0, "purchase_days_12m": 1, "gross_margin_12m": 50.0},
        # nothing bought, nothing before: no potential
        {"customer_key": "p4"},
        # frequency x5 capped at 3: (300 - 100) x 0.1
        {"customer_key": "p5", "net_monetary_12m": 100.0, "net_monetary_prev_12m": 50.0, "purchase_days_12m": 10,
         "purchase_days_prev_12m": 2, "gross_margin_12m": 10.0},
        # negative spend (returns): base 0, wallet = last year 100, default margin 0.25
        {"customer_key": "p6", "net_monetary_12m": -50.0, "net_monetary_prev_12m": 100.0},
        # organisations: spend / revenue = 1/1000, 1/3000, 1/4000 -> median 1/3000
        {"customer_key": "o1", "kind": "enterprise", "annual_revenue": 1_000_000.0, "net_monetary_12m": 1000.0,
         "gross_margin_12m": 100.0},
        {"customer_key": "o2", "kind": "enterprise", "annual_revenue": 3_000_000.0, "net_monetary_12m": 1000.0,
         "gross_margin_12m": 100.0},
        # peer benchmark 2,000,000 / 3000 = 666.67 -> (666.67 - 500) x 100/500
        {"customer_key": "o3", "kind": "partner", "annual_revenue": 2_000_000.0, "net_monetary_12m": 500.0,
         "gross_margin_12m": 100.0},
    ]  # fmt: skip
    loyalty = {r["customer_key"]: 0.0 for r in rows} | {"p3": 75.0}
    df = tiers(con, rows, loyalty)
    expected = {"p1": "200.00", "p2": "90.00", "p3": "25.00", "p4": "0.00", "p5": "20.00", "p6": "25.00",
                "o1": "0.00", "o2": "0.00", "o3": "33.33"}  # fmt: skip
    assert df.potential_value.to_dict() == {k: Decimal(v) for k, v in expected.items()}
    # the peer benchmark can be switched off
    df = tiers(con, rows, loyalty, potential_org_peer_factor=0.0)
    assert df.potential_value["o3"] == Decimal("0.00")


VALUE_ROWS = [
    # potential = last year's spend x default margin 0.25 (nothing spent this year)
    {"customer_key": "a", "profit_12m": 500.0, "net_monetary_prev_12m": 0.0},
    {"customer_key": "b", "profit_12m": 400.0, "net_monetary_prev_12m": 1000.0},
    {"customer_key": "c", "profit_12m": 10.0, "net_monetary_prev_12m": 2000.0},
    {"customer_key": "d", "profit_12m": 5.0, "net_monetary_prev_12m": 0.0},
    {"customer_key": "e", "profit_12m": -20.0, "net_monetary_prev_12m": 400.0},
]


def test_value_cells(con) -> None:
    # top 40 % of five: fewer than 2 customers strictly ahead
    df = tiers(con, VALUE_ROWS, current_top_share=0.4, potential_top_share=0.4)
    assert df.current_value.to_dict() == {
        k: Decimal(v) for k, v in zip("abcde", ["500.00", "400.00", "10.00", "5.00", "-20.00"], strict=True)
    }
    assert df.potential_value.to_dict() == {
        k: Decimal(v) for k, v in zip("abcde", ["0.00", "250.00", "500.00", "0.00", "100.00"], strict=True)
    }
    assert df.value_cell.to_dict() == {
        "a": "maintain",
        "b": "strategic",
        "c": "invest",
        "d": "reconsider",
        "e": "reconsider",
    }
    assert df.value_cell_zh.to_dict() == {"a": "维持", "b": "重点发展", "c": "培养", "d": "重新考虑", "e": "重新考虑"}


def test_equal_values_are_all_top_and_nobody_is_top_without_profit(con) -> None:
    rows = [{"customer_key": k, "profit_12m": 7.0} for k in "abcdef"]
    assert (tiers(con, rows).value_cell == "maintain").all()
    rows = [{"customer_key": k, "profit_12m": 0.0} for k in "abcdef"]
    assert (tiers(con, rows).value_cell == "reconsider").all()


def test_population_is_buyers_scored_for_loyalty(con) -> None:
    rows = [
        {"customer_key": "buyer"},
        {"customer_key": "prospect", "has_purchased": False},
        {"customer_key": "unscored"},
    ]
    lo = loyalty_table({"buyer": 10.0, "prospect": 10.0})
    df = con.execute(customer_tiers(c360_table(rows), lo))
    assert df.customer_key.tolist() == ["buyer"]


def test_customer_tiers_schema() -> None:
    expr = customer_tiers(c360_table(CELL_ROWS), loyalty_table(CELL_LOYALTY), settings_version="s1")
    assert_schema(expr, CUSTOMER_TIERS)


# -- the per-cell mart ----------------------------------------------------------------------


def matrix(con, rows: list[dict], loyalty: dict[str, float], **params) -> pd.DataFrame:
    c = c360_table(rows)
    p = TierMatrixParams(**params)
    expr = tier_matrix(customer_tiers(c, loyalty_table(loyalty), p), c, params=p, settings_version="s1")
    assert_schema(expr, TIER_MATRIX)
    return con.execute(expr).set_index(["view", "cell"]).sort_index()


def test_tier_matrix_cells(con) -> None:
    df = matrix(con, CELL_ROWS, CELL_LOYALTY)
    assert len(df) == 4 + 4 + 8 + 4
    assert df.index.tolist() == sorted((v, c) for v in VIEWS for c in DIMENSIONS[v])
    assert (df.settings_version == "s1").all()
    got = {k: (r.customers, str(r.revenue), str(r.profit)) for k, r in df.iterrows() if r.customers}
    assert got == {
        ("credit_loyalty", "HH"): (1, "1000.00", "100.00"),
        ("credit_loyalty", "HL"): (1, "300.00", "30.00"),
        ("credit_loyalty", "LH"): (1, "200.00", "-50.00"),
        ("credit_loyalty", "LL"): (1, "100.00", "20.00"),
        ("scale_loyalty", "HH"): (1, "1000.00", "100.00"),
        ("scale_loyalty", "LH"): (1, "200.00", "-50.00"),
        ("scale_loyalty", "LL"): (2, "400.00", "50.00"),
        ("cube", "HHH"): (1, "1000.00", "100.00"),
        ("cube", "HLL"): (1, "300.00", "30.00"),
        ("cube", "LHL"): (1, "200.00", "-50.00"),
        ("cube", "LLL"): (1, "100.00", "20.00"),
        # nobody has potential (no margin, no history): k1 keeps the top profit
        ("current_potential", "maintain"): (1, "1000.00", "100.00"),
        ("current_potential", "reconsider"): (3, "600.00", "0.00"),
    }
    empty = df[df.customers == 0]
    assert (empty.revenue == 0).all() and (empty.profit == 0).all() and (empty.customer_share == 0).all()
    r = df.loc[("credit_loyalty", "LH")]
    assert r.customer_share == 0.25 and r.revenue_share == pytest.approx(0.125) and r.profit_share == -0.5
    assert df.loc[("credit_loyalty", "HH")].profit_share == 1.0
    assert (r.cell_label, r.cell_label_zh) == ("Low credit, high loyalty", "低信用高忠诚")
    assert (r.strategy, r.strategy_zh) == strategy_for("credit_loyalty", "LH")
    assert df.loc[("current_potential", "invest")].cell_label_zh == "培养"
    cube = df.loc["cube"]
    default_order = ("HHH", "HHL", "HLH", "HLL", "LHH", "LHL", "LLH", "LLL")
    assert cube["rank"].to_dict() == {c: i for i, c in enumerate(default_order, 1)}
    assert df.drop(index="cube", level="view")["rank"].isna().all()


def test_tier_matrix_ranks_follow_the_configured_order(con) -> None:
    order = tuple(reversed(CUBE_CODES))
    df = matrix(con, CELL_ROWS, CELL_LOYALTY, cube_order=order)
    assert df.loc["cube"]["rank"].to_dict() == {c: i for i, c in enumerate(order, 1)}


def test_tier_matrix_shares_are_null_without_positive_totals(con) -> None:
    rows = [{"customer_key": "a", "net_monetary_12m": 0.0, "profit_12m": -10.0}]
    df = matrix(con, rows, {"a": 0.0})
    assert df.revenue_share.isna().all() and df.profit_share.isna().all()
    assert df.loc[("credit_loyalty", "HL")].customer_share == 1.0


# -- invariants on a random population ------------------------------------------------------


def random_population(seed: int, n: int, as_of: dt.date) -> tuple[pd.DataFrame, dict[str, float]]:
    rng = np.random.default_rng(seed)
    keys = [f"c{i:03d}" for i in range(n)]
    late = rng.choice([np.nan, 0.0, 8.0, 30.0, 90.0], n)
    df = pd.DataFrame(
        {
            "as_of_date": as_of,
            "customer_key": keys,
            "kind": rng.choice(["individual", "enterprise"], n),
            "net_monetary_12m": rng.choice([0.0, 50.0, 100.0, 250.0, 900.0], n),
            "net_monetary_prev_12m": rng.choice([0.0, 80.0, 300.0], n),
            "profit_12m": rng.choice([-20.0, 0.0, 10.0, 40.0, 90.0], n),
            "gross_margin_12m": rng.choice([0.0, 10.0, 30.0], n),
            "purchase_days_12m": rng.integers(0, 6, n),
            "purchase_days_prev_12m": rng.integers(0, 6, n),
            "overdue_count": np.where(late > 0, 2, 0),
            "overdue_open_count": rng.integers(0, 3, n),
            "arrears_ratio": np.where(np.isnan(late), np.nan, rng.choice([0.0, 0.3, 0.8], n)),
            "avg_days_late": late,
            "annual_revenue": rng.choice([np.nan, 1e6, 5e6], n),
            "employees": rng.choice([10, 200], n),
        }
    )
    loyalty = dict(zip(keys, rng.choice([10.0, 50.0, 70.0], n).tolist(), strict=True))
    return df, loyalty


def _both(con, frames: list[tuple[pd.DataFrame, dict[str, float], dt.date]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    c = c360_table(pd.concat([f for f, _, _ in frames], ignore_index=True))
    lo = ibis.union(*[loyalty_table(index, d) for _, index, d in frames])
    tiers_df = con.execute(customer_tiers(c, lo)).sort_values(["as_of_date", "customer_key"]).reset_index(drop=True)
    # the matrix reads the tiers as computed (a memtable keeps each query small and the test fast)
    t = mart_table(tiers_df, CUSTOMER_TIERS)
    matrix_df = con.execute(tier_matrix(t, c)).sort_values(["as_of_date", "view", "cell"]).reset_index(drop=True)
    return tiers_df, matrix_df


def test_every_customer_lands_in_exactly_one_cell_per_view(con) -> None:
    pop, lo = random_population(1, 120, AS_OF)
    tiers_df, matrix_df = _both(con, [(pop, lo, AS_OF)])
    assert len(tiers_df) == 120 and tiers_df.customer_key.is_unique
    assert (matrix_df.groupby("view").customers.sum() == 120).all()
    assert matrix_df.groupby("view").customer_share.sum().to_numpy() == pytest.approx([1.0] * 4)
    assert set(tiers_df.cube_cell) <= set(CUBE_CODES)
    assert (tiers_df.cube_cell.str[:2] == tiers_df.credit_loyalty_cell).all()
    assert (tiers_df.cube_cell.str[2] + tiers_df.cube_cell.str[1] == tiers_df.scale_loyalty_cell).all()


def test_shuffling_input_rows_changes_nothing(con) -> None:
    pop, lo = random_population(2, 80, AS_OF)
    base = _both(con, [(pop, lo, AS_OF)])
    shuffled = pop.sample(frac=1, random_state=5).reset_index(drop=True)
    lo_shuffled = dict(sorted(lo.items(), key=lambda kv: hash(kv[0]) % 97))
    again = _both(con, [(shuffled, lo_shuffled, AS_OF)])
    for a, b in zip(base, again, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_two_as_of_dates_in_one_call_equal_two_calls(con) -> None:
    pop1, lo1 = random_population(3, 60, AS_OF)
    pop2, lo2 = random_population(4, 70, AS_OF_2)
    together = _both(con, [(pop1, lo1, AS_OF), (pop2, lo2, AS_OF_2)])
    apart = [_both(con, [(pop1, lo1, AS_OF)]), _both(con, [(pop2, lo2, AS_OF_2)])]
    for i in range(2):
        pd.testing.assert_frame_equal(together[i], pd.concat([a[i] for a in apart], ignore_index=True))
