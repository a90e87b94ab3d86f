"""Comparing two warehouses table by table, engine-neutrally: the Spark parity tests read
the same tables from DuckDB and from Spark, and representation differences (NaN vs None vs
NA, Decimal vs float, tz-aware vs naive UTC timestamps, row order) must not count, while
every value difference does (floats within a relative tolerance)."""

from __future__ import annotations

import datetime as dt
import decimal
import math

import numpy as np
import pandas as pd

#: Relative tolerance for floating-point columns (sums in another order, another libm).
RTOL = 1e-6
ATOL = 1e-9


def _plain(value: object) -> object:
    """One value in a form both engines' results share."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        value = value.tz_convert("UTC").tz_localize(None) if value.tzinfo else value
        return value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, np.datetime64):
        return _plain(pd.Timestamp(value))
    if isinstance(value, dt.date):  # a DATE read as a date or as a midnight timestamp
        return dt.datetime(value.year, value.month, value.day)
    return value


def normalise(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Plain Python values (object columns), rows in a canonical order."""
    out = pd.DataFrame({c: [_plain(v) for v in frame[c].tolist()] for c in columns}, dtype=object)
    order = sorted(range(len(out)), key=lambda i: tuple(repr(out.iat[i, j]) for j in range(len(columns))))
    return out.iloc[order].reset_index(drop=True)


def _close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool | str) or isinstance(b, bool | str):
            return a == b
        return math.isclose(float(a), float(b), rel_tol=RTOL, abs_tol=ATOL)
    return a == b


def differences(left: pd.DataFrame, right: pd.DataFrame, ignore: tuple[str, ...] = ()) -> list[str]:
    """What differs between two versions of one table (empty: the same rows)."""
    columns = [c for c in left.columns if c not in ignore]
    missing = sorted(set(columns) - set(right.columns))
    if missing:
        return [f"columns missing: {missing}"]
    if len(left) != len(right):
        return [f"{len(left)} rows vs {len(right)}"]
    a, b = normalise(left, columns), normalise(right, columns)
    problems = []
    for c in columns:
        bad = [i for i, (x, y) in enumerate(zip(a[c], b[c], strict=True)) if not _close(x, y)]
        if bad:
            shown = ", ".join(f"{a[c][i]!r} vs {b[c][i]!r}" for i in bad[:3])
            problems.append(f"{c}: {len(bad)} of {len(a)} differ ({shown})")
    return problems
