"""Customer value (DOMAIN.md §3): value tiers, the 80/20 (Pareto) curves and the seed's
five-group value-contribution table, so the CRM team sees how concentrated profit is
and which customers destroy it.

Population: rows of customer 360 with ``has_purchased``. Every as-of date in the input
is computed on its own (all windows, groups and joins include ``as_of_date``).

The ranking basis is ``ValueParams.basis``: annual profit ``profit_12m`` (default) or
lifetime ``profit``; a missing value counts as 0. Ranks are tie-aware: a customer's
position is ``share_above`` = (customers with a strictly larger basis) / n, with n the
buying customers of the snapshot, so equal profits always land in the same tier or
group and the result never depends on row order. Tied customers straddling a cut-off
all go to the better side, so tier and group sizes only approximate their shares.

Value tiers (``value_tiers``), cumulative cut-offs ``tier_cutoffs`` (default 1 %, 5 %,
20 %): platinum (白金客户) if share_above < 0.01, gold (黄金客户) if < 0.05, iron (铁客户)
if < 0.20, else lead (铅客户). ``negative_profit`` flags every customer whose basis is
below 0 (in practice lead customers: they cost more than their margin brings).
Annual profit contribution (客户年利润贡献度) = profit_12m / marketing_cost_12m, null
when the cost is 0.

Pareto curves (``pareto``), per measure -- 'revenue' (net_monetary_12m) and 'profit'
(the basis): customers sorted by the measure descending (customer_key breaks ties; the
cumulative value at a boundary does not depend on it since tied values are equal);
percentile p = 1..pareto_points covers the first ceil(p / points x n) customers.
value_share = cumulative value / |the snapshot's total|. For profit it can exceed 1
(the top customers earn more than the total because loss-making customers pull the
total down) and it falls back towards 1 at the end: that is the point of the table.
top20_value_share = the share of the first ceil(0.2 x n) customers.

Shares of a total divide by its absolute value, so their sign always says whether the
customers earn or lose money even when the snapshot as a whole loses money (the total
is then negative and the shares end at -1 instead of 1); they are null when the total
is 0.

Five value groups (``pareto_groups``), the seed's appliance example (very high 1.8 %,
high 9.2 %, moderate 26.3 %, low 20.5 %, very low 42.2 % of customers, with value
contributions 107.76 %, 30.49 %, 7.45 %, -2.10 %, -4.12 %): customers ranked by the
basis, a customer goes to the first group whose cumulative customer share (from the
top, rounded to 12 decimals) exceeds its share_above. profit_share is the group's
profit / |total profit| -- negative for loss-making groups; the groups sum to 1 (-1
when the total is negative).
Every snapshot gets all five rows; an empty group has zero customers, sums and shares
and a null avg_profit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from analytics.portable import cents
from analytics.schema import Col, MartSchema, as_of_col, version_col

# ruff: noqa: E501  (column descriptions are documentation; keep them on one line)

MEASURE_ZH: dict[str, str] = {"revenue": "收入", "profit": "利润"}

TIER_ZH: dict[str, str] = {
    "platinum": "白金客户",
    "gold": "黄金客户",
    "iron": "铁客户",
    "lead": "铅客户",
}

#: Ordered from the top (group_order 1) down.
VALUE_GROUP_ZH: dict[str, str] = {
    "very_high": "很高",
    "high": "高",
    "moderate": "适度",
    "low": "低",
    "very_low": "很低",
}

_BASES = ("profit_12m", "profit")
_DEC = "decimal(18, 2)"


@dataclass(frozen=True)
class ValueParams:
    """How customers are ranked by value and cut into tiers and groups."""

    #: Cumulative top shares of customers ending platinum, gold and iron (rest: lead); increasing in (0, 1).
    tier_cutoffs: tuple[float, float, float] = (0.01, 0.05, 0.20)
    #: Ranking basis: "profit_12m" (annual profit) or "profit" (lifetime to date).
    basis: str = "profit_12m"
    #: Customer shares of the five value groups from the top (very_high, high, moderate, low, very_low);
    #: default from the seed's appliance example; sum 1.
    group_shares: tuple[float, float, float, float, float] = (0.018, 0.092, 0.263, 0.205, 0.422)
    #: Points of the Pareto curves (percentiles 1..pareto_points of customers).
    pareto_points: int = 100

    def __post_init__(self) -> None:
        cutoffs = tuple(self.tier_cutoffs)
        object.__setattr__(self, "tier_cutoffs", cutoffs)
        if len(cutoffs) != 3:
            raise ValueError(f"tier_cutoffs must be three cumulative shares (platinum, gold, iron), got {cutoffs!r}")
        if not (0 < cutoffs[0] < cutoffs[1] < cutoffs[2] < 1):
            raise ValueError(f"tier_cutoffs must be strictly increasing within (0, 1), got {cutoffs!r}")
        if self.basis not in _BASES:
            raise ValueError(f"basis must be one of {list(_BASES)}, got {self.basis!r}")
        shares = tuple(self.group_shares)
        object.__setattr__(self, "group_shares", shares)
        if len(shares) != len(VALUE_GROUP_ZH) or not all(0 <= s <= 1 for s in shares):
            raise ValueError(f"group_shares must be five shares in [0, 1] (very_high .. very_low), got {shares!r}")
        if not math.isclose(math.fsum(shares), 1.0, abs_tol=1e-9):
            raise ValueError(f"group_shares must sum to 1, got {shares!r} (sum {math.fsum(shares)})")
        points = self.pareto_points
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            raise ValueError(f"pareto_points must be a positive integer, got {points!r}")

    @property
    def group_cutoffs(self) -> tuple[float, ...]:
        """Cumulative customer shares closing each value group (the last is 1)."""
        # Rounded so that 0.018 + 0.092 compares as 0.11, not 0.11000000000000001.
        cum = [round(math.fsum(self.group_shares[: i + 1]), 12) for i in range(len(self.group_shares))]
        return (*cum[:-1], 1.0)


_M = "DECIMAL(18,2)"

VALUE_TIERS = MartSchema(
    table="marts.value_tiers",
    description="Value tier (platinum / gold / iron / lead) by profit contribution: one row per buying customer and as-of date.",
    key=("customer_key",),
    columns=(
        as_of_col(),
        Col("customer_key", "VARCHAR", "Pseudonymous customer key."),
        Col("profit", _M, "Lifetime profit to date, CNY (customer_360.profit)."),
        Col("profit_12m", _M, "Annual profit: last 365 days, CNY (customer_360.profit_12m)."),
        Col("net_monetary_12m", _M, "Net revenue in the last 365 days, CNY."),
        Col("marketing_cost_12m", _M, "Marketing cost allocated to the last 365 days, CNY."),
        Col(
            "annual_profit_contribution",
            "DOUBLE",
            "profit_12m / marketing_cost_12m (客户年利润贡献度); null when the cost is 0.",
        ),
        Col(
            "profit_rank",
            "BIGINT",
            "Rank by the basis (profit_12m or profit, see settings), 1 = best; ties share the lowest rank.",
        ),
        Col("top_share", "DOUBLE", "Share of the snapshot's buying customers with a strictly larger basis (0 = top)."),
        Col(
            "tier",
            "VARCHAR",
            "platinum (top_share < 1 %), gold (< 5 %), iron (< 20 %), lead (rest); cut-offs are settings.",
        ),
        Col("tier_zh", "VARCHAR", "Tier in Chinese: 白金客户, 黄金客户, 铁客户, 铅客户."),
        Col("negative_profit", "BOOLEAN", "The basis is below 0: the customer costs more than they bring."),
        version_col(),
    ),
)

PARETO = MartSchema(
    table="marts.pareto",
    description="80/20 curves: cumulative share of revenue and profit held by the top p % of customers, per as-of date.",
    key=("measure", "percentile"),
    columns=(
        as_of_col(),
        Col("measure", "VARCHAR", "revenue (net_monetary_12m) or profit (the value basis, profit_12m by default)."),
        Col("measure_zh", "VARCHAR", "Measure in Chinese: 收入 / 利润."),
        Col("percentile", "BIGINT", "p = 1..pareto_points: the first ceil(p / points x n) customers by the measure."),
        Col("customers", "BIGINT", "Customers covered (cumulative count)."),
        Col("customer_share", "DOUBLE", "customers / buying customers of the snapshot."),
        Col("cumulative_value", _M, "Sum of the measure over the customers covered, CNY."),
        Col(
            "value_share",
            "DOUBLE",
            "cumulative_value / |total|; above 1 for profit when loss-making customers exist; null if the total is 0.",
        ),
        Col(
            "top20_value_share",
            "DOUBLE",
            "Value of the top 20 % (ceil(0.2 x n)) of customers / |total|; same on every row.",
        ),
        version_col(),
    ),
)

PARETO_GROUPS = MartSchema(
    table="marts.pareto_groups",
    description="Five value groups (very high .. very low) with their share of customers, revenue and profit, per as-of date.",
    key=("value_group",),
    columns=(
        as_of_col(),
        Col(
            "value_group",
            "VARCHAR",
            "very_high, high, moderate, low, very_low: by rank on the value basis and group_shares.",
        ),
        Col("value_group_zh", "VARCHAR", "Value group in Chinese: 很高, 高, 适度, 低, 很低."),
        Col("group_order", "BIGINT", "1 = very_high .. 5 = very_low."),
        Col("customers", "BIGINT", "Buying customers in the group."),
        Col("customer_share", "DOUBLE", "customers / buying customers of the snapshot."),
        Col("revenue", _M, "Net revenue of the last 365 days (net_monetary_12m) of the group, CNY."),
        Col("revenue_share", "DOUBLE", "revenue / |total revenue|; null if the total is 0."),
        Col("profit", _M, "Profit of the group on the value basis, CNY (negative for loss-making groups)."),
        Col(
            "profit_share",
            "DOUBLE",
            "Value contribution: profit / |total profit|; negative for loss-making groups, null if the total is 0.",
        ),
        Col("avg_profit", _M, "profit / customers, CNY; null for an empty group."),
        version_col(),
    ),
)


def _buyers(c360: ir.Table, params: ValueParams) -> ir.Table:
    """Buying customers with the basis and the money columns every mart here needs."""
    buyers = c360.filter(c360.has_purchased)
    zero = ibis.literal(0, type=_DEC)
    return buyers.select(
        as_of_date=buyers.as_of_date,
        customer_key=buyers.customer_key,
        profit=buyers.profit.cast(_DEC),
        profit_12m=buyers.profit_12m.cast(_DEC),
        net_monetary_12m=buyers.net_monetary_12m.cast(_DEC),
        marketing_cost_12m=buyers.marketing_cost_12m.cast(_DEC),
        basis=buyers[params.basis].cast(_DEC).fill_null(zero),
        revenue=buyers.net_monetary_12m.cast(_DEC).fill_null(zero),
    )


def _with_share_above(t: ir.Table) -> ir.Table:
    """Adds above (customers with a strictly larger basis) and share_above (above / n)."""
    above = ibis.rank().over(ibis.window(group_by="as_of_date", order_by=ibis.desc(t.basis)))
    n = t.customer_key.count().over(ibis.window(group_by="as_of_date"))
    t = t.mutate(above=above, n=n)
    return t.mutate(share_above=t.above.cast("float64") / t.n.cast("float64"))


def _share(part: ir.NumericValue, total: ir.NumericValue) -> ir.FloatingValue:
    """part / |total| as DOUBLE (the sign is the part's, also when the total is negative), null when it is 0."""
    total = total.cast("float64").abs()
    return ibis.cases((total == 0, ibis.null("float64")), else_=part.cast("float64") / total)


def value_tiers(c360: ir.Table, params: ValueParams | None = None, *, settings_version: str = "") -> ir.Table:
    """Value tier, profit rank and annual profit contribution of every buying customer, per as-of date."""
    params = params or ValueParams()
    t = _with_share_above(_buyers(c360, params))
    platinum, gold, iron = params.tier_cutoffs
    tier = ibis.cases(
        (t.share_above < platinum, "platinum"),
        (t.share_above < gold, "gold"),
        (t.share_above < iron, "iron"),
        else_="lead",
    )
    cost = t.marketing_cost_12m.cast("float64")
    return t.select(
        as_of_date=t.as_of_date,
        customer_key=t.customer_key,
        profit=t.profit,
        profit_12m=t.profit_12m,
        net_monetary_12m=t.net_monetary_12m,
        marketing_cost_12m=t.marketing_cost_12m,
        annual_profit_contribution=ibis.cases(
            (cost == 0, ibis.null("float64")), else_=t.profit_12m.cast("float64") / cost
        ),
        profit_rank=(t.above + 1).cast("int64"),
        top_share=t.share_above.cast("float64"),
        tier=tier,
        tier_zh=tier.substitute(TIER_ZH),
        negative_profit=t.basis < 0,
        settings_version=ibis.literal(settings_version, type="string"),
    )


def pareto(c360: ir.Table, params: ValueParams | None = None, *, settings_version: str = "") -> ir.Table:
    """The 80/20 curves of revenue and profit, percentile by percentile, per as-of date."""
    params = params or ValueParams()
    buyers = _buyers(c360, params)
    long = buyers.select("as_of_date", "customer_key", measure=ibis.literal("revenue"), value=buyers.revenue).union(
        buyers.select("as_of_date", "customer_key", measure=ibis.literal("profit"), value=buyers.basis)
    )
    part = ["as_of_date", "measure"]
    order = [ibis.desc(long.value), long.customer_key]
    whole = ibis.window(group_by=part)
    ranked = long.mutate(
        position=ibis.row_number().over(ibis.window(group_by=part, order_by=order)) + 1,
        cumulative_value=long.value.sum().over(ibis.window(group_by=part, order_by=order, rows=(None, 0))),
        n=long.customer_key.count().over(whole),
        total=long.value.sum().over(whole),
    )
    # Exact integer ceilings: the top 20 % are the first ceil(n / 5) customers.
    ranked = ranked.mutate(
        top20_value=ibis.ifelse(ranked.position <= (ranked.n + 4) // 5, ranked.value, 0).sum().over(whole)
    )
    # n, total and the top-20 % value come from windows, so one equi-join remains: with a
    # second position look-up joined in, DuckDB's join-order optimizer paired the two
    # look-ups on (as_of_date, measure) alone, which is quadratic in customers.
    heads = ranked.filter(ranked.position == 1).select(*part, "n", "total", "top20_value")
    points = params.pareto_points
    percentiles = ibis.memtable({"percentile": list(range(1, points + 1))}).cast({"percentile": "int64"})
    grid = heads.cross_join(percentiles).select(*part, "n", "total", "top20_value", "percentile")
    grid = grid.mutate(customers=(grid.percentile * grid.n + (points - 1)) // points)
    at_p = ranked.select(p_date="as_of_date", p_measure="measure", p_position="position", p_value="cumulative_value")
    joined = grid.join(at_p, [("as_of_date", "p_date"), ("measure", "p_measure"), ("customers", "p_position")])
    return joined.select(
        as_of_date=joined.as_of_date,
        measure=joined.measure,
        measure_zh=joined.measure.substitute(MEASURE_ZH),
        percentile=joined.percentile.cast("int64"),
        customers=joined.customers.cast("int64"),
        customer_share=joined.customers.cast("float64") / joined.n.cast("float64"),
        cumulative_value=joined.p_value.cast(_DEC),
        value_share=_share(joined.p_value, joined.total),
        top20_value_share=_share(joined.top20_value, joined.total),
        settings_version=ibis.literal(settings_version, type="string"),
    )


def _grouped(c360: ir.Table, params: ValueParams) -> ir.Table:
    t = _with_share_above(_buyers(c360, params))
    group_order = ibis.cases(
        *((t.share_above < cut, i + 1) for i, cut in enumerate(params.group_cutoffs[:-1])),
        else_=len(VALUE_GROUP_ZH),
    )
    return t.mutate(group_order=group_order)


def value_groups(c360: ir.Table, params: ValueParams | None = None) -> ir.Table:
    """Each buying customer's value group (as_of_date, customer_key, value_group): the
    per-customer side of `pareto_groups`, for the strategy table."""
    t = _grouped(c360, params or ValueParams())
    codes = list(VALUE_GROUP_ZH)
    code = t.group_order.cases(*((i + 1, c) for i, c in enumerate(codes)))
    return t.select("as_of_date", "customer_key", value_group=code)


def pareto_groups(c360: ir.Table, params: ValueParams | None = None, *, settings_version: str = "") -> ir.Table:
    """The five value groups with customers, revenue and profit contribution, per as-of date."""
    params = params or ValueParams()
    t = _grouped(c360, params)
    codes = list(VALUE_GROUP_ZH)
    # Keys renamed so the joins below never have two columns of the same name.
    per_group = t.group_by(g_date=t.as_of_date, g_order=t.group_order).aggregate(
        g_customers=t.customer_key.count(),
        g_revenue=t.revenue.sum(),
        g_profit=t.basis.sum(),
    )
    totals = t.group_by(t_date=t.as_of_date).aggregate(
        n=t.customer_key.count(), total_revenue=t.revenue.sum(), total_profit=t.basis.sum()
    )

    groups = ibis.memtable(
        {
            "group_order": list(range(1, len(codes) + 1)),
            "value_group": codes,
            "value_group_zh": [VALUE_GROUP_ZH[c] for c in codes],
        }
    ).cast({"group_order": "int64", "value_group": "string", "value_group_zh": "string"})
    # Every snapshot in the input gets all five rows, even one without buyers.
    grid = c360.select("as_of_date").distinct().cross_join(groups)
    grid = grid.select("as_of_date", "group_order", "value_group", "value_group_zh")
    joined = grid.left_join(per_group, [grid.as_of_date == per_group.g_date, grid.group_order == per_group.g_order])
    joined = joined.left_join(totals, joined.as_of_date == totals.t_date)

    zero = ibis.literal(0, type=_DEC)
    customers = joined.g_customers.fill_null(0)
    revenue = joined.g_revenue.fill_null(zero)
    profit = joined.g_profit.fill_null(zero)
    empty = customers == 0

    def share(part: ir.NumericValue, total: ir.NumericValue) -> ir.FloatingValue:
        return ibis.cases((empty, ibis.literal(0.0, type="float64")), else_=_share(part, total))

    return joined.select(
        as_of_date=joined.as_of_date,
        value_group=joined.value_group,
        value_group_zh=joined.value_group_zh,
        group_order=joined.group_order.cast("int64"),
        customers=customers.cast("int64"),
        customer_share=share(customers, joined.n),
        revenue=revenue.cast(_DEC),
        revenue_share=share(revenue, joined.total_revenue),
        profit=profit.cast(_DEC),
        profit_share=share(profit, joined.total_profit),
        avg_profit=ibis.cases(
            (empty, ibis.null(_DEC)), else_=cents(profit.cast("float64") / customers.cast("float64"))
        ),
        settings_version=ibis.literal(settings_version, type="string"),
    )
