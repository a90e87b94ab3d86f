"""Value marts: RFM segments, value tiers and the 80/20 tables, loyalty, and the
customer-tier matrix. Each reads the batch's marts.customer_360 snapshots and calls
one function of analytics/ (rfm, value, loyalty, tiers)."""

from analytics import charts
from analytics.customer360 import CUSTOMER_360
from analytics.loyalty import LOYALTY, loyalty
from analytics.rfm import RFM_SEGMENTS, rfm_segments
from analytics.tiers import CUSTOMER_TIERS, TIER_MATRIX, customer_tiers, tier_matrix
from analytics.value import PARETO, PARETO_GROUPS, VALUE_TIERS, pareto, pareto_groups, value_tiers
from assets.reporting import markdown
from assets.snapshots import Batch, Report, customer_mart, mart_asset


def _counts(column: str):
    def extra(last):
        return {f"customers_by_{column}": markdown(last[column].value_counts().rename_axis(column).reset_index())}

    return extra


rfm_segments_asset = customer_mart(
    schema=RFM_SEGMENTS,
    function=rfm_segments,
    params="rfm",
    report=Report(
        order_by=("-rfm_product", "customer_key"),
        plot=charts.rfm_heatmap,
        extra=_counts("segment"),
        columns=("as_of_date", "customer_key", "r_score", "f_score", "segment"),
    ),
    group="value",
    description="RFM quintile scores, cells, named segments and the seed's protect / develop / avoid rule.",
)

value_tiers_asset = customer_mart(
    schema=VALUE_TIERS,
    function=value_tiers,
    params="value",
    report=Report(order_by=("profit_rank", "customer_key"), extra=_counts("tier"), columns=("tier",)),
    group="value",
    description="Platinum / gold / iron / lead tiers by profit contribution; annual profit contribution.",
)


def _pareto(b: Batch):
    c360 = b.mart(CUSTOMER_360)
    return {
        PARETO.table: pareto(c360, b.settings.value, settings_version=b.version),
        PARETO_GROUPS.table: pareto_groups(c360, b.settings.value, settings_version=b.version),
    }


pareto_asset = mart_asset(
    name="pareto",
    tables=[
        (PARETO, Report(order_by=("measure", "percentile"), plot=charts.pareto_curve)),
        (PARETO_GROUPS, Report(order_by=("group_order",), plot=charts.value_groups)),
    ],
    deps=[CUSTOMER_360],
    group="value",
    compute=_pareto,
    description="The 80/20 curves of revenue and profit and the five-group value-contribution table.",
)

loyalty_asset = customer_mart(
    schema=LOYALTY,
    function=loyalty,
    params="loyalty",
    report=Report(
        order_by=("-loyalty_index", "customer_key"), extra=_counts("loyalty_level"), columns=("loyalty_level",)
    ),
    group="value",
    description="Loyalty index (0-100) from the behavioural and survey indicators, and its level.",
)


def _tiers(b: Batch):
    c360 = b.mart(CUSTOMER_360)
    assigned = b.scratch.keep(customer_tiers(c360, b.mart(LOYALTY), b.settings.tiers, settings_version=b.version))
    return {
        CUSTOMER_TIERS.table: assigned,
        TIER_MATRIX.table: tier_matrix(assigned, c360, params=b.settings.tiers, settings_version=b.version),
    }


tier_matrix_asset = mart_asset(
    name="tier_matrix",
    tables=[
        (
            CUSTOMER_TIERS,
            Report(order_by=("cube_rank", "customer_key"), extra=_counts("cube_cell"), columns=("cube_cell",)),
        ),
        (TIER_MATRIX, Report(order_by=("view", "cell"), plot=charts.tier_grid)),
    ],
    deps=[CUSTOMER_360, LOYALTY],
    group="value",
    compute=_tiers,
    description="Credit x loyalty, scale x loyalty, the 2x2x2 cube, current x potential value: per customer and cell.",
)

value_assets = [rfm_segments_asset, value_tiers_asset, pareto_asset, loyalty_asset, tier_matrix_asset]
