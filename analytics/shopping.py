"""Personal shopping lists in the manner of Dick's Supermarkets (DOMAIN.md §10): every
two weeks, customers who spend enough get a list built from their own purchase
history with today's prices and deals, plus offers for the categories they care about.

Why these rules: the list should carry what the customer is about to run out of, not
everything they ever bought, and only for customers whose spend pays for the effort.

- Eligibility: average weekly spend over the last `spend_weeks` (12) weeks — the
  `spend_weeks` × 7 days ending on the as-of date, completed minus returned line
  value — is at least `weekly_spend_threshold` (100 CNY). Compared exactly as
  net spend ≥ threshold × weeks, so rounding never decides.
- Cadence: lists are issued on as-of dates whose distance in days from
  `cadence_anchor` (2025-01-06, a Monday) is a multiple of `every_days` (14). Other
  as-of dates yield no rows at all, so a daily run writes a list every second week
  and the mart holds only issued lists.
- Regular products: bought (completed lines) on at least `min_product_days` (3)
  distinct days up to the as-of date. Interval = mean days between consecutive
  purchase days ((last - first) / (days - 1)). A product is due when days since the
  last purchase + `every_days` ≥ `due_fraction` (0.8) × interval: the customer
  will need it before the next list arrives. A product not bought for more than
  `lapse_intervals` (3) intervals has lapsed (the customer stopped buying it) and
  is left out. Returns do not undo a purchase day: the need was there.
- Current price: the product's unit price on the latest day any customer bought it
  up to the as-of date (several prices that day: the lowest). Usual quantity: the
  mean quantity per purchase day, rounded, at least 1. Deal: the product's discount
  rate over the last `deal_days` (30) days across all customers (discount / list
  value of its completed lines, value-weighted); null when there is none.
- Category offers: the customer's top `offer_categories` (2) categories by net spend
  in the spend window (ties by category name) among those with an offer text in
  `category_offers`, e.g. pet food for pet owners, baby goods for parents. A
  category without an offer text gets no offer rather than a generic one.
- Order on the list (item_rank): due products first, most overdue first (smallest
  due_in_days, then product_id), at most `max_products`; then the offers by spend.

Pure Ibis over order lines that already carry the as-of date they are known by, so
one call builds the lists of every as-of date present.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import pandas as pd

from analytics.portable import cents
from analytics.schema import Col, MartSchema, as_of_col, version_col

# ruff: noqa: E501  (offer texts and column descriptions are documentation; keep them on one line)


def _default_offers() -> dict[str, tuple[str, str]]:
    return {
        "groceries": (
            "Pantry and fresh-food bundle: 10 % off a groceries basket over 150 CNY",
            "生鲜和日常食品组合：食品满 150 元享 9 折",
        ),
        "personal_care": ("Personal-care refills: buy two, get one free", "个人护理补充装：买二送一"),
        "books": ("New releases in the genres you read, 15 % off", "您常读类别的新书 85 折"),
        "toys": (
            "Toys for the age group you buy for: 20 CNY off orders over 200 CNY",
            "按您选购的年龄段推荐玩具：满 200 元减 20 元",
        ),
        "apparel": ("Preview of the season's collection with a 10 % member discount", "当季新品抢先看，会员享 9 折"),
        "beauty": ("Free sample kit with your next beauty order", "下次购买美妆产品赠送试用装"),
        "home": ("Home essentials: free delivery on your next order", "家居必需品：下次订单免运费"),
        "sports": ("15 % off accessories for the sports gear you own", "已购运动器材的配件 85 折"),
        "office": ("Office supplies in bulk packs at volume prices", "办公用品批量装享批量价"),
        "appliances": ("Extended warranty and trade-in credit on appliances", "家电延保服务和以旧换新补贴"),
        "electronics": ("Accessories and a protection plan for your devices, 10 % off", "数码设备配件和保障服务 9 折"),
        "industrial": ("Volume pricing and scheduled delivery for industrial supplies", "工业用品批量价格和定期配送"),
    }


@dataclass(frozen=True)
class ShoppingListParams:
    """Who gets a list, when, and what goes on it (see the module docstring)."""

    #: Average weekly net spend (CNY) from which a customer gets a list.
    weekly_spend_threshold: float = 100.0
    #: Weeks (ending on the as-of date) over which the weekly spend is averaged.
    spend_weeks: int = 12
    #: Days between two lists.
    every_days: int = 14
    #: A date on which lists are issued; lists go out every `every_days` from it (before and after).
    cadence_anchor: dt.date = dt.date(2025, 1, 6)
    #: Distinct purchase days from which a product is a regular one.
    min_product_days: int = 3
    #: A product is due when days since its last purchase + every_days >= this share of its interval.
    due_fraction: float = 0.8
    #: A product not bought for more than this many intervals has lapsed and is left out (None: never).
    lapse_intervals: float | None = 3.0
    #: Most products on one list (the most due ones).
    max_products: int = 20
    #: Days (ending on the as-of date) over which a product's deal rate is measured.
    deal_days: int = 30
    #: Category offers per list (the customer's top categories by spend).
    offer_categories: int = 2
    #: Category -> (offer text, offer text in Chinese).
    category_offers: Mapping[str, tuple[str, str]] = field(default_factory=_default_offers)

    def __post_init__(self) -> None:
        if isinstance(self.cadence_anchor, str):  # YAML may hand over a quoted date
            object.__setattr__(self, "cadence_anchor", dt.date.fromisoformat(self.cadence_anchor))
        if not isinstance(self.cadence_anchor, dt.date):
            raise ValueError(f"cadence_anchor must be a date, got {self.cadence_anchor!r}")
        if self.weekly_spend_threshold < 0:
            raise ValueError("weekly_spend_threshold must not be negative")
        for name in ("spend_weeks", "every_days", "max_products", "deal_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.min_product_days < 2:
            raise ValueError("min_product_days must be at least 2 (an interval needs two purchase days)")
        if not 0 < self.due_fraction <= 2:
            raise ValueError("due_fraction must lie in (0, 2]")
        if self.lapse_intervals is not None and self.lapse_intervals <= 0:
            raise ValueError("lapse_intervals must be positive or None")
        if self.offer_categories < 0:
            raise ValueError("offer_categories must not be negative")
        bad = [
            k
            for k, v in self.category_offers.items()
            if not (isinstance(v, tuple | list) and len(v) == 2 and all(isinstance(s, str) and s for s in v))
        ]
        if bad:
            raise ValueError(f"category_offers values must be (offer, offer_zh) pairs of non-empty texts: {bad}")


_M = "DECIMAL(18,2)"

SHOPPING_LISTS = MartSchema(
    table="marts.shopping_lists",
    description="Personal shopping lists (Dick's Supermarkets): for customers spending over the weekly threshold, every two weeks, their due regular products with current prices and deals, then category offers.",
    key=("customer_key", "item_rank"),
    columns=(
        as_of_col(),
        Col("customer_key", "VARCHAR", "Pseudonymous customer key."),
        Col(
            "item_rank",
            "BIGINT",
            "Position on the list: due products first (most overdue first), then category offers.",
        ),
        Col("item_type", "VARCHAR", "'product' (a regular product that is due) or 'category_offer'."),
        Col("product_id", "VARCHAR", "Product; null for offers."),
        Col("category", "VARCHAR", "Product category (of the product, or of the offer)."),
        Col("times_bought", "BIGINT", "Distinct days the customer bought the product; null for offers."),
        Col(
            "interval_days", "DOUBLE", "The customer's mean days between purchase days of the product; null for offers."
        ),
        Col(
            "days_since_last",
            "BIGINT",
            "Days from the last purchase of the product to the as-of date; null for offers.",
        ),
        Col(
            "due_in_days",
            "DOUBLE",
            "interval_days - days_since_last: days until the product is due (negative = overdue); null for offers.",
        ),
        Col("usual_quantity", "BIGINT", "Mean quantity per purchase day, rounded (at least 1); null for offers."),
        Col(
            "current_price",
            _M,
            "Latest unit price of the product seen up to the as-of date (lowest that day), CNY; null for offers.",
        ),
        Col(
            "deal_rate",
            "DOUBLE",
            "Discount rate of the product over the last deal_days days (discount / list value); null if none or for offers.",
        ),
        Col("offer", "VARCHAR", "Category offer text; null for products."),
        Col("offer_zh", "VARCHAR", "Category offer text in Chinese; null for products."),
        Col("weekly_spend", _M, "The customer's average weekly net spend over the spend window, CNY."),
        version_col(),
    ),
)

_DEC = "decimal(18, 2)"


def _line_value(t: ir.Table) -> ir.DecimalValue:
    return t.quantity.cast(_DEC) * t.unit_price.cast(_DEC) - t.discount.cast(_DEC)


def _days_back(t: ir.Table, days: int) -> ir.BooleanValue:
    """Business date within the `days` days ending on the as-of date."""
    return (t.business_date > t.as_of_date - ibis.interval(days=days)) & (t.business_date <= t.as_of_date)


def shopping_lists(
    lines: ir.Table, params: ShoppingListParams | None = None, *, settings_version: str = ""
) -> ir.Table:
    """The shopping list of every eligible customer on every issue date in `lines`."""
    p = params or ShoppingListParams()
    anchor = ibis.literal(p.cadence_anchor, type="date")
    t = lines.mutate(as_of_date=lines.as_of_date.cast("date"), business_date=lines.business_date.cast("date"))
    t = t.filter(
        t.business_date <= t.as_of_date,
        t.as_of_date.delta(anchor, unit="day") % p.every_days == 0,
    )
    t = t.mutate(_value=_line_value(t))
    completed = t.filter(t.status == "completed")
    keys = ["as_of_date", "customer_key"]

    # Eligibility: net spend in the window >= threshold x weeks.
    window = t.filter(_days_back(t, p.spend_weeks * 7), t.status.isin(["completed", "returned"]))
    window = window.mutate(_signed=ibis.ifelse(window.status == "returned", -window._value, window._value))
    spend = window.group_by(keys).aggregate(_net=window._signed.sum())
    threshold = ibis.literal(round(p.weekly_spend_threshold * p.spend_weeks, 2), type=_DEC)
    eligible = spend.filter(spend._net >= threshold).mutate(_weekly=cents(spend._net.cast("float64") / p.spend_weeks))

    # Regular products of each customer, from purchase days.
    days = completed.group_by([*keys, "product_id", "business_date"]).aggregate(
        _qty=completed.quantity.sum(), _category=completed.category.min()
    )
    prod = days.group_by([*keys, "product_id"]).aggregate(
        times_bought=days.business_date.count(),
        _first=days.business_date.min(),
        _last=days.business_date.max(),
        _mean_qty=days._qty.cast("float64").mean(),
        category=days._category.min(),
    )
    prod = prod.filter(prod.times_bought >= p.min_product_days)
    prod = prod.mutate(
        interval_days=prod._last.delta(prod._first, unit="day").cast("float64")
        / (prod.times_bought - 1).cast("float64"),
        days_since_last=prod.as_of_date.delta(prod._last, unit="day").cast("int64"),
    )
    due = (prod.days_since_last + p.every_days).cast("float64") >= p.due_fraction * prod.interval_days
    if p.lapse_intervals is not None:
        due = due & (prod.days_since_last.cast("float64") <= p.lapse_intervals * prod.interval_days)
    prod = prod.filter(due).mutate(due_in_days=prod.interval_days - prod.days_since_last.cast("float64"))
    prod = prod.mutate(
        _n=ibis.row_number().over(
            ibis.window(group_by=[prod.as_of_date, prod.customer_key], order_by=[prod.due_in_days, prod.product_id])
        )
    )
    prod = prod.filter(prod._n < p.max_products)

    # Current price and deal per product, over all customers' sales known by the as-of date.
    last_day = completed.group_by(["as_of_date", "product_id"]).aggregate(_day=completed.business_date.max())
    at_last = completed.join(
        last_day,
        [
            completed.as_of_date == last_day.as_of_date,
            completed.product_id == last_day.product_id,
            completed.business_date == last_day._day,
        ],
    )
    price = at_last.group_by(["as_of_date", "product_id"]).aggregate(current_price=at_last.unit_price.min())
    recent = completed.filter(_days_back(completed, p.deal_days))
    list_value = (recent.quantity.cast(_DEC) * recent.unit_price.cast(_DEC)).cast("float64")
    deal = recent.group_by(["as_of_date", "product_id"]).aggregate(
        _disc=recent.discount.cast("float64").sum(), _list=list_value.sum()
    )
    deal = deal.mutate(
        deal_rate=ibis.ifelse((deal._list > 0) & (deal._disc > 0), deal._disc / deal._list, ibis.null("float64"))
    )

    offer_now = price.left_join(deal, [price.as_of_date == deal.as_of_date, price.product_id == deal.product_id])
    offer_now = offer_now.select(price.as_of_date, price.product_id, price.current_price, deal.deal_rate)
    items = prod.join(eligible, keys).join(offer_now, ["as_of_date", "product_id"])
    products = items.select(
        as_of_date=items.as_of_date,
        customer_key=items.customer_key,
        _kind=ibis.literal(0, type="int64"),
        _sort=items.due_in_days,
        _tie=items.product_id,
        item_type=ibis.literal("product", type="string"),
        product_id=items.product_id.cast("string"),
        category=items.category.cast("string"),
        times_bought=items.times_bought.cast("int64"),
        interval_days=items.interval_days,
        days_since_last=items.days_since_last,
        due_in_days=items.due_in_days,
        usual_quantity=ibis.greatest(items._mean_qty.round(0), 1.0).cast("int64"),
        current_price=items.current_price.cast(_DEC),
        deal_rate=items.deal_rate.cast("float64"),
        offer=ibis.null("string"),
        offer_zh=ibis.null("string"),
        weekly_spend=items._weekly,
    )

    parts = [products]
    if p.offer_categories > 0 and p.category_offers:
        offers_tab = ibis.memtable(
            pd.DataFrame(
                [(c, en, zh) for c, (en, zh) in sorted(p.category_offers.items())],
                columns=["category", "offer", "offer_zh"],
            )
        )
        cat = window.group_by([*keys, "category"]).aggregate(_net=window._signed.sum())
        cat = cat.filter(cat._net > 0)
        cat = cat.join(offers_tab, "category")
        cat = cat.mutate(
            _n=ibis.row_number().over(
                ibis.window(group_by=[cat.as_of_date, cat.customer_key], order_by=[ibis.desc(cat._net), cat.category])
            )
        )
        cat = cat.filter(cat._n < p.offer_categories).join(eligible, keys)
        parts.append(
            cat.select(
                as_of_date=cat.as_of_date,
                customer_key=cat.customer_key,
                _kind=ibis.literal(1, type="int64"),
                _sort=cat._n.cast("float64"),
                _tie=cat.category.cast("string"),
                item_type=ibis.literal("category_offer", type="string"),
                product_id=ibis.null("string"),
                category=cat.category.cast("string"),
                times_bought=ibis.null("int64"),
                interval_days=ibis.null("float64"),
                days_since_last=ibis.null("int64"),
                due_in_days=ibis.null("float64"),
                usual_quantity=ibis.null("int64"),
                current_price=ibis.null(_DEC),
                deal_rate=ibis.null("float64"),
                offer=cat.offer.cast("string"),
                offer_zh=cat.offer_zh.cast("string"),
                weekly_spend=cat._weekly,
            )
        )
    u = ibis.union(*parts) if len(parts) > 1 else parts[0]
    rank = ibis.row_number().over(
        ibis.window(group_by=[u.as_of_date, u.customer_key], order_by=[u._kind, u._sort, u._tie])
    )
    return u.select(
        as_of_date=u.as_of_date,
        customer_key=u.customer_key.cast("string"),
        item_rank=(rank + 1).cast("int64"),
        item_type=u.item_type,
        product_id=u.product_id,
        category=u.category,
        times_bought=u.times_bought,
        interval_days=u.interval_days,
        days_since_last=u.days_since_last,
        due_in_days=u.due_in_days,
        usual_quantity=u.usual_quantity,
        current_price=u.current_price,
        deal_rate=u.deal_rate,
        offer=u.offer,
        offer_zh=u.offer_zh,
        weekly_spend=u.weekly_spend,
        settings_version=ibis.literal(settings_version, type="string"),
    )
