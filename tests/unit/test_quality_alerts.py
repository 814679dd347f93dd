"""The text of alert e-mails: one line per fact a person needs, nothing to decode."""

from __future__ import annotations

import datetime as dt

from erpsync.alerts import FailureInfo, deadline_mail, failure_mail, one_line, watchdog_mail
from erpsync.watchdog import Finding


def test_one_line_keeps_the_type_and_the_first_line_only() -> None:
    assert one_line(ValueError("bad thing\nTraceback ...")) == "ValueError: bad thing"
    assert one_line(None).startswith("no error recorded")
    assert len(one_line(RuntimeError("x" * 1000))) == 300


def test_failure_mail_has_everything_to_act_on() -> None:
    subject, body = failure_mail(FailureInfo(
        dag_id="orders_sync", task_id="sync_orders", run_id="scheduled__2026-11-20T16:00:00+00:00",
        try_number=4, max_tries=4, error="TransientError: ERP 503 after 5 tries",
        log_url="http://127.0.0.1:8080/dags/orders_sync/runs/r/tasks/sync_orders?try_number=4",
        counts={"done": 12, "failed": 1, "quarantined": 2, "skipped": 3, "reasons": {"unknown_sku": 2}},
        quality_reports=["/var/quality/orders_sync/r/order-1.html"],
    ))
    assert subject == "[erpsync] orders_sync.sync_orders failed: TransientError: ERP 503 after 5 tries"
    for line in ("DAG:    orders_sync", "Task:   sync_orders", "Try:    4 of 4",
                 "Records: done=12 failed=1 quarantined=2 skipped=3", "Top reasons: unknown_sku x2",
                 "Log:    http://127.0.0.1:8080/dags/orders_sync/runs/r/tasks/sync_orders?try_number=4",
                 "Quality report: /var/quality/orders_sync/r/order-1.html"):
        assert line in body.splitlines()
    _, unknown = failure_mail(FailureInfo("d", "t", "r", 1, 1, "E: x"))
    assert "Records: not counted" in unknown


def test_deadline_and_watchdog_mails() -> None:
    subject, body = deadline_mail("orders_sync", "manual__1", deadline_time="2026-11-20T16:02:00+00:00",
                                  queued_at="2026-11-20T16:00:00Z", state="running", limit="2 min",
                                  run_url="http://x/dags/orders_sync/runs/manual__1")
    assert subject == "[erpsync] orders_sync missed its deadline (2 min)"
    assert "State:     running (when the deadline passed)" in body and "Run page:  http://x/" in body
    subject, body = watchdog_mail([Finding("orders_stopped", "orders_sync", "no order synced", "look")],
                                  now=dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC))
    assert subject == "[erpsync] watchdog: 1 problem(s): orders_stopped"
    assert "- [orders_stopped] orders_sync: no order synced" in body and "what to do: look" in body
