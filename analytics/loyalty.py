"""Customer loyalty index (客户忠诚度, DOMAIN.md §6): one 0-100 score per buying customer
and as-of date, built from the loyalty indicators the data has, and a high / medium /
low level.

Why fixed transforms: every indicator is mapped to 0..1 by a rule that does not look at
the other customers (no snapshot ranks), so an index of 70 means the same thing this
month and next, and a customer's index moves only when that customer changes.

Indicators (each a DOUBLE 0..1, null when the customer has no value for it):

| score              | from (customer 360)                       | rule                                               |
|--------------------|-------------------------------------------|----------------------------------------------------|
| repeat_score       | repeat_purchase_rate                      | as is (share of purchase occasions that repeated)  |
| tenure_score       | tenure_days                               | min(tenure_days / tenure_saturation_days, 1)       |
| trend_score        | purchase_days_12m, purchase_days_prev_12m | cur / (cur + prev): 0.5 flat, 1 only this year,    |
|                    |                                           | 0 only last year; null when both are 0 or when the |
|                    |                                           | first purchase is inside the last 365 days (there  |
|                    |                                           | was no previous year to compare with)              |
| breadth_score      | category_count                            | (min(n, breadth_saturation) - 1) /                 |
|                    |                                           | (breadth_saturation - 1): one category is 0        |
| full_price_score   | full_price_share                          | as is (low price sensitivity)                      |
| recommend_score    | recommend (0-10)                          | recommend / 10                                     |
| satisfaction_score | satisfaction (1-10)                       | (satisfaction - 1) / 9                             |

All scores are clipped to 0..1. loyalty_index = 100 x the weighted mean of the scores
that are not null, the weights of the missing ones being dropped and the rest
renormalised (a customer without a survey is judged on behaviour alone rather than
scored 0 for it); indicators with weight 0 are ignored. indicators_used counts the
scores that entered the index. Level: index >= high_cutoff -> high, >= medium_cutoff ->
medium, else low (default 67 / 34: thirds of the scale).

Default weights favour behaviour (75 %; repeat buying, tenure and trend alone 55 %)
over stated attitude (recommend, satisfaction: 25 %), and give satisfaction the
smaller attitudinal weight because of the satisfaction trap (顾客满意陷阱): satisfied
customers are not necessarily loyal.

Population: customers with has_purchased (prospects have no loyalty to measure).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir

from analytics.schema import Col, MartSchema, as_of_col, version_col

# ruff: noqa: E501  (column descriptions are documentation; keep them on one line)

#: Indicator name -> the score column it produces, in output order.
INDICATORS: tuple[str, ...] = ("repeat", "tenure", "trend", "breadth", "full_price", "recommend", "satisfaction")

LEVEL_ZH: dict[str, str] = {"high": "高忠诚", "medium": "中忠诚", "low": "低忠诚"}


def _default_weights() -> dict[str, float]:
    return {
        "repeat": 0.25,
        "tenure": 0.15,
        "trend": 0.15,
        "breadth": 0.10,
        "full_price": 0.10,
        "recommend": 0.15,
        "satisfaction": 0.10,
    }


@dataclass(frozen=True)
class LoyaltyParams:
    """Weights, saturation points and level cut-offs of the loyalty index."""

    #: Weight per indicator (keys: repeat, tenure, trend, breadth, full_price, recommend,
    #: satisfaction); non-negative, summing to 1. Defaults: 0.25, 0.15, 0.15, 0.10, 0.10, 0.15, 0.10.
    weights: Mapping[str, float] = field(default_factory=_default_weights)
    #: Tenure (days since signup) at which tenure_score reaches 1 (3 years).
    tenure_saturation_days: int = 1095
    #: Distinct categories at which breadth_score reaches 1 (one category scores 0).
    breadth_saturation: int = 5
    #: loyalty_index at or above which a customer is `high`.
    high_cutoff: float = 67.0
    #: loyalty_index at or above which a customer is `medium` (below: `low`).
    medium_cutoff: float = 34.0

    def __post_init__(self) -> None:
        keys = set(self.weights)
        if keys != set(INDICATORS):
            missing, unknown = sorted(set(INDICATORS) - keys), sorted(keys - set(INDICATORS))
            raise ValueError(f"loyalty weights need exactly {list(INDICATORS)}; missing {missing}, unknown {unknown}")
        negative = {k: v for k, v in self.weights.items() if v < 0}
        if negative:
            raise ValueError(f"loyalty weights must not be negative: {negative}")
        total = sum(self.weights.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"loyalty weights must sum to 1, got {total:.6f}")
        if self.tenure_saturation_days <= 0:
            raise ValueError("tenure_saturation_days must be positive")
        if self.breadth_saturation < 2:
            raise ValueError("breadth_saturation must be at least 2 categories (one category scores 0)")
        if not 0 < self.medium_cutoff < self.high_cutoff <= 100:
            raise ValueError(
                f"need 0 < medium_cutoff < high_cutoff <= 100, got {self.medium_cutoff} and {self.high_cutoff}"
            )


LOYALTY = MartSchema(
    table="marts.loyalty",
    description="Loyalty index (客户忠诚度): one row per buying customer and as-of date, indicator scores 0..1, index 0..100 and level.",
    key=("customer_key",),
    columns=(
        as_of_col(),
        Col("customer_key", "VARCHAR", "Pseudonymous customer key."),
        Col("repeat_score", "DOUBLE", "Repeat-purchase rate (0..1); null without purchases."),
        Col(
            "tenure_score",
            "DOUBLE",
            "Tenure days / saturation (default 3 years), capped at 1; null without signup date.",
        ),
        Col(
            "trend_score",
            "DOUBLE",
            "Frequency trend: purchase days last 12m / (last 12m + previous 12m); 0.5 = flat; null without a previous year.",
        ),
        Col("breadth_score", "DOUBLE", "Category breadth: (categories - 1) / (saturation - 1), capped at 1."),
        Col("full_price_score", "DOUBLE", "Share of lines bought without discount (low price sensitivity)."),
        Col("recommend_score", "DOUBLE", "Likelihood to recommend / 10 from the latest survey; null without survey."),
        Col("satisfaction_score", "DOUBLE", "(Satisfaction - 1) / 9 from the latest survey; null without survey."),
        Col("indicators_used", "BIGINT", "Scores that entered the index (non-null, positive weight)."),
        Col("loyalty_index", "DOUBLE", "100 x weighted mean of the available scores (weights renormalised), 0..100."),
        Col("loyalty_level", "VARCHAR", "high (index >= 67), medium (>= 34) or low, per LoyaltyParams."),
        Col("loyalty_level_zh", "VARCHAR", "Level in Chinese: 高忠诚, 中忠诚, 低忠诚."),
        version_col(),
    ),
)


def _clip01(x: ir.FloatingValue) -> ir.FloatingValue:
    # not greatest/least: they skip nulls (least(null, 1) = 1) and a missing score must stay null
    return ibis.cases((x < 0.0, 0.0), (x > 1.0, 1.0), else_=x)


def loyalty_scores(c360: ir.Table, params: LoyaltyParams) -> ir.Table:
    """Indicator scores (0..1 or null) per buying customer: the LOYALTY score columns plus keys."""
    t = c360.filter(c360.has_purchased)
    cur = t.purchase_days_12m.cast("float64")
    prev = t.purchase_days_prev_12m.cast("float64")
    # no previous year to compare with: first purchase inside the 12m window, or no purchase in either
    no_trend = (cur + prev == 0) | (t.age_days < 365) | t.age_days.isnull()
    sat = float(params.breadth_saturation)
    return t.select(
        as_of_date=t.as_of_date,
        customer_key=t.customer_key,
        repeat_score=_clip01(t.repeat_purchase_rate.cast("float64")),
        tenure_score=_clip01(t.tenure_days.cast("float64") / float(params.tenure_saturation_days)),
        trend_score=ibis.ifelse(no_trend, ibis.null("float64"), _clip01(cur / (cur + prev))),
        breadth_score=_clip01((ibis.least(t.category_count.cast("float64"), sat) - 1.0) / (sat - 1.0)),
        full_price_score=_clip01(t.full_price_share.cast("float64")),
        recommend_score=_clip01(t.recommend.cast("float64") / 10.0),
        satisfaction_score=_clip01((t.satisfaction.cast("float64") - 1.0) / 9.0),
    )


def loyalty(c360: ir.Table, params: LoyaltyParams, *, settings_version: str = "") -> ir.Table:
    """The LOYALTY mart for every as-of date in `c360` (customers with has_purchased)."""
    s = loyalty_scores(c360, params)
    weighted = [(s[f"{name}_score"], params.weights[name]) for name in INDICATORS if params.weights[name] > 0]
    num = sum((score.fill_null(0.0) * w for score, w in weighted), ibis.literal(0.0))
    den = sum((ibis.ifelse(score.isnull(), 0.0, w) for score, w in weighted), ibis.literal(0.0))
    used = sum((score.notnull().cast("int64") for score, _ in weighted), ibis.literal(0, type="int64"))
    # rounded so that an index meant to sit exactly on a cut-off is not pushed below it by float error
    index = ibis.ifelse(den > 0, (100.0 * num / den).round(6), ibis.null("float64"))
    s = s.mutate(indicators_used=used.cast("int64"), loyalty_index=index.cast("float64"))
    level = ibis.cases(
        (s.loyalty_index >= params.high_cutoff, "high"),
        (s.loyalty_index >= params.medium_cutoff, "medium"),
        (s.loyalty_index.notnull(), "low"),
        else_=ibis.null("string"),
    )
    s = s.mutate(loyalty_level=level)
    s = s.mutate(
        loyalty_level_zh=s.loyalty_level.substitute(LEVEL_ZH),
        settings_version=ibis.literal(settings_version, type="string"),
    )
    return s.select(*LOYALTY.names)
