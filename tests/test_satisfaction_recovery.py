"""The satisfaction structure planted in the demo data is recovered: ACSI paths by consistent
PLS (PLSc), Kano categories by the Kano table.

The generator (analytics/synth.py) draws six unit-variance latent variables CE, PQ, PV,
SAT, COMPLAINT, LOYALTY from the planted standardised paths (``DemoParams.acsi_paths``,
``_latent_covariance``), and each survey item as round(mean + sd (lambda LV + sqrt(1 -
lambda^2) noise)) clipped to 1..10. The ACSI model (analytics.satisfaction.models.ACSI)
measures Expectation, Quality, Value, Satisfaction, Complaints and Loyalty with those items
(Loyalty: repurchase and price_tolerance; recommend also loads on LOYALTY in the generator
but is not in the model, it is the NPS item).

Implied truth for the complaint item. Complaint is *binary*: 1{z > tau} with z = lambda_c
COMPLAINT + sqrt(1 - lambda_c^2) noise, tau the (1 - p) normal quantile, p the complaint
share. For jointly normal z and any latent L, E[L | z] = cor(z, L) z, so
cov(1{z > tau}, L) = cor(z, L) E[z 1{z > tau}] = cor(z, L) phi(tau), and var(1{z > tau}) =
p (1 - p); hence

    cor(1{z > tau}, L) = phi(tau) / sqrt(p (1 - p)) * cor(z, L),   cor(z, L) = lambda_c cor(COMPLAINT, L).

The Complaints construct is that single item (rho_A = 1: PLSc corrects nothing for it), so
the construct correlations PLSc estimates consistently are the planted latent correlation
matrix with the Complaints row and column multiplied by k = lambda_c phi(tau) /
sqrt(p (1 - p)) (0.555 for lambda_c = 0.85, p = 0.15), and the paths it estimates are the
OLS coefficients on that matrix: Satisfaction -> Complaints -0.45 k = -0.250,
Satisfaction -> Loyalty 0.600 (it absorbs part of the complaint effect the coarse item
misses), Complaints -> Loyalty -0.071. The other six paths are the planted ones.

Loadings: rounding to integers and clipping at 10 add error that is not in lambda, so an
item's loading on its latent variable is lambda cor(item, z), with cor(item, z) computed
here by quadrature (0.97-0.99).

Tests:
(a) a large survey drawn with the generator's own functions (150,000 persons, one wave, all
    sampled: ~50,000 responses): PLSc within 0.03 of every implied path, R2 and loading
    (seeds 0-7 gave at most 0.013), while plain PLS misses Expectation -> Quality by ~0.10
    and overstates loadings by up to ~0.18, so the same check on plain PLS would fail;
(b) `make run`'s demo (same generator, size, seed and defect rate) through the real
    ingestion, identity resolution and survey cleaning (kept responses in response_id order,
    so the seeded bootstrap is reproducible): every implied path within 2.77 bootstrap SE of
    the PLSc estimate, the Bonferroni bound for nine paths at a 5 % family-wise rate (a 2 SE
    bound per path would fail a correct estimator one run in three). The demo has only ~700
    usable responses, so SEs are ~0.04; at this seed the largest deviation is Expectation ->
    Satisfaction at 1.7 SE, and plain PLS's Expectation -> Quality lies 3.3 SE below the
    truth (the bootstrap is not so wide that anything passes).
    Caveat: a person keeps their latents across waves and a few answer twice, so pooled
    responses are slightly clustered and resampling responses slightly understates the SE.
(c) Kano: on the demo's kept responses every attribute's modal category is the planted one
    and every category share is within 4 binomial SE of the planted mixture.

Runtime: the demo fixture (generate ~2 s, ingest customers + surveys ~25 s, identity and
cleaning ~1 s) is shared by (b) and (c); the whole module takes ~35 s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from statistics import NormalDist

import ibis
import numpy as np
import pandas as pd
import pytest

from analytics import synth
from analytics.asof import known
from analytics.satisfaction import ACSI
from analytics.satisfaction.cleaning import classify_responses
from analytics.satisfaction.measures import KANO_CATEGORIES, ipa_table, kano_table
from quality.contracts import SERVICE_ATTRIBUTES
from tests.demo_kit import demo_warehouse

#: ACSI latent variable -> the generator's latent
LATENT_OF: dict[str, str] = {
    "Expectation": "CE",
    "Quality": "PQ",
    "Value": "PV",
    "Satisfaction": "SAT",
    "Complaints": "COMPLAINT",
    "Loyalty": "LOYALTY",
}
ACSI_OF = {v: k for k, v in LATENT_OF.items()}
SIMULATION_TOLERANCE = 0.03
#: nine paths are checked together: a per-path 2 SE bound fails a correct estimator about one run
#: in three (1 - 0.954^9); the Bonferroni bound keeps the family-wise false-failure rate at 5 %
FAMILY_WISE_Z = NormalDist().inv_cdf(1 - 0.05 / (2 * 9))


# --- the implied truth -----------------------------------------------------------------------------


def complaint_factor(loading: float, share: float) -> float:
    """k = lambda phi(tau) / sqrt(p (1 - p)): cor(binary complaint item, L) / cor(COMPLAINT, L)."""
    tau = NormalDist().inv_cdf(1 - share)
    return loading * NormalDist().pdf(tau) / math.sqrt(share * (1 - share))


def implied_correlations(paths: dict[str, float], loading: float, share: float) -> pd.DataFrame:
    """Correlations of the ACSI constructs PLSc estimates consistently (module docstring)."""
    beta, resid = synth._latent_covariance(paths)
    inv = np.linalg.inv(np.eye(len(synth.LATENTS)) - beta)
    corr = inv @ np.diag(resid) @ inv.T  # unit diagonal: the generator's latents are standardised
    c = synth.LATENTS.index("COMPLAINT")
    k = complaint_factor(loading, share)
    corr[c, :] *= k
    corr[:, c] *= k
    corr[c, c] = 1.0
    names = [ACSI_OF[lv] for lv in synth.LATENTS]
    return pd.DataFrame(corr, index=names, columns=names)


def implied_truth(paths: dict[str, float], loading: float, share: float) -> tuple[dict, dict]:
    """(paths {(from, to): value}, R2 {to: value}) of ACSI: OLS on the implied correlations."""
    corr = implied_correlations(paths, loading, share)
    out, r2 = {}, {}
    for to in ACSI.outer:
        pred = [a for a, b in ACSI.inner if b == to]
        if pred:
            coef = np.linalg.solve(corr.loc[pred, pred].to_numpy(), corr.loc[pred, to].to_numpy())
            out |= {(a, to): float(v) for a, v in zip(pred, coef, strict=True)}
            r2[to] = float(corr.loc[pred, to].to_numpy() @ coef)
    return out, r2


def rounding_attenuation(mean: float, sd: float, lo: int = 1, hi: int = 10) -> float:
    """cor(clip(round(mean + sd z), lo, hi), z) for z ~ N(0, 1), by quadrature on a fine grid."""
    z = np.linspace(-9, 9, 360_001)
    w = np.exp(-z * z / 2)
    w /= w.sum()
    f = np.clip(np.round(mean + sd * z), lo, hi)
    f = f - w @ f
    return float((w @ (f * z)) / math.sqrt(w @ (f * f)))


def implied_loadings(params: synth.DemoParams) -> dict[str, float]:
    """lambda x cor(item, z) of every multi-item ACSI block item (the generator's means)."""
    out = {}
    for lv, items in ACSI.outer.items():
        if len(items) < 2:
            continue
        for item in items:
            mean = params.acsi_item_means[LATENT_OF[lv]] - (1.2 if item == "price_tolerance" else 0.0)
            out[item] = params.acsi_loadings[item] * rounding_attenuation(mean, params.acsi_item_sd)
    return out


def test_acsi_model_has_the_planted_structure_and_the_implied_truth_its_hand_values():
    """The model's paths are the planted ones. tau = 1.03643, so k = 0.85 phi(tau) /
    sqrt(0.15 x 0.85) = 0.85 x 0.23316 / 0.35707 = 0.5550, and Satisfaction -> Complaints
    (its only predictor) = -0.45 k = -0.250."""
    params = synth.DemoParams()
    assert {f"{LATENT_OF[a]}->{LATENT_OF[b]}" for a, b in ACSI.inner} == set(params.acsi_paths)
    assert {i: LATENT_OF[lv] for lv, items in ACSI.outer.items() for i in items} == {
        i: lv for i, lv in synth.ITEM_LATENT.items() if i != "recommend"
    }
    k = complaint_factor(0.85, 0.15)
    assert k == pytest.approx(0.85 * 0.23316 / 0.35707, abs=1e-4)
    paths, r2 = implied_truth(dict(params.acsi_paths), 0.85, 0.15)
    assert paths["Satisfaction", "Complaints"] == pytest.approx(-0.45 * k, abs=1e-12)
    assert r2["Complaints"] == pytest.approx((0.45 * k) ** 2, abs=1e-12)
    for a, b in [("Expectation", "Quality"), ("Quality", "Value"), ("Value", "Satisfaction")]:
        assert paths[a, b] == pytest.approx(params.acsi_paths[f"{LATENT_OF[a]}->{LATENT_OF[b]}"], abs=1e-12)
    assert paths["Satisfaction", "Loyalty"] == pytest.approx(0.5998, abs=1e-4)
    assert paths["Complaints", "Loyalty"] == pytest.approx(-0.0708, abs=1e-4)


# --- (a) a large survey drawn by the generator ----------------------------------------------------


@pytest.fixture(scope="module")
def large_survey() -> dict:
    """One wave answered by every person alive at its start (survey_share 1): the generator's
    own persons and _surveys, without rendering. Straight-liners' grid answers are
    overwritten by the generator and duplicates repeat a person, so both are left out, as
    cleaning does; speeders and attention failures keep their true answers."""
    params = dataclasses.replace(synth.DemoParams(), survey_share=1.0)
    rng = np.random.default_rng(0)
    world = synth._simulate(150_000, 60, dt.date(2025, 1, 1), params, rng)
    s = synth._surveys(world, rng)
    drop = s["is_dup"].copy()
    drop[s["straight"]] = True
    items = pd.DataFrame(s["items"])[~drop]
    return {"params": params, "data": items[ACSI.items].astype(float), "lv": s["lv"][~drop]}


def test_the_binary_complaint_item_correlates_as_derived(large_survey):
    """The derivation itself, on the generator's latents: cor(complaint item, L) = k cor(COMPLAINT, L)."""
    params, lv = large_survey["params"], large_survey["lv"]
    item = large_survey["data"]["complaint"].to_numpy()
    k = complaint_factor(params.acsi_loadings["complaint"], params.complaint_share)
    latent = np.corrcoef(lv, rowvar=False)
    c = synth.LATENTS.index("COMPLAINT")
    for name in ("SAT", "LOYALTY", "PQ"):
        j = synth.LATENTS.index(name)
        assert np.corrcoef(item, lv[:, j])[0, 1] == pytest.approx(k * latent[c, j], abs=0.01), name


def test_plsc_recovers_the_planted_paths_of_a_large_simulated_survey(large_survey):
    params, data = large_survey["params"], large_survey["data"]
    assert len(data) > 45_000
    paths, r2 = implied_truth(dict(params.acsi_paths), params.acsi_loadings["complaint"], params.complaint_share)
    plsc = ACSI.model(consistent=True).fit(data)
    plain = ACSI.model().fit(data)
    assert plsc.admissible_ and plsc.converged_
    rows = [
        (f"{a} -> {b}", v, plain.path_coefficients_.loc[a, b], plsc.path_coefficients_.loc[a, b])
        for (a, b), v in paths.items()
    ]
    table = pd.DataFrame(rows, columns=["path", "implied", "pls", "plsc"]).set_index("path")
    table["plsc_error"] = table.plsc - table.implied
    table["pls_error"] = table.pls - table.implied
    print(table.round(4).to_string())
    bad = table[table.plsc_error.abs() > SIMULATION_TOLERANCE]
    assert bad.empty, f"PLSc misses the implied paths:\n{bad.round(4).to_string()}"
    # plain PLS would fail the same check: composites carry measurement error
    assert table.pls_error.abs().max() > 0.08
    assert table.loc["Expectation -> Quality", "pls"] < 0.55 - 0.08
    for lv, value in r2.items():
        assert plsc.r2_[lv] == pytest.approx(value, abs=SIMULATION_TOLERANCE), lv
    for item, value in implied_loadings(params).items():
        assert plsc.loadings_[item] == pytest.approx(value, abs=SIMULATION_TOLERANCE), item
    overstated = {i: plain.loadings_[i] - v for i, v in implied_loadings(params).items()}
    assert max(overstated.values()) > 0.1 and min(overstated.values()) > 0


# --- (b) and (c): make run's demo through the real ingestion -------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    """`make run`'s demo data: customers and surveys ingested (customers first: the router
    quarantines survey rows of unknown records), identity resolved as of the last day, each
    response keyed by its customer_key the way customer360._survey_facts does (but a left
    join: anonymous responses stay, with a null key) and classified by the cleaning rules
    with the ACSI items required. Returns the ground truth and the kept responses."""
    with demo_warehouse(tmp_path_factory.mktemp("satisfaction_demo"), ["surveys"]) as d:
        keys = d.identity.select("as_of_date", "customer_ref", "customer_key")
        surveys = known(d.staging("surveys"), d.as_of)
        keyed = surveys.left_join(keys, ["as_of_date", "customer_ref"]).drop("as_of_date_right", "customer_ref_right")
        responses = d.con.execute(classify_responses(keyed, required=ACSI.items))
        truth = d.truth
    assert responses.response_id.is_unique
    # response_id order: the seeded bootstrap draws row positions, and DuckDB returns rows in no fixed order
    kept = responses[~responses.excluded].sort_values("response_id").reset_index(drop=True)
    return {"truth": truth, "responses": responses, "kept": kept}


def test_plsc_on_the_demo_recovers_the_planted_paths_within_bootstrap_error(demo):
    truth, kept = demo["truth"], demo["kept"]
    acsi = truth["acsi"]
    assert 600 < len(kept) < len(demo["responses"])
    paths, _ = implied_truth(acsi["paths"], acsi["loadings"]["complaint"], acsi["complaint_share"])
    data = kept[ACSI.items].astype(float)
    plsc = ACSI.model(consistent=True).fit(data, bootstrap=200, seed=0)
    plain = ACSI.model().fit(data)
    assert plsc.admissible_ and plsc.bootstrap_failures_ == 0
    boot = plsc.bootstrap_[plsc.bootstrap_.kind == "path"].set_index("name")
    rows = []
    for (a, b), value in paths.items():
        r = boot.loc[f"{a} -> {b}"]
        planted = acsi["paths"][f"{LATENT_OF[a]}->{LATENT_OF[b]}"]
        z = (r.estimate - value) / r.std_error
        inside = abs(z) <= FAMILY_WISE_Z
        rows.append(
            (f"{a} -> {b}", planted, value, plain.path_coefficients_.loc[a, b], r.estimate, r.std_error, z, inside)
        )
    table = pd.DataFrame(rows, columns=["path", "planted", "implied", "pls", "plsc", "se", "z", "ok"]).set_index("path")
    print(f"{len(kept)} kept responses, {plsc.bootstrap_inadmissible_} inadmissible resamples\n{table.round(3)}")
    assert table.ok.all(), f"planted paths outside the bootstrap error:\n{table.round(3).to_string()}"
    # the bootstrap is tight enough to tell: plain PLS's attenuated estimate is out of even the family-wise bound
    eq = table.loc["Expectation -> Quality"]
    assert (eq.pls - eq.implied) / eq.se < -FAMILY_WISE_Z


def test_the_demo_kano_categories_are_the_planted_ones(demo):
    truth, kept = demo["truth"], demo["kept"]
    columns = [f"kano_{fd}_{a}" for a in SERVICE_ATTRIBUTES for fd in "fd"]
    con = ibis.duckdb.connect()
    table = con.execute(kano_table(ibis.memtable(kept[columns]), SERVICE_ATTRIBUTES)).set_index("attribute")
    print(table[["n", "n_excluded", "category", *(f"share_{c.lower()}" for c in KANO_CATEGORIES)]].round(3))
    assert set(table.index) == set(SERVICE_ATTRIBUTES)
    assert table.category.to_dict() == truth["kano"]
    # shares: kano_share of the answers in the planted category, the rest spread as kano_noise
    noise = synth.DemoParams().kano_noise
    total = sum(noise.values())
    for attr, row in table.iterrows():
        assert row.n > 600
        for c in KANO_CATEGORIES:
            p = truth["kano_share"] * (c == truth["kano"][attr]) + (1 - truth["kano_share"]) * noise.get(c, 0) / total
            se = math.sqrt(p * (1 - p) / row.n)
            assert row[f"share_{c.lower()}"] == pytest.approx(p, abs=4 * se + 1e-9), (attr, c)


def test_the_demo_ipa_areas_are_the_planted_ones(demo):
    """Stated importance against performance with the mean crosshair (how the generator
    places its planted means) puts every attribute in its planted area."""
    truth, kept = demo["truth"], demo["kept"]
    table = ipa_table(kept, SERVICE_ATTRIBUTES, "stated", "mean").set_index("attribute")
    print(table.round(2))
    assert table.area.to_dict() == {a: v["quadrant"] for a, v in truth["ipa"].items()}
