"""Customer lifecycle (客户生命周期, DOMAIN.md §5): the stage every customer is in, group
churn and the customer-group lifecycle, cohort retention, and the churn early warning
(预警长效机制) for customers who are slipping but not yet lost.

Stage rules. Each customer gets exactly one stage per as-of date: the first rule that
holds, in this order (thresholds are `LifecycleParams` fields; cycle =
purchase_cycle_days, the customer's own mean days between purchase days):

| # | stage (order)   | rule                   | holds when                                                          |
|---|-----------------|------------------------|---------------------------------------------------------------------|
| 1 | potential (1)   | no_purchase            | not has_purchased                                                   |
| 2 | development (2) | new_customer           | age_days <= new_days (first purchase is recent)                     |
| 3 | termination (6) | beyond_churn_threshold | days_since_last > churn threshold = max(churn_multiple x cycle,     |
|   |                 |                        | min_churn_days); single_purchase_churn_days with one purchase day   |
| 4 | recovery (7)    | returned_after_churn   | last_gap_days > the churn threshold that applied before the last    |
|   |                 |                        | purchase (came back after termination), days_since_last <=          |
|   |                 |                        | recovery_days                                                       |
| 5 | decline (5)     | overdue_vs_cycle       | days_since_last > max(decline_multiple x cycle, min_decline_days);  |
|   |                 |                        | single_purchase_decline_days with one purchase day                  |
| 6 | decline (5)     | frequency_fell         | purchase_days_prev_12m >= trend_min_base and                        |
|   |                 |                        | purchase_days_12m < (1 - trend_drop) x purchase_days_prev_12m       |
| 7 | decline (5)     | spend_fell             | net_monetary_prev_12m >= spend_min_base and                         |
|   |                 |                        | net_monetary_12m < (1 - spend_drop) x net_monetary_prev_12m         |
| 8 | growth (3)      | frequency_rising       | purchase_days_12m >= trend_min_base and                             |
|   |                 |                        | purchase_days_12m > (1 + trend_rise) x purchase_days_prev_12m       |
| 9 | growth (3)      | spend_rising           | net_monetary_12m >= spend_min_base and                              |
|   |                 |                        | net_monetary_12m > (1 + spend_rise) x net_monetary_prev_12m         |
|10 | growth (3)      | young_relationship     | age_days <= young_days                                              |
|11 | maturity (4)    | steady                 | none of the above                                                   |

Why the recovery test uses the threshold *before* the last purchase: the mean cycle
includes the long gap itself, so judging the gap against today's cycle would hide most
returns. The earlier threshold is max(churn_multiple x (recency_days - last_gap_days) /
(purchase_days - 2), min_churn_days), or single_purchase_churn_days when the return was
the second purchase day. The 12-month trends compare the 365 days ending on the as-of
date with the 365 before (customer 360); the minimum bases keep one-off buyers from
swinging between growth and decline on a single purchase.

Group churn (marts.churn) uses one fixed inactivity definition for everybody so rates
are comparable between periods and cohorts: a customer is lost at day d when their last
purchase up to d is more than churn_days (default 180) before d. It is evaluated from the
purchase-day history, so a customer who lapses in Q1 and returns in Q3 counts as lost in
Q1, is outside the base in Q2 and Q3 and is back in the base from Q4. For each complete
calendar period (month / quarter / year ending on or before the as-of date, at most
max_periods back, starting after the first purchase in the data):
customers_at_start = customers whose first purchase is before the period and who are
active at its start (end of the previous day); lost = those of them inactive at the
period end; churn_rate = lost / customers_at_start. annual_churn_rate = 1 - (1 -
churn_rate) ^ (periods per year) (the share of a starting group lost within a year at
this pace; equal to churn_rate for yearly periods). group_lifecycle_years = 1 /
annual_churn_rate (DOMAIN §5: 100 customers, 20 lost in a year -> 5 years). With
heterogeneous customers this understates the lifetime of the group (the loyal ones stay
far longer than the average suggests); report it beside the model-based figure (CLV).
Rows per acquisition cohort (calendar quarter of the first purchase, e.g. '2024Q2') and
an 'all' row for every period.

Cohort retention (marts.cohort_retention): cohorts are first-purchase months; for each
complete month since, the share of the cohort that bought in that month. Only complete
months (ending on or before the as-of date), the newest cohort_months cohorts.

Churn warning (marts.churn_warning): customers neither potential nor terminated whose
days_since_last exceeds warn_multiple x their own cycle (two or more purchase days), or
whose frequency fell (rule 6); a spend fall (rule 7) is listed among the reasons but
does not by itself raise a warning. They are ranked by value_at_risk = net_monetary_12m (what
they spent in the last year, i.e. what leaves if they go), ties by customer_key.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from analytics.schema import Col, MartSchema, as_of_col, version_col

# ruff: noqa: E501  (column descriptions are documentation; keep them on one line)

STAGE_ZH: dict[str, str] = {
    "potential": "潜在客户期",
    "development": "开发期",
    "growth": "成长期",
    "maturity": "成熟期",
    "decline": "衰退期",
    "termination": "终止期",
    "recovery": "恢复期",
}

#: Stage -> stage_order (1 potential .. 7 recovery).
STAGE_ORDER: dict[str, int] = {stage: i for i, stage in enumerate(STAGE_ZH, start=1)}

#: (rule, stage) in order of precedence: the first rule that holds decides (table above).
RULES: tuple[tuple[str, str], ...] = (
    ("no_purchase", "potential"),
    ("new_customer", "development"),
    ("beyond_churn_threshold", "termination"),
    ("returned_after_churn", "recovery"),
    ("overdue_vs_cycle", "decline"),
    ("frequency_fell", "decline"),
    ("spend_fell", "decline"),
    ("frequency_rising", "growth"),
    ("spend_rising", "growth"),
    ("young_relationship", "growth"),
    ("steady", "maturity"),
)

#: Period kind -> months per period.
PERIOD_MONTHS: dict[str, int] = {"month": 1, "quarter": 3, "year": 12}

#: Reasons of a churn warning, in the order they are listed.
WARNING_REASONS: tuple[str, ...] = ("overdue_vs_cycle", "frequency_fell", "spend_fell")


@dataclass(frozen=True)
class LifecycleParams:
    """Thresholds of the stage rules, the group-churn definition and the warning."""

    #: First purchase at most this many days before the as-of date -> development (new customer).
    new_days: int = 90
    #: A relationship (days since first purchase) at most this long counts as young -> growth.
    young_days: int = 365
    #: Churn threshold = max(churn_multiple x own purchase cycle, min_churn_days).
    churn_multiple: float = 3.0
    #: Floor of the churn threshold, days (a weekly buyer is not lost after three weeks).
    min_churn_days: int = 90
    #: Churn threshold of customers with a single purchase day, days.
    single_purchase_churn_days: int = 365
    #: Recovery lasts this many days after the returning purchase.
    recovery_days: int = 180
    #: Decline when days_since_last > max(decline_multiple x own cycle, min_decline_days).
    decline_multiple: float = 2.0
    #: Floor of the decline threshold, days.
    min_decline_days: int = 30
    #: Decline threshold of customers with a single purchase day, days.
    single_purchase_decline_days: int = 180
    #: Frequency fell: purchase_days_12m < (1 - trend_drop) x purchase_days_prev_12m.
    trend_drop: float = 0.3
    #: Frequency rising: purchase_days_12m > (1 + trend_rise) x purchase_days_prev_12m.
    trend_rise: float = 0.3
    #: Purchase days the larger year needs before a frequency trend counts.
    trend_min_base: int = 2
    #: Spend fell: net_monetary_12m < (1 - spend_drop) x net_monetary_prev_12m.
    spend_drop: float = 0.3
    #: Spend rising: net_monetary_12m > (1 + spend_rise) x net_monetary_prev_12m.
    spend_rise: float = 0.3
    #: Net spend (CNY) the larger year needs before a spend trend counts.
    spend_min_base: float = 100.0
    #: Churn warning when days_since_last > warn_multiple x own purchase cycle.
    warn_multiple: float = 1.5
    #: Group churn: lost at day d when the last purchase up to d is more than churn_days before d.
    churn_days: int = 180
    #: Group churn period: month, quarter or year (calendar).
    period: str = "quarter"
    #: Complete periods reported back from the as-of date.
    max_periods: int = 8
    #: Cohort retention: newest complete first-purchase months reported.
    cohort_months: int = 24

    def __post_init__(self) -> None:
        days = ("new_days", "min_churn_days", "single_purchase_churn_days", "recovery_days", "min_decline_days")
        for name in (*days, "single_purchase_decline_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.young_days < self.new_days:
            raise ValueError("young_days must be at least new_days (development comes before growth)")
        for name in ("churn_multiple", "decline_multiple", "warn_multiple", "trend_rise", "spend_rise"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.decline_multiple > self.churn_multiple:
            raise ValueError("decline_multiple must not exceed churn_multiple (decline comes before termination)")
        if self.single_purchase_decline_days > self.single_purchase_churn_days:
            raise ValueError("single_purchase_decline_days must not exceed single_purchase_churn_days")
        for name in ("trend_drop", "spend_drop"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} is a share and must lie strictly between 0 and 1")
        if self.trend_min_base < 1 or self.spend_min_base <= 0:
            raise ValueError("trend_min_base must be >= 1 and spend_min_base > 0")
        if self.churn_days <= 0:
            raise ValueError("churn_days must be positive")
        if self.period not in PERIOD_MONTHS:
            raise ValueError(f"period must be one of {sorted(PERIOD_MONTHS)}, got {self.period!r}")
        if self.max_periods < 1 or self.cohort_months < 1:
            raise ValueError("max_periods and cohort_months must be at least 1")


_M = "DECIMAL(18,2)"

LIFECYCLE = MartSchema(
    table="marts.lifecycle",
    description="Lifecycle stage (客户生命周期): one row per customer and as-of date, the stage and the rule that decided it.",
    key=("customer_key",),
    columns=(
        as_of_col(),
        Col("customer_key", "VARCHAR", "Pseudonymous customer key."),
        Col("stage", "VARCHAR", "potential, development, growth, maturity, decline, termination, recovery."),
        Col("stage_zh", "VARCHAR", "Stage in Chinese: 潜在客户期, 开发期, 成长期, 成熟期, 衰退期, 终止期, 恢复期."),
        Col(
            "stage_order",
            "BIGINT",
            "1 potential, 2 development, 3 growth, 4 maturity, 5 decline, 6 termination, 7 recovery.",
        ),
        Col(
            "churn_threshold_days",
            "DOUBLE",
            "Days without purchase after which the customer is terminated: max(churn_multiple x cycle, min_churn_days), or the single-purchase threshold; null for prospects.",
        ),
        Col("days_since_last", "BIGINT", "Days from the last purchase day to as_of_date; null for prospects."),
        Col("purchase_cycle_days", "DOUBLE", "Mean days between purchase days; null below two purchase days."),
        Col(
            "frequency_trend",
            "DOUBLE",
            "purchase_days_12m / purchase_days_prev_12m; null when the previous year had none.",
        ),
        Col("spend_trend", "DOUBLE", "net_monetary_12m / net_monetary_prev_12m; null when the previous year had none."),
        Col("rule", "VARCHAR", "The rule that decided the stage (see the rule table in analytics/lifecycle.py)."),
        version_col(),
    ),
)

CHURN = MartSchema(
    table="marts.churn",
    description="Group churn rate and customer-group lifecycle (客户群体生命周期) per complete calendar period and acquisition cohort.",
    key=("period", "cohort"),
    columns=(
        as_of_col(),
        Col("period", "VARCHAR", "Calendar period: '2025-07' (month), '2025Q3' (quarter) or '2025' (year)."),
        Col("period_start", "DATE", "First day of the period."),
        Col("period_end", "DATE", "Last day of the period (on or before as_of_date)."),
        Col("cohort", "VARCHAR", "Acquisition cohort: calendar quarter of the first purchase ('2024Q2'), or 'all'."),
        Col(
            "customers_at_start",
            "BIGINT",
            "Customers with a first purchase before the period and active at its start (last purchase at most churn_days before).",
        ),
        Col(
            "lost",
            "BIGINT",
            "Of those, customers inactive at the period end (no purchase in the churn_days before it).",
        ),
        Col("churn_rate", "DOUBLE", "lost / customers_at_start; null without customers at start."),
        Col("retention_rate", "DOUBLE", "1 - churn_rate."),
        Col(
            "annual_churn_rate",
            "DOUBLE",
            "1 - (1 - churn_rate) ^ periods per year: share of a group lost within a year at this pace.",
        ),
        Col(
            "group_lifecycle_years",
            "DOUBLE",
            "1 / annual_churn_rate (seed: 20 % a year -> 5 years); understates lifetime with heterogeneous customers, read beside the model-based CLV; null when nobody was lost.",
        ),
        version_col(),
    ),
)

COHORT_RETENTION = MartSchema(
    table="marts.cohort_retention",
    description="Cohort retention: per first-purchase month and month since, the share of the cohort that bought in that month.",
    key=("cohort", "months_since"),
    columns=(
        as_of_col(),
        Col("cohort", "VARCHAR", "First-purchase month, 'YYYY-MM'."),
        Col("months_since", "BIGINT", "Calendar months since the cohort month (0 = the cohort month)."),
        Col("cohort_size", "BIGINT", "Customers whose first purchase fell in the cohort month."),
        Col("active_customers", "BIGINT", "Cohort customers with a purchase in that month."),
        Col("retention", "DOUBLE", "active_customers / cohort_size."),
        version_col(),
    ),
)

CHURN_WARNING = MartSchema(
    table="marts.churn_warning",
    description="Churn early warning (流失预警): customers not yet lost who are overdue against their own purchase cycle or buying less often, ranked by value at risk.",
    key=("customer_key",),
    columns=(
        as_of_col(),
        Col("customer_key", "VARCHAR", "Pseudonymous customer key."),
        Col("risk_rank", "BIGINT", "1 = most value at risk in the snapshot; ties broken by customer_key."),
        Col(
            "value_at_risk", _M, "net_monetary_12m: net spend in the last 365 days, what leaves with the customer, CNY."
        ),
        Col("reasons", "VARCHAR", "Comma-joined, in this order: overdue_vs_cycle, frequency_fell, spend_fell."),
        Col("days_since_last", "BIGINT", "Days from the last purchase day to as_of_date."),
        Col("purchase_cycle_days", "DOUBLE", "Own mean days between purchase days; null below two purchase days."),
        Col("overdue_ratio", "DOUBLE", "days_since_last / purchase_cycle_days; null without a cycle."),
        Col(
            "expected_next_purchase_date",
            "DATE",
            "last_purchase_date + purchase cycle (rounded to days); null without a cycle.",
        ),
        Col("stage", "VARCHAR", "Lifecycle stage (marts.lifecycle)."),
        Col("stage_zh", "VARCHAR", "Lifecycle stage in Chinese."),
        version_col(),
    ),
)


def _version(settings_version: str) -> ir.StringValue:
    return ibis.literal(settings_version, type="string")


#: The customer-360 columns the stage rules and the warning read.
_FACTS = (
    "as_of_date",
    "customer_key",
    "has_purchased",
    "last_purchase_date",
    "purchase_days",
    "recency_days",
    "days_since_last",
    "age_days",
    "purchase_cycle_days",
    "last_gap_days",
    "purchase_days_12m",
    "purchase_days_prev_12m",
    "net_monetary_12m",
    "net_monetary_prev_12m",
)


def _classify(c360: ir.Table, p: LifecycleParams) -> ir.Table:
    """The c360 facts the rules read plus the stage, the deciding rule and the signals both
    marts need (`_` columns)."""
    t = c360.select(*_FACTS)
    bought = t.has_purchased.fill_null(False)
    cycle = t.purchase_cycle_days.cast("float64")
    multi = cycle.notnull()
    dsl = t.days_since_last
    cur = t.purchase_days_12m.fill_null(0).cast("float64")
    prev = t.purchase_days_prev_12m.fill_null(0).cast("float64")
    spend = t.net_monetary_12m.cast("float64").fill_null(0.0)
    spend_prev = t.net_monetary_prev_12m.cast("float64").fill_null(0.0)

    threshold = ibis.ifelse(
        multi, ibis.greatest(p.churn_multiple * cycle, float(p.min_churn_days)), float(p.single_purchase_churn_days)
    )
    threshold = ibis.ifelse(bought, threshold, ibis.null("float64"))
    # the threshold that applied just before the last purchase (history without the last gap)
    prior_cycle = (t.recency_days - t.last_gap_days).cast("float64") / (t.purchase_days - 2).cast("float64")
    prior_threshold = ibis.ifelse(
        t.purchase_days >= 3,
        ibis.greatest(p.churn_multiple * prior_cycle, float(p.min_churn_days)),
        float(p.single_purchase_churn_days),
    )
    decline_threshold = ibis.ifelse(
        multi,
        ibis.greatest(p.decline_multiple * cycle, float(p.min_decline_days)),
        float(p.single_purchase_decline_days),
    )
    freq_fell = (prev >= p.trend_min_base) & (cur < (1 - p.trend_drop) * prev)
    spend_fell = (spend_prev >= p.spend_min_base) & (spend < (1 - p.spend_drop) * spend_prev)
    t = t.mutate(
        _threshold=threshold,
        _freq_fell=freq_fell.fill_null(False),
        _spend_fell=spend_fell.fill_null(False),
    )
    conditions = (
        ~bought,
        t.age_days <= p.new_days,
        dsl > t._threshold,
        multi & (t.last_gap_days > prior_threshold) & (dsl <= p.recovery_days),
        dsl > decline_threshold,
        t._freq_fell,
        t._spend_fell,
        (cur >= p.trend_min_base) & (cur > (1 + p.trend_rise) * prev),
        (spend >= p.spend_min_base) & (spend > (1 + p.spend_rise) * spend_prev),
        t.age_days <= p.young_days,
    )
    # null conditions (missing facts) count as false: CASE falls through to the next rule
    rule = ibis.cases(
        *((c.fill_null(False), name) for c, (name, _) in zip(conditions, RULES[:-1], strict=True)), else_=RULES[-1][0]
    )
    t = t.mutate(_rule=rule)
    stage = t._rule.substitute(dict(RULES))
    return t.mutate(
        _stage=stage,
        _frequency_trend=ibis.ifelse(prev > 0, cur / prev, ibis.null("float64")),
        _spend_trend=ibis.ifelse(spend_prev > 0, spend / spend_prev, ibis.null("float64")),
    )


def lifecycle(c360: ir.Table, params: LifecycleParams, *, settings_version: str = "") -> ir.Table:
    """The LIFECYCLE mart: one stage per customer and as-of date in `c360`."""
    t = _classify(c360, params)
    return t.select(
        as_of_date=t.as_of_date,
        customer_key=t.customer_key,
        stage=t._stage,
        stage_zh=t._stage.substitute(STAGE_ZH),
        stage_order=ibis.cases(*((t._stage == s, n) for s, n in STAGE_ORDER.items())).cast("int64"),
        churn_threshold_days=t._threshold.cast("float64"),
        days_since_last=t.days_since_last.cast("int64"),
        purchase_cycle_days=t.purchase_cycle_days.cast("float64"),
        frequency_trend=t._frequency_trend.cast("float64"),
        spend_trend=t._spend_trend.cast("float64"),
        rule=t._rule,
        settings_version=_version(settings_version),
    )


def churn_warning(c360: ir.Table, params: LifecycleParams, *, settings_version: str = "") -> ir.Table:
    """The CHURN_WARNING mart: slipping customers not yet terminated, ranked by value at risk."""
    t = _classify(c360, params)
    t = t.filter(~t._stage.isin(["potential", "termination"]))
    cycle = t.purchase_cycle_days.cast("float64")
    overdue = (cycle.notnull() & (t.days_since_last > params.warn_multiple * cycle)).fill_null(False)
    t = t.mutate(_overdue=overdue)
    t = t.filter(t._overdue | t._freq_fell)
    flags = (t._overdue, t._freq_fell, t._spend_fell)
    # a leading comma per reason, then drop the first character: a fixed-order join without arrays
    joined = sum(
        (ibis.ifelse(flag, f",{name}", "") for flag, name in zip(flags, WARNING_REASONS, strict=True)),
        ibis.literal(""),
    )
    value = t.net_monetary_12m.cast("decimal(18, 2)").fill_null(ibis.literal(0, type="decimal(18, 2)"))
    t = t.mutate(_value=value)
    rank = ibis.row_number().over(group_by=t.as_of_date, order_by=[t._value.desc(), t.customer_key.asc()]) + 1
    cycle = t.purchase_cycle_days.cast("float64")
    return t.select(
        as_of_date=t.as_of_date,
        customer_key=t.customer_key,
        risk_rank=rank.cast("int64"),
        value_at_risk=t._value,
        reasons=joined.substr(1),
        days_since_last=t.days_since_last.cast("int64"),
        purchase_cycle_days=cycle,
        overdue_ratio=t.days_since_last.cast("float64") / cycle,
        expected_next_purchase_date=t.last_purchase_date + cycle.round().cast("int64").as_interval("D"),
        stage=t._stage,
        stage_zh=t._stage.substitute(STAGE_ZH),
        settings_version=_version(settings_version),
    )


# --- purchase-day history: group churn and cohorts ------------------------------------


def _month_index(d: ir.DateValue) -> ir.IntegerValue:
    """Months since year 0 (January 2025 -> 2025 * 12 + 0): calendar arithmetic without intervals."""
    return d.year().cast("int64") * 12 + d.month().cast("int64") - 1


def _month_start(index: ir.IntegerValue) -> ir.DateValue:
    return ibis.date(index // 12, index % 12 + 1, 1)


def _last_complete_month_index(as_of: ir.DateValue, months: int) -> ir.IntegerValue:
    """Index (in units of `months`) of the last calendar period ending on or before `as_of`."""
    current = _month_index(as_of) // months
    period_end = _month_start((current + 1) * months) - ibis.interval(days=1)
    return ibis.ifelse(as_of == period_end, current, current - 1)


def _two_digits(x: ir.IntegerValue) -> ir.StringValue:
    return x.cast("string").lpad(2, "0")


def _period_label(start: ir.DateValue, kind: str) -> ir.StringValue:
    year = start.year().cast("string")
    if kind == "year":
        return year
    if kind == "quarter":
        return year + "Q" + ((start.month() + 2) // 3).cast("int64").cast("string")
    return year + "-" + _two_digits(start.month())


def _known_purchases(purchases: ir.Table) -> ir.Table:
    p = purchases.filter(purchases.purchase_date <= purchases.as_of_date)
    return p.select("as_of_date", "customer_key", "purchase_date").distinct()


def _periods(purchases: ir.Table, p: LifecycleParams) -> ir.Table:
    """(as_of_date, period, period_start, period_end): the complete periods reported per snapshot."""
    months = PERIOD_MONTHS[p.period]
    snaps = purchases.group_by("as_of_date").aggregate(_first_day=purchases.purchase_date.min())
    snaps = snaps.mutate(_last=_last_complete_month_index(snaps.as_of_date, months))
    grid = snaps.mutate(_k=ibis.range(0, p.max_periods).unnest())
    grid = grid.mutate(_idx=grid._last - grid._k)
    start = _month_start(grid._idx * months)
    end = _month_start((grid._idx + 1) * months) - ibis.interval(days=1)
    grid = grid.mutate(period_start=start, period_end=end)
    # a period starting on or before the first purchase cannot have customers at its start
    grid = grid.filter(grid.period_start > grid._first_day)
    return grid.select(
        "as_of_date",
        period=_period_label(grid.period_start, p.period),
        period_start="period_start",
        period_end="period_end",
    )


def churn(purchases: ir.Table, params: LifecycleParams, *, settings_version: str = "") -> ir.Table:
    """The CHURN mart: churn rate and group lifecycle per complete period, cohort and 'all'."""
    known = _known_purchases(purchases)
    periods = _periods(known, params)
    j = known.join(
        periods,
        [known.as_of_date == periods.as_of_date, known.purchase_date <= periods.period_end],
    )
    per_customer = j.group_by(["as_of_date", "period", "period_start", "period_end", "customer_key"]).aggregate(
        _first=j.purchase_date.min(),
        _last_before=j.purchase_date.max(where=j.purchase_date < j.period_start),
        _last_by_end=j.purchase_date.max(),
    )
    c = per_customer
    day_before = c.period_start - ibis.interval(days=1)
    active_at_start = c._last_before.notnull() & (day_before.delta(c._last_before, unit="day") <= params.churn_days)
    c = c.filter(active_at_start)
    c = c.mutate(
        _lost=(c.period_end.delta(c._last_by_end, unit="day") > params.churn_days).cast("int64"),
        cohort=_period_label(_month_start(_month_index(c._first) // 3 * 3), "quarter"),
    )
    keys = ["as_of_date", "period", "period_start", "period_end"]
    by_cohort = c.group_by([*keys, "cohort"]).aggregate(customers_at_start=c.count(), lost=c._lost.sum())
    overall = c.group_by(keys).aggregate(_n=c.count(), _lost=c._lost.sum())
    # every reported period gets an 'all' row, even when nobody was active at its start
    everyone = periods.left_join(overall, keys)
    everyone = everyone.select(
        *keys,
        cohort=ibis.literal("all"),
        customers_at_start=everyone._n.fill_null(0),
        lost=everyone._lost.fill_null(0),
    )
    rows = by_cohort.select(*keys, "cohort", "customers_at_start", "lost").union(everyone)

    n_start = rows.customers_at_start.cast("float64")
    rate = ibis.ifelse(rows.customers_at_start > 0, rows.lost.cast("float64") / n_start, ibis.null("float64"))
    rows = rows.mutate(churn_rate=rate)
    per_year = 12 // PERIOD_MONTHS[params.period]
    annual = rows.churn_rate if per_year == 1 else 1.0 - (1.0 - rows.churn_rate) ** per_year
    rows = rows.mutate(annual_churn_rate=annual)
    return rows.select(
        as_of_date=rows.as_of_date,
        period=rows.period,
        period_start=rows.period_start.cast("date"),
        period_end=rows.period_end.cast("date"),
        cohort=rows.cohort,
        customers_at_start=rows.customers_at_start.cast("int64"),
        lost=rows.lost.cast("int64"),
        churn_rate=rows.churn_rate.cast("float64"),
        retention_rate=(1.0 - rows.churn_rate).cast("float64"),
        annual_churn_rate=rows.annual_churn_rate.cast("float64"),
        group_lifecycle_years=ibis.ifelse(
            rows.annual_churn_rate > 0, 1.0 / rows.annual_churn_rate, ibis.null("float64")
        ).cast("float64"),
        settings_version=_version(settings_version),
    )


def cohort_retention(purchases: ir.Table, params: LifecycleParams, *, settings_version: str = "") -> ir.Table:
    """The COHORT_RETENTION mart: monthly first-purchase cohorts and their monthly activity."""
    known = _known_purchases(purchases)
    months = known.select("as_of_date", "customer_key", _m=_month_index(known.purchase_date)).distinct()
    first = months.group_by(["as_of_date", "customer_key"]).aggregate(_cm=months._m.min())
    first = first.mutate(_lm=_last_complete_month_index(first.as_of_date, 1))
    first = first.filter((first._cm <= first._lm) & (first._cm > first._lm - params.cohort_months))

    sizes = first.group_by(["as_of_date", "_cm", "_lm"]).aggregate(cohort_size=first.count())
    grid = sizes.mutate(months_since=ibis.range(0, sizes._lm - sizes._cm + 1).unnest().cast("int64"))

    a = months.join(first, ["as_of_date", "customer_key"])
    a = a.filter(a._m <= a._lm)
    a = a.mutate(months_since=(a._m - a._cm).cast("int64"))
    active = a.group_by(["as_of_date", "_cm", "months_since"]).aggregate(active_customers=a.customer_key.nunique())

    g = grid.left_join(active, ["as_of_date", "_cm", "months_since"])
    start = _month_start(g._cm)
    active_n = g.active_customers.fill_null(0).cast("int64")
    return g.select(
        as_of_date=g.as_of_date,
        cohort=start.year().cast("string") + "-" + _two_digits(start.month()),
        months_since=g.months_since,
        cohort_size=g.cohort_size.cast("int64"),
        active_customers=active_n,
        retention=(active_n.cast("float64") / g.cohort_size.cast("float64")),
        settings_version=_version(settings_version),
    )
