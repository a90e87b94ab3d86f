"""The two yardsticks of the pipeline benchmark, run on the same staging data as our marts.

Peer (a), `notebook_peer`: the marts as analysts build them in a notebook today, pandas +
lifetimes: customer summary, RFM quintiles and segments, value tiers and the 80/20 table,
BG/NBD + Gamma-Gamma CLV with a holdout check. It reads what an extract would give them
(order lines as Parquet, money as float) plus the as-of customer_ref -> customer_key map, so
it counts the same customers as the marts; identity resolution itself is not redone here
(in our full snapshot it is, which only favours the peer). Its customer summary is then
checked against our customer_360 rows (outside the timed part).

Floor (b), `sql_floor`: the shared core, customer summary and RFM scores, as hand-written
DuckDB SQL on staging.orders joined to the same identity map: what the engine needs at
least for it. NTILE quintiles (ties split by row order) are cheaper than our tie-aware
ranks but the same kind of work (one sort per score). The result tables are written to a
DuckDB file of their own, as our marts are written to the warehouse.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from analytics.rfm import DEFAULT_SEGMENT_MAP
from analytics.value import ValueParams

YEAR_DAYS = 365
#: The value-tier and 80/20 parameters of our marts' defaults.
TIER_CUTOFFS = ValueParams().tier_cutoffs
TIERS = ("platinum", "gold", "iron", "lead")
GROUP_SHARES = ValueParams().group_shares
#: Holdout of the CLV check, as ClvParams.holdout_days.
HOLDOUT_DAYS = 90


class _Clock:
    """Wall time per named phase, in order."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = round(now - self._t, 3)
        self._t = now
        print(f"  {name}: {self.phases[name]:.1f}s", flush=True)


def _segment_lookup() -> np.ndarray:
    grid = np.empty((6, 6), dtype=object)
    for code, r0, r1, f0, f1 in reversed(DEFAULT_SEGMENT_MAP):  # first match wins
        grid[r0 : r1 + 1, f0 : f1 + 1] = code
    return grid


def _quintile(values: pd.Series) -> pd.Series:
    """The notebook idiom: qcut of the first-order rank into five equal bins."""
    return pd.qcut(values.rank(method="first"), 5, labels=False).astype("int64") + 1


def notebook_peer(inputs: Path, as_of: dt.date) -> dict[str, Any]:
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

    clock = _Clock()
    day = pd.Timestamp(as_of)
    orders = pd.read_parquet(inputs / "orders.parquet")
    identity = pd.read_parquet(inputs / "identity.parquet")
    clock.lap("read")

    # customer summary: lines known by the as-of date, keyed, valued, one row per customer
    o = orders[(orders.business_date <= day) & (orders._partition_date <= day)]
    o = o.merge(identity, on="customer_ref", how="inner")
    o["value"] = o.quantity * o.unit_price - o.discount
    done = o[o.status == "completed"]
    ret = o[o.status == "returned"]
    tx = done.groupby(["customer_key", "business_date"], as_index=False, sort=False)["value"].sum()
    recent = day - pd.Timedelta(days=YEAR_DAYS)
    g = tx.groupby("customer_key")
    s = pd.DataFrame(
        {
            "first_purchase": g.business_date.min(),
            "last_purchase": g.business_date.max(),
            "purchase_days": g.size(),
            "gross": g.value.sum(),
        }
    )
    tx12 = tx[tx.business_date > recent].groupby("customer_key")
    s["purchase_days_12m"] = tx12.size().reindex(s.index, fill_value=0)
    returned = ret.groupby("customer_key").value.sum().reindex(s.index, fill_value=0.0)
    returned_12m = ret[ret.business_date > recent].groupby("customer_key").value.sum()
    s["monetary"] = s.gross - returned
    s["monetary_12m"] = tx12.value.sum().reindex(s.index, fill_value=0.0) - returned_12m.reindex(
        s.index, fill_value=0.0
    )
    s["frequency"] = s.purchase_days - 1
    s["recency"] = (s.last_purchase - s.first_purchase).dt.days
    s["T"] = (day - s.first_purchase).dt.days
    s["days_since_last"] = (day - s.last_purchase).dt.days
    clock.lap("customer_summary")

    # RFM: quintile scores, R x F segments, the seed's 20/60/20 rule on the product
    s["r_score"] = _quintile(-s.days_since_last)
    s["f_score"] = _quintile(s.purchase_days_12m)
    s["m_score"] = _quintile(s.monetary_12m)
    s["rfm_cell"] = s.r_score.astype(str) + s.f_score.astype(str) + s.m_score.astype(str)
    s["segment"] = _segment_lookup()[s.r_score.to_numpy(), s.f_score.to_numpy()]
    product = s.r_score * s.f_score * s.m_score
    top = product.rank(ascending=False, method="min", pct=True)
    bottom = product.rank(method="min", pct=True)
    s["seed_group"] = np.where(top <= 0.2, "protect", np.where(bottom <= 0.2, "avoid", "develop"))
    rfm_counts = s.segment.value_counts()
    clock.lap("rfm")

    # value tiers by last-12-month value, the 80/20 curve and the five value groups
    share = s.monetary_12m.rank(ascending=False, method="first", pct=True)
    s["tier"] = pd.cut(share, [0, *TIER_CUTOFFS, 1], labels=TIERS)
    ranked = s.monetary_12m.sort_values(ascending=False).to_numpy()
    cum = np.cumsum(ranked) / ranked.sum()
    pct = np.arange(1, 101)
    curve = pd.DataFrame({"percentile": pct, "share": cum[np.ceil(pct / 100 * len(cum)).astype(int) - 1]})
    edges = np.ceil(np.cumsum(GROUP_SHARES) * len(ranked)).astype(int)
    groups = [float(part.sum()) for part in np.split(ranked, edges[:-1])]
    clock.lap("value_tiers_pareto")

    # CLV: lifetimes' summary (weeks, exact days / 7), BG/NBD, Gamma-Gamma, 12-month CLV
    rfm = summary_data_from_transaction_data(
        tx, "customer_key", "business_date", monetary_value_col="value", observation_period_end=day, freq_multiplier=7
    )
    clock.lap("clv_summary")
    bgf = BetaGeoFitter().fit(rfm.frequency, rfm.recency, rfm["T"])
    repeat = rfm[(rfm.frequency > 0) & (rfm.monetary_value > 0)]
    ggf = GammaGammaFitter().fit(repeat.frequency, repeat.monetary_value)
    clock.lap("clv_fit")
    p_alive = bgf.conditional_probability_alive(rfm.frequency, rfm.recency, rfm["T"])
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(
        YEAR_DAYS / 7, rfm.frequency, rfm.recency, rfm["T"]
    )
    spend = ggf.conditional_expected_average_profit(rfm.frequency, rfm.monetary_value)
    clv = ggf.customer_lifetime_value(
        bgf, rfm.frequency, rfm.recency, rfm["T"], rfm.monetary_value, time=12, discount_rate=0.01, freq="W"
    )
    clock.lap("clv_score")
    cal_end = day - pd.Timedelta(days=HOLDOUT_DAYS)
    mae = None
    if tx.business_date.min() < cal_end:  # as our clv_validation: only with a calibration period
        cal = calibration_and_holdout_data(
            tx,
            "customer_key",
            "business_date",
            calibration_period_end=cal_end,
            observation_period_end=day,
            freq_multiplier=7,
            monetary_value_col="value",  # without a value column its holdout count fails on pandas 3
        )
        holdout_bgf = BetaGeoFitter().fit(cal.frequency_cal, cal.recency_cal, cal.T_cal)
        predicted = holdout_bgf.conditional_expected_number_of_purchases_up_to_time(
            cal.duration_holdout, cal.frequency_cal, cal.recency_cal, cal.T_cal
        )
        mae = float((predicted - cal.frequency_holdout).abs().mean())
        clock.lap("clv_holdout")
    total = round(sum(clock.phases.values()), 3)
    print(f"  total: {total:.1f}s", flush=True)

    scores = np.column_stack([np.asarray(v, float) for v in (p_alive, purchases, spend, clv)])
    return {
        "phases": clock.phases,
        "total_s": total,
        "lines": len(o),
        "customers": len(s),
        "segments": {str(k): int(v) for k, v in rfm_counts.items()},
        "tiers": {str(k): int(v) for k, v in s.tier.value_counts().items()},
        "top20_share": float(curve.share.iloc[19]),
        "value_groups": groups,
        "bgnbd_params": {k: float(v) for k, v in bgf.params_.items()},
        "nan_scores": int((~np.isfinite(scores)).any(axis=1).sum()),
        "holdout_mae": mae,
        "check_vs_customer_360": _check_summary(s, inputs / "customer_360.parquet"),
    }


def _check_summary(peer: pd.DataFrame, ours_path: Path) -> dict[str, Any]:
    """How many buying customers the peer and our customer_360 disagree on (should be 0)."""
    ours = pd.read_parquet(ours_path)
    ours = ours[ours.has_purchased].set_index("customer_key")
    both = peer.join(ours, how="inner", rsuffix="_ours")
    pairs = {
        "frequency": ("frequency", "frequency_ours"),
        "recency": ("recency", "recency_days"),
        "T": ("T", "age_days"),
        "purchase_days_12m": ("purchase_days_12m", "purchase_days_12m_ours"),
    }
    out: dict[str, Any] = {"peer_customers": len(peer), "our_buyers": len(ours), "matched": len(both)}
    for name, (a, b) in pairs.items():
        out[f"{name}_mismatches"] = int((both[a] != both[b]).sum())
    out["monetary_12m_max_abs_diff"] = float((both.monetary_12m - both.net_monetary_12m).abs().max())
    return out


# --- the SQL floor -------------------------------------------------------------------------

_FLOOR_SUMMARY = """
CREATE OR REPLACE TABLE customer_summary AS
WITH lines AS (
    SELECT i.customer_key, o.order_id, o.status, o.business_date,
           o.quantity * o.unit_price - o.discount AS value,
           o.business_date > DATE '{day}' - INTERVAL {year} DAY AS in12
    FROM wh.staging.orders o
    JOIN wh.marts.customer_identity i ON i.customer_ref = o.customer_ref AND i.as_of_date = DATE '{day}'
    WHERE o.business_date <= DATE '{day}' AND o._partition_date <= DATE '{day}'
), agg AS (
    SELECT customer_key,
           min(business_date) FILTER (status = 'completed') AS first_purchase,
           max(business_date) FILTER (status = 'completed') AS last_purchase,
           count(DISTINCT order_id) FILTER (status = 'completed') AS order_count,
           count(DISTINCT business_date) FILTER (status = 'completed') AS purchase_days,
           count(DISTINCT business_date) FILTER (status = 'completed' AND in12) AS purchase_days_12m,
           coalesce(sum(value) FILTER (status = 'completed'), 0)
             - coalesce(sum(value) FILTER (status = 'returned'), 0) AS monetary,
           coalesce(sum(value) FILTER (status = 'completed' AND in12), 0)
             - coalesce(sum(value) FILTER (status = 'returned' AND in12), 0) AS monetary_12m
    FROM lines GROUP BY customer_key
)
SELECT customer_key, first_purchase, last_purchase, order_count, purchase_days, purchase_days_12m,
       monetary, monetary_12m,
       purchase_days - 1 AS frequency,
       date_diff('day', first_purchase, last_purchase) AS recency_days,
       date_diff('day', first_purchase, DATE '{day}') AS age_days,
       date_diff('day', last_purchase, DATE '{day}') AS days_since_last
FROM agg WHERE purchase_days > 0
"""

_FLOOR_RFM = """
CREATE OR REPLACE TABLE rfm AS
WITH scored AS (
    SELECT customer_key, days_since_last, purchase_days_12m, monetary_12m,
           ntile(5) OVER (ORDER BY days_since_last DESC) AS r_score,
           ntile(5) OVER (ORDER BY purchase_days_12m) AS f_score,
           ntile(5) OVER (ORDER BY monetary_12m) AS m_score
    FROM customer_summary
)
SELECT *, r_score::VARCHAR || f_score::VARCHAR || m_score::VARCHAR AS rfm_cell,
       CASE {segments} END AS segment
FROM scored
"""


def _segment_sql() -> str:
    return " ".join(
        f"WHEN r_score BETWEEN {r0} AND {r1} AND f_score BETWEEN {f0} AND {f1} THEN '{code}'"
        for code, r0, r1, f0, f1 in DEFAULT_SEGMENT_MAP
    )


def sql_floor(warehouse: str, floor_db: Path, as_of: dt.date, memory_limit: str = "") -> dict[str, Any]:
    """The floor's customer summary and RFM scores, timed, and checked against our marts.
    `memory_limit` is the pipeline's (`--memory-limit`): the yardstick runs in the same budget."""
    floor_db.unlink(missing_ok=True)
    clock = _Clock()
    config = {"autoload_known_extensions": False, **({"memory_limit": memory_limit} if memory_limit else {})}
    con = duckdb.connect(str(floor_db), config=config)
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
        clock.lap("connect")
        run: Callable[[str], Any] = con.execute
        run(_FLOOR_SUMMARY.format(day=as_of.isoformat(), year=YEAR_DAYS))
        clock.lap("customer_summary")
        run(_FLOOR_RFM.format(segments=_segment_sql()))
        clock.lap("rfm")
        total = round(clock.phases["customer_summary"] + clock.phases["rfm"], 3)
        print(f"  total (summary + rfm): {total:.1f}s", flush=True)
        check = con.execute(
            f"""
            SELECT count(*) AS matched,
                   count(*) FILTER (f.frequency <> c.frequency OR f.recency_days <> c.recency_days
                                    OR f.age_days <> c.age_days OR f.purchase_days_12m <> c.purchase_days_12m)
                       AS summary_mismatches,
                   max(abs(f.monetary_12m - c.net_monetary_12m)) AS monetary_12m_max_abs_diff,
                   avg((r.r_score = o.r_score)::INT) AS r_score_agreement,
                   avg((r.f_score = o.f_score)::INT) AS f_score_agreement,
                   avg((r.m_score = o.m_score)::INT) AS m_score_agreement
            FROM customer_summary f
            JOIN wh.marts.customer_360 c ON c.customer_key = f.customer_key AND c.as_of_date = DATE '{as_of}'
            JOIN rfm r ON r.customer_key = f.customer_key
            JOIN wh.marts.rfm_segments o ON o.customer_key = f.customer_key AND o.as_of_date = DATE '{as_of}'
            """
        ).fetchdf()
        customers = con.execute("SELECT count(*) FROM customer_summary").fetchone()[0]
        budget = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        con.close()
    return {
        "phases": clock.phases,
        "total_s": total,
        "customers": int(customers),
        "memory_limit": budget,
        "check_vs_marts": {k: (float(v) if v is not None else None) for k, v in check.iloc[0].items()},
    }
