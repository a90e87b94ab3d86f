"""The HTML report: `<report_path>/<as_of>/index.html`, one static, self-contained page per
as-of date with the charts a CRM team reads (analytics/charts.py) and the data-quality
balance, for people who do not open a BI tool or the Dagster UI.

Self-contained means one file: the charts are inline PNGs (data: URIs), the style is inline,
there is no script, and a Content-Security-Policy forbids loading anything else, so the page
opens from a mail attachment or a file share with no network. It shows aggregates only
(counts, shares, indices, reason codes), never a customer key or a raw value.

A chart whose mart has no snapshot on the date (a pruned day, or a run that did not select
that mart) is replaced by a note saying so; the report never fails for a missing chart.
The file is written beside its final name and renamed, so a reader never sees half a page.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analytics import charts
from analytics.charts import Chart
from pipelines import warehouse as wh
from quality.contracts import FEEDS

#: The content-security policy of the page: images from data: URIs and inline style only.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: Table holding one row per customer and as-of date: its dates are the report's dates.
ANCHOR = "marts.customer_360"


@dataclass(frozen=True)
class Figure:
    """One chart of the report: the mart snapshot it is drawn from and how."""

    table: str
    chart: Callable[[pd.DataFrame], Chart | None]
    caption: str
    #: the columns the chart reads (empty: all). A snapshot per customer has millions of rows at
    #: scale, and all its columns cost gigabytes: such a figure must name them (tests/test_report.py).
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    title: str
    intro: str
    figures: tuple[Figure, ...]


SECTIONS: tuple[Section, ...] = (
    Section(
        "Value",
        "Who holds the revenue and profit (the 80/20 table), and how customers spread over the RFM grid.",
        (
            Figure("marts.pareto", charts.pareto_curve, "Cumulative share of revenue and profit by customer share."),
            Figure("marts.pareto_groups", charts.value_groups, "Value groups: share of customers vs profit."),
            Figure(
                "marts.rfm_segments",
                charts.rfm_heatmap,
                "Customers per recency x frequency score cell.",
                ("as_of_date", "customer_key", "r_score", "f_score", "segment"),
            ),
        ),
    ),
    Section(
        "Customer tiers",
        "The customer-tier matrix: credit x loyalty, scale x loyalty, and the eight cubes in value order.",
        (Figure("marts.tier_matrix", charts.tier_grid, "Customers (and profit share) per tier cell."),),
    ),
    Section(
        "Lifecycle",
        "Where customers are in their lifecycle, how they moved since the previous period, and cohort retention.",
        (
            Figure("marts.lifecycle", charts.lifecycle_funnel, "Customers per lifecycle stage.", ("stage",)),
            Figure(
                "marts.segment_migration",
                charts.lifecycle_migration_heatmap,
                "Lifecycle stage a period earlier (rows) against the stage now (columns).",
            ),
            Figure("marts.cohort_retention", charts.retention_heatmap, "Share of each cohort buying k months later."),
        ),
    ),
    Section(
        "Customer lifetime value",
        "Model CLV and how well the model predicted the holdout period.",
        (
            Figure("marts.clv", charts.clv_distribution, "Model CLV of the buying customers.", ("clv_model",)),
            Figure("marts.clv_validation", charts.clv_calibration, "Calibration: holdout purchases by frequency."),
            Figure("marts.clv_tracking", charts.clv_tracking, "Cumulative repeat purchases over the holdout."),
        ),
    ),
    Section(
        "Satisfaction",
        "The satisfaction indices by survey wave, the Kano categories and the importance-performance areas.",
        (
            Figure("marts.satisfaction_index", charts.satisfaction_by_wave, "0-100 index per latent and wave."),
            Figure("marts.kano", charts.kano_better_worse, "Kano Better / Worse coefficients per attribute."),
            Figure("marts.ipa", charts.ipa_quadrants, "Importance against performance, with the four areas."),
        ),
    ),
)


@dataclass(frozen=True)
class ReportFile:
    path: Path
    as_of: dt.date
    charts: int
    missing: tuple[str, ...]
    bytes: int


def report_dates(con) -> list[dt.date]:
    """The as-of dates a report can be built for (those with a customer 360 snapshot)."""
    if not wh.exists(con, ANCHOR):
        return []
    frame = wh.sql_df(con, f"SELECT DISTINCT as_of_date FROM {ANCHOR} ORDER BY 1")
    return [pd.Timestamp(d).date() for d in frame.as_of_date]


def _snapshot(con, table: str, as_of: dt.date, columns: tuple[str, ...] = ()) -> pd.DataFrame | None:
    if not wh.exists(con, table):
        return None
    frame = wh.snapshot_df(con, table, as_of, columns)
    return frame if len(frame) else None


def _aggregate(con, table: str, as_of: dt.date, select: str) -> pd.Series | None:
    """One row of aggregates over a snapshot (None without the table or the snapshot)."""
    if not wh.exists(con, table):
        return None
    row = wh.sql_df(con, f"SELECT count(*) AS n, {select} FROM {table} WHERE as_of_date = ?", [as_of]).iloc[0]
    return row if row["n"] else None


def _quarantine(con, as_of: dt.date) -> pd.DataFrame:
    """Quarantined rows per business day and reason (every feed) up to the as-of date."""
    feeds = [f for f in FEEDS if wh.exists(con, f"quarantine.{f}")]
    if not feeds:
        return pd.DataFrame(columns=["_partition_date", "reason_code", "rows"])
    union = " UNION ALL ".join(f"SELECT _partition_date, reason_code FROM quarantine.{f}" for f in feeds)
    return wh.sql_df(
        con,
        f"SELECT _partition_date, reason_code, count(*) AS rows FROM ({union}) "
        "WHERE _partition_date <= ? GROUP BY ALL ORDER BY 1, 2",
        [as_of],
    )


def _balance(con, as_of: dt.date) -> pd.DataFrame:
    """Rows read = clean + quarantined + deduplicated per feed, up to the as-of date."""
    if not wh.exists(con, "meta.ingest_log"):
        return pd.DataFrame()
    return wh.sql_df(
        con,
        "SELECT feed, count(*) FILTER (WHERE status = 'loaded') AS days_loaded, "
        "sum(files_rejected)::BIGINT AS files_rejected, sum(rows_read)::BIGINT AS rows_read, "
        "sum(clean)::BIGINT AS clean, sum(quarantined)::BIGINT AS quarantined, "
        "sum(deduplicated)::BIGINT AS deduplicated "
        "FROM meta.ingest_log WHERE _partition_date <= ? GROUP BY 1 ORDER BY 1",
        [as_of],
    )


def _headline(con, as_of: dt.date) -> list[tuple[str, str]]:
    """A few figures for the top of the page, each only when its mart has the snapshot."""
    out: list[tuple[str, str]] = []
    c360 = _aggregate(con, ANCHOR, as_of, "CAST(sum(net_monetary_12m) AS DOUBLE) AS revenue")
    if c360 is not None:
        out.append(("customers", f"{int(c360['n']):,}"))
        out.append(("net revenue, last 12 months", f"{float(c360['revenue'] or 0):,.0f}"))
    pareto = _snapshot(con, "marts.pareto", as_of)
    if pareto is not None:
        revenue = pareto[pareto.measure == pareto.measure.iloc[0]].top20_value_share.dropna()
        if len(revenue):
            out.append((f"{pareto.measure.iloc[0]} held by the top 20 % of customers", f"{float(revenue.iloc[0]):.0%}"))
    clv = _aggregate(con, "marts.clv", as_of, "CAST(avg(clv_model) AS DOUBLE) AS mean_clv")
    if clv is not None and pd.notna(clv["mean_clv"]):
        out.append(("mean model CLV", f"{float(clv['mean_clv']):,.0f}"))
    nps = _snapshot(con, "marts.nps", as_of)
    if nps is not None:
        overall = nps[(nps.wave == "all") & (nps.segment_type == "all")]
        if len(overall) and pd.notna(overall.nps.iloc[0]):
            out.append(("NPS, all waves", f"{float(overall.nps.iloc[0]):.1f}"))
    return out


def _img(chart: Chart) -> str:
    data = base64.b64encode(chart.png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(chart.title)}">'


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p class=note>No rows.</p>"
    return frame.to_html(index=False, border=0, classes="data", na_rep="", float_format=lambda v: f"{v:,.3f}")


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.5rem}
.sub{color:#666;margin-top:0}figure{margin:1.2rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption,.note{color:#666;font-size:.9rem}dl.kpi{display:flex;flex-wrap:wrap;gap:1rem}
dl.kpi div{background:#f5f7fa;border-radius:6px;padding:.6rem 1rem;min-width:10rem}
dl.kpi dt{font-size:.8rem;color:#666}dl.kpi dd{margin:0;font-size:1.4rem;font-weight:600}
table.data{border-collapse:collapse;font-size:.85rem}table.data th,table.data td{padding:.25rem .6rem;text-align:right}
table.data th{border-bottom:1px solid #999}table.data td:first-child,table.data th:first-child{text-align:left}
nav a{margin-right:1rem}
"""


def render(con, as_of: dt.date, settings_version: str = "", log: Callable[[str], None] = lambda _: None) -> tuple:
    """(html text, charts drawn, figures missing) for one as-of date."""
    drawn, missing = 0, []
    body: list[str] = []
    for section in SECTIONS:
        anchor = section.title.lower().replace(" ", "-")
        body.append(f'<section id="{anchor}"><h2>{html.escape(section.title)}</h2><p>{html.escape(section.intro)}</p>')
        for fig in section.figures:
            frame = _snapshot(con, fig.table, as_of, fig.columns)
            chart = fig.chart(frame) if frame is not None else None
            if chart is None:
                missing.append(fig.table)
                why = "no snapshot on this date" if frame is None else "nothing to draw in this snapshot"
                body.append(f"<p class=note>{html.escape(fig.caption)} — {fig.table}: {why}.</p>")
                continue
            drawn += 1
            body.append(
                f"<figure>{_img(chart)}<figcaption>{html.escape(fig.caption)} ({fig.table})</figcaption></figure>"
            )
        body.append("</section>")
    quarantine = _quarantine(con, as_of)
    chart = charts.quarantine_over_time(quarantine)
    body.append('<section id="data-quality"><h2>Data quality</h2>')
    body.append(
        "<p>Every row read ends clean, quarantined with a reason, or deduplicated. "
        "Totals from the first landing day to the as-of date.</p>"
    )
    body.append(_table(_balance(con, as_of)))
    if chart is not None:
        drawn += 1
        body.append(f"<figure>{_img(chart)}<figcaption>Quarantined rows by reason over time.</figcaption></figure>")
        by_reason = quarantine.groupby("reason_code", as_index=False)["rows"].sum().sort_values("rows", ascending=False)
        body.append(_table(by_reason))
    else:
        body.append("<p class=note>No rows quarantined up to this date.</p>")
    body.append("</section>")
    kpis = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in _headline(con, as_of))
    nav = (
        "".join(f'<a href="#{s.title.lower().replace(" ", "-")}">{html.escape(s.title)}</a>' for s in SECTIONS)
        + '<a href="#data-quality">Data quality</a>'
    )
    version = f" · settings {html.escape(settings_version)}" if settings_version else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CRM report {as_of:%Y-%m-%d}</title><style>{_STYLE}</style></head>
<body><header><h1>CRM report</h1>
<p class=sub>As of {as_of:%Y-%m-%d} · crm-pipeline{version} · aggregates only, no personal data</p>
<nav>{nav}</nav></header>
<dl class=kpi>{kpis}</dl>
{"".join(body)}
</body></html>
"""
    if missing:
        log(f"report {as_of}: no chart for {', '.join(missing)}")
    return page, drawn, tuple(missing)


def write_report(
    con, as_of: dt.date, root: Path, settings_version: str = "", log: Callable[[str], None] = lambda _: None
) -> ReportFile:
    """Render the report for `as_of` into <root>/<as_of>/index.html (temp file, then rename)."""
    dates = report_dates(con)
    if as_of not in dates:
        near = ", ".join(str(d) for d in dates[-5:]) or "none"
        raise ValueError(f"no snapshot of {ANCHOR} on {as_of}; latest as-of dates: {near}")
    page, drawn, missing = render(con, as_of, settings_version, log)
    folder = Path(root) / as_of.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "index.html"
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".html.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o640)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ReportFile(target, as_of, drawn, missing, target.stat().st_size)
