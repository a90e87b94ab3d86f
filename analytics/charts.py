"""Charts of the marts: the pictures a CRM analyst looks at instead of a table (RFM heatmap,
Pareto curve, tier-matrix grid, lifecycle funnel and migration, value groups, CLV,
satisfaction index by wave, Kano Better / Worse, IPA quadrants, quarantine by reason).

Each function takes one snapshot of a mart (or, for data quality, the quarantine counts) as
a pandas frame and returns a `Chart` (title and PNG bytes) or None when there is nothing to
draw. The same charts go into the asset metadata (assets/reporting.py) and the HTML report
(pipelines/report.py). Matplotlib runs headless (Agg); no Dagster here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analytics.lifecycle import STAGE_ORDER
from analytics.migration import ENTERED, EXITED


@dataclass(frozen=True)
class Chart:
    """A rendered chart: its title (the image's alt text) and the PNG."""

    title: str
    png: bytes


def _png(fig, title: str) -> Chart:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return Chart(title, buf.getvalue())


def rfm_heatmap(rfm: pd.DataFrame) -> Chart:
    """Customers per R score (rows, 5 = most recent) and F score (columns)."""
    grid = rfm.pivot_table(index="r_score", columns="f_score", values="customer_key", aggfunc="count")
    grid = grid.reindex(index=[5, 4, 3, 2, 1], columns=[1, 2, 3, 4, 5]).fillna(0).astype(int)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.imshow(grid.to_numpy(), cmap="Blues")
    top = grid.to_numpy().max()
    for (i, j), v in np.ndenumerate(grid.to_numpy()):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=9, color="white" if v > 0.6 * top else "black")
    ax.set_xticks(range(5), grid.columns)
    ax.set_yticks(range(5), grid.index)
    ax.set_xlabel("F score (purchase days)")
    ax.set_ylabel("R score (5 = most recent)")
    ax.set_title(f"RFM: customers per R x F cell ({rfm.as_of_date.iloc[0]:%Y-%m-%d})")
    return _png(fig, "RFM heatmap")


def pareto_curve(pareto: pd.DataFrame) -> Chart:
    """Cumulative share of revenue and profit against the share of customers."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for measure, part in pareto.groupby("measure"):
        part = part.sort_values("percentile")
        x = np.concatenate([[0.0], part.customer_share.to_numpy(float)])
        y = np.concatenate([[0.0], part.value_share.to_numpy(float)])
        top = float(part.top20_value_share.iloc[0]) if part.top20_value_share.notna().any() else float("nan")
        ax.plot(x * 100, y * 100, label=f"{measure} (top 20 % hold {top:.0%})")
    ax.plot([0, 100], [0, 100], color="grey", linestyle=":", linewidth=1)
    ax.axvline(20, color="grey", linewidth=0.8)
    ax.set_xlabel("customers, sorted by value (%)")
    ax.set_ylabel("cumulative share of the total (%)")
    ax.set_title("80/20: cumulative revenue and profit")
    ax.legend()
    return _png(fig, "Pareto curve")


def value_groups(groups: pd.DataFrame) -> Chart:
    """The five value groups: share of customers vs share of profit (negative shown)."""
    g = groups.sort_values("group_order")
    x = np.arange(len(g))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.bar(x - 0.2, g.customer_share.astype(float) * 100, 0.4, label="customers %")
    ax.bar(x + 0.2, g.profit_share.astype(float).fillna(0) * 100, 0.4, label="profit contribution %")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, g.value_group)
    ax.set_ylabel("%")
    ax.set_title("Value groups: customers vs profit contribution")
    ax.legend()
    return _png(fig, "Value groups")


def tier_grid(matrix: pd.DataFrame) -> Chart:
    """Credit x loyalty and scale x loyalty 2x2 grids, and customers per cube rank."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, view, first in ((axes[0], "credit_loyalty", "credit"), (axes[1], "scale_loyalty", "scale")):
        part = matrix[matrix.view == view].set_index("cell")
        grid = np.array([[part.customers.get(a + b, 0) for b in "HL"] for a in "HL"], dtype=float)
        ax.imshow(grid, cmap="Greens")
        for (i, j), v in np.ndenumerate(grid):
            cell = "HL"[i] + "HL"[j]
            share = part.profit_share.get(cell)
            profit = "" if share is None or pd.isna(share) else f"\nprofit {float(share):.0%}"
            dark = v > 0.6 * grid.max()
            ax.text(j, i, f"{int(v)}{profit}", ha="center", va="center", fontsize=9, color="white" if dark else "black")
        ax.set_xticks([0, 1], ["high loyalty", "low loyalty"])
        ax.set_yticks([0, 1], [f"high {first}", f"low {first}"])
        ax.set_title(view.replace("_", " x "))
    cube = matrix[matrix.view == "cube"].sort_values("rank")
    axes[2].bar(cube.cell.astype(str), cube.customers)
    axes[2].set_title("cubes: credit, loyalty, scale\n(value order)")
    axes[2].set_ylabel("customers")
    return _png(fig, "Tier matrix")


def lifecycle_funnel(stages: pd.DataFrame) -> Chart:
    """Customers per lifecycle stage, in lifecycle order."""
    counts = stages.groupby("stage").size().reindex(list(STAGE_ORDER), fill_value=0)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.barh(counts.index[::-1], counts.to_numpy()[::-1], color="tab:orange")
    for i, v in enumerate(counts.to_numpy()[::-1]):
        ax.text(v, i, f" {v}", va="center", fontsize=9)
    ax.set_xlabel("customers")
    ax.set_title("Lifecycle stages")
    return _png(fig, "Lifecycle funnel")


def retention_heatmap(retention: pd.DataFrame) -> Chart:
    """Share of each acquisition cohort buying k months after its first month."""
    grid = retention.pivot_table(index="cohort", columns="months_since", values="retention")
    later = grid.drop(columns=[0], errors="ignore").to_numpy(float)
    top = float(np.nanmax(later)) if np.isfinite(later).any() else 1.0
    fig, ax = plt.subplots(figsize=(8, max(3, 0.3 * len(grid) + 1)))
    image = ax.imshow(grid.to_numpy(float), cmap="viridis", aspect="auto", vmin=0, vmax=top)
    fig.colorbar(image, ax=ax, label="share of the cohort buying (month 0 = 100 %)")
    ax.set_yticks(range(len(grid)), grid.index)
    ax.set_xlabel("months since first purchase")
    ax.set_title("Cohort retention")
    return _png(fig, "Cohort retention")


def clv_distribution(clv: pd.DataFrame) -> Chart:
    """Model CLV of the buying customers: histogram, and the share of value by tier."""
    values = clv.clv_model.dropna().astype(float)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    if len(values):
        top = float(np.quantile(values, 0.99)) or 1.0
        ax.hist(values.clip(upper=top), bins=40, color="tab:purple")
    ax.set_xlabel("model CLV, CNY (clipped at the 99th percentile)")
    ax.set_ylabel("customers")
    ax.set_title(f"CLV distribution ({len(values):,} customers)")
    return _png(fig, "CLV distribution")


def clv_calibration(validation: pd.DataFrame) -> Chart:
    """Predicted vs actual mean holdout purchases by calibration frequency (the classic
    BG/NBD calibration plot)."""
    v = validation[validation.frequency_bucket != "all"].sort_values("bucket_order")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(v.frequency_bucket, v.actual_mean.astype(float), marker="o", label="actual")
    ax.plot(v.frequency_bucket, v.predicted_mean.astype(float), marker="s", linestyle="--", label="model")
    ax.set_xlabel("repeat purchase days in the calibration period")
    ax.set_ylabel("mean purchase days in the holdout")
    ax.set_title("CLV calibration: holdout purchases by calibration frequency")
    ax.legend()
    return _png(fig, "CLV calibration")


def clv_tracking(tracking: pd.DataFrame) -> Chart:
    """Cumulative predicted vs actual repeat purchases over the holdout."""
    t = tracking.sort_values("holdout_day")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(t.holdout_day, t.actual_cumulative.astype(float), label="actual")
    ax.plot(t.holdout_day, t.predicted_cumulative.astype(float), linestyle="--", label="model")
    ax.set_xlabel("days after the calibration end")
    ax.set_ylabel("cumulative repeat purchase days")
    ax.set_title("CLV tracking over the holdout")
    ax.legend()
    return _png(fig, "CLV tracking")


def _quadrant_labels(ax, top_left: str, top_right: str, bottom_left: str, bottom_right: str) -> None:
    corners = {(0.03, 0.97): top_left, (0.97, 0.97): top_right, (0.03, 0.03): bottom_left, (0.97, 0.03): bottom_right}
    for (x, y), text in corners.items():
        ha, va = ("right" if x > 0.5 else "left"), ("top" if y > 0.5 else "bottom")
        ax.text(x, y, text, transform=ax.transAxes, fontsize=8, color="grey", ha=ha, va=va)


def satisfaction_by_wave(index: pd.DataFrame) -> Chart | None:
    """The 0-100 index of every latent variable per wave (all respondents), with its interval."""
    t = index[(index.segment_type == "all") & (index.wave != "all") & index["index"].notna()]
    if t.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for latent, part in t.groupby("latent"):
        part = part.sort_values("wave")
        y = part["index"].astype(float).to_numpy()
        err = np.vstack([y - part.lower.astype(float).to_numpy(), part.upper.astype(float).to_numpy() - y])
        ax.errorbar(part.wave, y, yerr=np.nan_to_num(err), marker="o", capsize=3, label=latent)
    ax.set_ylabel("index (0-100)")
    ax.set_xlabel("wave")
    ax.set_title(f"Satisfaction index by wave ({t.model.iloc[0]}, {int(t.n.max())} responses at most)")
    ax.legend(fontsize=8)
    return _png(fig, "Satisfaction index by wave")


def kano_better_worse(kano: pd.DataFrame) -> Chart | None:
    """Better against |Worse| per attribute (all waves, all respondents), labelled with its category."""
    t = kano[(kano.wave == "all") & (kano.segment_type == "all") & kano.better.notna()]
    if t.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 5))
    x, y = t.worse.astype(float).abs().to_numpy(), t.better.astype(float).to_numpy()
    ax.scatter(x, y, color="tab:blue")
    for xi, yi, name, cat in zip(x, y, t.attribute, t.category, strict=True):
        ax.annotate(f"{name} ({cat})", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axvline(0.5, color="grey", linewidth=0.8)
    ax.axhline(0.5, color="grey", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("|Worse|: dissatisfaction if absent")
    ax.set_ylabel("Better: satisfaction if present")
    _quadrant_labels(ax, "attractive", "one-dimensional", "indifferent", "must-be")
    ax.set_title("Kano: Better / Worse per attribute (all waves)")
    return _png(fig, "Kano Better/Worse")


def ipa_quadrants(ipa: pd.DataFrame) -> Chart | None:
    """Importance against performance per attribute (all waves, stated importance when
    reported), with the crosshair and the four areas."""
    t = ipa[ipa.wave == "all"]
    if t.empty:
        return None
    method = "stated" if (t.importance_method == "stated").any() else t.importance_method.iloc[0]
    t = t[t.importance_method == method]
    fig, ax = plt.subplots(figsize=(6, 5))
    x, y = t.performance.astype(float).to_numpy(), t.importance.astype(float).to_numpy()
    ax.scatter(x, y, color="tab:red")
    for xi, yi, name in zip(x, y, t.attribute, strict=True):
        ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axvline(float(t.performance_crosshair.iloc[0]), color="grey", linewidth=0.8)
    ax.axhline(float(t.importance_crosshair.iloc[0]), color="grey", linewidth=0.8)
    _quadrant_labels(ax, "concentrate here", "keep up", "low priority", "possible overkill")
    ax.set_xlabel("performance (mean, 1-10)")
    ax.set_ylabel(f"importance ({method})")
    ax.set_title("Importance-performance areas (all waves)")
    return _png(fig, "IPA quadrants")


def lifecycle_migration_heatmap(migration: pd.DataFrame) -> Chart | None:
    """Lifecycle stage at the from-date (rows) against the stage now (columns): customers per
    cell, shaded by share of the row."""
    m = migration[migration.dimension == "lifecycle_stage"]
    if m.empty:
        return None
    stages = sorted(STAGE_ORDER, key=STAGE_ORDER.get)
    rows = [s for s in [ENTERED[0], *stages] if s in set(m.from_code)]
    cols = [s for s in [*stages, EXITED[0]] if s in set(m.to_code)]
    counts = m.pivot_table(index="from_code", columns="to_code", values="customers", aggfunc="sum")
    counts = counts.reindex(index=rows, columns=cols).fillna(0).astype(int)
    shares = counts.div(counts.sum(axis=1), axis=0).to_numpy(float)
    fig, ax = plt.subplots(figsize=(1.0 * len(cols) + 2.5, 0.6 * len(rows) + 2))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(counts.to_numpy()):
        if v:
            ax.text(
                j, i, str(v), ha="center", va="center", fontsize=8, color="white" if shares[i, j] > 0.6 else "black"
            )
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(f"stage on {m.as_of_date.iloc[0]:%Y-%m-%d}")
    ax.set_ylabel(f"stage on {m.from_date.iloc[0]:%Y-%m-%d}")
    ax.set_title("Lifecycle migration: customers (shade = share of row)")
    return _png(fig, "Lifecycle migration")


def quarantine_over_time(counts: pd.DataFrame) -> Chart | None:
    """Quarantined rows per reason over time (every feed), stacked: by day for a short range,
    by week up to a year and a half, by month beyond. `counts`: _partition_date, reason_code, rows."""
    if counts.empty or counts["rows"].sum() == 0:
        return None
    days = pd.to_datetime(counts._partition_date)
    span = (days.max() - days.min()).days
    freq, unit = ("D", "day") if span <= 62 else ("W", "week") if span <= 550 else ("M", "month")
    period = days.dt.to_period(freq).dt.start_time
    grid = counts.assign(period=period).pivot_table(index="period", columns="reason_code", values="rows", aggfunc="sum")
    grid = grid.fillna(0).sort_index()
    grid = grid[grid.sum().sort_values(ascending=False).index]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bottom = np.zeros(len(grid))
    width = {"day": 0.8, "week": 5.5, "month": 25}[unit]
    for reason in grid.columns:
        ax.bar(grid.index, grid[reason].to_numpy(), width, bottom=bottom, label=reason, align="edge")
        bottom += grid[reason].to_numpy()
    ax.set_ylabel(f"quarantined rows per {unit}")
    ax.set_title(f"Data quality: quarantined rows by reason ({int(grid.to_numpy().sum()):,} in all)")
    ax.legend(fontsize=7, ncol=2)
    fig.autofmt_xdate()
    return _png(fig, "Quarantine by reason")
