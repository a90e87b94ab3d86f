"""Survey measures of customer satisfaction (顾客满意, DOMAIN.md §8): NPS, Kano, importance-
performance areas, CSD and the sampling arithmetic behind a survey. Formulas and anchors:
shared/docs/REFERENCES.md, "Formulas".

The scalar and vector maths is plain numpy / pandas; where a mart needs a per-group aggregate
there is an Ibis expression builder, so the marts only choose columns and groups. The PLS
index (ACSI / ECSI / SCSB) lives in ``analytics.satisfaction.pls``.

NPS (Net Promoter Score, recommend intent 0-10)
    Promoters answer 9-10, detractors 0-6, passives 7-8. With shares p and d of the n
    answers, NPS = 100 (p - d) and, the NPS being the mean of a score that is +100, 0 or
    -100 per respondent, var = 100² (p + d - (p - d)²) / n. The interval is the Wald
    interval NPS ± z·se, clipped to [-100, 100] in ``nps_table`` because no NPS lies outside.
    Rows with a null or out-of-range (not 0..10) answer are not respondents of this question:
    they are left out of n and counted in ``n_excluded`` so the mart shows them.

Kano (functional / dysfunctional question pairs, answers 1 like, 2 must-be, 3 neutral,
4 live-with, 5 dislike)
    Each pair is read from the evaluation table (rows functional, columns dysfunctional)::

                     dysfunctional: like  must-be  neutral  live-with  dislike
        functional like              Q     A        A        A          O
                   must-be           R     I        I        I          M
                   neutral           R     I        I        I          M
                   live-with         R     I        I        I          M
                   dislike           R     R        R        R          Q

    A attractive (迷人质量), O one-dimensional (期望质量), M must-be (当然质量),
    I indifferent (无差异质量), R reverse (反向质量), Q questionable (可疑结果).
    An attribute's category is the most frequent one. Ties go M > O > A > I, as
    REFERENCES.md says: when in doubt, treat an attribute as the more basic need, because
    failing a must-be costs more than missing a delighter. R and Q rank after those: they are
    the mode only when they beat every regular category outright, and then they say the
    question (or its wording) failed rather than describe the attribute.
    Better = (A + O) / (A + O + M + I) and Worse = -(O + M) / (A + O + M + I) (Berger et al.
    1993), so R and Q answers do not dilute them; null when no answer is A, O, M or I.

IPA (importance-performance analysis, Martilla & James 1977)
    Each attribute is placed by (importance, performance) against a crosshair:
    high importance / low performance = concentrate_here (急需改进区),
    high / high = keep_up (竞争优势区), low / low = low_priority (次要改进区),
    low importance / high performance = possible_overkill (锦上添花区).
    A value equal to the crosshair counts as high, so an attribute on the line is never
    reported as a weakness by float chance and the four areas partition the plane.
    Crosshair: the scale midpoint, or the mean or median of the attribute means. Importance is
    stated (mean of ``imp_<attr>``) or derived from ``perf_<attr>`` against an overall
    satisfaction item: Pearson correlation, or standardised coefficients of the multiple
    regression of satisfaction on all performance items (the latter separates attributes that
    move together; the former does not). Derived importance uses the rows where all
    performance items and satisfaction are answered (listwise), so every attribute is judged on
    the same respondents; means use each column's answers. A derived importance is not on the
    rating scale, so the midpoint crosshair is refused for it.

CSD (顾客满意度 = perceived value B / expected value A)
    C > 1 exceeded (超出期望), C ≈ 1 met (符合期望), C < 1 dissatisfied (不满意); "≈" is the
    tolerance band |C - 1| <= tolerance (edges included, so "met" is a closed band). C is
    rounded to 9 decimals before the comparison so a ratio meant to sit on an edge (10.5 / 10)
    is not pushed out of the band by float error. Per group the mart reports the ratio of
    means (the group's CSD) and the mean of the respondents' ratios (the typical respondent),
    each labelled, and the share of respondents with each label. A respondent needs both
    values and expected > 0; others are counted in ``n_excluded``.

Sampling
    Sample size for a proportion n0 = z² p (1 - p) / e², corrected for a finite population
    n = n0 / (1 + (n0 - 1) / N), rounded up so the precision is met (the correction uses the
    unrounded n0: 384.15 -> 385 without, 277.7 -> 278 with N = 1000). Margin of error of a
    proportion z sqrt(p (1 - p) / n), times sqrt((N - n) / (N - 1)) for a finite population.
    Stratified allocation is proportional (n_h ∝ N_h) or Neyman (n_h ∝ N_h S_h), capped at
    N_h (a stratum cannot give more respondents than it has; the excess is reallocated to the
    others) and rounded by largest remainder so the integers sum to the total: floors first,
    then one more unit to the largest fractional parts, ties to the stratum listed first.
    Post-stratification weight w_h = (N_h / N) / (n_h / n), so that the weighted respondents
    sum to n and each stratum weighs as much as its population share. A stratum with
    population but no responses cannot be weighted up from nothing: that is an error, and the
    caller collapses it into a neighbouring stratum rather than silently losing its share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import norm

# -- shared -------------------------------------------------------------------------------------

#: Decimals a ratio or sample size is rounded to before it meets a cut-off (float noise).
_EDGE_DECIMALS = 9


def z_value(confidence: float = 0.95) -> float:
    """Two-sided standard normal quantile for `confidence` (1.959964 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    return float(norm.ppf(1 - (1 - confidence) / 2))


def margin_of_error(se: float, confidence: float = 0.95) -> float:
    """Half-width of the two-sided normal interval: z · se."""
    if not se >= 0:
        raise ValueError(f"standard error must be a non-negative number, got {se}")
    return z_value(confidence) * se


def _clip(x: ir.FloatingValue, lo: float, hi: float) -> ir.FloatingValue:
    # not greatest/least: they skip nulls (greatest(null, -100) = -100) and a null must stay null
    return ibis.cases((x < lo, lo), (x > hi, hi), else_=x)


def _share(count: ir.IntegerValue, n: ir.IntegerValue) -> ir.FloatingValue:
    return ibis.ifelse(n > 0, count.cast("float64") / n.cast("float64"), ibis.null("float64"))


# -- NPS ----------------------------------------------------------------------------------------

RECOMMEND_MIN, RECOMMEND_MAX = 0, 10
#: Lowest recommend answer of a promoter.
PROMOTER_MIN = 9
#: Highest recommend answer of a detractor.
DETRACTOR_MAX = 6


def nps(promoters: int, detractors: int, n: int) -> tuple[float, float]:
    """(NPS, standard error) from counts: 100 (p - d) and sqrt(100² (p + d - (p - d)²) / n)."""
    if n <= 0:
        raise ValueError(f"NPS needs at least one respondent, got n = {n}")
    if promoters < 0 or detractors < 0 or promoters + detractors > n:
        raise ValueError(f"need 0 <= promoters + detractors <= n, got {promoters} + {detractors} and n = {n}")
    p, d = promoters / n, detractors / n
    # max(): p + d - (p - d)² is >= 0 in exact arithmetic; float error can make a 0 slightly negative
    return 100.0 * (p - d), math.sqrt(max(1e4 * (p + d - (p - d) ** 2), 0.0) / n)


def nps_table(
    responses: ir.Table, by: Sequence[str] = (), recommend: str = "recommend", confidence: float = 0.95
) -> ir.Table:
    """Per group of `by`: n, n_excluded, promoters, passives, detractors, their shares, nps, se,
    margin_of_error and the interval lower / upper (clipped to [-100, 100]); null measures when
    the group has no valid answer."""
    z = z_value(confidence)
    r = responses[recommend]
    valid = r.between(RECOMMEND_MIN, RECOMMEND_MAX).fill_null(False)
    t = responses.aggregate(
        n=responses.count(where=valid),
        n_excluded=responses.count(where=~valid),
        promoters=responses.count(where=valid & (r >= PROMOTER_MIN)),
        detractors=responses.count(where=valid & (r <= DETRACTOR_MAX)),
        by=list(by),
    )
    t = t.mutate(passives=t.n - t.promoters - t.detractors)
    t = t.mutate(
        promoter_share=_share(t.promoters, t.n),
        passive_share=_share(t.passives, t.n),
        detractor_share=_share(t.detractors, t.n),
    )
    p, d = t.promoter_share, t.detractor_share
    var = 1e4 * _clip(p + d - (p - d) ** 2, 0.0, 1.0) / t.n.cast("float64")
    t = t.mutate(nps=100.0 * (p - d), se=var.sqrt())
    t = t.mutate(margin_of_error=z * t.se)
    t = t.mutate(
        lower=_clip(t.nps - t.margin_of_error, -100.0, 100.0),
        upper=_clip(t.nps + t.margin_of_error, -100.0, 100.0),
    )
    return t.select(
        *by,
        "n",
        "n_excluded",
        "promoters",
        "passives",
        "detractors",
        "promoter_share",
        "passive_share",
        "detractor_share",
        "nps",
        "se",
        "margin_of_error",
        "lower",
        "upper",
    )


# -- Kano ---------------------------------------------------------------------------------------

#: Answer code -> meaning, for both the functional and the dysfunctional question.
KANO_ANSWERS: dict[int, str] = {1: "like", 2: "must_be", 3: "neutral", 4: "live_with", 5: "dislike"}
#: Evaluation table: row = functional answer - 1, column = dysfunctional answer - 1.
KANO_TABLE: tuple[str, ...] = ("QAAAO", "RIIIM", "RIIIM", "RIIIM", "RRRRQ")
#: Categories in tie-break order (the first of the tied most frequent wins).
KANO_CATEGORIES: tuple[str, ...] = ("M", "O", "A", "I", "R", "Q")
KANO_NAMES: dict[str, str] = {
    "A": "attractive",
    "O": "one_dimensional",
    "M": "must_be",
    "I": "indifferent",
    "R": "reverse",
    "Q": "questionable",
}
KANO_ZH: dict[str, str] = {
    "A": "迷人质量",
    "O": "期望质量",
    "M": "当然质量",
    "I": "无差异质量",
    "R": "反向质量",
    "Q": "可疑结果",
}
_KANO_GRID = np.array([list(row) for row in KANO_TABLE])


def _kano_codes(values: npt.ArrayLike, question: str) -> np.ndarray:
    """`values` as integer answer codes 1..5; ValueError naming the first bad value."""
    a = np.asarray(values)
    if a.dtype.kind not in "iuf":
        raise ValueError(f"Kano {question} answers must be numeric codes 1..5, got dtype {a.dtype}")
    bad = ~np.isin(a, list(KANO_ANSWERS))  # NaN and 2.5 are not in the list either
    if bad.any():
        raise ValueError(f"Kano {question} answer must be a code 1..5, got {a[bad].flat[0].item()!r}")
    return a.astype(np.int64)


def kano_category(functional: npt.ArrayLike, dysfunctional: npt.ArrayLike) -> np.ndarray:
    """Category letter (A, O, M, I, R, Q) of each answer pair; inputs broadcast like numpy."""
    f = _kano_codes(functional, "functional")
    d = _kano_codes(dysfunctional, "dysfunctional")
    return _KANO_GRID[f - 1, d - 1]


def _kano_expr(f: ir.IntegerValue, d: ir.IntegerValue) -> ir.StringValue:
    """Category letter of an answer pair in the engine; null when either answer is missing or not 1..5."""
    pairs = [
        ((f == fi + 1) & (d == di + 1), letter) for fi, row in enumerate(KANO_TABLE) for di, letter in enumerate(row)
    ]
    return ibis.cases(*pairs, else_=ibis.null("string"))


def _kano_attribute(responses: ir.Table, attribute: str, by: Sequence[str]) -> ir.Table:
    cat = _kano_expr(responses[f"kano_f_{attribute}"], responses[f"kano_d_{attribute}"])
    t = responses.mutate(_kano=cat)
    counts = {f"count_{c.lower()}": t.count(where=t._kano == c) for c in KANO_CATEGORIES}
    return t.aggregate(
        n=t.count(where=t._kano.notnull()), n_excluded=t.count(where=t._kano.isnull()), **counts, by=list(by)
    ).mutate(attribute=ibis.literal(attribute, type="string"))


def kano_table(responses: ir.Table, attributes: Sequence[str], by: Sequence[str] = ()) -> ir.Table:
    """Per attribute (and group of `by`) from columns kano_f_<attr> / kano_d_<attr>: n (valid
    pairs), n_excluded, count_<c> and share_<c> for each category, the modal category (ties
    M > O > A > I > R > Q) with category_name and category_zh, better and worse."""
    if not attributes:
        raise ValueError("kano_table needs at least one attribute")
    t = ibis.union(*(_kano_attribute(responses, a, by) for a in attributes))
    counts = {c: t[f"count_{c.lower()}"] for c in KANO_CATEGORIES}
    top = ibis.greatest(*counts.values())
    category = ibis.cases(*(((t.n > 0) & (counts[c] == top), c) for c in KANO_CATEGORIES), else_=ibis.null("string"))
    regular = (counts["A"] + counts["O"] + counts["M"] + counts["I"]).cast("float64")
    t = t.mutate(
        **{f"share_{c.lower()}": _share(counts[c], t.n) for c in KANO_CATEGORIES},
        category=category,
        better=ibis.ifelse(regular > 0, (counts["A"] + counts["O"]).cast("float64") / regular, ibis.null("float64")),
        worse=ibis.ifelse(regular > 0, -(counts["O"] + counts["M"]).cast("float64") / regular, ibis.null("float64")),
    )
    t = t.mutate(category_name=t.category.substitute(KANO_NAMES), category_zh=t.category.substitute(KANO_ZH))
    return t.select(
        *by,
        "attribute",
        "n",
        "n_excluded",
        *(f"count_{c.lower()}" for c in KANO_CATEGORIES),
        *(f"share_{c.lower()}" for c in KANO_CATEGORIES),
        "category",
        "category_name",
        "category_zh",
        "better",
        "worse",
    )


# -- IPA ----------------------------------------------------------------------------------------

IPA_AREA_ZH: dict[str, str] = {
    "concentrate_here": "急需改进区",
    "keep_up": "竞争优势区",
    "low_priority": "次要改进区",
    "possible_overkill": "锦上添花区",
}
IPA_IMPORTANCE = ("stated", "correlation", "regression")
IPA_CROSSHAIRS = ("midpoint", "mean", "median")
Importance = Literal["stated", "correlation", "regression"]
Crosshair = Literal["midpoint", "mean", "median"]


def ipa_area(importance: float, performance: float, imp_cross: float, perf_cross: float) -> str:
    """The IPA area code of one attribute; a value equal to its crosshair counts as high."""
    values = {"importance": importance, "performance": performance, "imp_cross": imp_cross, "perf_cross": perf_cross}
    missing = [k for k, v in values.items() if not math.isfinite(v)]
    if missing:
        raise ValueError(f"ipa_area needs finite numbers; not finite: {missing}")
    # rounded: an attribute mean that equals a mean-of-means crosshair must not lose to float error
    high_imp = round(importance - imp_cross, _EDGE_DECIMALS) >= 0
    high_perf = round(performance - perf_cross, _EDGE_DECIMALS) >= 0
    if high_imp:
        return "keep_up" if high_perf else "concentrate_here"
    return "possible_overkill" if high_perf else "low_priority"


def ipa_crosshair(values: npt.ArrayLike, method: Crosshair, scale: tuple[float, float] = (1, 10)) -> float:
    """Crosshair of one axis: the scale midpoint, or the mean or median of the attribute values."""
    if method == "midpoint":
        lo, hi = scale
        if not lo < hi:
            raise ValueError(f"scale must be (min, max) with min < max, got {scale}")
        return (lo + hi) / 2
    a = np.asarray(values, dtype=float)
    if a.size == 0 or not np.isfinite(a).all():
        raise ValueError("crosshair needs at least one value and no missing values")
    if method == "mean":
        return float(a.mean())
    if method == "median":
        return float(np.median(a))
    raise ValueError(f"unknown crosshair {method!r}; expected one of {IPA_CROSSHAIRS}")


def correlation_importance(performance: pd.DataFrame, satisfaction: pd.Series) -> pd.Series:
    """Pearson correlation of each performance column with satisfaction (complete rows only)."""
    x, y = _complete(performance, satisfaction, min_rows=3)
    xc, yc = x - x.mean(axis=0), y - y.mean()
    r = (xc * yc[:, None]).sum(axis=0) / np.sqrt((xc**2).sum(axis=0) * (yc**2).sum())
    return pd.Series(r, index=performance.columns, dtype=float)


def regression_importance(performance: pd.DataFrame, satisfaction: pd.Series) -> pd.Series:
    """Standardised coefficients of the multiple regression of satisfaction on all performance
    columns (complete rows only); z-scoring both sides makes the intercept 0."""
    k = performance.shape[1]
    x, y = _complete(performance, satisfaction, min_rows=k + 2)
    xz = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    yz = (y - y.mean()) / y.std(ddof=1)
    beta, _, rank, _ = np.linalg.lstsq(xz, yz, rcond=None)
    if rank < k:
        raise ValueError("regression importance: the performance items are collinear; use correlation importance")
    return pd.Series(beta, index=performance.columns, dtype=float)


def _complete(performance: pd.DataFrame, satisfaction: pd.Series, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows where every performance item and satisfaction are answered, as float arrays; the
    same respondents for every attribute. ValueError on too few rows or a constant column."""
    frame = pd.concat([performance, satisfaction.rename("__satisfaction__")], axis=1).dropna()
    if len(frame) < min_rows:
        raise ValueError(f"derived importance needs at least {min_rows} complete rows, got {len(frame)}")
    constant = [str(c) for c in frame.columns if frame[c].nunique() < 2]
    if constant:
        raise ValueError(f"derived importance: constant column(s) have no correlation: {constant}")
    values = frame.to_numpy(dtype=float)
    return values[:, :-1], values[:, -1]


def _ipa_importance(
    frame: pd.DataFrame, attributes: Sequence[str], importance: str, satisfaction_col: str
) -> pd.Series:
    if importance == "stated":
        return _items(frame, "imp", attributes).mean()
    derive = correlation_importance if importance == "correlation" else regression_importance
    return derive(_items(frame, "perf", attributes), frame[satisfaction_col])


def _items(frame: pd.DataFrame, prefix: str, attributes: Sequence[str]) -> pd.DataFrame:
    """The <prefix>_<attr> columns as floats, named by attribute."""
    return frame[[f"{prefix}_{a}" for a in attributes]].set_axis(list(attributes), axis=1).astype(float)


def ipa_table(
    frame: pd.DataFrame,
    attributes: Sequence[str],
    importance: Importance = "stated",
    crosshair: Crosshair | tuple[Crosshair, Crosshair] = "mean",
    scale: tuple[float, float] = (1, 10),
    satisfaction_col: str = "sat_1",
) -> pd.DataFrame:
    """One row per attribute: importance, performance (mean of perf_<attr>), importance_crosshair,
    performance_crosshair, area and area_zh. `crosshair` is one method for both axes or an
    (importance, performance) pair; "midpoint" uses `scale` and needs stated importance."""
    if importance not in IPA_IMPORTANCE:
        raise ValueError(f"unknown importance {importance!r}; expected one of {IPA_IMPORTANCE}")
    imp_method, perf_method = (crosshair, crosshair) if isinstance(crosshair, str) else crosshair
    for method in (imp_method, perf_method):
        if method not in IPA_CROSSHAIRS:
            raise ValueError(f"unknown crosshair {method!r}; expected one of {IPA_CROSSHAIRS}")
    if imp_method == "midpoint" and importance != "stated":
        raise ValueError(
            f"{importance} importance is not on the rating scale, so it has no scale midpoint; "
            "use crosshair 'mean' or 'median' for importance"
        )
    if not attributes:
        raise ValueError("ipa_table needs at least one attribute")
    needed = [f"perf_{a}" for a in attributes]
    needed += [f"imp_{a}" for a in attributes] if importance == "stated" else [satisfaction_col]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"ipa_table: missing columns {missing}")
    performance = _items(frame, "perf", attributes).mean()
    imp = _ipa_importance(frame, attributes, importance, satisfaction_col)
    unanswered = sorted(set(performance[performance.isna()].index) | set(imp[imp.isna()].index))
    if unanswered:
        raise ValueError(f"ipa_table: no answers for attribute(s) {unanswered}")
    imp_cross = ipa_crosshair(imp.to_numpy(), imp_method, scale)
    perf_cross = ipa_crosshair(performance.to_numpy(), perf_method, scale)
    areas = [ipa_area(imp[a], performance[a], imp_cross, perf_cross) for a in attributes]
    return pd.DataFrame(
        {
            "attribute": list(attributes),
            "importance": imp.to_numpy(),
            "performance": performance.to_numpy(),
            "importance_crosshair": imp_cross,
            "performance_crosshair": perf_cross,
            "area": areas,
            "area_zh": [IPA_AREA_ZH[a] for a in areas],
        }
    )


# -- CSD ----------------------------------------------------------------------------------------

CSD_LABEL_ZH: dict[str, str] = {"exceeded": "超出期望", "met": "符合期望", "dissatisfied": "不满意"}


def _check_tolerance(tolerance: float) -> None:
    if not 0 <= tolerance < 1:
        raise ValueError(f"CSD tolerance must be in [0, 1), got {tolerance}")


def csd_label(csd: float, tolerance: float = 0.05) -> str:
    """exceeded (C > 1 + tol), met (|C - 1| <= tol) or dissatisfied (C < 1 - tol)."""
    _check_tolerance(tolerance)
    if not (math.isfinite(csd) and csd >= 0):
        raise ValueError(f"CSD must be a finite non-negative ratio, got {csd}")
    c = round(csd, _EDGE_DECIMALS)
    if c > 1 + tolerance:
        return "exceeded"
    return "dissatisfied" if c < 1 - tolerance else "met"


def _csd_label_expr(csd: ir.FloatingValue, tolerance: float) -> ir.StringValue:
    c = csd.round(_EDGE_DECIMALS)
    return ibis.cases(
        (c > 1 + tolerance, "exceeded"),
        (c < 1 - tolerance, "dissatisfied"),
        (c.notnull(), "met"),
        else_=ibis.null("string"),
    )


def _numeric(responses: ir.Table, value: str | ir.NumericValue) -> ir.FloatingValue:
    return (responses[value] if isinstance(value, str) else value).cast("float64")


def csd_responses(
    responses: ir.Table, perceived: str | ir.NumericValue, expected: str | ir.NumericValue, tolerance: float = 0.05
) -> ir.Table:
    """`responses` plus perceived, expected, csd (null without both values or when expected <= 0),
    csd_label and csd_label_zh. `perceived` / `expected` are column names or expressions on
    `responses` (e.g. the mean of the qual_ items and of the exp_ items)."""
    _check_tolerance(tolerance)
    t = responses.mutate(perceived=_numeric(responses, perceived), expected=_numeric(responses, expected))
    t = t.mutate(csd=ibis.ifelse(t.expected > 0, t.perceived / t.expected, ibis.null("float64")))
    t = t.mutate(csd_label=_csd_label_expr(t.csd, tolerance))
    return t.mutate(csd_label_zh=t.csd_label.substitute(CSD_LABEL_ZH))


def csd_table(
    responses: ir.Table,
    perceived: str | ir.NumericValue,
    expected: str | ir.NumericValue,
    by: Sequence[str] = (),
    tolerance: float = 0.05,
) -> ir.Table:
    """Per group of `by`: n (respondents with a CSD), n_excluded, mean_perceived, mean_expected,
    ratio_of_means and mean_of_ratios with their labels (_label, _label_zh) and the shares of
    respondents labelled exceeded / met / dissatisfied."""
    t = csd_responses(responses, perceived, expected, tolerance)
    ok = t.csd.notnull()
    g = t.aggregate(
        n=t.count(where=ok),
        n_excluded=t.count(where=~ok),
        mean_perceived=t.perceived.mean(where=ok),
        mean_expected=t.expected.mean(where=ok),
        mean_of_ratios=t.csd.mean(where=ok),
        **{f"_count_{label}": t.count(where=t.csd_label == label) for label in CSD_LABEL_ZH},
        by=list(by),
    )
    g = g.mutate(ratio_of_means=g.mean_perceived / g.mean_expected)
    g = g.mutate(
        ratio_of_means_label=_csd_label_expr(g.ratio_of_means, tolerance),
        mean_of_ratios_label=_csd_label_expr(g.mean_of_ratios, tolerance),
        **{f"share_{label}": _share(g[f"_count_{label}"], g.n) for label in CSD_LABEL_ZH},
    )
    g = g.mutate(
        ratio_of_means_label_zh=g.ratio_of_means_label.substitute(CSD_LABEL_ZH),
        mean_of_ratios_label_zh=g.mean_of_ratios_label.substitute(CSD_LABEL_ZH),
    )
    return g.select(
        *by,
        "n",
        "n_excluded",
        "mean_perceived",
        "mean_expected",
        "ratio_of_means",
        "ratio_of_means_label",
        "ratio_of_means_label_zh",
        "mean_of_ratios",
        "mean_of_ratios_label",
        "mean_of_ratios_label_zh",
        *(f"share_{label}" for label in CSD_LABEL_ZH),
    )


# -- sampling -----------------------------------------------------------------------------------


def _check_population(population: int | None, n: float | None = None) -> None:
    if population is None:
        return
    if population < 1:
        raise ValueError(f"population must be at least 1, got {population}")
    if n is not None and n > population:
        raise ValueError(f"sample size {n} exceeds the population {population}")


def sample_size(p: float = 0.5, margin: float = 0.05, confidence: float = 0.95, population: int | None = None) -> int:
    """Respondents needed to estimate a proportion near `p` within ± `margin`: n0 = z² p (1 - p) / e²,
    then n0 / (1 + (n0 - 1) / N) for a finite population N, rounded up."""
    if not 0 < p < 1:
        raise ValueError(f"p must be between 0 and 1 (exclusive), got {p}")
    if not 0 < margin < 1:
        raise ValueError(f"margin must be between 0 and 1 (exclusive), got {margin}")
    _check_population(population)
    n = z_value(confidence) ** 2 * p * (1 - p) / margin**2
    if population is not None:
        n = n / (1 + (n - 1) / population)
    return math.ceil(round(n, _EDGE_DECIMALS))


def margin_of_error_proportion(p: float, n: int, population: int | None = None, confidence: float = 0.95) -> float:
    """z sqrt(p (1 - p) / n), times the finite-population correction sqrt((N - n) / (N - 1))."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must be a proportion in [0, 1], got {p}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    _check_population(population, n)
    moe = z_value(confidence) * math.sqrt(p * (1 - p) / n)
    if population is not None:
        # a census (n = N) has no sampling error; N = 1 would otherwise divide 0 by 0
        moe *= math.sqrt((population - n) / (population - 1)) if n < population else 0.0
    return moe


def _largest_remainder(quotas: Mapping[str, float], total: int) -> dict[str, int]:
    """Integers summing to `total`: floors, then +1 to the largest fractional parts, ties to the first listed."""
    floors = {k: math.floor(round(q, _EDGE_DECIMALS)) for k, q in quotas.items()}
    left = total - sum(floors.values())
    order = sorted(quotas, key=lambda k: -(quotas[k] - floors[k]))  # stable: ties keep the given order
    return {k: floors[k] + (1 if k in order[:left] else 0) for k in quotas}


def allocate(
    total: int, strata_sizes: Mapping[str, int], strata_sd: Mapping[str, float] | None = None
) -> dict[str, int]:
    """Split `total` respondents over strata: proportional to N_h, or Neyman (∝ N_h S_h) with
    `strata_sd`; capped at N_h with the excess reallocated; integers summing to `total`."""
    if total < 0:
        raise ValueError(f"total must be non-negative, got {total}")
    negative = {k: v for k, v in strata_sizes.items() if v < 0}
    if not strata_sizes or negative:
        raise ValueError(f"strata_sizes must be non-empty and non-negative, got {dict(strata_sizes)}")
    if total > sum(strata_sizes.values()):
        raise ValueError(f"total {total} exceeds the population {sum(strata_sizes.values())}")
    if strata_sd is None:
        weight = {k: float(v) for k, v in strata_sizes.items()}
    else:
        if set(strata_sd) != set(strata_sizes):
            raise ValueError(f"strata_sd must give every stratum: sizes {sorted(strata_sizes)}, sd {sorted(strata_sd)}")
        if any(not s >= 0 for s in strata_sd.values()):
            raise ValueError(f"strata_sd must be non-negative, got {dict(strata_sd)}")
        weight = {k: strata_sizes[k] * float(strata_sd[k]) for k in strata_sizes}
    capped: dict[str, int] = {}
    while True:  # a stratum whose share exceeds its size takes a census; the rest share what is left
        free = {k: w for k, w in weight.items() if k not in capped}
        if not any(free.values()):  # only zero-sd strata left (Neyman): they share the rest by size
            free = {k: float(strata_sizes[k]) for k in free}
        left = total - sum(capped.values())
        quotas = {k: left * w / sum(free.values()) if left else 0.0 for k, w in free.items()}
        over = {k: strata_sizes[k] for k, q in quotas.items() if round(q, _EDGE_DECIMALS) > strata_sizes[k]}
        if not over:
            break
        capped.update(over)
    rounded = _largest_remainder(quotas, left)
    return {k: capped.get(k, rounded.get(k, 0)) for k in strata_sizes}


def post_stratification_weights(
    population_by_stratum: Mapping[str, int], responses_by_stratum: Mapping[str, int]
) -> dict[str, float]:
    """Weight per stratum (N_h / N) / (n_h / n); ValueError for a stratum with population but no
    responses, responses but no population, or a stratum unknown to the population. A stratum
    with neither has no weight and is left out of the result."""
    unknown = sorted(set(responses_by_stratum) - set(population_by_stratum))
    if unknown:
        raise ValueError(f"responses in strata without a population count: {unknown}")
    if any(v < 0 for v in population_by_stratum.values()) or any(v < 0 for v in responses_by_stratum.values()):
        raise ValueError("population and response counts must be non-negative")
    responses = {k: responses_by_stratum.get(k, 0) for k in population_by_stratum}
    empty = sorted(k for k, n_h in responses.items() if n_h == 0 and population_by_stratum[k] > 0)
    if empty:
        raise ValueError(f"strata with population but no responses cannot be weighted (collapse them): {empty}")
    unpopulated = sorted(k for k, n_h in responses.items() if n_h > 0 and population_by_stratum[k] == 0)
    if unpopulated:
        raise ValueError(f"strata with responses but a population of 0: {unpopulated}")
    big_n, n = sum(population_by_stratum.values()), sum(responses.values())
    if n == 0:
        raise ValueError("no responses to weight")
    return {k: (population_by_stratum[k] / big_n) / (responses[k] / n) for k in population_by_stratum if responses[k]}
