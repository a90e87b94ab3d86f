"""CLV marts: compression in the engine, fitting and scoring of unique rows, join-back, the
seed formula, validation on simulated BG/NBD data, schemas and determinism.

The fitters are injected: lifetimes' classes (test-only oracle) and, once importable, the
project's `analytics.clv`; the tests that fit run against each."""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
from decimal import Decimal
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from analytics.clv_marts import (
    CLV,
    CLV_MODELS,
    CLV_TIER_ZH,
    CLV_TRACKING,
    CLV_VALIDATION,
    ClvFitters,
    ClvParams,
    ClvScores,
    ValidationScores,
    annual_survival,
    churn_lifecycle_years,
    clv,
    clv_inputs,
    clv_marts,
    clv_models,
    clv_tracking,
    clv_validation,
    fit_models,
    score_snapshots,
    score_unique,
    seed_annuity_factor,
    spend_inputs,
    validate_snapshots,
    validation_inputs,
)
from analytics.lifecycle import CHURN
from tests.c360_kit import AS_OF, assert_schema, c360_table, mart_table, prospect, run

lifetimes = pytest.importorskip("lifetimes")


def _implementations() -> list:
    impls = [
        pytest.param(
            ClvFitters(
                bgnbd=lifetimes.BetaGeoFitter,
                mbgnbd=lifetimes.ModifiedBetaGeoFitter,
                paretonbd=lifetimes.ParetoNBDFitter,
                gamma_gamma=lifetimes.GammaGammaFitter,
            ),
            id="lifetimes",
        )
    ]
    if importlib.util.find_spec("analytics.clv") is not None:
        from analytics.clv_marts import default_fitters

        impls.append(pytest.param(default_fitters(), id="analytics.clv"))
    return impls


IMPLEMENTATIONS = _implementations()
LIFETIMES = IMPLEMENTATIONS[0].values[0]


@pytest.fixture(params=IMPLEMENTATIONS)
def fitters(request) -> ClvFitters:
    return request.param


# --- simulated BG/NBD customers -----------------------------------------------------------------

TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}  # per week
SIM_START = dt.date(2023, 1, 1)
SIM_END = dt.date(2024, 12, 31)


def simulate(n: int = 2000, seed: int = 1, params: dict = TRUE) -> pd.DataFrame:
    """Purchase days of `n` BG/NBD customers (rates per week, first purchases spread over 12
    weeks from SIM_START, observed to SIM_END); spend per day from Gamma-Gamma(6, 4, 15)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n) / 7.0
    p = rng.beta(params["a"], params["b"], n)
    births = rng.integers(0, 84, n)
    horizon = (SIM_END - SIM_START).days
    k = 200
    gaps = rng.exponential(1.0, (n, k)) / lam[:, None]
    times = births[:, None] + np.cumsum(gaps, axis=1)
    # the customer drops out right after the j-th repeat purchase, j ~ Geometric(p)
    dies_after = rng.geometric(p)
    ok = (np.arange(1, k + 1)[None, :] <= dies_after[:, None]) & (times <= horizon)
    cust, col = np.nonzero(ok)
    rows = pd.DataFrame(
        {
            "c": np.concatenate([np.arange(n), cust]),
            "day": np.concatenate([births, np.floor(times[cust, col]).astype(int)]),
        }
    )
    rows = rows.drop_duplicates().sort_values(["c", "day"]).reset_index(drop=True)
    nu = rng.gamma(4.0, 1.0 / 15.0, n)
    rows["net_amount"] = np.round(rng.gamma(6.0, 1.0 / nu[rows.c.to_numpy()]), 2)
    rows["customer_key"] = [f"c{c:05d}" for c in rows.c]
    rows["purchase_date"] = [SIM_START + dt.timedelta(days=int(d)) for d in rows.day]
    return rows[["customer_key", "purchase_date", "net_amount"]]


def c360_rows(purchases: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Customer 360 facts of the simulated buyers at `as_of` (30 % margin, 20 CNY yearly marketing)."""
    p = purchases[purchases.purchase_date <= as_of]
    g = p.groupby("customer_key")
    first, last, days, net = g.purchase_date.min(), g.purchase_date.max(), g.purchase_date.nunique(), g.net_amount.sum()
    recent = p[p.purchase_date > as_of - dt.timedelta(days=365)].groupby("customer_key").net_amount.sum()
    recent = recent.reindex(first.index, fill_value=0.0)
    return pd.DataFrame(
        {
            "as_of_date": as_of,
            "customer_key": first.index,
            "frequency": (days - 1).to_numpy(),
            "purchase_days": days.to_numpy(),
            "recency_days": [(b - a).days for a, b in zip(first, last, strict=True)],
            "age_days": [(as_of - a).days for a in first],
            "net_monetary": net.round(2).to_numpy(),
            "gross_margin": (net * 0.3).round(2).to_numpy(),
            "gross_margin_12m": (recent * 0.3).round(2).to_numpy(),
            "marketing_cost_12m": 20.0,
            "profit_12m": (recent * 0.3).round(2).to_numpy() - 20.0,
            "tenure_days": [(as_of - a).days + 10 for a in first],
        }
    )


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    return simulate()


_PURCHASE_SCHEMA = {
    "as_of_date": "date",
    "customer_key": "string",
    "purchase_date": "date",
    "net_amount": "decimal(18, 2)",
}


def purchases_table(purchases: pd.DataFrame, as_ofs: list[dt.date]) -> ibis.Table:
    """The purchase-day history as customer360.purchase_days gives it, per as-of date."""
    frame = pd.concat([purchases[purchases.purchase_date <= d].assign(as_of_date=d) for d in as_ofs])
    frame["net_amount"] = [Decimal(f"{v:.2f}") for v in frame.net_amount]
    return ibis.memtable(frame[list(_PURCHASE_SCHEMA)], schema=_PURCHASE_SCHEMA)


# --- compression -----------------------------------------------------------------------------------


def buyer(key: str, x: int, t_x: int, age: int, net: float = 0.0, **override) -> dict:
    """A customer 360 row of a buyer with the BG/NBD facts (x, t_x, T) and net spend."""
    return {
        "customer_key": key,
        "frequency": x,
        "recency_days": t_x,
        "age_days": age,
        "purchase_days": x + 1,
        "net_monetary": net,
        "avg_repeat_value": None,
        **override,
    }


def test_compression_counts_unique_rows_per_snapshot(con):
    later = dt.date(2025, 7, 31)
    rows = [
        buyer("a", 0, 0, 10, 50),
        buyer("b", 0, 0, 10, 70),
        buyer("c", 2, 20, 40, 100),
        buyer("d", 2, 20, 40, 100),
        buyer("e", 1, 5, 40, -10),
        buyer("f", 3, 30, 40, 500, avg_repeat_value=Decimal("45.50")),
        prospect("p", frequency=None, recency_days=None),
        buyer("a", 0, 0, 41, as_of_date=later),
    ]
    c = c360_table(rows)
    triples = run(con, clv_inputs(c), ["as_of_date", "frequency", "recency_days", "age_days"])
    assert triples.drop(columns="as_of_date").values.tolist() == [
        [0, 0, 10, 2],
        [1, 5, 40, 1],
        [2, 20, 40, 2],
        [3, 30, 40, 1],
        [0, 0, 41, 1],
    ]
    assert [d.date() for d in triples.as_of_date] == [AS_OF, AS_OF, AS_OF, AS_OF, later]
    spend = run(con, spend_inputs(c), ["as_of_date", "frequency", "mean_value_cents"])
    # without avg_repeat_value: 100.00 / 3 days = 33.33; negative net spend counts as 0;
    # with it (f), m is the mean value of the repeat purchase days
    assert spend.drop(columns="as_of_date").values.tolist() == [
        [0, 5000, 1],
        [0, 7000, 1],
        [1, 0, 1],
        [2, 3333, 2],
        [3, 4550, 1],
        [0, 0, 1],
    ]


def test_validation_inputs_summarise_the_calibration_period(con):
    d = dt.date
    days = {
        "A": [d(2025, 1, 1), d(2025, 3, 1), d(2025, 6, 10), d(2025, 6, 20)],
        "D": [d(2025, 1, 1), d(2025, 3, 1), d(2025, 6, 10), d(2025, 6, 20)],
        "B": [d(2025, 5, 31)],  # on the calibration end: a calibration customer
        "C": [d(2025, 6, 5)],  # first purchase in the holdout: not a calibration customer
        "E": [d(2025, 2, 1), d(2025, 7, 5)],  # the second day is after the as-of date
    }
    frame = pd.DataFrame(
        [
            {"as_of_date": AS_OF, "customer_key": k, "purchase_date": p, "net_amount": 10.0}
            for k, ps in days.items()
            for p in ps
        ]
    )
    purchases = ibis.memtable(frame, schema=_PURCHASE_SCHEMA)
    params = ClvParams(holdout_days=30)
    got = run(con, validation_inputs(purchases, params), ["age_days"])
    assert set(got.calibration_end.dt.date) == {d(2025, 5, 31)}
    cols = ["frequency", "recency_days", "age_days", "holdout_purchases", "customers"]
    assert got[cols].values.tolist() == [[0, 0, 0, 0, 1], [0, 0, 119, 0, 1], [1, 59, 150, 2, 2]]

    # hand predictions: the marts aggregate them per bucket and follow the weekly actuals
    check = ValidationScores(
        predictions=pd.DataFrame(
            {
                "as_of_date": [AS_OF] * 3,
                "frequency": [0, 0, 1],
                "recency_days": [0, 0, 59],
                "age_days": [0, 119, 150],
                "predicted_holdout": [0.2, 0.1, 1.5],
            }
        ),
        tracking=pd.DataFrame(
            {
                "as_of_date": [AS_OF] * 5,
                "week": [1, 2, 3, 4, 5],
                "holdout_day": [7, 14, 21, 28, 30],
                "predicted_cumulative": [0.5, 1.0, 1.5, 2.0, 3.3],
            }
        ),
        models=pd.DataFrame(),
    )
    params = ClvParams(holdout_days=30, max_frequency_bucket=1)
    v = run(con, clv_validation(validation_inputs(purchases, params), check, params), ["bucket_order"])
    assert v.frequency_bucket.tolist() == ["0", "1+", "all"]
    assert v.frequency_bucket_zh.tolist() == ["0次", "1次及以上", "全部"]
    assert v.customers.tolist() == [2, 2, 4]
    assert v.actual_total.tolist() == [0, 4, 4]
    assert v.predicted_total.tolist() == pytest.approx([0.3, 3.0, 3.3])
    assert v.predicted_mean.tolist() == pytest.approx([0.15, 1.5, 0.825])
    assert v.actual_mean.tolist() == pytest.approx([0.0, 2.0, 1.0])
    assert v.mae.tolist() == pytest.approx([0.15, 0.5, 0.325])
    assert v.rmse.tolist() == pytest.approx([math.sqrt(0.025), 0.5, math.sqrt(0.1375)])

    t = run(con, clv_tracking(purchases, check, params), ["week"])
    # A and D buy on day 10 (week 2) and day 20 (week 3); C is no calibration customer
    assert t.actual_cumulative.tolist() == [0, 2, 4, 4, 4]
    assert t.holdout_day.tolist() == [7, 14, 21, 28, 30]
    assert t.period_end.dt.date.tolist()[-1] == AS_OF


# --- the seed formula --------------------------------------------------------------------------------


def test_seed_annuity_factor_hand_example_and_fractional_years():
    assert 80 * seed_annuity_factor(3, 0.10) == pytest.approx(80 / 1.1 + 80 / 1.21 + 80 / 1.331)
    # the fraction of the last year counts pro rata, discounted as the year it falls in
    assert 80 * seed_annuity_factor(2.5, 0.10) == pytest.approx(80 / 1.1 + 80 / 1.21 + 0.5 * 80 / 1.331)
    assert seed_annuity_factor(0.5, 0.10) == pytest.approx(0.5 / 1.1)
    assert seed_annuity_factor(2.5, 0.0) == 2.5


#: Seed Q 100 (gross_margin_12m), C 20 (the yearly marketing budget): Q - C = 80.
YEAR80 = {"gross_margin_12m": 100, "marketing_cost_12m": 20, "profit_12m": 80, "tenure_days": 400}

SEED_ROWS = [
    buyer("old", 0, 0, 10, 50, **YEAR80),
    # new this year: acquisition 50 inside marketing 70 is sunk; service cost 10 -> C = 30
    buyer("new", 0, 0, 10, 50, gross_margin_12m=100, marketing_cost_12m=70, profit_12m=20, tenure_days=100)
    | {"acquisition_cost": 50},
    # no margin this year, still costs the yearly budget
    buyer("idle", 0, 0, 10, 50, gross_margin_12m=0, marketing_cost_12m=20, profit_12m=-20, tenure_days=900),
]


def _seed_c360():
    return c360_table(SEED_ROWS)


@pytest.mark.parametrize(
    ("years", "expected"),
    [
        (3.0, {"old": 198.95, "new": 174.08, "idle": -49.74}),
        (2.5, {"old": 168.90, "new": 147.78, "idle": -42.22}),
    ],
)
def test_seed_clv_from_churn_lifecycle_hand_example(con, years, expected):
    out = run(con, clv(_seed_c360(), ClvScores.empty(), ClvParams(), churn=years), ["customer_key"])
    got = dict(zip(out.customer_key, out.clv_seed_churn.astype(float), strict=True))
    assert got == pytest.approx(expected, abs=0.001)
    costs = dict(zip(out.customer_key, out.annual_cost.astype(float), strict=True))
    assert costs == {"idle": 20.0, "new": 30.0, "old": 20.0}
    assert out.lifetime_years_churn.tolist() == [years] * 3
    # nothing fitted: the model columns and the tier are null, the seed is there
    assert out.p_alive.isna().all() and out.clv_model.isna().all() and out.clv_tier.isna().all()
    assert out.clv_seed_model.isna().all()


def test_churn_lifecycle_is_the_newest_complete_all_row(con):
    later = dt.date(2025, 9, 30)

    def row(as_of, period, end, cohort, n, rate):
        return {
            "as_of_date": as_of,
            "period": period,
            "period_end": end,
            "cohort": cohort,
            "customers_at_start": n,
            "annual_churn_rate": rate,
        }

    churn = mart_table(
        [
            row(AS_OF, "2025Q1", dt.date(2025, 3, 31), "all", 100, 0.5),
            row(AS_OF, "2025Q2", dt.date(2025, 6, 30), "all", 100, 0.25),
            row(AS_OF, "2025Q2", dt.date(2025, 6, 30), "2024Q1", 10, 0.9),
            row(later, "2025Q2", dt.date(2025, 6, 30), "all", 100, 0.0),  # nobody lost: the cap
            row(later, "2025Q3", dt.date(2025, 9, 30), "all", 0, None),  # nobody at start: ignored
        ],
        CHURN,
    )
    params = ClvParams(max_lifetime_years=12)
    years = run(con, churn_lifecycle_years(churn, params), ["as_of_date"])
    assert years.lifetime_years_churn.tolist() == [4.0, 12.0]

    c = c360_table([buyer("old", 0, 0, 10, 50, as_of_date=d, **YEAR80) for d in (AS_OF, later)])
    out = run(con, clv(c, ClvScores.empty(), params, churn=churn), ["as_of_date"])
    assert out.lifetime_years_churn.tolist() == [4.0, 12.0]
    assert float(out.clv_seed_churn[0]) == pytest.approx(80 * seed_annuity_factor(4, 0.1), abs=0.005)
    assert run(con, clv(c, ClvScores.empty(), params), ["as_of_date"]).clv_seed_churn.isna().all()


# --- join-back of hand-made scores ------------------------------------------------------------------


def _hand_scores(triples: list[tuple], spend: list[tuple]) -> ClvScores:
    cols = ["frequency", "recency_days", "age_days", "p_alive", "expected_purchases_12m", "discounted_purchases"]
    t = pd.DataFrame(triples, columns=[*cols, "lifetime_years_model"]).assign(as_of_date=AS_OF)
    s = pd.DataFrame(spend, columns=["frequency", "mean_value_cents", "expected_avg_spend"]).assign(as_of_date=AS_OF)
    return ClvScores(t, s, ClvScores.empty().models)


def test_scores_join_back_on_their_keys_with_margin_rules(con):
    c = c360_table(
        [
            buyer("a", 0, 0, 10, 50, gross_margin=15, **YEAR80),  # margin 30 %: clv = 0.3 x 40 x 0.4
            buyer("b", 0, 0, 10, -5, gross_margin=-1, **YEAR80),  # net spend not positive: default 0.25
            buyer("c", 0, 0, 10, 50, gross_margin=80, **YEAR80),  # margin above net value: clipped to 1
            buyer("d", 2, 0, 30, 90, gross_margin=9, **YEAR80),  # another triple and spend pair
        ]
    )
    scores = _hand_scores(
        [(0, 0, 10, 1.0, 0.5, 0.4, 2.5), (2, 0, 30, 0.6, 2.0, 1.5, 1.0)],
        [(0, 5000, 40.0), (0, 0, 35.0), (2, 3000, 31.0)],
    )
    out = run(con, clv(c, scores, ClvParams(), churn=3.0), ["customer_key"]).set_index("customer_key")
    assert out.margin_rate.to_dict() == pytest.approx({"a": 0.3, "b": 0.25, "c": 1.0, "d": 0.1})
    assert out.clv_model.astype(float).to_dict() == pytest.approx({"a": 4.8, "b": 3.5, "c": 16.0, "d": 4.65})
    assert out.expected_avg_spend.astype(float).to_dict() == {"a": 40.0, "b": 35.0, "c": 40.0, "d": 31.0}
    assert out.avg_purchase_value.astype(float).to_dict() == {"a": 50.0, "b": 0.0, "c": 50.0, "d": 30.0}
    assert out.p_alive.to_dict() == {"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.6}
    assert out.lifetime_years_model.to_dict() == {"a": 2.5, "b": 2.5, "c": 2.5, "d": 1.0}
    assert out.clv_seed_model.astype(float).to_dict() == pytest.approx(
        {k: 80 * seed_annuity_factor(t, 0.1) for k, t in {"a": 2.5, "b": 2.5, "c": 2.5, "d": 1.0}.items()}, abs=0.005
    )


def test_tiers_are_tie_aware_and_cover_every_scored_customer(con):
    # clv_model = 0.25 x 40 x discounted: customers 0..9 with 10, 9, 9, 7, ..., 1 (two tied second)
    discounted = [10, 9, 9, 7, 6, 5, 4, 3, 2, 1]
    rows = [buyer(f"k{i}", 0, 0, 100 + i, 40, gross_margin=10) for i in range(10)]
    scores = _hand_scores([(0, 0, 100 + i, 1.0, 1.0, d, 1.0) for i, d in enumerate(discounted)], [(0, 4000, 40.0)])
    out = run(con, clv(c360_table(rows), scores, ClvParams()), ["customer_key"])
    # tied k1, k2 both have share 0.1 < 0.2: three high customers
    assert out.clv_tier.tolist() == ["high"] * 3 + ["medium"] * 2 + ["low"] * 5
    assert out.clv_rank.tolist() == [1, 2, 2, 4, 5, 6, 7, 8, 9, 10]
    assert out.clv_tier_zh.tolist() == [CLV_TIER_ZH[t] for t in out.clv_tier]
    assert out.top_share.tolist() == pytest.approx([0, 0.1, 0.1, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])


# --- fitting and scoring -------------------------------------------------------------------------------


def test_compressed_fit_equals_per_customer_fit(con, sim):
    c = c360_table(c360_rows(sim, SIM_END), as_of=SIM_END)
    params = ClvParams()
    fitted = fit_models(con.execute(clv_inputs(c)), params, LIFETIMES)
    facts = c360_rows(sim, SIM_END)
    plain = lifetimes.BetaGeoFitter().fit(facts.frequency, facts.recency_days / 7.0, facts.age_days / 7.0)
    assert fitted.transaction.params_.to_dict() == pytest.approx(plain.params_.to_dict(), rel=1e-3)
    assert fitted.n_customers == len(facts) and fitted.n_unique_rows < len(facts)
    # the time unit is weeks: the rate parameter is near the simulated one
    assert fitted.transaction.params_["alpha"] == pytest.approx(TRUE["alpha"], rel=0.25)


def test_join_back_equals_per_customer_scoring(con, sim, fitters):
    facts = c360_rows(sim, SIM_END)
    c = c360_table(facts, as_of=SIM_END)
    # 4.345 weeks per month: lifetimes' freq='W'
    params = ClvParams(days_per_month=7 * 4.345, min_repeat_buyers=30)
    inputs, spend = con.execute(clv_inputs(c)), con.execute(spend_inputs(c))
    scores = score_snapshots(inputs, spend, params, fitters)
    out = run(con, clv(c, scores, params, churn=4.0), ["customer_key"])
    assert len(out) == len(facts) and out.customer_key.is_unique

    # every customer scored on their own, with the same (deterministic) fit
    fitted = fit_models(inputs, params, fitters, spend=spend)
    assert fitted.gamma_gamma is not None
    f = facts.set_index("customer_key").loc[out.customer_key]
    x = pd.Series(f.frequency.to_numpy(dtype=float), index=out.index)
    tx, age = pd.Series(f.recency_days.to_numpy() / 7.0), pd.Series(f.age_days.to_numpy() / 7.0)
    m = out.avg_purchase_value.astype(float)
    assert (m - np.maximum(f.net_monetary.to_numpy(), 0) / f.purchase_days.to_numpy()).abs().max() <= 0.005 + 1e-9
    tm = fitted.transaction
    p_alive = np.asarray(tm.conditional_probability_alive(x.to_numpy(), tx.to_numpy(), age.to_numpy()))
    np.testing.assert_allclose(out.p_alive, p_alive, rtol=1e-9, atol=1e-12)
    e12 = np.asarray(tm.conditional_expected_number_of_purchases_up_to_time(365 / 7.0, x.to_numpy(), tx, age))
    np.testing.assert_allclose(out.expected_purchases_12m, e12, rtol=1e-9, atol=1e-12)
    spend_each = np.asarray(fitted.gamma_gamma.conditional_expected_average_profit(x.to_numpy(), m.to_numpy()))
    np.testing.assert_allclose(out.expected_avg_spend.astype(float), spend_each, atol=0.005 + 1e-9)
    value = fitted.gamma_gamma.customer_lifetime_value(tm, x, tx, age, m, time=12, discount_rate=0.01, freq="W")
    expected = np.round(np.asarray(value, dtype=float) * out.margin_rate.to_numpy(), 2)
    np.testing.assert_allclose(out.clv_model.astype(float), expected, atol=0.0101)
    drop = 1 - annual_survival("bgnbd", tm.params_, x.to_numpy(), age.to_numpy(), 365 / 7.0)
    lifetime = np.minimum(p_alive / drop, params.max_lifetime_years)
    np.testing.assert_allclose(out.lifetime_years_model, lifetime, rtol=1e-9)
    assert out.clv_tier.notna().all()
    assert out.clv_tier.value_counts().to_dict()["high"] == pytest.approx(0.2 * len(out), abs=5)


def test_p_alive_and_expected_purchases_fall_with_age(con, sim):
    c = c360_table(c360_rows(sim, SIM_END), as_of=SIM_END)
    params = ClvParams()
    fitted = fit_models(con.execute(clv_inputs(c)), params, LIFETIMES)
    ages = np.arange(60, 721, 30)
    grid = pd.DataFrame({"frequency": 2, "recency_days": 30, "age_days": ages, "customers": 1})
    scored, _ = score_unique(fitted, grid, params)
    assert (np.diff(scored.p_alive) < 0).all()
    assert (np.diff(scored.expected_purchases_12m) < 0).all()
    assert (np.diff(scored.discounted_purchases) < 0).all()
    assert ((scored.p_alive > 0) & (scored.p_alive < 1)).all()


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("bgnbd", {"r": 0.3, "alpha": 5.0, "a": 0.8, "b": 2.5}),
        ("mbgnbd", {"r": 0.3, "alpha": 5.0, "a": 0.8, "b": 2.5}),
        ("paretonbd", {"r": 0.5, "alpha": 9.0, "s": 0.9, "beta": 40.0}),
    ],
)
def test_annual_survival_matches_monte_carlo(model, params):
    rng = np.random.default_rng(7)
    year, n = 365 / 7.0, 400_000
    for x, age in [(0, 10.0), (3, 30.0), (12, 80.0)]:
        got = annual_survival(model, pd.Series(params), np.array([x]), np.array([age]), year)[0]
        if model == "paretonbd":
            mu = rng.gamma(params["s"], 1.0 / (params["beta"] + age), n)
            want = np.exp(-mu * year).mean()
        else:
            lam = rng.gamma(params["r"] + x, 1.0 / (params["alpha"] + age), n)
            extra = 1 if model == "mbgnbd" else 0
            p = rng.beta(params["a"], params["b"] + x + extra, n)
            want = np.exp(-lam * p * year).mean()
        assert got == pytest.approx(want, abs=0.003)


def test_validation_on_simulated_bgnbd_predicts_the_holdout(con, sim, fitters):
    params = ClvParams(holdout_days=182)
    purchases = purchases_table(sim, [SIM_END])
    inputs = validation_inputs(purchases, params)
    check = validate_snapshots(con.execute(inputs), params, fitters)
    v = run(con, clv_validation(inputs, check, params), ["bucket_order"])
    overall = v[v.frequency_bucket == "all"].iloc[0]
    assert overall.customers == sim.customer_key.nunique()
    assert overall.predicted_total == pytest.approx(overall.actual_total, rel=0.10)
    buckets = v[v.frequency_bucket != "all"]
    assert buckets.customers.sum() == overall.customers
    assert buckets.actual_total.sum() == overall.actual_total
    assert buckets.frequency_bucket.tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    big = buckets[buckets.customers >= 100]
    assert (big.predicted_mean - big.actual_mean).abs().max() < 0.1 + 0.1 * big.actual_mean.max()
    t = run(con, clv_tracking(purchases, check, params), ["week"])
    assert t.week.tolist() == list(range(1, 27))
    assert t.actual_cumulative.iloc[-1] == overall.actual_total
    assert t.predicted_cumulative.iloc[-1] == pytest.approx(overall.predicted_total)
    assert (np.diff(t.actual_cumulative) >= 0).all() and (np.diff(t.predicted_cumulative) > 0).all()
    m = check.models.set_index("parameter").value
    assert m["r"] == pytest.approx(TRUE["r"], rel=0.2) and m["alpha"] == pytest.approx(TRUE["alpha"], rel=0.25)


def test_other_models_score_end_to_end(con, fitters):
    purchases = simulate(n=600, seed=3)
    c = c360_table(c360_rows(purchases, SIM_END), as_of=SIM_END)
    inputs, spend = con.execute(clv_inputs(c)), con.execute(spend_inputs(c))
    for model in ("mbgnbd", "paretonbd"):
        params = ClvParams(model=model)
        scores = score_snapshots(inputs, spend, params, fitters)
        assert set(scores.models.model) == {model, "gamma_gamma"}
        t = scores.triples
        assert t.p_alive.between(0, 1).all() and (t.expected_purchases_12m >= 0).all()
        assert t.lifetime_years_model.between(0, params.max_lifetime_years).all()
        out = con.execute(clv(c, scores, params))
        assert out.model.unique().tolist() == [model] and out.clv_model.notna().all()


def test_gamma_gamma_falls_back_to_own_mean_and_small_snapshots_are_not_fitted(con, sim):
    c = c360_table(c360_rows(sim, SIM_END), as_of=SIM_END)
    inputs, spend = con.execute(clv_inputs(c)), con.execute(spend_inputs(c))
    params = ClvParams(min_repeat_buyers=100_000)
    scores = score_snapshots(inputs, spend, params, LIFETIMES)
    assert set(scores.models.model) == {"bgnbd"}
    out = con.execute(clv(c, scores, params))
    assert (out.expected_avg_spend == out.avg_purchase_value).all()

    params = ClvParams(min_customers=100_000)
    scores = score_snapshots(inputs, spend, params, LIFETIMES)
    assert scores.triples.empty and scores.models.empty
    out = con.execute(clv(c, scores, params, churn=3.0))
    assert out.p_alive.isna().all() and out.clv_tier.isna().all() and out.clv_seed_churn.notna().all()
    with pytest.raises(ValueError, match="min_customers"):
        fit_models(inputs, params, LIFETIMES)


def test_fit_models_takes_one_snapshot(con):
    two = pd.DataFrame(
        {"as_of_date": [AS_OF, dt.date(2025, 7, 31)], "frequency": [0, 1], "recency_days": [0, 3], "age_days": [5, 9]}
    ).assign(customers=50)
    with pytest.raises(ValueError, match="one as_of_date"):
        fit_models(two, ClvParams(), LIFETIMES)


# --- the marts together -----------------------------------------------------------------------------------


def _all_marts(con, c360, purchases, fitters, churn=4.0, version="v1"):
    marts = clv_marts(
        c360=c360,
        purchases=purchases,
        params=ClvParams(holdout_days=182),
        execute=con.execute,
        churn=churn,
        fitters=fitters,
        settings_version=version,
    )
    keys = {
        "clv": ["as_of_date", "customer_key"],
        "models": ["as_of_date", "sample", "model", "parameter"],
        "validation": ["as_of_date", "bucket_order"],
        "tracking": ["as_of_date", "week"],
    }
    return marts, {name: run(con, getattr(marts, name), k) for name, k in keys.items()}


@pytest.fixture(scope="module")
def small_sim() -> pd.DataFrame:
    return simulate(n=300, seed=5)


def test_marts_match_their_schemas(con, small_sim):
    c = c360_table(c360_rows(small_sim, SIM_END), as_of=SIM_END)
    marts, frames = _all_marts(con, c, purchases_table(small_sim, [SIM_END]), LIFETIMES)
    for expr, schema in zip(marts, (CLV, CLV_MODELS, CLV_VALIDATION, CLV_TRACKING), strict=True):
        assert_schema(expr, schema)
    assert set(frames["models"]["sample"]) == {"full", "calibration"}
    assert (frames["clv"].settings_version == "v1").all()
    empty = clv_models(ClvScores.empty())
    assert_schema(empty, CLV_MODELS)
    assert con.execute(empty).empty


def test_shuffled_inputs_give_identical_marts(con, small_sim):
    facts = c360_rows(small_sim, SIM_END)
    _, base = _all_marts(con, c360_table(facts, as_of=SIM_END), purchases_table(small_sim, [SIM_END]), LIFETIMES)
    shuffled_facts = facts.sample(frac=1.0, random_state=11)
    shuffled_purchases = small_sim.sample(frac=1.0, random_state=12)
    _, again = _all_marts(
        con, c360_table(shuffled_facts, as_of=SIM_END), purchases_table(shuffled_purchases, [SIM_END]), LIFETIMES
    )
    for name in base:
        pd.testing.assert_frame_equal(base[name], again[name])


def test_two_snapshots_in_one_call_equal_two_calls(con, small_sim):
    early = dt.date(2024, 9, 30)
    facts = {d: c360_rows(small_sim, d) for d in (early, SIM_END)}
    _, both = _all_marts(
        con,
        c360_table(pd.concat(facts.values(), ignore_index=True)),
        purchases_table(small_sim, [early, SIM_END]),
        LIFETIMES,
    )
    for d in (early, SIM_END):
        _, one = _all_marts(con, c360_table(facts[d], as_of=d), purchases_table(small_sim, [d]), LIFETIMES)
        for name, frame in one.items():
            part = both[name][both[name].as_of_date.dt.date == d].reset_index(drop=True)
            pd.testing.assert_frame_equal(part, frame)


@pytest.mark.parametrize(
    "bad",
    [
        {"model": "bgbb"},
        {"horizon_months": 0},
        {"horizon_months": 1.5},
        {"holdout_days": True},
        {"monthly_discount_rate": -0.01},
        {"annual_discount_rate": 1.0},
        {"penalizer_coef": -1.0},
        {"tier_cutoffs": (0.5, 0.2)},
        {"tier_cutoffs": (0.2, 0.5, 0.8)},
        {"tier_cutoffs": (0.0, 0.5)},
        {"min_customers": 0},
        {"min_repeat_buyers": 0},
        {"time_unit_days": 0.0},
        {"days_per_month": float("inf")},
        {"default_margin_rate": 1.5},
        {"max_lifetime_years": 0.0},
        {"max_frequency_bucket": 0},
    ],
)
def test_bad_params_are_rejected(bad):
    with pytest.raises(ValueError):
        ClvParams(**bad)


def test_params_accept_lists_from_yaml():
    assert ClvParams(tier_cutoffs=[0.1, 0.4]).tier_cutoffs == (0.1, 0.4)


def test_churn_years_must_be_positive(con):
    with pytest.raises(ValueError, match="positive"):
        clv(_seed_c360(), ClvScores.empty(), ClvParams(), churn=0.0)


def test_calibration_fit_on_cdnow_reproduces_the_published_bgnbd(con, fitters):
    """Fader, Hardie & Lee (2005): the 2,357-customer CDNOW sample, 39-week calibration ending
    1997-09-30, weeks, purchase days -> r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4."""
    spec = importlib.util.find_spec("lifetimes")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_sample.txt"
    raw = pd.read_csv(path, sep=r"\s+", header=None, names=["master", "customer", "day", "cds", "dollars"])
    frame = pd.DataFrame(
        {
            "as_of_date": dt.date(1998, 6, 30),
            "customer_key": raw.customer.astype(str),
            "purchase_date": pd.to_datetime(raw.day.astype(str), format="%Y%m%d").dt.date,
            "net_amount": [Decimal(f"{v:.2f}") for v in raw.dollars],
        }
    )
    params = ClvParams(holdout_days=273)
    inputs = con.execute(validation_inputs(ibis.memtable(frame, schema=_PURCHASE_SCHEMA), params))
    assert set(inputs.calibration_end.dt.date) == {dt.date(1997, 9, 30)}
    assert inputs.customers.sum() == 2357
    check = validate_snapshots(inputs, params, fitters)
    got = check.models.set_index("parameter")
    assert got.value.to_dict() == pytest.approx({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, abs=0.002)
    if got.log_likelihood.notna().all():  # lifetimes reports none
        assert got.log_likelihood.iloc[0] == pytest.approx(-9582.4, abs=0.1)
