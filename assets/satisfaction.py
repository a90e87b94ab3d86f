"""Satisfaction marts: survey cleaning per wave, the PLS satisfaction index and model, CSD,
NPS, Kano, importance-performance areas, survey coverage and satisfaction against
behaviour (analytics/satisfaction/marts.py)."""

from analytics import charts
from analytics.customer360 import CUSTOMER_360
from analytics.identity import CUSTOMER_IDENTITY
from analytics.lifecycle import LIFECYCLE
from analytics.satisfaction.fit_cache import FitCache
from analytics.satisfaction.marts import (
    CSD,
    IPA,
    KANO,
    NPS,
    SATISFACTION_INDEX,
    SATISFACTION_LOYALTY,
    SATISFACTION_PATHS,
    SURVEY_COMMENTS,
    SURVEY_COVERAGE,
    SURVEY_EXCLUSIONS,
    satisfaction_marts,
)
from assets.reporting import markdown
from assets.snapshots import Batch, Report, mart_asset
from pipelines import warehouse as wh


def _satisfaction(b: Batch):
    return satisfaction_marts(
        surveys=b.staging("surveys"),
        identity=b.mart(CUSTOMER_IDENTITY),
        c360=b.mart(CUSTOMER_360),
        lifecycle=b.mart(LIFECYCLE),
        as_of=b.as_of,
        params=b.settings.satisfaction,
        execute=b.con.execute,
        settings_version=b.version,
        log=b.log,
        keep=b.scratch.keep,
        cache=FitCache(b.settings.fit_cache_root),
        in_pandas=lambda: wh.memory_lent(b.con, b.settings.duckdb_memory_limit),
    )


def _overall_index(last):
    overall = last[(last.segment_type == "all") & (last.segment == "all")]
    table = overall.pivot_table(index="wave", columns="latent", values="index", aggfunc="first")
    return {"index_by_wave": markdown(table.round(1).reset_index())}


def _main_paths(last):
    paths = last[(last.measure.isin(["path", "r2"])) & (last.wave == "all")]
    return {"pooled_model": markdown(paths[["measure", "source", "target", "estimate", "lower", "upper", "n"]])}


_ALL = ("segment_type", "segment")
satisfaction_asset = mart_asset(
    name="satisfaction",
    tables=[
        (SURVEY_EXCLUSIONS, Report(order_by=("wave",))),
        (
            SATISFACTION_INDEX,
            Report(order_by=("wave", "latent", *_ALL), plot=charts.satisfaction_by_wave, extra=_overall_index),
        ),
        (SATISFACTION_PATHS, Report(order_by=("wave", "measure", "source", "target"), extra=_main_paths)),
        (CSD, Report(order_by=("wave", *_ALL))),
        (NPS, Report(order_by=("wave", *_ALL))),
        (KANO, Report(order_by=("wave", *_ALL, "attribute"), plot=charts.kano_better_worse)),
        (IPA, Report(order_by=("wave", "importance_method", "attribute"), plot=charts.ipa_quadrants)),
        (SURVEY_COVERAGE, Report(order_by=("wave", "stratum"))),
        (SATISFACTION_LOYALTY, Report(order_by=("wave", "group"))),
        (SURVEY_COMMENTS, Report(order_by=("-answered_on", "verbatim_id"), hide=("settings_version", "customer_key"))),
    ],
    deps=[CUSTOMER_360, CUSTOMER_IDENTITY, LIFECYCLE, "staging/surveys"],
    group="satisfaction",
    compute=_satisfaction,
    description="Satisfaction: survey cleaning, the PLS index (ACSI by default) and its model per wave, CSD, NPS, "
    "Kano, importance-performance areas, survey coverage, satisfaction against behaviour and the scrubbed comments.",
)

satisfaction_assets = [satisfaction_asset]
