"""Survey measures: NPS, Kano, IPA, CSD and sampling (analytics/satisfaction/measures.py),
each on a fixture small enough to check by hand; the arithmetic is in the comments."""

from __future__ import annotations

import math

import ibis
import numpy as np
import pandas as pd
import pytest

from analytics.satisfaction.measures import (
    CSD_LABEL_ZH,
    IPA_AREA_ZH,
    KANO_NAMES,
    KANO_ZH,
    allocate,
    correlation_importance,
    csd_label,
    csd_responses,
    csd_table,
    ipa_area,
    ipa_crosshair,
    ipa_table,
    kano_category,
    kano_table,
    margin_of_error,
    margin_of_error_proportion,
    nps,
    nps_table,
    post_stratification_weights,
    regression_importance,
    sample_size,
    z_value,
)

Z95 = 1.959963984540054  # norm.ppf(0.975)


def _rows(con, expr, keys: list[str]) -> pd.DataFrame:
    return con.execute(expr).sort_values(keys).reset_index(drop=True)


# -- NPS ----------------------------------------------------------------------------------------

# 10 answers 10 10 9 9 9 | 8 7 | 6 3 0: promoters 5, passives 2, detractors 3 -> p .5, d .3
#   NPS = 100 (.5 - .3) = 20
#   var = 100² (.5 + .3 - .2²) / 10 = 10000 x .76 / 10 = 760 -> se = sqrt(760) = 27.568098
#   MOE(95 %) = 1.959964 x 27.568098 = 54.032478 -> interval [-34.032478, 74.032478]
TEN = [10, 10, 9, 9, 9, 8, 7, 6, 3, 0]


def test_nps_and_its_standard_error_on_ten_respondents() -> None:
    score, se = nps(promoters=5, detractors=3, n=10)
    assert score == pytest.approx(20.0)
    assert se == pytest.approx(math.sqrt(760))
    assert margin_of_error(se) == pytest.approx(54.032478, abs=1e-6)
    # 90 %: z = 1.644854 -> 1.644854 x 27.568098 = 45.345485
    assert margin_of_error(se, confidence=0.90) == pytest.approx(45.345485, abs=1e-5)


def test_nps_of_all_promoters_is_100_with_no_error() -> None:
    assert nps(7, 0, 7) == (100.0, 0.0)
    with pytest.raises(ValueError, match="standard error must be a non-negative number, got -1"):
        margin_of_error(-1.0)


@pytest.mark.parametrize(
    "promoters,detractors,n,message",
    [(1, 0, 0, "at least one respondent"), (6, 5, 10, "promoters \\+ detractors <= n"), (-1, 0, 5, "<= n")],
)
def test_nps_rejects_impossible_counts(promoters: int, detractors: int, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        nps(promoters, detractors, n)


@pytest.mark.parametrize("confidence", [0, 1, 1.5])
def test_confidence_outside_0_1_is_refused(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        z_value(confidence)


def test_nps_table_counts_excludes_and_interval(con) -> None:
    # group x: the ten answers above plus a null and an out-of-range 11 -> n 10, n_excluded 2
    # group y: only a null -> n 0 and every measure null
    # group z: nine 9s and one 8 -> p .9, d 0: NPS 90, se = 100 sqrt(.9 - .81) / sqrt(10) = 9.486833,
    #   MOE = 1.959964 x 9.486833 = 18.593851 -> [71.406149, 108.59..] clipped to 100
    frame = pd.DataFrame(
        {
            "wave": ["x"] * 12 + ["y"] + ["z"] * 10,
            "recommend": [*TEN, None, 11, None, *([9] * 9), 8],
        }
    )
    got = _rows(con, nps_table(ibis.memtable(frame), ["wave"]), ["wave"])
    x, y, z = (got.iloc[i] for i in range(3))
    assert (x.n, x.n_excluded, x.promoters, x.passives, x.detractors) == (10, 2, 5, 2, 3)
    assert (x.promoter_share, x.passive_share, x.detractor_share) == pytest.approx((0.5, 0.2, 0.3))
    assert (x.nps, x.se, x.margin_of_error) == pytest.approx((20.0, 27.568098, 54.032478))
    assert (x.lower, x.upper) == pytest.approx((-34.032478, 74.032478))
    assert (y.n, y.n_excluded) == (0, 1)
    assert y[["promoter_share", "nps", "se", "margin_of_error", "lower", "upper"]].isna().all()
    assert (z.nps, z.se, z.margin_of_error) == pytest.approx((90.0, 9.486833, 18.593851))
    assert (z.lower, z.upper) == pytest.approx((71.406149, 100.0))


def test_nps_table_without_groups_is_one_row(con) -> None:
    got = con.execute(nps_table(ibis.memtable(pd.DataFrame({"r": TEN})), recommend="r"))
    assert len(got) == 1
    assert got.nps.iloc[0] == pytest.approx(20.0)


# -- Kano ---------------------------------------------------------------------------------------

# REFERENCES.md, rows functional 1..5 (like, must-be, neutral, live-with, dislike),
# columns dysfunctional 1..5
EVALUATION_TABLE = [
    ["Q", "A", "A", "A", "O"],
    ["R", "I", "I", "I", "M"],
    ["R", "I", "I", "I", "M"],
    ["R", "I", "I", "I", "M"],
    ["R", "R", "R", "R", "Q"],
]


def test_every_cell_of_the_evaluation_table() -> None:
    functional, dysfunctional = np.meshgrid(np.arange(1, 6), np.arange(1, 6), indexing="ij")
    assert kano_category(functional, dysfunctional).tolist() == EVALUATION_TABLE


def test_kano_category_of_one_pair_and_of_floats() -> None:
    assert kano_category(1, 5) == "O"
    assert kano_category(np.array([2.0, 1.0]), np.array([5.0, 3.0])).tolist() == ["M", "A"]


@pytest.mark.parametrize(
    "functional,dysfunctional,message",
    [
        ([1, 6], [5, 5], "functional answer must be a code 1..5, got 6$"),
        ([1, 2], [0, 5], "dysfunctional answer must be a code 1..5, got 0$"),
        ([2.5], [5], "functional answer must be a code 1..5, got 2.5$"),
        ([1.0], [np.nan], "dysfunctional answer must be a code 1..5, got nan$"),
        (["like"], [5], "numeric codes 1..5"),
    ],
)
def test_bad_kano_code_is_named(functional, dysfunctional, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kano_category(functional, dysfunctional)


# One row per respondent; pairs (functional, dysfunctional) -> category:
#   (2, 5) M, (1, 5) O, (1, 3) A, (3, 3) I, (5, 1) R, (1, 1) Q
#   tie_mo:  M M O O A Q R  -> M 2, O 2 tie -> M; Better (A+O)/(A+O+M+I) = (1+2)/5 = .6,
#            Worse -(O+M)/5 = -(2+2)/5 = -.8 (R and Q stay out of both); shares over n = 7
#   tie_oa:  O A I . . . .  -> O (O > A > I); Better 2/3, Worse -1/3; 4 empty pairs excluded
#   tie_ai:  A A I I R . .  -> A (A > I);     Better 2/4 = .5, Worse 0
#   only_rq: R R Q Q . . 9  -> R (R > Q); no A/O/M/I answer -> Better, Worse null;
#            the (9, 9) pair is not a valid code -> excluded with the 2 empty pairs
#: one answer pair per letter; "." an unanswered pair, "9" the invalid pair (9, 9)
PAIRS = {"M": (2, 5), "O": (1, 5), "A": (1, 3), "I": (3, 3), "R": (5, 1), "Q": (1, 1), ".": (None, None), "9": (9, 9)}
KANO_FIXTURE = {"tie_mo": "MMOOAQR", "tie_oa": "OAI....", "tie_ai": "AAIIR..", "only_rq": "RRQQ..9"}


def _kano_frame(fixture: dict[str, str]) -> pd.DataFrame:
    columns = {}
    for attr, letters in fixture.items():
        columns[f"kano_f_{attr}"] = [PAIRS[c][0] for c in letters]
        columns[f"kano_d_{attr}"] = [PAIRS[c][1] for c in letters]
    return pd.DataFrame(columns)


def test_kano_ties_go_to_must_be_first_then_o_a_i_r(con) -> None:
    t = ibis.memtable(_kano_frame(KANO_FIXTURE))
    got = _rows(con, kano_table(t, list(KANO_FIXTURE)), ["attribute"]).set_index("attribute")
    assert got.category.to_dict() == {"tie_mo": "M", "tie_oa": "O", "tie_ai": "A", "only_rq": "R"}
    assert got.category_name.to_dict() == {k: KANO_NAMES[v] for k, v in got.category.items()}
    assert got.category_zh["tie_mo"] == "当然质量"
    assert got.n.to_dict() == {"tie_mo": 7, "tie_oa": 3, "tie_ai": 5, "only_rq": 4}
    assert got.n_excluded.to_dict() == {"tie_mo": 0, "tie_oa": 4, "tie_ai": 2, "only_rq": 3}
    mo = got.loc["tie_mo"]
    counts = [mo[f"count_{c}"] for c in "aomirq"]
    assert counts == [1, 2, 2, 0, 1, 1]
    assert [mo[f"share_{c}"] for c in "aomirq"] == pytest.approx([1 / 7, 2 / 7, 2 / 7, 0, 1 / 7, 1 / 7])
    assert (mo.better, mo.worse) == pytest.approx((0.6, -0.8))
    assert (got.better["tie_oa"], got.worse["tie_oa"]) == pytest.approx((2 / 3, -1 / 3))
    assert (got.better["tie_ai"], got.worse["tie_ai"]) == pytest.approx((0.5, 0.0))
    assert got.loc["only_rq", ["better", "worse"]].isna().all()


def test_kano_table_per_group_and_labels(con) -> None:
    # segment s1: O O M -> O, Better 2/3, Worse -(2+1)/3 = -1; segment s2: I I A -> I, Better 1/3, Worse 0
    frame = _kano_frame({"price": "OOMIIA"}).assign(segment=["s1"] * 3 + ["s2"] * 3)
    got = _rows(con, kano_table(ibis.memtable(frame), ["price"], by=["segment"]), ["segment"])
    assert got.columns[:2].tolist() == ["segment", "attribute"]
    assert got.category.tolist() == ["O", "I"]
    assert got.category_zh.tolist() == [KANO_ZH["O"], KANO_ZH["I"]] == ["期望质量", "无差异质量"]
    assert got.better.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert got.worse.tolist() == pytest.approx([-1.0, 0.0])


def test_kano_attribute_without_valid_answers_has_no_category(con) -> None:
    # all pairs unanswered or invalid: n 0, so no mode (not M by the tie rule on zero counts)
    got = con.execute(kano_table(ibis.memtable(_kano_frame({"gift": "..9"})), ["gift"])).iloc[0]
    assert (got.n, got.n_excluded) == (0, 3)
    assert got[["category", "category_name", "category_zh", "share_m", "better", "worse"]].isna().all()


def test_kano_table_needs_an_attribute() -> None:
    with pytest.raises(ValueError, match="at least one attribute"):
        kano_table(ibis.memtable(pd.DataFrame({"x": [1]})), [])


# -- IPA ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "importance,performance,area",
    [
        (8, 3, "concentrate_here"),
        (8, 8, "keep_up"),
        (3, 3, "low_priority"),
        (3, 8, "possible_overkill"),
        (5.5, 5.4, "concentrate_here"),  # importance on the crosshair counts as high
        (5.4, 5.5, "possible_overkill"),  # performance on the crosshair counts as high
        (5.5, 5.5, "keep_up"),
        (5.5 - 1e-12, 5.5 - 1e-12, "keep_up"),  # float error on the line is not a weakness
    ],
)
def test_ipa_area_quadrants_and_boundary(importance: float, performance: float, area: str) -> None:
    assert ipa_area(importance, performance, 5.5, 5.5) == area


def test_ipa_area_labels_are_the_domain_names() -> None:
    assert IPA_AREA_ZH == {
        "concentrate_here": "急需改进区",
        "keep_up": "竞争优势区",
        "low_priority": "次要改进区",
        "possible_overkill": "锦上添花区",
    }


def test_ipa_area_refuses_missing_values() -> None:
    with pytest.raises(ValueError, match="not finite: \\['performance'\\]"):
        ipa_area(5.0, float("nan"), 5.5, 5.5)


# Four attributes, two respondents each; attribute means (importance, performance):
#   w (9, 2)   x (7, 9)   y (2, 3)   z (6, 5)
# importance crosshair: midpoint (1 + 10) / 2 = 5.5; mean (9+7+2+6)/4 = 6; median (6+7)/2 = 6.5
# performance crosshair: midpoint 5.5; mean (2+9+3+5)/4 = 4.75; median (3+5)/2 = 4
#   w: importance high, performance low under all three -> concentrate_here
#   x: high / high -> keep_up;  y: low / low -> low_priority
#   z moves: midpoint 6 >= 5.5 high, 5 < 5.5 low -> concentrate_here
#            mean     6 >= 6 (on the line: high), 5 >= 4.75 high -> keep_up
#            median   6 < 6.5 low, 5 >= 4 high -> possible_overkill
IPA_FRAME = pd.DataFrame(
    {
        "imp_w": [8, 10],
        "perf_w": [1, 3],
        "imp_x": [7, 7],
        "perf_x": [8, 10],
        "imp_y": [1, 3],
        "perf_y": [3, 3],
        "imp_z": [5, 7],
        "perf_z": [4, 6],
    }
)


@pytest.mark.parametrize(
    "crosshair,imp_cross,perf_cross,z_area",
    [
        ("midpoint", 5.5, 5.5, "concentrate_here"),
        ("mean", 6.0, 4.75, "keep_up"),
        ("median", 6.5, 4.0, "possible_overkill"),
    ],
)
def test_ipa_areas_for_each_crosshair(crosshair: str, imp_cross: float, perf_cross: float, z_area: str) -> None:
    got = ipa_table(IPA_FRAME, ["w", "x", "y", "z"], crosshair=crosshair).set_index("attribute")
    assert got.importance.tolist() == [9, 7, 2, 6]
    assert got.performance.tolist() == [2, 9, 3, 5]
    assert (got.importance_crosshair == imp_cross).all() and (got.performance_crosshair == perf_cross).all()
    assert got.area.tolist() == ["concentrate_here", "keep_up", "low_priority", z_area]
    assert got.area_zh.tolist() == [IPA_AREA_ZH[a] for a in got.area]


def test_ipa_crosshair_can_differ_per_axis() -> None:
    # importance by median (6.5), performance by midpoint (5.5): z (6, 5) is low / low
    got = ipa_table(IPA_FRAME, ["w", "x", "y", "z"], crosshair=("median", "midpoint")).set_index("attribute")
    assert got.loc["z", "area"] == "low_priority"
    assert ipa_crosshair([1, 2, 9], "median") == 2.0


# sat = 1..5; perf_a = sat -> r = 1; perf_b reversed -> r = -1;
# perf_c = 2 1 4 3 5: deviations -1 -2 1 0 2 vs -2 -1 0 1 2 -> 8 / sqrt(10 x 10) = .8
CORR_FRAME = pd.DataFrame(
    {"sat_1": [1, 2, 3, 4, 5], "perf_a": [1, 2, 3, 4, 5], "perf_b": [5, 4, 3, 2, 1], "perf_c": [2, 1, 4, 3, 5]}
)


def test_correlation_importance_by_hand() -> None:
    got = correlation_importance(CORR_FRAME[["perf_a", "perf_b", "perf_c"]], CORR_FRAME.sat_1)
    assert got.tolist() == pytest.approx([1.0, -1.0, 0.8])


# x1 = 6 4 6 4, x2 = 6 6 4 4 (uncorrelated, equal sd s), sat = 2 x1 + x2 - 10 = 8 4 6 2
# sd(sat) = sqrt(2² + 1²) s = sqrt(5) s -> standardised betas 2 / sqrt(5) = .894427 and 1 / sqrt(5) = .447214
REG_FRAME = pd.DataFrame({"perf_p": [6, 4, 6, 4], "perf_q": [6, 6, 4, 4], "sat_1": [8, 4, 6, 2]})


def test_regression_importance_is_the_standardised_coefficient() -> None:
    got = regression_importance(REG_FRAME[["perf_p", "perf_q"]], REG_FRAME.sat_1)
    assert got.tolist() == pytest.approx([2 / math.sqrt(5), 1 / math.sqrt(5)])


def test_regression_separates_what_correlation_cannot() -> None:
    # sat = perf_p exactly; perf_r only moves with perf_p (pairs swapped):
    #   deviations p -2.5 -1.5 -.5 .5 1.5 2.5, r -1.5 -2.5 .5 -.5 2.5 1.5
    #   corr(r, sat) = (3.75 + 3.75 - .25 - .25 + 3.75 + 3.75) / 17.5 = 14.5 / 17.5 = .828571
    # correlation credits perf_r for perf_p's effect; regression gives it beta 0 and perf_p 1
    frame = pd.DataFrame({"perf_p": [1, 2, 3, 4, 5, 6], "perf_r": [2, 1, 4, 3, 6, 5], "sat_1": [1, 2, 3, 4, 5, 6]})
    beta = regression_importance(frame[["perf_p", "perf_r"]], frame.sat_1)
    assert beta.tolist() == pytest.approx([1.0, 0.0], abs=1e-12)
    corr = correlation_importance(frame[["perf_p", "perf_r"]], frame.sat_1)
    assert corr.tolist() == pytest.approx([1.0, 14.5 / 17.5])


@pytest.mark.parametrize("importance", ["correlation", "regression"])
def test_ipa_table_with_derived_importance(importance: str) -> None:
    got = ipa_table(REG_FRAME, ["p", "q"], importance=importance).set_index("attribute")
    # both methods give .894427 and .447214 here (uncorrelated items); crosshair = mean .670820
    # performance: both means 5, crosshair 5 -> both high: p keep_up, q possible_overkill
    assert got.importance.tolist() == pytest.approx([0.894427, 0.447214], abs=1e-6)
    assert got.importance_crosshair.iloc[0] == pytest.approx(0.670820, abs=1e-6)
    assert got.area.tolist() == ["keep_up", "possible_overkill"]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"importance": "pls"}, "unknown importance 'pls'"),
        ({"crosshair": "mode"}, "unknown crosshair 'mode'"),
        ({"importance": "correlation", "crosshair": "midpoint"}, "no scale midpoint"),
        ({"crosshair": "midpoint", "scale": (10, 1)}, "min < max"),
        ({"importance": "regression", "satisfaction_col": "sat_9"}, "missing columns \\['sat_9'\\]"),
    ],
)
def test_ipa_table_rejects_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ipa_table(REG_FRAME.assign(imp_p=5, imp_q=6), ["p", "q"], **kwargs)


def test_derived_importance_needs_enough_varying_rows() -> None:
    # 2 predictors need 2 + 2 = 4 complete rows; a null satisfaction leaves 3
    short = REG_FRAME.assign(sat_1=[8, 4, 6, None])
    with pytest.raises(ValueError, match="at least 4 complete rows, got 3"):
        regression_importance(short[["perf_p", "perf_q"]], short.sat_1)
    with pytest.raises(ValueError, match="at least 3 complete rows, got 2"):
        correlation_importance(REG_FRAME[["perf_p"]].head(2), REG_FRAME.sat_1.head(2))
    with pytest.raises(ValueError, match=r"constant column.*perf_k"):
        correlation_importance(REG_FRAME[["perf_p"]].assign(perf_k=7), REG_FRAME.sat_1)
    # perf_s = 2 perf_p: 3 predictors, 5 rows (enough), but only rank 2
    collinear = pd.DataFrame({"perf_p": [1, 2, 3, 4, 5], "perf_q": [2, 1, 2, 1, 3], "sat_1": [1, 3, 2, 5, 4]})
    collinear["perf_s"] = collinear.perf_p * 2
    with pytest.raises(ValueError, match="collinear"):
        regression_importance(collinear[["perf_p", "perf_q", "perf_s"]], collinear.sat_1)


def test_ipa_table_refuses_an_attribute_without_answers() -> None:
    frame = IPA_FRAME.assign(perf_z=[None, None])
    with pytest.raises(ValueError, match="no answers for attribute\\(s\\) \\['z'\\]"):
        ipa_table(frame, ["w", "z"])


# -- CSD ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "csd,label",
    [
        (1.05, "met"),  # on the upper edge: the band is closed
        (10.5 / 10, "met"),  # the same edge reached by a division
        (0.95, "met"),
        (9.5 / 10, "met"),
        (1.0500001, "exceeded"),
        (0.9499999, "dissatisfied"),
        (1.0, "met"),
        (2.0, "exceeded"),
        (0.0, "dissatisfied"),
    ],
)
def test_csd_labels_at_the_tolerance_edges(csd: float, label: str) -> None:
    assert csd_label(csd, tolerance=0.05) == label


def test_csd_with_zero_tolerance_is_met_only_at_one() -> None:
    assert [csd_label(c, tolerance=0) for c in (0.999, 1.0, 1.001)] == ["dissatisfied", "met", "exceeded"]
    assert CSD_LABEL_ZH == {"exceeded": "超出期望", "met": "符合期望", "dissatisfied": "不满意"}


@pytest.mark.parametrize(
    "csd,tolerance,message", [(1.0, -0.1, "tolerance must be in"), (1.0, 1.0, "tolerance"), (math.nan, 0.05, "CSD")]
)
def test_csd_label_rejects_bad_input(csd: float, tolerance: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        csd_label(csd, tolerance)


# Group g1, (perceived, expected) per respondent:
#   (2, 1) -> 2.0 exceeded;  (5, 10) -> .5 dissatisfied;  (5, 5) -> 1 met
#   (7, None) and (7, 0) -> no CSD, excluded
#   mean perceived (2+5+5)/3 = 4, mean expected (1+10+5)/3 = 16/3
#   ratio of means 4 / (16/3) = .75 -> dissatisfied; mean of ratios (2 + .5 + 1)/3 = 1.166667 -> exceeded
#   (the group's CSD and the typical respondent's disagree: one delighted low-expectation respondent)
# Group g2: (10.5, 10) -> 1.05 met (edge); ratio of means 1.05 met, mean of ratios 1.05 met
CSD_FRAME = pd.DataFrame(
    {
        "segment": ["g1"] * 5 + ["g2"],
        "perc": [2, 5, 5, 7, 7, 10.5],
        "expc": [1, 10, 5, None, 0, 10],
    }
)


def test_csd_table_ratio_of_means_and_mean_of_ratios(con) -> None:
    got = _rows(con, csd_table(ibis.memtable(CSD_FRAME), "perc", "expc", by=["segment"]), ["segment"])
    g1, g2 = got.iloc[0], got.iloc[1]
    assert (g1.n, g1.n_excluded) == (3, 2)
    assert (g1.mean_perceived, g1.mean_expected) == pytest.approx((4.0, 16 / 3))
    assert (g1.ratio_of_means, g1.mean_of_ratios) == pytest.approx((0.75, 3.5 / 3))
    assert (g1.ratio_of_means_label, g1.ratio_of_means_label_zh) == ("dissatisfied", "不满意")
    assert (g1.mean_of_ratios_label, g1.mean_of_ratios_label_zh) == ("exceeded", "超出期望")
    assert (g1.share_exceeded, g1.share_met, g1.share_dissatisfied) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert (g2.n, g2.ratio_of_means_label, g2.mean_of_ratios_label, g2.share_met) == (1, "met", "met", 1.0)


def test_csd_from_expressions_per_respondent(con) -> None:
    # perceived = mean(qual_1, qual_2), expected = mean(exp_1, exp_2):
    #   r1 (8+10)/2 = 9 vs (5+7)/2 = 6 -> 1.5 exceeded;  r2 6 vs 6 -> met;  r3 4 vs 8 -> .5 dissatisfied
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "qual_1": [8, 6, 4], "qual_2": [10, 6, 4], "exp_1": [5, 6, 8], "exp_2": [7, 6, 8]}
    )
    t = ibis.memtable(frame)
    perceived, expected = (t.qual_1 + t.qual_2) / 2, (t.exp_1 + t.exp_2) / 2
    got = _rows(con, csd_responses(t, perceived, expected), ["id"])
    assert got.csd.tolist() == pytest.approx([1.5, 1.0, 0.5])
    assert got.csd_label.tolist() == ["exceeded", "met", "dissatisfied"]
    assert got.csd_label_zh.tolist() == ["超出期望", "符合期望", "不满意"]
    one = con.execute(csd_table(t, perceived, expected))
    assert (one.n.iloc[0], one.ratio_of_means.iloc[0]) == (3, pytest.approx(19 / 20))  # (9+6+4)/(6+6+8)


# -- sampling -----------------------------------------------------------------------------------


def test_sample_size_with_finite_population_correction() -> None:
    # n0 = 1.959964² x .5 x .5 / .05² = 3.841459 x .25 / .0025 = 384.15 -> 385 (rounded up)
    assert sample_size(p=0.5, margin=0.05, confidence=0.95) == 385
    # N = 1000: 384.1459 / (1 + 383.1459 / 1000) = 277.73 -> 278 (from the unrounded n0; 385 would give 279)
    assert sample_size(p=0.5, margin=0.05, confidence=0.95, population=1000) == 278
    # e = .1: n0 = 96.04 -> 97, not 96
    assert sample_size(margin=0.1) == 97
    # p = .3: 3.841459 x .21 / .0025 = 322.68 -> 323
    assert sample_size(p=0.3) == 323


def test_sample_size_meets_the_margin_it_was_sized_for() -> None:
    assert margin_of_error_proportion(0.5, sample_size(population=1000), population=1000) <= 0.05
    assert margin_of_error_proportion(0.5, sample_size(population=1000) - 1, population=1000) > 0.05


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"p": 0}, "p must be between 0 and 1"),
        ({"margin": 0}, "margin must be between 0 and 1"),
        ({"population": 0}, "population must be at least 1"),
        ({"confidence": 95}, "confidence must be between 0 and 1"),
    ],
)
def test_sample_size_rejects_bad_inputs(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_size(**kwargs)


def test_margin_of_error_of_a_proportion_with_fpc() -> None:
    # 1.959964 x sqrt(.25 / 400) = 1.959964 x .025 = .048999
    assert margin_of_error_proportion(0.5, 400) == pytest.approx(Z95 * 0.025)
    # N = 1000: x sqrt(600 / 999) = x .774984 -> .037974
    assert margin_of_error_proportion(0.5, 400, population=1000) == pytest.approx(0.0379735, abs=1e-7)
    assert margin_of_error_proportion(0.5, 1000, population=1000) == 0.0  # a census
    with pytest.raises(ValueError, match="sample size 1001 exceeds the population 1000"):
        margin_of_error_proportion(0.5, 1001, population=1000)
    with pytest.raises(ValueError, match="proportion in \\[0, 1\\]"):
        margin_of_error_proportion(1.5, 10)


def test_proportional_allocation_by_largest_remainder() -> None:
    # 100 over 500 / 300 / 200 -> 50 / 30 / 20 exactly
    assert allocate(100, {"a": 500, "b": 300, "c": 200}) == {"a": 50, "b": 30, "c": 20}
    # 7 over 50 / 30 / 20: quotas 3.5, 2.1, 1.4 -> floors 3, 2, 1 (6); the 7th to the largest remainder (a .5)
    assert allocate(7, {"a": 50, "b": 30, "c": 20}) == {"a": 4, "b": 2, "c": 1}
    # 10 over three equal strata: 3.33 each -> 3, 3, 3 and the tie goes to the first listed
    assert allocate(10, {"c": 100, "a": 100, "b": 100}) == {"c": 4, "a": 3, "b": 3}


def test_neyman_allocation_sums_to_the_total() -> None:
    # N_h S_h: 600 x 2 = 1200, 300 x 5 = 1500, 100 x 10 = 1000 (sum 3700); total 50:
    #   quotas 16.216, 20.270, 13.514 -> floors 16, 20, 13 (49); the 50th to c (.514) -> 16, 20, 14
    got = allocate(50, {"a": 600, "b": 300, "c": 100}, strata_sd={"a": 2, "b": 5, "c": 10})
    assert got == {"a": 16, "b": 20, "c": 14}
    assert sum(got.values()) == 50


def test_allocation_is_capped_at_the_stratum_size() -> None:
    # Neyman: 10 x 100 = 1000 and 1000 x 1 = 1000 -> 50 / 50, but a has only 10 people:
    # a takes a census (10) and b gets the remaining 90
    assert allocate(100, {"a": 10, "b": 1000}, strata_sd={"a": 100, "b": 1}) == {"a": 10, "b": 90}
    # only zero-sd strata left after the cap: they share the rest by size
    assert allocate(30, {"a": 10, "b": 60, "c": 20}, strata_sd={"a": 1, "b": 0, "c": 0}) == {"a": 10, "b": 15, "c": 5}


@pytest.mark.parametrize(
    "total,sizes,sd,message",
    [
        (101, {"a": 50, "b": 50}, None, "total 101 exceeds the population 100"),
        (10, {"a": 50, "b": 50}, {"a": 1}, "strata_sd must give every stratum"),
        (10, {"a": 50, "b": -1}, None, "non-negative"),
        (10, {"a": 50, "b": 50}, {"a": 1, "b": -2}, "strata_sd must be non-negative"),
    ],
)
def test_allocate_rejects_bad_inputs(total: int, sizes: dict, sd: dict | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        allocate(total, sizes, sd)


def test_post_stratification_weights() -> None:
    # N = 1000 (a 600, b 400), n = 50 (a 20, b 30):
    #   w_a = (600/1000) / (20/50) = .6 / .4 = 1.5;  w_b = .4 / .6 = .666667
    #   weighted respondents 20 x 1.5 + 30 x .666667 = 50 = n
    got = post_stratification_weights({"a": 600, "b": 400}, {"a": 20, "b": 30})
    assert got == pytest.approx({"a": 1.5, "b": 2 / 3})
    assert 20 * got["a"] + 30 * got["b"] == pytest.approx(50)


def test_stratum_without_responses_cannot_be_weighted() -> None:
    with pytest.raises(ValueError, match=r"population but no responses.*\['c'\]"):
        post_stratification_weights({"a": 600, "b": 300, "c": 100}, {"a": 20, "b": 30})
    with pytest.raises(ValueError, match="without a population count: \\['d'\\]"):
        post_stratification_weights({"a": 600}, {"a": 20, "d": 3})
    with pytest.raises(ValueError, match="population of 0: \\['b'\\]"):
        post_stratification_weights({"a": 600, "b": 0}, {"a": 20, "b": 3})
