"""Satisfaction marts (顾客满意, DOMAIN.md §8): the survey side of the customer, per as-of date and
fieldwork wave: which responses count (survey_exclusions), the 0-100 satisfaction index per
latent variable and segment (satisfaction_index) from a PLS path model (satisfaction_paths),
CSD, NPS, Kano, importance-performance areas, how well the survey covers the customer base
(survey_coverage), and what the respondents did afterwards (satisfaction_loyalty).

Responses. A snapshot reads every survey response known by its as-of date, attaches the
resolved customer_key (null for anonymous answers and for records identity does not know),
and classifies it with ``cleaning.classify_responses`` (the items the model needs are
required). Only kept responses enter the measures; the exclusions mart shows the rest per
wave and reason. Every measure is reported per wave and for ``wave = 'all'``, every wave
known at the as-of date pooled (a wave has a few hundred answers; the pooled row is the
stable one).

Segments. ``segments`` names customer 360 columns (default kind and region). Each measure
is reported for segment_type 'all' (segment 'all', every kept response) and per segment
column, where anonymous answers form the segment 'anonymous' and customers without a value
'unknown'.

Index and paths. The model (ACSI by default, or any ``MODELS`` name or YAML file) is
fitted per wave and on the pooled responses with at least ``min_responses`` complete
answers. ``weights_from`` chooses the weights behind the index: "wave" (each wave's own
fit, ACSI practice: the index tracks a re-estimated model) or "pooled" (one set of weights
for every wave of the snapshot, so the waves differ only in item means). Within a wave the
segments always use that wave's weights (pooled across segments, so segments compare).
A respondent's score is 100 (sum w x - min sum w) / ((max - min) sum w) with the
unstandardised weights w; the index is their (survey-weighted) mean, which equals the
ACSI closed form on the item means; se = the standard error of that mean (with survey
weights: the linearised se of a weighted mean, sqrt(sum v^2 (s - m)^2) / sum v times
sqrt(n / (n - 1))), interval ± z·se clipped to [0, 100]. status: ok, small_sample (fewer
than min_segment_responses), negative_weights (the index is not a mean inside the scale:
not reported), not_fitted (too few responses for the model), not_converged. Only latent
variables measured on the rating scale get an index (``index_latents``; ACSI's complaint
item is yes/no and is reported as complaint_rate in satisfaction_paths' measures).
The paths mart reports, per wave, path coefficients with seeded bootstrap standard errors
and percentile intervals, total effects, R², loadings and weights, per block AVE, composite
reliability, Cronbach's alpha and rho_A, and the GoF. ``consistent`` (default) uses PLSc
(Dijkstra & Henseler 2015): the same weights and index, but paths, loadings and R² corrected
for the measurement error of the composites, which plain PLS attenuates (the demo's planted
Expectation -> Quality 0.55 comes out 0.43 with PLS, 0.52 with PLSc). On a small wave a
PLSc solution can be inadmissible (a corrected correlation beyond ±1): its rows say
admissible = false, and the index, which only uses the weights, is unaffected.

Coverage and weights. The survey frame of a wave is the customers of the snapshot's
customer 360 whose signup_date is on or before the wave's last answer day. Strata are
``strata`` (customer 360 columns, combined as "a / b"). Per stratum: population N_h,
kept identified responses n_h, response rate, the margin of error of a proportion at
p = 0.5 with the finite-population correction, the responses needed for ``target_margin``
and the shortfall. Post-stratification weights w_h = (N_h / N) / (n_h / n); strata with
fewer than ``min_cell_responses`` responses are pooled into one cell ("pooled") first, so
no stratum is weighted up from one or two answers; a pooled cell with no response at all
leaves its population unweighted (weight null, reported). With ``post_stratify`` the
index uses these weights (anonymous answers keep weight 1); the index rows record which.

Loyalty. satisfaction_loyalty takes each identified respondent's latest kept response in
the wave, a satisfaction score 0-100 from the equally weighted items of
``satisfaction_latent`` (not the PLS weights, so the grouping does not move when a model is
refitted), satisfied = score >= satisfied_min, and the customer's lifecycle stage at the
as-of date: staying unless the stage is in ``leaving_stages``. satisfied_loyal (满意且忠诚),
satisfaction_trap (满意但不忠诚, 顾客满意陷阱), dissatisfied_staying (不满意但留存), lost
(不满意且流失); respondents without a lifecycle stage (no purchase) are no_purchase.

Cost. PLS runs in Python; a wave's results depend only on its kept responses, so within a
batch of as-of dates each distinct set of responses is fitted once (days between
fieldwork periods reuse the same fit), and with a FitCache (fit_cache.py) across runs too: a
nightly run refits only the waves whose responses changed (and the pooled set).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from analytics.asof import known
from analytics.customer360 import CUSTOMER_360
from analytics.portable import strip
from analytics.satisfaction.cleaning import EXCLUSION_REASONS, classify_responses, exclusion_rates
from analytics.satisfaction.fit_cache import FitCache
from analytics.satisfaction.measures import (
    IPA_CROSSHAIRS,
    IPA_IMPORTANCE,
    csd_table,
    ipa_table,
    kano_table,
    margin_of_error_proportion,
    nps_table,
    post_stratification_weights,
    sample_size,
    z_value,
)
from analytics.satisfaction.models import MODELS, ModelSpec, load_model
from analytics.satisfaction.pls import SCHEMES
from analytics.schema import Col, MartSchema, as_of_col, version_col
from quality.contracts import SERVICE_ATTRIBUTES
from quality.pii import scrub_expr

# ruff: noqa: E501  (column descriptions are documentation; keep them on one line)

#: The wave label of the pooled rows (every wave known at the as-of date).
ALL_WAVES = "all"
#: Coverage cell of the strata with too few responses to be weighted alone.
POOLED_CELL = "pooled"
LOYALTY_GROUPS: dict[str, str] = {
    "satisfied_loyal": "满意且忠诚",
    "satisfaction_trap": "满意但不忠诚(顾客满意陷阱)",
    "dissatisfied_staying": "不满意但留存",
    "lost": "不满意且流失",
    "no_purchase": "无购买记录",
}
INDEX_STATUS = ("ok", "small_sample", "negative_weights", "not_fitted", "not_converged")


@dataclass(frozen=True)
class SatisfactionParams:
    """Model, segments, sampling and labelling rules of the satisfaction marts."""

    #: Model: a name in analytics.satisfaction.models.MODELS (acsi, scsb, ecsi) or a YAML file path.
    model: str = "acsi"
    #: Inner weighting scheme: centroid, factorial or path.
    scheme: str = "path"
    #: PLSc (consistent PLS) for paths, loadings and R²; the weights and the index are the same either way.
    consistent: bool = True
    #: Rating scale (min, max) of the items the index is computed from.
    scale: tuple[float, float] = (1, 10)
    #: Weights behind the index: "wave" (each wave's own fit) or "pooled" (the all-waves fit).
    weights_from: str = "wave"
    #: Customer 360 columns to report every measure by (besides 'all').
    segments: tuple[str, ...] = ("kind", "region")
    #: A wave (or the pooled set) is fitted only with at least this many complete kept responses.
    min_responses: int = 50
    #: Index rows of smaller segments carry status small_sample.
    min_segment_responses: int = 30
    #: Bootstrap resamples for the path standard errors and intervals (0: none). 100 gives stable standard
    #: errors at ~0.5 s per fit; use 1000+ for reported percentile intervals.
    bootstrap: int = 100
    #: Seed of the bootstrap.
    seed: int = 0
    #: Confidence of every interval and margin of error.
    confidence: float = 0.95
    #: Latent variables whose items give CSD's perceived (B) and expected (A) values.
    csd_perceived: str = "Quality"
    csd_expected: str = "Expectation"
    #: |CSD - 1| <= tolerance is "met".
    csd_tolerance: float = 0.05
    #: Service attributes of the Kano and IPA questions (survey columns kano_f_/kano_d_/imp_/perf_<attr>).
    attributes: tuple[str, ...] = SERVICE_ATTRIBUTES
    #: IPA importance measures to report: stated, correlation, regression.
    ipa_importance: tuple[str, ...] = ("stated", "regression")
    #: IPA crosshair: midpoint (stated importance only), mean or median.
    ipa_crosshair: str = "mean"
    #: Overall satisfaction item the derived IPA importance is computed against.
    ipa_satisfaction_item: str = "sat_1"
    #: Customer 360 columns defining the coverage strata (keep them coarse: a wave has a few hundred answers).
    strata: tuple[str, ...] = ("kind",)
    #: Margin of error (proportion, ±) the needed sample size is computed for.
    target_margin: float = 0.05
    #: Strata with fewer responses are pooled before post-stratification weights are computed.
    min_cell_responses: int = 5
    #: Apply the post-stratification weights to the index.
    post_stratify: bool = False
    #: Latent variable whose items give the satisfaction score of satisfaction_loyalty.
    satisfaction_latent: str = "Satisfaction"
    #: Satisfaction score (0-100) from which a respondent counts as satisfied.
    satisfied_min: float = 70.0
    #: Lifecycle stages that count as leaving (not loyal).
    leaving_stages: tuple[str, ...] = ("decline", "termination")

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if self.weights_from not in ("wave", "pooled"):
            raise ValueError(f"weights_from must be 'wave' or 'pooled', got {self.weights_from!r}")
        lo, hi = self.scale
        if not hi > lo:
            raise ValueError(f"scale must be (min, max) with max > min, got {self.scale}")
        for name in ("segments", "strata"):
            absent = [c for c in getattr(self, name) if c not in CUSTOMER_360.names]
            if absent:
                raise ValueError(f"{name}: {absent} are not customer 360 columns; choose from {CUSTOMER_360.names}")
        if not self.strata:
            raise ValueError("strata needs at least one customer 360 column")
        if bad := [m for m in self.ipa_importance if m not in IPA_IMPORTANCE]:
            raise ValueError(f"ipa_importance: unknown {bad}; expected some of {IPA_IMPORTANCE}")
        if self.ipa_crosshair not in IPA_CROSSHAIRS:
            raise ValueError(f"ipa_crosshair must be one of {IPA_CROSSHAIRS}, got {self.ipa_crosshair!r}")
        if not 0 < self.confidence < 1 or not 0 < self.target_margin < 1:
            raise ValueError("confidence and target_margin must be between 0 and 1")
        if self.min_responses < 3 or self.min_segment_responses < 1 or self.min_cell_responses < 1:
            raise ValueError("min_responses must be >= 3, min_segment_responses and min_cell_responses >= 1")
        if self.bootstrap < 0:
            raise ValueError(f"bootstrap must be >= 0, got {self.bootstrap}")
        spec = self.spec
        for name in ("csd_perceived", "csd_expected", "satisfaction_latent"):
            if getattr(self, name) not in spec.outer:
                raise ValueError(
                    f"{name}: {getattr(self, name)!r} is not a latent variable of {spec.name} ({list(spec.outer)})"
                )

    @property
    def spec(self) -> ModelSpec:
        """The model structure (a YAML file is read again only when it changes)."""
        if self.model in MODELS:
            return MODELS[self.model]
        path = Path(self.model)
        if path.suffix.lower() not in (".yaml", ".yml"):
            raise ValueError(f"model must be one of {sorted(MODELS)} or a YAML file, got {self.model!r}")
        if not path.is_file():
            raise ValueError(f"model file {self.model!r} does not exist")
        return _load_model(str(path.resolve()), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_model(path: str, _mtime: int) -> ModelSpec:
    return load_model(path)


def _c(name: str, sql_type: str, comment: str) -> Col:
    return Col(name, sql_type, comment)


_WAVE = _c("wave", "VARCHAR", "Fieldwork wave (e.g. 2025Q2), or 'all' for every wave known at the as-of date pooled.")
_SEGMENT = (
    _c(
        "segment_type",
        "VARCHAR",
        "'all', or the customer 360 column the segment comes from (SatisfactionParams.segments).",
    ),
    _c(
        "segment",
        "VARCHAR",
        "The segment's value; 'all', 'anonymous' (answers without a customer) or 'unknown' (no value).",
    ),
)

SURVEY_EXCLUSIONS = MartSchema(
    table="marts.survey_exclusions",
    description="Survey cleaning per wave: responses known, kept and excluded with one reason each (analytics/satisfaction/cleaning.py) and the exclusion rate.",
    key=("wave",),
    columns=(
        as_of_col(),
        _WAVE,
        _c("responses", "BIGINT", "Responses known at the as-of date."),
        _c(
            "anonymous",
            "BIGINT",
            "Responses without a resolved customer (no customer_ref, or a record identity does not know).",
        ),
        _c("kept", "BIGINT", "Responses the measures use."),
        _c("excluded", "BIGINT", "Responses excluded (one reason each)."),
        *(_c(f"excluded_{r}", "BIGINT", f"Excluded as {r}.") for r in EXCLUSION_REASONS),
        _c("exclusion_rate", "DOUBLE", "excluded / responses."),
        version_col(),
    ),
)

SATISFACTION_INDEX = MartSchema(
    table="marts.satisfaction_index",
    description="0-100 satisfaction index (ACSI method) per latent variable, wave and segment, with n, standard error and interval; segments use their wave's pooled weights.",
    key=("wave", "latent", "segment_type", "segment"),
    columns=(
        as_of_col(),
        _WAVE,
        _c("latent", "VARCHAR", "Latent variable of the model (e.g. Satisfaction, Quality)."),
        *_SEGMENT,
        _c("model", "VARCHAR", "Model name (acsi, scsb, ecsi or the custom model's name)."),
        _c("n", "BIGINT", "Kept responses with every item of the model answered."),
        _c(
            "index",
            "DOUBLE",
            "100 (sum w x_bar - min sum w) / ((max - min) sum w), w the unstandardised outer weights; null unless status is ok or small_sample.",
        ),
        _c(
            "se",
            "DOUBLE",
            "Standard error of the index (of the mean respondent score; linearised when survey-weighted).",
        ),
        _c("lower", "DOUBLE", "Lower end of the interval index - z se, clipped to 0."),
        _c("upper", "DOUBLE", "Upper end of the interval index + z se, clipped to 100."),
        _c("status", "VARCHAR", "ok, small_sample, negative_weights, not_fitted or not_converged."),
        _c("weighting", "VARCHAR", "Weighting variant: the outer weights used (scheme, estimator, which fit)."),
        _c("survey_weights", "VARCHAR", "'none', or 'post-stratified by <strata>' when the respondents are weighted."),
        version_col(),
    ),
)

SATISFACTION_PATHS = MartSchema(
    table="marts.satisfaction_paths",
    description="The fitted satisfaction model per wave: path coefficients and total effects (bootstrap se and interval), R², block reliability (AVE, composite reliability, Cronbach's alpha, rho_A), GoF and the complaint rate.",
    key=("wave", "measure", "source", "target"),
    columns=(
        as_of_col(),
        _WAVE,
        _c("model", "VARCHAR", "Model name."),
        _c(
            "estimator",
            "VARCHAR",
            "pls, or plsc (consistent PLS: paths, loadings and R² corrected for measurement error).",
        ),
        _c("scheme", "VARCHAR", "Inner weighting scheme: centroid, factorial or path."),
        _c(
            "measure",
            "VARCHAR",
            "path, total_effect, r2, r2_adjusted, loading, weight, ave, composite_reliability, cronbach_alpha, rho_a, gof or complaint_rate.",
        ),
        _c(
            "source",
            "VARCHAR",
            "From latent variable (path, total_effect); the latent variable (per-block measures, loading, weight); 'model' for gof and complaint_rate.",
        ),
        _c(
            "target",
            "VARCHAR",
            "To latent variable (path, total_effect) or the item (loading, weight); null for per-block measures.",
        ),
        _c("estimate", "DOUBLE", "The estimate."),
        _c(
            "std_error",
            "DOUBLE",
            "Bootstrap standard error (paths, loadings, weights, R²); null without bootstrap and for the other measures.",
        ),
        _c("lower", "DOUBLE", "Bootstrap percentile interval, lower end."),
        _c("upper", "DOUBLE", "Bootstrap percentile interval, upper end."),
        _c("n", "BIGINT", "Responses the model was fitted on."),
        _c("converged", "BOOLEAN", "Whether the PLS iterations converged."),
        _c(
            "admissible",
            "BOOLEAN",
            "False when the PLSc solution is inadmissible (rho_A <= 0, a corrected correlation or loading outside [-1, 1]): do not read its paths; always true for plain PLS.",
        ),
        _c(
            "resamples",
            "BIGINT",
            "Bootstrap resamples behind std_error and the interval (inadmissible PLSc resamples are dropped); null without bootstrap.",
        ),
        version_col(),
    ),
)

CSD = MartSchema(
    table="marts.csd",
    description="CSD (顾客满意度) = perceived / expected per wave and segment: ratio of means and mean of ratios, labelled exceeded / met (tolerance band) / dissatisfied.",
    key=("wave", "segment_type", "segment"),
    columns=(
        as_of_col(),
        _WAVE,
        *_SEGMENT,
        _c("n", "BIGINT", "Respondents with a CSD (both values, expected > 0)."),
        _c("n_excluded", "BIGINT", "Kept responses without a CSD."),
        _c("mean_perceived", "DOUBLE", "Mean perceived value B (mean of the csd_perceived items)."),
        _c("mean_expected", "DOUBLE", "Mean expected value A (mean of the csd_expected items)."),
        _c("ratio_of_means", "DOUBLE", "The group's CSD: mean B / mean A."),
        _c("ratio_of_means_label", "VARCHAR", "exceeded, met or dissatisfied."),
        _c("ratio_of_means_label_zh", "VARCHAR", "超出期望, 符合期望 or 不满意."),
        _c("mean_of_ratios", "DOUBLE", "Mean of the respondents' B / A."),
        _c("mean_of_ratios_label", "VARCHAR", "exceeded, met or dissatisfied."),
        _c("mean_of_ratios_label_zh", "VARCHAR", "超出期望, 符合期望 or 不满意."),
        _c("share_exceeded", "DOUBLE", "Share of respondents whose CSD exceeded expectations."),
        _c("share_met", "DOUBLE", "Share within the tolerance band."),
        _c("share_dissatisfied", "DOUBLE", "Share below it."),
        version_col(),
    ),
)

NPS = MartSchema(
    table="marts.nps",
    description="Net Promoter Score per wave and segment with its standard error, margin of error and interval.",
    key=("wave", "segment_type", "segment"),
    columns=(
        as_of_col(),
        _WAVE,
        *_SEGMENT,
        _c("n", "BIGINT", "Kept responses with a recommend answer 0-10."),
        _c("n_excluded", "BIGINT", "Kept responses without one."),
        _c("promoters", "BIGINT", "Answers 9-10."),
        _c("passives", "BIGINT", "Answers 7-8."),
        _c("detractors", "BIGINT", "Answers 0-6."),
        _c("promoter_share", "DOUBLE", "promoters / n."),
        _c("passive_share", "DOUBLE", "passives / n."),
        _c("detractor_share", "DOUBLE", "detractors / n."),
        _c("nps", "DOUBLE", "100 (promoter_share - detractor_share)."),
        _c("se", "DOUBLE", "sqrt(100² (p + d - (p - d)²) / n)."),
        _c("margin_of_error", "DOUBLE", "z se at the configured confidence."),
        _c("lower", "DOUBLE", "nps - margin_of_error, clipped to -100."),
        _c("upper", "DOUBLE", "nps + margin_of_error, clipped to 100."),
        version_col(),
    ),
)

KANO = MartSchema(
    table="marts.kano",
    description="Kano per service attribute, wave and segment: A/O/M/I/R/Q shares, the modal category (ties M > O > A > I) and Better / Worse.",
    key=("wave", "segment_type", "segment", "attribute"),
    columns=(
        as_of_col(),
        _WAVE,
        *_SEGMENT,
        _c("attribute", "VARCHAR", "Service attribute."),
        _c("n", "BIGINT", "Valid functional / dysfunctional answer pairs."),
        _c("n_excluded", "BIGINT", "Kept responses without a valid pair."),
        *(_c(f"count_{c}", "BIGINT", f"Pairs classified {c.upper()}.") for c in "moairq"),
        *(_c(f"share_{c}", "DOUBLE", f"count_{c} / n.") for c in "moairq"),
        _c("category", "VARCHAR", "Modal category: M, O, A, I, R or Q (ties M > O > A > I > R > Q)."),
        _c("category_name", "VARCHAR", "must_be, one_dimensional, attractive, indifferent, reverse, questionable."),
        _c("category_zh", "VARCHAR", "当然质量, 期望质量, 迷人质量, 无差异质量, 反向质量, 可疑结果."),
        _c("better", "DOUBLE", "(A + O) / (A + O + M + I)."),
        _c("worse", "DOUBLE", "-(O + M) / (A + O + M + I)."),
        version_col(),
    ),
)

IPA = MartSchema(
    table="marts.ipa",
    description="Importance-performance analysis per wave and importance measure: each service attribute's area (urgent improvement, competitive advantage, secondary improvement, icing on the cake).",
    key=("wave", "importance_method", "attribute"),
    columns=(
        as_of_col(),
        _WAVE,
        _c(
            "importance_method",
            "VARCHAR",
            "stated (mean imp_ answer), correlation or regression (derived from perf_ against the satisfaction item).",
        ),
        _c("attribute", "VARCHAR", "Service attribute."),
        _c("n", "BIGINT", "Kept responses in the wave."),
        _c("importance", "DOUBLE", "Importance (stated: 1-10 mean; derived: correlation or standardised coefficient)."),
        _c("performance", "DOUBLE", "Mean performance answer (1-10)."),
        _c("importance_crosshair", "DOUBLE", "Importance crosshair (ipa_crosshair)."),
        _c("performance_crosshair", "DOUBLE", "Performance crosshair."),
        _c("area", "VARCHAR", "concentrate_here, keep_up, low_priority or possible_overkill."),
        _c("area_zh", "VARCHAR", "急需改进区, 竞争优势区, 次要改进区 or 锦上添花区."),
        version_col(),
    ),
)

SURVEY_COVERAGE = MartSchema(
    table="marts.survey_coverage",
    description="Survey coverage per wave and stratum: population, responses, response rate, margin of error with the finite-population correction, the sample needed for the target precision and the post-stratification weight.",
    key=("wave", "stratum"),
    columns=(
        as_of_col(),
        _WAVE,
        _c("stratum", "VARCHAR", "Stratum: the strata columns' values joined by ' / ', or 'all'."),
        _c("population", "BIGINT", "Customers of the survey frame (signed up by the wave's last answer day)."),
        _c("responses", "BIGINT", "Kept responses of identified customers in the stratum."),
        _c("response_rate", "DOUBLE", "responses / population."),
        _c("population_share", "DOUBLE", "population / the wave's population."),
        _c("response_share", "DOUBLE", "responses / the wave's identified responses."),
        _c(
            "margin_of_error",
            "DOUBLE",
            "Margin of error of a proportion at p = 0.5 with the finite-population correction; null without responses.",
        ),
        _c(
            "needed_responses",
            "BIGINT",
            "Responses needed for ± target_margin at the configured confidence (finite population).",
        ),
        _c("shortfall", "BIGINT", "max(needed_responses - responses, 0)."),
        _c(
            "weighting_cell",
            "VARCHAR",
            "The cell the weight is computed in: the stratum itself or 'pooled' (strata below min_cell_responses).",
        ),
        _c(
            "post_stratification_weight",
            "DOUBLE",
            "(N_h / N) / (n_h / n) of the cell; null when the cell has no response.",
        ),
        version_col(),
    ),
)

SATISFACTION_LOYALTY = MartSchema(
    table="marts.satisfaction_loyalty",
    description="Survey joined to behaviour: respondents per wave as satisfied and loyal, satisfied but not loyal (the satisfaction trap), dissatisfied but staying, or lost.",
    key=("wave", "group"),
    columns=(
        as_of_col(),
        _WAVE,
        _c("group", "VARCHAR", "satisfied_loyal, satisfaction_trap, dissatisfied_staying, lost or no_purchase."),
        _c("group_zh", "VARCHAR", "满意且忠诚, 满意但不忠诚(顾客满意陷阱), 不满意但留存, 不满意且流失, 无购买记录."),
        _c("customers", "BIGINT", "Identified respondents (latest kept response in the wave)."),
        _c("share", "DOUBLE", "customers / the wave's identified respondents."),
        _c(
            "mean_satisfaction_score", "DOUBLE", "Mean satisfaction score (0-100, equally weighted satisfaction items)."
        ),
        _c("mean_recommend", "DOUBLE", "Mean recommend answer (0-10)."),
        _c("net_monetary_12m", "DECIMAL(18,2)", "Their net value in the last 365 days (customer 360), CNY."),
        version_col(),
    ),
)

SURVEY_COMMENTS = MartSchema(
    table="marts.survey_comments",
    description="The verbatims: every kept response with a comment, scrubbed of phone numbers, id numbers, e-mail addresses, cards and tax ids, beside the answers that put it in context.",
    key=("verbatim_id",),
    columns=(
        as_of_col(),
        _c("wave", "VARCHAR", "Fieldwork wave (e.g. 2025Q2)."),
        _c("verbatim_id", "VARCHAR", "Stable id of the comment (a hash of the response id, not the id itself)."),
        _c("customer_key", "VARCHAR", "Respondent; null for an anonymous response."),
        _c("answered_on", "DATE", "Business date of the response."),
        _c("recommend", "BIGINT", "Likelihood to recommend (0-10)."),
        _c("nps_group", "VARCHAR", "promoter (9-10), passive (7-8) or detractor (0-6); null without an answer."),
        _c("satisfaction_score", "DOUBLE", "0-100 from the equally weighted satisfaction items."),
        _c("complaint", "BOOLEAN", "The respondent complained in the period."),
        _c(
            "comment_scrubbed",
            "VARCHAR",
            "The comment with contact details replaced by placeholders ([phone], [id], [email], [card], [tax_id]).",
        ),
        _c("redacted", "BOOLEAN", "Whether anything was replaced."),
        version_col(),
    ),
)

SATISFACTION_TABLES = (
    SURVEY_EXCLUSIONS,
    SATISFACTION_INDEX,
    SATISFACTION_PATHS,
    CSD,
    NPS,
    KANO,
    IPA,
    SURVEY_COVERAGE,
    SATISFACTION_LOYALTY,
    SURVEY_COMMENTS,
)


# -- responses ----------------------------------------------------------------------------------


def _stratum(t: ir.Table, columns: Sequence[str]) -> ir.StringValue:
    parts = [t[c].cast("string").fill_null("unknown") for c in columns]
    out = parts[0]
    for p in parts[1:]:
        out = out.concat(" / ", p)
    return out


def survey_responses(
    surveys: ir.Table, identity: ir.Table, c360: ir.Table, as_of: ir.Table, params: SatisfactionParams
) -> ir.Table:
    """Every response known per as-of date, classified, with customer_key, the segment columns
    (``_seg_<col>``) and the stratum of its customer (null key: anonymous)."""
    s = known(surveys, as_of)
    ident = identity.select("as_of_date", "customer_ref", _key="customer_key")
    s = s.left_join(ident, ["as_of_date", "customer_ref"]).drop("as_of_date_right", "customer_ref_right")
    s = s.rename(customer_key="_key").mutate(complaint=s.complaint.cast("int64"))
    s = classify_responses(s, required=params.spec.items)
    cols = sorted(set(params.segments) | set(params.strata))
    facts = c360.select("as_of_date", "customer_key", **{f"_seg_{c}": c360[c] for c in cols})
    s = s.left_join(facts, ["as_of_date", "customer_key"]).drop("as_of_date_right", "customer_key_right")
    stratum = _stratum(s, [f"_seg_{c}" for c in params.strata])
    return s.mutate(_stratum=ibis.ifelse(s.customer_key.isnull(), ibis.null("string"), stratum))


def _with_all_waves(t: ir.Table) -> ir.Table:
    return ibis.union(t, t.mutate(wave=ibis.literal(ALL_WAVES, type="string")))


def _segmented(t: ir.Table, segments: Sequence[str]) -> ir.Table:
    parts = [t.mutate(segment_type=ibis.literal("all"), segment=ibis.literal("all"))]
    for s in segments:
        value = ibis.ifelse(t.customer_key.isnull(), "anonymous", t[f"_seg_{s}"].cast("string").fill_null("unknown"))
        parts.append(t.mutate(segment_type=ibis.literal(s), segment=value))
    return ibis.union(*parts)


def survey_exclusions(responses: ir.Table, settings_version: str = "") -> ir.Table:
    """SURVEY_EXCLUSIONS from classified responses."""
    t = _with_all_waves(responses)
    rates = exclusion_rates(t, by=("as_of_date", "wave"))
    anon = t.group_by(["as_of_date", "wave"]).aggregate(anonymous=t.customer_key.isnull().sum().cast("int64"))
    out = rates.join(anon, ["as_of_date", "wave"])
    return out.mutate(settings_version=ibis.literal(settings_version)).select(SURVEY_EXCLUSIONS.names)


def _block_mean(t: ir.Table, items: Sequence[str]) -> ir.FloatingValue:
    total = t[items[0]].cast("float64")
    for i in items[1:]:
        total = total + t[i].cast("float64")
    return total / len(items)


def survey_measures(kept: ir.Table, params: SatisfactionParams, settings_version: str = "") -> dict[str, ir.Table]:
    """CSD, NPS and Kano per as-of date, wave and segment from the kept responses."""
    t = _segmented(_with_all_waves(kept), params.segments)
    by = ["as_of_date", "wave", "segment_type", "segment"]
    spec = params.spec
    version = ibis.literal(settings_version)
    csd = csd_table(
        t,
        _block_mean(t, spec.outer[params.csd_perceived]),
        _block_mean(t, spec.outer[params.csd_expected]),
        by=by,
        tolerance=params.csd_tolerance,
    )
    nps = nps_table(t, by=by, confidence=params.confidence)
    kano = kano_table(t, params.attributes, by=by)
    return {
        CSD.table: csd.mutate(settings_version=version).select(CSD.names),
        NPS.table: nps.mutate(settings_version=version).select(NPS.names),
        KANO.table: kano.mutate(settings_version=version).select(KANO.names),
    }


def survey_comments(kept: ir.Table, params: SatisfactionParams, settings_version: str = "") -> ir.Table:
    """SURVEY_COMMENTS: the kept responses with a non-blank comment, scrubbed in the engine
    (quality.pii.scrub_expr, the same rules as the Python scrubber) before they reach a mart."""
    t = kept.filter(kept.comment.notnull() & (strip(kept.comment) != ""))
    lo, hi = params.scale
    scrubbed = scrub_expr(t.comment)
    group = ibis.cases(
        (t.recommend >= 9, "promoter"), (t.recommend >= 7, "passive"), (t.recommend >= 0, "detractor"), else_=None
    ).cast("string")
    return t.select(
        "as_of_date",
        "wave",
        verbatim_id=t.response_id.hexdigest("sha256").left(16),
        customer_key=t.customer_key,
        answered_on=t.business_date.cast("date"),
        recommend=t.recommend.cast("int64"),
        nps_group=group,
        satisfaction_score=100.0 * (_block_mean(t, params.spec.outer[params.satisfaction_latent]) - lo) / (hi - lo),
        complaint=t.complaint.cast("boolean"),
        comment_scrubbed=scrubbed,
        redacted=scrubbed != t.comment,
        settings_version=ibis.literal(settings_version),
    ).select(SURVEY_COMMENTS.names)


def satisfaction_loyalty(
    kept: ir.Table, lifecycle: ir.Table, c360: ir.Table, params: SatisfactionParams, settings_version: str = ""
) -> ir.Table:
    """SATISFACTION_LOYALTY: identified respondents' latest kept answer per wave against their stage now."""
    t = _with_all_waves(kept.filter(kept.customer_key.notnull()))
    latest = ibis.row_number().over(
        group_by=[t.as_of_date, t.wave, t.customer_key], order_by=[t.started_at.desc(), t.response_id.desc()]
    )
    lo, hi = params.scale
    t = t.mutate(_n=latest).filter(lambda x: x._n == 0)
    t = t.mutate(_score=100.0 * (_block_mean(t, params.spec.outer[params.satisfaction_latent]) - lo) / (hi - lo))
    stage = lifecycle.select("as_of_date", "customer_key", _stage="stage")
    money = c360.select("as_of_date", "customer_key", _net="net_monetary_12m")
    t = t.left_join(stage, ["as_of_date", "customer_key"]).drop("as_of_date_right", "customer_key_right")
    t = t.left_join(money, ["as_of_date", "customer_key"]).drop("as_of_date_right", "customer_key_right")
    satisfied = t._score >= params.satisfied_min
    leaving = t._stage.isin(list(params.leaving_stages))
    group = ibis.cases(
        (t._stage.isnull(), "no_purchase"),
        (satisfied & ~leaving, "satisfied_loyal"),
        (satisfied & leaving, "satisfaction_trap"),
        (~leaving, "dissatisfied_staying"),
        else_="lost",
    )
    t = t.mutate(group=group)
    g = t.group_by(["as_of_date", "wave", "group"]).aggregate(
        customers=t.count().cast("int64"),
        mean_satisfaction_score=t._score.mean(),
        mean_recommend=t.recommend.cast("float64").mean(),
        net_monetary_12m=t._net.sum().cast("decimal(18, 2)"),
    )
    total = g.customers.sum().over(group_by=[g.as_of_date, g.wave])
    g = g.mutate(
        share=g.customers.cast("float64") / total.cast("float64"),
        group_zh=g.group.substitute(LOYALTY_GROUPS),
        settings_version=ibis.literal(settings_version),
    )
    return g.select(SATISFACTION_LOYALTY.names)


def frame_population(c360: ir.Table, responses: ir.Table, params: SatisfactionParams) -> ir.Table:
    """Survey frame size per as-of date, wave (and 'all') and stratum: customers signed up by
    the wave's last answer day."""
    t = _with_all_waves(responses)
    ends = t.group_by(["as_of_date", "wave"]).aggregate(_end=t.business_date.max())
    c = c360.mutate(_stratum=_stratum(c360, params.strata))
    j = c.join(ends, "as_of_date")
    j = j.filter(j.signup_date.isnull() | (j.signup_date <= j._end))
    return j.group_by(["as_of_date", "wave", "_stratum"]).aggregate(population=j.count().cast("int64"))


# -- pandas side: PLS fits, index, IPA, coverage ----------------------------------------------


@dataclass
class _Fit:
    """One fitted model (or why there is none) for one set of responses."""

    n: int
    model: object | None = None
    status: str = "ok"


def _complete_rows(frame: pd.DataFrame, items: Sequence[str]) -> np.ndarray:
    """Positions of the rows with every item answered (column by column: no copy of the items)."""
    ok = np.ones(len(frame), dtype=bool)
    for item in items:
        ok &= frame[item].notna().to_numpy()
    return np.flatnonzero(ok)


def _by_response_id(frame: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
    """`positions` in response_id order (ids are unique in a snapshot's responses)."""
    return positions[frame.response_id.iloc[positions].argsort(kind="stable").to_numpy()]


def _item_matrix(frame: pd.DataFrame, items: Sequence[str], positions: np.ndarray) -> np.ndarray:
    """The items of the rows at `positions` as one float matrix, filled column by column: at
    scale a frame of the items, its dropna, sort and astype would be four copies of it."""
    out = np.empty((len(positions), len(items)))
    for j, item in enumerate(items):
        out[:, j] = frame[item].to_numpy()[positions]
    return out


def _fingerprint(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """The identity of a set of responses whatever order a query returned them in: per column,
    the hashes of its values in response_id order."""
    order = _by_response_id(frame, np.arange(len(frame)))
    digest = hashlib.sha1()
    for column in columns:
        digest.update(pd.util.hash_pandas_object(frame[column], index=False).to_numpy()[order].tobytes())
    return f"{len(frame)}:{digest.hexdigest()}"


def _fit(frame: pd.DataFrame, params: SatisfactionParams) -> _Fit:
    """Fit on the complete responses in response_id order: the seeded bootstrap draws row
    positions, so the order a query happened to return (DuckDB's is not fixed) must not move
    the intervals."""
    spec = params.spec
    rows = _by_response_id(frame, _complete_rows(frame, spec.items))
    n = len(rows)
    if n < params.min_responses:
        return _Fit(n, status="not_fitted")
    model = spec.model(params.scheme, consistent=params.consistent)
    items = pd.DataFrame(_item_matrix(frame, spec.items, rows), columns=spec.items, copy=False)
    with warnings.catch_warnings():
        # non-convergence and inadmissible PLSc solutions are reported in the marts instead
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            model.fit(items, bootstrap=params.bootstrap, seed=params.seed, confidence=params.confidence)
        except ValueError:  # e.g. every bootstrap resample failed: keep the estimates without intervals
            try:
                model.fit(items)
            except (ValueError, np.linalg.LinAlgError):
                return _Fit(n, status="not_fitted")
        except np.linalg.LinAlgError:
            return _Fit(n, status="not_fitted")
    # the marts read weights, paths and intervals, not the respondents' scores: a fit is held
    # for the whole batch and pickled into the fit cache, and its scores are n x latents floats
    model.scores_ = None
    return _Fit(n, model, "ok" if model.converged_ else "not_converged")


def _weighted_mean_se(scores: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    n = scores.shape[0]
    total = weights.sum()
    mean = float(weights @ scores / total)
    if n < 2:
        return mean, float("nan")
    se = math.sqrt(float(np.sum(weights**2 * (scores - mean) ** 2))) / total * math.sqrt(n / (n - 1))
    return mean, se


def _segment_groups(frame: pd.DataFrame, rows: np.ndarray, params: SatisfactionParams) -> list[tuple]:
    """(segment_type, segment, positions into `rows`) of 'all' and of every segment value, in
    value order; positions, not frames: a copy of the responses per group adds up to a copy of
    all of them per segment column."""
    groups: list[tuple] = [("all", "all", np.arange(len(rows)))]
    anonymous = frame.customer_key.isna().to_numpy()[rows]
    for s in params.segments:
        known_value = frame[f"_seg_{s}"].iloc[rows].astype("string").fillna("unknown").to_numpy(dtype=object)
        codes, values = pd.factorize(np.where(anonymous, "anonymous", known_value), sort=True)
        order = np.argsort(codes, kind="stable")  # each group's positions stay ascending
        ends = np.cumsum(np.bincount(codes, minlength=len(values)))
        groups += [
            (s, str(v), order[end - size : end])
            for v, end, size in zip(values, ends, np.diff(ends, prepend=0), strict=True)
        ]
    return groups


def _index_rows(
    wave: str,
    frame: pd.DataFrame,
    weight: np.ndarray,
    fit: _Fit,
    weighting: str,
    survey_weights: str,
    params: SatisfactionParams,
) -> list[dict]:
    """Index rows of one wave (`frame`, `weight` per response) per latent and segment."""
    spec = params.spec
    answered = _complete_rows(frame, spec.items)
    groups = _segment_groups(frame, answered, params)
    weight = weight[answered]
    lo, hi = params.scale
    z = z_value(params.confidence)
    rows = []
    for lv in spec.index_latents:
        w = None
        status = fit.status
        if fit.model is not None and status == "ok":
            w = fit.model.unstandardised_weights(lv)
            if (w < 0).any():
                status, w = "negative_weights", None
        scores = None
        if w is not None:
            x = _item_matrix(frame, list(w.index), answered)
            scores = 100.0 * (x @ w.to_numpy() - lo * w.sum()) / ((hi - lo) * w.sum())
        for seg_type, seg, at in groups:
            row = dict(
                wave=wave,
                latent=lv,
                segment_type=seg_type,
                segment=seg,
                n=len(at),
                index=None,
                se=None,
                lower=None,
                upper=None,
            )
            row_status = status
            if scores is not None and len(at):
                mean, se = _weighted_mean_se(scores[at], weight[at])
                row.update(index=mean, se=se)
                if math.isfinite(se):
                    row.update(lower=max(mean - z * se, 0.0), upper=min(mean + z * se, 100.0))
                if len(at) < params.min_segment_responses:
                    row_status = "small_sample"
            row.update(status=row_status, weighting=weighting, survey_weights=survey_weights, model=spec.name)
            rows.append(row)
    return rows


def _path_rows(wave: str, fit: _Fit, frame: pd.DataFrame, params: SatisfactionParams) -> list[dict]:
    spec = params.spec
    base = dict(
        wave=wave, model=spec.name, estimator="plsc" if params.consistent else "pls", scheme=params.scheme, n=fit.n
    )
    rows: list[dict] = []
    complaint = pd.to_numeric(frame.get("complaint"), errors="coerce") if "complaint" in frame else None
    if complaint is not None and complaint.notna().any():
        rows.append(
            dict(
                base,
                measure="complaint_rate",
                source="model",
                target=None,
                estimate=float(complaint.mean()),
                converged=None,
            )
        )
    m = fit.model
    if m is None:
        return rows
    boot = m.bootstrap_
    lookup = (
        {}
        if boot is None
        else {(k, nm): r for k, nm, r in zip(boot.kind, boot.name, boot.itertuples(index=False), strict=True)}
    )

    def add(measure: str, source: str, target: str | None, estimate: float, key: tuple[str, str] | None = None) -> None:
        b = lookup.get(key) if key else None
        rows.append(
            dict(
                base,
                measure=measure,
                source=source,
                target=target,
                estimate=float(estimate),
                std_error=None if b is None else float(b.std_error),
                lower=None if b is None else float(b.lower),
                upper=None if b is None else float(b.upper),
                converged=bool(m.converged_),
                admissible=bool(m.admissible_),
                resamples=None if b is None else int(b.resamples),
            )
        )

    for a, b in spec.inner:
        add("path", a, b, m.path_coefficients_.loc[a, b], ("path", f"{a} -> {b}"))
    for a in m.total_effects_.index:
        for b in m.total_effects_.columns:
            if a != b and abs(m.total_effects_.loc[a, b]) > 0:
                add("total_effect", a, b, m.total_effects_.loc[a, b])
    for lv, v in m.r2_.items():
        add("r2", lv, None, v, ("r2", lv))
        add("r2_adjusted", lv, None, m.r2_adjusted_[lv])
    for item, v in m.loadings_.items():
        add("loading", m.block_of_[item], item, v, ("loading", item))
    for item, v in m.outer_weights_.items():
        add("weight", m.block_of_[item], item, v, ("weight", item))
    for measure, series in (
        ("ave", m.ave_),
        ("composite_reliability", m.composite_reliability_),
        ("cronbach_alpha", m.cronbach_alpha_),
        ("rho_a", m.rho_a_),
    ):
        for lv, v in series.items():
            add(measure, lv, None, v)
    add("gof", "model", None, m.gof_)
    return rows


def _ipa_rows(wave: str, frame: pd.DataFrame, params: SatisfactionParams, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for method in params.ipa_importance:
        crosshair = params.ipa_crosshair
        if crosshair == "midpoint" and method != "stated":
            crosshair = ("mean", "midpoint")  # derived importance has no scale midpoint
        try:
            table = ipa_table(frame, params.attributes, method, crosshair, params.scale, params.ipa_satisfaction_item)
        except ValueError as error:
            log(f"ipa: wave {wave}, {method} importance not computed: {error}")
            continue
        for r in table.to_dict("records"):
            rows.append(dict(r, wave=wave, importance_method=method, n=len(frame)))
    return rows


def _coverage_rows(
    wave: str, frame: pd.DataFrame, population: pd.DataFrame, params: SatisfactionParams
) -> tuple[list[dict], dict[str, float]]:
    """Coverage rows of one wave and the post-stratification weight per stratum."""
    pop = population.set_index("_stratum")["population"].astype(int)
    resp = frame.loc[frame.customer_key.notna(), "_stratum"].value_counts()  # one column, not a copy of the frame
    strata = sorted(set(pop.index) | set(resp.index))
    n_of = {s: int(resp.get(s, 0)) for s in strata}
    # a respondent outside the frame (signup after the wave) still belongs to it
    big_of = {s: max(int(pop.get(s, 0)), n_of[s]) for s in strata}
    cell = {s: s if n_of[s] >= params.min_cell_responses else POOLED_CELL for s in strata}
    cell_pop: dict[str, int] = {}
    cell_n: dict[str, int] = {}
    for s in strata:
        cell_pop[cell[s]] = cell_pop.get(cell[s], 0) + big_of[s]
        cell_n[cell[s]] = cell_n.get(cell[s], 0) + n_of[s]
    # a pooled cell without any response cannot be weighted up: its population is left out (weight null)
    weighted = [c for c in cell_pop if cell_n[c] > 0]
    weight_of_cell = (
        post_stratification_weights({c: cell_pop[c] for c in weighted}, {c: cell_n[c] for c in weighted})
        if weighted
        else {}
    )
    big_n, n = sum(big_of.values()), sum(n_of.values())
    rows = []
    for s in [*strata, "all"]:
        big, k = (big_n, n) if s == "all" else (big_of[s], n_of[s])
        needed = sample_size(0.5, params.target_margin, params.confidence, big) if big else 0
        rows.append(
            dict(
                wave=wave,
                stratum=s,
                population=big,
                responses=k,
                response_rate=k / big if big else None,
                population_share=big / big_n if big_n else None,
                response_share=k / n if n else None,
                margin_of_error=margin_of_error_proportion(0.5, k, big, params.confidence) if k else None,
                needed_responses=needed,
                shortfall=max(needed - k, 0),
                weighting_cell=None if s == "all" else cell[s],
                post_stratification_weight=None if s == "all" else weight_of_cell.get(cell[s]),
            )
        )
    weights = {s: weight_of_cell[cell[s]] for s in strata if cell[s] in weight_of_cell}
    return rows, weights


@dataclass
class PythonMarts:
    index: pd.DataFrame
    paths: pd.DataFrame
    ipa: pd.DataFrame
    coverage: pd.DataFrame


def python_marts(
    responses: pd.DataFrame,
    population: pd.DataFrame,
    params: SatisfactionParams,
    settings_version: str = "",
    log: Callable[[str], None] = lambda _: None,
    cache: FitCache | None = None,
) -> PythonMarts:
    """Index, paths, IPA and coverage from the kept responses (one row each, with as_of_date,
    wave, customer_key, _stratum, _seg_<col> and the items) and the frame population per
    (as_of_date, wave, _stratum). Each distinct set of responses is fitted once, and not at
    all when `cache` holds its fit from an earlier run."""
    spec = params.spec
    fits: dict[str, _Fit] = {}
    key_columns = ["response_id", *spec.items]
    fit_params = repr(
        (spec, params.scheme, params.consistent, params.bootstrap, params.seed, params.confidence, params.min_responses)
    )
    out: dict[str, list[dict]] = {"index": [], "paths": [], "ipa": [], "coverage": []}
    survey_weights = f"post-stratified by {', '.join(params.strata)}" if params.post_stratify else "none"
    variant = f"{spec.name}; {params.scheme} scheme; unstandardised PLS outer weights"

    def fitted(frame: pd.DataFrame) -> _Fit:
        key = _fingerprint(frame, key_columns)
        if key not in fits:
            found = cache.get(f"{fit_params}|{key}") if cache is not None else None
            if isinstance(found, _Fit):
                fits[key] = found
            else:
                fits[key] = _fit(frame, params)
                if cache is not None:
                    cache.put(f"{fit_params}|{key}", fits[key])
        return fits[key]

    # one as-of date (every nightly run) is the whole frame: groupby would copy it, millions of rows at scale
    dates = responses.as_of_date.unique()
    days = [(dates[0], responses)] if len(dates) == 1 else responses.groupby("as_of_date", sort=True)
    for as_of, day in days:
        # one wave's responses are copied at a time (every wave at once would be another whole frame)
        waves = [(str(w), at) for w, at in sorted(day.groupby("wave").indices.items())] + [(ALL_WAVES, None)]
        pooled = fitted(day)
        pop_day = population[population.as_of_date == as_of]
        rows_of: dict[str, list[dict]] = {k: [] for k in out}
        for wave, at in waves:
            part = day if at is None else day.take(at)
            cov, weights = _coverage_rows(wave, part, pop_day[pop_day.wave == wave], params)
            rows_of["coverage"] += cov
            weight = np.ones(len(part))
            if params.post_stratify:
                known_ = part.customer_key.notna().to_numpy()
                # every stratum with a respondent is in a cell with responses, hence has a weight
                weight[known_] = part._stratum[known_].map(weights).to_numpy(dtype=float)
            fit = fitted(part)
            index_fit = pooled if params.weights_from == "pooled" else fit
            which = "pooled over all waves" if params.weights_from == "pooled" or wave == ALL_WAVES else f"wave {wave}"
            weighting = f"{variant} from the fit on {which}"
            rows_of["index"] += _index_rows(wave, part, weight, index_fit, weighting, survey_weights, params)
            rows_of["paths"] += _path_rows(wave, fit, part, params)
            rows_of["ipa"] += _ipa_rows(wave, part, params, log)
            del part
        for k, rows in rows_of.items():
            out[k] += [dict(r, as_of_date=as_of, settings_version=settings_version) for r in rows]
    reused = f" ({cache.hits} from the fit cache)" if cache is not None and cache.hits else ""
    log(f"satisfaction: {len(fits)} distinct model fits{reused} for {responses.as_of_date.nunique()} as-of dates")
    schemas = {"index": SATISFACTION_INDEX, "paths": SATISFACTION_PATHS, "ipa": IPA, "coverage": SURVEY_COVERAGE}
    frames = {k: pd.DataFrame(out[k], columns=schemas[k].names) for k in out}
    return PythonMarts(**frames)


def _typed(frame: pd.DataFrame, schema: MartSchema) -> ir.Table:
    types = {"VARCHAR": "string", "DOUBLE": "float64", "BIGINT": "int64", "BOOLEAN": "boolean", "DATE": "date"}
    return ibis.memtable(frame, schema={c.name: types[c.sql_type] for c in schema.columns})


@dataclass
class SatisfactionMarts:
    """Every satisfaction mart for a batch of as-of dates, as expressions keyed by table name."""

    tables: Mapping[str, ir.Table]


def satisfaction_marts(
    *,
    surveys: ir.Table,
    identity: ir.Table,
    c360: ir.Table,
    lifecycle: ir.Table,
    as_of: ir.Table,
    params: SatisfactionParams,
    execute: Callable[[ir.Table], pd.DataFrame],
    settings_version: str = "",
    log: Callable[[str], None] = lambda _: None,
    keep: Callable[[ir.Table], ir.Table] = lambda t: t,
    cache: FitCache | None = None,
    in_pandas: Callable[[], AbstractContextManager] = contextlib.nullcontext,
) -> dict[str, ir.Table]:
    """All ten satisfaction marts for the as-of dates of `as_of` ({table name: expression}).
    `keep` materializes the classified responses once (e.g. Scratch.keep) for the many
    queries that read them; the PLS fits run inside `in_pandas()` (e.g. the engine lending
    its memory to pandas meanwhile)."""
    responses = keep(survey_responses(surveys, identity, c360, as_of, params))
    kept = responses.filter(~responses.excluded)
    spec = params.spec
    ipa_items = [f"{p}_{a}" for a in params.attributes for p in ("imp", "perf")]
    columns = sorted(
        {
            "as_of_date",
            "wave",
            "response_id",
            "customer_key",
            "_stratum",
            *spec.items,
            *ipa_items,
            params.ipa_satisfaction_item,
        }
        | {f"_seg_{s}" for s in params.segments}
    )
    frame = execute(kept.select(columns))
    population = execute(frame_population(c360, responses, params))
    with in_pandas():
        py = python_marts(frame, population, params, settings_version, log, cache)
    return {
        SURVEY_EXCLUSIONS.table: survey_exclusions(responses, settings_version),
        **survey_measures(kept, params, settings_version),
        SATISFACTION_LOYALTY.table: satisfaction_loyalty(kept, lifecycle, c360, params, settings_version),
        SURVEY_COMMENTS.table: survey_comments(kept, params, settings_version),
        SATISFACTION_INDEX.table: _typed(py.index, SATISFACTION_INDEX),
        SATISFACTION_PATHS.table: _typed(py.paths, SATISFACTION_PATHS),
        IPA.table: _typed(py.ipa, IPA),
        SURVEY_COVERAGE.table: _typed(py.coverage, SURVEY_COVERAGE),
    }
