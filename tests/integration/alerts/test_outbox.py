"""The outbox and the notify job against real servers on loopback: an aiosmtpd SMTP server,
pytest-httpserver standing in for Slack's Web API and a webhook receiver, and the file
channel; on SQLite and PostgreSQL, with frozen time."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from werkzeug import Request, Response

from tests.helpers import alert_sentence, run_together
from worker.alerts import state as alerts
from worker import db
from reports import outbox
from reports.channels import open_channel
from worker.models import Alert, Notification
from worker.registry import JobSpec, registry
from worker.scheduler import run_job
from worker.settings import load
from tests.integration.alerts.conftest import SLACK_TOKEN




@pytest.fixture
def settings_for(channel_settings):
    """Settings with every channel pointed at the loopback servers (Berlin time, a webhook secret), and the routes."""
    return lambda routes, extra="": channel_settings(routes, 'timezone = "Europe/Berlin"\n' + extra, webhook_secret=True)


EVERYWHERE = """
[[routes]]
kinds = ["budget.*"]
to = ["email:admins@example.com", "slack:#llm-costs", "webhook:{hook}", "file:admins"]
"""


def slack_ok(request: Request) -> Response:
    return Response(json.dumps({"ok": True, "channel": "C1", "ts": "1763900000.000100"}),
                    content_type="application/json")


def raise_budget(engine, settings, severity: str = "warning") -> None:
    with engine.begin() as conn:
        alerts.raise_alert(conn, settings, kind="budget.account", scope="account", scope_id="u42",
                           period="2026-11-23", severity=severity,
                           payload={"message": "u42 spent $0.0612 of $0.05 today", "account_id": "u42",
                                    "model": "<script>alert(1)</script>"})


def rows(engine) -> list[Notification]:
    with engine.connect() as conn:
        return list(conn.execute(select(Notification).order_by(Notification.id)).all())


def slack_posts(httpserver) -> list[Any]:
    return [r for r, _ in httpserver.log if r.path.endswith("chat.postMessage")]


def notify(engine, settings) -> dict[str, Any]:
    run = run_job(registry.get("notify"), settings, engine)
    assert run.status == "success", run.error
    return run.stats


@freeze_time("2026-11-23T10:00:00Z")
def test_an_alert_reaches_every_channel_exactly_once(engine, settings_for, mailbox, httpserver, tmp_path) -> None:
    box, _ = mailbox
    httpserver.expect_request("/api/chat.postMessage").respond_with_handler(slack_ok)
    httpserver.expect_request("/hook").respond_with_data("ok")
    settings = settings_for(EVERYWHERE.format(hook=httpserver.url_for("/hook")))
    raise_budget(engine, settings)
    raise_budget(engine, settings)  # again: nothing more to send
    assert notify(engine, settings) == {"reminders": 0, "sent": 4, "retrying": 0, "failed": 0, "in_doubt": 0}
    assert notify(engine, settings)["sent"] == 0

    sent = {r.channel: r for r in rows(engine)}
    assert all(r.status == "sent" and r.attempts == 1 and r.sent_at is not None for r in sent.values())
    [mail] = box.mails()
    assert mail["To"] == "admins@example.com" and mail["Message-ID"] == sent["email"].external_id
    assert "&lt;script&gt;" in mail.get_body(("html",)).get_content()
    [post] = slack_posts(httpserver)
    assert post.headers["Authorization"] == f"Bearer {SLACK_TOKEN}" and post.form.get("channel", None) in (None, "#llm-costs")
    assert sent["slack"].external_id == "1763900000.000100"
    [hook] = [r for r, _ in httpserver.log if r.path == "/hook"]
    assert hook.headers["X-Tokentally-Delivery"] == sent["webhook"].key
    assert Path(sent["file"].external_id).exists()


@freeze_time("2026-11-23T10:00:00Z")
def test_alert_times_are_sent_in_the_configured_time_zone_with_its_name(engine, settings_for, mailbox,
                                                                        httpserver) -> None:
    box, _ = mailbox
    httpserver.expect_request("/api/chat.postMessage").respond_with_handler(slack_ok)
    settings = settings_for('[[routes]]\nkinds = ["budget.*"]\nto = ["email:admins@example.com", "slack:#llm-costs"]\n')
    raise_budget(engine, settings)
    assert notify(engine, settings)["sent"] == 2
    [mail] = box.mails()
    assert "First seen: 2026-11-23 11:00 CET (Europe/Berlin)" in mail.get_body(("plain",)).get_content()
    assert "2026-11-23 11:00 CET (Europe/Berlin)" in mail.get_body(("html",)).get_content()
    [post] = slack_posts(httpserver)
    assert "First seen 2026-11-23 11:00 CET (Europe/Berlin)" in json.dumps(post.get_json() or post.form.to_dict())


def test_a_temporary_failure_is_retried_after_the_backoff(engine, settings_for, httpserver) -> None:
    settings = settings_for('[[routes]]\nkinds = ["*"]\nto = ["slack:#llm-costs"]\n')
    httpserver.expect_ordered_request("/api/chat.postMessage").respond_with_data("oops", status=500)
    httpserver.expect_ordered_request("/api/chat.postMessage").respond_with_handler(slack_ok)
    with freeze_time("2026-11-23T10:00:00Z"):
        raise_budget(engine, settings)
        assert notify(engine, settings)["retrying"] == 1
    [row] = rows(engine)
    assert row.status == "pending" and row.attempts == 1 and "500" in row.last_error
    assert row.next_attempt_at.isoformat() == "2026-11-23T10:01:00+00:00"
    with freeze_time("2026-11-23T10:00:59Z"):
        assert notify(engine, settings)["sent"] == 0  # not due yet
    with freeze_time("2026-11-23T10:01:00Z"):
        assert notify(engine, settings)["sent"] == 1
    [row] = rows(engine)
    assert row.status == "sent" and row.attempts == 2 and len(slack_posts(httpserver)) == 2


@freeze_time("2026-11-23T10:00:00Z")
def test_a_rate_limit_waits_as_long_as_slack_asks(engine, settings_for, httpserver) -> None:
    settings = settings_for('[[routes]]\nkinds = ["*"]\nto = ["slack:#llm-costs"]\n')
    httpserver.expect_request("/api/chat.postMessage").respond_with_data(
        json.dumps({"ok": False, "error": "ratelimited"}), status=429, headers={"Retry-After": "300"})
    raise_budget(engine, settings)
    notify(engine, settings)
    [row] = rows(engine)
    assert row.status == "pending" and row.next_attempt_at.isoformat() == "2026-11-23T10:05:00+00:00"


@freeze_time("2026-11-23T10:00:00Z")
def test_a_permanent_failure_fails_at_once_and_alerts_the_fallback(engine, settings_for, httpserver,
                                                                     tmp_path) -> None:
    settings = settings_for('[[routes]]\nkinds = ["budget.*"]\nto = ["slack:#llm-costs"]\n')
    httpserver.expect_request("/api/chat.postMessage").respond_with_json({"ok": False, "error": "invalid_auth"})
    raise_budget(engine, settings)
    stats = notify(engine, settings)
    assert stats["failed"] == 1 and stats["sent"] == 1  # the fallback message, in the same run
    failed, fallback = rows(engine)
    assert failed.status == "failed" and failed.attempts == 1 and "invalid_auth" in failed.last_error
    assert (fallback.kind, fallback.channel, fallback.target, fallback.status) == \
        ("delivery.failed", "file", "delivery-failed", "sent")
    assert "invalid_auth" in Path(fallback.external_id).read_text(encoding="utf-8")
    with engine.connect() as conn:
        kinds = {a.kind: a for a in conn.execute(select(Alert)).all()}
    assert kinds["delivery.failed"].scope_id == "slack:#llm-costs"


def test_a_notification_that_keeps_failing_gives_up_after_max_attempts(engine, settings_for, httpserver) -> None:
    settings = settings_for(f'[[routes]]\nkinds = ["budget.*"]\nto = ["webhook:{httpserver.url_for("/hook")}"]\n',
                            extra="[notify]\nmax_attempts = 3\nbackoff_base = \"1m\"\n")
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    with freeze_time("2026-11-23T10:00:00Z") as frozen:
        raise_budget(engine, settings)
        for _ in range(6):
            notify(engine, settings)
            frozen.tick(timedelta(minutes=10))
    webhook_row = rows(engine)[0]
    assert webhook_row.status == "failed" and webhook_row.attempts == 3 and "gave up after 3" in webhook_row.last_error
    assert len([r for r, _ in httpserver.log if r.path == "/hook"]) == 3


def test_a_crash_between_send_and_record_resends_only_where_the_copy_is_recognised(
        engine, settings_for, mailbox, httpserver) -> None:
    box, _ = mailbox
    httpserver.expect_request("/api/chat.postMessage").respond_with_handler(slack_ok)
    settings = settings_for('[[routes]]\nkinds = ["*"]\nto = ["email:admins@example.com", "slack:#llm-costs"]\n')
    with freeze_time("2026-11-23T10:00:00Z"):
        raise_budget(engine, settings)
        # a worker claims both, sends both, and dies before recording either
        for row, in_doubt in outbox.claim(engine, settings.delivery, limit=10):
            assert not in_doubt
            open_channel(settings.channels[row.channel]).send(row.target, outbox_message(row))
        assert notify(engine, settings)["sent"] == 0  # still within the lease: nobody touches them
    with freeze_time("2026-11-23T10:10:00Z"):
        stats = notify(engine, settings)
    assert stats["in_doubt"] == 2
    by_channel = {r.channel: r for r in rows(engine) if r.kind == "budget.account"}
    assert by_channel["email"].status == "sent"  # sent again with the same Message-ID
    first, second = [m for m in box.mails() if m["X-Tokentally-Kind"] == "budget.account"]
    assert first["Message-ID"] == second["Message-ID"]
    # the Slack row's failure is itself reported (routes send every kind to email)
    assert [m["X-Tokentally-Kind"] for m in box.mails()].count("delivery.failed") == 1
    assert by_channel["slack"].status == "failed" and "in doubt" in by_channel["slack"].last_error
    assert len(slack_posts(httpserver)) == 1  # never posted twice


def outbox_message(row: Notification):
    from reports.messages import Message

    return Message(kind=row.kind, key=row.key, subject=row.subject, text=row.body_text, html=row.body_html,
                   slack=row.slack, data=row.data)


@freeze_time("2026-11-23T10:00:00Z")
def test_two_notify_workers_send_each_message_once(settings_for, db_url, mailbox) -> None:
    box, _ = mailbox
    settings = settings_for('[[routes]]\nkinds = ["*"]\nto = ["email:admins@example.com", "file:admins"]\n')
    engines = [db.make_engine(db_url) for _ in range(2)]
    try:
        with engines[0].begin() as conn:
            for account in range(15):
                alerts.raise_alert(conn, settings, kind="budget.account", scope="account", scope_id=f"u{account}",
                                   period="2026-11-23", severity="warning", payload={})
        results = [stats for pair in run_together(
            [lambda e=e: (outbox.deliver_pending(e, settings, limit=5), outbox.deliver_pending(e, settings, limit=100))
             for e in engines]) for stats in pair]
        assert sum(r.sent for r in results) == 30
        assert all(r.status == "sent" and r.attempts == 1 for r in rows(engines[0]))
        assert len(box.mails()) == 15
        assert len({m["Message-ID"] for m in box.mails()}) == 15
    finally:
        for e in engines:
            e.dispose()


@freeze_time("2026-11-23T10:00:00Z")
def test_a_failing_job_raises_job_failed_once_a_day(engine, settings_for) -> None:
    settings = settings_for('[[routes]]\nkinds = ["job.*"]\nto = ["file:ops"]\n')

    def broken(ctx):
        raise RuntimeError("source table is gone")

    spec = JobSpec("probe", broken, "every 1m", "test")
    run_job(spec, settings, engine)
    run_job(spec, settings, engine)
    with engine.connect() as conn:
        [alert] = conn.execute(select(Alert)).all()
    assert (alert.kind, alert.scope_id, alert.period, alert.severity, alert.times_seen) == \
        ("job.failed", "probe", "2026-11-23", "critical", 2)
    assert "source table is gone" in alert_sentence(alert)
    [message] = rows(engine)
    assert message.target == "ops" and "probe" in message.subject


def test_notifications_cli_lists_retries_and_tests_channels(cli, tmp_path, httpserver, db_url) -> None:
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f'[channels.file]\ndir = "{tmp_path / "out"}"\n[channels.webhook]\ntimeout_seconds = 5\n'
                   f'[[routes]]\nkinds = ["*"]\nto = ["webhook:{httpserver.url_for("/hook")}"]\n', encoding="utf-8")
    settings = load(cfg, env={"TOKENTALLY_DATABASE_URL": db_url})
    engine = db.make_engine(db_url)
    try:
        httpserver.expect_ordered_request("/hook").respond_with_data("gone", status=404)
        httpserver.expect_ordered_request("/hook").respond_with_data("ok")
        raise_budget(engine, settings)
        stats = outbox.deliver_pending(engine, settings)
        assert stats.failed == 1
    finally:
        engine.dispose()
    failed = json.loads(cli("notifications", "list", "--status", "failed", "--format", "json", config=cfg).stdout)
    assert [(r["channel"], r["status"]) for r in failed] == [("webhook", "failed")]
    result = cli("notifications", "retry", str(failed[0]["id"]), "--format", "json", config=cfg)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "sent"
    test = cli("notify", "test", "file", "smoke", "--format", "json", config=cfg)
    assert test.exit_code == 0, test.output
    written = Path(json.loads(test.stdout)["id"])
    assert written.parent == tmp_path / "out" / "smoke" and written.exists()
    missing = cli("notify", "test", "slack", "#x", config=cfg)
    assert missing.exit_code == 2 and "not configured" in missing.output
    listed = json.loads(cli("alerts", "list", "--open", "--format", "json", config=cfg).stdout)
    kinds = sorted(a["kind"] for a in listed)
    assert kinds == ["budget.account", "delivery.failed"]
    budget = next(a for a in listed if a["kind"] == "budget.account")
    assert cli("alerts", "ack", str(budget["id"]), config=cfg).exit_code == 0
    assert cli("alerts", "ack", str(budget["id"]), config=cfg).exit_code == 1
    assert cli("alerts", "resolve", str(budget["id"]), config=cfg).exit_code == 0
    assert [a["kind"] for a in json.loads(cli("alerts", "list", "--open", "--format", "json",
                                              config=cfg).stdout)] == ["delivery.failed"]

