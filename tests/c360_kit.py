"""Shared test helpers for the marts that start from customer 360: typed memtables built
from a few hand-written columns, the schema check every mart test makes, a sorted
executor, and the CDNOW data as customer 360 facts.

One place maps the marts' SQL storage types to Ibis and Arrow types and to the value a
column gets when a test does not mention it."""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pytest

from analytics.customer360 import CUSTOMER_360
from analytics.schema import MartSchema

#: The snapshot date of the test tables unless a test says otherwise.
AS_OF = dt.date(2025, 6, 30)


class SqlType(NamedTuple):
    """How a mart's SQL storage type looks to Ibis and to Arrow, and a column's default value."""

    ibis: str
    arrow: pa.DataType
    default: object


SQL_TYPES: dict[str, SqlType] = {
    "VARCHAR": SqlType("string", pa.string(), ""),
    "BIGINT": SqlType("int64", pa.int64(), 0),
    "DATE": SqlType("date", pa.date32(), None),
    "DOUBLE": SqlType("float64", pa.float64(), None),
    "BOOLEAN": SqlType("boolean", pa.bool_(), False),
    "DECIMAL(18,2)": SqlType("decimal(18, 2)", pa.decimal128(18, 2), 0.0),
}

_CENT = Decimal("0.01")


def _arrow_column(values: list, sql_type: str) -> pa.Array:
    """One column in its storage type; None, NaN and NaT are null."""
    if sql_type.startswith("DECIMAL"):
        values = [None if v is None or pd.isna(v) else Decimal(str(v)).quantize(_CENT) for v in values]
    return pa.array(values, type=SQL_TYPES[sql_type].arrow, from_pandas=True)


def mart_table(
    rows: Sequence[Mapping] | pd.DataFrame, schema: MartSchema, defaults: Mapping[str, object] | None = None
) -> ir.Table:
    """A memtable with exactly the columns of `schema`, each in its storage type.

    A value given in a row is kept (an explicit None or NaN is null); a column a row does not
    mention gets `defaults[name]`, else the default of its type. Built as Arrow rather than
    cast in SQL: casting the 65 columns of customer 360 makes every query slow to compile."""
    defaults = defaults or {}
    given = set(rows.columns) if isinstance(rows, pd.DataFrame) else {name for row in rows for name in row}
    unknown = given - set(schema.names)
    if unknown:
        raise ValueError(f"not columns of {schema.table}: {sorted(unknown)}")
    n = len(rows)
    arrays = {}
    for col in schema.columns:
        default = defaults.get(col.name, SQL_TYPES[col.sql_type].default)
        if isinstance(rows, pd.DataFrame):
            values = rows[col.name].tolist() if col.name in rows else [default] * n
        else:
            values = [row.get(col.name, default) for row in rows]
        arrays[col.name] = _arrow_column(values, col.sql_type)
    return ibis.memtable(pa.table(arrays))


def c360_table(
    rows: Sequence[Mapping] | pd.DataFrame, as_of: dt.date = AS_OF, *, defaults: Mapping[str, object] | None = None
) -> ir.Table:
    """A customer-360-shaped memtable (CUSTOMER_360 columns and types) from the columns a test
    cares about: as_of_date defaults to `as_of`, has_purchased to True (a buyer unless the row
    says otherwise), then `defaults`, then the default of each column's type."""
    return mart_table(rows, CUSTOMER_360, {"as_of_date": as_of, "has_purchased": True, **(defaults or {})})


def prospect(key: str, **override) -> dict:
    """A customer 360 row of someone who has not bought yet."""
    return {"customer_key": key, "has_purchased": False, "days_since_last": None, "age_days": None, **override}


def run(con, expr: ir.Table, keys: list[str]) -> pd.DataFrame:
    """Execute and sort by `keys` (nulls last), so results compare independent of row order."""
    return con.execute(expr).sort_values(keys).reset_index(drop=True)


def assert_schema(expr: ir.Table, schema: MartSchema) -> None:
    """The expression yields exactly the mart's columns, in order, with its storage types."""
    assert list(expr.columns) == schema.names
    assert [str(t) for t in expr.schema().types] == [SQL_TYPES[c.sql_type].ibis for c in schema.columns]


# --- CDNOW: a public data set for checks against an independent plain-pandas computation ----------

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
    """The facts of `cdnow_c360` as a customer 360 table (money in CNY)."""
    frame = facts.assign(
        net_monetary=facts.cents / 100,
        net_monetary_12m=facts.cents_12m / 100,
        profit_12m=facts.profit_cents_12m / 100,
        profit=facts.profit_cents_12m / 100,
    ).drop(columns=["cents", "cents_12m", "profit_cents_12m"])
    return c360_table(frame, as_of=CDNOW_AS_OF)
