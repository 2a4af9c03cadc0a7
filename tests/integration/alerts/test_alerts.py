"""Alert state and the messages it enqueues, on SQLite and PostgreSQL, with frozen time."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from tests.helpers import run_together
from worker.alerts import state as alerts
from worker import db
from worker.models import Alert, Notification
from worker.settings import SettingsError

ROUTES = """
[alerts]
reminder_after = "2h"

[[routes]]
kinds = ["budget.*"]
to = ["file:admins"]

[[routes]]
kinds = ["budget.*", "job.failed"]
min_severity = "critical"
to = ["file:oncall", "file:admins"]
"""


def raise_budget(engine, settings, severity: str = "warning", account: str = "u42", **payload) -> str | None:
    with engine.begin() as conn:
        return alerts.raise_alert(conn, settings, kind="budget.account", scope="account", scope_id=account,
                                  period="2026-11-23", severity=severity,
                                  payload={"amount_usd": Decimal("0.0612"), "threshold_usd": Decimal("0.05"),
                                           **payload})


def outbox(engine) -> list[Notification]:
    with engine.connect() as conn:
        return list(conn.execute(select(Notification).order_by(Notification.id)).all())


def the_alert(engine) -> Alert:
    with engine.connect() as conn:
        return conn.execute(select(Alert)).one()


@freeze_time("2026-11-23T10:00:00Z")
def test_the_same_condition_raised_again_sends_nothing_more(engine, make_settings) -> None:
    settings = make_settings(ROUTES)
    assert raise_budget(engine, settings) == "new"
    assert raise_budget(engine, settings) is None
    assert raise_budget(engine, settings, amount_usd=Decimal("0.07")) is None
    alert = the_alert(engine)
    assert (alert.state, alert.severity, alert.times_seen) == ("open", "warning", 3)
    assert alert.payload["amount_usd"] == "0.07"  # the latest figures
    [message] = outbox(engine)
    assert (message.channel, message.target, message.status) == ("file", "admins", "pending")
    assert message.kind == "budget.account" and "u42" in message.subject


def test_a_higher_severity_escalates_and_a_lower_one_does_not(engine, make_settings) -> None:
    settings = make_settings(ROUTES)
    with freeze_time("2026-11-23T10:00:00Z"):
        raise_budget(engine, settings, "warning")
    with freeze_time("2026-11-23T11:00:00Z"):
        assert raise_budget(engine, settings, "critical") == "escalated"
        assert raise_budget(engine, settings, "warning") is None
        assert raise_budget(engine, settings, "critical") is None
    assert the_alert(engine).severity == "critical"
    sent = [(m.target, m.key) for m in outbox(engine)]
    alert_id = the_alert(engine).id
    # critical also goes to on-call; admins get it once although two routes name them
    assert sent == [("admins", f"alert-{alert_id}-warning"), ("admins", f"alert-{alert_id}-critical"),
                    ("oncall", f"alert-{alert_id}-critical")]


def test_a_reminder_goes_out_after_the_cooldown_while_open_and_unacknowledged(engine, make_settings) -> None:
    settings = make_settings(ROUTES)
    with freeze_time("2026-11-23T10:00:00Z"):
        raise_budget(engine, settings)
    with freeze_time("2026-11-23T11:59:00Z"), engine.begin() as conn:
        assert alerts.send_reminders(conn, settings) == 0
    with freeze_time("2026-11-23T12:00:00Z"), engine.begin() as conn:
        assert alerts.send_reminders(conn, settings) == 1
        assert alerts.send_reminders(conn, settings) == 0  # the next one is two hours on
    with freeze_time("2026-11-23T14:30:00Z"):
        with engine.begin() as conn:
            assert alerts.acknowledge_alert(conn, the_alert(engine).id)
            assert alerts.send_reminders(conn, settings) == 0
    assert [m.key.split("-")[2] for m in outbox(engine)] == ["warning", "reminder"]


def test_resolving_sends_a_resolved_message_and_a_return_reopens(engine, make_settings) -> None:
    settings = make_settings(ROUTES)
    with freeze_time("2026-11-23T10:00:00Z"):
        raise_budget(engine, settings)
    with freeze_time("2026-11-23T10:30:00Z"), engine.begin() as conn:
        alert_id = conn.execute(select(Alert.id)).scalar_one()
        assert alerts.resolve_alert(conn, settings, alert_id)
        assert not alerts.resolve_alert(conn, settings, alert_id)
    assert the_alert(engine).state == "resolved"
    with freeze_time("2026-11-23T11:00:00Z"):
        assert raise_budget(engine, settings) == "new"
    alert = the_alert(engine)
    assert alert.state == "open" and alert.resolved_at is None
    assert [m.key.split("-")[2] for m in outbox(engine)] == ["warning", "resolved", "warning"]
    assert len({(m.target, m.key) for m in outbox(engine)}) == 3  # the reopening is a message of its own


def test_without_routes_everything_goes_to_the_file_channel(engine, make_settings) -> None:
    settings = make_settings()
    with engine.begin() as conn:
        alerts.raise_alert(conn, settings, kind="job.failed", scope="job", scope_id="ingest",
                           severity="critical", payload={"error": "boom"})
    [message] = outbox(engine)
    assert (message.channel, message.target) == ("file", "")


def test_routes_name_their_mistakes(make_settings) -> None:
    with pytest.raises(SettingsError, match=r"routes\[0\]\.to: channel 'slack' is not configured"):
        make_settings('[[routes]]\nkinds = ["*"]\nto = ["slack:#llm-costs"]\n')
    with pytest.raises(SettingsError, match=r"routes\[0\]\.min_severity"):
        make_settings('[[routes]]\nkinds = ["*"]\nmin_severity = "loud"\nto = ["file:x"]\n')
    with pytest.raises(SettingsError, match=r"routes\[0\]\.to: expected \"channel:target\""):
        make_settings('[[routes]]\nkinds = ["*"]\nto = ["admins"]\n')
    with pytest.raises(SettingsError, match=r"alerts\.reminder_after"):
        make_settings('[alerts]\nreminder_after = "soon"\n')


@freeze_time("2026-11-23T10:00:00Z")
def test_two_workers_raising_the_same_condition_at_once_make_one_alert_and_one_message(make_settings,
                                                                                         db_url) -> None:
    settings = make_settings(ROUTES)
    engines = [db.make_engine(db_url) for _ in range(4)]
    try:
        results = run_together([lambda e=e: raise_budget(e, settings) for e in engines])
        assert results.count("new") == 1 and results.count(None) == 3
        assert the_alert(engines[0]).times_seen == 4
        assert len(outbox(engines[0])) == 1
    finally:
        for e in engines:
            e.dispose()


def test_a_reminder_is_enqueued_once_per_cooldown_however_often_asked(engine, make_settings) -> None:
    settings = make_settings(ROUTES)
    with freeze_time("2026-11-23T10:00:00Z"):
        raise_budget(engine, settings)
    with freeze_time("2026-11-23T12:00:00Z") as frozen:
        for _ in range(3):
            with engine.begin() as conn:
                alerts.send_reminders(conn, settings)
            frozen.tick(timedelta(minutes=1))
    assert len(outbox(engine)) == 2
