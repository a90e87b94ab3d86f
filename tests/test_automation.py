"""Automation: the landing sensor starts a day once every required manifest is there and
never twice for the same content; the nightly schedule targets yesterday's business day in
the business time zone; a failed run is posted to the alert webhook; a locked warehouse is
waited for, then retried, instead of failing at once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import threading
from typing import ClassVar
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from pipelines.sensors import failure_message, landing_requests, landing_sensor, notify
from pipelines.settings import Settings, load_settings
from pipelines.warehouse import Warehouse
from quality.landing import complete_days
from tests import landing_kit as kit

FEEDS2 = ("customers", "orders")
DAY, NEXT = "2025-03-01", "2025-03-02"
TODAY = dt.date(2025, 3, 10)


def _deliver(landing, day, feeds=FEEDS2, customer="CRM-0000001"):
    for feed in feeds:
        rows = [kit.customer(customer, day=day)] if feed == "customers" else [kit.order("O-1", day=day)]
        kit.write_day(landing, feed, day, {"f.csv": kit.csv_text(feed, rows)})


@pytest.fixture
def settings(tmp_path):
    return Settings(landing_path=str(tmp_path / "landing"), required_feeds=FEEDS2)


def test_a_day_is_complete_when_every_required_manifest_is_there(settings, tmp_path):
    landing = tmp_path / "landing"
    _deliver(landing, DAY)
    _deliver(landing, NEXT, feeds=("customers",))  # orders not yet delivered
    kit.write_day(landing, "orders", NEXT, {"f.csv": kit.csv_text("orders", [])}, manifest=False)  # still copying
    assert set(complete_days(landing, FEEDS2)) == {DAY}
    requests, _ = landing_requests(settings, None, TODAY)
    assert [r.partition_key for r in requests] == [DAY]


def test_the_same_content_never_runs_twice_and_a_correction_runs_again(settings, tmp_path):
    landing = tmp_path / "landing"
    _deliver(landing, DAY)
    first, cursor = landing_requests(settings, None, TODAY)
    again, cursor2 = landing_requests(settings, cursor, TODAY)
    assert len(first) == 1 and again == [] and cursor2 == cursor
    _deliver(landing, DAY)  # the sender re-delivers identical bytes: same digest, same run key
    assert landing_requests(settings, None, TODAY)[0][0].run_key == first[0].run_key
    assert landing_requests(settings, cursor, TODAY)[0] == []
    _deliver(landing, DAY, customer="CRM-0000002")  # a corrected file: new key, the day reruns
    corrected, _ = landing_requests(settings, cursor, TODAY)
    assert [r.partition_key for r in corrected] == [DAY] and corrected[0].run_key != first[0].run_key


def test_days_outside_the_partitions_wait(settings, tmp_path):
    landing = tmp_path / "landing"
    for day in ("2024-12-31", "2025-03-10", DAY):  # before partitions_start; today (not ended); fine
        _deliver(landing, day)
    assert [r.partition_key for r in landing_requests(settings, None, TODAY)[0]] == [DAY]


def test_the_sensor_definition_returns_requests_then_skips(settings, tmp_path):
    _deliver(tmp_path / "landing", DAY)
    sensor = landing_sensor(settings)
    with dg.instance_for_test() as instance:
        result = sensor(dg.build_sensor_context(instance=instance))
        assert [r.partition_key for r in result.run_requests] == [DAY]
        again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert isinstance(again, dg.SkipReason)


def test_nightly_schedule_runs_yesterdays_business_day_in_the_business_time_zone():
    from pipelines.definitions import defs

    schedule = defs.resolve_schedule_def("crm_nightly")  # the defaults: 02:30, Asia/Shanghai
    assert schedule.cron_schedule == "30 2 * * *" and schedule.execution_timezone == "Asia/Shanghai"
    # 02:30 on 2 March in Shanghai is still 1 March in UTC: the partition is the business day 1 March
    at = dt.datetime(2025, 3, 2, 2, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    with dg.instance_for_test() as instance:
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=at))
    assert [r.partition_key for r in result.run_requests] == ["2025-03-01"]
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_bad_automation_settings_are_refused(tmp_path):
    for text, message in (("nightly_at: '25:99'\n", "nightly_at"), ("required_feeds: [ordres]\n", "ordres")):
        path = tmp_path / "s.yaml"
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_settings(path)


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # keep the test output clean
        pass


def test_a_failure_is_posted_to_the_webhook_and_a_dead_webhook_does_not_raise():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        payload = failure_message("crm_daily", "abc123", DAY, "staging/orders: quarantine ceiling exceeded")
        assert notify(f"http://127.0.0.1:{server.server_port}/hook", payload)
    finally:
        server.shutdown()
    assert _Hook.received[-1]["text"] == (
        "crm-pipeline: run abc123 of crm_daily for 2025-03-01 failed: staging/orders: quarantine ceiling exceeded"
    )
    assert not notify(f"http://127.0.0.1:{server.server_port}/hook", payload, timeout_s=1)  # nobody listens now


def test_failure_sensor_runs_on_a_failed_run_and_posts(monkeypatch):
    from pipelines import sensors

    posted = []
    monkeypatch.setattr(sensors, "notify", lambda url, payload, timeout_s=10.0: posted.append((url, payload)))
    alert = sensors.failure_alert(dataclasses.replace(Settings(), alert_webhook_url="http://hook.invalid/x"))

    @dg.op
    def boom():
        raise RuntimeError("disk full")

    @dg.job
    def broken():
        boom()

    with dg.instance_for_test() as instance:
        result = broken.execute_in_process(instance=instance, raise_on_error=False)
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="failure_alert",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=failure,
        ).for_run_failure()
        alert(context)
    assert posted and posted[0][0] == "http://hook.invalid/x"
    assert posted[0][1]["run_id"] == result.run_id and "failed" in posted[0][1]["text"]


def test_a_locked_warehouse_is_waited_for_then_refused(tmp_path):
    """DuckDB locks the file per process, so the lock is simulated: the first two opens fail
    with DuckDB's lock error, the third succeeds; with no time left to wait it raises."""
    path = tmp_path / "w.duckdb"
    real = duckdb.connect
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args[0])
        if len(calls) <= 2:
            raise duckdb.IOException('IO Error: Could not set lock on file "w.duckdb": Conflicting lock is held')
        return real(*args, **kwargs)

    import pipelines.warehouse as wh

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wh.duckdb, "connect", flaky)
        mp.setattr(wh.time, "sleep", lambda s: None)
        with Warehouse(path, lock_timeout_s=5).connect() as con:
            assert con.raw_sql("SELECT 1").fetchall() == [(1,)]
        assert len(calls) == 3
        calls.clear()
        with pytest.raises(duckdb.IOException, match="lock"), Warehouse(path, lock_timeout_s=0).connect():
            pass
