"""From a transaction log to the (frequency, recency, T[, monetary_value]) summary the CLV
models fit on, and its calibration/holdout split for validation.

Drop-in for lifetimes 0.11.3 (same signatures, defaults, columns, index and dtypes; the
tests compare on CDNOW). The conventions, which are easy to get wrong by hand:

- Time is cut into periods of `freq` (numpy/pandas units: "D", "W", "h", ...); several
  transactions in one period are one purchase (their values summed), so FHL's "repeat
  purchases counted by distinct days" is ``freq="D"``.
- frequency = purchase periods - 1 (the first purchase is not a repeat; set
  ``include_first_transaction`` to count it), recency = last - first purchase period,
  T = observation end - first purchase period, both divided by ``freq_multiplier``
  (``freq="D", freq_multiplier=7`` gives weeks at daily resolution, as in FHL 2005).
- monetary_value = mean value of the repeat purchase periods (0 for customers without
  a repeat), used by the Gamma-Gamma model.
- The observation end is moved to the start of its period; transactions in that period count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["calibration_and_holdout_data", "summary_data_from_transaction_data"]


def _period_start(values: pd.Series | pd.Timestamp, freq: str) -> pd.Series | pd.Timestamp:
    return (
        values.dt.to_period(freq).dt.to_timestamp()
        if isinstance(values, pd.Series)
        else (values.to_period(freq).to_timestamp())
    )


def summary_data_from_transaction_data(
    transactions: pd.DataFrame,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None = None,
    datetime_format: str | None = None,
    observation_period_end: object = None,
    freq: str = "D",
    freq_multiplier: float = 1,
    include_first_transaction: bool = False,
) -> pd.DataFrame:
    """One row per customer (index: customer id, sorted) with frequency, recency, T [, monetary_value], all float.

    Transactions after `observation_period_end` (default: the last transaction) are ignored.
    """
    if observation_period_end is None:
        observation_period_end = transactions[datetime_col].max()
    end = _period_start(pd.to_datetime(observation_period_end, format=datetime_format), freq)

    columns = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    frame = transactions[columns].copy()
    frame[datetime_col] = _period_start(pd.to_datetime(frame[datetime_col], format=datetime_format), freq)
    frame = frame.loc[frame[datetime_col] <= end]

    # one row per (customer, purchase period), in customer then time order
    grouped = frame.groupby([customer_id_col, datetime_col], sort=True)
    periods = grouped[monetary_value_col].sum().reset_index() if monetary_value_col else grouped.size().reset_index()
    by_customer = periods.groupby(customer_id_col, sort=True)[datetime_col]
    customers = by_customer.agg(["min", "max", "count"])

    unit = np.timedelta64(1, freq)
    out = pd.DataFrame(index=customers.index)
    out["frequency"] = customers["count"] - (0 if include_first_transaction else 1)
    out["recency"] = (customers["max"] - customers["min"]) / unit / freq_multiplier
    out["T"] = (end - customers["min"]) / unit / freq_multiplier
    out = out[["frequency", "recency", "T"]]
    if monetary_value_col:
        values = periods[monetary_value_col].astype(float)
        if not include_first_transaction:
            values = values.where(by_customer.cumcount() > 0)
        out["monetary_value"] = values.groupby(periods[customer_id_col]).mean().fillna(0)
    return out.astype(float)


def calibration_and_holdout_data(
    transactions: pd.DataFrame,
    customer_id_col: str,
    datetime_col: str,
    calibration_period_end: object,
    observation_period_end: object = None,
    freq: str = "D",
    freq_multiplier: float = 1,
    datetime_format: str | None = None,
    monetary_value_col: str | None = None,
    include_first_transaction: bool = False,
) -> pd.DataFrame:
    """The summary up to `calibration_period_end` (columns suffixed ``_cal``) joined with the holdout.

    Customers first seen in the holdout are dropped (nothing to predict from). Holdout columns:
    frequency_holdout = purchase periods in (calibration end, observation end], monetary_value_holdout
    = mean raw transaction value there (per transaction, not per period, as lifetimes does; 0 without
    purchases), duration_holdout = holdout length in periods / freq_multiplier. Raises ValueError
    when the holdout has no transactions.
    """
    if observation_period_end is None:
        observation_period_end = transactions[datetime_col].max()
    columns = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    frame = transactions[columns].copy()
    frame[datetime_col] = pd.to_datetime(frame[datetime_col], format=datetime_format)
    observation_end = pd.to_datetime(observation_period_end, format=datetime_format)
    calibration_end = pd.to_datetime(calibration_period_end, format=datetime_format)

    calibration = summary_data_from_transaction_data(
        frame.loc[frame[datetime_col] <= calibration_end],
        customer_id_col,
        datetime_col,
        monetary_value_col=monetary_value_col,
        observation_period_end=calibration_end,
        freq=freq,
        freq_multiplier=freq_multiplier,
        include_first_transaction=include_first_transaction,
    )
    calibration.columns = [f"{c}_cal" for c in calibration.columns]

    in_holdout = (frame[datetime_col] > calibration_end) & (frame[datetime_col] <= observation_end)
    holdout = frame.loc[in_holdout]
    if holdout.empty:
        raise ValueError(
            "There is no data available. Check the `observation_period_end` and `calibration_period_end` "
            "and confirm that values in `transactions` occur prior to those dates."
        )
    holdout_periods = holdout[datetime_col].dt.to_period(freq)
    summary = holdout.groupby([holdout[customer_id_col], holdout_periods]).size().groupby(level=0).size()
    holdout_summary = summary.rename("frequency_holdout").to_frame()
    holdout_summary.index.name = customer_id_col
    if monetary_value_col:
        holdout_summary["monetary_value_holdout"] = holdout.groupby(customer_id_col)[monetary_value_col].mean()

    combined = calibration.join(holdout_summary, how="left").fillna(0)
    delta = (observation_end.to_period(freq) - calibration_end.to_period(freq)).n
    combined["duration_holdout"] = delta / freq_multiplier
    return combined
