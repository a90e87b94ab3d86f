"""The customer-tier matrix (客户分级矩阵, DOMAIN.md §4): every buying customer split
high / low on credit, loyalty and scale, the 2×2 and 2×2×2 views of those splits, and
the current × potential value matrix (seed 003), each cell with its customers,
revenue, profit and recommended strategy (analytics.strategy).

Population: customers with at least one purchase (`has_purchased`) that the loyalty
mart scores on the same as-of date (inner join): the matrix grades trading
customers, not prospects.

Credit grade (信用等级), from the payment facts of marts.customer_360, first match wins:

- no invoices (arrears_ratio null): `no_history_grade` (default B): no evidence of bad
  credit, but no proof of good credit either, so high credit without the top grade;
- D: average lateness of paid invoices ≥ 60 days, or ≥ 2 invoices open past due with
  arrears ≥ 50 % of the invoiced amount, or an invoice open past due while nothing
  has been paid yet (the customer never paid);
- C: average lateness > 15 days;
- A: no invoice ever paid late or open past due (overdue_count = 0);
- B: the rest (some late payments, on average at most 15 days late).

The cut-offs recover the demo's latent grades (organisations, 30-day terms; A pays
0-20 days early, B up to 15 days late, C 5-60 days late, D 30-150 days late and 30 %
never): B never averages more than 15 days late and C never 60, so a worse grade is
only given on evidence the better grade cannot produce. On the demo data they recover
86-89 % of organisations' grades (three as-of dates; the misses are mostly B payers
who happened never to be late). The arrears ratio alone is not used for A/B because
it also counts invoices not yet due: a good payer who just ordered owes 100 %.
Individuals pay at once and grade A. Credit is high for grades in
`high_credit_grades` (A, B).

Loyalty is high when the loyalty index (marts.loyalty, 0-100) is ≥ `loyalty_high_index`
(default 50; a null index is low). Scale (规模) is high for the top `scale_top_share`
(20 %) by net purchase volume of the last 365 days, or with `scale_basis="employees"`
for organisations with ≥ `scale_min_employees` staff. "Top share" is tie-aware: a
customer is in it when the share of the snapshot's customers with a strictly larger
value is below the share, and the value is positive (equal values never split by row
order; nobody is "top" with nothing).

The cube cell is the credit, loyalty and scale letters (H/L), e.g. 'HHL'; its rank is
its position in `cube_order` (default HHH=1, HHL=2, HLH=3, HLL=4, LHH=5, LHL=6,
LLH=7, LLL=8: credit outranks loyalty outranks scale).

Current value = annual profit (profit_12m), high for the top `current_top_share`.
Potential value is an estimate of the extra annual profit the customer could bring
(issue 4 replaces it with model CLV): the customer's reachable yearly spend ("wallet")
minus what they spend now (negative spend counts as 0), times their own gross-margin
rate (gross_margin_12m / net_monetary_12m, clipped to 0..1; `potential_default_margin`
without positive spend). The wallet is the
largest of: this year's spend; last year's spend (they spent it before); this year's
spend × the rise in purchase frequency (capped at `potential_growth_cap`) when
frequency is rising; this year's spend × (1 + `potential_loyal_uplift`) for loyal
customers (loyalty makes cross- and up-selling work); and for organisations their
annual revenue × the snapshot's median spend-to-revenue ratio of organisations (what a
peer of their size buys). Potential is high for the top `potential_top_share`
(tie-aware, positive).
Cells: strategic 重点发展 (high/high), invest 培养 (low current, high potential),
maintain 维持 (high current, low potential), reconsider 重新考虑 (low/low).

marts.tier_matrix lists every cell of every view for every as-of date (zeros when
empty) so the grid never has holes; shares are of the snapshot's totals (null when
the total is zero or negative, where a share means nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import ibis
import ibis.expr.types as ir
import pandas as pd

from analytics.portable import cents
from analytics.schema import Col, MartSchema, as_of_col, version_col
from analytics.strategy import DIMENSIONS, strategy_for

# ruff: noqa: E501  (column descriptions are documentation; keep them on one line)

GRADES: tuple[str, ...] = ("A", "B", "C", "D")
#: Credit grade -> Chinese description.
CREDIT_GRADE_ZH: dict[str, str] = {
    "A": "A级（信用优良）",
    "B": "B级（信用良好）",
    "C": "C级（信用一般）",
    "D": "D级（信用差）",
}
#: credit_level -> Chinese.
CREDIT_LEVEL_ZH: dict[str, str] = {"high": "高信用", "low": "低信用"}
LOYALTY_LEVEL_ZH: dict[str, str] = {"high": "高忠诚度", "low": "低忠诚度"}
SCALE_LEVEL_ZH: dict[str, str] = {"high": "大规模", "low": "小规模"}
#: value_cell -> Chinese (seed 003 terms).
VALUE_CELL_ZH: dict[str, str] = {code: s.label_zh for code, s in DIMENSIONS["current_potential"].items()}
#: The tier_matrix views, in display order; each is a dimension of analytics.strategy.
VIEWS: tuple[str, ...] = ("credit_loyalty", "scale_loyalty", "cube", "current_potential")
CUBE_CODES: tuple[str, ...] = tuple("".join(p) for p in product("HL", repeat=3))
#: Default "most valuable customer" order: credit before loyalty before scale.
DEFAULT_CUBE_ORDER: tuple[str, ...] = ("HHH", "HHL", "HLH", "HLL", "LHH", "LHL", "LLH", "LLL")
SCALE_BASES: tuple[str, ...] = ("purchase_volume", "employees")


def _share(name: str, value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be a share in (0, 1], got {value}")


@dataclass(frozen=True)
class TierMatrixParams:
    """Thresholds of the tier matrix (see the module docstring for the rules)."""

    #: Average days paid after the due date above which the grade is at most C.
    credit_c_min_days_late: float = 15.0
    #: Average days paid after the due date from which the grade is D.
    credit_d_min_days_late: float = 60.0
    #: Invoices open past due that, with high arrears, make the grade D.
    credit_d_min_open_overdue: int = 2
    #: Arrears ratio (outstanding / invoiced) that, with open overdue invoices, makes the grade D.
    credit_d_min_arrears_ratio: float = 0.5
    #: Grade of customers without invoices (no payment history).
    no_history_grade: str = "B"
    #: Grades counted as high credit.
    high_credit_grades: tuple[str, ...] = ("A", "B")
    #: Loyalty index (0-100) from which loyalty is high.
    loyalty_high_index: float = 50.0
    #: "purchase_volume" (net spend of the last 365 days) or "employees" (organisations' head count).
    scale_basis: str = "purchase_volume"
    #: Share of customers with the largest purchase volume that are large scale (tie-aware).
    scale_top_share: float = 0.2
    #: Head count from which an organisation is large scale (scale_basis="employees").
    scale_min_employees: int = 100
    #: The 8 cube cells (credit, loyalty, scale letters) from most to least valuable.
    cube_order: tuple[str, ...] = DEFAULT_CUBE_ORDER
    #: Share of customers with the highest annual profit that have high current value (tie-aware).
    current_top_share: float = 0.2
    #: Share of customers with the highest potential value that have high potential (tie-aware).
    potential_top_share: float = 0.2
    #: Cap on the frequency growth factor projected one more year.
    potential_growth_cap: float = 3.0
    #: Extra spend reachable from a loyal customer, as a share of their current spend.
    potential_loyal_uplift: float = 0.5
    #: Multiplier on the peer spend-to-revenue benchmark of organisations (0 turns it off).
    potential_org_peer_factor: float = 1.0
    #: Gross-margin rate used when the customer has no positive spend this year.
    potential_default_margin: float = 0.25

    def __post_init__(self) -> None:
        if not 0 <= self.credit_c_min_days_late < self.credit_d_min_days_late:
            raise ValueError("need 0 <= credit_c_min_days_late < credit_d_min_days_late")
        if self.credit_d_min_open_overdue < 1:
            raise ValueError("credit_d_min_open_overdue must be at least 1")
        if not 0 <= self.credit_d_min_arrears_ratio <= 1:
            raise ValueError("credit_d_min_arrears_ratio must lie in [0, 1]")
        if self.no_history_grade not in GRADES:
            raise ValueError(f"no_history_grade must be one of {GRADES}, got {self.no_history_grade!r}")
        bad = [g for g in self.high_credit_grades if g not in GRADES]
        if bad or not self.high_credit_grades or len(set(self.high_credit_grades)) == len(GRADES):
            raise ValueError(
                f"high_credit_grades must be a non-empty proper subset of {GRADES}, got {self.high_credit_grades}"
            )
        if not 0 <= self.loyalty_high_index <= 100:
            raise ValueError("loyalty_high_index must lie in [0, 100]")
        if self.scale_basis not in SCALE_BASES:
            raise ValueError(f"scale_basis must be one of {SCALE_BASES}, got {self.scale_basis!r}")
        for name in ("scale_top_share", "current_top_share", "potential_top_share"):
            _share(name, getattr(self, name))
        if self.scale_min_employees < 1:
            raise ValueError("scale_min_employees must be at least 1")
        if len(self.cube_order) != 8 or set(self.cube_order) != set(CUBE_CODES):
            raise ValueError(
                f"cube_order must list each of the 8 cells {sorted(CUBE_CODES)} exactly once "
                f"(credit, loyalty, scale letters H/L), got {self.cube_order}"
            )
        if self.potential_growth_cap < 1:
            raise ValueError("potential_growth_cap must be at least 1")
        if self.potential_loyal_uplift < 0 or self.potential_org_peer_factor < 0:
            raise ValueError("potential_loyal_uplift and potential_org_peer_factor must not be negative")
        if not 0 <= self.potential_default_margin <= 1:
            raise ValueError("potential_default_margin must lie in [0, 1]")


_M = "DECIMAL(18,2)"
_HL = "'high' or 'low'"

CUSTOMER_TIERS = MartSchema(
    table="marts.customer_tiers",
    description="Customer-tier matrix per customer: credit grade, loyalty, scale, their cells and the current x potential value cell (buying customers scored by marts.loyalty).",
    key=("customer_key",),
    columns=(
        as_of_col(),
        Col("customer_key", "VARCHAR", "Pseudonymous customer key."),
        Col(
            "credit_grade",
            "VARCHAR",
            "Credit grade A-D from payment behaviour (A: never late; B: late on average <= 15 days; C: later; D: >= 60 days late, or open overdue invoices with high arrears or nothing ever paid); no invoices -> no_history_grade.",
        ),
        Col("credit_level", "VARCHAR", f"Credit {_HL}: high for grades in high_credit_grades (A, B)."),
        Col("credit_level_zh", "VARCHAR", "Credit level in Chinese: 高信用 / 低信用."),
        Col("loyalty_level", "VARCHAR", f"Loyalty {_HL}: high when loyalty_index >= loyalty_high_index (50)."),
        Col("loyalty_level_zh", "VARCHAR", "Loyalty level in Chinese: 高忠诚度 / 低忠诚度."),
        Col(
            "scale_level",
            "VARCHAR",
            f"Scale {_HL} (high = large): top scale_top_share by net_monetary_12m (tie-aware), or organisations with >= scale_min_employees staff.",
        ),
        Col("scale_level_zh", "VARCHAR", "Scale level in Chinese: 大规模 / 小规模."),
        Col("credit_loyalty_cell", "VARCHAR", "Credit x loyalty cell, credit letter first: HH, HL, LH, LL."),
        Col("scale_loyalty_cell", "VARCHAR", "Scale x loyalty cell, scale letter first: HH, HL, LH, LL."),
        Col(
            "cube_cell", "VARCHAR", "Credit, loyalty, scale letters, e.g. HHL = high credit, high loyalty, small scale."
        ),
        Col(
            "cube_rank",
            "BIGINT",
            "Position of cube_cell in the value order (1 = most valuable; default HHH=1 ... LLL=8).",
        ),
        Col("current_value", _M, "Current value: annual profit (profit_12m), CNY."),
        Col(
            "potential_value",
            _M,
            "Potential value: estimated extra annual profit reachable (wallet estimate - current spend) x margin rate, CNY; to be replaced by model CLV.",
        ),
        Col(
            "value_cell",
            "VARCHAR",
            "Current x potential cell: strategic (high/high), invest (low current, high potential), maintain (high current, low potential), reconsider (low/low).",
        ),
        Col("value_cell_zh", "VARCHAR", "Value cell in Chinese: 重点发展, 培养, 维持, 重新考虑."),
        version_col(),
    ),
)

TIER_MATRIX = MartSchema(
    table="marts.tier_matrix",
    description="Customer-tier matrix per cell: every cell of the credit x loyalty, scale x loyalty, cube and current x potential views per as-of date, with customers, revenue, profit and strategy.",
    key=("view", "cell"),
    columns=(
        as_of_col(),
        Col("view", "VARCHAR", "credit_loyalty, scale_loyalty, cube or current_potential."),
        Col(
            "cell",
            "VARCHAR",
            "Cell code: HH/HL/LH/LL (first letter credit resp. scale, second loyalty), cube letters (credit, loyalty, scale), or strategic/invest/maintain/reconsider.",
        ),
        Col("cell_label", "VARCHAR", "Cell name in English, e.g. 'high credit, high loyalty'."),
        Col("cell_label_zh", "VARCHAR", "Cell name in Chinese, e.g. 高信用高忠诚."),
        Col("rank", "BIGINT", "Value order of a cube cell (1 = most valuable); null for the other views."),
        Col("customers", "BIGINT", "Customers in the cell (0 when empty)."),
        Col("customer_share", "DOUBLE", "customers / customers in the snapshot's matrix."),
        Col("revenue", _M, "Sum of net_monetary_12m of the cell's customers, CNY."),
        Col("profit", _M, "Sum of profit_12m of the cell's customers, CNY (can be negative)."),
        Col("revenue_share", "DOUBLE", "revenue / total revenue of the snapshot; null when the total is not positive."),
        Col(
            "profit_share",
            "DOUBLE",
            "profit / total profit of the snapshot (negative for loss-making cells); null when the total is not positive.",
        ),
        Col("strategy", "VARCHAR", "Recommended actions (analytics.strategy)."),
        Col("strategy_zh", "VARCHAR", "Recommended actions in Chinese."),
        version_col(),
    ),
)


def _hl(flag: ir.BooleanValue) -> ir.StringValue:
    return ibis.ifelse(flag, "H", "L")


def _level(flag: ir.BooleanValue) -> ir.StringValue:
    return ibis.ifelse(flag, "high", "low")


def _in_top(t: ir.Table, value: ir.NumericValue, share: float, n: ir.IntegerValue) -> ir.BooleanValue:
    """Tie-aware top share per snapshot of `n` customers: fewer than `share` of them have
    a strictly larger value, and the value is positive."""
    ahead = ibis.rank().over(ibis.window(group_by=t.as_of_date, order_by=ibis.desc(value)))
    return (ahead.cast("float64") < n.cast("float64") * share) & (value > 0)


def _credit_grade(t: ir.Table, p: TierMatrixParams) -> ir.StringValue:
    late = t.avg_days_late
    open_overdue = t.overdue_open_count.fill_null(0)
    return ibis.cases(
        (t.arrears_ratio.isnull(), p.no_history_grade),
        (
            (late >= p.credit_d_min_days_late).fill_null(False)
            | ((open_overdue >= p.credit_d_min_open_overdue) & (t.arrears_ratio >= p.credit_d_min_arrears_ratio))
            | ((open_overdue >= 1) & late.isnull()),
            "D",
        ),
        ((late > p.credit_c_min_days_late).fill_null(False), "C"),
        (t.overdue_count.fill_null(0) == 0, "A"),
        else_="B",
    )


#: The customer_360 columns the tiers read (narrowing early keeps the query small).
_C360_USED: tuple[str, ...] = (
    "as_of_date",
    "customer_key",
    "employees",
    "annual_revenue",
    "purchase_days_12m",
    "purchase_days_prev_12m",
    "net_monetary_12m",
    "net_monetary_prev_12m",
    "gross_margin_12m",
    "profit_12m",
    "overdue_count",
    "overdue_open_count",
    "avg_days_late",
    "arrears_ratio",
)


def customer_tiers(
    c360: ir.Table, loyalty: ir.Table, params: TierMatrixParams | None = None, *, settings_version: str = ""
) -> ir.Table:
    """One row per buying customer and as-of date with their tier-matrix cells."""
    p = params or TierMatrixParams()
    base = c360.filter(c360.has_purchased.fill_null(False)).select(*_C360_USED)
    base = base.join(loyalty.select("as_of_date", "customer_key", "loyalty_index"), ["as_of_date", "customer_key"])
    spend = base.net_monetary_12m.cast("float64").fill_null(0.0)
    base = base.mutate(
        spend=spend,
        spend_pos=ibis.greatest(spend, 0.0),
        revenue=base.annual_revenue.cast("float64"),
        loyal=(base.loyalty_index >= p.loyalty_high_index).fill_null(False),
    )
    # Organisations' peer benchmark: the median spend per CNY of revenue on this date.
    orgs = base.filter(base.revenue > 0)
    peer = orgs.group_by("as_of_date").aggregate(peer_ratio=(orgs.spend_pos / orgs.revenue).median())
    t = base.left_join(peer, "as_of_date").drop("as_of_date_right")

    prev_days = t.purchase_days_prev_12m.fill_null(0).cast("float64")
    days = t.purchase_days_12m.fill_null(0).cast("float64")
    rising = (prev_days > 0) & (days > prev_days)
    growth = ibis.least(days / ibis.ifelse(prev_days > 0, prev_days, 1.0), p.potential_growth_cap)
    wallet = ibis.greatest(
        t.spend_pos,
        ibis.greatest(t.net_monetary_prev_12m.cast("float64").fill_null(0.0), 0.0),
        ibis.ifelse(rising, t.spend_pos * growth, 0.0),
        ibis.ifelse(t.loyal, t.spend_pos * (1 + p.potential_loyal_uplift), 0.0),
        (t.revenue * t.peer_ratio * p.potential_org_peer_factor).fill_null(0.0),
    )
    margin = ibis.ifelse(
        t.spend > 0,
        ibis.least(ibis.greatest(t.gross_margin_12m.cast("float64").fill_null(0.0) / t.spend, 0.0), 1.0),
        p.potential_default_margin,
    )
    grade = _credit_grade(t, p)
    t = t.mutate(
        credit_grade=grade,
        credit_high=grade.isin(list(p.high_credit_grades)),
        profit=t.profit_12m.cast("float64").fill_null(0.0),
        # cents(), not round(2): a float at a half cent rounds differently on DuckDB and Spark
        potential=cents((wallet - t.spend_pos) * margin),
    )

    n = t.customer_key.count().over(ibis.window(group_by=t.as_of_date))
    if p.scale_basis == "employees":
        large = (t.employees >= p.scale_min_employees).fill_null(False)
    else:
        large = _in_top(t, t.spend, p.scale_top_share, n)
    t = t.mutate(
        large=large,
        current_high=_in_top(t, t.profit, p.current_top_share, n),
        potential_high=_in_top(t, t.potential, p.potential_top_share, n),
    )

    cube = _hl(t.credit_high) + _hl(t.loyal) + _hl(t.large)
    value_cell = ibis.cases(
        (t.current_high & t.potential_high, "strategic"),
        (t.potential_high, "invest"),
        (t.current_high, "maintain"),
        else_="reconsider",
    )
    return t.select(
        as_of_date=t.as_of_date.cast("date"),
        customer_key=t.customer_key.cast("string"),
        credit_grade=t.credit_grade,
        credit_level=_level(t.credit_high),
        credit_level_zh=ibis.ifelse(t.credit_high, CREDIT_LEVEL_ZH["high"], CREDIT_LEVEL_ZH["low"]),
        loyalty_level=_level(t.loyal),
        loyalty_level_zh=ibis.ifelse(t.loyal, LOYALTY_LEVEL_ZH["high"], LOYALTY_LEVEL_ZH["low"]),
        scale_level=_level(t.large),
        scale_level_zh=ibis.ifelse(t.large, SCALE_LEVEL_ZH["high"], SCALE_LEVEL_ZH["low"]),
        credit_loyalty_cell=_hl(t.credit_high) + _hl(t.loyal),
        scale_loyalty_cell=_hl(t.large) + _hl(t.loyal),
        cube_cell=cube,
        cube_rank=ibis.cases(*((cube == code, i) for i, code in enumerate(p.cube_order, 1))).cast("int64"),
        current_value=t.profit_12m.cast("decimal(18, 2)"),
        potential_value=t.potential.cast("decimal(18, 2)"),
        value_cell=value_cell,
        value_cell_zh=value_cell.substitute(VALUE_CELL_ZH),
        settings_version=ibis.literal(settings_version, type="string"),
    )


def _cells(cube_order: tuple[str, ...]) -> ir.Table:
    rows = []
    for view in VIEWS:
        for code, s in DIMENSIONS[view].items():
            actions, actions_zh = strategy_for(view, code)
            rank = cube_order.index(code) + 1 if view == "cube" else None
            rows.append((view, code, s.label, s.label_zh, rank, actions, actions_zh))
    frame = pd.DataFrame(
        rows, columns=["view", "cell", "cell_label", "cell_label_zh", "rank", "strategy", "strategy_zh"]
    )
    return ibis.memtable(frame.astype({"rank": "Int64"}))


def tier_matrix(
    customer_tiers: ir.Table,
    c360: ir.Table,
    *,
    params: TierMatrixParams | None = None,
    settings_version: str = "",
) -> ir.Table:
    """Every cell of every view per as-of date with customers, revenue, profit and strategy.

    Pass the same `params` as to `customer_tiers` (only `cube_order` is read: it ranks
    the cube cells, also the empty ones).
    """
    p = params or TierMatrixParams()
    facts = c360.select("as_of_date", "customer_key", "net_monetary_12m", "profit_12m")
    t = customer_tiers.join(facts, ["as_of_date", "customer_key"])
    cell_of = {
        "credit_loyalty": t.credit_loyalty_cell,
        "scale_loyalty": t.scale_loyalty_cell,
        "cube": t.cube_cell,
        "current_potential": t.value_cell,
    }
    zero = ibis.literal(0, type="decimal(18, 2)")
    per_view = [
        t.group_by([t.as_of_date, cell.name("cell")])
        .aggregate(
            customers=t.customer_key.count(),
            revenue=t.net_monetary_12m.sum().fill_null(zero),
            profit=t.profit_12m.sum().fill_null(zero),
        )
        .mutate(view=ibis.literal(view, type="string"))
        for view, cell in cell_of.items()
    ]
    counts = ibis.union(*per_view)
    totals = t.group_by("as_of_date").aggregate(
        _customers=t.customer_key.count(),
        _revenue=t.net_monetary_12m.sum().cast("float64"),
        _profit=t.profit_12m.sum().cast("float64"),
    )
    cells = _cells(p.cube_order)
    grid = totals.cross_join(cells)
    j = grid.left_join(
        counts, [grid.as_of_date == counts.as_of_date, grid["view"] == counts["view"], grid.cell == counts.cell]
    )
    revenue = j.revenue.fill_null(zero).cast("decimal(18, 2)")
    profit = j.profit.fill_null(zero).cast("decimal(18, 2)")

    def share(part: ir.NumericValue, whole: ir.NumericValue) -> ir.FloatingValue:
        return ibis.ifelse(whole > 0, part.cast("float64") / whole, ibis.null("float64"))

    return j.select(
        as_of_date=grid.as_of_date.cast("date"),
        view=grid["view"],
        cell=grid.cell,
        cell_label=grid.cell_label,
        cell_label_zh=grid.cell_label_zh,
        rank=grid["rank"].cast("int64"),
        customers=j.customers.fill_null(0).cast("int64"),
        customer_share=share(j.customers.fill_null(0), grid._customers.cast("float64")),
        revenue=revenue,
        profit=profit,
        revenue_share=share(revenue, grid._revenue),
        profit_share=share(profit, grid._profit),
        strategy=grid.strategy,
        strategy_zh=grid.strategy_zh,
        settings_version=ibis.literal(settings_version, type="string"),
    )
