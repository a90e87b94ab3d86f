"""Recommended actions per customer group (DOMAIN.md §9, seeds 000/002): one static,
reviewed table that says what the CRM team does with every segment, tier, stage and
matrix cell the other marts assign, and how many customers each group holds.

Why one table: the segmentations overlap (an RFM "champion" is usually a platinum
customer in the strategic cell), and a team acting on them needs consistent advice
in one place rather than in six modules. The actions follow the material's rules:

- high value -> personalised service, a key-account manager, priority supply,
  executive visits (protect and deepen);
- low value -> standard, low-cost service, offers that raise purchase frequency,
  moving them up a tier;
- decline -> find and correct the failure, compensate, win back, and an
  early-warning mechanism (预警长效机制) so it does not recur;
- potential -> understand the customer; new -> develop value; stable -> retain and
  grade.

`priority` orders the groups by how much attention and budget they deserve now:
1 = act first / top resources (protect the best, rescue valuable customers at risk),
2 = active development, 3 = standard programme, 4 = minimal-cost handling.

`segment_strategy` counts the customers of every group per as-of date. Every code of
each dimension passed in appears for every as-of date present in any input (count 0
when empty), so a dashboard shows empty groups instead of losing them. A code the
table does not know (a new segment, a typo upstream, a null) is data, not a crash:
it gets its own row with label and actions 'unmapped' (未映射) and a null priority,
so no customer disappears from the counts. An unknown *dimension* name is a
programming error and raises ValueError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import ibis
import ibis.expr.types as ir
import pandas as pd

from analytics.schema import Col, MartSchema, as_of_col, version_col

# ruff: noqa: E501  (the strategy texts are documentation; keep each on one line)


class Strategy(NamedTuple):
    """What a group is called and what to do with it."""

    label: str
    label_zh: str
    actions: str
    actions_zh: str
    priority: int


#: Label and actions of a code the table does not know.
UNMAPPED = "unmapped"
UNMAPPED_ZH = "未映射"

_S = Strategy

#: dimension -> code -> strategy. Codes are the ones the assigning modules emit.
DIMENSIONS: dict[str, dict[str, Strategy]] = {
    "rfm_segment": {
        "champions": _S(
            "Champions", "冠军客户",
            "Assign a key-account manager; early access to new products and VIP events; personalised thank-you gifts; invite reviews and referrals.",
            "指派专属客户经理；新品优先体验和 VIP 活动邀请；个性化答谢礼品；邀请评价和推荐。",
            1,
        ),
        "loyal": _S(
            "Loyal", "忠诚客户",
            "Membership upgrade and loyalty points; cross-sell complementary categories; priority service line; ask for referrals.",
            "会员等级升级和积分奖励；交叉销售互补品类；优先服务通道；邀请推荐新客户。",
            1,
        ),
        "potential_loyalist": _S(
            "Potential loyalist", "潜在忠诚客户",
            "Offer membership with a first-tier benefit; recommend products from their categories; reward the next two repeat purchases.",
            "邀请加入会员并给予首级权益；推荐其常购品类的商品；对接下来两次复购给予奖励。",
            2,
        ),
        "new": _S(
            "New customer", "新客户",
            "Welcome series with onboarding and usage tips; second-purchase coupon within 30 days; ask about their needs to develop value.",
            "欢迎系列消息和使用指导；30 天内有效的二次购买优惠券；了解需求以开发客户价值。",
            2,
        ),
        "promising": _S(
            "Promising", "有潜力客户",
            "Build awareness of the range with curated recommendations; free trial or sample of a second category; time-limited offer to raise frequency.",
            "通过精选推荐让客户了解产品线；赠送第二个品类的试用装；限时优惠提高购买频率。",
            3,
        ),
        "need_attention": _S(
            "Need attention", "需要关注客户",
            "Personalised reactivation offer based on past purchases; satisfaction check-in call; limited-time bundle.",
            "基于购买历史的个性化激活优惠；满意度回访电话；限时组合套餐。",
            2,
        ),
        "about_to_sleep": _S(
            "About to sleep", "即将沉睡客户",
            "Reminder of their regular products with a discount; recommend popular items; survey why they buy less.",
            "提醒其常购商品并附折扣；推荐热销商品；调查购买减少的原因。",
            3,
        ),
        "at_risk": _S(
            "At risk", "有流失风险客户",
            "Personal outreach to find and correct the failure; win-back offer; put them on the churn early-warning list.",
            "主动联系找出并纠正服务失误；赢回优惠；纳入流失预警名单。",
            1,
        ),
        "cant_lose": _S(
            "Can't lose them", "不能失去的客户",
            "Senior manager or executive visit within two weeks; compensate any service failure; tailored renewal terms; escalate in the early-warning mechanism.",
            "两周内由高层或客户经理拜访；对服务失误给予补偿；量身定制续约条件；在预警机制中升级处理。",
            1,
        ),
        "hibernating": _S(
            "Hibernating", "休眠客户",
            "Low-cost automated reactivation (seasonal offer, new-arrival mail); stop costly channels if there is no response.",
            "低成本自动化激活（季节性优惠、新品邮件）；无响应则停止高成本渠道投入。",
            4,
        ),
        "lost": _S(
            "Lost", "流失客户",
            "One last win-back campaign with a strong offer; exit survey on the reason for leaving; otherwise no further marketing spend.",
            "最后一次高力度赢回活动；流失原因调查；无效则停止营销投入。",
            4,
        ),
    },
    "seed_group": {
        "protect": _S(
            "Protect (top 20 % by R×F×M)", "保护",
            "Key-account management, personalised service and priority supply; regular executive contact; track satisfaction closely.",
            "大客户管理、个性化服务和优先供货；高层定期联络；密切跟踪满意度。",
            1,
        ),
        "develop": _S(
            "Develop (middle 60 %)", "投资发展",
            "Invest in growth: cross-sell and up-sell, frequency offers, membership upgrades; move them into the top group.",
            "投资发展：交叉销售和向上销售、提升频率的优惠、会员升级；推动其进入最优客户群。",
            2,
        ),
        "avoid": _S(
            "Avoid (bottom 20 %)", "避免",
            "Standard self-service only; no acquisition or retention spend; review credit terms before extending them.",
            "仅提供标准自助服务；不投入获客和保留费用；延长信用前先审查。",
            4,
        ),
    },
    "value_tier": {
        "platinum": _S(
            "Platinum / VIP", "白金客户",
            "Dedicated key-account manager; personalised service and customised offers; priority supply in shortages; executive visits twice a year.",
            "专属大客户经理；个性化服务和定制方案；缺货时优先供货；高层每年两次拜访。",
            1,
        ),
        "gold": _S(
            "Gold / major", "黄金客户",
            "Account manager for the portfolio; volume incentives and cross-selling to grow share of wallet toward platinum; priority service line.",
            "客户经理负责；批量激励和交叉销售以提高钱包份额、向白金客户升级；优先服务通道。",
            2,
        ),
        "iron": _S(
            "Iron / ordinary", "铁客户",
            "Standard service; offers that raise purchase frequency and basket size; loyalty programme to move them up to gold.",
            "标准化服务；提高购买频率和客单价的优惠；通过会员计划推动其升级为黄金客户。",
            3,
        ),
        "lead": _S(
            "Lead / small", "铅客户",
            "Low-cost standard or self-service channels; cut costly services; raise minimum order or prices for loss-making customers (negative profit).",
            "低成本标准或自助服务渠道；削减高成本服务；对负利润客户提高起订量或价格。",
            4,
        ),
    },
    "value_group": {
        "very_high": _S(
            "Very high value", "很高",
            "Key-account manager and personalised service; priority supply; regular executive visits; protect at all cost.",
            "专属客户经理和个性化服务；优先供货；高层定期拜访；全力保护。",
            1,
        ),
        "high": _S(
            "High value", "高",
            "Account manager; tailored offers and early access; cross-sell to lift them to very high value.",
            "客户经理负责；定制优惠和新品优先；交叉销售推动其成为极高价值客户。",
            1,
        ),
        "moderate": _S(
            "Moderate value", "适度",
            "Standard service with targeted frequency and basket offers; membership upgrade path.",
            "标准服务加针对性的频率和客单价优惠；会员升级通道。",
            3,
        ),
        "low": _S(
            "Low value", "低",
            "Standard low-cost service; offers that raise frequency; move them up a value group.",
            "标准低成本服务；提高购买频率的优惠；推动其升级到更高价值组。",
            3,
        ),
        "very_low": _S(
            "Very low value", "很低",
            "Self-service only; stop loss-making services; reprice or drop customers whose profit stays negative.",
            "仅提供自助服务；停止亏损的服务；对持续负利润客户调整价格或放弃。",
            4,
        ),
    },
    "lifecycle_stage": {
        "potential": _S(
            "Potential", "潜在客户期",
            "Understand the prospect: qualify needs and budget (MAN), send product information and a first-order incentive.",
            "了解客户：确认需求和预算（MAN 法则），提供产品资料和首单激励。",
            3,
        ),
        "development": _S(
            "Development / new", "开发期",
            "Develop value: onboarding, second-purchase incentive, learn their needs and recommend fitting products.",
            "开发客户价值：入门引导、二次购买激励、了解需求并推荐合适的产品。",
            2,
        ),
        "growth": _S(
            "Growth", "成长期",
            "Cross-sell and up-sell while spend rises; membership upgrade; assign an account manager to large accounts.",
            "在消费增长时进行交叉销售和向上销售；会员升级；为大客户指派客户经理。",
            2,
        ),
        "maturity": _S(
            "Maturity", "成熟期",
            "Retain and grade: loyalty rewards, personalised service by value tier, regular satisfaction checks.",
            "保持并分级管理：忠诚奖励、按价值等级提供个性化服务、定期满意度回访。",
            1,
        ),
        "decline": _S(
            "Decline", "衰退期",
            "Find and correct the failure, compensate, targeted win-back offer; add to the early-warning mechanism (预警长效机制).",
            "找出并纠正服务失误、给予补偿、针对性赢回优惠；纳入预警长效机制。",
            1,
        ),
        "termination": _S(
            "Termination / churned", "终止期",
            "Exit survey on the reason for leaving; one win-back campaign for valuable former customers; otherwise stop spend.",
            "流失原因调查；对有价值的老客户进行一次赢回活动；否则停止投入。",
            4,
        ),
        "recovery": _S(
            "Recovery", "恢复期",
            "Welcome back with a personal message; fix what made them leave; watch them closely for a relapse.",
            "发送个性化的欢迎回归信息；解决导致流失的问题；密切关注防止再次流失。",
            2,
        ),
    },
    "loyalty_level": {
        "high": _S(
            "High loyalty", "高忠诚",
            "Reward loyalty (points, tiers, exclusive events); ask for referrals and reviews; deepen with cross-selling.",
            "奖励忠诚（积分、等级、专属活动）；邀请推荐和评价；通过交叉销售加深关系。",
            1,
        ),
        "medium": _S(
            "Medium loyalty", "中忠诚",
            "Strengthen the relationship: personalised recommendations, satisfaction follow-up, membership benefits.",
            "加强关系：个性化推荐、满意度跟进、会员权益。",
            2,
        ),
        "low": _S(
            "Low loyalty", "低忠诚",
            "Find out why (survey, complaint review); price-neutral service improvements; frequency incentives before discounting.",
            "找出原因（调查、投诉分析）；在不降价的前提下改进服务；先用频率激励再考虑折扣。",
            3,
        ),
    },
    "credit_loyalty": {
        "HH": _S(
            "High credit, high loyalty", "高信用高忠诚",
            "Core customers: generous credit terms, key-account service, priority supply, executive visits.",
            "核心客户：宽松的信用条件、大客户服务、优先供货、高层拜访。",
            1,
        ),
        "HL": _S(
            "High credit, low loyalty", "高信用低忠诚",
            "Win loyalty from a customer who pays well: understand unmet needs, tailored offers, account manager follow-up.",
            "争取付款良好客户的忠诚：了解未满足的需求、定制优惠、客户经理跟进。",
            2,
        ),
        "LH": _S(
            "Low credit, high loyalty", "低信用高忠诚",
            "Keep the relationship but protect receivables: shorter terms or deposits, credit limit, early-payment discount, dunning.",
            "保持关系但保护应收账款：缩短账期或收取预付款、设定信用额度、提前付款折扣、及时催收。",
            2,
        ),
        "LL": _S(
            "Low credit, low loyalty", "低信用低忠诚",
            "Cash or prepayment only; standard self-service; no marketing spend.",
            "仅限现款或预付款；标准自助服务；不投入营销费用。",
            4,
        ),
    },
    "scale_loyalty": {
        "HH": _S(
            "Large scale, high loyalty", "大规模高忠诚",
            "Strategic accounts: key-account manager, priority supply, customised solutions, executive visits.",
            "战略客户：大客户经理、优先供货、定制解决方案、高层拜访。",
            1,
        ),
        "HL": _S(
            "Large scale, low loyalty", "大规模低忠诚",
            "Large but uncommitted: win share of wallet with volume agreements, dedicated account team and service guarantees.",
            "规模大但不稳定：通过批量协议、专属服务团队和服务承诺提高钱包份额。",
            1,
        ),
        "LH": _S(
            "Small scale, high loyalty", "小规模高忠诚",
            "Loyal but small: efficient standard service, loyalty rewards, cross-sell to grow their volume.",
            "忠诚但规模小：高效的标准服务、忠诚奖励、交叉销售扩大采购量。",
            3,
        ),
        "LL": _S(
            "Small scale, low loyalty", "小规模低忠诚",
            "Low-cost self-service and standard offers only.",
            "仅提供低成本自助服务和标准优惠。",
            4,
        ),
    },
    "cube": {
        "HHH": _S(
            "High credit, high loyalty, large scale", "高信用高忠诚大规模",
            "Most valuable: key-account manager, priority supply, best credit terms, executive visits, joint planning.",
            "最有价值客户：大客户经理、优先供货、最优信用条件、高层拜访、联合规划。",
            1,
        ),
        "HHL": _S(
            "High credit, high loyalty, small scale", "高信用高忠诚小规模",
            "Reliable and loyal: grow volume with cross-selling and volume incentives; good credit terms.",
            "可靠且忠诚：通过交叉销售和批量激励扩大采购量；给予良好信用条件。",
            2,
        ),
        "HLH": _S(
            "High credit, low loyalty, large scale", "高信用低忠诚大规模",
            "Large good payer not yet committed: dedicated account team, service guarantees, long-term agreement to win loyalty.",
            "规模大、付款好但尚不忠诚：专属服务团队、服务承诺、长期协议以赢得忠诚。",
            1,
        ),
        "HLL": _S(
            "High credit, low loyalty, small scale", "高信用低忠诚小规模",
            "Standard service with frequency offers and membership to build loyalty.",
            "标准服务加提高频率的优惠和会员计划以培养忠诚。",
            3,
        ),
        "LHH": _S(
            "Low credit, high loyalty, large scale", "低信用高忠诚大规模",
            "Valuable but risky receivables: credit limit, shorter terms, early-payment discount; keep the relationship at manager level.",
            "有价值但应收账款风险高：设定信用额度、缩短账期、提前付款折扣；由经理层维护关系。",
            2,
        ),
        "LHL": _S(
            "Low credit, high loyalty, small scale", "低信用高忠诚小规模",
            "Prepayment or cash on delivery; standard service; loyalty rewards that do not extend credit.",
            "预付款或货到付款；标准服务；不涉及信用的忠诚奖励。",
            3,
        ),
        "LLH": _S(
            "Low credit, low loyalty, large scale", "低信用低忠诚大规模",
            "Secure payment first (deposits, guarantees); only then invest in the relationship.",
            "先保障回款（预付款、担保），再考虑投入关系维护。",
            3,
        ),
        "LLL": _S(
            "Low credit, low loyalty, small scale", "低信用低忠诚小规模",
            "Cash only, self-service, no marketing spend.",
            "仅限现款，自助服务，不投入营销费用。",
            4,
        ),
    },
    "current_potential": {
        "strategic": _S(
            "Strategic (high current, high potential)", "重点发展",
            "Invest most: key-account manager, joint growth plan, priority supply, executive visits.",
            "重点投入：大客户经理、共同成长计划、优先供货、高层拜访。",
            1,
        ),
        "invest": _S(
            "Invest (low current, high potential)", "培养",
            "Develop: understand their full demand, cross-sell and up-sell, trial offers, account manager for organisations.",
            "培养：了解其全部需求，交叉销售和向上销售，试用优惠，为机构客户指派客户经理。",
            2,
        ),
        "maintain": _S(
            "Maintain (high current, low potential)", "维持",
            "Keep current value at low cost to serve: retention rewards, efficient service, watch for decline.",
            "以较低服务成本维持现有价值：保留奖励、高效服务、关注衰退迹象。",
            2,
        ),
        "reconsider": _S(
            "Reconsider (low current, low potential)", "重新考虑",
            "Standard self-service; cut unprofitable services; reprice or let go of loss-making customers.",
            "标准自助服务；削减无利润的服务；对亏损客户调整价格或放弃。",
            4,
        ),
    },
}  # fmt: skip

#: (dimension, code) -> strategy, the flat view of DIMENSIONS.
STRATEGIES: dict[tuple[str, str], Strategy] = {
    (dim, code): s for dim, codes in DIMENSIONS.items() for code, s in codes.items()
}

#: dimension -> its codes, in the order above.
DIMENSION_CODES: dict[str, tuple[str, ...]] = {dim: tuple(codes) for dim, codes in DIMENSIONS.items()}


def strategy_for(dimension: str, code: str) -> tuple[str, str]:
    """(actions, actions_zh) for a group; KeyError names the unknown dimension or code."""
    try:
        s = STRATEGIES[(dimension, code)]
    except KeyError:
        raise KeyError(f"no strategy for {dimension}={code!r}; known: {DIMENSION_CODES.get(dimension)}") from None
    return s.actions, s.actions_zh


SEGMENT_STRATEGY = MartSchema(
    table="marts.segment_strategy",
    description="Recommended actions per customer group: every segment, tier, stage and matrix cell with its customer count per as-of date.",
    key=("dimension", "code"),
    columns=(
        as_of_col(),
        Col(
            "dimension",
            "VARCHAR",
            "Segmentation the group belongs to: rfm_segment, seed_group, value_tier, value_group, lifecycle_stage, loyalty_level, credit_loyalty, scale_loyalty, cube, current_potential.",
        ),
        Col(
            "code",
            "VARCHAR",
            "Group code as the assigning mart writes it (e.g. champions, platinum, HHL); null if the mart wrote null.",
        ),
        Col("label", "VARCHAR", "Group name in English ('unmapped' for a code this table does not know)."),
        Col("label_zh", "VARCHAR", "Group name in Chinese ('未映射' for an unknown code)."),
        Col("customers", "BIGINT", "Distinct customers in the group on this date (0 when none)."),
        Col(
            "customer_share",
            "DOUBLE",
            "customers / distinct customers assigned in this dimension on this date; null if the dimension has none.",
        ),
        Col("actions", "VARCHAR", "Recommended actions (DOMAIN.md §9); 'unmapped' for an unknown code."),
        Col("actions_zh", "VARCHAR", "Recommended actions in Chinese; '未映射' for an unknown code."),
        Col(
            "priority",
            "BIGINT",
            "1 = act first / top resources, 2 = active development, 3 = standard programme, 4 = minimal cost; null for an unknown code.",
        ),
        version_col(),
    ),
)


def _catalogue(dimensions: list[str]) -> ir.Table:
    rows = [
        {"dimension": dim, "code": code, **s._asdict()} for dim in dimensions for code, s in DIMENSIONS[dim].items()
    ]
    frame = pd.DataFrame(rows, columns=["dimension", "code", *Strategy._fields])
    return ibis.memtable(frame.astype({"priority": "int64"}))


def segment_strategy(assignments: Mapping[str, ir.Table], *, settings_version: str = "") -> ir.Table:
    """Customers and recommended actions per (as_of_date, dimension, code).

    `assignments` maps a dimension name to a table (as_of_date, customer_key, code).
    """
    if not assignments:
        raise ValueError("segment_strategy needs at least one dimension's assignments")
    unknown = sorted(set(assignments) - set(DIMENSIONS))
    if unknown:
        raise ValueError(f"unknown dimensions {unknown}; known: {sorted(DIMENSIONS)}")
    dims = sorted(assignments)

    counts, totals = [], []
    for dim in dims:
        t = assignments[dim]
        t = t.select(as_of_date=t.as_of_date.cast("date"), customer_key=t.customer_key, code=t.code.cast("string"))
        counts.append(
            t.group_by(["as_of_date", "code"])
            .aggregate(customers=t.customer_key.nunique())
            .mutate(dimension=ibis.literal(dim, type="string"))
        )
        totals.append(
            t.group_by("as_of_date")
            .aggregate(total=t.customer_key.nunique())
            .mutate(dimension=ibis.literal(dim, type="string"))
        )
    count = ibis.union(*counts) if len(counts) > 1 else counts[0]
    total = ibis.union(*totals) if len(totals) > 1 else totals[0]
    dates = total.select("as_of_date").distinct()

    cat = _catalogue(dims)
    grid = dates.cross_join(cat)
    mapped = grid.left_join(
        count,
        [grid.as_of_date == count.as_of_date, grid.dimension == count.dimension, grid.code == count.code],
    ).select(
        as_of_date=grid.as_of_date,
        dimension=grid.dimension,
        code=grid.code,
        label=grid.label,
        label_zh=grid.label_zh,
        customers=count.customers.fill_null(0),
        actions=grid.actions,
        actions_zh=grid.actions_zh,
        priority=grid.priority.cast("int64"),
    )
    # Codes the table does not know (or null) keep their customers under 'unmapped'.
    lost = count.anti_join(cat, [count.dimension == cat.dimension, count.code == cat.code])
    unmapped = lost.select(
        as_of_date=lost.as_of_date,
        dimension=lost.dimension,
        code=lost.code,
        label=ibis.literal(UNMAPPED, type="string"),
        label_zh=ibis.literal(UNMAPPED_ZH, type="string"),
        customers=lost.customers,
        actions=ibis.literal(UNMAPPED, type="string"),
        actions_zh=ibis.literal(UNMAPPED_ZH, type="string"),
        priority=ibis.null("int64"),
    )
    rows = ibis.union(mapped, unmapped)
    out = rows.left_join(total, [rows.as_of_date == total.as_of_date, rows.dimension == total.dimension])
    return out.select(
        as_of_date=rows.as_of_date,
        dimension=rows.dimension,
        code=rows.code,
        label=rows.label,
        label_zh=rows.label_zh,
        customers=rows.customers.cast("int64"),
        customer_share=ibis.ifelse(
            total.total > 0, rows.customers.cast("float64") / total.total.cast("float64"), ibis.null("float64")
        ),
        actions=rows.actions,
        actions_zh=rows.actions_zh,
        priority=rows.priority,
        settings_version=ibis.literal(settings_version, type="string"),
    )
