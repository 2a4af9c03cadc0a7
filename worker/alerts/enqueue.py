"""Enqueueing: an alert's routes become outbox rows holding facts, never rendered text.

Each routed target gets one ``notifications`` row with the template name
(``alert``) and the facts it is worded from (``context``: the alert as it is now and
why it is sent), written in the transaction that changed the alert. Nothing is
rendered here: ``reports.outbox`` renders at send time, so a template that fails
can never roll back an alert, a blocked window or a kill switch. Until it is
rendered the row's ``subject`` is the alert's key (``kind|scope|scope_id|period``); a
``delivery.failed`` alert's scope id is the redacted target (:func:`target_scope`).

Report messages, rendered by the reports code, go in through :func:`enqueue`.
The row's key makes enqueueing idempotent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from worker import redact
from worker.models import Notification
from worker.settings import Settings
from worker.settings.routing import targets_for
from worker.sql import insert_ignore

ALERT_TEMPLATE = "alert"  # templates/email/alert.* and templates/slack/alert.json.j2


def target_scope(channel: str, target: str) -> str:
    """The scope id of an alert about a delivery target (``delivery.failed``): the target as
    ``worker.redact.target`` shows it, so no password or token lands in an alert key."""
    return f"{channel}:{redact.target(target)}"


def enqueue_alert(conn: Connection, settings: Settings, alert: Any, reason: str, now: datetime, *,
                  reopened: bool = False) -> int:
    """One outbox row per routed target; the key makes it idempotent. Returns rows added.

    A new alert and an escalation are keyed by alert and severity (one message each,
    whatever happens); a reminder, a resolution and a reopening also by their time."""
    severity = alert.severity
    targets = targets_for(settings.routes, alert.kind, severity)
    if alert.kind == "delivery.failed":  # to the fallback, never back to the target that failed
        targets = [t for t in (*settings.alerts.fallback, *targets) if target_scope(*t) != alert.scope_id]
        targets = list(dict.fromkeys(targets))
    if reason in ("new", "escalated"):
        key = f"alert-{alert.id}-{severity}" + (f"-{now:%Y%m%dT%H%M%S}" if reopened else "")
    else:
        key = f"alert-{alert.id}-{reason}-{now:%Y%m%dT%H%M%S}"
    context = jsonable({"alert": alert_facts(alert), "reason": reason})
    added = 0
    for channel, target in targets:
        added += _insert(conn, now, key=key, alert_id=alert.id, kind=alert.kind, channel=channel, target=target,
                         subject=alert.key[:500], body_text="", data=context, template=ALERT_TEMPLATE,
                         context=context)
    return added


def enqueue(conn: Connection, message: Any, channel: str, target: str, now: datetime,
            alert_id: int | None = None) -> int:
    """Put one rendered message (a report's) in the outbox; nothing if the same key is already there."""
    return _insert(conn, now, key=message.key, alert_id=alert_id, kind=message.kind, channel=channel,
                   target=target, subject=message.subject[:500], body_text=message.text, body_html=message.html,
                   slack=message.slack, data=jsonable(message.data),
                   inline=getattr(message, "inline", None) or None)


def _insert(conn: Connection, now: datetime, **values: Any) -> int:
    result = conn.execute(insert_ignore(conn.dialect.name, Notification, ["channel", "target", "key"]).values(
        status="pending", attempts=0, created_at=now, next_attempt_at=now, **values).returning(Notification.id))
    return len(result.all())  # (psycopg's rowcount is not always set for a large INSERT ... ON CONFLICT)


def alert_facts(alert: Any) -> dict[str, Any]:
    """What a message about ``alert`` is worded from."""
    return {"id": alert.id, "key": alert.key, "kind": alert.kind, "scope": alert.scope, "scope_id": alert.scope_id,
            "period": alert.period, "severity": alert.severity, "state": alert.state,
            "first_seen": alert.first_seen, "last_seen": alert.last_seen, "times_seen": alert.times_seen,
            "payload": dict(alert.payload or {})}


def jsonable(value: Any) -> Any:
    """Decimals as strings and datetimes as ISO text, for a JSON column."""
    return orjson.loads(orjson.dumps(value, default=str))
