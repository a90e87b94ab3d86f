"""Customer lifetime value marts: model CLV (BG/NBD-family + Gamma-Gamma, fitted on the
snapshot's unique (x, t_x, T) rows), the seed formula with T from churn and from the
model, the fitted parameters, and a calibration / holdout check each run
(analytics/clv_marts.py, analytics/clv/)."""

from analytics import charts
from analytics.clv_marts import CLV, CLV_MODELS, CLV_TRACKING, CLV_VALIDATION, clv_marts
from analytics.customer360 import CUSTOMER_360, kept_purchase_days
from analytics.identity import CUSTOMER_IDENTITY
from analytics.lifecycle import CHURN
from assets.reporting import markdown
from assets.snapshots import Batch, Report, mart_asset


def _clv(b: Batch):
    purchases = kept_purchase_days(b.scratch, b.staging("orders"), b.mart(CUSTOMER_IDENTITY), b.as_of)
    marts = clv_marts(
        c360=b.mart(CUSTOMER_360),
        purchases=purchases,
        params=b.settings.clv,
        execute=b.con.execute,
        churn=b.mart(CHURN),
        settings_version=b.version,
    )
    return {
        CLV.table: marts.clv,
        CLV_MODELS.table: marts.models,
        CLV_VALIDATION.table: marts.validation,
        CLV_TRACKING.table: marts.tracking,
    }


def _tiers(last):
    table = last.groupby("clv_tier", dropna=False).agg(customers=("customer_key", "count"), clv=("clv_model", "sum"))
    return {"customers_by_clv_tier": markdown(table.reset_index())}


def _errors(last):
    overall = last[last.frequency_bucket == "all"]
    return {"holdout_error": markdown(overall.drop(columns=["settings_version"]))}


clv_asset = mart_asset(
    name="clv",
    tables=[
        (
            CLV,
            Report(
                order_by=("clv_rank", "customer_key"),
                plot=charts.clv_distribution,
                extra=_tiers,
                columns=("customer_key", "clv_model", "clv_tier"),
            ),
        ),
        (CLV_MODELS, Report(order_by=("model", "sample", "parameter"))),
        (CLV_VALIDATION, Report(order_by=("bucket_order",), plot=charts.clv_calibration, extra=_errors)),
        (CLV_TRACKING, Report(order_by=("holdout_day",), plot=charts.clv_tracking)),
    ],
    deps=[CUSTOMER_360, CUSTOMER_IDENTITY, CHURN, "staging/orders"],
    group="clv",
    compute=_clv,
    description="Customer lifetime value: P(alive), expected purchases and spend, model and seed-formula CLV, "
    "the fitted models and their holdout validation.",
)

clv_assets = [clv_asset]
