"""CLV benchmark: N customers from their summary (x, t_x, T, mean spend) to scored CLV,
our pipeline path against `lifetimes` doing the same in the same process.

Ours: the summary sits in DuckDB; it is compressed to unique (x, t_x, T) rows in the
engine, BG/NBD and Gamma-Gamma are fitted with weights on the unique rows, the unique
rows are scored (P(alive), expected purchases, expected spend, CLV) and joined back in
the engine into a per-customer table. The peer: lifetimes fitted on every customer row
and scoring every customer, as analysts do it in a notebook.

    .venv/bin/python -m bench.clv_bench --customers 1000000

Prints wall time per stage and the ratio, and writes bench/results/clv_<timestamp>.json.
Not a test: speed is measured here, never asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def simulate(n: int, seed: int = 1, r=0.8, alpha=60.0, a=0.8, b=3.0, p=6.0, q=4.0, gamma=150.0, days=730):
    """BG/NBD customers observed for up to `days` days, with Gamma-Gamma spend."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    drop = rng.beta(a, b, n)
    T = rng.integers(1, days, n).astype(float)
    x = np.zeros(n, np.int64)
    t_x = np.zeros(n)
    alive = np.ones(n, bool)
    t = np.zeros(n)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        ok = t[idx] < T[idx]
        buy = idx[ok]
        x[buy] += 1
        t_x[buy] = t[buy]
        alive[idx[~ok]] = False
        dies = buy[rng.random(buy.size) < drop[buy]]
        alive[dies] = False
    nu = rng.gamma(q, 1 / gamma, n)
    spend = np.where(x > 0, rng.gamma(p * np.maximum(x, 1), 1 / nu) / np.maximum(x, 1), 0.0)
    return pd.DataFrame(
        {"customer_id": np.arange(n), "frequency": x, "recency": np.floor(t_x), "T": T, "monetary_value": spend}
    )


def run_lifetimes(summary: pd.DataFrame) -> tuple[dict[str, float], pd.Series]:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    bg = BetaGeoFitter().fit(summary.frequency, summary.recency, summary["T"])
    out["fit_bgnbd"] = time.perf_counter() - t0
    repeat = summary[summary.frequency > 0]
    t0 = time.perf_counter()
    gg = GammaGammaFitter().fit(repeat.frequency, repeat.monetary_value)
    out["fit_gamma_gamma"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    p_alive = bg.conditional_probability_alive(summary.frequency, summary.recency, summary["T"])
    purchases = bg.conditional_expected_number_of_purchases_up_to_time(
        365, summary.frequency, summary.recency, summary["T"]
    )
    spend = gg.conditional_expected_average_profit(summary.frequency, summary.monetary_value)
    clv = gg.customer_lifetime_value(
        bg, summary.frequency, summary.recency, summary["T"], summary.monetary_value, time=12, discount_rate=0.01
    )
    out["score"] = time.perf_counter() - t0
    scores = np.column_stack([np.asarray(v, float) for v in (p_alive, purchases, spend, clv)])
    out["nan_scores"] = float((~np.isfinite(scores)).any(axis=1).sum())
    return out, pd.Series(np.asarray(clv, float), index=summary.customer_id.to_numpy())


def run_ours(summary: pd.DataFrame) -> tuple[dict[str, float], pd.Series]:

    from analytics.clv import BetaGeoFitter, GammaGammaFitter, customer_lifetime_value
    from pipelines.warehouse import Warehouse

    out: dict[str, float] = {}
    with Warehouse(":memory:").connect() as con:
        t0 = time.perf_counter()
        table = con.create_table("summary", summary)
        out["load_to_engine"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        unique = con.execute(
            table.group_by(["frequency", "recency", "T"]).aggregate(
                n=table.count(), m_sum=table.monetary_value.sum(where=table.frequency > 0)
            )
        )
        repeat = table.filter(table.frequency > 0)
        spend_rows = con.execute(repeat.group_by(["frequency", "monetary_value"]).aggregate(n=repeat.count()))
        out["compress_in_engine"] = time.perf_counter() - t0
        out["unique_rows"] = float(len(unique))
        t0 = time.perf_counter()
        bg = BetaGeoFitter().fit(unique.frequency, unique.recency, unique["T"], weights=unique.n)
        out["fit_bgnbd"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        gg = GammaGammaFitter().fit(spend_rows.frequency, spend_rows.monetary_value, weights=spend_rows.n)
        out["fit_gamma_gamma"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        unique["p_alive"] = bg.conditional_probability_alive(unique.frequency, unique.recency, unique["T"])
        unique["purchases"] = bg.conditional_expected_number_of_purchases_up_to_time(
            365, unique.frequency, unique.recency, unique["T"]
        )
        # CLV is linear in the expected spend: the discounted expected purchases per unit of
        # spend depend on (x, t_x, T) only, so they are scored once per unique row.
        unique["discounted"] = customer_lifetime_value(
            bg, unique.frequency, unique.recency, unique["T"], np.ones(len(unique)), time=12, discount_rate=0.01
        )
        scored = con.create_table("scored", unique[["frequency", "recency", "T", "p_alive", "purchases", "discounted"]])
        per_customer = table.join(scored, ["frequency", "recency", "T"])
        frame = con.execute(per_customer)
        spend = gg.conditional_expected_average_profit(frame.frequency, frame.monetary_value)
        clv = np.asarray(spend) * frame.discounted.to_numpy()
        out["score"] = time.perf_counter() - t0
        scores = np.column_stack([frame.p_alive, frame.purchases, np.asarray(spend), np.asarray(clv)])
        out["nan_scores"] = float((~np.isfinite(scores)).any(axis=1).sum())
    return out, pd.Series(clv, index=frame.customer_id.to_numpy())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--skip-peer", action="store_true", help="do not run lifetimes")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    summary = simulate(args.customers)
    print(f"simulated {len(summary):,} customers in {time.perf_counter() - t0:.1f}s", flush=True)
    ours, our_clv = run_ours(summary)
    ours["total"] = sum(v for k, v in ours.items() if k not in ("unique_rows", "nan_scores"))
    print("ours     ", json.dumps({k: float(f"{v:.4g}") for k, v in ours.items()}), flush=True)
    peer = None
    if not args.skip_peer:
        peer, peer_clv = run_lifetimes(summary)
        both = pd.concat([our_clv.rename("ours"), peer_clv.rename("peer")], axis=1).dropna()
        rel = (both.ours - both.peer).abs() / both.peer.abs().clip(lower=1e-9)
        peer["clv_max_rel_diff_vs_ours"] = float(rel.max())
        peer["total"] = sum(v for k, v in peer.items() if k not in ("nan_scores", "clv_max_rel_diff_vs_ours"))
        print("lifetimes", json.dumps({k: float(f"{v:.4g}") for k, v in peer.items()}), flush=True)
        print(f"ratio lifetimes / ours (total wall time): {peer['total'] / ours['total']:.1f}x", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    record = {
        "benchmark": "clv",
        "customers": args.customers,
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor(),
            "cpus": __import__("os").cpu_count(),
        },
        "ours": ours,
        "lifetimes": peer,
        "ratio": (peer["total"] / ours["total"]) if peer else None,
    }
    path = RESULTS / f"clv_{stamp}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
