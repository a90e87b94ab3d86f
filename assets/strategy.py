"""Action marts: recommended actions per segment, tier, stage and matrix cell; Dick's
Supermarkets-style personal shopping lists; MAN classification of prospects
(analytics/strategy.py, shopping.py, prospects.py)."""

from analytics.customer360 import CUSTOMER_360, keyed_lines
from analytics.identity import CUSTOMER_IDENTITY
from analytics.lifecycle import LIFECYCLE
from analytics.loyalty import LOYALTY
from analytics.prospects import MAN_ACTIONS, MAN_LABELS, PROSPECTS, prospects
from analytics.rfm import RFM_SEGMENTS
from analytics.schema import MartSchema
from analytics.shopping import SHOPPING_LISTS, shopping_lists
from analytics.strategy import SEGMENT_STRATEGY, segment_strategy
from analytics.tiers import CUSTOMER_TIERS
from analytics.value import VALUE_TIERS, value_groups
from assets.reporting import markdown
from assets.snapshots import Batch, Report, mart_asset

#: strategy dimension -> (mart, column holding the customer's code)
ASSIGNMENTS: dict[str, tuple[MartSchema, str]] = {
    "rfm_segment": (RFM_SEGMENTS, "segment"),
    "seed_group": (RFM_SEGMENTS, "seed_group"),
    "value_tier": (VALUE_TIERS, "tier"),
    "lifecycle_stage": (LIFECYCLE, "stage"),
    "loyalty_level": (LOYALTY, "loyalty_level"),
    "credit_loyalty": (CUSTOMER_TIERS, "credit_loyalty_cell"),
    "scale_loyalty": (CUSTOMER_TIERS, "scale_loyalty_cell"),
    "cube": (CUSTOMER_TIERS, "cube_cell"),
    "current_potential": (CUSTOMER_TIERS, "value_cell"),
}


def _strategy(b: Batch):
    assignments = {}
    for dimension, (schema, column) in ASSIGNMENTS.items():
        t = b.mart(schema)
        assignments[dimension] = t.select("as_of_date", "customer_key", code=t[column])
    groups = value_groups(b.mart(CUSTOMER_360), b.settings.value)
    assignments["value_group"] = groups.select("as_of_date", "customer_key", code=groups.value_group)
    return {SEGMENT_STRATEGY.table: segment_strategy(assignments, settings_version=b.version)}


segment_strategy_asset = mart_asset(
    name="segment_strategy",
    tables=[(SEGMENT_STRATEGY, Report(order_by=("dimension", "priority", "code")))],
    deps=sorted({CUSTOMER_360, *(schema for schema, _ in ASSIGNMENTS.values())}, key=lambda s: s.table),
    group="strategy",
    compute=_strategy,
    description="Every segment, tier, stage and matrix cell with its customers and recommended actions.",
)


def _shopping(b: Batch):
    lines = keyed_lines(b.staging("orders"), b.mart(CUSTOMER_IDENTITY), b.as_of)
    return {SHOPPING_LISTS.table: shopping_lists(lines, b.settings.shopping, settings_version=b.version)}


def _lists_summary(last):
    return {
        "customers_with_a_list": int(last.customer_key.nunique()),
        "items_by_type": markdown(last.item_type.value_counts().rename_axis("item_type").reset_index()),
    }


shopping_lists_asset = mart_asset(
    name="shopping_lists",
    tables=[
        (
            SHOPPING_LISTS,
            Report(order_by=("customer_key", "item_rank"), extra=_lists_summary, columns=("customer_key", "item_type")),
        )
    ],
    deps=[CUSTOMER_IDENTITY, "staging/orders"],
    group="strategy",
    compute=_shopping,
    description="Personal shopping lists every two weeks for customers above the weekly-spend threshold.",
)


def _prospects_summary(last):
    """Leads per MAN code; label and action from the code's tables (a snapshot has a row per
    lead, so the report reads one column: 18M leads at 100M, three string columns took 3 GB)."""
    table = last.groupby("man_code").size().rename("leads").reset_index()
    table.insert(1, "man_label", table.man_code.map(MAN_LABELS))
    table.insert(2, "action", table.man_code.map(MAN_ACTIONS))
    return {"leads_by_man_code": markdown(table)}


prospects_asset = mart_asset(
    name="prospects",
    tables=[
        (
            PROSPECTS,
            Report(
                order_by=("priority", "lead_id"),
                extra=_prospects_summary,
                columns=("man_code",),
            ),
        )
    ],
    deps=["staging/leads"],
    group="strategy",
    compute=lambda b: {
        PROSPECTS.table: prospects(b.staging("leads"), b.as_of, b.settings.prospects, settings_version=b.version)
    },
    description="Leads classified by the MAN rule (money, authority, need) with the action for each combination.",
)

strategy_assets = [segment_strategy_asset, shopping_lists_asset, prospects_asset]
