"""Alert state: one alert per condition and period, messages only when they say something new.

Raising a condition that is already open in its period updates ``last_seen`` and
sends nothing; a higher severity in the same period escalates and sends again; a
reminder goes out after ``alerts.reminder_after`` while it is open and not
acknowledged; clearing it sends a resolved message (``alerts.send_resolved``).
Every message is enqueued in the outbox (``notifications``, see
``worker.alerts.enqueue``) in the same transaction that changed the alert, so an
alert and its messages commit together; the messages hold facts and are rendered
when they are sent, so no template can roll back an alert.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, select, update

from worker import clock
from worker.alerts.enqueue import enqueue_alert, jsonable
from worker.models import SEVERITIES, Alert
from worker.settings import Settings
from worker.sql import insert_ignore, locked

logger = logging.getLogger(__name__)



def alert_key(kind: str, scope: str, scope_id: str, period: str) -> str:
    return f"{kind}|{scope}|{scope_id}|{period}"


def raise_alert(conn: Connection, settings: Settings, *, kind: str, scope: str, scope_id: str = "",
                period: str = "", severity: str = "warning", payload: dict[str, Any] | None = None) -> str | None:
    """Record the condition; returns why a message was enqueued (new, escalated) or None."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    now = clock.now()
    key = alert_key(kind, scope, scope_id, period)
    payload = jsonable(payload or {})  # Decimal amounts kept exactly, as strings
    conn.execute(insert_ignore(conn.dialect.name, Alert, ["key"]).values(
        key=key, kind=kind, scope=scope, scope_id=scope_id, period=period, severity=severity, state="open",
        first_seen=now, last_seen=now, times_seen=0, payload=payload))
    # replicas raising the same condition take turns
    alert = conn.execute(locked(select(Alert).where(Alert.key == key), conn.dialect.name)).one()
    reason, reopened = None, False
    values: dict[str, Any] = {"last_seen": now, "times_seen": alert.times_seen + 1, "payload": payload}
    if alert.times_seen == 0:
        reason = "new"
    elif alert.state == "resolved":
        reason, reopened = "new", True  # back again in the same period: a new message
        values.update(state="open", resolved_at=None, acknowledged_at=None, severity=severity)
    elif _rank(severity) > _rank(alert.severity):
        reason = "escalated"
        values.update(severity=severity, state="open")  # an acknowledged alert that got worse is open again
    if reason is not None:
        values.update(notified_at=now, notified_severity=values.get("severity", severity))
    conn.execute(update(Alert).where(Alert.id == alert.id).values(**values))
    if reason is not None:
        current = conn.execute(select(Alert).where(Alert.id == alert.id)).one()
        enqueued = enqueue_alert(conn, settings, current, reason, now, reopened=reopened)
        logger.info("alert raised", extra={"action": "alert_raised", "alert": key, "severity": severity,
                                           "reason": reason, "messages": enqueued})
    return reason


def resolve_alert(conn: Connection, settings: Settings, alert_id: int) -> bool:
    """Close an alert (the condition cleared, or an operator closed it); False if it was not open."""
    now = clock.now()
    changed = conn.execute(update(Alert).where(Alert.id == alert_id, Alert.state != "resolved")
                           .values(state="resolved", resolved_at=now)).rowcount
    if changed != 1:
        return False
    alert = conn.execute(select(Alert).where(Alert.id == alert_id)).one()
    if settings.alerts.send_resolved and alert.notified_at is not None:
        enqueue_alert(conn, settings, alert, "resolved", now)
    return True


def acknowledge_alert(conn: Connection, alert_id: int) -> bool:
    """An admin has seen it: no more reminders (an escalation still sends)."""
    return conn.execute(update(Alert).where(Alert.id == alert_id, Alert.state == "open")
                        .values(state="acknowledged", acknowledged_at=clock.now())).rowcount == 1


def send_reminders(conn: Connection, settings: Settings) -> int:
    """Enqueue a reminder for each open, unacknowledged alert not notified for ``reminder_after``."""
    now = clock.now()
    due = now - settings.alerts.reminder_after
    sent = 0
    for alert in conn.execute(select(Alert).where(Alert.state == "open", Alert.notified_at <= due)).all():
        # conditional update: of two replicas, one wins the reminder
        if conn.execute(update(Alert).where(Alert.id == alert.id, Alert.notified_at == alert.notified_at)
                        .values(notified_at=now)).rowcount == 1:
            enqueue_alert(conn, settings, alert, "reminder", now)
            sent += 1
    return sent


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)
