"""Alert storms: more than ``alerts.group_after`` alerts of one kind in one run become ONE message
per target (the count, the top accounts by cost, a CSV of all of them), on SQLite and PostgreSQL,
sent through a real SMTP server, a real HTTP server (Slack's Web API, a webhook) and the file channel."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from werkzeug import Request, Response

from reports import outbox
from tests.helpers import run_together
from worker.alerts import state as alerts
from worker.models import Alert, Notification
from worker.settings import SettingsError

ROUTES = """
[alerts]
reminder_after = "2h"
{group_after}

[[routes]]
kinds = ["budget.*"]
to = ["email:admins@example.com", "slack:#llm-costs", "webhook:{hook}", "file:admins"]
"""
TARGETS = 4


@pytest.fixture
def settings_for(channel_settings, httpserver):
    def make(group_after: str | None = None):
        return channel_settings(ROUTES.format(hook=httpserver.url_for('/hook'),
                                              group_after=f"group_after = {group_after}" if group_after is not None else ""),
                                'timezone = "Europe/Berlin"')

    return make


def slack_ok(request: Request) -> Response:
    return Response(json.dumps({"ok": True, "channel": "C1", "ts": "1763900000.000100"}),
                    content_type="application/json")


def account(i: int) -> str:
    return "=HYPERLINK(\"http://x\")" if i == 7 else f"u{i:02d}"  # one account id a spreadsheet would run


def specs(n: int) -> list[alerts.AlertSpec]:
    """n accounts over their daily budget; account i spent $i."""
    return [alerts.AlertSpec(kind="budget.account", scope="account", scope_id=account(i),
                             period="day 2026-11-23 100%", severity="critical",
                             payload={"account_id": account(i), "used_cost_usd": Decimal(i),
                                      "limit_cost_usd": Decimal("0.50"), "message": f"{account(i)} is over"})
            for i in range(1, n + 1)]


def storm(engine, settings, n: int) -> list[str | None]:
    with engine.begin() as conn:
        return alerts.raise_alerts(conn, settings, specs(n))


def notifications(engine) -> list[Notification]:
    with engine.connect() as conn:
        return list(conn.execute(select(Notification).order_by(Notification.id)))


def alert_rows(engine) -> list[Alert]:
    with engine.connect() as conn:
        return list(conn.execute(select(Alert).order_by(Alert.id)))


def serve(httpserver) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_handler(slack_ok)
    httpserver.expect_request("/hook").respond_with_data("ok")


@freeze_time("2026-11-23T10:00:00Z")
def test_a_storm_of_25_is_one_message_per_route_with_a_csv_of_all_25(engine, settings_for, mailbox,
                                                                     httpserver, tmp_path) -> None:
    box, _ = mailbox
    serve(httpserver)
    settings = settings_for()
    assert storm(engine, settings, 25) == ["new"] * 25
    assert len(alert_rows(engine)) == 25  # each alert keeps its row (dedup, alerts list, ack)
    rows = notifications(engine)
    assert sorted(r.channel for r in rows) == ["email", "file", "slack", "webhook"]
    assert all(r.template == "alert_group" and r.alert_id is None for r in rows)

    stats = outbox.deliver_pending(engine, settings)
    assert (stats.sent, stats.failed) == (TARGETS, 0)

    [mail] = box.mails()
    assert "25 budget.account alerts" in mail["Subject"] and "CRITICAL" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    top = [line.strip() for line in text.splitlines() if re.match(r"\d+\. ", line.strip())]
    assert len(top) == 10 and top[0].startswith("1. u25 is over") and top[9].startswith("10. u16 is over")
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "budget.account-new-25.csv"
    table = list(csv.DictReader(io.StringIO(attachment.get_content().decode()
                                            if isinstance(attachment.get_content(), bytes)
                                            else attachment.get_content())))
    assert len(table) == 25
    assert {r["scope_id"] for r in table} == {account(i) for i in range(1, 26)} - {account(7)} | {
        "'" + account(7)}  # formula-neutralised
    assert table[0]["used_cost_usd"] == "25"

    [hook] = [r for r, _ in httpserver.log if r.path == "/hook"]
    group = json.loads(hook.data)["data"]["group"]
    assert group["count"] == 25 and len(group["rows"]) == 25  # the webhook carries all of them
    [post] = [r for r, _ in httpserver.log if r.path.endswith("chat.postMessage")]
    blocks = json.dumps(json.loads(post.form["blocks"]) if "blocks" in post.form else post.get_json())
    assert "and 15 more" in blocks and "u25 is over" in blocks
    [csv_file] = [p for p in (tmp_path / "outbox" / "admins").iterdir() if p.suffix == ".csv"]
    assert len(csv_file.read_text().splitlines()) == 26  # the header and 25 alerts


@freeze_time("2026-11-23T10:00:00Z")
def test_19_alerts_are_19_messages_per_route(engine, settings_for) -> None:
    settings = settings_for()
    storm(engine, settings, 19)
    rows = notifications(engine)
    assert len(rows) == 19 * TARGETS and all(r.template == "alert" for r in rows)


@freeze_time("2026-11-23T10:00:00Z")
def test_group_after_is_a_validated_setting(engine, settings_for) -> None:
    assert settings_for().alerts.group_after == 20
    for bad in ("0", "-1", '"20"'):
        with pytest.raises(SettingsError, match="alerts.group_after"):
            settings_for(bad)
    small = settings_for("3")
    storm(engine, small, 4)
    assert len(notifications(engine)) == TARGETS  # 4 > 3: one grouped message per target
    storm(engine, small, 4)
    assert len(notifications(engine)) == TARGETS  # the same alerts again: nothing new to say


def test_reminders_and_resolves_are_grouped_the_same_way(engine, settings_for, httpserver) -> None:
    settings = settings_for()
    with freeze_time("2026-11-23T10:00:00Z"):
        storm(engine, settings, 25)
    with freeze_time("2026-11-23T12:30:00Z"):
        with engine.begin() as conn:
            assert alerts.send_reminders(conn, settings) == 25
        reminders = [r for r in notifications(engine) if "reminder" in r.key]
        assert len(reminders) == TARGETS and all(r.context["group"]["count"] == 25 for r in reminders)
        with engine.begin() as conn:
            assert alerts.resolve_alerts(conn, settings, [a.id for a in alert_rows(engine)]) == 25
        resolved = [r for r in notifications(engine) if "resolved" in r.key]
        assert len(resolved) == TARGETS and all(r.context["group"]["reason"] == "resolved" for r in resolved)
        assert {a.state for a in alert_rows(engine)} == {"resolved"}
        serve(httpserver)
        stats = outbox.deliver_pending(engine, settings)
        assert (stats.sent, stats.failed) == (3 * TARGETS, 0)


@freeze_time("2026-11-23T10:00:00Z")
def test_two_replicas_raising_the_same_storm_raise_each_alert_once(engine, settings_for) -> None:
    settings = settings_for()
    first, second = run_together([lambda: storm(engine, settings, 25), lambda: storm(engine, settings, 25)])
    assert sorted(r for r in first + second if r) == ["new"] * 25  # each alert raised by one of them
    assert len(alert_rows(engine)) == 25
    per_target: dict[str, int] = {}
    for r in notifications(engine):
        count = r.context["group"]["count"] if r.template == "alert_group" else 1
        per_target[r.channel] = per_target.get(r.channel, 0) + count
    assert per_target == {"email": 25, "slack": 25, "webhook": 25, "file": 25}  # each alert in one message
