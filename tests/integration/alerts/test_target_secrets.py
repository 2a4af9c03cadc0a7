"""Secrets inside a delivery target (a webhook URL's password, path token and query values) never
leave the target: a failing target is named redacted in its delivery.failed alert key, the
"alert raised" log line, the message sent to the fallback and `notifications list`; on SQLite and
PostgreSQL, against a real HTTP server on loopback."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from reports import outbox
from worker import db, redact
from worker.alerts import state as alerts
from worker.models import Alert, Notification
from worker.settings import load

SECRETS = ("PASSWORD7", "PATHTOKEN42", "QUERYSECRET9")


def hostile_target(httpserver) -> str:
    return (f"http://hookuser:PASSWORD7@127.0.0.1:{httpserver.port}/hook/PATHTOKEN42"
            f"?token=QUERYSECRET9&v=2")


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} in {where}: {text}"


@freeze_time("2026-11-23T10:00:00Z")
def test_a_failing_target_is_named_without_its_secrets_everywhere(cli, tmp_path, httpserver, db_url,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    target = hostile_target(httpserver)
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f'[channels.file]\ndir = "{tmp_path / "out"}"\n[channels.webhook]\ntimeout_seconds = 5\n'
                   f'[[routes]]\nkinds = ["budget.*"]\nto = ["webhook:{target}"]\n', encoding="utf-8")
    settings = load(cfg, env={"TOKENTALLY_DATABASE_URL": db_url})
    httpserver.expect_request("/hook/PATHTOKEN42").respond_with_data("gone", status=404)
    engine = db.make_engine(db_url)
    caplog.set_level(logging.INFO)
    try:
        with engine.begin() as conn:
            alerts.raise_alert(conn, settings, kind="budget.account", scope="account", scope_id="u42",
                               period="2026-11-23",
                               payload={"message": "u42 spent $0.0612 of $0.05 today", "account_id": "u42"})
        stats = outbox.deliver_pending(engine, settings)
        fallback_stats = outbox.deliver_pending(engine, settings)  # the delivery.failed message
        with engine.connect() as conn:
            failed_alert = conn.execute(select(Alert).where(Alert.kind == "delivery.failed")).one()
            notes = conn.execute(select(Notification).order_by(Notification.id)).all()
    finally:
        engine.dispose()
    assert stats.failed == 1 and fallback_stats.sent == 1  # the webhook failed; the fallback heard of it
    assert len(httpserver.log) == 1, notes[0].last_error  # the target was really tried, with its secrets

    shown = redact.target(target)
    assert shown.startswith(f"http://***@127.0.0.1:{httpserver.port}/…?token=***&v=*** (#")
    assert failed_alert.scope_id == f"webhook:{shown}"
    assert_no_secret(failed_alert.key, "the alert key")
    raised = [r for r in caplog.records if r.getMessage() == "alert raised"]
    assert len(raised) == 2  # budget.account, then delivery.failed
    for record in caplog.records:
        if record.name == "werkzeug":  # the far end's own request log
            continue
        assert_no_secret(str(vars(record)), f"log record {record.getMessage()!r}")

    webhook_row, fallback = notes
    assert webhook_row.target == target  # the outbox still knows where to send
    assert (fallback.kind, fallback.channel, fallback.status) == ("delivery.failed", "file", "sent")
    assert_no_secret(fallback.subject, "the fallback subject")
    assert_no_secret(fallback.body_text, "the fallback body")
    assert shown in fallback.subject and shown in fallback.body_text
    assert_no_secret(Path(fallback.external_id).read_text(encoding="utf-8"), "the fallback file")

    for fmt in ("json", "table", "csv"):
        listed = cli("notifications", "list", "--format", fmt, config=cfg)
        assert listed.exit_code == 0, listed.output
        assert_no_secret(listed.stdout, f"notifications list --format {fmt}")
    rows = json.loads(cli("notifications", "list", "--format", "json", config=cfg).stdout)
    assert {r["target"] for r in rows} == {shown, "delivery-failed"}
    for fmt in ("json", "table"):
        listed = cli("alerts", "list", "--format", fmt, config=cfg)
        assert listed.exit_code == 0, listed.output
        assert_no_secret(listed.stdout, f"alerts list --format {fmt}")


def test_two_targets_on_one_host_stay_apart_and_each_reads_the_same_every_time() -> None:
    one = "https://hooks.example/hook/AAAA1111?token=x"
    two = "https://hooks.example/hook/BBBB2222?token=x"
    assert redact.target(one) != redact.target(two)
    assert redact.target(one) == redact.target(one)
    assert redact.target("admins@example.com") == "admins@example.com"
    assert redact.target("#llm-costs") == "#llm-costs"
    assert redact.target("https://hooks.example/") == "https://hooks.example/"  # nothing to hide, no hash




def test_notify_test_names_a_target_without_its_secrets(cli, tmp_path, httpserver, quiet_receiver) -> None:
    target = hostile_target(httpserver)
    cfg = tmp_path / "cli.toml"
    cfg.write_text('[channels.webhook]\ntimeout_seconds = 5\n', encoding="utf-8")
    httpserver.expect_request("/hook/PATHTOKEN42").respond_with_data("gone", status=404)
    result = cli("notify", "test", "webhook", target, config=cfg)
    assert result.exit_code == 1
    assert "HTTP 404" in result.output
    assert_no_secret(result.output, "notify test's error")
    httpserver.clear()
    httpserver.expect_request("/hook/PATHTOKEN42").respond_with_data("ok")
    sent = cli("notify", "test", "webhook", target, "--format", "json", config=cfg)
    assert sent.exit_code == 0, sent.output
    assert_no_secret(sent.stdout, "notify test's output")
    body = json.loads(httpserver.log[-1][0].get_data())
    assert_no_secret(body["subject"] + body["text"], "the test message")
