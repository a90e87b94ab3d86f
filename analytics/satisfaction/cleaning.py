"""Survey cleaning (DOMAIN.md §8 "data cleaning"): which responses the satisfaction marts
exclude, and why, with the exclusion rate per wave.

Ingestion flags and keeps every response (quality/router.py ``flag_survey_quality``):
nothing is deleted, so a rule can change later and the history can be re-scored. Here the
flags become one exclusion reason per response, the first rule that applies in this order:

| reason                 | rule                                                                 |
|------------------------|----------------------------------------------------------------------|
| duplicate_respondent   | the same customer answered the same survey in the same wave before   |
|                        | (ingestion's flag per customer record, plus: two records that        |
|                        | identity resolution merged into one customer_key; the earliest       |
|                        | response by start time, then response id, is kept)                   |
| failed_attention       | the instructed item ("select 7") was answered otherwise              |
| speeder                | completed faster than the speeder threshold (ingestion setting)      |
| straightliner          | the same answer on every item of the ACSI grid                       |
| incomplete             | an item the index needs is empty (only when ``required`` is given)   |

Why this order: a repeat answer is excluded whatever its quality (the person is already
counted once); the attention check is the most direct evidence of not reading; speed and
straight-lining are circumstantial. Anonymous responses (no customer) cannot be
duplicates by identity and are otherwise treated alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

__all__ = ["EXCLUSION_REASONS", "EXCLUSION_ZH", "classify_responses", "exclusion_rates"]

#: Exclusion reasons in the order they are tested (the first that applies is recorded).
EXCLUSION_REASONS: tuple[str, ...] = (
    "duplicate_respondent",
    "failed_attention",
    "speeder",
    "straightliner",
    "incomplete",
)
EXCLUSION_ZH: dict[str, str] = {
    "duplicate_respondent": "重复作答",
    "failed_attention": "注意力检测未通过",
    "speeder": "作答过快",
    "straightliner": "直线作答",
    "incomplete": "题项缺答",
}


def classify_responses(responses: ir.Table, required: Sequence[str] = (), key: str = "customer_key") -> ir.Table:
    """`responses` plus `exclusion_reason` (null: kept) and `excluded` (boolean).

    `responses` has the staging survey columns and flags, and `key` (the resolved customer;
    null for anonymous answers). Duplicates by `key` are ranked within (key, survey_id,
    wave[, as_of_date]) by started_at then response_id."""
    if key not in responses.columns:
        raise ValueError(f"responses lack the customer key column {key!r}")
    if absent := [c for c in required if c not in responses.columns]:
        raise ValueError(f"responses lack the required items {absent}")
    group = [key, "survey_id", "wave"] + (["as_of_date"] if "as_of_date" in responses.columns else [])
    rank = ibis.row_number().over(group_by=group, order_by=[responses.started_at, responses.response_id])
    t = responses.mutate(_rank=rank)
    duplicate = t.is_duplicate_respondent.fill_null(False) | (t[key].notnull() & (t._rank > 0))
    incomplete = ibis.literal(False)
    for item in required:
        incomplete = incomplete | t[item].isnull()
    reason = ibis.cases(
        (duplicate, "duplicate_respondent"),
        (t.failed_attention.fill_null(False), "failed_attention"),
        (t.is_speeder.fill_null(False), "speeder"),
        (t.is_straightliner.fill_null(False), "straightliner"),
        (incomplete, "incomplete"),
        else_=ibis.null("string"),
    )
    out = t.mutate(exclusion_reason=reason).drop("_rank")
    return out.mutate(excluded=out.exclusion_reason.notnull())


def exclusion_rates(classified: ir.Table, by: Sequence[str] = ("wave",)) -> ir.Table:
    """Per group: responses, kept, excluded, one count per reason and the exclusion rate."""
    t = classified
    counts = {f"excluded_{r}": t.count(where=t.exclusion_reason == r).cast("int64") for r in EXCLUSION_REASONS}
    g = t.group_by(list(by)).aggregate(
        responses=t.count().cast("int64"),
        kept=(~t.excluded).sum().cast("int64"),
        excluded=t.excluded.sum().cast("int64"),
        **counts,
    )
    return g.mutate(exclusion_rate=g.excluded.cast("float64") / g.responses.cast("float64"))
