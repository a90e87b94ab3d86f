"""Sensors: start a run when a landing day is complete, and tell someone when a run fails.

`landing_sensor` looks at the landing zone every `sensor_interval_s` seconds. A day is
complete when every required feed has its `_manifest.json` (the sender writes it last;
quality/landing.py). The run key is the day plus a hash of its manifests' contents (file
names, row counts, SHA-256), so Dagster never launches the same delivery twice: a
re-delivered identical file gives the same key, a corrected file a new key and a rerun
of that day (which replaces its rows). The cursor remembers the digest last requested per
day, so a tick only looks at what changed.

`failure_alert` logs every failed run of this code location and, when
`alert_webhook_url` is set, POSTs a JSON message to it (a Slack / Teams / PagerDuty
incoming webhook accepts {"text": ...}). A webhook that fails is logged, never raised:
the alert must not hide the failure it reports."""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.request
from pathlib import Path

import dagster as dg

from pipelines.jobs import crm_daily
from pipelines.settings import Settings
from quality.contracts import FEEDS
from quality.landing import complete_days

log = logging.getLogger(__name__)


def _sensor_status(settings: Settings) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if settings.automation_running else dg.DefaultSensorStatus.STOPPED


def landing_requests(settings: Settings, cursor: str | None, today: dt.date) -> tuple[list[dg.RunRequest], str]:
    """Run requests for the complete days whose content is new since `cursor`, and the new
    cursor. Days before partitions_start or not yet ended (today and later) wait."""
    seen: dict[str, str] = json.loads(cursor) if cursor else {}
    feeds = settings.required_feeds or tuple(FEEDS)
    requests = []
    for day, digest in complete_days(Path(settings.landing_path), feeds).items():
        if seen.get(day) == digest:
            continue
        if not settings.start_date <= dt.date.fromisoformat(day) < today:
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{day}:{digest[:16]}",
                partition_key=day,
                tags={"crm/landing_digest": digest, "crm/trigger": "landing_sensor"},
            )
        )
        seen[day] = digest
    return requests, json.dumps(seen, sort_keys=True)


def landing_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_sensor",
        job=crm_daily,
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=_sensor_status(settings),
        description="Runs a business day when every required feed's manifest has landed; run key = content hash.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        from zoneinfo import ZoneInfo

        today = dt.datetime.now(ZoneInfo(settings.business_timezone)).date()
        requests, cursor = landing_requests(settings, context.cursor, today)
        if not requests:
            return dg.SkipReason(f"no new complete landing day in {settings.landing_path}")
        context.log.info(f"landing: {len(requests)} day(s) complete: {[r.partition_key for r in requests]}")
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return _sensor


def failure_message(job: str, run_id: str, partition: str | None, error: str) -> dict:
    text = f"crm-pipeline: run {run_id} of {job}" + (f" for {partition}" if partition else "") + f" failed: {error}"
    return {"text": text, "job": job, "run_id": run_id, "partition": partition, "error": error}


def notify(url: str, payload: dict, timeout_s: float = 10.0) -> bool:
    """POST `payload` as JSON to `url`; False (and a logged error) when that fails."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return 200 <= response.status < 300
    except (OSError, ValueError) as exc:
        log.error("alert webhook %s failed: %s", url, exc)
        return False


def failure_alert(settings: Settings) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="failure_alert",
        default_status=_sensor_status(settings),
        description="Logs every failed run and POSTs it to alert_webhook_url when set.",
    )
    def _alert(context: dg.RunFailureSensorContext):
        run = context.dagster_run
        error = context.failure_event.message or "unknown error"
        payload = failure_message(run.job_name, run.run_id, run.tags.get("dagster/partition"), error)
        context.log.error(payload["text"])
        if settings.alert_webhook_url:
            notify(settings.alert_webhook_url, payload)

    return _alert
