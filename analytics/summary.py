"""The customer summary: the per-customer purchase facts every later mart starts from.

Definitions follow the conventions of the CLV literature (and `lifetimes`), in
days, counted on *purchase days* (several orders on one day are one purchase
occasion), from completed order lines whose business date is on or before the
as-of date:

- frequency: repeat purchase days (distinct purchase days − 1);
- recency_days: days from the first to the last purchase day (lifetimes' recency);
- days_since_last: days from the last purchase day to the as-of date (RFM's R);
- age_days (T): days from the first purchase day to the as-of date;
- net_monetary: completed line value (quantity × unit price − discount) minus
  returned line value, in DECIMAL; never a float sum of money.

Only customers with at least one completed purchase appear. Written with Ibis so
the same expression runs on DuckDB and Spark.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir


def line_value(orders: ir.Table) -> ir.DecimalValue:
    return orders.quantity.cast("decimal(18, 2)") * orders.unit_price - orders.discount


def customer_summary(orders: ir.Table, as_of: dt.date, *, settings_version: str = "") -> ir.Table:
    """Per customer_ref purchase summary as of the end of business day `as_of`."""
    as_of_lit = ibis.literal(as_of, type="date")
    known = orders.filter((orders.business_date <= as_of_lit) & (orders._partition_date <= as_of_lit))
    value = line_value(known)
    known = known.mutate(_value=value)
    completed = known.filter(known.status == "completed")
    returned = known.filter(known.status == "returned")

    bought = completed.group_by("customer_ref").aggregate(
        first_purchase_date=completed.business_date.min(),
        last_purchase_date=completed.business_date.max(),
        purchase_days=completed.business_date.nunique(),
        order_count=completed.order_id.nunique(),
        gross_amount=completed._value.sum(),
    )
    back = returned.group_by("customer_ref").aggregate(
        returns_amount=returned._value.sum(),
        return_count=returned.order_id.nunique(),
    )
    joined = bought.left_join(back, "customer_ref").drop("customer_ref_right")
    returns_amount = joined.returns_amount.fill_null(ibis.literal(0, type="decimal(18, 2)"))
    return joined.select(
        as_of_date=as_of_lit,
        customer_ref=joined.customer_ref,
        first_purchase_date=joined.first_purchase_date,
        last_purchase_date=joined.last_purchase_date,
        order_count=joined.order_count,
        purchase_days=joined.purchase_days,
        frequency=joined.purchase_days - 1,
        recency_days=joined.last_purchase_date.delta(joined.first_purchase_date, unit="day"),
        days_since_last=as_of_lit.delta(joined.last_purchase_date, unit="day"),
        age_days=as_of_lit.delta(joined.first_purchase_date, unit="day"),
        gross_amount=joined.gross_amount,
        returns_amount=returns_amount,
        return_count=joined.return_count.fill_null(0),
        net_monetary=joined.gross_amount - returns_amount,
        settings_version=ibis.literal(settings_version, type="string"),
    )
