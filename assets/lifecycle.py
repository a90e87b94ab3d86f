"""Lifecycle marts: each customer's stage, churn rates per period and cohort with the
group lifecycle (1 / churn rate), cohort retention, and the churn early warning
(analytics/lifecycle.py)."""

from analytics import charts
from analytics.customer360 import kept_purchase_days
from analytics.identity import CUSTOMER_IDENTITY
from analytics.lifecycle import (
    CHURN,
    CHURN_WARNING,
    COHORT_RETENTION,
    LIFECYCLE,
    churn,
    churn_warning,
    cohort_retention,
    lifecycle,
)
from assets.reporting import markdown
from assets.snapshots import Batch, Report, customer_mart, mart_asset

lifecycle_asset = customer_mart(
    schema=LIFECYCLE,
    function=lifecycle,
    params="lifecycle",
    report=Report(order_by=("stage_order", "customer_key"), plot=charts.lifecycle_funnel, columns=("stage",)),
    group="lifecycle",
    description="Each customer's lifecycle stage (potential ... recovery) and the rule that decided it.",
)


def _churn(b: Batch):
    purchases = kept_purchase_days(b.scratch, b.staging("orders"), b.mart(CUSTOMER_IDENTITY), b.as_of)
    params = b.settings.lifecycle
    return {
        CHURN.table: churn(purchases, params, settings_version=b.version),
        COHORT_RETENTION.table: cohort_retention(purchases, params, settings_version=b.version),
    }


def _churn_summary(last):
    overall = last[last.cohort == "all"].sort_values("period_start")
    return {"churn_by_period": markdown(overall.drop(columns=["settings_version"]))}


churn_asset = mart_asset(
    name="churn",
    tables=[
        (CHURN, Report(order_by=("period_start", "cohort"), extra=_churn_summary)),
        (COHORT_RETENTION, Report(order_by=("cohort", "months_since"), plot=charts.retention_heatmap)),
    ],
    deps=[CUSTOMER_IDENTITY, "staging/orders"],
    group="lifecycle",
    compute=_churn,
    description="Churn rate per period and acquisition cohort, group lifecycle = 1 / churn rate, cohort retention.",
)

churn_warning_asset = customer_mart(
    schema=CHURN_WARNING,
    function=churn_warning,
    params="lifecycle",
    report=Report(order_by=("risk_rank",)),
    group="lifecycle",
    description="Customers slipping away (late against their own purchase cycle, or buying less), by value at risk.",
)

lifecycle_assets = [lifecycle_asset, churn_asset, churn_warning_asset]
