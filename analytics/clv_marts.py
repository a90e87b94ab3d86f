"""Customer lifetime value (客户终生价值, DOMAIN.md §7): the probabilistic CLV of every buying
customer (BG/NBD, MBG/NBD or Pareto/NBD for purchases and P(alive), Gamma-Gamma for spend),
the seed's deterministic formula beside it, the fitted parameters, and a calibration /
holdout check that says whether the model can be trusted.

Where the work happens. The models are fitted in Python (the fitters of `analytics.clv`,
injected as `ClvFitters` so a test can pass lifetimes' own classes), but only on
*compressed* inputs: the engine reduces customer 360 to the unique (frequency,
recency_days, age_days) triples per as-of date with their customer count (`clv_inputs`),
and to the unique (frequency, mean value) pairs for Gamma-Gamma (`spend_inputs`); the
likelihood is fitted with the counts as weights (same optimum as one row per customer).
The scores of the unique rows go back to the engine as memtables and are joined to the
customers on the same keys (`clv`): there is no per-customer Python.

Population: the buying customers of customer 360 (has_purchased with x, t_x, T known);
prospects have no purchase process to model and get no row.

Inputs (time is in days in the engine; the fitters see days / time_unit_days, weeks by
default, the unit of the published CDNOW results):
- x = frequency (repeat purchase days), t_x = recency_days, T = age_days (customer 360);
- mean transaction value m = max(net_monetary, 0) / purchase_days, in whole cents (the
  360 has no first-purchase value, so the first purchase is included in the mean,
  unlike Fader-Hardie's repeat-only mean; returns net off). Gamma-Gamma is fitted on
  repeat buyers (x > 0) with m > 0; with fewer than min_repeat_buyers of them, or an
  estimate q <= 1 (infinite mean spend), there is no Gamma-Gamma model and
  expected_avg_spend is the customer's own m.
- A snapshot with fewer than min_customers buyers is not fitted: its model columns and
  clv_tier are null, its seed CLVs are still computed.

Model outputs per customer (ClvParams):
- p_alive: P(alive | x, t_x, T); expected_purchases_12m: expected repeat purchase days in
  the next 365 days.
- expected_avg_spend: Gamma-Gamma E[mean spend | x, m] (the population mean for x = 0).
- clv_model = margin_rate x expected_avg_spend x D, the lifetimes formula in margin:
  D = sum_{k=1..horizon_months} (E[X(k M)] - E[X((k-1) M)]) / (1 + monthly_discount_rate)^k
  with M = days_per_month (default 365/12; lifetimes uses 30 for freq='D' and 4.345 weeks
  for 'W'). CLV is linear in the spend, so D is scored per triple and spend per pair.
  margin_rate = gross_margin / net_monetary clipped to [0, 1]; default_margin_rate when
  net_monetary <= 0.
- clv_tier by clv_model within the snapshot, tie-aware: top_share = (customers with a
  strictly larger clv_model) / scored customers; high (高价值客户) if top_share <
  tier_cutoffs[0], medium (中价值客户) if < tier_cutoffs[1], else low (低价值客户).

Seed formula (DOMAIN §7): V = sum_{t=1..T} (Q_t - C_t)(1 + i)^-t with i =
annual_discount_rate and constant yearly amounts:
- Q = gross_margin_12m (the margin of the last 365 days);
- C = marketing_cost_12m - acquisition cost booked in the window (tenure_days < 365:
  acquisition is sunk and does not recur) + service cost of the window
  (gross_margin_12m - marketing_cost_12m - profit_12m); so Q - C = profit_12m + that
  one-off acquisition cost.
- Fractional T: whole years n = floor(T) in full, the remaining fraction f = T - n as f x
  (Q - C) discounted as year n + 1: V = (Q - C) [(1 - (1 + i)^-n) / i + f (1 + i)^-(n+1)]
  (T = 2.5: 80/1.1 + 80/1.21 + 0.5 x 80/1.331).
- clv_seed_churn: T = group lifecycle (1 / annual churn rate) of the newest complete
  period's 'all' row of marts.churn with customers at its start; max_lifetime_years
  when nobody was lost.
- clv_seed_model: T = P(alive) / q, the model's expected remaining lifetime in years: q is
  the probability that a customer alive today drops out within the next 365 days (Y),
  from the posterior of the customer's rates given alive:
  BG/NBD 1 - 2F1(r + x, a; a + b + x; -Y / (alpha + T)), MBG/NBD the same with a + b + x + 1
  (the first purchase can end the relationship too), Pareto/NBD 1 - ((beta + T) / (beta +
  T + Y))^s; 1 / q is the mean of a geometric lifetime in years (as 1 / churn rate is for
  the group). In BG/NBD a customer without repeat purchases cannot have dropped out
  (P(alive) = 1), so one-time buyers get long model lifetimes: prefer mbgnbd or
  paretonbd when they dominate.
- Both T are capped at max_lifetime_years.

Validation (marts.clv_validation, marts.clv_tracking): per as-of date the calibration
period ends holdout_days before it; customers with a first purchase on or before its end
are summarised at that date (x, t_x, T), the model is refitted on them and predicts their
repeat purchase days in the holdout. Rows per calibration frequency 0, 1, ..,
max_frequency_bucket+ and 'all': customers, predicted and actual mean and total, MAE and
RMSE over customers. The tracking series is cumulative predicted vs actual holdout
purchases of the same customers per week (the last week may be partial).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy.special import hyp2f1

from analytics.portable import cents
from analytics.schema import Col, MartSchema, as_of_col, version_col

# ruff: noqa: E501  (column descriptions are documentation; keep them on one line)

#: Transaction models (ClvParams.model) and the spend model, with their Chinese names.
MODEL_ZH: dict[str, str] = {
    "bgnbd": "BG/NBD 模型",
    "mbgnbd": "修正 BG/NBD 模型",
    "paretonbd": "Pareto/NBD 模型",
    "gamma_gamma": "Gamma-Gamma 消费金额模型",
}
TRANSACTION_MODELS: tuple[str, ...] = ("bgnbd", "mbgnbd", "paretonbd")

CLV_TIER_ZH: dict[str, str] = {"high": "高价值客户", "medium": "中价值客户", "low": "低价值客户"}

#: Which data a fitted model saw: everything up to the as-of date, or the calibration period.
SAMPLE_ZH: dict[str, str] = {"full": "全部数据", "calibration": "校准期"}

YEAR_DAYS = 365
#: Step of the holdout tracking series, days.
TRACKING_STEP_DAYS = 7
_DEC = "decimal(18, 2)"
_M = "DECIMAL(18,2)"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ClvParams:
    """Which model, horizons, discounting, tiers and validation split the CLV marts use."""

    #: Transaction model: "bgnbd" (BG/NBD), "mbgnbd" (modified BG/NBD) or "paretonbd" (Pareto/NBD).
    model: str = "bgnbd"
    #: Model CLV horizon in months (lifetimes' `time`).
    horizon_months: int = 12
    #: Discount rate per month for the model CLV (lifetimes' `discount_rate`).
    monthly_discount_rate: float = 0.01
    #: Discount rate per year i of the seed formula V = sum (Q_t - C_t)(1 + i)^-t.
    annual_discount_rate: float = 0.10
    #: L2 penalty on the model parameters (lifetimes' penalizer_coef), for the transaction and spend models.
    penalizer_coef: float = 0.0
    #: Cumulative top shares of scored customers ending the high and medium CLV tiers (rest: low).
    tier_cutoffs: tuple[float, float] = (0.2, 0.5)
    #: Validation: the calibration period ends this many days before the as-of date.
    holdout_days: int = 90
    #: Snapshots (or calibration periods) with fewer buying customers are not fitted.
    min_customers: int = 20
    #: Gamma-Gamma needs at least this many repeat buyers with a positive mean value.
    min_repeat_buyers: int = 30
    #: The fitters see time in units of this many days (7: weeks, as in the CDNOW literature).
    time_unit_days: float = 7.0
    #: Days per month of the CLV horizon and discounting (365 / 12; lifetimes' freq='D' uses 30).
    days_per_month: float = YEAR_DAYS / 12
    #: Margin rate of customers whose net_monetary is not positive (own rate: gross_margin / net_monetary).
    default_margin_rate: float = 0.25
    #: Cap of both seed-formula lifetimes T, years (a churn rate of 0 means this cap).
    max_lifetime_years: float = 10.0
    #: Validation rows per calibration frequency 0 .. this, the last one meaning "this or more".
    max_frequency_bucket: int = 7

    def __post_init__(self) -> None:
        if self.model not in TRANSACTION_MODELS:
            raise ValueError(f"model must be one of {list(TRANSACTION_MODELS)}, got {self.model!r}")
        for name in ("horizon_months", "holdout_days", "min_customers", "min_repeat_buyers", "max_frequency_bucket"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("monthly_discount_rate", "annual_discount_rate"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} is a rate per period and must lie in [0, 1), got {getattr(self, name)!r}")
        if self.penalizer_coef < 0:
            raise ValueError(f"penalizer_coef must not be negative, got {self.penalizer_coef!r}")
        cutoffs = tuple(self.tier_cutoffs)
        object.__setattr__(self, "tier_cutoffs", cutoffs)
        if len(cutoffs) != 2 or not 0 < cutoffs[0] < cutoffs[1] < 1:
            raise ValueError(
                f"tier_cutoffs must be two strictly increasing cumulative shares in (0, 1) (high, medium), got {cutoffs!r}"
            )
        for name in ("time_unit_days", "days_per_month", "max_lifetime_years"):
            value = getattr(self, name)
            if not value > 0 or math.isinf(value):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not 0 <= self.default_margin_rate <= 1:
            raise ValueError(f"default_margin_rate is a share and must lie in [0, 1], got {self.default_margin_rate!r}")


# --- schemas ----------------------------------------------------------------------------------

CLV = MartSchema(
    table="marts.clv",
    description="Customer lifetime value (客户终生价值): model CLV (purchase model + Gamma-Gamma, discounted margin) and the seed formula with lifetime from churn and from the model, per buying customer and as-of date.",
    key=("customer_key",),
    columns=(
        as_of_col(),
        Col("customer_key", "VARCHAR", "Pseudonymous customer key."),
        Col("frequency", "BIGINT", "Repeat purchase days x (customer 360)."),
        Col("recency_days", "BIGINT", "Days from the first to the last purchase day t_x."),
        Col("age_days", "BIGINT", "Days from the first purchase day to as_of_date T."),
        Col(
            "avg_purchase_value",
            _M,
            "Gamma-Gamma input m, CNY: the mean value of the repeat purchase days (avg_repeat_value); one-time buyers: max(net_monetary, 0) / purchase_days.",
        ),
        Col(
            "p_alive",
            "DOUBLE",
            "P(alive | x, t_x, T) under the transaction model; null when the snapshot was not fitted.",
        ),
        Col("expected_purchases_12m", "DOUBLE", "Expected repeat purchase days in the next 365 days."),
        Col(
            "expected_avg_spend",
            _M,
            "Gamma-Gamma expected spend per purchase day (population mean for x = 0; own mean value without a Gamma-Gamma model), CNY.",
        ),
        Col(
            "margin_rate",
            "DOUBLE",
            "gross_margin / net_monetary clipped to [0, 1]; default_margin_rate when net_monetary <= 0.",
        ),
        Col(
            "clv_model",
            _M,
            "Model CLV: margin_rate x expected_avg_spend x expected purchases per month over horizon_months, discounted monthly, CNY.",
        ),
        Col("annual_margin", _M, "Seed Q: gross_margin_12m, CNY."),
        Col(
            "annual_cost",
            _M,
            "Seed C: marketing_cost_12m without a one-off acquisition cost in the window + service cost of the window, CNY.",
        ),
        Col(
            "lifetime_years_churn",
            "DOUBLE",
            "Seed T from churn: group lifecycle 1 / annual churn rate (marts.churn, newest complete period, 'all'), capped; null without churn input.",
        ),
        Col(
            "lifetime_years_model",
            "DOUBLE",
            "Seed T from the model: P(alive) / P(drop within a year | alive), capped at max_lifetime_years.",
        ),
        Col(
            "clv_seed_churn",
            _M,
            "Seed CLV sum_{t<=T} (Q - C)(1 + i)^-t with T = lifetime_years_churn (fractional last year pro rata), CNY.",
        ),
        Col("clv_seed_model", _M, "Seed CLV with T = lifetime_years_model, CNY."),
        Col("clv_rank", "BIGINT", "Rank by clv_model within the snapshot, 1 = highest; ties share the best rank."),
        Col("top_share", "DOUBLE", "Share of scored customers with a strictly larger clv_model (0 = top)."),
        Col(
            "clv_tier",
            "VARCHAR",
            "high (top_share < 20 %), medium (< 50 %), low (rest); cut-offs are settings; null when not scored.",
        ),
        Col("clv_tier_zh", "VARCHAR", "CLV tier in Chinese: 高价值客户, 中价值客户, 低价值客户."),
        Col("model", "VARCHAR", "Transaction model: bgnbd, mbgnbd or paretonbd."),
        Col("model_zh", "VARCHAR", "Transaction model in Chinese: BG/NBD 模型, 修正 BG/NBD 模型, Pareto/NBD 模型."),
        version_col(),
    ),
)

CLV_MODELS = MartSchema(
    table="marts.clv_models",
    description="Fitted CLV model parameters per as-of date: transaction model and Gamma-Gamma on all data, transaction model on the calibration period.",
    key=("model", "sample", "parameter"),
    columns=(
        as_of_col(),
        Col("model", "VARCHAR", "bgnbd, mbgnbd, paretonbd or gamma_gamma."),
        Col("model_zh", "VARCHAR", "Model in Chinese."),
        Col("sample", "VARCHAR", "full (data up to as_of_date) or calibration (up to as_of_date - holdout_days)."),
        Col("sample_zh", "VARCHAR", "Sample in Chinese: 全部数据, 校准期."),
        Col(
            "parameter",
            "VARCHAR",
            "Parameter name as the fitter reports it (r, alpha, a, b / r, alpha, s, beta / p, q, v).",
        ),
        Col("value", "DOUBLE", "Estimate; rates (alpha, beta) are per time_unit_days."),
        Col("standard_error", "DOUBLE", "Standard error the fitter reports; null if it reports none."),
        Col("log_likelihood", "DOUBLE", "Maximised log-likelihood of the fit; null if the fitter reports none."),
        Col("converged", "BOOLEAN", "The optimiser reported convergence; null if the fitter reports nothing."),
        Col("n_customers", "BIGINT", "Customers the model was fitted on (Gamma-Gamma: repeat buyers with m > 0)."),
        Col("n_unique_rows", "BIGINT", "Unique weighted input rows the likelihood was evaluated on."),
        Col("time_unit_days", "DOUBLE", "Days per model time unit."),
        version_col(),
    ),
)

CLV_VALIDATION = MartSchema(
    table="marts.clv_validation",
    description="CLV model check: fitted on the calibration period, predicted vs actual repeat purchase days in the holdout, per calibration frequency and overall.",
    key=("frequency_bucket",),
    columns=(
        as_of_col(),
        Col("calibration_end", "DATE", "Last day of the calibration period (as_of_date - holdout_days)."),
        Col("holdout_days", "BIGINT", "Days in the holdout (calibration_end, as_of_date]."),
        Col(
            "frequency_bucket",
            "VARCHAR",
            "Repeat purchase days in the calibration period: '0' .. 'k+' (k = max_frequency_bucket), or 'all'.",
        ),
        Col("frequency_bucket_zh", "VARCHAR", "Bucket in Chinese: '0次' .. 'k次及以上', '全部'."),
        Col("bucket_order", "BIGINT", "0 .. k for the buckets, k + 1 for 'all' (plot order)."),
        Col(
            "customers", "BIGINT", "Calibration customers (first purchase on or before calibration_end) in the bucket."
        ),
        Col("predicted_mean", "DOUBLE", "Mean predicted repeat purchase days in the holdout."),
        Col("actual_mean", "DOUBLE", "Mean actual purchase days in the holdout."),
        Col("predicted_total", "DOUBLE", "Sum of predicted holdout purchase days."),
        Col("actual_total", "BIGINT", "Sum of actual holdout purchase days."),
        Col("mae", "DOUBLE", "Mean absolute error over customers."),
        Col("rmse", "DOUBLE", "Root mean squared error over customers."),
        Col("model", "VARCHAR", "Transaction model."),
        Col("model_zh", "VARCHAR", "Transaction model in Chinese."),
        version_col(),
    ),
)

CLV_TRACKING = MartSchema(
    table="marts.clv_tracking",
    description="CLV model check: cumulative predicted vs actual repeat purchase days of the calibration customers, per week of the holdout.",
    key=("week",),
    columns=(
        as_of_col(),
        Col("calibration_end", "DATE", "Last day of the calibration period."),
        Col("week", "BIGINT", "Week of the holdout, 1 = the first seven days after calibration_end."),
        Col("holdout_day", "BIGINT", "Days since calibration_end at the week's end: min(7 x week, holdout_days)."),
        Col("period_end", "DATE", "calibration_end + holdout_day."),
        Col("predicted_cumulative", "DOUBLE", "Expected repeat purchase days up to period_end, summed over customers."),
        Col(
            "actual_cumulative",
            "BIGINT",
            "Actual purchase days in (calibration_end, period_end], summed over customers.",
        ),
        Col("model", "VARCHAR", "Transaction model."),
        Col("model_zh", "VARCHAR", "Transaction model in Chinese."),
        version_col(),
    ),
)


# --- fitters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClvFitters:
    """The fitter classes (lifetimes-compatible API: `cls(penalizer_coef=...)`, `fit`, `params_`,
    conditional expectations) by model name; injected so this module never depends on one
    implementation."""

    bgnbd: type
    mbgnbd: type
    paretonbd: type
    gamma_gamma: type

    def transaction(self, model: str) -> type:
        return getattr(self, model)


def default_fitters() -> ClvFitters:
    """The project's fitters from `analytics.clv` (imported here, not at module import)."""
    from analytics.clv import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

    return ClvFitters(
        bgnbd=BetaGeoFitter, mbgnbd=ModifiedBetaGeoFitter, paretonbd=ParetoNBDFitter, gamma_gamma=GammaGammaFitter
    )


# --- engine: compression ----------------------------------------------------------------------

_TRIPLE = ["as_of_date", "frequency", "recency_days", "age_days"]
_PAIR = ["as_of_date", "frequency", "mean_value_cents"]


def _buyers(c360: ir.Table) -> ir.Table:
    """Customers with a purchase history the models can read."""
    return c360.filter(
        c360.has_purchased.fill_null(False)
        & c360.frequency.notnull()
        & c360.recency_days.notnull()
        & c360.age_days.notnull()
    )


def _mean_value_cents(t: ir.Table) -> ir.IntegerValue:
    """Gamma-Gamma's m in whole cents (an exact join key for the spend scores): the mean value
    of the repeat purchase days (customer 360 avg_repeat_value), as in Fader-Hardie-Lee, where
    the first transaction is left out; for one-time buyers (whose expected spend does not
    depend on m) max(net_monetary, 0) / purchase_days."""
    net = ibis.greatest(t.net_monetary.cast("float64").fill_null(0.0), 0.0)
    days = t.purchase_days.cast("float64")
    fallback = ibis.ifelse(days > 0, (net * 100.0 / days).round(), ibis.null("float64"))
    repeat = (t.avg_repeat_value.cast("float64") * 100.0).round()
    use = (t.avg_repeat_value.fill_null(0) > 0) & (t.frequency > 0)
    return ibis.ifelse(use, repeat, fallback).cast("int64")


def clv_inputs(c360: ir.Table) -> ir.Table:
    """Unique (as_of_date, frequency, recency_days, age_days) of the buying customers with their count."""
    b = _buyers(c360)
    b = b.select(
        as_of_date=b.as_of_date,
        frequency=b.frequency.cast("int64"),
        recency_days=b.recency_days.cast("int64"),
        age_days=b.age_days.cast("int64"),
    )
    return b.group_by(_TRIPLE).aggregate(customers=b.count().cast("int64"))


def spend_inputs(c360: ir.Table) -> ir.Table:
    """Unique (as_of_date, frequency, mean_value_cents) of the buying customers with their count:
    the Gamma-Gamma fitting and scoring rows (fitting uses frequency > 0 and a positive value)."""
    b = _buyers(c360)
    b = b.filter(b.purchase_days > 0)
    b = b.select(as_of_date=b.as_of_date, frequency=b.frequency.cast("int64"), mean_value_cents=_mean_value_cents(b))
    return b.group_by(_PAIR).aggregate(customers=b.count().cast("int64"))


def _known_days(purchases: ir.Table) -> ir.Table:
    p = purchases.filter(purchases.purchase_date <= purchases.as_of_date)
    return p.select("as_of_date", "customer_key", "purchase_date").distinct()


def _calibration_end(as_of: ir.DateValue, params: ClvParams) -> ir.DateValue:
    return (as_of - ibis.interval(days=params.holdout_days)).cast("date")


def validation_inputs(purchases: ir.Table, params: ClvParams) -> ir.Table:
    """Calibration summaries of the customers with a first purchase on or before calibration_end,
    compressed to unique (as_of_date, calibration_end, frequency, recency_days, age_days,
    holdout_purchases) with their count. `purchases` has (as_of_date, customer_key,
    purchase_date, net_amount) as customer360.purchase_days makes it."""
    p = _known_days(purchases)
    p = p.mutate(_cal=p.purchase_date <= _calibration_end(p.as_of_date, params))
    per = p.group_by(["as_of_date", "customer_key"]).aggregate(
        _first=p.purchase_date.min(),
        _last=p.purchase_date.max(where=p._cal),
        _days=p.purchase_date.nunique(where=p._cal),
        holdout_purchases=p.purchase_date.nunique(where=~p._cal),
    )
    per = per.mutate(calibration_end=_calibration_end(per.as_of_date, params))
    per = per.filter(per._first <= per.calibration_end)
    per = per.select(
        as_of_date=per.as_of_date,
        calibration_end=per.calibration_end,
        frequency=(per._days - 1).cast("int64"),
        recency_days=per._last.delta(per._first, unit="day").cast("int64"),
        age_days=per.calibration_end.delta(per._first, unit="day").cast("int64"),
        holdout_purchases=per.holdout_purchases.cast("int64"),
    )
    return per.group_by(per.columns).aggregate(customers=per.count().cast("int64"))


# --- Python: fitting and scoring unique rows ------------------------------------------------------


@dataclass(frozen=True)
class FittedModels:
    """The models of one snapshot and what they were fitted on."""

    model: str
    transaction: Any
    gamma_gamma: Any | None
    n_customers: int
    n_unique_rows: int
    n_repeat_buyers: int = 0
    n_spend_rows: int = 0


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows in key order: the optimiser then sees the same sums whatever order the engine returned."""
    return frame.sort_values(keys, kind="mergesort").reset_index(drop=True)


def _one_snapshot(frame: pd.DataFrame) -> None:
    if "as_of_date" in frame and frame["as_of_date"].nunique() > 1:
        raise ValueError("fit_models and score_unique take the rows of one as_of_date; use score_snapshots")


def fit_models(
    inputs: pd.DataFrame, params: ClvParams, fitters: ClvFitters, *, spend: pd.DataFrame | None = None
) -> FittedModels:
    """Fit the transaction model on the unique triples of one snapshot (`clv_inputs` rows,
    weights = customers) and, when `spend` rows are given and enough repeat buyers have a
    positive mean value, Gamma-Gamma on the unique (frequency, mean value) pairs."""
    _one_snapshot(inputs)
    rows = _sorted(inputs, ["frequency", "recency_days", "age_days"])
    n = int(rows.customers.sum())
    if n < params.min_customers:
        raise ValueError(f"{n} customers is below min_customers={params.min_customers}: nothing to fit")
    u = params.time_unit_days
    tm = fitters.transaction(params.model)(penalizer_coef=params.penalizer_coef)
    tm.fit(
        rows.frequency.to_numpy(dtype="int64"),
        rows.recency_days.to_numpy(dtype="float64") / u,
        rows.age_days.to_numpy(dtype="float64") / u,
        weights=rows.customers.to_numpy(dtype="int64"),
    )
    gg, n_repeat, n_pairs = None, 0, 0
    if spend is not None:
        _one_snapshot(spend)
        s = _sorted(spend, ["frequency", "mean_value_cents"])
        s = s[(s.frequency > 0) & (s.mean_value_cents > 0)]
        n_repeat, n_pairs = int(s.customers.sum()), len(s)
        if n_repeat >= params.min_repeat_buyers:
            gg = fitters.gamma_gamma(penalizer_coef=params.penalizer_coef)
            gg.fit(
                s.frequency.to_numpy(dtype="int64"),
                s.mean_value_cents.to_numpy(dtype="float64") / 100.0,
                weights=s.customers.to_numpy(dtype="int64"),
            )
            if not float(gg.params_["q"]) > 1:  # q <= 1: the spend distribution has no mean
                gg = None
    return FittedModels(params.model, tm, gg, n, len(rows), n_repeat, n_pairs)


def annual_survival(
    model: str, fitted_params: pd.Series, frequency: np.ndarray, age: np.ndarray, year: float
) -> np.ndarray:
    """P(still alive after `year` more time units | alive now, x, T) from the posterior of the
    customer's rates given alive (module docstring); `age` and `year` in model time units."""
    x = np.asarray(frequency, dtype="float64")
    age = np.asarray(age, dtype="float64")
    if model == "paretonbd":
        s, beta = float(fitted_params["s"]), float(fitted_params["beta"])
        return ((beta + age) / (beta + age + year)) ** s
    r, alpha, a, b = (float(fitted_params[k]) for k in ("r", "alpha", "a", "b"))
    c = year / (alpha + age)
    cc = a + b + x + (1.0 if model == "mbgnbd" else 0.0)
    # E[(1 + c p)^-(r + x)] over p ~ Beta(a, cc - a) = 2F1(r + x, a; cc; -c); Pfaff's transformation
    # keeps the argument in (0, 1), where the series is stable.
    return (1.0 + c) ** -a * hyp2f1(cc - r - x, a, cc, c / (1.0 + c))


def seed_annuity_factor(years: float, rate: float) -> float:
    """sum_{t=1..floor(T)} (1 + i)^-t + (T - floor(T)) (1 + i)^-(floor(T) + 1): the seed formula
    for Q - C = 1 (the engine computes the same expression)."""
    n = math.floor(years)
    frac = years - n
    if rate == 0:
        return float(years)
    v = 1.0 / (1.0 + rate)
    return (1.0 - v**n) / rate + frac * v ** (n + 1)


def _expected(tm: Any, t: float, x: np.ndarray, tx: np.ndarray, age: np.ndarray) -> np.ndarray:
    return np.asarray(tm.conditional_expected_number_of_purchases_up_to_time(t, x, tx, age), dtype="float64")


def score_unique(
    fitted: FittedModels, inputs: pd.DataFrame, params: ClvParams, *, spend: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Scores of unique rows of one snapshot.

    Triples get p_alive, expected_purchases_12m, discounted_purchases (D of the module
    docstring: the model CLV per unit of margin per purchase) and lifetime_years_model;
    spend pairs get expected_avg_spend. Returns the input frames with these columns added."""
    _one_snapshot(inputs)
    u = params.time_unit_days
    tm = fitted.transaction
    rows = _sorted(inputs, ["frequency", "recency_days", "age_days"])
    x = rows.frequency.to_numpy(dtype="float64")
    tx = rows.recency_days.to_numpy(dtype="float64") / u
    age = rows.age_days.to_numpy(dtype="float64") / u
    p_alive = np.asarray(tm.conditional_probability_alive(x, tx, age), dtype="float64").reshape(-1)
    month = params.days_per_month / u
    cumulative = [np.zeros(len(rows))] + [
        _expected(tm, k * month, x, tx, age) for k in range(1, params.horizon_months + 1)
    ]
    discounted = sum(
        (cumulative[k] - cumulative[k - 1]) / (1.0 + params.monthly_discount_rate) ** k
        for k in range(1, params.horizon_months + 1)
    )
    drop = 1.0 - annual_survival(fitted.model, tm.params_, x, age, YEAR_DAYS / u)
    cap = params.max_lifetime_years
    with np.errstate(divide="ignore", invalid="ignore"):
        lifetime = np.where(drop > 0, np.minimum(p_alive / drop, cap), np.where(np.isnan(drop), np.nan, cap))
    triples = rows.assign(
        p_alive=p_alive,
        expected_purchases_12m=_expected(tm, YEAR_DAYS / u, x, tx, age),
        discounted_purchases=np.asarray(discounted, dtype="float64"),
        lifetime_years_model=lifetime.astype("float64"),
    )
    pairs = None
    if spend is not None:
        _one_snapshot(spend)
        pairs = _sorted(spend, ["frequency", "mean_value_cents"])
        m = pairs.mean_value_cents.to_numpy(dtype="float64") / 100.0
        if fitted.gamma_gamma is None:
            value = m
        else:
            f = pairs.frequency.to_numpy(dtype="float64")
            value = np.asarray(fitted.gamma_gamma.conditional_expected_average_profit(f, m), dtype="float64")
        pairs = pairs.assign(expected_avg_spend=value)
    return triples, pairs


def _params_rows(fitter: Any, *, model: str, sample: str, n_customers: int, n_rows: int, unit: float) -> list[dict]:
    values = fitter.params_
    errors = getattr(fitter, "standard_errors_", None)
    ll = getattr(fitter, "log_likelihood_", None)
    converged = getattr(fitter, "converged_", None)
    return [
        {
            "model": model,
            "sample": sample,
            "parameter": str(name),
            "value": float(values[name]),
            "standard_error": None if errors is None or name not in errors.index else float(errors[name]),
            "log_likelihood": None if ll is None else float(ll),
            "converged": None if converged is None else bool(converged),
            "n_customers": n_customers,
            "n_unique_rows": n_rows,
            "time_unit_days": float(unit),
        }
        for name in values.index
    ]


def model_rows(fitted: FittedModels, params: ClvParams, *, sample: str = "full") -> list[dict]:
    """CLV_MODELS rows (without as_of_date and the label/version columns) of one snapshot's models."""
    rows = _params_rows(
        fitted.transaction,
        model=fitted.model,
        sample=sample,
        n_customers=fitted.n_customers,
        n_rows=fitted.n_unique_rows,
        unit=params.time_unit_days,
    )
    if fitted.gamma_gamma is not None:
        rows += _params_rows(
            fitted.gamma_gamma,
            model="gamma_gamma",
            sample=sample,
            n_customers=fitted.n_repeat_buyers,
            n_rows=fitted.n_spend_rows,
            unit=params.time_unit_days,
        )
    return rows


_TRIPLE_SCORES = {
    "as_of_date": "date",
    "frequency": "int64",
    "recency_days": "int64",
    "age_days": "int64",
    "p_alive": "float64",
    "expected_purchases_12m": "float64",
    "discounted_purchases": "float64",
    "lifetime_years_model": "float64",
}
_PAIR_SCORES = {
    "as_of_date": "date",
    "frequency": "int64",
    "mean_value_cents": "int64",
    "expected_avg_spend": "float64",
}
_MODEL_ROWS = {
    "as_of_date": "date",
    "model": "string",
    "sample": "string",
    "parameter": "string",
    "value": "float64",
    "standard_error": "float64",
    "log_likelihood": "float64",
    "converged": "boolean",
    "n_customers": "int64",
    "n_unique_rows": "int64",
    "time_unit_days": "float64",
}
_PREDICTIONS = {
    "as_of_date": "date",
    "frequency": "int64",
    "recency_days": "int64",
    "age_days": "int64",
    "predicted_holdout": "float64",
}
_TRACK = {"as_of_date": "date", "week": "int64", "holdout_day": "int64", "predicted_cumulative": "float64"}


def _frame(parts: Iterable[pd.DataFrame], columns: Iterable[str]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    columns = list(columns)
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in columns})
    return pd.concat([p[columns] for p in parts], ignore_index=True)


def _memtable(frame: pd.DataFrame, schema: dict[str, str]) -> ir.Table:
    frame = frame[list(schema)].copy()
    for name, dtype in schema.items():
        if dtype == "date":
            frame[name] = pd.to_datetime(frame[name]).dt.date
    return ibis.memtable(frame, schema=schema)


@dataclass(frozen=True)
class ClvScores:
    """Scored unique rows of every fitted snapshot, ready to be joined back in the engine."""

    #: as_of_date, frequency, recency_days, age_days, p_alive, expected_purchases_12m,
    #: discounted_purchases, lifetime_years_model.
    triples: pd.DataFrame
    #: as_of_date, frequency, mean_value_cents, expected_avg_spend.
    spend: pd.DataFrame
    #: CLV_MODELS rows without model_zh, sample_zh and settings_version.
    models: pd.DataFrame

    @classmethod
    def empty(cls) -> ClvScores:
        """No fitted snapshot: the CLV mart then has only the seed columns."""
        return cls(_frame([], _TRIPLE_SCORES), _frame([], _PAIR_SCORES), _frame([], _MODEL_ROWS))

    def triples_table(self) -> ir.Table:
        return _memtable(self.triples, _TRIPLE_SCORES)

    def spend_table(self) -> ir.Table:
        return _memtable(self.spend, _PAIR_SCORES)


def score_snapshots(
    inputs: pd.DataFrame, spend: pd.DataFrame, params: ClvParams, fitters: ClvFitters | None = None
) -> ClvScores:
    """Fit and score every as-of date of executed `clv_inputs` / `spend_inputs` rows; snapshots
    with fewer than min_customers buyers are left out (their customers get null model columns)."""
    fitters = fitters or default_fitters()
    triples, pairs, models = [], [], []
    for as_of, rows in inputs.groupby("as_of_date", sort=True):
        if rows.customers.sum() < params.min_customers:
            continue
        s = spend[spend.as_of_date == as_of]
        fitted = fit_models(rows, params, fitters, spend=s)
        t, p = score_unique(fitted, rows, params, spend=s)
        triples.append(t)
        pairs.append(p)
        models.append(pd.DataFrame(model_rows(fitted, params)).assign(as_of_date=as_of))
    return ClvScores(_frame(triples, _TRIPLE_SCORES), _frame(pairs, _PAIR_SCORES), _frame(models, _MODEL_ROWS))


@dataclass(frozen=True)
class ValidationScores:
    """Calibration fits of every snapshot: predicted holdout purchases per unique calibration
    triple, the predicted cumulative tracking series, and the fitted parameters."""

    #: as_of_date, frequency, recency_days, age_days, predicted_holdout.
    predictions: pd.DataFrame
    #: as_of_date, week, holdout_day, predicted_cumulative.
    tracking: pd.DataFrame
    #: CLV_MODELS rows (sample 'calibration') without the label/version columns.
    models: pd.DataFrame


def validate_snapshots(inputs: pd.DataFrame, params: ClvParams, fitters: ClvFitters | None = None) -> ValidationScores:
    """Fit on each snapshot's calibration summaries (executed `validation_inputs` rows) and
    predict the holdout; snapshots with fewer than min_customers calibration customers are left out."""
    fitters = fitters or default_fitters()
    keys = ["frequency", "recency_days", "age_days"]
    u, h = params.time_unit_days, params.holdout_days
    preds, tracks, models = [], [], []
    for as_of, rows in inputs.groupby("as_of_date", sort=True):
        triples = rows.groupby(keys, as_index=False)["customers"].sum()
        if triples.customers.sum() < params.min_customers:
            continue
        fitted = fit_models(triples, params, fitters)
        t = _sorted(triples, keys)
        x = t.frequency.to_numpy(dtype="float64")
        tx, age = t.recency_days.to_numpy(dtype="float64") / u, t.age_days.to_numpy(dtype="float64") / u
        n = t.customers.to_numpy(dtype="float64")
        preds.append(t.assign(as_of_date=as_of, predicted_holdout=_expected(fitted.transaction, h / u, x, tx, age)))
        weeks = np.arange(1, -(-h // TRACKING_STEP_DAYS) + 1)
        days = np.minimum(weeks * TRACKING_STEP_DAYS, h)
        cum = [float(np.dot(n, _expected(fitted.transaction, d / u, x, tx, age))) for d in days]
        tracks.append(
            pd.DataFrame({"as_of_date": as_of, "week": weeks, "holdout_day": days, "predicted_cumulative": cum})
        )
        models.append(pd.DataFrame(model_rows(fitted, params, sample="calibration")).assign(as_of_date=as_of))
    return ValidationScores(_frame(preds, _PREDICTIONS), _frame(tracks, _TRACK), _frame(models, _MODEL_ROWS))


# --- engine: the marts ------------------------------------------------------------------------------


def _version(settings_version: str) -> ir.StringValue:
    return ibis.literal(settings_version, type="string")


def _dec(value: ir.NumericValue) -> ir.DecimalValue:
    return cents(value)


def _annuity(years: ir.FloatingValue, rate: float) -> ir.FloatingValue:
    """seed_annuity_factor as an expression (null years stay null)."""
    if rate == 0:
        return years
    n = years.floor().cast("float64")
    v = ibis.literal(1.0 / (1.0 + rate), type="float64")
    return (1.0 - v**n) / rate + (years - n) * v ** (n + 1.0)


def churn_lifecycle_years(churn: ir.Table, params: ClvParams) -> ir.Table:
    """(as_of_date, lifetime_years_churn) from marts.churn rows: the newest complete period's
    'all' row with customers at its start; 1 / annual_churn_rate capped at max_lifetime_years,
    the cap when nobody was lost."""
    c = churn.filter((churn.cohort == "all") & (churn.customers_at_start > 0) & churn.annual_churn_rate.notnull())
    newest = ibis.row_number().over(group_by=c.as_of_date, order_by=[c.period_end.desc(), c.period.desc()])
    c = c.mutate(_n=newest).filter(lambda t: t._n == 0)
    cap = params.max_lifetime_years
    rate = c.annual_churn_rate.cast("float64")
    years = ibis.ifelse(rate > 0, ibis.least(1.0 / rate, cap), cap)
    return c.select(as_of_date=c.as_of_date, lifetime_years_churn=years.cast("float64"))


def clv(
    c360: ir.Table,
    scores: ClvScores,
    params: ClvParams,
    *,
    churn: ir.Table | float | None = None,
    settings_version: str = "",
) -> ir.Table:
    """The CLV mart: every buying customer of `c360` with the scores of their unique rows joined
    back, the seed formula with both lifetimes and the CLV tier.

    `churn` is marts.churn (its newest complete 'all' row per as-of date gives the group
    lifecycle), or a number of years applied to every snapshot, or None (no churn-based seed)."""
    b = _buyers(c360)
    b = b.select(
        as_of_date=b.as_of_date,
        customer_key=b.customer_key,
        frequency=b.frequency.cast("int64"),
        recency_days=b.recency_days.cast("int64"),
        age_days=b.age_days.cast("int64"),
        mean_value_cents=_mean_value_cents(b),
        net_monetary=b.net_monetary.cast("float64"),
        gross_margin=b.gross_margin.cast("float64"),
        q=b.gross_margin_12m.cast(_DEC).fill_null(ibis.literal(0, type=_DEC)),
        mkt=b.marketing_cost_12m.cast(_DEC).fill_null(ibis.literal(0, type=_DEC)),
        profit_12m=b.profit_12m.cast(_DEC).fill_null(ibis.literal(0, type=_DEC)),
        acq_new=ibis.ifelse(
            b.tenure_days.fill_null(YEAR_DAYS) < YEAR_DAYS,
            b.acquisition_cost.cast(_DEC).fill_null(ibis.literal(0, type=_DEC)),
            ibis.literal(0, type=_DEC),
        ),
    )
    tri = scores.triples_table()
    j = b.left_join(tri, _TRIPLE).select(b, *[tri[c] for c in list(_TRIPLE_SCORES)[4:]])
    sp = scores.spend_table()
    j = j.left_join(sp, _PAIR).select(j, sp.expected_avg_spend)
    if isinstance(churn, ir.Table):
        years = churn_lifecycle_years(churn, params)
        j = j.left_join(years, "as_of_date").select(j, years.lifetime_years_churn)
    else:
        value = None if churn is None else min(float(churn), params.max_lifetime_years)
        if value is not None and not value > 0:
            raise ValueError(f"churn lifecycle years must be positive, got {churn!r}")
        j = j.mutate(lifetime_years_churn=ibis.literal(value, type="float64"))

    margin = ibis.ifelse(
        j.net_monetary.fill_null(0.0) > 0,
        (j.gross_margin.fill_null(0.0) / j.net_monetary).clip(lower=0.0, upper=1.0),
        params.default_margin_rate,
    )
    service = j.q - j.mkt - j.profit_12m
    cost = (j.mkt - j.acq_new + service).cast(_DEC)
    net = (j.q - cost).cast("float64")
    i = params.annual_discount_rate
    j = j.mutate(
        margin_rate=margin.cast("float64"),
        annual_cost=cost,
        clv_model=_dec(margin * j.expected_avg_spend * j.discounted_purchases),
        clv_seed_churn=_dec(net * _annuity(j.lifetime_years_churn, i)),
        clv_seed_model=_dec(net * _annuity(j.lifetime_years_model, i)),
    )
    scored = j.clv_model.notnull()
    w = ibis.window(group_by=j.as_of_date, order_by=[(~scored).cast("int64"), j.clv_model.desc()])
    above = ibis.rank().over(w)
    n = j.clv_model.count().over(ibis.window(group_by=j.as_of_date))
    j = j.mutate(_above=ibis.ifelse(scored, above, ibis.null("int64")), _n=n)
    share = j._above.cast("float64") / j._n.cast("float64")
    high, medium = params.tier_cutoffs
    tier = ibis.cases(
        (share < high, "high"), (share < medium, "medium"), (share.notnull(), "low"), else_=ibis.null("string")
    )
    return j.select(
        as_of_date=j.as_of_date,
        customer_key=j.customer_key,
        frequency=j.frequency,
        recency_days=j.recency_days,
        age_days=j.age_days,
        avg_purchase_value=_dec(j.mean_value_cents.cast("float64") / 100.0),
        p_alive=j.p_alive.cast("float64"),
        expected_purchases_12m=j.expected_purchases_12m.cast("float64"),
        expected_avg_spend=_dec(j.expected_avg_spend),
        margin_rate=j.margin_rate,
        clv_model=j.clv_model,
        annual_margin=j.q,
        annual_cost=j.annual_cost,
        lifetime_years_churn=j.lifetime_years_churn.cast("float64"),
        lifetime_years_model=j.lifetime_years_model.cast("float64"),
        clv_seed_churn=j.clv_seed_churn,
        clv_seed_model=j.clv_seed_model,
        clv_rank=(j._above + 1).cast("int64"),
        top_share=share.cast("float64"),
        clv_tier=tier,
        clv_tier_zh=tier.substitute(CLV_TIER_ZH),
        model=ibis.literal(params.model, type="string"),
        model_zh=ibis.literal(MODEL_ZH[params.model], type="string"),
        settings_version=_version(settings_version),
    )


def clv_models(
    scores: ClvScores, validation: ValidationScores | None = None, *, settings_version: str = ""
) -> ir.Table:
    """The CLV_MODELS mart from the fitted parameters (full sample and, if given, calibration)."""
    frames = [scores.models] + ([validation.models] if validation is not None else [])
    t = _memtable(_frame(frames, _MODEL_ROWS), _MODEL_ROWS)
    return t.select(
        as_of_date=t.as_of_date,
        model=t.model,
        model_zh=t.model.substitute(MODEL_ZH),
        sample=t["sample"],
        sample_zh=t["sample"].substitute(SAMPLE_ZH),
        parameter=t.parameter,
        value=t.value,
        standard_error=t.standard_error,
        log_likelihood=t.log_likelihood,
        converged=t.converged,
        n_customers=t.n_customers,
        n_unique_rows=t.n_unique_rows,
        time_unit_days=t.time_unit_days,
        settings_version=_version(settings_version),
    )


def clv_validation(
    inputs: ir.Table, validation: ValidationScores, params: ClvParams, *, settings_version: str = ""
) -> ir.Table:
    """The CLV_VALIDATION mart: `validation_inputs` rows joined with the calibration predictions,
    aggregated per calibration frequency bucket and overall (fitted snapshots only)."""
    pred = _memtable(validation.predictions, _PREDICTIONS)
    keys = ["as_of_date", "frequency", "recency_days", "age_days"]
    v = inputs.join(pred, keys)
    n = v.customers.cast("float64")
    err = v.predicted_holdout - v.holdout_purchases.cast("float64")
    k = params.max_frequency_bucket
    v = v.mutate(
        _bucket=ibis.least(v.frequency, k).cast("int64"),
        _pred=n * v.predicted_holdout,
        _act=v.customers * v.holdout_purchases,
        _abs=n * err.abs(),
        _sq=n * err * err,
    )
    sums = {
        "customers": v.customers.sum(),
        "predicted_total": v._pred.sum(),
        "actual_total": v._act.sum(),
        "abs_sum": v._abs.sum(),
        "sq_sum": v._sq.sum(),
    }
    by_bucket = v.group_by(["as_of_date", "calibration_end", "_bucket"]).aggregate(**sums)
    overall = (
        v.group_by(["as_of_date", "calibration_end"]).aggregate(**sums).mutate(_bucket=ibis.literal(k + 1, "int64"))
    )
    g = by_bucket.union(overall.select(by_bucket.columns))
    label = ibis.cases((g._bucket == k + 1, "all"), (g._bucket == k, f"{k}+"), else_=g._bucket.cast("string"))
    label_zh = ibis.cases(
        (g._bucket == k + 1, "全部"), (g._bucket == k, f"{k}次及以上"), else_=g._bucket.cast("string") + "次"
    )
    count = g.customers.cast("float64")
    return g.select(
        as_of_date=g.as_of_date,
        calibration_end=g.calibration_end.cast("date"),
        holdout_days=ibis.literal(params.holdout_days, type="int64"),
        frequency_bucket=label,
        frequency_bucket_zh=label_zh,
        bucket_order=g._bucket.cast("int64"),
        customers=g.customers.cast("int64"),
        predicted_mean=(g.predicted_total / count).cast("float64"),
        actual_mean=(g.actual_total.cast("float64") / count).cast("float64"),
        predicted_total=g.predicted_total.cast("float64"),
        actual_total=g.actual_total.cast("int64"),
        mae=(g.abs_sum / count).cast("float64"),
        rmse=(g.sq_sum / count).sqrt().cast("float64"),
        model=ibis.literal(params.model, type="string"),
        model_zh=ibis.literal(MODEL_ZH[params.model], type="string"),
        settings_version=_version(settings_version),
    )


def clv_tracking(
    purchases: ir.Table, validation: ValidationScores, params: ClvParams, *, settings_version: str = ""
) -> ir.Table:
    """The CLV_TRACKING mart: per holdout week, cumulative predicted (from the calibration fit)
    vs actual purchase days of the calibration customers (fitted snapshots only)."""
    p = _known_days(purchases)
    cal_end = _calibration_end(p.as_of_date, params)
    first = p.purchase_date.min().over(group_by=[p.as_of_date, p.customer_key])
    p = p.mutate(_first=first, _cal_end=cal_end)
    p = p.filter((p._first <= p._cal_end) & (p.purchase_date > p._cal_end))
    day = p.purchase_date.delta(p._cal_end, unit="day")
    p = p.mutate(week=((day - 1) // TRACKING_STEP_DAYS + 1).cast("int64"))
    weekly = p.group_by(["as_of_date", "week"]).aggregate(_actual=p.count())
    grid = _memtable(validation.tracking, _TRACK)
    g = grid.left_join(weekly, ["as_of_date", "week"]).select(grid, weekly._actual)
    running = ibis.window(group_by=g.as_of_date, order_by=g.week, preceding=None, following=0)
    actual = g._actual.fill_null(0).sum().over(running)
    end = _calibration_end(g.as_of_date, params)
    return g.select(
        as_of_date=g.as_of_date,
        calibration_end=end,
        week=g.week,
        holdout_day=g.holdout_day,
        period_end=(end + g.holdout_day.as_interval("D")).cast("date"),
        predicted_cumulative=g.predicted_cumulative,
        actual_cumulative=actual.cast("int64"),
        model=ibis.literal(params.model, type="string"),
        model_zh=ibis.literal(MODEL_ZH[params.model], type="string"),
        settings_version=_version(settings_version),
    )


# --- everything at once ---------------------------------------------------------------------------


class ClvMarts(NamedTuple):
    """The four CLV mart expressions."""

    clv: ir.Table
    models: ir.Table
    validation: ir.Table
    tracking: ir.Table


def clv_marts(
    *,
    c360: ir.Table,
    purchases: ir.Table,
    params: ClvParams,
    execute: Callable[[ir.Table], pd.DataFrame],
    churn: ir.Table | float | None = None,
    fitters: ClvFitters | None = None,
    settings_version: str = "",
) -> ClvMarts:
    """Compress in the engine, fit and score the unique rows in Python (`execute` runs an
    expression, e.g. the warehouse connection's `execute`), and return the mart expressions."""
    fitters = fitters or default_fitters()
    scores = score_snapshots(execute(clv_inputs(c360)), execute(spend_inputs(c360)), params, fitters)
    cal_inputs = validation_inputs(purchases, params)
    check = validate_snapshots(execute(cal_inputs), params, fitters)
    return ClvMarts(
        clv=clv(c360, scores, params, churn=churn, settings_version=settings_version),
        models=clv_models(scores, check, settings_version=settings_version),
        validation=clv_validation(cal_inputs, check, params, settings_version=settings_version),
        tracking=clv_tracking(purchases, check, params, settings_version=settings_version),
    )
