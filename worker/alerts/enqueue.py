"""Enqueueing: an alert's routes become outbox rows holding facts, never rendered text.

Each routed target gets one ``notifications`` row with the template name
(``alert``) and the facts it is worded from (``context``: the alert as it is now and
why it is sent), written in the transaction that changed the alert. Nothing is
rendered here: ``reports.outbox`` renders at send time, so a template that fails
can never roll back an alert, a blocked window or a kill switch. Until it is
rendered the row's ``subject`` is the alert's key (``kind|scope|scope_id|period``); a
``delivery.failed`` alert's scope id is the redacted target (:func:`target_scope`).

When one run has more than ``alerts.group_after`` alerts of one kind (and reason) for
a target, that target gets one grouped row instead (:func:`enqueue_alerts`; the facts
in ``worker.alerts.facts``); the per-alert rows are not written for it.

Report messages, rendered by the reports code, go in through :func:`enqueue`.
The row's key makes enqueueing idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from worker.alerts.facts import alert_facts, group_facts, jsonable
from worker import redact
from worker.models import Notification
from worker.settings import Settings
from worker.settings.routing import targets_for
from worker.sql import insert_ignore

ALERT_TEMPLATE = "alert"  # templates/email/alert.* and templates/slack/alert.json.j2
GROUP_TEMPLATE = "alert_group"  # templates/email/alert_group.* and templates/slack/alert_group.json.j2


@dataclass(frozen=True)
class Notice:
    """An alert that has something to say: why (new, escalated, reminder, resolved)."""

    alert: Any
    reason: str
    reopened: bool = False


def target_scope(channel: str, target: str) -> str:
    """The scope id of an alert about a delivery target (``delivery.failed``): the target as
    ``worker.redact.target`` shows it, so no password or token lands in an alert key."""
    return f"{channel}:{redact.target(target)}"


def enqueue_alert(conn: Connection, settings: Settings, alert: Any, reason: str, now: datetime, *,
                  reopened: bool = False) -> int:
    """One outbox row per routed target; the key makes it idempotent. Returns rows added."""
    return enqueue_alerts(conn, settings, [Notice(alert, reason, reopened)], now)


def enqueue_alerts(conn: Connection, settings: Settings, notices: list[Notice], now: datetime) -> int:
    """The messages of one run's alerts: per target, alert kind and reason, one row per alert, or
    ONE grouped row (``alert_group``, its facts from :func:`worker.alerts.facts.group_facts`) when that target gets more
    than ``alerts.group_after`` of them. Written in batches; returns rows added.

    A new alert and an escalation are keyed by alert and severity (one message each,
    whatever happens); a reminder, a resolution and a reopening also by their time; a
    group by its kind, reason, first alert and time."""
    buckets: dict[tuple[str, str, str, str], list[Notice]] = {}
    for notice in notices:
        for channel, target in _targets(settings, notice.alert):
            buckets.setdefault((channel, target, notice.alert.kind, notice.reason), []).append(notice)
    rows: list[dict[str, Any]] = []
    contexts: dict[int, dict[str, Any]] = {}
    for (channel, target, kind, reason), items in buckets.items():
        if len(items) > settings.alerts.group_after:
            context = jsonable({"group": group_facts(kind, reason, [n.alert for n in items], now),
                                "reason": reason})
            first = min(n.alert.id for n in items)
            # (the context holds every alert of the group; data only says what the row is)
            rows.append(dict(key=f"alert-group-{kind}-{reason}-{first}-{len(items)}-{now:%Y%m%dT%H%M%S}",
                             alert_id=None, kind=kind, channel=channel, target=target,
                             subject=f"{kind} x{len(items)} ({reason})"[:500], body_text="",
                             data={"group": {"kind": kind, "reason": reason, "count": len(items)}},
                             template=GROUP_TEMPLATE, context=context))
            continue
        for n in items:
            context = contexts.get(id(n))
            if context is None:
                context = contexts[id(n)] = jsonable({"alert": alert_facts(n.alert), "reason": n.reason})
            rows.append(dict(key=_key(n, now), alert_id=n.alert.id, kind=kind, channel=channel, target=target,
                             subject=n.alert.key[:500], body_text="", data=context, template=ALERT_TEMPLATE,
                             context=context))
    return _insert_many(conn, now, rows)


def _targets(settings: Settings, alert: Any) -> list[tuple[str, str]]:
    targets = targets_for(settings.routes, alert.kind, alert.severity)
    if alert.kind == "delivery.failed":  # to the fallback, never back to the target that failed
        targets = [t for t in (*settings.alerts.fallback, *targets) if target_scope(*t) != alert.scope_id]
        targets = list(dict.fromkeys(targets))
    return targets


def _key(n: Notice, now: datetime) -> str:
    if n.reason in ("new", "escalated"):
        return f"alert-{n.alert.id}-{n.alert.severity}" + (f"-{now:%Y%m%dT%H%M%S}" if n.reopened else "")
    return f"alert-{n.alert.id}-{n.reason}-{now:%Y%m%dT%H%M%S}"


def _insert_many(conn: Connection, now: datetime, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    stmt = insert_ignore(conn.dialect.name, Notification, ["channel", "target", "key"]).returning(Notification.id)
    common = dict(status="pending", attempts=0, created_at=now, next_attempt_at=now, body_html=None, slack=None,
                  inline=None)
    # executemany with RETURNING: multi-row INSERTs ("insertmanyvalues"); the rows returned are the ones added
    return len(conn.execute(stmt, [{**common, **r} for r in rows]).all())


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
