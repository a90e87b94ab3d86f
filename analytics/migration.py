"""Segment migration (客户迁移): how customers moved between the RFM segments, value tiers
and lifecycle stages from one snapshot to a later one, as transition matrices of
customers and of the revenue they now bring. A segment's size says little on its own;
whether last month's champions are still champions, and where the lost ones went, is
what a CRM team acts on.

Dates. Each as-of date D is compared with the from-date ``period_months`` months
earlier (``MigrationParams``). The same day of that month, clamped to its last day
(2025-03-31 -> 2025-02-28); a D that is itself a month-end maps to the month-end
(2025-02-28 -> 2025-01-31, not 01-28), the end-of-month rule of date arithmetic. The
month-end rule matters because month-ends are the snapshots kept long term
(``snapshot_recent_days``): without it April 30 would be compared with March 30, a
day that is usually not kept, and half the month-ends would have no migration.

Snapshots exist only on some days. When a dimension's mart has no snapshot on the
target day, the latest snapshot on or before it is used, but none older than
``max_gap_days`` before it; ``from_date`` records the day used. Without one (or
without a snapshot on D itself) that dimension has no rows for D: a matrix against a
far older snapshot would look like a monthly one and not be. A buyer mart (RFM, value
tiers) with no rows is a real snapshot when customer 360 has that day and nobody had
bought yet, so the first month's buyers count as entered rather than silently missing.

Grain: one row per (as_of_date, dimension, from_code, to_code) with at least one
customer (empty cells have no row). Codes and Chinese labels are those of the source
mart (``segment``/``segment_zh``, ``tier``/``tier_zh``, ``stage``/``stage_zh``). A
customer in only one of the two snapshots moves from or to a state outside the mart:

- ``entered`` (新增): not in the from-date snapshot. Lifecycle covers every known
  customer, so there it means a customer first known after the from-date. RFM and value
  tiers cover buying customers only, so there it also means a prospect who made a first
  purchase (the buyer matrices have no prospect row; the lifecycle one has potential).
- ``exited`` (移出): not in the D snapshot, e.g. a key merged into another by identity
  resolution, or (buyer marts) a customer whose only purchase was later cancelled. It is
  not churn: churned customers stay in the snapshot as ``lost`` / ``termination``.

The outside codes are not ``new`` / ``gone``: ``new`` is an RFM segment (新客户), and
an outside state must never be mistaken for a real one. Neither code is used by any of
the three marts (a test checks it).

Measures: ``customers`` in the cell; ``revenue_12m`` = their net_monetary_12m at D
from customer 360 (what the moved customers are worth now; 0 for a customer no longer
in customer 360); ``share_of_from`` = customers / customers of the row's from_code at
the from-date (the row of the matrix sums to 1, including ``exited``). Customers are
counted by customer_key, so each customer of either snapshot is in exactly one cell.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import ibis
import ibis.expr.types as ir
import pandas as pd

from analytics.lifecycle import LIFECYCLE
from analytics.rfm import RFM_SEGMENTS
from analytics.schema import Col, MartSchema, as_of_col, version_col
from analytics.value import VALUE_TIERS

# ruff: noqa: E501  (column descriptions are documentation; keep them on one line)


class Dimension(NamedTuple):
    """A segmentation migration is measured on: its mart, code columns, population."""

    schema: MartSchema
    code: str
    code_zh: str
    #: The mart only has buying customers (customer 360 has_purchased).
    buyers_only: bool


DIMENSIONS: dict[str, Dimension] = {
    "rfm_segment": Dimension(RFM_SEGMENTS, "segment", "segment_zh", True),
    "value_tier": Dimension(VALUE_TIERS, "tier", "tier_zh", True),
    "lifecycle_stage": Dimension(LIFECYCLE, "stage", "stage_zh", False),
}

#: Outside states: (code, Chinese label) of a customer missing from the from / the D snapshot.
ENTERED = ("entered", "新增")
EXITED = ("exited", "移出")


@dataclass(frozen=True)
class MigrationParams:
    """Which snapshots are compared and on which segmentations."""

    #: Compare each as-of date with the same day this many months earlier (month-ends with month-ends).
    period_months: int = 1
    #: Without a snapshot on that day, use the latest one at most this many days earlier; else no rows.
    max_gap_days: int = 7
    #: Segmentations to compare: rfm_segment, value_tier, lifecycle_stage.
    dimensions: tuple[str, ...] = tuple(DIMENSIONS)

    def __post_init__(self) -> None:
        for name in ("period_months", "max_gap_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        if self.period_months < 1:
            raise ValueError(f"period_months must be at least 1, got {self.period_months}")
        if not 0 <= self.max_gap_days < 28 * self.period_months:
            # the fallback must stay within one period, else a monthly matrix could span two months
            raise ValueError(
                f"max_gap_days must lie in [0, {28 * self.period_months}) (shorter than the shortest "
                f"period of {self.period_months} month(s)), got {self.max_gap_days}"
            )
        dims = (self.dimensions,) if isinstance(self.dimensions, str) else tuple(self.dimensions)
        object.__setattr__(self, "dimensions", dims)
        if not dims:
            raise ValueError("dimensions must not be empty")
        unknown = [d for d in dims if d not in DIMENSIONS]
        if unknown:
            raise ValueError(f"unknown dimensions {unknown}; known: {list(DIMENSIONS)}")
        if len(set(dims)) != len(dims):
            raise ValueError(f"dimensions must not repeat, got {list(dims)}")


_M = "DECIMAL(18,2)"

SEGMENT_MIGRATION = MartSchema(
    table="marts.segment_migration",
    description="Segment migration (客户迁移): customers and their revenue moving between RFM segments, value tiers and lifecycle stages since the from-date, per as-of date.",
    key=("dimension", "from_code", "to_code"),
    columns=(
        as_of_col(),
        Col(
            "from_date",
            "DATE",
            "Snapshot compared with: period_months before as_of_date (month-end to month-end), or the latest snapshot at most max_gap_days before that.",
        ),
        Col(
            "dimension",
            "VARCHAR",
            "rfm_segment (marts.rfm_segments.segment), value_tier (marts.value_tiers.tier) or lifecycle_stage (marts.lifecycle.stage).",
        ),
        Col("from_code", "VARCHAR", "Code at from_date, or 'entered' for customers not in that snapshot."),
        Col("from_code_zh", "VARCHAR", "from_code in Chinese (the source mart's label; 新增 for entered)."),
        Col(
            "to_code", "VARCHAR", "Code at as_of_date, or 'exited' for customers no longer in the snapshot (not churn)."
        ),
        Col("to_code_zh", "VARCHAR", "to_code in Chinese (the source mart's label; 移出 for exited)."),
        Col("customers", "BIGINT", "Customers in from_code at from_date and in to_code at as_of_date."),
        Col(
            "revenue_12m",
            _M,
            "Their net_monetary_12m at as_of_date (customer 360), CNY; 0 for customers no longer there.",
        ),
        Col("share_of_from", "DOUBLE", "customers / customers of from_code at from_date (each matrix row sums to 1)."),
        version_col(),
    ),
)


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day `months` earlier, clamped to that month's end; a month-end maps to a month-end."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    month_end = day.day == calendar.monthrange(day.year, day.month)[1]
    return dt.date(year, month + 1, last if month_end else min(day.day, last))


def from_window(day: dt.date, params: MigrationParams) -> tuple[dt.date, dt.date]:
    """(earliest, target): the days whose snapshot may stand for `day`'s from-date."""
    target = months_before(day, params.period_months)
    return target - dt.timedelta(days=params.max_gap_days), target


def needed_dates(days: Sequence[dt.date], params: MigrationParams) -> list[dt.date]:
    """Every snapshot day the migration of `days` may read: the days and their from-windows."""
    out = set(days)
    for day in days:
        earliest, target = from_window(day, params)
        out |= {earliest + dt.timedelta(days=i) for i in range((target - earliest).days + 1)}
    return sorted(out)


def _windows(days: Sequence[dt.date], params: MigrationParams) -> ir.Table:
    rows = [(day, *from_window(day, params)) for day in sorted(set(days))]
    frame = pd.DataFrame(rows, columns=["as_of_date", "earliest_date", "target_date"])
    return ibis.memtable(frame, schema={"as_of_date": "date", "earliest_date": "date", "target_date": "date"})


def _snapshot_days(mart: ir.Table, c360: ir.Table, dim: Dimension) -> ir.Table:
    """Days the dimension has a snapshot (column snap_date). A buyer mart has no rows on a day
    when nobody had bought yet; such a day counts if customer 360 has it."""
    days = mart.select(snap_date=mart.as_of_date.cast("date")).distinct()
    if not dim.buyers_only:
        return days
    per_day = c360.group_by("as_of_date").aggregate(_buyers=c360.has_purchased.any())
    empty = per_day.filter(~per_day._buyers.fill_null(False))
    return days.union(empty.select(snap_date=empty.as_of_date.cast("date")), distinct=True)


def _dimension_dates(
    days: Sequence[dt.date], mart: ir.Table, c360: ir.Table, dim: Dimension, params: MigrationParams
) -> ir.Table:
    w = _windows(days, params)
    snaps = _snapshot_days(mart, c360, dim)
    cand = w.join(snaps, [snaps.snap_date >= w.earliest_date, snaps.snap_date <= w.target_date])
    picked = cand.group_by("as_of_date").aggregate(from_date=cand.snap_date.max())
    present = w.join(snaps, w.as_of_date == snaps.snap_date).select(_d=w.as_of_date, _present=ibis.literal(True))
    out = w.left_join(picked, "as_of_date").left_join(present, w.as_of_date == present._d)
    return out.select(
        "as_of_date",
        "earliest_date",
        "target_date",
        from_date=out.from_date.cast("date"),
        to_snapshot=out._present.fill_null(False),
    )


def _check_inputs(marts: Mapping[str, ir.Table], params: MigrationParams) -> None:
    missing = [d for d in params.dimensions if d not in marts]
    if missing:
        raise ValueError(
            f"no mart given for dimensions {missing}: pass {{dimension: table}} for {list(params.dimensions)}"
        )


def from_dates(
    days: Sequence[dt.date], marts: Mapping[str, ir.Table], c360: ir.Table, params: MigrationParams
) -> ir.Table:
    """Per as-of date and dimension: the from-window, the from_date found (null if none) and
    whether the dimension has a snapshot on the as-of date itself (to_snapshot). A row
    without both produces no migration rows; the asset logs it."""
    _check_inputs(marts, params)
    parts = [
        _dimension_dates(days, marts[name], c360, DIMENSIONS[name], params).mutate(dimension=ibis.literal(name))
        for name in params.dimensions
    ]
    return ibis.union(*parts).select(
        "as_of_date", "dimension", "earliest_date", "target_date", "from_date", "to_snapshot"
    )


def _side(dates: ir.Table, mart: ir.Table, dim: Dimension, on: str, prefix: str) -> ir.Table:
    """The customers and codes of the snapshot at dates.<on> (from_date or as_of_date), keyed by
    the as-of date they are compared for."""
    src = mart.select(
        _snap=mart.as_of_date.cast("date"),
        _key=mart.customer_key,
        _code=mart[dim.code],
        _code_zh=mart[dim.code_zh],
    )
    j = dates.join(src, dates[on] == src._snap)
    return j.select(
        **{
            f"{prefix}_d": j.as_of_date,
            f"{prefix}_f": j.from_date,
            f"{prefix}_key": j._key,
            f"{prefix}_code": j._code,
            f"{prefix}_code_zh": j._code_zh,
        }
    )


def _moves(
    days: Sequence[dt.date], mart: ir.Table, c360: ir.Table, dim: Dimension, params: MigrationParams
) -> ir.Table:
    """One row per customer in either snapshot: as_of_date, from_date, customer_key and both codes."""
    dates = _dimension_dates(days, mart, c360, dim, params)
    dates = dates.filter(dates.from_date.notnull() & dates.to_snapshot).select("as_of_date", "from_date")
    a = _side(dates, mart, dim, "from_date", "a")
    b = _side(dates, mart, dim, "as_of_date", "b")
    j = a.outer_join(b, [a.a_d == b.b_d, a.a_f == b.b_f, a.a_key == b.b_key])
    return j.select(
        as_of_date=ibis.coalesce(j.a_d, j.b_d),
        from_date=ibis.coalesce(j.a_f, j.b_f),
        customer_key=ibis.coalesce(j.a_key, j.b_key),
        from_code=ibis.ifelse(j.a_key.isnull(), ENTERED[0], j.a_code),
        from_code_zh=ibis.ifelse(j.a_key.isnull(), ENTERED[1], j.a_code_zh),
        to_code=ibis.ifelse(j.b_key.isnull(), EXITED[0], j.b_code),
        to_code_zh=ibis.ifelse(j.b_key.isnull(), EXITED[1], j.b_code_zh),
    )


def segment_migration(
    days: Sequence[dt.date],
    marts: Mapping[str, ir.Table],
    c360: ir.Table,
    params: MigrationParams | None = None,
    *,
    settings_version: str = "",
) -> ir.Table:
    """The SEGMENT_MIGRATION mart for the as-of dates `days`.

    `marts` maps each dimension of `params.dimensions` to its mart (RFM_SEGMENTS,
    VALUE_TIERS, LIFECYCLE) and `c360` is customer 360; all three must hold the
    snapshots of `days` and of their from-windows (extra dates are ignored)."""
    params = params or MigrationParams()
    if not days:
        raise ValueError("days must not be empty")
    _check_inputs(marts, params)
    rev = c360.select(_rd=c360.as_of_date.cast("date"), _rk=c360.customer_key, _rev=c360.net_monetary_12m)
    parts = []
    for name in params.dimensions:
        m = _moves(days, marts[name], c360, DIMENSIONS[name], params)
        # view(): Ibis 12 would otherwise extend the outer join's chain and reject the predicates
        m = m.view()
        m = m.left_join(rev, [m.as_of_date == rev._rd, m.customer_key == rev._rk])
        cells = m.group_by(["as_of_date", "from_date", "from_code", "from_code_zh", "to_code", "to_code_zh"]).aggregate(
            customers=m.count(),
            revenue_12m=m._rev.fill_null(0).sum(),
        )
        parts.append(cells.mutate(dimension=ibis.literal(name)))
    cells = ibis.union(*parts)
    row = ibis.window(group_by=[cells.as_of_date, cells.dimension, cells.from_code])
    return cells.select(
        as_of_date=cells.as_of_date.cast("date"),
        from_date=cells.from_date.cast("date"),
        dimension=cells.dimension,
        from_code=cells.from_code,
        from_code_zh=cells.from_code_zh,
        to_code=cells.to_code,
        to_code_zh=cells.to_code_zh,
        customers=cells.customers.cast("int64"),
        revenue_12m=cells.revenue_12m.cast("decimal(18, 2)"),
        share_of_from=(cells.customers.cast("float64") / cells.customers.sum().over(row).cast("float64")),
        settings_version=ibis.literal(settings_version, type="string"),
    )
