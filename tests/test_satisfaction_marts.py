"""The satisfaction marts: every table has its documented columns; the index is the ACSI closed
form on the pooled weights for every segment; segments partition the respondents; every
response is counted once in the exclusions; coverage, post-stratification and the loyalty
groups match hand computations; a set of responses is fitted once per batch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import ibis
import numpy as np
import pandas as pd
import pytest

from analytics.lifecycle import LIFECYCLE
from analytics.satisfaction.marts import (
    ALL_WAVES,
    SATISFACTION_INDEX,
    SATISFACTION_LOYALTY,
    SATISFACTION_TABLES,
    SURVEY_COVERAGE,
    SatisfactionParams,
    python_marts,
    satisfaction_marts,
)
from analytics.satisfaction.measures import margin_of_error_proportion, sample_size
from quality.contracts import SERVICE_ATTRIBUTES, SURVEYS
from quality.ingest import staging_columns
from tests.c360_kit import AS_OF, assert_schema, c360_table, mart_table

_IBIS = {
    "VARCHAR": "string",
    "BIGINT": "int64",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMPTZ": "timestamp('UTC')",
}
WAVES = {"2025Q1": dt.date(2025, 1, 10), "2025Q2": dt.date(2025, 4, 10)}
#: Fast fits: the bootstrap is tested in test_pls; here one resample proves it is wired.
PARAMS = SatisfactionParams(bootstrap=2, segments=("kind",), strata=("kind",), min_responses=20)


def _likert(rng, latent, loading=0.85, mean=7.0):
    noise = rng.standard_normal(latent.shape[0])
    return np.clip(np.round(mean + 1.6 * (loading * latent + math.sqrt(1 - loading**2) * noise)), 1, 10).astype(int)


def survey_rows(n: int = 240, seed: int = 3, anonymous_every: int = 8) -> pd.DataFrame:
    """A staging-shaped surveys frame with an ACSI structure: customer i is k<i>, every
    `anonymous_every`-th answer is anonymous, waves alternate."""
    rng = np.random.default_rng(seed)
    ce = rng.standard_normal(n)
    pq = 0.6 * ce + 0.8 * rng.standard_normal(n)
    pv = 0.2 * ce + 0.5 * pq + 0.8 * rng.standard_normal(n)
    sat = 0.4 * pq + 0.3 * pv + 0.7 * rng.standard_normal(n)
    comp = -0.5 * sat + 0.85 * rng.standard_normal(n)
    loy = 0.6 * sat - 0.1 * comp + 0.7 * rng.standard_normal(n)
    items = {}
    for lv, names in ((ce, "exp"), (pq, "qual"), (sat, "sat")):
        for j in (1, 2, 3):
            items[f"{names}_{j}"] = _likert(rng, lv)
    items["value_1"], items["value_2"] = _likert(rng, pv), _likert(rng, pv)
    items["repurchase"], items["price_tolerance"] = _likert(rng, loy), _likert(rng, loy, 0.7)
    items["complaint"] = comp > 1.0
    items["recommend"] = np.clip(np.round(7 + 2 * loy), 0, 10).astype(int)
    for a in SERVICE_ATTRIBUTES:
        items[f"imp_{a}"] = _likert(rng, rng.standard_normal(n))
        items[f"perf_{a}"] = _likert(rng, pq, 0.5)
        items[f"kano_f_{a}"] = np.where(np.arange(n) % 3 == 0, 1, 2)  # like/dislike = O; must-be/dislike = M
        items[f"kano_d_{a}"] = np.full(n, 5)
    wave = np.where(np.arange(n) % 2 == 0, "2025Q1", "2025Q2")
    day = [WAVES[w] + dt.timedelta(days=int(i % 20)) for i, w in enumerate(wave)]
    rows = pd.DataFrame(
        {
            "response_id": [f"r{i:04d}" for i in range(n)],
            "customer_ref": [None if (i + 1) % anonymous_every == 0 else f"c{i:04d}" for i in range(n)],
            "survey_id": "SAT",
            "version": 1,
            "wave": wave,
            "started_at": [pd.Timestamp(d, tz="UTC") + pd.Timedelta(hours=9) for d in day],
            "duration_s": 400,
            **items,
            "attention_check": 7,
            "comment": [None if i % 4 else f"第{i}位: 服务不错" for i in range(n)],
            "business_date": day,
            "_partition_date": day,
            "_source_file": "f",
            "_source_line": np.arange(n) + 2,
            "_row_hash": np.arange(n),
            "is_speeder": np.arange(n) % 50 == 1,  # 5 speeders
            "is_straightliner": False,
            "failed_attention": False,
            "is_duplicate_respondent": False,
        }
    )
    return rows


def surveys_table(rows: pd.DataFrame):
    cols = staging_columns(SURVEYS)
    return ibis.memtable(rows[[c.name for c in cols]], schema={c.name: _IBIS[c.sql_type] for c in cols})


def _kind(i: int) -> str:
    return "organisation" if i % 5 == 0 else "individual"


def inputs(rows: pd.DataFrame, as_of: dt.date = AS_OF, stages: dict[str, str] | None = None):
    refs = sorted(r for r in rows.customer_ref.dropna().unique())
    identity = ibis.memtable(
        pd.DataFrame({"as_of_date": as_of, "customer_ref": refs, "customer_key": [f"k{r[1:]}" for r in refs]}),
        schema={"as_of_date": "date", "customer_ref": "string", "customer_key": "string"},
    )
    # the customer base: every respondent plus 300 customers who were not asked
    keys = [f"k{r[1:]}" for r in refs] + [f"k9{i:03d}" for i in range(300)]
    c360 = c360_table(
        [
            {"customer_key": k, "kind": _kind(int(k[1:])), "signup_date": dt.date(2024, 6, 1), "net_monetary_12m": 100}
            for k in keys
        ],
        as_of,
    )
    stages = stages or {}
    lifecycle = mart_table(
        [{"as_of_date": as_of, "customer_key": k, "stage": stages.get(k, "maturity")} for k in keys], LIFECYCLE
    )
    return {"surveys": surveys_table(rows), "identity": identity, "c360": c360, "lifecycle": lifecycle}


def _as_of(*days: dt.date):
    return ibis.memtable(pd.DataFrame({"as_of_date": list(days)}), schema={"as_of_date": "date"})


@pytest.fixture(scope="module")
def marts():
    from pipelines.warehouse import Warehouse

    rows = survey_rows()
    with Warehouse(":memory:").connect() as con:
        exprs = satisfaction_marts(**inputs(rows), as_of=_as_of(AS_OF), params=PARAMS, execute=con.execute)
        return {name: (exprs[name], con.execute(exprs[name])) for name in exprs}, rows


def test_every_table_has_its_documented_columns(marts):
    tables, _ = marts
    assert set(tables) == {s.table for s in SATISFACTION_TABLES}
    for schema in SATISFACTION_TABLES:
        assert_schema(tables[schema.table][0], schema)
        assert len(tables[schema.table][1]) > 0, schema.table


def _kept_complete(rows: pd.DataFrame) -> pd.DataFrame:
    kept = rows[~rows.is_speeder].copy()
    kept["complaint"] = kept.complaint.astype(int)
    return kept


@pytest.mark.parametrize("wave", ["2025Q1", ALL_WAVES])
def test_index_is_the_acsi_closed_form_with_the_waves_pooled_weights(marts, wave):
    tables, rows = marts
    index = tables[SATISFACTION_INDEX.table][1]
    kept = _kept_complete(rows)
    data = kept if wave == ALL_WAVES else kept[kept.wave == wave]
    spec = PARAMS.spec
    model = spec.model("path", consistent=True).fit(data[spec.items].astype(float))
    kinds = data.customer_ref.map(lambda r: "anonymous" if pd.isna(r) else _kind(int(r[1:])))
    for lv in spec.index_latents:
        got = index[(index.wave == wave) & (index.latent == lv)].set_index(["segment_type", "segment"])
        assert got.loc[("all", "all"), "index"] == pytest.approx(model.index(lv, 1, 10), abs=1e-9)
        assert got.loc[("all", "all"), "n"] == len(data)
        for kind, part in data.groupby(kinds):
            assert got.loc[("kind", kind), "index"] == pytest.approx(model.index(lv, 1, 10, data=part), abs=1e-9)
            assert got.loc[("kind", kind), "n"] == len(part)
    assert "Complaints" not in set(index.latent)  # yes/no item: no index


def test_index_interval_is_the_standard_error_of_the_respondent_scores(marts):
    tables, rows = marts
    index = tables[SATISFACTION_INDEX.table][1]
    row = index[(index.wave == ALL_WAVES) & (index.latent == "Satisfaction") & (index.segment == "all")].iloc[0]
    kept = _kept_complete(rows)
    model = PARAMS.spec.model("path").fit(kept[PARAMS.spec.items].astype(float))
    w = model.unstandardised_weights("Satisfaction")
    scores = 100 * (kept[list(w.index)].to_numpy(float) @ w.to_numpy() - w.sum()) / (9 * w.sum())
    se = scores.std(ddof=1) / math.sqrt(len(scores))
    assert row.se == pytest.approx(se, rel=1e-9)
    assert (row.lower, row.upper) == pytest.approx((row["index"] - 1.959964 * se, row["index"] + 1.959964 * se))
    assert row.status == "ok" and row.survey_weights == "none" and "path scheme" in row.weighting


def test_segments_partition_the_respondents(marts):
    tables, _ = marts
    for table in ("marts.satisfaction_index", "marts.nps", "marts.csd"):
        t = tables[table][1]
        sums = (
            t.groupby(["wave", "segment_type"] + (["latent"] if "latent" in t else [])).n.sum().unstack("segment_type")
        )
        assert (sums["kind"] == sums["all"]).all(), table


def test_every_response_is_counted_once_in_the_exclusions(marts):
    tables, rows = marts
    ex = tables["marts.survey_exclusions"][1].set_index("wave")
    assert (ex.responses == ex.kept + ex.excluded).all()
    assert ex.loc[ALL_WAVES, "responses"] == len(rows) == ex.drop(ALL_WAVES).responses.sum()
    assert ex.loc[ALL_WAVES, "excluded_speeder"] == rows.is_speeder.sum() == 5
    assert ex.loc[ALL_WAVES, "anonymous"] == rows.customer_ref.isna().sum() == 30


def test_paths_report_the_model_with_bootstrap_and_reliability(marts):
    tables, rows = marts
    paths = tables["marts.satisfaction_paths"][1]
    pooled = paths[paths.wave == ALL_WAVES]
    assert len(pooled[pooled.measure == "path"]) == len(PARAMS.spec.inner)
    assert pooled[pooled.measure == "path"].std_error.notna().all()
    assert pooled[pooled.measure == "path"].resamples.between(1, PARAMS.bootstrap).all()
    assert pooled.admissible.dropna().all()  # 120 answers of a clean structure: an admissible PLSc fit
    assert {"r2", "ave", "composite_reliability", "cronbach_alpha", "gof", "complaint_rate"} <= set(pooled.measure)
    rate = pooled[pooled.measure == "complaint_rate"].estimate.iloc[0]
    assert rate == pytest.approx(_kept_complete(rows).complaint.mean())
    assert set(pooled.estimator) == {"plsc"} and pooled.n.iloc[0] == len(_kept_complete(rows))


def test_kano_and_nps_come_from_the_kept_answers(marts):
    tables, rows = marts
    kano = tables["marts.kano"][1]
    overall = kano[(kano.wave == ALL_WAVES) & (kano.segment_type == "all")]
    # every third answer is like/dislike (O), the rest must-be/dislike (M)
    assert set(overall.category) == {"M"} and len(overall) == len(SERVICE_ATTRIBUTES)
    kept = _kept_complete(rows)
    nps = tables["marts.nps"][1].set_index(["wave", "segment_type", "segment"]).loc[(ALL_WAVES, "all", "all")]
    p, d = (kept.recommend >= 9).mean(), (kept.recommend <= 6).mean()
    assert nps.nps == pytest.approx(100 * (p - d))


def test_identical_responses_on_two_dates_are_fitted_once():
    from pipelines.warehouse import Warehouse

    rows = survey_rows(n=120)
    rows = rows[rows.wave == "2025Q1"]  # one wave: the wave and 'all' are the same responses
    log: list[str] = []
    days = (AS_OF, AS_OF + dt.timedelta(days=1))
    with Warehouse(":memory:").connect() as con:
        parts = [inputs(rows, d) for d in days]
        args = {k: ibis.union(*(p[k] for p in parts)) for k in ("identity", "c360", "lifecycle")}
        exprs = satisfaction_marts(
            surveys=parts[0]["surveys"], **args, as_of=_as_of(*days), params=PARAMS, execute=con.execute, log=log.append
        )
        index = con.execute(exprs[SATISFACTION_INDEX.table])
    assert "1 distinct model fits for 2 as-of dates" in " ".join(log)
    a, b = (index[index.as_of_date == d].drop(columns="as_of_date").reset_index(drop=True) for d in days)
    pd.testing.assert_frame_equal(a, b)


def test_a_wave_with_too_few_responses_is_not_fitted_but_still_counted():
    from pipelines.warehouse import Warehouse

    rows = survey_rows(n=60)  # 30 per wave, 28 identified-or-not kept: below min_responses = 40
    params = dataclasses.replace(PARAMS, min_responses=40)
    with Warehouse(":memory:").connect() as con:
        exprs = satisfaction_marts(**inputs(rows), as_of=_as_of(AS_OF), params=params, execute=con.execute)
        index = con.execute(exprs[SATISFACTION_INDEX.table])
        nps = con.execute(exprs["marts.nps"])
    q1 = index[index.wave == "2025Q1"]
    assert set(q1.status) == {"not_fitted"} and q1["index"].isna().all() and (q1.n > 0).all()
    assert set(index[index.wave == ALL_WAVES].status) <= {"ok", "small_sample"}
    assert (nps[nps.wave == "2025Q1"].n > 0).all()


# -- pandas side, hand-computed -----------------------------------------------------------------


def _frame(strata: dict[str, int], anonymous: int = 0) -> pd.DataFrame:
    """Kept responses of one wave: `strata[s]` identified answers in stratum s, then the anonymous ones."""
    rng = np.random.default_rng(0)
    rows = []
    for s, k in strata.items():
        rows += [{"customer_key": f"{s}{i}", "_stratum": s, "_seg_kind": s} for i in range(k)]
    rows += [{"customer_key": None, "_stratum": None, "_seg_kind": None} for _ in range(anonymous)]
    f = pd.DataFrame(rows)
    f["as_of_date"], f["wave"] = AS_OF, "2025Q1"
    f["response_id"] = [f"r{i}" for i in range(len(f))]
    common = rng.standard_normal(len(f))  # one factor behind every item: all weights positive
    for item in PARAMS.spec.items:
        f[item] = np.clip(np.round(6.5 + 1.5 * (0.8 * common + 0.6 * rng.standard_normal(len(f)))), 1, 10)
    for a in SERVICE_ATTRIBUTES:
        f[f"imp_{a}"], f[f"perf_{a}"] = rng.integers(1, 11, len(f)), rng.integers(1, 11, len(f))
    return f


def _population(sizes: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"as_of_date": AS_OF, "wave": w, "_stratum": s, "population": n}
            for w in ("2025Q1", ALL_WAVES)
            for s, n in sizes.items()
        ]
    )


def test_coverage_matches_the_hand_computation():
    """A: N 100, n 10; B: N 300, n 10; C: N 50, n 2 and D: N 50, n 0 are pooled (< 5 answers).
    N = 500, n = 22: w_A = (100/500) / (10/22) = 0.44, w_B = (300/500) / (10/22) = 1.32,
    w_pooled = (100/500) / (2/22) = 2.2. Needed for ±5 % at 95 % in A: n0 = 384.15,
    384.15 / (1 + 383.15 / 100) = 79.5 -> 80."""
    params = dataclasses.replace(PARAMS, min_responses=1000)  # no fit needed here
    out = python_marts(_frame({"A": 10, "B": 10, "C": 2}), _population({"A": 100, "B": 300, "C": 50, "D": 50}), params)
    cov = out.coverage[out.coverage.wave == "2025Q1"].set_index("stratum")
    assert list(out.coverage.columns) == SURVEY_COVERAGE.names
    assert cov.post_stratification_weight.to_dict() == pytest.approx(
        {"A": 0.44, "B": 1.32, "C": 2.2, "D": 2.2, "all": math.nan}, nan_ok=True
    )
    assert cov.weighting_cell.drop("all").to_dict() == {"A": "A", "B": "B", "C": "pooled", "D": "pooled"}
    assert pd.isna(cov.loc["all", "weighting_cell"])
    assert cov.loc["A", "needed_responses"] == 80 == sample_size(0.5, 0.05, 0.95, 100)
    assert cov.loc["A", "margin_of_error"] == pytest.approx(1.959964 * math.sqrt(0.25 / 10) * math.sqrt(90 / 99))
    assert cov.loc["A", "margin_of_error"] == pytest.approx(margin_of_error_proportion(0.5, 10, 100))
    assert math.isnan(cov.loc["D", "margin_of_error"]) and cov.loc["D", "shortfall"] == cov.loc["D", "needed_responses"]
    assert cov.loc["all", ["population", "responses"]].tolist() == [500, 22]
    assert cov.loc["B", "response_rate"] == pytest.approx(10 / 300)


def test_post_stratified_index_is_the_weighted_mean_of_the_respondent_scores():
    """With post_stratify, each identified respondent weighs its stratum's weight and an
    anonymous one 1; the index is sum v s / sum v over the respondent scores s."""
    frame = _frame({"A": 30, "B": 20}, anonymous=10)
    params = dataclasses.replace(PARAMS, post_stratify=True, bootstrap=0)
    plain = python_marts(frame, _population({"A": 100, "B": 300}), dataclasses.replace(params, post_stratify=False))
    out = python_marts(frame, _population({"A": 100, "B": 300}), params)
    model = params.spec.model("path").fit(frame[params.spec.items])
    w = model.unstandardised_weights("Satisfaction")
    scores = 100 * (frame[list(w.index)].to_numpy(float) @ w.to_numpy() - w.sum()) / (9 * w.sum())
    # weights: A (100/400) / (30/50) = 5/12, B (300/400) / (20/50) = 15/8, anonymous 1
    v = frame._stratum.map({"A": 5 / 12, "B": 15 / 8}).fillna(1.0).to_numpy()
    pick = lambda t: t[(t.wave == "2025Q1") & (t.latent == "Satisfaction") & (t.segment == "all")].iloc[0]  # noqa: E731
    row = pick(out.index)
    assert row["index"] == pytest.approx(float(v @ scores / v.sum()), abs=1e-9)
    assert pick(plain.index)["index"] == pytest.approx(float(scores.mean()), abs=1e-9)
    assert row.survey_weights == "post-stratified by kind"


def test_negative_weights_give_no_index():
    frame = _frame({"A": 60})
    rng = np.random.default_rng(5)
    sat = rng.standard_normal(len(frame))
    frame["sat_1"] = np.clip(np.round(6 + 2 * sat), 1, 10)
    frame["sat_2"] = np.clip(np.round(6 + 2 * sat + 0.3 * rng.standard_normal(len(frame))), 1, 10)
    frame["sat_3"] = np.clip(np.round(6 - 2 * sat), 1, 10)  # a reversed item
    out = python_marts(frame, _population({"A": 100}), dataclasses.replace(PARAMS, bootstrap=0))
    sat_rows = out.index[out.index.latent == "Satisfaction"]
    assert set(sat_rows.status) == {"negative_weights"} and sat_rows["index"].isna().all()


def test_loyalty_groups_cross_satisfaction_with_the_stage_now():
    """Scores: items all 9 -> 100 (9-1)/9 = 88.9 satisfied; all 4 -> 33.3 not."""
    from pipelines.warehouse import Warehouse

    rows = survey_rows(n=10, anonymous_every=1000)
    for i, (sat, _) in enumerate([(9, 0), (9, 0), (4, 0), (4, 0), (9, 0)] * 2):
        rows.loc[i, ["sat_1", "sat_2", "sat_3"]] = sat
    rows["wave"], rows["is_speeder"] = "2025Q1", False
    # customers 0..9: stages
    stages = {
        "k0000": "maturity",
        "k0001": "decline",
        "k0002": "growth",
        "k0003": "termination",
        "k0004": "termination",
    }
    stages |= {f"k{i:04d}": "maturity" for i in range(5, 10)}
    inp = inputs(rows, stages=stages)
    with Warehouse(":memory:").connect() as con:
        exprs = satisfaction_marts(**inp, as_of=_as_of(AS_OF), params=PARAMS, execute=con.execute)
        loyalty = con.execute(exprs[SATISFACTION_LOYALTY.table])
    got = loyalty[loyalty.wave == "2025Q1"].set_index("group")
    # 0 sat+maturity, 1 sat+decline, 2 dis+growth, 3 dis+termination, 4 sat+termination;
    # 5..9 maturity: 5, 6, 9 satisfied, 7, 8 not
    assert got.customers.to_dict() == {
        "satisfied_loyal": 4,
        "satisfaction_trap": 2,
        "dissatisfied_staying": 3,
        "lost": 1,
    }
    assert got.share.sum() == pytest.approx(1.0) and got.loc["lost", "group_zh"] == "不满意且流失"
    assert got.loc["satisfied_loyal", "mean_satisfaction_score"] == pytest.approx(100 * 8 / 9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"segments": ("kind", "shoe_size")}, "not customer 360 columns"),
        ({"model": "nps_only"}, "model must be one of"),
        ({"model": "/nope/model.yaml"}, "does not exist"),
        ({"weights_from": "segment"}, "weights_from"),
        ({"csd_perceived": "Image"}, "not a latent variable of acsi"),
        ({"ipa_importance": ("gut_feeling",)}, "ipa_importance"),
    ],
)
def test_bad_parameters_are_refused_with_the_offending_name(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SatisfactionParams(), **change)


def test_a_custom_yaml_model_drives_the_index(tmp_path):
    path = tmp_path / "mini.yaml"
    path.write_text(
        "name: mini\nouter: {Quality: [qual_1, qual_2, qual_3], Satisfaction: [sat_1, sat_2, sat_3]}\n"
        "inner: [[Quality, Satisfaction]]\nindex: [Satisfaction]\n"
    )
    params = dataclasses.replace(PARAMS, model=str(path), csd_perceived="Quality", csd_expected="Quality", bootstrap=0)
    out = python_marts(_frame({"A": 40}), _population({"A": 100}), params)
    assert set(out.index.latent) == {"Satisfaction"} and set(out.index.model) == {"mini"}


def test_a_snapshot_without_survey_responses_gives_empty_marts():
    from pipelines.warehouse import Warehouse

    rows = survey_rows(n=20)
    inp = inputs(rows)
    inp["surveys"] = surveys_table(rows.iloc[:0])
    with Warehouse(":memory:").connect() as con:
        exprs = satisfaction_marts(**inp, as_of=_as_of(AS_OF), params=PARAMS, execute=con.execute)
        assert {name: len(con.execute(e)) for name, e in exprs.items()} == {s.table: 0 for s in SATISFACTION_TABLES}


def test_the_fits_do_not_depend_on_the_row_order_a_query_returned():
    """DuckDB returns rows in no fixed order and the seeded bootstrap draws row positions: the
    marts (standard errors and intervals included) must be the same for any order of the rows."""
    frame = _frame({"A": 40, "B": 30}, anonymous=10)
    params = dataclasses.replace(PARAMS, bootstrap=20, consistent=False)  # one common factor: PLSc is inadmissible
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    assert not shuffled.response_id.equals(frame.response_id)
    one = python_marts(frame, _population({"A": 100, "B": 300}), params)
    two = python_marts(shuffled, _population({"A": 100, "B": 300}), params)
    assert one.paths.std_error.notna().any()
    pd.testing.assert_frame_equal(one.paths, two.paths)
    pd.testing.assert_frame_equal(one.index, two.index)


def test_the_pandas_side_allocates_less_than_one_and_a_half_frames():
    """At 100M order lines the kept responses are ~4M rows, over 1 GB in pandas. The fits, index
    and coverage used to copy them three times over (every wave at once, a weighted copy, a frame
    per segment, the items four times in a fit): Python's allocations while computing the marts
    stay below 1.5x the frame (tracemalloc; was 3.4x)."""
    import tracemalloc

    frame = _frame({"A": 30_000, "B": 20_000}, anonymous=5_000)
    frame["wave"] = np.where(np.arange(len(frame)) % 2 == 0, "2025Q1", "2025Q2")
    params = dataclasses.replace(PARAMS, bootstrap=3, consistent=False, post_stratify=True)
    size = frame.memory_usage(deep=True).sum()
    tracemalloc.start()
    try:
        marts = python_marts(frame, _population({"A": 90_000, "B": 60_000}), params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (marts.index.status == "ok").any()
    assert peak < 1.5 * size, f"peak {peak / size:.2f}x the frame"


def test_a_second_run_takes_its_fits_from_the_cache_and_gives_the_same_marts(tmp_path, monkeypatch):
    """The nightly case: the same responses again. Every fit comes from the disk cache (none is
    refitted) and the marts are the same; other fit parameters or other responses miss."""
    from analytics.satisfaction import marts as satisfaction_marts_module
    from analytics.satisfaction.fit_cache import FitCache

    frame = _frame({"A": 40, "B": 30}, anonymous=10)
    params = dataclasses.replace(PARAMS, bootstrap=10, consistent=False)
    population = _population({"A": 100, "B": 300})
    first = python_marts(frame, population, params, cache=FitCache(tmp_path))
    assert list(tmp_path.glob("*.pkl"))

    def no_refit(*_a, **_k):
        raise AssertionError("refitted although the cache holds the fit")

    with monkeypatch.context() as m:
        m.setattr(satisfaction_marts_module, "_fit", no_refit)
        cache = FitCache(tmp_path)
        again = python_marts(frame, population, params, cache=cache)
        assert cache.hits >= 1 and cache.misses == 0
        with pytest.raises(AssertionError, match="refitted"):
            python_marts(frame, population, dataclasses.replace(params, seed=1), cache=FitCache(tmp_path))
        with pytest.raises(AssertionError, match="refitted"):
            changed = frame.assign(**{PARAMS.spec.items[0]: frame[PARAMS.spec.items[0]].iloc[::-1].to_numpy()})
            python_marts(changed, population, params, cache=FitCache(tmp_path))
    for name in ("paths", "index", "ipa", "coverage"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))


def test_the_fit_cache_keeps_the_most_recently_used_fits_and_survives_a_broken_file(tmp_path):
    from analytics.satisfaction.fit_cache import FitCache

    cache = FitCache(tmp_path, keep=2)
    for key in ("a", "b", "c"):
        cache.put(key, {"fit": key})
    assert len(list(tmp_path.glob("*.pkl"))) == 2 and cache.get("c") == {"fit": "c"}
    cache._path("c").write_bytes(b"not a pickle")
    assert cache.get("c") is None


def test_survey_comments_are_scrubbed_and_carry_their_context(con):
    """Three kept responses: a comment with a mobile and an e-mail (promoter, sat items 9 ->
    100 (9 - 1) / 9 = 88.9), a clean comment from an anonymous detractor, and a blank one
    (left out). The comment's id is a hash, not the response id."""
    from analytics.satisfaction.marts import SURVEY_COMMENTS, survey_comments

    sat = PARAMS.spec.outer[PARAMS.satisfaction_latent]
    rows = pd.DataFrame(
        {
            "as_of_date": [AS_OF] * 3,
            "wave": ["2025Q1"] * 3,
            "response_id": ["R-1", "R-2", "R-3"],
            "customer_key": ["k1", None, "k3"],
            "business_date": [dt.date(2025, 1, 10)] * 3,
            "recommend": [10, 3, 8],
            "complaint": [0, 1, 0],
            "comment": ["请回电 13812345678 或 a.b@qq.com 谢谢", "送货太慢", "   "],
            **{item: [9, 4, 7] for item in sat},
        }
    )
    out = con.execute(survey_comments(ibis.memtable(rows), PARAMS, "v1")).sort_values("recommend", ascending=False)
    assert list(out.columns) == SURVEY_COMMENTS.names and len(out) == 2
    first, second = out.iloc[0], out.iloc[1]
    assert first.comment_scrubbed == "请回电 [phone] 或 [email] 谢谢" and first.redacted
    assert second.comment_scrubbed == "送货太慢" and not second.redacted
    assert (first.nps_group, second.nps_group) == ("promoter", "detractor")
    assert first.satisfaction_score == pytest.approx(100 * 8 / 9) and second.satisfaction_score == pytest.approx(
        100 * 3 / 9
    )
    assert (bool(first.complaint), bool(second.complaint)) == (False, True)
    assert first.customer_key == "k1" and pd.isna(second.customer_key)
    assert len(first.verbatim_id) == 16 and "R-1" not in set(out.verbatim_id)
    assert set(out.settings_version) == {"v1"}
