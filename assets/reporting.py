"""Small helpers shared by assets for metadata: markdown tables and day lists."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd


def partition_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The business days this run covers (one for a nightly run, many for a backfill)."""
    return [dt.date.fromisoformat(k) for k in context.partition_keys]


def markdown(frame: pd.DataFrame, limit: int = 20) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_(no rows)_")
    shown = frame.head(limit)
    note = f"\n\n_{len(frame) - limit} more rows not shown_" if len(frame) > limit else ""
    return dg.MetadataValue.md(shown.to_markdown(index=False) + note)
