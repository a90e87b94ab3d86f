"""Transaction log -> CLV summary (analytics/clv/summary.py): equal to lifetimes 0.11.3 on CDNOW,
and the published FHL 2005 calibration data come out of it."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.clv import calibration_and_holdout_data, summary_data_from_transaction_data

CALIBRATION_END = "1997-09-30"  # FHL 2005: 39 weeks from 1997-01-01
OBSERVATION_END = "1998-06-30"  # the end of the CDNOW data: a 39-week holdout


def lifetimes_datasets() -> Path:
    """The data folder of the lifetimes wheel (test-only). Not via ``lifetimes.datasets``: it imports
    pkg_resources, which current setuptools no longer ships."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lifetimes (test-only dependency with the CDNOW data) is not installed")
    return Path(spec.submodule_search_locations[0]) / "datasets"


def cdnow_sample_transactions() -> pd.DataFrame:
    """CDNOW 1/10 sample: 2,357 customers, 1997-01-01..1998-06-30, one row per order."""
    frame = pd.read_csv(
        lifetimes_datasets() / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "cds", "dollars"],
        dtype={"date": str},
    )
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


def cdnow_fhl_summary() -> pd.DataFrame:
    """The published FHL 2005 setup: repeat purchases = distinct purchase days in the 39-week
    calibration, recency and T in weeks at daily resolution, mean repeat-day spend."""
    return summary_data_from_transaction_data(
        cdnow_sample_transactions(),
        "customer_id",
        "date",
        monetary_value_col="dollars",
        observation_period_end=CALIBRATION_END,
        freq="D",
        freq_multiplier=7,
    )


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return cdnow_sample_transactions()


@pytest.fixture(scope="module")
def lifetimes_utils():
    with warnings.catch_warnings():  # lifetimes silences FutureWarning process-wide on import; keep that local
        return pytest.importorskip("lifetimes.utils")


@pytest.mark.parametrize("freq, multiplier", [("D", 1), ("W", 1), ("D", 7)])
@pytest.mark.parametrize("monetary", [None, "dollars"])
@pytest.mark.parametrize("include_first", [False, True])
@pytest.mark.parametrize("end", [CALIBRATION_END, None])
def test_summary_equals_lifetimes_on_cdnow(
    transactions, lifetimes_utils, freq, multiplier, monetary, include_first, end
):
    kwargs = {
        "monetary_value_col": monetary,
        "observation_period_end": end,
        "freq": freq,
        "freq_multiplier": multiplier,
        "include_first_transaction": include_first,
    }
    ours = summary_data_from_transaction_data(transactions, "customer_id", "date", **kwargs)
    theirs = lifetimes_utils.summary_data_from_transaction_data(transactions, "customer_id", "date", **kwargs)
    pd.testing.assert_frame_equal(ours, theirs)


@pytest.mark.parametrize("freq, multiplier", [("D", 1), ("W", 1), ("D", 7)])
@pytest.mark.parametrize("monetary", [None, "dollars"])
def test_calibration_and_holdout_equals_lifetimes_on_cdnow(transactions, lifetimes_utils, freq, multiplier, monetary):
    kwargs = {
        "calibration_period_end": CALIBRATION_END,
        "observation_period_end": OBSERVATION_END,
        "freq": freq,
        "freq_multiplier": multiplier,
        "monetary_value_col": monetary,
    }
    ours = calibration_and_holdout_data(transactions, "customer_id", "date", **kwargs)
    # lifetimes raises on pandas 3 without a value column (its holdout count aggregates no columns:
    # "No objects to concatenate"), so the oracle runs with one and drops the value columns.
    theirs = lifetimes_utils.calibration_and_holdout_data(
        transactions, "customer_id", "date", **{**kwargs, "monetary_value_col": "dollars"}
    )
    if monetary is None:
        theirs = theirs.drop(columns=["monetary_value_cal", "monetary_value_holdout"])
    pd.testing.assert_frame_equal(ours, theirs)
    assert ours["duration_holdout"].iloc[0] == {"D": 273 / multiplier, "W": 39.0}[freq]


def test_fhl_setup_reproduces_the_published_cdnow_summary():
    """FHL's own file (x, t_x, T in weeks to 2 decimals, mean repeat spend zbar) is our summary, rounded."""
    ours = cdnow_fhl_summary()
    published = pd.read_csv(lifetimes_datasets() / "cdnow_customers_summary_with_transactions.csv").set_index("ID")
    assert len(ours) == 2357
    np.testing.assert_array_equal(ours["frequency"].to_numpy(), published["x"].to_numpy())
    np.testing.assert_array_equal(ours["recency"].round(2).to_numpy(), published["t_x"].to_numpy())
    np.testing.assert_array_equal(ours["T"].round(2).to_numpy(), published["T"].to_numpy())
    # zbar was rounded half-up; an exact .xx5 mean may round the other way here
    assert np.abs(ours["monetary_value"].to_numpy() - published["zbar"].to_numpy()).max() <= 0.005 + 1e-9
    repeat = ours[ours["frequency"] > 0]
    assert len(repeat) == 946
    assert round(repeat["monetary_value"].mean(), 2) == 35.08


def test_purchases_on_one_day_are_one_purchase_with_summed_value():
    log = pd.DataFrame(
        {
            "id": ["a", "a", "a", "a"],
            "when": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-05", "2024-01-11"]),
            "value": [10.0, 3.0, 4.0, 20.0],
        }
    )
    out = summary_data_from_transaction_data(log, "id", "when", "value", observation_period_end="2024-01-31")
    assert out.loc["a"].to_dict() == {"frequency": 2.0, "recency": 10.0, "T": 30.0, "monetary_value": 13.5}


def test_customers_first_seen_after_the_end_are_dropped_and_later_purchases_ignored():
    log = pd.DataFrame(
        {
            "id": [1, 1, 2],
            "when": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-02-15"]),
        }
    )
    out = summary_data_from_transaction_data(log, "id", "when", observation_period_end="2024-01-31")
    assert list(out.index) == [1]
    assert out.loc[1].to_dict() == {"frequency": 0.0, "recency": 0.0, "T": 30.0}


def test_row_order_and_string_dates_do_not_matter(transactions):
    shuffled = transactions.sample(frac=1.0, random_state=7)
    as_text = shuffled.assign(date=shuffled["date"].dt.strftime("%Y%m%d"))
    ours = summary_data_from_transaction_data(
        as_text, "customer_id", "date", "dollars", datetime_format="%Y%m%d", observation_period_end="19970930"
    )
    expected = summary_data_from_transaction_data(
        transactions, "customer_id", "date", "dollars", observation_period_end=CALIBRATION_END
    )
    pd.testing.assert_frame_equal(ours, expected)
    assert ours["T"].max() == 272.0  # days


def test_empty_holdout_is_an_error(transactions):
    with pytest.raises(ValueError, match="no data available"):
        calibration_and_holdout_data(transactions, "customer_id", "date", "1998-06-30", "1998-06-30")


def test_holdout_spend_is_per_transaction_and_zero_without_purchases():
    log = pd.DataFrame(
        {
            "id": ["a", "a", "a", "b"],
            "when": pd.to_datetime(["2024-01-01", "2024-02-03", "2024-02-03", "2024-01-02"]),
            "value": [5.0, 10.0, 30.0, 7.0],
        }
    )
    out = calibration_and_holdout_data(log, "id", "when", "2024-01-31", "2024-02-29", monetary_value_col="value")
    assert out.loc["a", "frequency_holdout"] == 1.0  # one purchase day
    assert out.loc["a", "monetary_value_holdout"] == 20.0  # mean of the two transactions, as lifetimes
    assert out.loc["b", ["frequency_holdout", "monetary_value_holdout"]].tolist() == [0.0, 0.0]
    assert out["duration_holdout"].tolist() == [29.0, 29.0]
