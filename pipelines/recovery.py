"""Recovering from a run whose process died (SIGKILL, out of memory, a rebooted host).

The warehouse survives it by itself: every write is one DuckDB transaction, and an
uncommitted one is rolled back when the file is next opened, so the previous snapshot
stands (pipelines/warehouse.py). The Dagster instance does not: a persistent instance
keeps the dead run STARTED and, worse, keeps the warehouse-pool slot its step had
claimed, so every later run would wait for that slot forever.

So each CLI run is tagged with its host and process id, and before launching the CLI
marks runs of this host whose process is gone as failed and frees their slots, and frees
any slot still held by a run that has already finished. A run launched by `dagster dev`
or the daemon has no process tag and is left to Dagster's run monitoring.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import dagster as dg

PID_TAG = "crm/pid"
HOST_TAG = "crm/host"

_ACTIVE = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]


def run_tags() -> dict[str, str]:
    """Tags that let a later process tell whether this one is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def recover_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None] = print) -> list[str]:
    """Mark this host's runs whose process is gone as failed and free every pool slot held
    by a run that is not running. Returns the run ids it recovered."""
    host = socket.gethostname()
    recovered = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_ACTIVE, tags={HOST_TAG: host})):
        pid = int(run.tags.get(PID_TAG, "0") or 0)
        if not pid or pid == os.getpid() or _alive(pid):
            continue
        instance.report_run_failed(run, f"process {pid} on {host} died during the run (recovered by a later run)")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(run.run_id)
        log(f"Run {run.run_id} ({run.job_name}) lost its process {pid}: marked failed, warehouse slot freed.")
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
                log(f"Freed the warehouse slot still held by finished run {run_id}.")
    return recovered
