"""RFM scores, named segments and the seed protect / develop / avoid rule (analytics/rfm.py)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from decimal import Decimal
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pytest

from analytics.customer360 import CUSTOMER_360
from analytics.rfm import RFM_SEGMENTS, SEED_GROUP_ZH, SEGMENT_ZH, RFMParams, rfm_segments

AS_OF = dt.date(2024, 6, 30)

_IBIS_TYPES = {
    "VARCHAR": "string",
    "BIGINT": "int64",
    "DATE": "date",
    "DOUBLE": "float64",
    "BOOLEAN": "boolean",
    "DECIMAL(18,2)": "decimal(18, 2)",
}
_DEFAULTS = {"VARCHAR": "", "BIGINT": 0, "DATE": None, "DOUBLE": None, "BOOLEAN": False, "DECIMAL(18,2)": 0.0}


def c360_table(frame: pd.DataFrame | list[dict], as_of: dt.date = AS_OF) -> ir.Table:
    """A customer-360-shaped memtable: the given columns, defaults for the rest (buyers unless
    has_purchased says otherwise), every column cast to its CUSTOMER_360 type."""
    df = pd.DataFrame(frame).copy()
    df["as_of_date"] = df.get("as_of_date", as_of)
    df["has_purchased"] = df.get("has_purchased", pd.Series(True, index=df.index)).fillna(True).astype(bool)
    for col in CUSTOMER_360.columns:
        if col.name not in df:
            df[col.name] = pd.Series([_DEFAULTS[col.sql_type]] * len(df), dtype=object)
    df = df[CUSTOMER_360.names]
    schema = {c.name: _IBIS_TYPES[c.sql_type] for c in CUSTOMER_360.columns}
    return ibis.memtable(df).cast(schema)


def run(con, expr: ir.Table, keys: list[str]) -> pd.DataFrame:
    return con.execute(expr).sort_values(keys).reset_index(drop=True)


def assert_schema(expr: ir.Table, schema) -> None:
    """The expression yields exactly the mart's columns, in order, with its storage types."""
    assert list(expr.columns) == schema.names
    assert [str(t) for t in expr.schema().types] == [_IBIS_TYPES[c.sql_type] for c in schema.columns]


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
    shuffled = pd.DataFrame(rows).sample(frac=1, random_state=7)
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

CDNOW_AS_OF = dt.date(1998, 6, 30)


def cdnow_c360() -> pd.DataFrame:
    """The CDNOW master file (shipped with lifetimes) as customer 360 facts at 1998-06-30.
    Money in integer cents so the pandas reference never rounds; profit is a made-up
    30 % margin minus 5.00 so that many customers lose money."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lifetimes (test-only dependency with the CDNOW data) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_master.txt"
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    raw["day"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    raw["cents"] = (raw.dollar_value * 100).round().astype("int64")
    as_of = pd.Timestamp(CDNOW_AS_OF)
    recent = raw[raw.day > as_of - pd.Timedelta(days=365)]
    per = raw.groupby("customer_id").agg(last=("day", "max"), purchase_days=("day", "nunique"), cents=("cents", "sum"))
    per12 = recent.groupby("customer_id").agg(purchase_days_12m=("day", "nunique"), cents_12m=("cents", "sum"))
    per = per.join(per12).fillna({"purchase_days_12m": 0, "cents_12m": 0}).astype({"cents_12m": "int64"})
    per["profit_cents_12m"] = per.cents_12m * 3 // 10 - 500
    return pd.DataFrame(
        {
            "customer_key": per.index,
            "days_since_last": (as_of - per["last"]).dt.days.to_numpy(),
            "purchase_days": per.purchase_days.to_numpy(),
            "purchase_days_12m": per.purchase_days_12m.astype("int64").to_numpy(),
            "cents": per.cents.to_numpy(),
            "cents_12m": per.cents_12m.to_numpy(),
            "profit_cents_12m": per.profit_cents_12m.to_numpy(),
        }
    )


def cdnow_table(facts: pd.DataFrame) -> ir.Table:
    frame = facts.assign(
        net_monetary=facts.cents / 100,
        net_monetary_12m=facts.cents_12m / 100,
        profit_12m=facts.profit_cents_12m / 100,
        profit=facts.profit_cents_12m / 100,
    ).drop(columns=["cents", "cents_12m", "profit_cents_12m"])
    return c360_table(frame, as_of=CDNOW_AS_OF)


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
