"""What is known on an as-of date: the one definition every snapshot mart uses.

A row counts for as-of date d when its business date *and* the day that delivered it
(`_partition_date`) are on or before d, so a late delivery never rewrites an older
snapshot. Mutable feeds (customers, payments, leads) restate a key on a later day: the
version known on d is the newest delivered by then.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

#: Ties within one delivery day (the router prevents them) fall back to file and line.
DELIVERY_ORDER = ("_source_file", "_source_line")


def known(rows: ir.Table, as_of: ir.Table) -> ir.Table:
    """`rows` joined to every as-of date (column as_of_date) on which they are known."""
    return rows.join(as_of, (rows.business_date <= as_of.as_of_date) & (rows._partition_date <= as_of.as_of_date))


def newest(rows: ir.Table, key: str, tiebreak: Sequence[str] = DELIVERY_ORDER) -> ir.Table:
    """The newest delivered version of each `key` per as-of date (rows from `known`)."""
    order = [rows._partition_date.desc(), *(rows[c].desc() for c in tiebreak)]
    rank = ibis.row_number().over(group_by=[rows.as_of_date, rows[key]], order_by=order)
    return rows.mutate(_version=rank).filter(lambda t: t._version == 0).drop("_version")
