"""RFM scores, named segments and the seed protect / develop / avoid rule (analytics/rfm.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import partial

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pytest

from analytics.rfm import RFM_SEGMENTS, SEED_GROUP_ZH, SEGMENT_ZH, RFMParams, rfm_segments
from tests import c360_kit
from tests.c360_kit import assert_schema, cdnow_c360, cdnow_table, run

AS_OF = dt.date(2024, 6, 30)
c360_table = partial(c360_kit.c360_table, as_of=AS_OF)


# Ten buyers a..j and one prospect z (excluded). F = purchase_days_12m, M = net_monetary_12m.
#   days: 400 300 200 200 100  50  30  10   5   1  -> R 1 1 2 2 3 3 4 4 5 5 (strictly larger days: 0 1 2 2 4 5 6 7 8 9)
#   F:      1   1   1   1   1   2   2   3   5   8  -> F 1 1 1 1 1 3 3 4 5 5 (half tie at F=1: score 2 is a gap)
#   M:     -5  20  30  30  50  60  70  80  90 100  -> M 1 1 2 2 3 3 4 4 5 5
FIXTURE = pd.DataFrame(
    {
        "customer_key": list("abcdefghij"),
        "days_since_last": [400, 300, 200, 200, 100, 50, 30, 10, 5, 1],
        "purchase_days_12m": [1, 1, 1, 1, 1, 2, 2, 3, 5, 8],
        "net_monetary_12m": [-5.0, 20, 30, 30, 50, 60, 70, 80, 90, 100],
        "purchase_days": [9, 8, 7, 6, 5, 4, 3, 2, 1, 1],
        "net_monetary": [10.0, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    }
)
PROSPECT = {"customer_key": "z", "has_purchased": False, "days_since_last": None, "purchase_days_12m": 0}


def fixture_table() -> ir.Table:
    return c360_table([*FIXTURE.to_dict("records"), PROSPECT])


def test_schema_and_types():
    expr = rfm_segments(fixture_table(), RFMParams())
    assert_schema(expr, RFM_SEGMENTS)
    assert RFM_SEGMENTS.table == "marts.rfm_segments"
    assert RFM_SEGMENTS.key == ("customer_key",)


def test_hand_computed_scores_cells_segments_and_seed_groups(con):
    out = run(con, rfm_segments(fixture_table(), settings_version="v1"), ["customer_key"])
    assert list(out.customer_key) == list("abcdefghij")  # the prospect z is not scored
    assert list(out.recency_days) == [400, 300, 200, 200, 100, 50, 30, 10, 5, 1]
    assert list(out.frequency) == [1, 1, 1, 1, 1, 2, 2, 3, 5, 8]
    assert list(out.monetary) == [Decimal(v) for v in ("-5", "20", "30", "30", "50", "60", "70", "80", "90", "100")]
    assert list(out.r_score) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert list(out.f_score) == [1, 1, 1, 1, 1, 3, 3, 4, 5, 5]
    assert list(out.m_score) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert list(out.rfm_cell) == ["111", "111", "212", "212", "313", "333", "434", "444", "555", "555"]
    assert list(out.rfm_product) == [1, 1, 4, 4, 9, 27, 48, 64, 125, 125]
    assert list(out.segment) == [
        "lost",
        "lost",
        "hibernating",
        "hibernating",
        "about_to_sleep",
        "need_attention",
        "potential_loyalist",
        "loyal",
        "champions",
        "champions",
    ]
    assert list(out.segment_zh) == [SEGMENT_ZH[s] for s in out.segment]
    # product 125 x2: 0 larger -> protect; 64 has 2/10 larger (not < 0.2); 1 x2: 0 smaller -> avoid;
    # 4 has 2/10 smaller (not < 0.2) -> develop.
    assert list(out.seed_group) == ["avoid"] * 2 + ["develop"] * 6 + ["protect"] * 2
    assert list(out.seed_group_zh) == ["避免"] * 2 + ["投资发展"] * 6 + ["保护"] * 2
    assert set(out.settings_version) == {"v1"}


def test_f_score_gap_when_half_the_customers_bought_once(con):
    out = run(con, rfm_segments(fixture_table()), ["customer_key"])
    assert 2 not in set(out.f_score)
    assert out.groupby("frequency").f_score.nunique().eq(1).all()  # equal values, equal scores


def test_lifetime_window_uses_lifetime_purchase_days_and_net_monetary(con):
    out = run(con, rfm_segments(fixture_table(), RFMParams(window="lifetime")), ["customer_key"])
    assert list(out.frequency) == [9, 8, 7, 6, 5, 4, 3, 2, 1, 1]
    # F: strictly smaller counts 9 8 7 6 5 4 3 2 0 0 -> 1 + floor(5 s / 10)
    assert list(out.f_score) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert list(out.monetary) == [Decimal(v) for v in range(10, 101, 10)]
    assert list(out.m_score) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_all_tied_snapshot_scores_one_and_is_all_protect(con):
    rows = [{"customer_key": k, "days_since_last": 7, "purchase_days_12m": 2, "net_monetary_12m": 9.5} for k in "pqrs"]
    out = run(con, rfm_segments(c360_table(rows)), ["customer_key"])
    assert set(out.rfm_cell) == {"111"}
    assert set(out.seed_group) == {"protect"}
    assert set(out.segment) == {"lost"}


def test_custom_seed_shares_and_first_matching_segment_rule(con):
    everyone_lost_first = (("lost", 1, 5, 1, 5), ("champions", 5, 5, 5, 5))
    params = RFMParams(segment_map=everyone_lost_first, seed_shares=(0.5, 0.5, 0.0))
    out = run(con, rfm_segments(fixture_table(), params), ["customer_key"])
    assert set(out.segment) == {"lost"}
    # products 125 125 64 48 27 | 9 4 4 1 1: larger counts 0 0 2 3 4 -> < 0.5 x 10; avoid share 0 -> nobody
    assert list(out.seed_group) == ["develop"] * 5 + ["protect"] * 5


def test_default_map_is_the_documented_grid():
    grid = {
        5: ["new", "potential_loyalist", "potential_loyalist", "champions", "champions"],
        4: ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
        3: ["about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"],
        2: ["hibernating", "hibernating", "at_risk", "at_risk", "at_risk"],
        1: ["lost", "lost", "at_risk", "cant_lose", "cant_lose"],
    }
    rules = RFMParams().segment_map
    for r, row in grid.items():
        for f, expected in enumerate(row, start=1):
            first = next(code for code, r0, r1, f0, f1 in rules if r0 <= r <= r1 and f0 <= f <= f1)
            assert first == expected, (r, f)
    assert {code for code, *_ in rules} == set(SEGMENT_ZH)
    assert SEED_GROUP_ZH == {"protect": "保护", "develop": "投资发展", "avoid": "避免"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "6m"}, "window"),
        ({"segment_map": (("vip", 1, 5, 1, 5),)}, "unknown segment"),
        ({"segment_map": (("lost", 1, 5, 1, 4),)}, "R1F5"),
        ({"segment_map": (("lost", 0, 5, 1, 5),)}, "1 to 5"),
        ({"segment_map": (("lost", 5, 1, 1, 5),)}, "min above max"),
        ({"segment_map": (("lost", 1, 5, 1),)}, "code, r_min"),
        ({"segment_map": ()}, "empty"),
        ({"seed_shares": (0.2, 0.6, 0.3)}, "sum to 1"),
        ({"seed_shares": (0.5, 0.5)}, "three shares"),
        ({"seed_shares": (1.2, -0.2, 0.0)}, "three shares"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RFMParams(**kwargs)


def test_lists_from_yaml_become_tuples():
    params = RFMParams(segment_map=[["lost", 1, 5, 1, 5]], seed_shares=[0.2, 0.6, 0.2])
    assert params.segment_map == (("lost", 1, 5, 1, 5),)
    assert params.seed_shares == (0.2, 0.6, 0.2)
    hash(params)


def test_shuffled_input_gives_identical_output(con):
    rows = [*FIXTURE.to_dict("records"), PROSPECT]
    shuffled = [rows[i] for i in pd.DataFrame(rows).sample(frac=1, random_state=7).index]
    keys = ["customer_key"]
    pd.testing.assert_frame_equal(
        run(con, rfm_segments(c360_table(rows)), keys), run(con, rfm_segments(c360_table(shuffled)), keys)
    )


def test_two_as_of_dates_in_one_call_equal_separate_calls(con):
    first = c360_table(FIXTURE)
    later = FIXTURE.assign(
        days_since_last=FIXTURE.days_since_last + 31, purchase_days_12m=[1, 2, 3, 4, 5, 6, 7, 8, 9, 9]
    )
    second = c360_table(later, as_of=dt.date(2024, 7, 31))
    keys = ["as_of_date", "customer_key"]
    together = run(con, rfm_segments(first.union(second)), keys)
    apart = pd.concat([con.execute(rfm_segments(first)), con.execute(rfm_segments(second))])
    pd.testing.assert_frame_equal(together, apart.sort_values(keys).reset_index(drop=True))
    assert together.groupby("as_of_date").f_score.apply(list).map(tuple).nunique() == 2


def test_every_buyer_exactly_one_segment_and_seed_group(con):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "customer_key": [f"c{i:03d}" for i in range(200)],
            "days_since_last": rng.integers(0, 400, 200),
            "purchase_days_12m": rng.geometric(0.5, 200),
            "net_monetary_12m": rng.integers(-500, 50_000, 200) / 100,
            "has_purchased": rng.random(200) < 0.9,
        }
    )
    out = con.execute(rfm_segments(c360_table(frame)))
    assert sorted(out.customer_key) == sorted(frame.customer_key[frame.has_purchased])
    assert out.customer_key.is_unique
    assert out.segment.isin(list(SEGMENT_ZH)).all()
    assert out.seed_group.isin(list(SEED_GROUP_ZH)).all()
    assert out.segment_zh.notna().all() and out.seed_group_zh.notna().all()


# --- CDNOW: the check against an independent plain-pandas computation ---------------------

_GRID = """
new promising about_to_sleep hibernating lost
potential_loyalist potential_loyalist about_to_sleep hibernating lost
potential_loyalist potential_loyalist need_attention at_risk at_risk
champions loyal loyal at_risk cant_lose
champions loyal loyal at_risk cant_lose
"""  # row f = 1..5, column r = 5..1, independent of the rule list


def pandas_rfm(days: pd.Series, f: pd.Series, m: pd.Series) -> pd.DataFrame:
    n = len(days)

    def score(min_rank: pd.Series) -> pd.Series:  # min_rank - 1 = customers strictly worse
        return 1 + (5 * (min_rank.astype("int64") - 1)) // n

    r_score = score(days.rank(method="min", ascending=False))
    f_score = score(f.rank(method="min"))
    m_score = score(m.rank(method="min"))
    product = r_score * f_score * m_score
    larger = product.rank(method="min", ascending=False) - 1
    smaller = product.rank(method="min") - 1
    seed = np.where(larger / n < 0.2, "protect", np.where(smaller / n < 0.2, "avoid", "develop"))
    grid = {
        (r, fs): code
        for fs, line in enumerate(_GRID.split("\n")[1:6], 1)
        for r, code in zip((5, 4, 3, 2, 1), line.split(), strict=True)
    }
    segment = [grid[(r, fs)] for r, fs in zip(r_score, f_score, strict=True)]
    return pd.DataFrame(
        {"r_score": r_score, "f_score": f_score, "m_score": m_score, "seed_group": seed, "segment": segment}
    )


@pytest.mark.parametrize(
    ("window", "f_col", "m_col"), [("12m", "purchase_days_12m", "cents_12m"), ("lifetime", "purchase_days", "cents")]
)
def test_cdnow_scores_agree_with_plain_pandas(con, window, f_col, m_col):
    facts = cdnow_c360().sort_values("customer_key").reset_index(drop=True)
    assert len(facts) == 23570
    out = run(con, rfm_segments(cdnow_table(facts), RFMParams(window=window)), ["customer_key"])
    expected = pandas_rfm(facts.days_since_last, facts[f_col], facts[m_col])
    assert list(out.customer_key) == list(facts.customer_key)
    for col in ("r_score", "f_score", "m_score", "seed_group", "segment"):
        assert out[col].tolist() == expected[col].tolist(), col
    assert (out.monetary.map(lambda d: int(d * 100)) == facts[m_col]).all()
