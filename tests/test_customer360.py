"""Customer 360: every field on a hand-computed fixture, only data known by the as-of
date, buyers and non-buyers, row-order independence."""

import datetime as dt
from decimal import Decimal

import ibis
import pandas as pd
import pytest

from analytics.customer360 import CUSTOMER_360, Customer360Params, customer_360, kept_purchase_days
from analytics.identity import IdentityParams, Scratch, current_records, customer_identity
from pipelines.warehouse import Replace, Warehouse
from quality.contracts import FEEDS
from quality.ingest import staging_columns

AS_OF = dt.date(2025, 6, 30)
D = dt.date.fromisoformat


def _rows(feed, rows):
    cols = staging_columns(FEEDS[feed])
    frame = pd.DataFrame([{c.name: r.get(c.name) for c in cols} for r in rows], columns=[c.name for c in cols])
    for i, r in enumerate(rows):
        event = r.get("business_date") or r[FEEDS[feed].event_column]
        frame.loc[i, "business_date"] = event if isinstance(event, dt.date) else event.date()
        frame.loc[i, "_partition_date"] = r.get("_partition_date", frame.loc[i, "business_date"])
        frame.loc[i, "_source_file"] = f"{feed}/x.csv"
        frame.loc[i, "_source_line"] = i + 2
    return frame.astype(object).where(frame.notna(), None)


def load(con, feed, rows):
    cols = staging_columns(FEEDS[feed])
    Warehouse.ensure_table(con, f"staging.{feed}", cols)
    Warehouse.replace_rows(con, [Replace(f"staging.{feed}", cols, _rows(feed, rows), {})])


def customer(ref, signup, cost, **kw):
    return {
        "customer_ref": ref,
        "source_system": "crm",
        "name": "x",
        "phone": kw.pop("phone", None),
        "kind": kw.pop("kind", "enterprise"),
        "region": "上海",
        "signup_date": D(signup),
        "acquisition_channel": kw.pop("channel", "trade_show"),
        "acquisition_cost": Decimal(cost),
        **kw,
    }


def line(order, no, ref, day, category, qty, price, disc, status="completed", **kw):
    at = pd.Timestamp(f"{day} 10:00", tz="Asia/Shanghai")
    return {
        "order_id": order,
        "line_no": no,
        "customer_ref": ref,
        "ordered_at": at,
        "business_date": D(day),
        "product_id": f"P-{category}",
        "category": category,
        "quantity": qty,
        "unit_price": Decimal(price),
        "discount": Decimal(disc),
        "currency": "CNY",
        "status": status,
        "channel": "web",
        **kw,
    }


def invoice(inv, ref, amount, issued, due, paid=None, delivered=None):
    return {
        "invoice_id": inv,
        "customer_ref": ref,
        "order_id": "O",
        "amount": Decimal(amount),
        "invoice_date": D(issued),
        "due_date": D(due),
        "paid_date": D(paid) if paid else None,
        "_partition_date": D(delivered or issued),
    }


def interaction(i, ref, day, kind):
    return {
        "interaction_id": i,
        "customer_ref": ref,
        "at": pd.Timestamp(f"{day} 09:00", tz="Asia/Shanghai"),
        "type": kind,
        "channel": "phone",
    }


def survey(rid, ref, day, sats, recommend, speeder=False):
    return {
        "response_id": rid,
        "customer_ref": ref,
        "started_at": pd.Timestamp(f"{day} 09:00", tz="Asia/Shanghai"),
        "sat_1": sats[0],
        "sat_2": sats[1],
        "sat_3": sats[2],
        "recommend": recommend,
        "is_speeder": speeder,
        "is_straightliner": False,
        "failed_attention": False,
        "is_duplicate_respondent": False,
    }


@pytest.fixture
def fixture_con(con):
    load(
        con,
        "customers",
        [
            customer("R1", "2025-01-01", "100", phone="13900000001", employees=50),
            customer("R2", "2025-02-01", "20", phone="139 0000 0001", employees=60),
            customer("R3", "2025-03-01", "5", phone="13900000003", kind="individual"),
        ],
    )
    load(
        con,
        "orders",
        [
            line("O1", 1, "R1", "2025-01-10", "groceries", 2, "10.00", "0.00"),
            line("O1", 2, "R1", "2025-01-10", "electronics", 1, "100.00", "10.00"),
            line("O2", 1, "R2", "2025-03-10", "toys", 1, "50.00", "0.00"),
            line("O3", 1, "R1", "2025-03-10", "books", 1, "30.00", "0.00"),
            line("RT1", 1, "R1", "2025-03-15", "electronics", 1, "100.00", "10.00", "returned", original_order_id="O1"),
            line("O4", 1, "R1", "2025-04-01", "toys", 1, "80.00", "0.00", "cancelled"),
            line("O5", 1, "R1", "2025-07-05", "toys", 1, "80.00", "0.00"),  # after the as-of date
            line("O6", 1, "R1", "2025-06-29", "toys", 1, "80.00", "0.00", _partition_date=D("2025-07-02")),  # late
        ],
    )
    load(
        con,
        "payments",
        [
            invoice("I1", "R1", "110", "2025-01-10", "2025-02-09"),
            invoice("I1", "R1", "110", "2025-01-10", "2025-02-09", paid="2025-02-20", delivered="2025-02-20"),
            invoice("I2", "R2", "50", "2025-03-10", "2025-04-09"),
            invoice("I3", "R1", "30", "2025-03-10", "2025-04-09"),
            invoice("I3", "R1", "30", "2025-03-10", "2025-04-09", paid="2025-04-01", delivered="2025-04-01"),
        ],
    )
    load(
        con,
        "interactions",
        [
            interaction("X1", "R1", "2025-02-01", "complaint"),
            interaction("X2", "R1", "2025-03-01", "praise"),
            interaction("X3", "R2", "2025-03-05", "campaign_response"),
            interaction("X4", "R2", "2025-07-01", "suggestion"),
        ],
    )
    load(
        con,
        "surveys",
        [
            survey("S1", "R1", "2025-04-01", (7, 8, 9), 9),
            survey("S2", "R2", "2025-05-01", (5, 5, 5), 3, speeder=True),
        ],
    )
    return con


def build(con, days, params=None):
    as_of = ibis.memtable(pd.DataFrame({"as_of_date": list(days)}), schema={"as_of_date": "date"})
    st = lambda name: con.table(name, database="staging")  # noqa: E731
    with Scratch(con) as scratch:
        records = scratch.keep(current_records(st("customers"), as_of))
        identity = scratch.keep(customer_identity(scratch, records, IdentityParams(), b"s"))
        expr = customer_360(
            records=records,
            identity=identity,
            orders=st("orders"),
            payments=st("payments"),
            interactions=st("interactions"),
            surveys=st("surveys"),
            as_of=as_of,
            params=params or Customer360Params(),
            settings_version="v",
        )
        assert list(expr.columns) == CUSTOMER_360.names
        out = con.execute(expr)
    return out.sort_values(["as_of_date", "records"], ascending=[True, False]).reset_index(drop=True)


def test_every_field_of_a_hand_computed_customer(fixture_con):
    out = build(fixture_con, [AS_OF])
    assert len(out) == 2  # R1 and R2 share a phone: one customer; R3 is another
    c = out.iloc[0].to_dict()
    expected = {
        "kind": "enterprise",
        "kind_zh": "企业客户",
        "records": 2,
        "signup_date": pd.Timestamp("2025-01-01"),
        "tenure_days": 180,
        "acquisition_cost": Decimal("120.00"),
        "employees": 60,
        "has_purchased": True,
        "order_count": 3,
        "purchase_days": 2,
        "frequency": 1,
        "recency_days": 59,
        "days_since_last": 112,
        "age_days": 171,
        "purchase_cycle_days": 59.0,
        "last_gap_days": 59,
        "max_gap_days": 59,
        "purchase_days_12m": 2,
        "purchase_days_prev_12m": 0,
        "gross_amount": Decimal("190.00"),
        "returns_amount": Decimal("90.00"),
        "return_count": 1,
        "net_monetary": Decimal("100.00"),
        "net_monetary_12m": Decimal("100.00"),
        "net_monetary_prev_12m": Decimal("0.00"),
        "avg_order_value": Decimal("63.33"),
        "max_order_value": Decimal("110.00"),
        "avg_repeat_value": Decimal("80.00"),  # Mar 10: 50 + 30
        "category_count": 4,
        "discount_share": 0.05,
        "full_price_share": 0.75,
        "repeat_purchase_rate": 0.5,
        "invoiced_amount": Decimal("190.00"),
        "outstanding_balance": Decimal("50.00"),
        "overdue_count": 2,
        "overdue_open_count": 1,
        "avg_collection_days": 31.5,
        "avg_days_late": 5.5,
        "complaints": 1,
        "praises": 1,
        "suggestions": 0,
        "campaign_responses": 1,
        "complaint_ratio": 0.5,
        "praise_ratio": 0.5,
        "suggestion_ratio": 0.0,
        "campaign_responses_12m": 1,
        "surveys": 1,
        "satisfaction": 8.0,
        "recommend": 9,
        # margin: 20*.18 + 90*.12 + 50*.30 + 30*.25 - 90*.12 (returned) = 26.10
        "gross_margin": Decimal("26.10"),
        # 120 acquisition + 20 yearly + 1 campaign response * 8
        "marketing_cost": Decimal("148.00"),
        # 1 return * 15 + 1 complaint * 40
        "service_cost": Decimal("55.00"),
        "profit": Decimal("-176.90"),
        "gross_margin_12m": Decimal("26.10"),
        "marketing_cost_12m": Decimal("148.00"),
        "profit_12m": Decimal("-176.90"),
    }
    got = {k: c[k] for k in expected}
    for k in ("discount_share", "complaint_ratio", "praise_ratio"):
        got[k] = round(got[k], 12)
    assert got == expected
    assert c["arrears_ratio"] == pytest.approx(50 / 190)


def test_a_customer_without_purchases_is_in_the_360_with_empty_purchase_facts(fixture_con):
    c = build(fixture_con, [AS_OF]).iloc[1].to_dict()
    assert (c["kind"], c["has_purchased"], c["order_count"], c["purchase_days"]) == ("individual", False, 0, 0)
    assert all(pd.isna(c[k]) for k in ("frequency", "recency_days", "days_since_last", "purchase_cycle_days"))
    assert c["gross_amount"] == Decimal("0.00") and c["marketing_cost"] == Decimal("25.00")  # 5 + 20
    assert c["profit"] == Decimal("-25.00")


def test_snapshots_see_only_what_was_known(fixture_con):
    out = build(fixture_con, [dt.date(2025, 2, 15), AS_OF])
    early = out[out.as_of_date == pd.Timestamp("2025-02-15")]
    # R2 signed up on Feb 1 and is already merged; only O1 is known
    top = early.iloc[0]
    assert (top.records, top.order_count, top.gross_amount, top.outstanding_balance) == (2, 1, Decimal("110"), 110)
    assert top.overdue_open_count == 1  # I1 due Feb 9, paid only on Feb 20
    batched = out[out.as_of_date == pd.Timestamp(AS_OF)].reset_index(drop=True)
    pd.testing.assert_frame_equal(batched, build(fixture_con, [AS_OF]))


def test_profit_parameters_are_validated():
    with pytest.raises(ValueError, match="margin"):
        Customer360Params(default_margin=1.5)
    with pytest.raises(ValueError, match="complaint_cost"):
        Customer360Params(complaint_cost=-1)


def test_purchase_days_kept_in_parts_equal_one_piece(con):
    """kept_purchase_days splits the (customer, day) aggregate by customer for the memory
    budget (a 100M run failed in one piece): any number of parts gives the same rows."""
    refs = [f"P{i}" for i in range(12)]
    load(con, "customers", [customer(r, "2025-01-01", "1", phone=f"1380000{i:04d}") for i, r in enumerate(refs)])
    lines = [
        line(f"{r}-{d}", no, r, f"2025-0{d}-1{i % 9}", "toys", no, "10.00", "1.00")
        for i, r in enumerate(refs)
        for d in range(1, 1 + i % 4)
        for no in (1, 2)
    ]
    load(con, "orders", lines)
    as_of = ibis.memtable(
        pd.DataFrame({"as_of_date": [D("2025-02-28"), D("2025-06-30")]}), schema={"as_of_date": "date"}
    )
    st = lambda name: con.table(name, database="staging")  # noqa: E731
    order = ["as_of_date", "customer_key", "purchase_date"]
    with Scratch(con) as scratch:
        records = scratch.keep(current_records(st("customers"), as_of))
        identity = scratch.keep(customer_identity(scratch, records, IdentityParams(), b"s"))
        got = {
            parts: con.execute(kept_purchase_days(scratch, st("orders"), identity, as_of, parts))
            .sort_values(order)
            .reset_index(drop=True)
            for parts in (None, 1, 2, 5)
        }
    one = got[1]
    assert one.customer_key.nunique() == 9 and len(one) == 15 + 18  # days in Jan-Feb by 02-28, Jan-Mar by 06-30
    assert set(one.net_amount.astype(str)) == {"28.00"}  # 1x10-1 + 2x10-1 per order day
    for parts in (None, 2, 5):
        pd.testing.assert_frame_equal(got[parts], one)
