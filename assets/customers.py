"""Customer marts: identity resolution and the customer 360 view, the base every value
mart reads (analytics/identity.py, analytics/customer360.py)."""

from analytics.customer360 import CUSTOMER_360, customer_360
from analytics.identity import CUSTOMER_IDENTITY, current_records, customer_identity
from assets.reporting import markdown
from assets.snapshots import Batch, Report, mart_asset

FEED_DEPS = ["staging/customers", "staging/orders", "staging/payments", "staging/interactions", "staging/surveys"]


def _identity(b: Batch):
    records = b.scratch.keep(current_records(b.staging("customers"), b.as_of))
    return customer_identity(b.scratch, records, b.settings.identity, b.secret, settings_version=b.version)


def _merge_summary(last) -> dict:
    merged = last[last.records_in_customer > 1]
    return {
        "records": len(last),
        "customers": int(last.customer_key.nunique()),
        "records_merged": len(merged),
        "match_rules": markdown(
            last.match_rules.replace("", "(none)").value_counts().rename_axis("rules").reset_index()
        ),
    }


customer_identity_asset = mart_asset(
    name="customer_identity",
    tables=[(CUSTOMER_IDENTITY, Report(order_by=("-records_in_customer", "customer_key"), extra=_merge_summary))],
    deps=["staging/customers"],
    group="customers",
    compute=lambda b: {CUSTOMER_IDENTITY.table: _identity(b)},
    description="Every customer record → one stable pseudonymous customer_key, with the evidence of each merge.",
)


def _c360(b: Batch):
    records = b.scratch.keep(current_records(b.staging("customers"), b.as_of))
    identity = b.mart(CUSTOMER_IDENTITY)
    expr = customer_360(
        records=records,
        identity=identity,
        orders=b.staging("orders"),
        payments=b.staging("payments"),
        interactions=b.staging("interactions"),
        surveys=b.staging("surveys"),
        as_of=b.as_of,
        params=b.settings.customer360,
        settings_version=b.version,
    )
    return {CUSTOMER_360.table: expr}


def _c360_summary(last) -> dict:
    buyers = last[last.has_purchased]
    return {
        "customers": len(last),
        "buyers": len(buyers),
        "revenue_12m": float(buyers.net_monetary_12m.sum()),
        "profit_12m": float(buyers.profit_12m.sum()),
        "outstanding_balance": float(last.outstanding_balance.sum()),
    }


customer_360_asset = mart_asset(
    name="customer_360",
    tables=[(CUSTOMER_360, Report(order_by=("-net_monetary", "customer_key"), extra=_c360_summary))],
    deps=[CUSTOMER_IDENTITY, *FEED_DEPS],
    group="customers",
    compute=_c360,
    description="Customer 360: transaction, payment, service and survey facts per customer and as-of date.",
)

customer_assets = [customer_identity_asset, customer_360_asset]
