"""Customer 360: one row per resolved customer and as-of date with every fact the
value marts start from (DOMAIN.md §1: transaction, payment and loyalty fields).

Everything downstream (RFM, value tiers, tier matrix, lifecycle, loyalty, churn
warnings) reads this table rather than the raw feeds, so a definition such as
"purchase cycle" or "profit" exists exactly once.

Conventions:
- Facts are computed per (as_of_date, customer_key) for a whole table of as-of dates
  at once (`as_of` has one column, `as_of_date`): a backfill computes a month of
  snapshots in one query instead of thirty.
- A row only uses data known by the end of its as-of day: events whose business date
  *and* delivery day (`_partition_date`) are on or before the as-of date; customer and
  invoice records in their newest version delivered by then.
- Purchases are counted on purchase *days* (several orders on one day are one
  purchase occasion), as in the CLV literature.
- "12m" windows are the 365 days ending on the as-of date; "prev_12m" the 365 days
  before those.
- Money is DECIMAL(18,2); ratios and averages of days are DOUBLE.

Profit is not in the feeds (they carry prices, not costs), so it is derived with
documented parameters (`Customer360Params`): gross margin = net line value x the
category's margin rate; cost to serve = returns and complaints handled; marketing
cost = acquisition cost (in the year the customer signed up) + a yearly retention
budget + campaign responses x their cost. Profit = margin - cost to serve -
marketing cost. Customers whose margin does not cover what was spent on them have
negative profit, as in the seed's appliance example.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from analytics.asof import known, newest
from analytics.identity import Scratch
from analytics.portable import cents
from analytics.satisfaction.cleaning import classify_responses
from analytics.schema import Col, MartSchema, as_of_col, version_col

# ruff: noqa: E501  (column descriptions are documentation; keep them on one line)


def _default_margins() -> dict[str, float]:
    return {
        "groceries": 0.18,
        "personal_care": 0.35,
        "books": 0.25,
        "toys": 0.30,
        "apparel": 0.45,
        "beauty": 0.50,
        "home": 0.30,
        "sports": 0.30,
        "office": 0.22,
        "appliances": 0.20,
        "electronics": 0.12,
        "industrial": 0.18,
    }


@dataclass(frozen=True)
class Customer360Params:
    """How profit is derived from revenue and the costs the feeds record, and what
    counts as a full-price purchase."""

    #: Gross margin rate per product category (share of net line value).
    category_margins: Mapping[str, float] = field(default_factory=_default_margins)
    #: Margin rate of a category not listed above.
    default_margin: float = 0.25
    #: Cost of handling one returned order, CNY.
    return_cost: float = 15.0
    #: Cost of handling one complaint, CNY.
    complaint_cost: float = 40.0
    #: Marketing cost allocated per campaign response, CNY.
    campaign_cost: float = 8.0
    #: Retention marketing budget allocated to every customer per year, CNY.
    yearly_marketing_cost: float = 20.0
    #: A line is bought at full price when its discount is below this share of its list
    #: value (order systems book cent rounding as discount).
    full_price_tolerance: float = 0.01

    def __post_init__(self) -> None:
        bad = {k: v for k, v in {**self.category_margins, "default": self.default_margin}.items() if not -1 < v < 1}
        if bad:
            raise ValueError(f"margin rates must lie between -1 and 1: {bad}")
        for name in ("return_cost", "complaint_cost", "campaign_cost", "yearly_marketing_cost"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


_M = "DECIMAL(18,2)"

CUSTOMER_360 = MartSchema(
    table="marts.customer_360",
    description="Customer 360 view: one row per resolved customer (customer_key) and as-of date, every customer known by then, buyers or not.",
    key=("customer_key",),
    columns=(
        as_of_col(),
        Col(
            "customer_key",
            "VARCHAR",
            "Pseudonymous customer key (HMAC of the customer's anchor record; see marts.customer_identity).",
        ),
        Col(
            "kind",
            "VARCHAR",
            "Customer kind by nature: individual, enterprise, government, partner, internal (of the anchor record).",
        ),
        Col("kind_zh", "VARCHAR", "Customer kind in Chinese: 个人消费者, 企业客户, 政府机构, 中间客户, 内部客户."),
        Col("region", "VARCHAR", "Province-level region of the anchor record."),
        Col("records", "BIGINT", "Source customer records merged into this customer."),
        Col("signup_date", "DATE", "Earliest signup date over the customer's records."),
        Col("tenure_days", "BIGINT", "Days from signup_date to as_of_date (relationship length)."),
        Col("acquisition_channel", "VARCHAR", "Acquisition channel of the anchor record."),
        Col("acquisition_cost", _M, "Acquisition cost summed over the customer's records, CNY."),
        Col("employees", "BIGINT", "Head count (organisations; largest over the records), else null."),
        Col("annual_revenue", _M, "Annual revenue (organisations; largest over the records), CNY, else null."),
        Col(
            "has_purchased",
            "BOOLEAN",
            "At least one completed purchase by as_of_date (a trading customer, not a prospect).",
        ),
        Col("first_purchase_date", "DATE", "First completed purchase day; null without purchases."),
        Col("last_purchase_date", "DATE", "Last completed purchase day; null without purchases."),
        Col("order_count", "BIGINT", "Distinct completed orders."),
        Col("purchase_days", "BIGINT", "Distinct purchase days (purchase occasions)."),
        Col("frequency", "BIGINT", "Repeat purchase days: purchase_days - 1 (BG/NBD x); null without purchases."),
        Col(
            "recency_days",
            "BIGINT",
            "Days from the first to the last purchase day (BG/NBD t_x); null without purchases.",
        ),
        Col(
            "days_since_last",
            "BIGINT",
            "Days from the last purchase day to as_of_date (RFM recency); null without purchases.",
        ),
        Col("age_days", "BIGINT", "Days from the first purchase day to as_of_date (BG/NBD T); null without purchases."),
        Col(
            "purchase_cycle_days",
            "DOUBLE",
            "Mean days between consecutive purchase days (recency_days / frequency); null below two purchase days.",
        ),
        Col("last_gap_days", "BIGINT", "Days between the last two purchase days; null below two purchase days."),
        Col(
            "max_gap_days",
            "BIGINT",
            "Longest interval between consecutive purchase days; null below two purchase days.",
        ),
        Col("purchase_days_12m", "BIGINT", "Purchase days in the 365 days ending on as_of_date (purchase frequency)."),
        Col(
            "purchase_days_prev_12m", "BIGINT", "Purchase days in the 365 days before those (for the frequency trend)."
        ),
        Col("gross_amount", _M, "Completed line value (quantity x unit price - discount), CNY."),
        Col("returns_amount", _M, "Value of returned lines, CNY."),
        Col("return_count", "BIGINT", "Distinct return orders."),
        Col("net_monetary", _M, "gross_amount - returns_amount, CNY."),
        Col("net_monetary_12m", _M, "Net value (completed minus returned lines) in the last 365 days, CNY."),
        Col("net_monetary_prev_12m", _M, "Net value in the 365 days before those, CNY."),
        Col("avg_order_value", _M, "gross_amount / order_count, CNY; null without orders."),
        Col("max_order_value", _M, "Largest completed order value, CNY; null without orders."),
        Col(
            "avg_repeat_value",
            _M,
            "Mean completed value per repeat purchase day (after the first), CNY; null without repeat purchases (Gamma-Gamma's m).",
        ),
        Col("category_count", "BIGINT", "Distinct product categories bought (category breadth)."),
        Col("discount_share", "DOUBLE", "Discount granted / list value of completed lines; null without orders."),
        Col(
            "full_price_share",
            "DOUBLE",
            "Share of completed lines bought at full price (discount below full_price_tolerance of list value); null without orders.",
        ),
        Col(
            "repeat_purchase_rate",
            "DOUBLE",
            "Share of purchase occasions that were repeats: frequency / purchase_days; null without purchases.",
        ),
        Col("invoiced_amount", _M, "Amount invoiced (current invoice versions issued by as_of_date), CNY."),
        Col("outstanding_balance", _M, "Invoiced amount not paid by as_of_date (欠款额), CNY."),
        Col(
            "overdue_count",
            "BIGINT",
            "Invoices paid after their due date, or unpaid and past due at as_of_date (逾期付款次数).",
        ),
        Col("overdue_open_count", "BIGINT", "Invoices unpaid and past due at as_of_date."),
        Col(
            "avg_collection_days",
            "DOUBLE",
            "Mean days from invoice to payment over paid invoices (平均收款周期); null without paid invoices.",
        ),
        Col(
            "avg_days_late",
            "DOUBLE",
            "Mean days paid after the due date over paid invoices (0 when on time); null without paid invoices.",
        ),
        Col("arrears_ratio", "DOUBLE", "outstanding_balance / invoiced_amount (平均欠款率); null without invoices."),
        Col("complaints", "BIGINT", "Complaints recorded."),
        Col("praises", "BIGINT", "Praise recorded."),
        Col("suggestions", "BIGINT", "Suggestions recorded."),
        Col("campaign_responses", "BIGINT", "Campaign responses recorded."),
        Col("complaint_ratio", "DOUBLE", "complaints / (complaints + praises + suggestions); null without any."),
        Col("praise_ratio", "DOUBLE", "praises / (complaints + praises + suggestions); null without any."),
        Col("suggestion_ratio", "DOUBLE", "suggestions / (complaints + praises + suggestions); null without any."),
        Col("campaign_responses_12m", "BIGINT", "Campaign responses in the last 365 days."),
        Col(
            "surveys",
            "BIGINT",
            "Survey responses kept by the survey cleaning rules (analytics/satisfaction/cleaning.py).",
        ),
        Col("satisfaction", "DOUBLE", "Mean of sat_1..sat_3 (1-10) in the latest kept survey response; null if none."),
        Col("recommend", "BIGINT", "Likelihood to recommend (0-10) in the latest kept survey response; null if none."),
        Col("gross_margin", _M, "Net line value x category margin rate (Customer360Params), CNY, lifetime to date."),
        Col(
            "marketing_cost",
            _M,
            "Marketing cost allocated to date: acquisition + yearly retention budget per started year since signup + campaign responses x cost, CNY.",
        ),
        Col("service_cost", _M, "Cost to serve to date: returns x return cost + complaints x complaint cost, CNY."),
        Col("profit", _M, "gross_margin - marketing_cost - service_cost, CNY (can be negative)."),
        Col("gross_margin_12m", _M, "Gross margin in the last 365 days, CNY."),
        Col(
            "marketing_cost_12m",
            _M,
            "Marketing cost allocated to the last 365 days: acquisition cost if signed up in them, the yearly budget, campaign responses x cost, CNY.",
        ),
        Col(
            "profit_12m",
            _M,
            "Annual profit: gross_margin_12m - marketing_cost_12m - service cost of the last 365 days, CNY.",
        ),
        version_col(),
    ),
)

#: Purchase-day history: one row per customer, as-of date and purchase day, for the
#: marts that need more than the 360 summary (cohorts, churn per period).
PURCHASE_DAYS_COLUMNS = ("as_of_date", "customer_key", "purchase_date", "net_amount")

KIND_ZH: dict[str, str] = {
    "individual": "个人消费者",
    "enterprise": "企业客户",
    "government": "政府机构",
    "partner": "中间客户",
    "internal": "内部客户",
}


# --- computation ---------------------------------------------------------------------------

YEAR_DAYS = 365
_DEC = "decimal(18, 2)"


def _keyed(events: ir.Table, identity: ir.Table) -> ir.Table:
    """Attach customer_key by (as_of_date, customer_ref); events of unknown records drop out
    here, which the router already prevents (UNKNOWN_CUSTOMER is quarantined)."""
    ident = identity.select("as_of_date", "customer_ref", "customer_key")
    return events.join(ident, ["as_of_date", "customer_ref"]).drop("customer_ref")


def keyed_lines(orders: ir.Table, identity: ir.Table, as_of: ir.Table) -> ir.Table:
    """Order lines known by each as-of date, with the customer_key of their record."""
    return _keyed(known(orders, as_of), identity)


def _dec(value: ir.Value) -> ir.DecimalValue:
    return value.cast(_DEC)


def _zero() -> ir.DecimalValue:
    return ibis.literal(0, type=_DEC)


def _ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    return ibis.ifelse(den == 0, ibis.null("float64"), num.cast("float64") / den.cast("float64"))


def purchase_days(lines: ir.Table) -> ir.Table:
    """One row per (as_of_date, customer_key, purchase_date): completed value that day."""
    done = lines.filter(lines.status == "completed")
    value = done.quantity.cast(_DEC) * done.unit_price - done.discount
    done = done.mutate(_value=value)
    return done.group_by(["as_of_date", "customer_key", done.business_date.name("purchase_date")]).aggregate(
        net_amount=done._value.sum().cast(_DEC)
    )


#: Order lines per part when the purchase days are kept (`kept_purchase_days`). DuckDB does
#: not spill the (customer, day) aggregate with its DECIMAL sums: at 100M lines (52M
#: purchase days) under a 4 GB budget it failed in one piece and fits in parts this size.
PURCHASE_DAY_PART_LINES = 25_000_000


def kept_purchase_days(
    scratch: Scratch, orders: ir.Table, identity: ir.Table, as_of: ir.Table, parts: int | None = None
) -> ir.Table:
    """`purchase_days` of the keyed lines as a scratch table, aggregated in `parts` disjoint
    groups of customers (default: one per PURCHASE_DAY_PART_LINES staged order lines). The
    rows are the same for any number of parts; only the peak memory differs."""
    lines = keyed_lines(orders, identity, as_of)
    if parts is None:
        parts = max(1, -(-int(orders.count().execute()) // PURCHASE_DAY_PART_LINES))
    if parts == 1:
        return scratch.keep(purchase_days(lines))
    bucket = (lines.customer_key.hash() % parts + parts) % parts  # the hash may be negative
    return scratch.keep_parts([purchase_days(lines.filter(bucket == i)) for i in range(parts)])


def _windows(day: ir.DateValue, as_of: ir.DateValue) -> dict[str, ir.BooleanValue]:
    """`_in12`: `day` in the 365 days ending on the as-of date; `_inprev`: in the 365 before."""
    year_ago = as_of - ibis.interval(days=YEAR_DAYS)
    return {"_in12": day > year_ago, "_inprev": (day > year_ago - ibis.interval(days=YEAR_DAYS)) & (day <= year_ago)}


def _purchase_facts(lines: ir.Table, margins: ir.Table, params: Customer360Params) -> ir.Table:
    """Line and order facts per (as_of_date, customer_key); the purchase-day facts are
    `_day_facts`'.

    Distinct counts are taken in two steps (lines -> orders, purchase days -> customers):
    one COUNT(DISTINCT) per fact and filter made the engine keep seven hash sets per
    customer, the largest cost of the 360 at scale."""
    m = lines.left_join(margins, "category")
    rate = m.margin_rate.fill_null(params.default_margin)
    value_m = m.quantity.cast(_DEC) * m.unit_price - m.discount
    t = m.mutate(
        _value=value_m,
        _list=m.quantity.cast(_DEC) * m.unit_price,
        # in DECIMAL: a float product rounded to cents lands on the other side of a half
        # cent depending on the engine (DuckDB scales then rounds, Spark rounds the exact binary value)
        _margin=value_m * rate.cast("decimal(18, 6)"),
        _done=m.status == "completed",
        _ret=m.status == "returned",
        **_windows(m.business_date, m.as_of_date),
    )
    keys = ["as_of_date", "customer_key"]
    g = t.group_by(keys)
    facts = g.aggregate(
        gross_amount=t._value.sum(where=t._done),
        returns_amount=t._value.sum(where=t._ret),
        sold_12m=t._value.sum(where=t._done & t._in12),
        returned_12m=t._value.sum(where=t._ret & t._in12),
        sold_prev=t._value.sum(where=t._done & t._inprev),
        returned_prev=t._value.sum(where=t._ret & t._inprev),
        category_count=t.category.nunique(where=t._done),
        discount_total=t.discount.sum(where=t._done),
        list_total=t._list.sum(where=t._done),
        lines_done=t.count(where=t._done),
        full_price_lines=t.count(where=t._done & (t.discount < t._list * params.full_price_tolerance)),
        margin_sold=t._margin.sum(where=t._done),
        margin_returned=t._margin.sum(where=t._ret),
        margin_sold_12m=t._margin.sum(where=t._done & t._in12),
        margin_returned_12m=t._margin.sum(where=t._ret & t._in12),
    )
    o = t.group_by([*keys, "order_id"]).aggregate(
        done=t._done.any(), ret=t._ret.any(), ret12=(t._ret & t._in12).any(), v=t._value.sum(where=t._done)
    )
    orders = o.group_by(keys).aggregate(
        order_count=o.count(where=o.done),
        return_count=o.count(where=o.ret),
        returns_12m=o.count(where=o.ret12),
        max_order_value=o.v.max(),
    )
    return facts.left_join(orders, keys).drop("as_of_date_right", "customer_key_right")


def _day_facts(days: ir.Table) -> ir.Table:
    """Purchase-day facts per (as_of_date, customer_key): first and last, counts in the
    windows, and the gaps between consecutive purchase days."""
    w = ibis.window(group_by=[days.as_of_date, days.customer_key], order_by=days.purchase_date)
    prev = days.purchase_date.lag().over(w)
    d = days.mutate(_gap=days.purchase_date.delta(prev, unit="day"), **_windows(days.purchase_date, days.as_of_date))
    last = ibis.row_number().over(group_by=[d.as_of_date, d.customer_key], order_by=d.purchase_date.desc())
    d = d.mutate(_last=last)
    return d.group_by(["as_of_date", "customer_key"]).aggregate(
        first_purchase_date=d.purchase_date.min(),
        last_purchase_date=d.purchase_date.max(),
        purchase_days=d.count(),
        purchase_days_12m=d.count(where=d._in12),
        purchase_days_prev_12m=d.count(where=d._inprev),
        max_gap_days=d._gap.max(),
        last_gap_days=d._gap.max(where=d._last == 0),
        repeat_value=d.net_amount.sum(where=d._gap.notnull()),
    )


def _payment_facts(payments: ir.Table, identity: ir.Table, as_of: ir.Table) -> ir.Table:
    inv = newest(known(payments, as_of), "invoice_id")
    inv = _keyed(inv, identity)
    paid = inv.paid_date.notnull() & (inv.paid_date <= inv.as_of_date)
    t = inv.mutate(
        _paid=paid,
        _late=paid & (inv.paid_date > inv.due_date),
        _open_overdue=~paid & (inv.due_date < inv.as_of_date),
        _collect=ibis.ifelse(paid, inv.paid_date.delta(inv.invoice_date, unit="day"), ibis.null("int64")),
        _days_late=ibis.ifelse(
            paid, ibis.greatest(inv.paid_date.delta(inv.due_date, unit="day"), 0), ibis.null("int64")
        ),
    )
    return t.group_by(["as_of_date", "customer_key"]).aggregate(
        invoiced_amount=t.amount.sum(),
        outstanding_balance=t.amount.sum(where=~t._paid),
        overdue_count=t.count(where=t._late | t._open_overdue),
        overdue_open_count=t.count(where=t._open_overdue),
        avg_collection_days=t._collect.mean(),
        avg_days_late=t._days_late.mean(),
    )


def _interaction_facts(interactions: ir.Table, identity: ir.Table, as_of: ir.Table) -> ir.Table:
    t = _keyed(known(interactions, as_of), identity)
    t = t.mutate(_in12=_windows(t.business_date, t.as_of_date)["_in12"])
    return t.group_by(["as_of_date", "customer_key"]).aggregate(
        complaints=t.count(where=t.type == "complaint"),
        praises=t.count(where=t.type == "praise"),
        suggestions=t.count(where=t.type == "suggestion"),
        campaign_responses=t.count(where=t.type == "campaign_response"),
        campaign_responses_12m=t.count(where=(t.type == "campaign_response") & t._in12),
        complaints_12m=t.count(where=(t.type == "complaint") & t._in12),
    )


def _survey_facts(surveys: ir.Table, identity: ir.Table, as_of: ir.Table) -> ir.Table:
    s = known(surveys, as_of)
    s = classify_responses(_keyed(s.filter(s.customer_ref.notnull()), identity))
    s = s.filter(~s.excluded)
    latest = ibis.row_number().over(
        group_by=[s.as_of_date, s.customer_key], order_by=[s.started_at.desc(), s.response_id.desc()]
    )
    s = s.mutate(_n=latest, _sat=(s.sat_1 + s.sat_2 + s.sat_3).cast("float64") / 3)
    return s.group_by(["as_of_date", "customer_key"]).aggregate(
        surveys=s.count(),
        satisfaction=s._sat.max(where=s._n == 0),
        recommend=s.recommend.max(where=s._n == 0),
    )


def _profile(records: ir.Table, identity: ir.Table) -> ir.Table:
    r = records.join(
        identity.select("as_of_date", "customer_ref", "customer_key", "anchor_ref"), ["as_of_date", "customer_ref"]
    )
    is_anchor = r.customer_ref == r.anchor_ref
    g = r.group_by(["as_of_date", "customer_key"])
    return g.aggregate(
        kind=r.kind.max(where=is_anchor),
        region=r.region.max(where=is_anchor),
        acquisition_channel=r.acquisition_channel.max(where=is_anchor),
        records=r.count(),
        signup_date=r.signup_date.min(),
        acquisition_cost=r.acquisition_cost.sum(),
        employees=r.employees.max(),
        annual_revenue=r.annual_revenue.max(),
    )


def customer_360(
    *,
    records: ir.Table,
    identity: ir.Table,
    orders: ir.Table,
    payments: ir.Table,
    interactions: ir.Table,
    surveys: ir.Table,
    as_of: ir.Table,
    params: Customer360Params,
    settings_version: str = "",
) -> ir.Table:
    """marts.customer_360 for every as-of date in `as_of`.

    `records` are the customer records as of each date (identity.current_records) and
    `identity` their keys (marts.customer_identity rows); the feeds are the staging
    tables with all their versions."""
    lines = keyed_lines(orders, identity, as_of)
    margins = ibis.memtable(
        {
            "category": list(params.category_margins),
            "margin_rate": [float(v) for v in params.category_margins.values()],
        },
        schema={"category": "string", "margin_rate": "float64"},
    )
    keys = ["as_of_date", "customer_key"]
    base = _profile(records, identity)
    j = (
        base.left_join(_purchase_facts(lines, margins, params), keys)
        .drop("as_of_date_right", "customer_key_right")
        .left_join(_day_facts(purchase_days(lines)), keys)
        .drop("as_of_date_right", "customer_key_right")
        .left_join(_payment_facts(payments, identity, as_of), keys)
        .drop("as_of_date_right", "customer_key_right")
        .left_join(_interaction_facts(interactions, identity, as_of), keys)
        .drop("as_of_date_right", "customer_key_right")
        .left_join(_survey_facts(surveys, identity, as_of), keys)
        .drop("as_of_date_right", "customer_key_right")
    )
    z = _zero()
    n = lambda c: j[c].fill_null(0).cast("int64")  # noqa: E731
    money = lambda c: j[c].fill_null(z).cast(_DEC)  # noqa: E731
    bought = j.purchase_days.fill_null(0) > 0
    frequency = ibis.ifelse(bought, j.purchase_days - 1, ibis.null("int64"))
    recency = j.last_purchase_date.delta(j.first_purchase_date, unit="day")
    tenure = j.as_of_date.delta(j.signup_date, unit="day")
    gross, returned = money("gross_amount"), money("returns_amount")
    complaints, praises, suggestions = n("complaints"), n("praises"), n("suggestions")
    service_total = complaints + praises + suggestions
    acq = money("acquisition_cost")
    years_started = (tenure / YEAR_DAYS).floor().cast("int64") + 1
    gross_margin = (j.margin_sold.fill_null(0) - j.margin_returned.fill_null(0)).round(2).cast(_DEC)
    gross_margin_12m = (j.margin_sold_12m.fill_null(0) - j.margin_returned_12m.fill_null(0)).round(2).cast(_DEC)
    marketing = (
        acq + _dec(years_started * params.yearly_marketing_cost) + _dec(n("campaign_responses") * params.campaign_cost)
    ).cast(_DEC)
    new_in_year = j.signup_date > (j.as_of_date - ibis.interval(days=YEAR_DAYS))
    marketing_12m = (
        ibis.ifelse(new_in_year, acq, z)
        + _dec(ibis.literal(params.yearly_marketing_cost))
        + _dec(n("campaign_responses_12m") * params.campaign_cost)
    ).cast(_DEC)
    service = _dec(n("return_count") * params.return_cost + complaints * params.complaint_cost)
    service_12m = _dec(n("returns_12m") * params.return_cost + n("complaints_12m") * params.complaint_cost)
    invoiced = j.invoiced_amount
    return j.select(
        as_of_date=j.as_of_date,
        customer_key=j.customer_key,
        kind=j.kind,
        kind_zh=j.kind.substitute(KIND_ZH),
        region=j.region,
        records=j.records.cast("int64"),
        signup_date=j.signup_date,
        tenure_days=tenure.cast("int64"),
        acquisition_channel=j.acquisition_channel,
        acquisition_cost=acq,
        employees=j.employees.cast("int64"),
        annual_revenue=j.annual_revenue.cast(_DEC),
        has_purchased=bought,
        first_purchase_date=j.first_purchase_date,
        last_purchase_date=j.last_purchase_date,
        order_count=n("order_count"),
        purchase_days=n("purchase_days"),
        frequency=frequency.cast("int64"),
        recency_days=recency.cast("int64"),
        days_since_last=j.as_of_date.delta(j.last_purchase_date, unit="day").cast("int64"),
        age_days=j.as_of_date.delta(j.first_purchase_date, unit="day").cast("int64"),
        purchase_cycle_days=_ratio(recency, frequency),
        last_gap_days=j.last_gap_days.cast("int64"),
        max_gap_days=j.max_gap_days.cast("int64"),
        purchase_days_12m=n("purchase_days_12m"),
        purchase_days_prev_12m=n("purchase_days_prev_12m"),
        gross_amount=gross,
        returns_amount=returned,
        return_count=n("return_count"),
        net_monetary=(gross - returned).cast(_DEC),
        net_monetary_12m=(money("sold_12m") - money("returned_12m")).cast(_DEC),
        net_monetary_prev_12m=(money("sold_prev") - money("returned_prev")).cast(_DEC),
        avg_order_value=ibis.ifelse(
            n("order_count") > 0, cents(gross.cast("float64") / n("order_count")), ibis.null(_DEC)
        ),
        max_order_value=j.max_order_value.cast(_DEC),
        avg_repeat_value=ibis.ifelse(frequency > 0, cents(j.repeat_value.cast("float64") / frequency), ibis.null(_DEC)),
        category_count=n("category_count"),
        discount_share=_ratio(j.discount_total.fill_null(z), j.list_total.fill_null(z)),
        full_price_share=_ratio(n("full_price_lines"), n("lines_done")),
        repeat_purchase_rate=_ratio(frequency, j.purchase_days),
        invoiced_amount=money("invoiced_amount"),
        outstanding_balance=money("outstanding_balance"),
        overdue_count=n("overdue_count"),
        overdue_open_count=n("overdue_open_count"),
        avg_collection_days=j.avg_collection_days.cast("float64"),
        avg_days_late=j.avg_days_late.cast("float64"),
        arrears_ratio=_ratio(money("outstanding_balance"), invoiced.fill_null(z)),
        complaints=complaints,
        praises=praises,
        suggestions=suggestions,
        campaign_responses=n("campaign_responses"),
        complaint_ratio=_ratio(complaints, service_total),
        praise_ratio=_ratio(praises, service_total),
        suggestion_ratio=_ratio(suggestions, service_total),
        campaign_responses_12m=n("campaign_responses_12m"),
        surveys=n("surveys"),
        satisfaction=j.satisfaction.cast("float64"),
        recommend=j.recommend.cast("int64"),
        gross_margin=gross_margin,
        marketing_cost=marketing,
        service_cost=service,
        profit=(gross_margin - marketing - service).cast(_DEC),
        gross_margin_12m=gross_margin_12m,
        marketing_cost_12m=marketing_12m,
        profit_12m=(gross_margin_12m - marketing_12m - service_12m).cast(_DEC),
        settings_version=ibis.literal(settings_version, type="string"),
    )


# --- the nightly increment ---------------------------------------------------------------
#
# A nightly run adds one as-of date D to a warehouse that already holds D-1. Most customers'
# rows then differ from yesterday's only by the clock: tenure, days since the last purchase
# and age grow by a day. `nightly_changes` finds every customer for whom anything else can
# differ; only those are recomputed from their whole history (the joins to their keys keep the
# work proportional to them), the rest are carried forward. The cost of a night is then set by
# the customers and the day's deliveries, not by the length of the order history.

#: Columns of a carried-forward row that move with the clock alone, by one per day.
CLOCK_COLUMNS = ("tenure_days", "days_since_last", "age_days")


def nightly_changes(
    *,
    day: dt.date,
    records: ir.Table,
    identity: ir.Table,
    previous_identity: ir.Table,
    customers: ir.Table,
    orders: ir.Table,
    payments: ir.Table,
    interactions: ir.Table,
    surveys: ir.Table,
) -> ir.Table:
    """customer_key (column of that name, keys of `day`) whose 360 row on `day` can differ from
    the row of the day before by more than CLOCK_COLUMNS.

    A row changes when a row of its history becomes known (delivered on `day`, or dated `day`
    after an earlier delivery), when something crosses a boundary of the as-of date: a line or
    interaction leaves the 12m window (dated `day` - 365) or the previous-12m window (`day` - 730),
    an invoice is paid on `day` or fell due the day before, the signup anniversary starts a new
    marketing year; or when identity resolution moved records between keys (or changed an
    anchor). `records` and `identity` are of `day`, `previous_identity` of the day before; the
    feeds are the staging tables."""
    d = ibis.literal(day, type="date")
    year = ibis.literal(day - dt.timedelta(days=YEAR_DAYS), type="date")
    two_years = ibis.literal(day - dt.timedelta(days=2 * YEAR_DAYS), type="date")

    def refs(t: ir.Table, *also: ir.BooleanValue) -> ir.Table:
        cond = (t._partition_date == d) | (t.business_date == d)
        for c in also:
            cond = cond | c
        return t.filter(cond & t.customer_ref.notnull()).select("customer_ref")

    anniversary = (d.delta(records.signup_date, unit="day") % YEAR_DAYS) == 0
    touched = ibis.union(
        refs(customers),
        refs(orders, orders.business_date == year, orders.business_date == two_years),
        refs(payments, payments.paid_date == d, payments.due_date == d - ibis.interval(days=1)),
        refs(interactions, interactions.business_date == year),
        refs(surveys),
        records.filter(anniversary).select("customer_ref"),
        distinct=True,
    )
    keys = identity.join(touched, "customer_ref").select("customer_key")
    cols = ["customer_key", "customer_ref", "anchor_ref"]
    now, before = identity.select(cols), previous_identity.select(cols)
    moved = ibis.union(now.difference(before), before.difference(now)).select("customer_key")
    return ibis.union(keys, moved, distinct=True)


def carry_forward(previous: ir.Table, keys: ir.Table, day: dt.date) -> ir.Table:
    """The rows of `previous` (the 360 of the day before `day`) for `keys`, moved to `day`."""
    rows = previous.join(keys, "customer_key")
    return rows.mutate(
        as_of_date=ibis.literal(day, type="date"),
        **{c: rows[c] + 1 for c in CLOCK_COLUMNS},
    ).select(CUSTOMER_360.names)


def customer_360_nightly(
    *,
    day: dt.date,
    previous: ir.Table,
    previous_identity: ir.Table,
    records: ir.Table,
    identity: ir.Table,
    customers: ir.Table,
    orders: ir.Table,
    payments: ir.Table,
    interactions: ir.Table,
    surveys: ir.Table,
    params: Customer360Params,
    settings_version: str = "",
    keep: Callable[[ir.Table], ir.Table] = lambda t: t,
) -> tuple[ir.Table, ir.Table]:
    """marts.customer_360 for `day` from the snapshot of the day before (`previous`, built with
    the same settings) and the feeds: equal to customer_360 for `day`, row for row.

    Returns (the snapshot, the carried keys). `keep` materializes the key sets once (e.g.
    Scratch.keep)."""
    changed = keep(
        nightly_changes(
            day=day,
            records=records,
            identity=identity,
            previous_identity=previous_identity,
            customers=customers,
            orders=orders,
            payments=payments,
            interactions=interactions,
            surveys=surveys,
        )
    )
    keys = identity.select("customer_key").distinct()
    carried = keep(keys.difference(changed).intersect(previous.select("customer_key")))
    as_of = ibis.memtable({"as_of_date": [day]}, schema={"as_of_date": "date"})
    fresh = customer_360(
        records=records,
        identity=identity.anti_join(carried, "customer_key"),
        orders=orders,
        payments=payments,
        interactions=interactions,
        surveys=surveys,
        as_of=as_of,
        params=params,
        settings_version=settings_version,
    )
    return ibis.union(fresh, carry_forward(previous, carried, day)), carried
