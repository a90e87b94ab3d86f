"""Charts in the asset metadata: a `Chart` (analytics/charts.py) as Dagster markdown with the
PNG embedded, so the plot travels with the materialization and needs no file server."""

from __future__ import annotations

import base64

import dagster as dg

from analytics.charts import Chart


def metadata(chart: Chart) -> dg.MetadataValue:
    data = base64.b64encode(chart.png).decode("ascii")
    return dg.MetadataValue.md(f"![{chart.title}](data:image/png;base64,{data})")
