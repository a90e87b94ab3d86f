"""One stage of the pipeline benchmark per process (bench.pipeline_bench starts them).

Each stage runs in its own interpreter so that the parent's os.wait4 gives that stage's
own peak RSS, not the maximum of everything run before it. A stage reads a JSON spec and
writes a JSON result:

    python -m bench.stages run --spec spec.json --out result.json

Stages:
- generate: analytics.synth.generate into the bench landing zone (Parquet);
- run: one Dagster run of the real assets over a range of business days (the job is
  crm_ingest or crm_daily from pipelines.jobs, or the mart / export layer alone), in the
  bench's Dagster instance, with per-step timings and log lines read back from the
  instance's event log, and per-step peak RSS sampled from /proc/self/statm;
- inputs: the staging orders and the as-of identity, 360 and RFM rows as Parquet, the
  notebook peer's input and the yardstick it is compared with (setup, not timed against);
- peer, floor: bench.peers (pandas + lifetimes; hand-written DuckDB SQL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

import duckdb

#: RSS sampling period of a stage (s): short steps between two samples report the RSS around them.
SAMPLE_S = 0.1
_PAGE = os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Samples this process's resident set size in a daemon thread, so a Dagster step's peak can
    be told apart from the run's (ru_maxrss only knows the whole process)."""

    def __init__(self, period: float = SAMPLE_S) -> None:
        self.period = period
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _loop(self) -> None:
        with open("/proc/self/statm", "rb") as fh:
            while not self._stop.is_set():
                fh.seek(0)
                self.samples.append((time.time(), int(fh.read().split()[1]) * _PAGE))
                self._stop.wait(self.period)

    def peak_mb(self, start: float, end: float) -> float | None:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return round(max(inside) / 2**20, 1) if inside else None


# --- generate --------------------------------------------------------------------------


def stage_generate(spec: dict, _: RssSampler) -> dict:
    from analytics import synth

    summary = synth.generate(
        Path(spec["landing"]),
        customers=spec["customers"],
        days=spec["days"],
        seed=spec["seed"],
        defects=spec["defects"],
        start=dt.date.fromisoformat(spec["start"]),
        fmt="parquet",
        log=lambda m: print(m, flush=True),
    )
    return {"summary": summary}


# --- one Dagster run ---------------------------------------------------------------------


def _jobs():
    """The real jobs where one fits (crm_ingest, crm_daily), and the mart and export layers
    alone (crm_marts has both), all over the code location's assets and resources."""
    import dagster as dg

    from pipelines.definitions import ALL_ASSETS
    from pipelines.jobs import crm_daily, crm_ingest
    from pipelines.partitions import SETTINGS
    from pipelines.resources import build_resources

    marts = dg.define_asset_job("bench_marts", selection=dg.AssetSelection.key_prefixes(["marts"]))
    exports = dg.define_asset_job("bench_exports", selection=dg.AssetSelection.key_prefixes(["exports"], ["reports"]))
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[crm_ingest, crm_daily, marts, exports],
        resources=build_resources(SETTINGS),
        executor=dg.in_process_executor,
    )


JOB_NAMES = {"ingest": "crm_ingest", "daily": "crm_daily", "marts": "bench_marts", "exports": "bench_exports"}


def stage_run(spec: dict, sampler: RssSampler) -> dict:
    t0 = time.perf_counter()
    import dagster as dg

    defs = _jobs()
    import_s = time.perf_counter() - t0
    from pipelines.recovery import recover_dead_runs, run_tags

    instance = dg.DagsterInstance.get()
    # a stage killed mid-run (a --resume after a crash) keeps its warehouse-pool slot: the
    # next stage would wait for it forever, as a CLI run would without this
    recover_dead_runs(instance)
    job = JOB_NAMES[spec["job"]]
    print(f"{job} {spec['first']} … {spec['last']} (imports {import_s:.1f}s)", flush=True)
    called = time.time()
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance,
        tags={
            **run_tags(),
            "dagster/asset_partition_range_start": spec["first"],
            "dagster/asset_partition_range_end": spec["last"],
        },
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )
    returned = time.time()
    out = _run_record(instance, result.run_id, sampler)
    out.update(job=job, success=result.success, import_s=round(import_s, 2))
    # Dagster's own work around the run: before RUN_START (run creation, planned
    # materializations per asset and partition) and after RUN_SUCCESS
    if out.get("run_start") and out.get("run_end"):
        out["before_run_s"] = round(out["run_start"] - called, 3)
        out["after_run_s"] = round(returned - out["run_end"], 3)
    if spec["job"] in ("ingest", "daily"):
        out["feed_rows"] = _feed_rows(spec["first"], spec["last"])
    if not result.success:
        out["failed_steps"] = [e.step_key for e in result.all_events if e.is_step_failure]
        out["errors"] = [
            str(e.event_specific_data.error.message)[:2000] for e in result.all_events if e.is_step_failure
        ]
    return out


def _run_record(instance, run_id: str, sampler: RssSampler) -> dict:
    """Run and step timings from the instance's event log: a step's window is its
    STEP_START .. STEP_SUCCESS/FAILURE; the user log lines inside it (with their offsets)
    tell the parent where the time went (load, GX, Dagster's event recording, preview)."""
    from dagster import DagsterEventType as E

    entries = instance.all_logs(run_id)
    run_start = run_end = None
    steps: dict[str, dict] = {}
    for e in entries:
        ev = e.dagster_event
        kind = ev.event_type if ev is not None else None
        if kind == E.RUN_START:
            run_start = e.timestamp
        elif kind in (E.RUN_SUCCESS, E.RUN_FAILURE):
            run_end = e.timestamp
        if not e.step_key:
            continue
        step = steps.setdefault(
            e.step_key, {"start": None, "end": None, "materializations": 0, "checks": 0, "events": 0, "log": []}
        )
        step["events"] += 1
        if kind == E.STEP_START:
            step["start"] = e.timestamp
        elif kind in (E.STEP_SUCCESS, E.STEP_FAILURE):
            step["end"] = e.timestamp
            step["ok"] = kind == E.STEP_SUCCESS
        elif kind == E.ASSET_MATERIALIZATION:
            step["materializations"] += 1
        elif kind == E.ASSET_CHECK_EVALUATION:
            step["checks"] += 1
        elif ev is None and e.user_message:
            step["log"].append([e.timestamp, e.user_message])
    out_steps = {}
    for key, s in steps.items():
        if s["start"] is None or s["end"] is None:
            continue
        out_steps[key] = {
            "wall_s": round(s["end"] - s["start"], 3),
            "peak_rss_mb_sampled": sampler.peak_mb(s["start"], s["end"]),
            "materializations": s["materializations"],
            "checks": s["checks"],
            "events": s["events"],
            "ok": s.get("ok", False),
            "log": [[round(t - s["start"], 3), m] for t, m in s["log"]],
        }
    planned = sum(
        1 for e in entries if e.dagster_event and e.dagster_event.event_type == E.ASSET_MATERIALIZATION_PLANNED
    )
    return {
        "run_id": run_id,
        "run_start": run_start,
        "run_end": run_end,
        "planned_materializations": planned,
        "run_s": round(run_end - run_start, 3) if run_start and run_end else None,
        "event_log_entries": len(entries),
        "steps": out_steps,
    }


def _feed_rows(first: str, last: str) -> dict[str, int]:
    """Rows read per feed in the run's days (meta.ingest_log), to relate step time to rows."""
    from pipelines.partitions import SETTINGS

    con = duckdb.connect(SETTINGS.warehouse_path, read_only=True, config={"autoload_known_extensions": False})
    try:
        rows = con.execute(
            "SELECT feed, sum(rows_read)::BIGINT FROM meta.ingest_log WHERE _partition_date BETWEEN ? AND ? GROUP BY 1",
            [dt.date.fromisoformat(first), dt.date.fromisoformat(last)],
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


# --- peer inputs ---------------------------------------------------------------------------


def stage_inputs(spec: dict, _: RssSampler) -> dict:
    """What an analyst's extract would hold: order lines with plain float money and
    timestamp dates, and the as-of customer_ref -> customer_key map (so the peer counts the
    same customers as the marts); plus our 360 and RFM rows to check the peer against."""
    out = Path(spec["inputs"])
    out.mkdir(parents=True, exist_ok=True)
    day = spec["as_of"]
    queries = {
        "orders": "SELECT order_id, line_no, customer_ref, status, category, quantity, "
        "unit_price::DOUBLE AS unit_price, discount::DOUBLE AS discount, business_date::TIMESTAMP AS business_date, "
        "_partition_date::TIMESTAMP AS _partition_date FROM staging.orders",
        "identity": f"SELECT customer_ref, customer_key FROM marts.customer_identity WHERE as_of_date = DATE '{day}'",
        "customer_360": "SELECT customer_key, has_purchased, frequency, recency_days, age_days, days_since_last, "
        "purchase_days_12m, net_monetary::DOUBLE AS net_monetary, net_monetary_12m::DOUBLE AS net_monetary_12m "
        f"FROM marts.customer_360 WHERE as_of_date = DATE '{day}'",
        "rfm_segments": "SELECT customer_key, r_score, f_score, m_score, segment "
        f"FROM marts.rfm_segments WHERE as_of_date = DATE '{day}'",
    }
    rows = {}
    con = duckdb.connect(spec["warehouse"], read_only=True, config={"autoload_known_extensions": False})
    try:
        for name, sql in queries.items():
            path = out / f"{name}.parquet"
            con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
            rows[name] = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
    finally:
        con.close()
    return {"rows": rows}


# --- entry point -----------------------------------------------------------------------------


def _stage_peer(spec: dict, _: RssSampler) -> dict:
    from bench.peers import notebook_peer

    return notebook_peer(Path(spec["inputs"]), dt.date.fromisoformat(spec["as_of"]))


def _stage_floor(spec: dict, _: RssSampler) -> dict:
    from bench.peers import sql_floor

    return sql_floor(
        spec["warehouse"], Path(spec["floor_db"]), dt.date.fromisoformat(spec["as_of"]), spec.get("memory_limit", "")
    )


STAGES = {
    "generate": stage_generate,
    "run": stage_run,
    "inputs": stage_inputs,
    "peer": _stage_peer,
    "floor": _stage_floor,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text())
    sampler = RssSampler().start()
    t0 = time.perf_counter()
    try:
        result = {"ok": True, **STAGES[args.stage](spec, sampler)}
    except Exception as exc:  # reported to the parent, which prints the log tail
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:4000]}
    sampler.stop()
    result["stage_s"] = round(time.perf_counter() - t0, 3)
    if sampler.samples:
        result["peak_rss_mb_sampled"] = round(max(r for _, r in sampler.samples) / 2**20, 1)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    ok = result["ok"] and result.get("success", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
