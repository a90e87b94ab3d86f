"""Prospects: the MAN rule (DOMAIN.md §10) applied to the leads from sales and marketing.

A prospect is worth pursuing when it has Money (it can pay), Authority (we talk to someone
who can decide) and Need (it wants what we sell). Each condition is a yes/no read from the
evidence in the lead's current version; each of the eight combinations carries one action,
so sales knows what to do next with every lead, and in which order.

Evidence (thresholds in `ProspectParams`):
- Money: declared_budget >= money_budget_threshold (default 50,000 CNY), or a credit-bureau
  rating in money_credit_ratings (default A, B). An empty budget or rating is no evidence:
  the rule asks for a reason to believe the prospect can pay, so 'not asked' counts as 'no'.
- Authority: contact_role in authority_roles (default owner, executive, purchasing_manager):
  the person sales talks to can decide or sign the purchase.
- Need: need in need_values (default stated_need, urgent), or a quote requested
  (quote_is_need): asking for a price is a stated need.

Versions: sales restates a lead when it learns more. A snapshot uses each lead's newest
version known by the end of its as-of day: the latest _partition_date on or before
as_of_date, among rows whose business_date is on or before it (as for customer records).
Leads created after the as-of date are not in the snapshot.

Code and priority: man_code has an upper-case letter for each condition that holds
('MaN' = money and need, no authority). Priority 1..8 ranks first by the number of
conditions that hold, then need before money before authority (a need is the hardest to
create, money can be financed, a decision-maker can be found): MAN, MaN, mAN, MAn, maN,
Man, mAn, man (`priority_order`). Actions follow the rule: all three, pursue now; one
missing, a specific action (find the decision-maker; check credit or offer financing;
create the need); two missing, nurture at low cost; none, not a customer: stop.

Staleness: a lead whose current version was delivered more than max_age_days (default 90)
before the as-of date is stale: its evidence may no longer hold; re-qualify before acting.

Personal data: the mart carries lead_id (an internal id) and coded attributes only, never
the organisation, contact name, phone or e-mail (DOMAIN.md §1, customer information
security); `evidence` names fields and coded values, never personal data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import ibis
import ibis.expr.types as ir

from analytics.asof import known, newest
from analytics.customer360 import KIND_ZH
from analytics.schema import Col, MartSchema, as_of_col, version_col
from quality.contracts import CONTACT_ROLES, CREDIT_RATINGS, NEED_LEVELS

# ruff: noqa: E501  (column descriptions and labels are documentation; keep them on one line)

#: The eight MAN codes in the default priority order (1 = pursue first).
MAN_CODES: tuple[str, ...] = ("MAN", "MaN", "mAN", "MAn", "maN", "Man", "mAn", "man")

MAN_LABELS: dict[str, str] = {
    "MAN": "ideal prospect",
    "MaN": "no authority",
    "mAN": "no money evidence",
    "MAn": "no need yet",
    "maN": "need only",
    "Man": "money only",
    "mAn": "authority only",
    "man": "not a prospect",
}

MAN_ZH: dict[str, str] = {
    "MAN": "理想的潜在顾客",
    "MaN": "缺少决策权",
    "mAN": "缺少购买力",
    "MAn": "尚无需求",
    "maN": "仅有需求",
    "Man": "仅有购买力",
    "mAn": "仅有决策权",
    "man": "非顾客",
}

MAN_ACTIONS: dict[str, str] = {
    "MAN": "Pursue now: assign a sales rep and prepare a quote.",
    "MaN": "Find the decision-maker and get introduced; keep the current contact as a sponsor.",
    "mAN": "Check credit and business standing; offer financing, instalments or a smaller package.",
    "MAn": "Create the need: show the value with skilled selling and education, then re-qualify.",
    "maN": "Nurture at low cost: keep in touch; look for budget and the decision-maker.",
    "Man": "Nurture at low cost: educate about the offer and reach the decision-maker.",
    "mAn": "Nurture at low cost: educate about the offer; check credit later.",
    "man": "Not a customer: stop active contact.",
}

MAN_ACTIONS_ZH: dict[str, str] = {
    "MAN": "立即跟进：指派销售人员并准备报价",
    "MaN": "设法找到有决策权的人并约见，请现联系人引荐",
    "mAN": "调查其业务状况与信用，提供融资、分期付款或较小的方案",
    "MAn": "创造需求：以熟练的推销技巧展示价值、引导需求，再重新评估",
    "maN": "低成本培养：保持联系，寻找预算和决策人",
    "Man": "低成本培养：介绍产品引导需求，接触决策人",
    "mAn": "低成本培养：介绍产品引导需求，日后再调查信用",
    "man": "非顾客：停止接触",
}

#: Lead source -> Chinese term.
SOURCE_ZH: dict[str, str] = {
    "trade_show": "展会",
    "web_form": "网站表单",
    "referral": "客户推荐",
    "cold_call": "陌生拜访",
    "partner": "合作伙伴",
    "campaign": "营销活动",
}


@dataclass(frozen=True)
class ProspectParams:
    """What counts as money, authority and need evidence, and when a lead goes stale."""

    #: Declared budget (CNY) from which a lead shows money.
    money_budget_threshold: float = 50_000.0
    #: Credit-bureau ratings that show money (whatever the budget).
    money_credit_ratings: tuple[str, ...] = ("A", "B")
    #: Contact roles that can decide or sign a purchase.
    authority_roles: tuple[str, ...] = ("owner", "executive", "purchasing_manager")
    #: Expressed need levels that count as a need.
    need_values: tuple[str, ...] = ("stated_need", "urgent")
    #: A quote request counts as a need.
    quote_is_need: bool = True
    #: A lead not updated for more than this many days is stale.
    max_age_days: int = 90
    #: The eight MAN codes from priority 1 (pursue first) to 8.
    priority_order: tuple[str, ...] = MAN_CODES

    def __post_init__(self) -> None:
        t = self.money_budget_threshold
        if not (isinstance(t, int | float) and math.isfinite(t) and 0 < t < 1e15):
            raise ValueError(f"money_budget_threshold must be a positive amount of CNY below 1e15, not {t!r}")
        for name, allowed in (
            ("money_credit_ratings", CREDIT_RATINGS),
            ("authority_roles", CONTACT_ROLES),
            ("need_values", NEED_LEVELS),
        ):
            values = getattr(self, name)
            if isinstance(values, str):
                raise ValueError(f"{name} must be a list of values, not the string {values!r}")
            unknown = sorted(set(values) - set(allowed))
            if unknown:
                raise ValueError(f"{name}: unknown values {unknown}; the leads contract allows {list(allowed)}")
        if not self.authority_roles:
            raise ValueError("authority_roles is empty: no lead could ever show authority")
        if not self.need_values and not self.quote_is_need:
            raise ValueError("need_values is empty and quote_is_need is false: no lead could ever show a need")
        if isinstance(self.max_age_days, bool) or not isinstance(self.max_age_days, int) or self.max_age_days < 1:
            raise ValueError(f"max_age_days must be a whole number of days >= 1, not {self.max_age_days!r}")
        if sorted(self.priority_order) != sorted(MAN_CODES):
            raise ValueError(f"priority_order must list each of the eight MAN codes once: {list(MAN_CODES)}")


PROSPECTS = MartSchema(
    table="marts.prospects",
    description="MAN qualification of prospects (DOMAIN.md §10): one row per lead and as-of date, from the lead's newest version delivered by then, with the action its money / authority / need combination calls for. No personal data.",
    key=("lead_id",),
    columns=(
        as_of_col(),
        Col("lead_id", "VARCHAR", "Lead id from the sales / marketing system (an internal id, not personal data)."),
        Col(
            "source",
            "VARCHAR",
            "Where the lead came from: trade_show, web_form, referral, cold_call, partner, campaign.",
        ),
        Col("source_zh", "VARCHAR", "Lead source in Chinese: 展会, 网站表单, 客户推荐, 陌生拜访, 合作伙伴, 营销活动."),
        Col("kind", "VARCHAR", "Prospect kind by nature: individual, enterprise, government, partner."),
        Col("kind_zh", "VARCHAR", "Prospect kind in Chinese: 个人消费者, 企业客户, 政府机构, 中间客户."),
        Col("region", "VARCHAR", "Province-level region (Chinese name)."),
        Col("created_date", "DATE", "Business date the lead was created."),
        Col("updated_date", "DATE", "Delivery day of the lead's current version (its last update)."),
        Col(
            "has_money",
            "BOOLEAN",
            "Money evidence: declared budget >= the threshold (default 50,000 CNY) or credit rating A/B.",
        ),
        Col("has_authority", "BOOLEAN", "Authority evidence: the contact is owner, executive or purchasing manager."),
        Col("has_need", "BOOLEAN", "Need evidence: need stated_need or urgent, or a quote requested."),
        Col(
            "man_code",
            "VARCHAR",
            "MAN combination, upper case = the condition holds: MAN, MaN, mAN, MAn, maN, Man, mAn, man.",
        ),
        Col(
            "man_label",
            "VARCHAR",
            "What the combination means, e.g. 'ideal prospect', 'no authority', 'not a prospect'.",
        ),
        Col("man_label_zh", "VARCHAR", "The combination in Chinese, e.g. 理想的潜在顾客, 缺少决策权, 非顾客."),
        Col("action", "VARCHAR", "What sales should do next with the lead."),
        Col("action_zh", "VARCHAR", "The action in Chinese."),
        Col(
            "priority",
            "BIGINT",
            "1 (pursue first) .. 8 (stop): more conditions first, then need before money before authority.",
        ),
        Col(
            "evidence",
            "VARCHAR",
            "Which fields gave M / A / N, e.g. 'money: budget >= 50000, credit A; need: quote requested'; 'no evidence' if none. Coded values only.",
        ),
        Col("age_days", "BIGINT", "Days from created_date to as_of_date."),
        Col(
            "stale",
            "BOOLEAN",
            "Current version delivered more than max_age_days (default 90) before as_of_date: re-qualify before acting.",
        ),
        version_col(),
    ),
)


def _isin(value: ir.Value, values: tuple[str, ...]) -> ir.BooleanValue:
    """Membership that is false (not null, not an empty IN list) when the value is missing."""
    if not values:
        return ibis.literal(False)
    return value.isin(list(values)).fill_null(False)


def _lookup(value: ir.Value, mapping: dict[str, str] | dict[str, int], type_: str) -> ir.Value:
    """mapping[value] as `type_`; null for a value the mapping does not know."""
    return value.cases(*((k, ibis.literal(v, type=type_)) for k, v in mapping.items()), else_=None)


#: Within one delivery day (which the router prevents) the columns the mart reads decide,
#: so whichever version is picked gives the same result.
_LEAD_TIEBREAK = (
    "business_date",
    "source",
    "kind",
    "region",
    "declared_budget",
    "credit_rating",
    "contact_role",
    "need",
    "requested_quote",
)


def current_leads(leads: ir.Table, as_of: ir.Table) -> ir.Table:
    """Each lead's newest version known by the end of each as-of date (one row per
    as_of_date and lead_id): latest _partition_date, business_date not after the date.

    Staging holds one version per lead and delivery day; should two rows share a day
    anyway, the remaining order keys cover every column the mart reads, so whichever is
    picked gives the same result."""
    dates = as_of.select(as_of_date=as_of.as_of_date.cast("date")).distinct()
    return newest(known(leads, dates), "lead_id", tiebreak=_LEAD_TIEBREAK)


def prospects(
    leads: ir.Table,
    as_of: ir.Table,
    params: ProspectParams | None = None,
    *,
    settings_version: str = "",
) -> ir.Table:
    """marts.prospects: the MAN code, label, action and priority of every lead per as-of date.

    `leads` are staging.leads rows (every version: contract columns, business_date,
    _partition_date); `as_of` has one column, as_of_date.
    """
    p = params or ProspectParams()
    cur = current_leads(leads, as_of)
    budget = cur.declared_budget.cast("decimal(18, 2)")
    limit = Decimal(str(round(p.money_budget_threshold, 2)))  # whole fen, as the budgets are
    by_budget = (budget >= ibis.literal(limit, type="decimal(18, 2)")).fill_null(False)
    by_rating = _isin(cur.credit_rating, p.money_credit_ratings)
    has_authority = _isin(cur.contact_role, p.authority_roles)
    by_need = _isin(cur.need, p.need_values)
    by_quote = cur.requested_quote.fill_null(False) if p.quote_is_need else ibis.literal(False)
    has_money = by_budget | by_rating
    has_need = by_need | by_quote

    def listed(*items: tuple[ir.BooleanValue, ir.StringValue | str]) -> ir.StringValue:
        """', '-joined texts of the items whose condition holds ('' if none)."""
        joined = ibis.literal("")
        for cond, text in items:
            joined = joined + cond.ifelse(ibis.literal(", ") + text, ibis.literal(""))
        return joined.substr(2)

    money_text = listed(
        (by_budget, f"budget >= {format(limit.normalize(), 'f')}"), (by_rating, "credit " + cur.credit_rating)
    )
    need_text = listed((by_need, "need " + cur.need), (by_quote, "quote requested"))
    parts = ibis.literal("")
    for cond, name, text in (
        (has_money, "money", money_text),
        (has_authority, "authority", "role " + cur.contact_role),
        (has_need, "need", need_text),
    ):
        parts = parts + cond.ifelse(ibis.literal(f"; {name}: ") + text, ibis.literal(""))
    evidence = (parts == "").ifelse(ibis.literal("no evidence"), parts.substr(2))

    code = has_money.ifelse("M", "m") + has_authority.ifelse("A", "a") + has_need.ifelse("N", "n")
    priority = {c: i + 1 for i, c in enumerate(p.priority_order)}
    out = cur.select(
        as_of_date=cur.as_of_date,
        lead_id=cur.lead_id.cast("string"),
        source=cur.source.cast("string"),
        source_zh=_lookup(cur.source, SOURCE_ZH, "string"),
        kind=cur.kind.cast("string"),
        kind_zh=_lookup(cur.kind, KIND_ZH, "string"),
        region=cur.region.cast("string"),
        created_date=cur.business_date.cast("date"),
        updated_date=cur._partition_date.cast("date"),
        has_money=has_money,
        has_authority=has_authority,
        has_need=has_need,
        man_code=code,
        evidence=evidence,
        age_days=cur.as_of_date.delta(cur.business_date.cast("date"), unit="day").cast("int64"),
        stale=cur.as_of_date.delta(cur._partition_date.cast("date"), unit="day") > p.max_age_days,
    )
    return out.select(
        "as_of_date",
        "lead_id",
        "source",
        "source_zh",
        "kind",
        "kind_zh",
        "region",
        "created_date",
        "updated_date",
        "has_money",
        "has_authority",
        "has_need",
        "man_code",
        man_label=_lookup(out.man_code, MAN_LABELS, "string"),
        man_label_zh=_lookup(out.man_code, MAN_ZH, "string"),
        action=_lookup(out.man_code, MAN_ACTIONS, "string"),
        action_zh=_lookup(out.man_code, MAN_ACTIONS_ZH, "string"),
        priority=_lookup(out.man_code, priority, "int64"),
        evidence=out.evidence,
        age_days=out.age_days,
        stale=out.stale,
        settings_version=ibis.literal(settings_version, type="string"),
    )
