"""Dick's Supermarkets' personal shopping lists (analytics/shopping.py)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pytest

from analytics.shopping import SHOPPING_LISTS, ShoppingListParams, shopping_lists
from tests import c360_kit
from tests.c360_kit import assert_schema

A = dt.date(2025, 3, 3)  # 56 days after the default anchor 2025-01-06: an issue date
DAY = dt.timedelta(days=1)

_order_ids = itertools.count(1)


def line(customer: str, days_before: int, product: str = "P0", **kw) -> dict:
    """One order line `days_before` days before A (defaults: groceries, 1 x 10 CNY, completed)."""
    return {
        "customer_key": customer,
        "order_id": kw.pop("order_id", f"SO{next(_order_ids)}"),
        "business_date": A - days_before * DAY,
        "product_id": product,
        "category": kw.pop("category", "groceries"),
        "quantity": kw.pop("quantity", 1),
        "unit_price": kw.pop("unit_price", 10.0),
        "discount": kw.pop("discount", 0.0),
        "status": kw.pop("status", "completed"),
        **kw,
    }


def lines_table(rows: list[dict], as_of_dates: list[dt.date] | tuple[dt.date, ...] = (A,)) -> ir.Table:
    """The lines known by each as-of date (business date on or before it)."""
    base = pd.DataFrame(rows)
    frames = [base[base.business_date <= d].assign(as_of_date=d) for d in as_of_dates]
    df = pd.concat(frames, ignore_index=True)
    df = df[["as_of_date", "customer_key", "order_id", "business_date", "product_id", "category", "quantity",
             "unit_price", "discount", "status"]]  # fmt: skip
    return ibis.memtable(df).cast(
        {
            "as_of_date": "date",
            "business_date": "date",
            "quantity": "int64",
            "unit_price": "decimal(18, 2)",
            "discount": "decimal(18, 2)",
        }
    )


def run(con, rows: list[dict], as_of_dates=(A,), **params) -> pd.DataFrame:
    expr = shopping_lists(lines_table(rows, as_of_dates), ShoppingListParams(**params), settings_version="v")
    return c360_kit.run(con, expr, ["as_of_date", "customer_key", "item_rank"])


def big_spender(customer: str, days_before: int = 1, category: str = "books") -> dict:
    return line(customer, days_before, f"BIG-{category}", category=category, unit_price=2000.0)


# -- eligibility and cadence ----------------------------------------------------------------


def test_schema() -> None:
    assert_schema(shopping_lists(lines_table([big_spender("a")])), SHOPPING_LISTS)


def test_eligibility_uses_net_weekly_spend_over_twelve_weeks(con) -> None:
    rows = [
        line("exact", 1, unit_price=1200.0),  # 1200 / 12 = 100.00 per week: eligible
        line("below", 1, unit_price=1199.99),
        line("returns", 5, unit_price=1500.0),
        line("returns", 2, unit_price=400.0, status="returned"),  # net 1100
        line("too_old", 84, unit_price=5000.0),  # the window is the 84 days ending on A
        line("edge_in", 83, unit_price=1200.0),
        line("cancelled", 1, unit_price=5000.0, status="cancelled"),
        line("discounted", 1, unit_price=1300.0, discount=100.0),  # net 1200
    ]
    df = run(con, rows)
    spend = df.groupby("customer_key").weekly_spend.first().to_dict()
    assert spend == {"exact": Decimal("100.00"), "edge_in": Decimal("100.00"), "discounted": Decimal("100.00")}


def test_thirteen_week_window_and_threshold(con) -> None:
    rows = [line("a", 1, unit_price=1200.0), line("b", 90, unit_price=1170.0), line("c", 91, unit_price=5000.0)]
    df = run(con, rows, weekly_spend_threshold=90.0, spend_weeks=13)
    # 1200 / 13 = 92.31 >= 90; 1170 / 13 = 90.00 (exactly the threshold); c's line is 91 days old
    assert df.groupby("customer_key").weekly_spend.first().to_dict() == {
        "a": Decimal("92.31"),
        "b": Decimal("90.00"),
    }


def test_lists_are_issued_every_fourteen_days_only(con) -> None:
    rows = [big_spender("a", 20)]
    dates = [A, A + DAY, A + 13 * DAY, A + 14 * DAY, A - 70 * DAY + 21 * DAY]
    df = run(con, rows, dates)
    # A - 49 days is also on the cadence (-7 weeks), but nothing was bought by then
    assert sorted(set(df.as_of_date.dt.date)) == [A, A + 14 * DAY]
    before_anchor = dt.date(2024, 12, 23)  # 14 days before the anchor
    df = run(con, [line("b", 0, unit_price=5000.0, business_date=before_anchor)], [before_anchor])
    assert df.as_of_date.dt.date.tolist() == [before_anchor]
    df = run(con, rows, dates, every_days=7, cadence_anchor="2025-03-04")
    assert sorted(set(df.as_of_date.dt.date)) == [A + DAY]


# -- regular products -----------------------------------------------------------------------


def due_fixture() -> list[dict]:
    """Customer 'c' (eligible through a 2000 CNY book) and customer 'x' (small, not eligible)."""
    rows = [big_spender("c")]
    # interval 30, last bought 10 days ago: 10 + 14 >= 0.8 x 30 -> due in 20 days
    rows += [line("c", d, "P_DUE", discount=5.0 if d == 40 else 0.0) for d in (70, 40, 10)]
    # one day less since the last purchase: 9 + 14 < 24 -> not due
    rows += [line("c", d, "P_NOT") for d in (69, 39, 9)]
    # 90 days = 3 intervals since the last purchase: still on the list, 60 days overdue
    rows += [line("c", d, "P_LAPSE_EDGE") for d in (150, 120, 90)]
    # 91 days: lapsed
    rows += [line("c", d, "P_LAPSED") for d in (151, 121, 91)]
    # two purchase days only (three lines): not a regular product
    rows += [line("c", d, "P_TWO", category="toys", unit_price=100.0) for d in (30, 20)]
    rows += [line("c", d, "P_SAMEDAY", category="home", unit_price=5.0) for d in (30, 30, 20)]
    # weekly, quantities per day 1+1, 2, 1 -> mean 1.67 -> usual quantity 2; due today
    rows += [line("c", 21, "P_QTY"), line("c", 21, "P_QTY"), line("c", 14, "P_QTY", quantity=2), line("c", 7, "P_QTY")]
    # other customers' sales set today's price and deal of P_DUE
    rows += [
        line("x", 2, "P_DUE", unit_price=12.0, discount=2.0),
        line("x", 2, "P_DUE", unit_price=11.0),
        line("x", -1, "P_DUE", unit_price=99.0),  # after the as-of date: unknown yet
    ]
    return rows


def test_due_products_then_category_offers(con) -> None:
    df = run(con, due_fixture())
    assert set(df.customer_key) == {"c"}
    assert df.item_rank.tolist() == [1, 2, 3, 4, 5]
    assert df.item_type.tolist() == ["product"] * 3 + ["category_offer"] * 2
    products = df[df.item_type == "product"].set_index("product_id")
    assert products.index.tolist() == ["P_LAPSE_EDGE", "P_QTY", "P_DUE"]
    assert products.times_bought.tolist() == [3, 3, 3]
    assert products.interval_days.tolist() == [30.0, 7.0, 30.0]
    assert products.days_since_last.tolist() == [90, 7, 10]
    assert products.due_in_days.tolist() == [-60.0, 0.0, 20.0]
    assert products.usual_quantity.tolist() == [1, 2, 1]
    assert products.category.tolist() == ["groceries"] * 3
    # latest day P_DUE was sold (A - 2) at 12 and 11: the lower; its deal: 2 / (10 + 12 + 11) over 30 days
    assert products.current_price["P_DUE"] == Decimal("11.00")
    assert products.deal_rate["P_DUE"] == pytest.approx(2 / 33)
    assert products.current_price["P_QTY"] == Decimal("10.00") and np.isnan(products.deal_rate["P_QTY"])
    assert products.offer.isna().all()
    # offers: books 2000, toys 200, groceries 10 x (3 + 3 + 5) - 5 = 105, home 15
    offers = df[df.item_type == "category_offer"]
    assert offers.category.tolist() == ["books", "toys"]
    assert offers.offer.str.len().gt(10).all() and offers.offer_zh.str.contains(r"[\u4e00-\u9fff]").all()
    assert offers.product_id.isna().all() and offers.current_price.isna().all()
    # net spend in the 84-day window: 2000 + 105 + 200 + 15 = 2320 -> 193.33 a week
    assert (df.weekly_spend == Decimal("193.33")).all()
    assert (df.settings_version == "v").all()


def test_due_rules_are_parameters(con) -> None:
    df = run(con, due_fixture(), due_fraction=0.75, lapse_intervals=None, min_product_days=2)
    products = df[df.item_type == "product"].product_id.tolist()
    # 0.75 x 30 = 22.5 <= 9 + 14: P_NOT is due; nothing lapses; two purchase days are enough
    # (P_SAMEDAY and P_TWO tie at 10 days overdue: product_id decides)
    assert products == ["P_LAPSED", "P_LAPSE_EDGE", "P_SAMEDAY", "P_TWO", "P_QTY", "P_DUE", "P_NOT"]
    df = run(con, due_fixture(), max_products=2, offer_categories=3)
    assert df.product_id.tolist()[:2] == ["P_LAPSE_EDGE", "P_QTY"]
    assert df.category.tolist()[2:] == ["books", "toys", "groceries"]
    assert df.item_rank.tolist() == [1, 2, 3, 4, 5]


def test_offers_come_from_the_configured_mapping(con) -> None:
    offers = {"toys": ("Toy offer", "玩具优惠"), "home": ("Home offer", "家居优惠"), "groceries": ("Food", "食品")}
    df = run(con, due_fixture(), category_offers=offers, max_products=1)
    # books has no offer text: the next categories by spend take the two places
    assert df.category.tolist() == ["groceries", "toys", "groceries"]
    assert df.offer.tolist()[1:] == ["Toy offer", "Food"] and df.offer_zh.tolist()[1:] == ["玩具优惠", "食品"]
    df = run(con, due_fixture(), offer_categories=0)
    assert (df.item_type == "product").all()


def test_offer_ties_break_by_category_and_customers_without_items_get_no_list(con) -> None:
    rows = [line("t", 1, f"X{i}", category=c, unit_price=700.0) for i, c in enumerate(["toys", "beauty", "apparel"])]
    df = run(con, rows)
    assert df.category.tolist() == ["apparel", "beauty"]
    df = run(con, rows, category_offers={"sports": ("Sport", "运动")})
    assert df.empty


# -- parameters and invariants --------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("weekly_spend_threshold", -1.0),
        ("spend_weeks", 0),
        ("every_days", 0),
        ("max_products", 0),
        ("deal_days", 0),
        ("min_product_days", 1),
        ("due_fraction", 0.0),
        ("lapse_intervals", 0.0),
        ("offer_categories", -1),
        ("category_offers", {"toys": ("only English",)}),
        ("category_offers", {"toys": ("", "空")}),
        ("cadence_anchor", 20250106),
    ],
)
def test_bad_parameters_are_rejected(field: str, value) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        ShoppingListParams(**{field: value})


def test_cadence_anchor_accepts_an_iso_string() -> None:
    assert ShoppingListParams(cadence_anchor="2025-01-20").cadence_anchor == dt.date(2025, 1, 20)


def random_lines(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    cats = ["groceries", "books", "toys", "pets"]
    rows = []
    for i in range(600):
        cust = f"k{rng.integers(0, 12)}"
        prod = f"R{rng.integers(0, 15)}"
        rows.append(
            line(
                cust,
                int(rng.integers(-20, 200)),
                prod,
                category=cats[int(prod[1:]) % 4],
                quantity=int(rng.integers(1, 4)),
                unit_price=float(rng.choice([9.9, 60.0, 150.0])),
                discount=float(rng.choice([0.0, 0.0, 1.5])),
                status=str(rng.choice(["completed"] * 8 + ["returned", "cancelled"])),
                order_id=f"R{i}",
            )
        )
    return rows


def test_shuffling_input_rows_changes_nothing(con) -> None:
    rows = random_lines(1)
    base = run(con, rows, (A, A + 14 * DAY))
    assert len(base) > 20 and set(base.item_type) == {"product", "category_offer"}
    assert not base.duplicated(["as_of_date", "customer_key", "item_rank"]).any()
    rng = np.random.default_rng(9)
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    pd.testing.assert_frame_equal(base, run(con, shuffled, (A, A + 14 * DAY)))


def test_two_as_of_dates_in_one_call_equal_two_calls(con) -> None:
    rows = random_lines(2)
    together = run(con, rows, (A, A + 14 * DAY))
    apart = pd.concat([run(con, rows, (A,)), run(con, rows, (A + 14 * DAY,))], ignore_index=True)
    pd.testing.assert_frame_equal(together, apart)
    # ranks run 1..n per list without gaps
    ranks = together.groupby(["as_of_date", "customer_key"]).item_rank
    assert (ranks.max() == ranks.count()).all() and (ranks.min() == 1).all()
