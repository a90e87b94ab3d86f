"""Survey cleaning: one exclusion reason per response in the documented order, duplicates by
resolved customer, and the exclusion rate per wave."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest

from analytics.satisfaction.cleaning import EXCLUSION_REASONS, EXCLUSION_ZH, classify_responses, exclusion_rates


def _response(rid, key, wave="2025Q1", minute=0, **flags):
    return {
        "response_id": rid,
        "customer_key": key,
        "survey_id": "S",
        "wave": wave,
        "started_at": dt.datetime(2025, 2, 1, 9, minute),
        "sat_1": flags.pop("sat_1", 7),
        "is_speeder": flags.pop("speeder", False),
        "is_straightliner": flags.pop("straight", False),
        "failed_attention": flags.pop("attention", False),
        "is_duplicate_respondent": flags.pop("dup", False),
    }


ROWS = [
    _response("r1", "k1", minute=0),  # kept
    _response("r2", "k1", minute=5),  # same customer, same wave: duplicate (via another record)
    _response("r3", "k2", attention=True, speeder=True),  # attention outranks speeder
    _response("r4", "k3", speeder=True, straight=True),  # speeder outranks straight-lining
    _response("r5", "k4", straight=True),
    _response("r6", None),  # anonymous: kept
    _response("r7", None),  # anonymous again: not a duplicate (nobody to match)
    _response("r8", "k5", dup=True, attention=True),  # ingestion's flag wins over everything
    _response("r9", "k6", sat_1=None),  # missing a required item
    _response("r10", "k1", wave="2025Q2"),  # another wave: kept
]


@pytest.fixture
def classified(con):
    frame = pd.DataFrame(ROWS)
    frame["sat_1"] = frame["sat_1"].astype("Int64")
    return con.execute(classify_responses(ibis.memtable(frame), required=["sat_1"])).set_index("response_id")


def test_each_response_gets_the_first_reason_that_applies(classified):
    expected = {
        "r1": None,
        "r2": "duplicate_respondent",
        "r3": "failed_attention",
        "r4": "speeder",
        "r5": "straightliner",
        "r6": None,
        "r7": None,
        "r8": "duplicate_respondent",
        "r9": "incomplete",
        "r10": None,
    }
    got = {k: (None if pd.isna(v) else v) for k, v in classified.exclusion_reason.items()}
    assert got == expected
    assert classified.excluded.sum() == 6
    assert set(EXCLUSION_ZH) == set(EXCLUSION_REASONS)


def test_exclusion_rate_per_wave(con, classified):
    frame = pd.DataFrame(ROWS)
    frame["sat_1"] = frame["sat_1"].astype("Int64")
    rates = con.execute(exclusion_rates(classify_responses(ibis.memtable(frame), required=["sat_1"]))).set_index("wave")
    q1 = rates.loc["2025Q1"]
    assert (q1.responses, q1.kept, q1.excluded) == (9, 3, 6)
    assert q1.exclusion_rate == pytest.approx(6 / 9)
    assert (q1.excluded_duplicate_respondent, q1.excluded_speeder, q1.excluded_incomplete) == (2, 1, 1)
    assert rates.loc["2025Q2"].exclusion_rate == 0


def test_missing_columns_are_named(con):
    t = ibis.memtable(pd.DataFrame(ROWS).drop(columns="customer_key"))
    with pytest.raises(ValueError, match="customer key column 'customer_key'"):
        classify_responses(t)
    with pytest.raises(ValueError, match=r"required items \['sat_9'\]"):
        classify_responses(ibis.memtable(pd.DataFrame(ROWS)), required=["sat_9"])
