"""Segment migration: transition matrices between two snapshots (analytics/migration.py,
assets/migration.py). The fixtures are a handful of customers with moves chosen by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pandas as pd
import pytest

from analytics.customer360 import CUSTOMER_360
from analytics.identity import Scratch
from analytics.lifecycle import LIFECYCLE, STAGE_ZH
from analytics.migration import (
    DIMENSIONS,
    SEGMENT_MIGRATION,
    MigrationParams,
    from_dates,
    months_before,
    needed_dates,
    segment_migration,
)
from analytics.rfm import RFM_SEGMENTS, SEGMENT_ZH
from analytics.value import TIER_ZH, VALUE_TIERS
from pipelines.warehouse import Replace, Warehouse
from tests.c360_kit import assert_schema, c360_table, mart_table, run

FEB, MAR, APR = dt.date(2025, 2, 28), dt.date(2025, 3, 31), dt.date(2025, 4, 30)
KEYS = ["as_of_date", "dimension", "from_code", "to_code"]

# customer -> {day: (lifecycle stage, rfm segment or None, value tier or None, net_monetary_12m)}
# None = not in that buyer mart; a customer missing from a day is not in any snapshot of it.
HISTORY: dict[str, dict[dt.date, tuple]] = {
    "a": {FEB: ("growth", "champions", "gold", 250), MAR: ("maturity", "champions", "gold", 300)},
    "a2": {FEB: ("growth", "champions", "gold", 150), MAR: ("maturity", "loyal", "gold", 200)},
    "b": {FEB: ("growth", "champions", "gold", 90), MAR: ("decline", "at_risk", "iron", 120.5)},
    "c": {FEB: ("maturity", "loyal", "iron", 60), MAR: ("maturity", "champions", "gold", 80)},
    # a prospect in February who first bought in March
    "p": {FEB: ("potential", None, None, 0), MAR: ("development", "new", "lead", 40)},
    "q": {FEB: ("potential", None, None, 0), MAR: ("potential", None, None, 0)},
    # merged away by identity resolution in March: in no March snapshot, not even customer 360
    "z": {FEB: ("maturity", "loyal", "iron", 70)},
    # first known in March, has not bought
    "n": {MAR: ("potential", None, None, 0)},
}


def history(days: dict[dt.date, dt.date] | None = None) -> dict:
    """The four upstream marts of HISTORY; `days` moves a fixture day to another date."""
    days = days or {}
    rows: dict[str, list[dict]] = {"lifecycle_stage": [], "rfm_segment": [], "value_tier": [], "c360": []}
    for key, snaps in HISTORY.items():
        for day, (stage, segment, tier, revenue) in snaps.items():
            d = days.get(day, day)
            base = {"as_of_date": d, "customer_key": key}
            rows["c360"].append({**base, "has_purchased": segment is not None, "net_monetary_12m": revenue})
            rows["lifecycle_stage"].append({**base, "stage": stage, "stage_zh": STAGE_ZH[stage]})
            if segment is not None:
                rows["rfm_segment"].append({**base, "segment": segment, "segment_zh": SEGMENT_ZH[segment]})
                rows["value_tier"].append({**base, "tier": tier, "tier_zh": TIER_ZH[tier]})
    schemas = {"lifecycle_stage": LIFECYCLE, "rfm_segment": RFM_SEGMENTS, "value_tier": VALUE_TIERS}
    marts = {name: mart_table(rows[name], schema) for name, schema in schemas.items()}
    return {"marts": marts, "c360": c360_table(rows["c360"])}


def migrate(con, days, h=None, params=None) -> pd.DataFrame:
    h = h or history()
    return run(con, segment_migration(days, h["marts"], h["c360"], params, settings_version="v1"), KEYS)


def days(column: pd.Series) -> set[dt.date]:
    """The distinct dates of a result column (DuckDB dates arrive as pandas timestamps)."""
    return set(pd.to_datetime(column).dt.date)


def cells(out: pd.DataFrame, dimension: str) -> dict[tuple[str, str], tuple]:
    """(from_code, to_code) -> (customers, revenue_12m, share_of_from) of one dimension."""
    part = out[out.dimension == dimension]
    return {
        (r.from_code, r.to_code): (r.customers, r.revenue_12m, pytest.approx(r.share_of_from))
        for r in part.itertuples()
    }


def test_schema_and_types():
    h = history()
    assert_schema(segment_migration([MAR], h["marts"], h["c360"]), SEGMENT_MIGRATION)


def test_lifecycle_matrix_counts_revenue_and_shares(con):
    """From 2025-02-28: growth = a, a2, b (3); maturity = c, z (2); potential = p, q (2).
    Revenue is net_monetary_12m on 2025-03-31: a 300 + a2 200 = 500; z is gone from
    customer 360, so 0; n is new in March."""
    out = migrate(con, [MAR])
    assert cells(out, "lifecycle_stage") == {
        ("growth", "maturity"): (2, Decimal("500.00"), 2 / 3),
        ("growth", "decline"): (1, Decimal("120.50"), 1 / 3),
        ("maturity", "maturity"): (1, Decimal("80.00"), 1 / 2),
        ("maturity", "exited"): (1, Decimal("0.00"), 1 / 2),
        ("potential", "development"): (1, Decimal("40.00"), 1 / 2),
        ("potential", "potential"): (1, Decimal("0.00"), 1 / 2),
        ("entered", "potential"): (1, Decimal("0.00"), 1.0),
    }
    assert days(out.from_date) == {FEB} and days(out.as_of_date) == {MAR} and set(out.settings_version) == {"v1"}


def test_buyer_marts_count_a_first_purchase_as_entered(con):
    """RFM and value tiers only hold buyers: p (prospect -> first purchase) enters, q and n
    (never bought) are in neither snapshot. 'entered' -> 'new' is the RFM segment new."""
    out = migrate(con, [MAR])
    assert cells(out, "rfm_segment") == {
        ("champions", "champions"): (1, Decimal("300.00"), 1 / 3),
        ("champions", "loyal"): (1, Decimal("200.00"), 1 / 3),
        ("champions", "at_risk"): (1, Decimal("120.50"), 1 / 3),
        ("loyal", "champions"): (1, Decimal("80.00"), 1 / 2),
        ("loyal", "exited"): (1, Decimal("0.00"), 1 / 2),
        ("entered", "new"): (1, Decimal("40.00"), 1.0),
    }
    assert cells(out, "value_tier") == {
        ("gold", "gold"): (2, Decimal("500.00"), 2 / 3),
        ("gold", "iron"): (1, Decimal("120.50"), 1 / 3),
        ("iron", "gold"): (1, Decimal("80.00"), 1 / 2),
        ("iron", "exited"): (1, Decimal("0.00"), 1 / 2),
        ("entered", "lead"): (1, Decimal("40.00"), 1.0),
    }


def test_labels_come_from_the_source_marts(con):
    out = migrate(con, [MAR]).set_index(["dimension", "from_code", "to_code"])
    assert out.loc[("rfm_segment", "entered", "new"), ["from_code_zh", "to_code_zh"]].tolist() == ["新增", "新客户"]
    assert out.loc[("value_tier", "iron", "exited"), ["from_code_zh", "to_code_zh"]].tolist() == ["铁客户", "移出"]
    row = out.loc[("lifecycle_stage", "growth", "decline")]
    assert [row.from_code_zh, row.to_code_zh] == ["成长期", "衰退期"]


def test_outside_codes_never_collide_with_a_mart_code():
    from analytics.migration import ENTERED, EXITED

    codes = set(SEGMENT_ZH) | set(TIER_ZH) | set(STAGE_ZH)
    assert ENTERED[0] not in codes and EXITED[0] not in codes


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2025, 3, 31), 1, dt.date(2025, 2, 28)),  # clamped to February's end
        (dt.date(2025, 3, 30), 1, dt.date(2025, 2, 28)),  # clamped
        (dt.date(2024, 3, 30), 1, dt.date(2024, 2, 29)),  # leap year
        (dt.date(2025, 2, 28), 1, dt.date(2025, 1, 31)),  # month-end -> month-end, not 01-28
        (dt.date(2025, 4, 30), 1, dt.date(2025, 3, 31)),  # month-end -> month-end, not 03-30
        (dt.date(2025, 1, 15), 1, dt.date(2024, 12, 15)),  # across the year
        (dt.date(2025, 5, 31), 3, dt.date(2025, 2, 28)),
        (dt.date(2024, 2, 29), 12, dt.date(2023, 2, 28)),
    ],
)
def test_months_before_clamps_to_month_end(day, months, expected):
    assert months_before(day, months) == expected


def test_needed_dates_are_the_days_and_their_windows():
    # 2025-03-31 -> target 02-28, window 02-26..02-28; 2025-03-15 -> 02-15, window 02-13..02-15
    got = needed_dates([MAR, dt.date(2025, 3, 15)], MigrationParams(max_gap_days=2))
    days = [dt.date(2025, 2, d) for d in (13, 14, 15, 26, 27, 28)] + [dt.date(2025, 3, 15), MAR]
    assert got == days


def test_fallback_uses_the_latest_snapshot_within_max_gap_days(con):
    """February's snapshot taken on 02-21 (7 days before the target 02-28): used with the
    default max_gap_days=7, with the same matrix; with 6 there is no from-date, no rows."""
    h = history({FEB: dt.date(2025, 2, 21)})
    out = migrate(con, [MAR], h)
    assert days(out.from_date) == {dt.date(2025, 2, 21)}
    same = migrate(con, [MAR])
    cols = ["dimension", "from_code", "to_code", "customers", "revenue_12m", "share_of_from"]
    pd.testing.assert_frame_equal(out[cols], same[cols])
    assert migrate(con, [MAR], h, MigrationParams(max_gap_days=6)).empty
    dates = con.execute(from_dates([MAR], h["marts"], h["c360"], MigrationParams(max_gap_days=6)))
    assert dates.from_date.isna().all() and dates.to_snapshot.all() and len(dates) == 3


def test_latest_snapshot_in_the_window_wins_and_later_ones_are_ignored(con):
    # February's snapshot copied to 02-24 (older, in the window) and to 03-01 (after the target)
    h = history()
    copies = [history({FEB: day}) for day in (dt.date(2025, 2, 24), dt.date(2025, 3, 1))]
    moved = (dt.date(2025, 2, 24), dt.date(2025, 3, 1))
    marts, c360 = dict(h["marts"]), h["c360"]
    for copy in copies:
        marts = {k: t.union(copy["marts"][k].filter(copy["marts"][k].as_of_date.isin(moved))) for k, t in marts.items()}
        c360 = c360.union(copy["c360"].filter(copy["c360"].as_of_date.isin(moved)))
    out = con.execute(segment_migration([MAR], marts, c360))
    assert days(out.from_date) == {FEB}
    assert out.customers.sum() == migrate(con, [MAR]).customers.sum()


def test_a_dimension_without_a_from_snapshot_has_no_rows_the_others_do(con):
    h = history()
    marts = dict(h["marts"])
    marts["rfm_segment"] = marts["rfm_segment"].filter(marts["rfm_segment"].as_of_date != FEB)
    out = con.execute(segment_migration([MAR], marts, h["c360"]))
    assert set(out.dimension) == {"value_tier", "lifecycle_stage"}
    dates = con.execute(from_dates([MAR], marts, h["c360"], MigrationParams())).set_index("dimension")
    assert pd.isna(dates.loc["rfm_segment", "from_date"]) and dates.loc["value_tier", "from_date"].date() == FEB


def test_no_snapshot_on_the_as_of_date_gives_no_rows(con):
    h = history()
    marts = {k: t.filter(t.as_of_date != MAR) for k, t in h["marts"].items()}
    assert con.execute(segment_migration([MAR], marts, h["c360"])).empty
    assert not con.execute(from_dates([MAR], marts, h["c360"], MigrationParams())).to_snapshot.any()


def test_empty_buyer_snapshot_counts_when_nobody_had_bought(con):
    """On 02-28 nobody has bought (customer 360 has the day, all prospects): every March buyer
    entered. Had customer 360 had buyers that day, the empty RFM mart would be a gap."""
    c360 = c360_table(
        [
            {"as_of_date": FEB, "customer_key": "x", "has_purchased": False},
            {"as_of_date": MAR, "customer_key": "x", "has_purchased": True, "net_monetary_12m": 25},
        ]
    )
    rfm = mart_table([{"as_of_date": MAR, "customer_key": "x", "segment": "new", "segment_zh": "新客户"}], RFM_SEGMENTS)
    params = MigrationParams(dimensions=("rfm_segment",))
    out = run(con, segment_migration([MAR], {"rfm_segment": rfm}, c360, params), KEYS)
    assert cells(out, "rfm_segment") == {("entered", "new"): (1, Decimal("25.00"), 1.0)}
    buyers = c360_table([{"as_of_date": FEB, "customer_key": "y"}, {"as_of_date": MAR, "customer_key": "x"}])
    assert con.execute(segment_migration([MAR], {"rfm_segment": rfm}, buyers, params)).empty


def test_two_as_of_dates_in_one_call_equal_separate_calls(con):
    """March's snapshot is the to-side of 03-31 and the from-side of 04-30 (month-end rule)."""
    h = history()
    april = history({FEB: MAR, MAR: APR})  # the same moves one month later
    marts = {k: h["marts"][k].union(april["marts"][k].filter(april["marts"][k].as_of_date == APR)) for k in DIMENSIONS}
    c360 = h["c360"].union(april["c360"].filter(april["c360"].as_of_date == APR))
    both = run(con, segment_migration([MAR, APR], marts, c360), KEYS)
    apart = pd.concat([con.execute(segment_migration([d], marts, c360)) for d in (MAR, APR)])
    pd.testing.assert_frame_equal(both, apart.sort_values(KEYS).reset_index(drop=True))
    assert days(both.as_of_date) == {MAR, APR}
    assert days(both[both.as_of_date == pd.Timestamp(APR)].from_date) == {MAR}


def test_every_customer_is_in_exactly_one_cell(con):
    out = migrate(con, [MAR])
    # lifecycle: 7 in February + n entered; buyer marts: 5 in February + p entered
    assert out.groupby("dimension").customers.sum().to_dict() == {
        "lifecycle_stage": 8,
        "rfm_segment": 6,
        "value_tier": 6,
    }
    assert out.groupby(["dimension", "from_code"]).share_of_from.sum().round(12).eq(1).all()


def test_dimensions_parameter_selects_the_matrices(con):
    h = history()
    params = MigrationParams(dimensions=("lifecycle_stage",))
    out = con.execute(segment_migration([MAR], {"lifecycle_stage": h["marts"]["lifecycle_stage"]}, h["c360"], params))
    assert set(out.dimension) == {"lifecycle_stage"}
    with pytest.raises(ValueError, match=r"no mart given for dimensions \['rfm_segment', 'lifecycle_stage'\]"):
        segment_migration([MAR], {"value_tier": h["marts"]["value_tier"]}, h["c360"], MigrationParams())
    with pytest.raises(ValueError, match="days must not be empty"):
        segment_migration([], h["marts"], h["c360"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period_months": 0}, "period_months must be at least 1"),
        ({"period_months": 1.5}, "period_months must be a whole number"),
        ({"max_gap_days": True}, "max_gap_days must be a whole number"),
        ({"max_gap_days": -1}, r"max_gap_days must lie in \[0, 28\)"),
        ({"max_gap_days": 28}, r"max_gap_days must lie in \[0, 28\)"),
        ({"dimensions": ()}, "dimensions must not be empty"),
        ({"dimensions": ("rfm",)}, r"unknown dimensions \['rfm'\]"),
        ({"dimensions": ("value_tier", "value_tier")}, "dimensions must not repeat"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MigrationParams(**kwargs)


def test_defaults():
    p = MigrationParams()
    assert (p.period_months, p.max_gap_days) == (1, 7)
    assert p.dimensions == ("rfm_segment", "value_tier", "lifecycle_stage")
    assert MigrationParams(dimensions=["value_tier"]).dimensions == ("value_tier",)
    assert MigrationParams(period_months=3, max_gap_days=80).max_gap_days == 80


# --- the asset ---------------------------------------------------------------------------


def _warehouse(con, h) -> None:
    tables = [(s, h["marts"][name]) for name, (s, *_) in DIMENSIONS.items()] + [(CUSTOMER_360, h["c360"])]
    for schema, table in tables:
        Warehouse.ensure_table(con, schema.table, schema.columns, schema.description)
        Warehouse.replace_rows(con, [Replace(schema.table, schema.columns, table, {})])


def test_asset_compute_reads_from_dates_outside_the_batch_and_logs_gaps(con):
    from analytics.charts import lifecycle_migration_heatmap
    from assets.migration import _migration
    from assets.snapshots import Batch

    _warehouse(con, history())
    logged: list[str] = []
    settings = SimpleNamespace(migration=MigrationParams(), version="v9")
    with Scratch(con) as scratch:
        batch = Batch(con, [FEB, MAR], settings, lambda: b"", scratch, logged.append)
        out = run(con, _migration(batch)[SEGMENT_MIGRATION.table], KEYS)
    # the batch also holds 02-28, whose from-window 01-24..01-31 has no snapshot
    assert days(out.as_of_date) == {MAR} and set(out.settings_version) == {"v9"}
    pd.testing.assert_frame_equal(
        out.drop(columns="settings_version"), migrate(con, [MAR]).drop(columns="settings_version")
    )
    assert len(logged) == 3
    assert "marts.lifecycle has no snapshot between 2025-01-24 and 2025-01-31 (from-date of 2025-02-28)" in logged[0]
    plot = lifecycle_migration_heatmap(out)
    assert plot is not None and plot.png.startswith(b"\x89PNG")
    assert lifecycle_migration_heatmap(out[out.dimension == "rfm_segment"]) is None
