"""Pipeline benchmark (`make bench SCALE=1M`): demo data at a given number of order lines
through the real pipeline, stage by stage, with wall time and peak RSS per stage, against
two yardsticks measured in the same invocation.

    .venv/bin/python -m bench.pipeline_bench --scale 1M      # 1M, 10M, 100M, 250k or a plain number

What it runs, each stage in its own process (bench/stages.py; peak RSS = that process's
ru_maxrss from os.wait4), in a work folder outside the repository's state
(default bench/work/<scale>/, gitignored; its own warehouse, landing and DAGSTER_HOME):

1. generate: analytics.synth.generate, Parquet landing files, `--days` days (default 450,
   the demo's) and as many persons as give the requested order lines (synth's lines per
   person at that length is measured on a small pilot first: about 6 at 450 days, not 10).
2. ingest the first half of the days (crm_ingest, one single-run backfill, as `crm-pipeline
   run` does), the marts of its last day (what the night before leaves), the nightly run of
   the next day (crm_daily for one day: ingest, every mart, exports, report), ingest the rest
   but the last day, then the full marts snapshot of that day (every asset under marts/,
   per-asset time and sampled peak RSS from the Dagster event log and /proc), its exports and
   report, and the nightly run of the last day. The two nightly runs show whether nightly cost
   grows with the history length; the ingest runs' breakdown (Dagster before RUN_START, load,
   GX suite, event recording) how ingest scales.
3. peer (a), pandas + lifetimes, and floor (b), hand-written DuckDB SQL for the shared core,
   on the same staging rows as the marts snapshot (bench/peers.py); both check their
   customer summary against our customer_360 (mismatch counts in the results).
4. the CLV benchmark (bench/clv_bench.py, kept as its own module and results file) at the
   generated number of persons, as the last section (`--skip-clv` to leave it out).

Ratios: peer = peer time / our full marts snapshot (Dagster run time: every mart asset, step
overhead and metadata previews included); the shared core is marts customer_360 +
rfm_segments (customer_identity is their prerequisite and the floor's input, so it is not
counted; the ratio with it is printed too), core = those two steps' wall / floor time.

Writes bench/results/pipeline_<timestamp>.json. Goals are measured, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
WORK = REPO / "bench" / "work"
START = dt.date(2025, 1, 1)
#: Persons in the pilot that measures synth's order lines per person at the chosen length.
PILOT_PERSONS = 4000
#: The issue's targets (reported next to the measurements).
TARGETS = {
    "generation_lines_per_s": 1_000_000,
    "peer_ratio_at_10M": 5.0,
    "core_over_floor_at_10M": 1.5,
    "peak_rss_mb_at_100M": 8 * 1024,
}
#: The assets a notebook peer also computes (identity is an input the peer is handed).
MATCHED_STEPS = ("customer_identity", "customer_360", "rfm_segments", "value_tiers", "pareto", "clv")
CORE_STEPS = ("customer_360", "rfm_segments")


def parse_scale(text: str) -> int:
    """'1M' -> 1_000_000; also k / G suffixes and plain numbers (underscores allowed)."""
    t = text.strip().upper().replace("_", "").replace(",", "")
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}
    try:
        value = float(t[:-1]) * mult[t[-1]] if t and t[-1] in mult else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a scale (1M, 10M, 100M or a number of order lines): {text!r}") from None
    if value < 1000:
        raise argparse.ArgumentTypeError("scale: at least 1000 order lines")
    return int(value)


def scale_label(lines: int) -> str:
    for unit, div in (("M", 10**6), ("k", 10**3)):
        if lines % div == 0:
            return f"{lines // div}{unit}"
    return str(lines)


def lines_per_person(days: int, seed: int, work: Path) -> float:
    """Order lines per person synth produces over `days` days, from a small pilot run."""
    from analytics import synth

    pilot = work / "pilot"
    summary = synth.generate(pilot, customers=PILOT_PERSONS, days=days, seed=seed, fmt="parquet", log=lambda m: None)
    shutil.rmtree(pilot, ignore_errors=True)
    return summary["rows"]["orders"] / PILOT_PERSONS


# --- running a stage ---------------------------------------------------------------------------


def _rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError), path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 4096))
        lines = [x for x in fh.read().decode("utf-8", "replace").splitlines() if x.strip()]
        if lines:
            return lines[-1].rsplit(" - ", 1)[-1].strip()[:120]
    return ""


class Bench:
    def __init__(self, work: Path, env: dict[str, str], progress_s: float) -> None:
        self.work = work
        self.env = env
        self.progress_s = progress_s
        self.stages: dict[str, dict[str, Any]] = {}
        for sub in ("specs", "out", "logs"):
            (work / sub).mkdir(parents=True, exist_ok=True)

    @property
    def checkpoint(self) -> Path:
        """The stages run so far (rewritten after each): what `--resume` skips, and what a
        killed run leaves for `finish`."""
        return self.work / "stages.json"

    def done(self, name: str) -> bool:
        """Whether an earlier invocation finished this stage (`--resume`); says so if it did."""
        rec = self.stages.get(name)
        if not (rec and rec.get("ok")):
            return False
        print(f"\n== {name}: done by an earlier invocation ({rec['wall_s']:.1f}s wall; --resume)", flush=True)
        return True

    def stage(self, name: str, title: str, cmd: list[str], spec: dict | None = None) -> dict[str, Any]:
        """Run one stage as a child process; wall time, peak RSS (ru_maxrss), its JSON result."""
        log = self.work / "logs" / f"{name}.log"
        out = self.work / "out" / f"{name}.json"
        out.unlink(missing_ok=True)
        if spec is not None:
            path = self.work / "specs" / f"{name}.json"
            path.write_text(json.dumps(spec, indent=1))
            cmd = [*cmd, "--spec", str(path), "--out", str(out)]
        print(f"\n== {name}: {title}\n   log: {log}", flush=True)
        load = os.getloadavg()[0]  # another busy process on 2 cores stretches wall time: recorded
        t0 = time.perf_counter()
        with log.open("w") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env, cwd=REPO)
        beat = t0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.25)
            if time.perf_counter() - beat >= self.progress_s:
                beat = time.perf_counter()
                rss = _rss_mb(proc.pid)
                shown = f"RSS {rss / 1024:.2f} GB" if rss is not None else ""
                print(f"   … {beat - t0:5.0f}s {shown} | {_last_line(log)}", flush=True)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        wall = time.perf_counter() - t0
        record = {
            "title": title,
            "wall_s": round(wall, 3),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KB on Linux
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "loadavg_1m_at_start": round(load, 2),
            "returncode": proc.returncode,
            "log": str(log),
        }
        if spec is not None:
            record["spec"] = spec
        if out.exists():
            record["result"] = json.loads(out.read_text())
        record["ok"] = proc.returncode == 0
        self.stages[name] = record
        self.checkpoint.write_text(json.dumps(self.stages, indent=1, default=str))
        state = "ok" if record["ok"] else f"FAILED (exit {proc.returncode})"
        print(f"   {state}: {wall:.1f}s wall, peak RSS {record['peak_rss_mb']:.0f} MB", flush=True)
        if not record["ok"]:
            tail = log.read_text(errors="replace").splitlines()[-25:]
            print("   " + "\n   ".join(tail), flush=True)
        return record

    def python_stage(self, name: str, title: str, stage: str, spec: dict) -> dict[str, Any]:
        return self.stage(name, title, [sys.executable, "-m", "bench.stages", stage], spec)


# --- reading the results ---------------------------------------------------------------------------

_LOADED = re.compile(r"(\d+)/(\d+) days loaded")
#: The ingest asset validates each batch as it is written and logs the total at the end.
_VALIDATED = re.compile(r"validated in ([\d.]+)s")
_SNAPSHOTS = re.compile(r"\d+/\d+ snapshots, through")


def _steps(record: dict | None) -> dict[str, dict]:
    return ((record or {}).get("result") or {}).get("steps") or {}


def _spec_days(record: dict) -> int | None:
    """Days a Dagster stage covered, from its spec (records written before the spec was kept
    have none: the caller falls back to the default plan's count)."""
    spec = record.get("spec") or {}
    if "first" not in spec:
        return None
    return (dt.date.fromisoformat(spec["last"]) - dt.date.fromisoformat(spec["first"])).days + 1


def ingest_breakdown(record: dict, rows: dict[str, int], days: int) -> dict[str, dict]:
    """Per feed: where an ingest step's time goes. load = reading, routing and writing the
    days (the last 'days loaded' line, less the GX time inside it), gx = the GX suite on
    each batch's clean rows (the asset's 'validated in' total), record = the rest: metadata
    tables and Dagster recording a materialization per asset and partition and the check
    results in its instance."""
    out = {}
    for key, step in _steps(record).items():
        if not key.startswith("ingest_"):
            continue
        feed = key.removeprefix("ingest_")
        loaded = [(t, int(m.group(1))) for t, msg in step["log"] if (m := _LOADED.search(msg))]
        load_end = loaded[-1][0] if loaded else None
        after = [(t, msg) for t, msg in step["log"] if load_end is not None and t > load_end and "GX suite" in msg]
        gx_end = after[0][0] if after else load_end
        validated = _VALIDATED.search(after[0][1]) if after else None
        inside = float(validated.group(1)) if validated else 0.0
        batches = np.diff([0.0] + [t for t, _ in loaded]).tolist()
        out[feed] = {
            "days": days,
            "rows": rows.get(feed, 0),
            "wall_s": step["wall_s"],
            "load_s": round(load_end - inside, 2) if load_end is not None else None,
            "gx_s": round(gx_end - load_end + inside, 2) if load_end is not None else None,
            "record_s": round(step["wall_s"] - gx_end, 2) if gx_end is not None else None,
            "materializations": step["materializations"],
            "batch_s": [round(b, 2) for b in batches],
            "peak_rss_mb_sampled": step["peak_rss_mb_sampled"],
        }
    return out


def fixed_cost_fit(parts: list[dict[str, dict]]) -> dict[str, Any] | None:
    """Least squares of step wall = a x feed-days + b x rows over every feed of the ingest
    runs: a is the fixed cost per feed and day, b the cost per row."""
    points = [(f["days"], f["rows"], f["wall_s"]) for part in parts for f in part.values() if f["days"]]
    if len(points) < 3:
        return None
    x = np.array([[d, r] for d, r, _ in points], float)
    y = np.array([w for _, _, w in points], float)
    (a, b), *_ = np.linalg.lstsq(x, y, rcond=None)
    fixed = float(a * x[:, 0].sum())
    return {
        "per_feed_day_ms": round(a * 1000, 2),
        "per_million_rows_s": round(b * 1e6, 2),
        "fixed_share": round(fixed / float(y.sum()), 3),
        "points": len(points),
    }


def step_table(record: dict) -> list[dict]:
    """Per Dagster step: wall, sampled peak RSS, and for marts the time to the 'N/N
    snapshots' line (compute + write) against the rest (preview, plots, events)."""
    rows = []
    for key, step in _steps(record).items():
        done = [t for t, msg in step["log"] if _SNAPSHOTS.search(msg)]
        rows.append(
            {
                "step": key,
                "wall_s": step["wall_s"],
                "compute_write_s": round(done[-1], 2) if done else None,
                "peak_rss_mb_sampled": step["peak_rss_mb_sampled"],
                "materializations": step["materializations"],
            }
        )
    return rows


def _sum(steps: dict[str, dict], keys: tuple[str, ...] | list[str]) -> float:
    return round(sum(steps[k]["wall_s"] for k in keys if k in steps), 3)


def nightly_split(record: dict) -> dict[str, float]:
    steps = _steps(record)
    ingest = [k for k in steps if k.startswith("ingest_")]
    exports = [k for k in steps if k in ("exports__marts", "reports__html")]
    marts = [k for k in steps if k not in ingest and k not in exports]
    return {"ingest_s": _sum(steps, ingest), "marts_s": _sum(steps, marts), "exports_report_s": _sum(steps, exports)}


def _ratio(num: float | None, den: float | None) -> float | None:
    return round(num / den, 2) if num and den else None


def machine() -> dict[str, Any]:
    import dagster
    import duckdb
    import ibis
    import pandas

    mem = next(
        (int(x.split()[1]) // 1024 for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")),
        None,
    )
    info = {
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_mb": mem,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            "duckdb": duckdb.__version__,
            "ibis": ibis.__version__,
            "dagster": dagster.__version__,
            "pandas": pandas.__version__,
        },
    }
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        git = {"cwd": REPO, "text": True, "stderr": subprocess.DEVNULL}
        info["git_commit"] = subprocess.check_output(["git", "rev-parse", "HEAD"], **git).strip()
        status = subprocess.check_output(["git", "status", "--porcelain", "--untracked-files=no"], **git)
        info["git_dirty"] = bool(status)
    return info


# --- the benchmark ---------------------------------------------------------------------------


def prepare(
    work: Path, landing: Path, keep_landing: bool, memory_limit: str = "", resume: bool = False, batch_rows: int = 0
) -> dict[str, str]:
    """A fresh warehouse and Dagster instance (landing kept when reused; everything kept when
    resuming); the child env."""
    if not resume:
        for sub in ("warehouse", "dagster_home", "inputs"):
            shutil.rmtree(work / sub, ignore_errors=True)
        (work / "floor.duckdb").unlink(missing_ok=True)
        (work / "stages.json").unlink(missing_ok=True)
    if not keep_landing:
        shutil.rmtree(landing, ignore_errors=True)
    home = work / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    settings = work / "settings.yaml"
    settings.write_text(
        f'warehouse_path: "{work / "warehouse" / "crm.duckdb"}"\n'
        f'landing_path: "{landing}"\n'
        f'partitions_start: "{START.isoformat()}"\n'
        + (f'duckdb_memory_limit: "{memory_limit}"\n' if memory_limit else "")
        + (f"ingest_batch_rows: {batch_rows}\n" if batch_rows else "")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        CRM_SETTINGS=str(settings),
        CRM_IDENTITY_SECRET="bench-only-secret",
        DAGSTER_HOME=str(home),
        GX_ANALYTICS_ENABLED="False",
        DAGSTER_DISABLE_TELEMETRY="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def run(args: argparse.Namespace) -> int:
    lines = args.scale
    label = scale_label(lines)
    work = (args.work or WORK / label).resolve()
    landing = work / "landing"
    work.mkdir(parents=True, exist_ok=True)
    days = args.days
    print(f"Pipeline benchmark at {label} order lines, {days} days; work folder {work}", flush=True)

    stamp_file = landing / "bench_params.json"
    params = {"days": days, "seed": args.seed, "defects": args.defects, "start": START.isoformat()}
    previous = json.loads(stamp_file.read_text()) if stamp_file.exists() else {}
    same = args.reuse_data and {k: previous.get(k) for k in params} == params
    per_person = None
    if args.customers:
        persons = args.customers
    elif same and previous.get("order_lines_target") == lines:
        persons, per_person = previous["customers"], previous.get("lines_per_person")
    else:
        per_person = lines_per_person(days, args.seed, work)
        persons = max(100, round(lines / per_person))
    reuse = bool(same and previous.get("customers") == persons)
    if args.resume and not reuse:
        print("--resume: the work folder holds no landing of these parameters; starting afresh", flush=True)
    resume = args.resume and reuse
    print(
        f"Persons: {persons:,}"
        + (f" (synth gives {per_person:.2f} order lines per person over {days} days)" if per_person else ""),
        flush=True,
    )

    env = prepare(
        work, landing, keep_landing=reuse, memory_limit=args.memory_limit, resume=resume, batch_rows=args.batch_rows
    )
    bench = Bench(work, env, args.progress)
    if resume and bench.checkpoint.exists():
        bench.stages = json.loads(bench.checkpoint.read_text())
    day = [START + dt.timedelta(days=i) for i in range(days)]
    half = days // 2
    as_of = day[-2]
    warehouse = str(work / "warehouse" / "crm.duckdb")

    if reuse:
        print(f"\n== generate: reusing {landing} (--reuse-data; parameters match)", flush=True)
        bench.stages["generate"] = previous["stage"]
    else:
        spec = {"landing": str(landing), "customers": persons, "days": days, "start": START.isoformat()}
        rec = bench.python_stage(
            "generate",
            f"{persons:,} persons x {days} days, Parquet",
            "generate",
            {**spec, "seed": args.seed, "defects": args.defects},
        )
        if not rec["ok"]:
            return finish(args, bench, label, lines, persons, days, work, failed="generate")
        stamp = {**params, "customers": persons, "order_lines_target": lines, "lines_per_person": per_person}
        stamp_file.write_text(json.dumps({**stamp, "stage": rec}, indent=1))

    def dagster_run(name: str, title: str, job: str, first: dt.date, last: dt.date) -> bool:
        if bench.done(name):
            return True
        spec = {"job": job, "first": first.isoformat(), "last": last.isoformat()}
        return bench.python_stage(name, f"{title} ({first} … {last})", "run", spec)["ok"]

    # --skip-half-nightly: no marts_a / nightly_a, so ingest_b starts the day after ingest_a (a
    # 100M run then reaches the full-history stages about 30 minutes sooner)
    b0 = half if args.skip_half_nightly else half + 1
    plan = [
        ("ingest_a", f"ingest days 1-{half}", "ingest", day[0], day[half - 1]),
        # the marts of the day before, as the previous night would have left them: a nightly run
        # builds customer 360 from them (README, Operations: Nightly cost)
        ("marts_a", f"marts of day {half} (the night before nightly_a)", "marts", day[half - 1], day[half - 1]),
        ("nightly_a", f"nightly run, day {half + 1} (history {half + 1} days)", "daily", day[half], day[half]),
        ("ingest_b", f"ingest days {b0 + 1}-{days - 1}", "ingest", day[b0], day[-2]),
        ("marts", "full marts snapshot of one as-of date", "marts", as_of, as_of),
        ("exports", "exports and report of that date", "exports", as_of, as_of),
    ]
    plan = [p for p in plan if p[0] not in skipped_stages(args)]
    for name, title, job, first, last in plan:
        if not dagster_run(name, title, job, first, last):
            return finish(args, bench, label, lines, persons, days, work, failed=name)

    inputs = str(work / "inputs")
    "inputs" in skipped_stages(args) or bench.done("inputs") or bench.python_stage(
        "inputs",
        "peer inputs: staging.orders and the as-of identity, 360, RFM as Parquet (setup, untimed)",
        "inputs",
        {"warehouse": warehouse, "inputs": inputs, "as_of": as_of.isoformat()},
    )
    if not args.skip_peer and not bench.done("peer"):
        bench.python_stage(
            "peer", "peer (a): pandas + lifetimes notebook", "peer", {"inputs": inputs, "as_of": as_of.isoformat()}
        )
    bench.done("floor") or bench.python_stage(
        "floor",
        "floor (b): hand-written DuckDB SQL, customer summary + RFM",
        "floor",
        {
            "warehouse": warehouse,
            "floor_db": str(work / "floor.duckdb"),
            "as_of": as_of.isoformat(),
            "memory_limit": args.memory_limit,
        },
    )
    if not dagster_run("nightly_b", f"nightly run, day {days} (history {days} days)", "daily", day[-1], day[-1]):
        return finish(args, bench, label, lines, persons, days, work, failed="nightly_b")
    if not args.skip_clv and not bench.done("clv"):
        bench.stage(
            "clv",
            f"CLV benchmark (bench/clv_bench.py) at {persons:,} customers",
            [sys.executable, "-m", "bench.clv_bench", "--customers", str(persons)],
        )
    return finish(args, bench, label, lines, persons, days, work)


def analyse(bench: Bench, lines: int, days: int) -> dict[str, Any]:
    """Derived figures: generation rate, ingest scaling, marts per asset, ratios, nightly."""
    st = bench.stages
    out: dict[str, Any] = {}
    gen = (st.get("generate") or {}).get("result", {}).get("summary")
    if gen:
        out["generation"] = {
            "order_lines": gen["rows"]["orders"],
            "rows": gen["rows"],
            "files": gen["files"],
            "bytes": gen["bytes"],
            "seconds_in_generate": gen["seconds"],
            "lines_per_s": gen["lines_per_second"],
            "lines_per_s_stage_wall": round(gen["rows"]["orders"] / st["generate"]["wall_s"]),
        }
    half = days // 2
    parts = {}
    for name, n_days in (("ingest_a", half), ("ingest_b", days - half - 2), ("nightly_a", 1), ("nightly_b", 1)):
        if name in st:
            rows = (st[name].get("result") or {}).get("feed_rows", {})
            parts[name] = ingest_breakdown(st[name], rows, _spec_days(st[name]) or n_days)
    if parts:
        runs = {}
        for name, feeds in parts.items():
            res = st[name].get("result") or {}
            runs[name] = {
                "stage_wall_s": st[name]["wall_s"],
                "import_s": res.get("import_s"),
                "before_run_s": res.get("before_run_s"),
                "planned_materializations": res.get("planned_materializations"),
                "run_s": res.get("run_s"),
                "after_run_s": res.get("after_run_s"),
                **{
                    f"{part}_s": round(sum(f[f"{part}_s"] or 0 for f in feeds.values()), 2)
                    for part in ("load", "gx", "record")
                },
            }
        out["ingest"] = {
            "runs": runs,
            "per_feed": parts,
            "fit_backfills": fixed_cost_fit([parts[k] for k in ("ingest_a", "ingest_b") if k in parts]),
        }
    marts = st.get("marts")
    if marts and marts.get("ok"):
        steps = _steps(marts)
        table = step_table(marts)
        run_s = marts["result"]["run_s"]
        core = _sum(steps, CORE_STEPS)
        core_compute = sum(r["compute_write_s"] or 0 for r in table if r["step"] in CORE_STEPS)
        ident = _sum(steps, ["customer_identity"])
        matched = _sum(steps, MATCHED_STEPS)
        out["marts"] = {
            "run_s": run_s,
            "stage_wall_s": marts["wall_s"],
            "steps": table,
            "core_s": core,
            "core_compute_write_s": round(core_compute, 3),
            "identity_s": ident,
            "matched_s": matched,
        }
        peer = (st.get("peer") or {}).get("result") or {}
        floor = (st.get("floor") or {}).get("result") or {}
        out["ratios"] = {
            "peer_over_full_marts": _ratio(peer.get("total_s"), run_s),
            "peer_over_matched_marts": _ratio(peer.get("total_s"), matched),
            "core_over_floor": _ratio(core, floor.get("total_s")),
            "core_compute_write_over_floor": _ratio(core_compute, floor.get("total_s")),
            "core_with_identity_over_floor": _ratio(core + ident, floor.get("total_s")),
        }
    nightly = {}
    for name in ("nightly_a", "nightly_b"):
        rec = st.get(name)
        if rec and rec.get("ok"):
            nightly[name] = {
                "history_days": half + 1 if name == "nightly_a" else days,
                "wall_s": rec["wall_s"],
                "run_s": rec["result"]["run_s"],
                "peak_rss_mb": rec["peak_rss_mb"],
                **nightly_split(rec),
            }
    if nightly:
        out["nightly"] = nightly
    pipeline = [n for n in ("ingest_a", "marts_a", "nightly_a", "ingest_b", "marts", "exports", "nightly_b") if n in st]
    out["pipeline"] = {
        "stages": pipeline,
        "wall_s": round(sum(st[n]["wall_s"] for n in pipeline), 1),
        "peak_rss_mb": max((st[n]["peak_rss_mb"] for n in pipeline), default=None),
    }
    clv_log = Path(st["clv"]["log"]) if "clv" in st else None
    if clv_log and clv_log.exists():
        wrote = re.findall(r"wrote (\S+\.json)", clv_log.read_text())
        if wrote and Path(wrote[-1]).exists():
            clv = json.loads(Path(wrote[-1]).read_text())
            out["clv_bench"] = {"file": wrote[-1], "ratio": clv.get("ratio"), "ours_total_s": clv["ours"]["total"]}
    return out


def print_summary(bench: Bench, figures: dict[str, Any], label: str) -> None:
    st = bench.stages
    print(f"\n{'=' * 100}\nPipeline benchmark, {label} order lines\n")
    header = f"{'stage':<44} {'wall s':>9} {'cpu s':>8} {'peak RSS MB':>12}  note"
    print(header + "\n" + "-" * len(header))

    def row(name: str, wall: float | None, rss: float | None, note: str = "", cpu: float | None = None) -> None:
        w = f"{wall:9.1f}" if wall is not None else f"{'':9}"
        c = f"{cpu:8.1f}" if cpu is not None else f"{'':8}"
        r = f"{rss:12.0f}" if rss is not None else f"{'':12}"
        print(f"{name:<44} {w} {c} {r}  {note}")

    gen = figures.get("generation")
    if "generate" in st:
        note = f"{gen['order_lines']:,} lines, {gen['lines_per_s']:,} lines/s" if gen else ""
        row("generate", st["generate"]["wall_s"], st["generate"]["peak_rss_mb"], note, st["generate"].get("cpu_s"))
    ing = figures.get("ingest", {}).get("per_feed", {})
    marts = figures.get("marts", {})
    ratios = figures.get("ratios", {})
    for name in (
        "ingest_a",
        "marts_a",
        "nightly_a",
        "ingest_b",
        "marts",
        "exports",
        "inputs",
        "peer",
        "floor",
        "nightly_b",
        "clv",
    ):
        rec = st.get(name)
        if not rec:
            continue
        note = rec["title"]
        if name.startswith("ingest") and ing.get(name):
            rows = sum(f["rows"] for f in ing[name].values())
            note = f"{rec['title']}; {rows:,} rows"
        if name == "marts" and marts:
            note = f"run {marts['run_s']:.1f}s (Dagster RUN_START..SUCCESS)"
        if name == "peer" and ratios.get("peer_over_full_marts"):
            note = (
                f"peer/full marts {ratios['peer_over_full_marts']}x, "
                f"peer/matched marts {ratios['peer_over_matched_marts']}x"
            )
        if name == "floor" and ratios.get("core_over_floor"):
            note = f"core/floor {ratios['core_over_floor']}x (with identity {ratios['core_with_identity_over_floor']}x)"
        if name.startswith("nightly") and name in figures.get("nightly", {}):
            n = figures["nightly"][name]
            note = (
                f"history {n['history_days']} d: ingest {n['ingest_s']:.1f}s, marts {n['marts_s']:.1f}s, "
                f"exports+report {n['exports_report_s']:.1f}s"
            )
        if name == "clv" and figures.get("clv_bench"):
            note = f"lifetimes / ours {figures['clv_bench']['ratio']:.1f}x"
        if not rec["ok"]:
            note = f"FAILED: {note}"
        row(name, rec["wall_s"], rec["peak_rss_mb"], note, rec.get("cpu_s"))
        if name == "marts" and marts:
            for step in sorted(marts["steps"], key=lambda s: -s["wall_s"]):
                cw = f"compute+write {step['compute_write_s']:.1f}s" if step["compute_write_s"] is not None else ""
                row(f"  {step['step']}", step["wall_s"], step["peak_rss_mb_sampled"], cw)
    if ing:
        print("\nIngest per feed (load = read+route+write, gx = GX suite, record = metadata + Dagster events):")
        for name, feeds in ing.items():
            for feed, f in feeds.items():
                per_day = f["wall_s"] / f["days"] * 1000 if f["days"] else 0
                print(
                    f"  {name:<10} {feed:<13} {f['rows']:>10,} rows {f['days']:>4} d  wall {f['wall_s']:7.1f}s "
                    f"(load {f['load_s']}, gx {f['gx_s']}, record {f['record_s']})  {per_day:6.0f} ms/day"
                )
        print("\nWhere an ingest run's time goes (s):")
        for name, r in figures["ingest"]["runs"].items():
            print(
                f"  {name:<10} stage {r['stage_wall_s']:.1f} = imports {r['import_s']} + before RUN_START "
                f"{r['before_run_s']} ({r['planned_materializations']} planned materializations) + run {r['run_s']} "
                f"(steps: load {r['load_s']}, gx {r['gx_s']}, record {r['record_s']}) + after {r['after_run_s']}"
            )
        fit = figures["ingest"].get("fit_backfills")
        if fit:
            print(
                f"  fit over the backfill steps: {fit['per_feed_day_ms']} ms per feed-day + "
                f"{fit['per_million_rows_s']} s per million rows; fixed share {fit['fixed_share']:.0%}"
            )
    if ratios:
        print("\nRatios (peer_*: peer time / ours, above 1 = we are faster; core_*: ours / floor, 1 = the floor):")
        for k, v in ratios.items():
            print(f"  {k:<34} {v}")
    pipe = figures.get("pipeline", {})
    print(f"\nPipeline stages {pipe.get('stages')}: {pipe.get('wall_s')}s, peak RSS {pipe.get('peak_rss_mb')} MB")


def finish(
    args: argparse.Namespace,
    bench: Bench,
    label: str,
    lines: int,
    persons: int,
    days: int,
    work: Path,
    failed: str | None = None,
) -> int:
    figures = analyse(bench, lines, days)
    print_summary(bench, figures, label)
    record = {
        "benchmark": "pipeline",
        "scale": label,
        "order_lines_target": lines,
        "persons": persons,
        "days": days,
        "seed": args.seed,
        "defects": args.defects,
        "machine": machine(),
        "work_dir": str(work),
        "code_dir": str(REPO),
        "note": args.note,
        "memory_limit": args.memory_limit or None,
        "ingest_batch_rows": args.batch_rows or None,
        "failed_stage": failed,
        "targets": TARGETS,
        **figures,
        "stages": bench.stages,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"pipeline_{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=1, default=str))
    print(f"wrote {path}")
    return 1 if failed else 0


#: Every stage a full run has, in order (`--report-only` names the ones a cut-short run lacks).
ALL_STAGES = ("generate", "ingest_a", "marts_a", "nightly_a", "ingest_b", "marts", "exports", "inputs", "floor")


def skipped_stages(args: argparse.Namespace) -> set[str]:
    """Stages of ALL_STAGES the options leave out: the half-history marts and nightly run
    (`--skip-half-nightly`), the peer's inputs (`--skip-peer`)."""
    return ({"marts_a", "nightly_a"} if args.skip_half_nightly else set()) | ({"inputs"} if args.skip_peer else set())


def report_only(args: argparse.Namespace) -> int:
    """The results of the stages a run in `--work` finished (its stages.json), without running
    anything: for a run cut short that will not be resumed."""
    work = (args.work or WORK / scale_label(args.scale)).resolve()
    bench = Bench(work, {}, args.progress)
    stamp = work / "landing" / "bench_params.json"
    if not (bench.checkpoint.exists() and stamp.exists()):
        print(f"--report-only: {work} has no stages.json and landing/bench_params.json to report", file=sys.stderr)
        return 2
    params = json.loads(stamp.read_text())
    bench.stages = {"generate": params["stage"], **json.loads(bench.checkpoint.read_text())}
    missing = [n for n in ALL_STAGES if n not in skipped_stages(args) and not (bench.stages.get(n) or {}).get("ok")]
    failed = f"not run: {', '.join(missing)}" if missing else None
    lines = params.get("order_lines_target") or args.scale
    return finish(args, bench, scale_label(lines), lines, params["customers"], params["days"], work, failed=failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=parse_scale, default=parse_scale("1M"), help="order lines: 1M, 10M, 100M, N")
    parser.add_argument("--days", type=int, default=450, help="business days of demo data (default 450)")
    parser.add_argument("--customers", type=int, default=None, help="persons to generate (default: from --scale)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--defects", type=float, default=0.0, help="planted defect share (default 0: clean data)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default bench/work/<scale>)")
    parser.add_argument("--reuse-data", action="store_true", help="keep landing data generated with the same params")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a run in the same --work folder: keep its warehouse and skip the stages it finished "
        "(its stages.json); implies --reuse-data",
    )
    parser.add_argument("--skip-peer", action="store_true", help="leave out the pandas + lifetimes peer")
    parser.add_argument("--skip-clv", action="store_true", help="leave out the CLV benchmark section")
    parser.add_argument(
        "--skip-half-nightly",
        action="store_true",
        help="leave out marts_a and nightly_a (the nightly run at half history): ingest_b then starts the day "
        "after ingest_a, and the bench reports one nightly history length",
    )
    parser.add_argument("--progress", type=float, default=30.0, help="seconds between progress lines")
    parser.add_argument(
        "--memory-limit", default="", help="DuckDB memory limit of the pipeline's stages (e.g. 6GB; default DuckDB's)"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the results of the stages a run in --work finished (its stages.json), running nothing",
    )
    parser.add_argument(
        "--batch-rows", type=int, default=0, help="ingest_batch_rows of the pipeline's stages (default the setting's)"
    )
    parser.add_argument("--note", default="", help="free text stored in the results file (e.g. what code was measured)")
    args = parser.parse_args(argv)
    args.reuse_data = args.reuse_data or args.resume
    if args.days < 8:
        parser.error("--days must be at least 8 (two ingest halves and two nightly runs)")
    return report_only(args) if args.report_only else run(args)


if __name__ == "__main__":
    raise SystemExit(main())
