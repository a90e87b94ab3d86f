"""Discounted customer lifetime value from a purchase model and an expected spend (DOMAIN.md §7).

Same semantics as lifetimes' ``utils._customer_lifetime_value``: the horizon is `time`
months; month i contributes spend x (expected purchases in month i) / (1 + discount_rate)^i,
where the expected purchases come from the model's cumulative conditional expectation and
a month is 30 days, 4.345 weeks or 720 hours of the data's time unit (`freq`). The monetary
value is used as given (``GammaGammaFitter.customer_lifetime_value`` passes its expected
spend). Differences from lifetimes: the cumulative expectation is evaluated once per month
boundary (not twice), inputs may be scalars or arrays (lifetimes needs Series), and an
unknown `freq` raises instead of a bare KeyError.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

__all__ = ["PERIODS_PER_MONTH", "customer_lifetime_value"]

# Time units per month, as in lifetimes (it calls hours "H"; pandas now spells them "h").
PERIODS_PER_MONTH: dict[str, float] = {"W": 4.345, "M": 1.0, "D": 30.0, "H": 30.0 * 24, "h": 30.0 * 24}


class TransactionModel(Protocol):
    """Any fitted purchase model: ours or a lifetimes one."""

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T): ...


def customer_lifetime_value(
    transaction_prediction_model: TransactionModel,
    frequency: float | np.ndarray | pd.Series,
    recency: float | np.ndarray | pd.Series,
    T: float | np.ndarray | pd.Series,
    monetary_value: float | np.ndarray | pd.Series,
    time: int = 12,
    discount_rate: float = 0.01,
    freq: str = "D",
) -> float | np.ndarray | pd.Series:
    """Sum over months 1..time of spend x expected purchases that month, discounted per month.

    Returns a Series named "clv" (index of the first Series input) when any input is a Series,
    else an array or a float.
    """
    if freq not in PERIODS_PER_MONTH:
        raise ValueError(f"freq must be one of {sorted(PERIODS_PER_MONTH)}, got {freq!r}")
    factor = PERIODS_PER_MONTH[freq]
    predict = transaction_prediction_model.conditional_expected_number_of_purchases_up_to_time
    x, t_x, age, spend = (np.asarray(v, dtype=float) for v in (frequency, recency, T, monetary_value))

    horizons = np.arange(time + 1) * factor
    if hasattr(transaction_prediction_model, "cumulative_expected_purchases"):  # ours: all horizons in one pass
        cumulative = transaction_prediction_model.cumulative_expected_purchases(horizons, x, t_x, age)
    else:
        cumulative = np.stack([np.asarray(predict(h, x, t_x, age), dtype=float) for h in horizons])
    clv = np.zeros(np.broadcast_shapes(x.shape, t_x.shape, age.shape, spend.shape))
    for month in range(1, time + 1):
        clv = clv + spend * (cumulative[month] - cumulative[month - 1]) / (1.0 + discount_rate) ** month

    for value in (frequency, recency, T, monetary_value):
        if isinstance(value, pd.Series):
            return pd.Series(np.broadcast_to(clv, value.shape), index=value.index, name="clv")
    return float(clv) if clv.ndim == 0 else clv
