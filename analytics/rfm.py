"""RFM (DOMAIN.md §2): recency, frequency and monetary scores per buying customer, the
named R/F segments a CRM team acts on, and the seed's protect / develop / avoid rule.

Population: rows of customer 360 with ``has_purchased`` (prospects have no R, F or M).
Every as-of date in the input is scored on its own: ranks and counts are partitioned
by ``as_of_date``, so one call over many snapshots equals one call per snapshot.

Measures (``RFMParams.window``):

- R = ``days_since_last`` (days from the last purchase day to the as-of date);
- F = purchase days in the window: ``purchase_days_12m`` ("12m", default) or
  ``purchase_days`` ("lifetime"). Purchase days, not orders, so a split basket is one
  occasion. With "12m", a buyer who last bought over a year ago has F = 0;
- M = net value (completed minus returned) in the window: ``net_monetary_12m`` or
  ``net_monetary``; it can be 0 or negative (returns). A missing F or M counts as 0.

Scores 1-5, tie-aware rather than strict quintiles, because F is heavily tied (often
half the customers bought once) and splitting equal values by row order would make
the result depend on storage order::

    score = 1 + floor(5 * s / n)      (never above 5, since s <= n - 1)

where n = buying customers in the snapshot and s = customers with a strictly *worse*
value: for F and M strictly smaller, for R strictly larger ``days_since_last`` (R is
reversed: the most recent buyers get 5). Equal values always get equal scores. The
price of tie-awareness is gaps: if half the customers have F = 1 they all get F score 1
and the next F value (s = n/2) starts at score 3, so score 2 is empty; scores are
therefore not equal-sized quintiles, and a snapshot where everyone ties scores 1.

Named segments use R and F only (M is kept in ``rfm_cell`` and the product). The map
is ``RFMParams.segment_map``: (code, r_min, r_max, f_min, f_max) rules, first match
wins, and it must cover all 25 (R, F) cells. The default, in the spirit of the widely
used RFM segment map (rows R, columns F)::

         F=1             F=2                 F=3                 F=4         F=5
    R=5  new             potential_loyalist  potential_loyalist  champions   champions
    R=4  promising       potential_loyalist  potential_loyalist  loyal       loyal
    R=3  about_to_sleep  about_to_sleep      need_attention      loyal       loyal
    R=2  hibernating     hibernating         at_risk             at_risk     at_risk
    R=1  lost            lost                at_risk             cant_lose   cant_lose

Seed rule (seed 001), tie-aware so that every customer lands in exactly one group:
product = R x F x M scores (1..125); with shares (protect, develop, avoid) =
``RFMParams.seed_shares`` (default 0.2 / 0.6 / 0.2):

- protect (保护) if (customers with a strictly larger product) / n < protect share;
- else avoid (避免) if (customers with a strictly smaller product) / n < avoid share;
- else develop (投资发展).

Customers tied at a boundary all go the same way, so group sizes only approximate
20/60/20; protect is tested first, so a snapshot where everyone ties is all protect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from analytics.schema import Col, MartSchema, as_of_col, version_col

SEGMENT_ZH: dict[str, str] = {
    "champions": "冠军客户",
    "loyal": "忠诚客户",
    "potential_loyalist": "潜在忠诚客户",
    "new": "新客户",
    "promising": "有潜力客户",
    "need_attention": "需要关注客户",
    "about_to_sleep": "即将沉睡客户",
    "at_risk": "有流失风险客户",
    "cant_lose": "不能失去的客户",
    "hibernating": "休眠客户",
    "lost": "流失客户",
}

SEED_GROUP_ZH: dict[str, str] = {
    "protect": "保护",
    "develop": "投资发展",
    "avoid": "避免",
}

#: (segment, r_min, r_max, f_min, f_max), first match wins; see the grid in the module docstring.
DEFAULT_SEGMENT_MAP: tuple[tuple[str, int, int, int, int], ...] = (
    ("champions", 5, 5, 4, 5),
    ("loyal", 3, 4, 4, 5),
    ("potential_loyalist", 4, 5, 2, 3),
    ("new", 5, 5, 1, 1),
    ("promising", 4, 4, 1, 1),
    ("need_attention", 3, 3, 3, 3),
    ("about_to_sleep", 3, 3, 1, 2),
    ("cant_lose", 1, 1, 4, 5),
    ("at_risk", 1, 2, 3, 5),
    ("hibernating", 2, 2, 1, 2),
    ("lost", 1, 1, 1, 2),
)

_WINDOWS = {
    "12m": ("purchase_days_12m", "net_monetary_12m"),
    "lifetime": ("purchase_days", "net_monetary"),
}


@dataclass(frozen=True)
class RFMParams:
    """How customers are scored and segmented."""

    #: Window of F and M: "12m" (purchase_days_12m, net_monetary_12m) or "lifetime"
    #: (purchase_days, net_monetary). R is always days_since_last.
    window: str = "12m"
    #: Named segments: (code, r_min, r_max, f_min, f_max) rules over the R and F scores,
    #: bounds inclusive, first match wins; must cover all 25 (R, F) cells.
    segment_map: tuple[tuple[str, int, int, int, int], ...] = DEFAULT_SEGMENT_MAP
    #: Seed rule shares of customers (protect, develop, avoid) by R x F x M product; sum 1.
    seed_shares: tuple[float, float, float] = (0.2, 0.6, 0.2)

    def __post_init__(self) -> None:
        if self.window not in _WINDOWS:
            raise ValueError(f"window must be one of {sorted(_WINDOWS)}, got {self.window!r}")
        rules = tuple(tuple(rule) for rule in self.segment_map)
        object.__setattr__(self, "segment_map", rules)
        if not rules:
            raise ValueError("segment_map must not be empty")
        covered: set[tuple[int, int]] = set()
        for rule in rules:
            if len(rule) != 5:
                raise ValueError(f"segment rule {rule!r} must be (code, r_min, r_max, f_min, f_max)")
            code, r_min, r_max, f_min, f_max = rule
            if code not in SEGMENT_ZH:
                raise ValueError(f"unknown segment {code!r} in segment_map; known: {sorted(SEGMENT_ZH)}")
            bounds = (r_min, r_max, f_min, f_max)
            if not all(isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 5 for b in bounds):
                raise ValueError(f"segment rule {rule!r}: score bounds must be integers from 1 to 5")
            if r_min > r_max or f_min > f_max:
                raise ValueError(f"segment rule {rule!r}: min above max")
            covered |= {(r, f) for r in range(r_min, r_max + 1) for f in range(f_min, f_max + 1)}
        missing = sorted({(r, f) for r in range(1, 6) for f in range(1, 6)} - covered)
        if missing:
            cells = ", ".join(f"R{r}F{f}" for r, f in missing)
            raise ValueError(f"segment_map leaves (R, F) cells without a segment: {cells}")
        shares = tuple(self.seed_shares)
        object.__setattr__(self, "seed_shares", shares)
        if len(shares) != 3 or not all(0 <= s <= 1 for s in shares):
            raise ValueError(f"seed_shares must be three shares in [0, 1] (protect, develop, avoid), got {shares!r}")
        if not math.isclose(math.fsum(shares), 1.0, abs_tol=1e-9):
            raise ValueError(f"seed_shares must sum to 1, got {shares!r} (sum {math.fsum(shares)})")


_M = "DECIMAL(18,2)"

RFM_SEGMENTS = MartSchema(
    table="marts.rfm_segments",
    description=(
        "RFM scores, named R/F segment and seed protect/develop/avoid group: one row per buying customer "
        "and as-of date."
    ),
    key=("customer_key",),
    columns=(
        as_of_col(),
        Col("customer_key", "VARCHAR", "Pseudonymous customer key."),
        Col(
            "recency_days",
            "BIGINT",
            "RFM recency: days from the last purchase day to as_of_date (customer_360.days_since_last, "
            "not customer_360.recency_days).",
        ),
        Col("frequency", "BIGINT", "RFM frequency: purchase days in the window (12m or lifetime, see settings)."),
        Col("monetary", _M, "RFM monetary: net value (completed minus returned lines) in the window, CNY."),
        Col("r_score", "BIGINT", "Recency score 1-5, 5 = most recent; tie-aware: 1 + floor(5 x share strictly older)."),
        Col("f_score", "BIGINT", "Frequency score 1-5; tie-aware: 1 + floor(5 x share with strictly lower frequency)."),
        Col("m_score", "BIGINT", "Monetary score 1-5; tie-aware: 1 + floor(5 x share with strictly lower monetary)."),
        Col("rfm_cell", "VARCHAR", "The three scores as digits R, F, M, e.g. '545'."),
        Col("rfm_product", "BIGINT", "r_score x f_score x m_score (1-125), ranked for the seed rule."),
        Col("segment", "VARCHAR", "Named segment from the R/F score map (champions, loyal, ..., lost)."),
        Col("segment_zh", "VARCHAR", "Segment in Chinese (冠军客户, 忠诚客户, ..., 流失客户)."),
        Col(
            "seed_group",
            "VARCHAR",
            "Seed rule by rfm_product: protect (top 20 %), develop (middle), avoid (bottom 20 %).",
        ),
        Col("seed_group_zh", "VARCHAR", "Seed group in Chinese: 保护, 投资发展, 避免."),
        version_col(),
    ),
)


def rfm_segments(c360: ir.Table, params: RFMParams | None = None, *, settings_version: str = "") -> ir.Table:
    """RFM scores, segments and seed groups of every buying customer, per as-of date."""
    params = params or RFMParams()
    f_col, m_col = _WINDOWS[params.window]
    buyers = c360.filter(c360.has_purchased)
    t = buyers.select(
        as_of_date=buyers.as_of_date,
        customer_key=buyers.customer_key,
        recency_days=buyers.days_since_last.cast("int64"),
        frequency=buyers[f_col].fill_null(0).cast("int64"),
        monetary=buyers[m_col].fill_null(0).cast("decimal(18, 2)"),
    )

    snapshot = ibis.window(group_by="as_of_date")
    n = t.customer_key.count().over(snapshot)

    def score(order_by: ir.Value) -> ir.IntegerValue:
        # rank() is 0-based and min-ranked: the number of rows strictly before in the order,
        # i.e. strictly worse when ordered worst first.
        worse = ibis.rank().over(ibis.window(group_by="as_of_date", order_by=order_by))
        return ((worse * 5) // n + 1).clip(upper=5).cast("int64")

    scored = t.mutate(
        r_score=score(ibis.desc(t.recency_days)),
        f_score=score(t.frequency),
        m_score=score(t.monetary),
    )
    scored = scored.mutate(rfm_product=scored.r_score * scored.f_score * scored.m_score)

    larger = ibis.rank().over(ibis.window(group_by="as_of_date", order_by=ibis.desc(scored.rfm_product)))
    smaller = ibis.rank().over(ibis.window(group_by="as_of_date", order_by=scored.rfm_product))
    n_all = n.cast("float64")
    protect, _, avoid = params.seed_shares
    scored = scored.mutate(
        seed_group=ibis.cases(
            (larger.cast("float64") / n_all < protect, "protect"),
            (smaller.cast("float64") / n_all < avoid, "avoid"),
            else_="develop",
        )
    )

    r, f = scored.r_score, scored.f_score
    segment = ibis.cases(
        *(
            (r.between(r_min, r_max) & f.between(f_min, f_max), code)
            for code, r_min, r_max, f_min, f_max in params.segment_map
        ),
        else_=ibis.null("string"),
    )
    out = scored.mutate(segment=segment)
    return out.select(
        as_of_date=out.as_of_date,
        customer_key=out.customer_key,
        recency_days=out.recency_days,
        frequency=out.frequency,
        monetary=out.monetary,
        r_score=out.r_score,
        f_score=out.f_score,
        m_score=out.m_score,
        rfm_cell=out.r_score.cast("string") + out.f_score.cast("string") + out.m_score.cast("string"),
        rfm_product=out.rfm_product.cast("int64"),
        segment=out.segment,
        segment_zh=out.segment.substitute(SEGMENT_ZH),
        seed_group=out.seed_group,
        seed_group_zh=out.seed_group.substitute(SEED_GROUP_ZH),
        settings_version=ibis.literal(settings_version, type="string"),
    )
