"""Alert state: one alert per condition and period, messages only when they say something new.

Raising a condition that is already open in its period updates ``last_seen`` and
sends nothing; a higher severity in the same period escalates and sends again; a
reminder goes out after ``alerts.reminder_after`` while it is open and not
acknowledged; clearing it sends a resolved message (``alerts.send_resolved``).
Every message is enqueued in the outbox (``notifications``) in the same
transaction that changed the alert, so an alert and its messages commit together.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from worker import clock
from worker.sql import insert_ignore, locked
from worker.models import SEVERITIES, Alert, Notification
from worker.settings.routing import targets_for
from worker.settings import Settings

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
    payload = _jsonable(payload or {})  # Decimal amounts kept exactly, as strings
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


def enqueue_alert(conn: Connection, settings: Settings, alert: Any, reason: str, now: datetime, *,
                  reopened: bool = False) -> int:
    """One outbox row per routed target; the key makes it idempotent. Returns rows added.

    A new alert and an escalation are keyed by alert and severity (one message each,
    whatever happens); a reminder, a resolution and a reopening also by their time."""
    from reports.messages import make_message

    severity = alert.severity
    targets = targets_for(settings.routes, alert.kind, severity)
    if alert.kind == "delivery.failed":  # to the fallback, never back to the target that failed
        targets = [t for t in (*settings.alerts.fallback, *targets) if f"{t[0]}:{t[1]}" != alert.scope_id]
        targets = list(dict.fromkeys(targets))
    if reason in ("new", "escalated"):
        key = f"alert-{alert.id}-{severity}" + (f"-{now:%Y%m%dT%H%M%S}" if reopened else "")
    else:
        key = f"alert-{alert.id}-{reason}-{now:%Y%m%dT%H%M%S}"
    context = {"alert": _alert_dict(alert), "reason": reason}
    added = 0
    for channel, target in targets:
        message = make_message("alert", {**context, "channel": channel, "target": target},
                               kind=alert.kind, key=key, data=context)
        added += enqueue(conn, message, channel, target, now, alert_id=alert.id)
    return added


def enqueue(conn: Connection, message: Any, channel: str, target: str, now: datetime,
            alert_id: int | None = None) -> int:
    """Put one rendered message in the outbox; nothing if the same key is already there."""
    result = conn.execute(insert_ignore(conn.dialect.name, Notification, ["channel", "target", "key"]).values(
        key=message.key, alert_id=alert_id, kind=message.kind, channel=channel, target=target,
        subject=message.subject[:500], body_text=message.text, body_html=message.html, slack=message.slack,
        data=_jsonable(message.data), inline=getattr(message, "inline", None) or None, status="pending",
        attempts=0, created_at=now, next_attempt_at=now).returning(Notification.id))
    return len(result.all())  # (psycopg's rowcount is not always set for a large INSERT ... ON CONFLICT)


def _alert_dict(alert: Any) -> dict[str, Any]:
    return {"id": alert.id, "kind": alert.kind, "scope": alert.scope, "scope_id": alert.scope_id,
            "period": alert.period, "severity": alert.severity, "state": alert.state,
            "first_seen": alert.first_seen, "last_seen": alert.last_seen, "times_seen": alert.times_seen,
            "payload": dict(alert.payload or {})}


def _jsonable(value: Any) -> Any:
    """Decimals as strings and datetimes as ISO text, for a JSON column."""
    import orjson

    return orjson.loads(orjson.dumps(value, default=str))


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)
