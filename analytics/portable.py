"""Ibis expressions that compile to the same result on every engine we run (DuckDB, Spark).

Where an Ibis method compiles differently per backend, the marts use the helper here, so
the difference is fixed once and named (tests/test_spark_parity.py finds new ones)."""

from __future__ import annotations

import ibis.expr.types as ir


def strip(value: ir.StringValue) -> ir.StringValue:
    """Leading and trailing whitespace removed. Not `StringValue.strip()`: Ibis 12 compiles it
    to TRIM(' \\t\\n\\r\\v\\f' FROM …), and Spark SQL reads the \\v and \\f escapes as the
    letters v and f, so 'finance@…' lost its leading f on Spark."""
    return value.re_replace(r"^\s+|\s+$", "")


def cents(value: ir.NumericValue) -> ir.DecimalValue:
    """A money amount computed in floating point (a mean, a share of a total, a model's
    expectation) as DECIMAL(18,2), rounded half away from zero the same way on every engine.
    Not `round(2)` / a cast: DuckDB scales the double by 100 before rounding, Spark rounds its
    exact binary value, so 130.515 became 130.52 on one and 130.51 on the other. Both agree on
    rounding the scaled double to a whole number, and on reading k/100 back as k cents."""
    return ((value.cast("float64") * 100.0).round(0) / 100.0).cast("decimal(18, 2)")
