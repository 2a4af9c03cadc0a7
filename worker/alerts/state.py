"""Alert state: one alert per condition and period, messages only when they say something new.

Raising a condition that is already open in its period updates ``last_seen`` and
sends nothing; a higher severity in the same period escalates and sends again; a
reminder goes out after ``alerts.reminder_after`` while it is open and not
acknowledged; clearing it sends a resolved message (``alerts.send_resolved``).
Every message is enqueued in the outbox (``notifications``, see
``worker.alerts.enqueue``) in the same transaction that changed the alert, so an
alert and its messages commit together; the messages hold facts and are rendered
when they are sent, so no template can roll back an alert.

Each operation also comes in bulk (:func:`raise_alerts`, :func:`resolve_alerts`,
:func:`send_reminders`): one run's alerts are written in batches of rows, with no
round trip per alert, and their messages enqueued together, so that more than
``alerts.group_after`` of one kind become one grouped message per target. Each alert
keeps its own row either way (dedup, the console, ``alerts list``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, select, update

from worker import clock
from worker.alerts.enqueue import Notice, enqueue_alerts, jsonable
from worker.models import SEVERITIES, Alert
from worker.settings import Settings
from worker.sql import insert_rows_ignore, locked

logger = logging.getLogger(__name__)

ID_CHUNK = 1000  # ids per UPDATE … WHERE id IN (…)

def alert_key(kind: str, scope: str, scope_id: str, period: str) -> str:
    return f"{kind}|{scope}|{scope_id}|{period}"


@dataclass(frozen=True)
class AlertSpec:
    """A condition to raise: what :func:`raise_alert` takes, for :func:`raise_alerts`."""

    kind: str
    scope: str
    scope_id: str = ""
    period: str = ""
    severity: str = "warning"
    payload: dict[str, Any] | None = None


def raise_alert(conn: Connection, settings: Settings, *, kind: str, scope: str, scope_id: str = "",
                period: str = "", severity: str = "warning", payload: dict[str, Any] | None = None) -> str | None:
    """Record the condition; returns why a message was enqueued (new, escalated) or None."""
    return raise_alerts(conn, settings, [AlertSpec(kind, scope, scope_id, period, severity, payload)])[0]


def raise_alerts(conn: Connection, settings: Settings, specs: list[AlertSpec]) -> list[str | None]:
    """Raise many conditions at once (one run's): why a message was enqueued for each, or None.

    The conditions not raised before are inserted in batches of rows (``INSERT … ON CONFLICT
    DO NOTHING RETURNING``: of two replicas, one inserts each); the others take the
    one-by-one path (escalation, reopening). Their messages are enqueued together, so a
    storm of one kind becomes one grouped message per target (``worker.alerts.enqueue``)."""
    for spec in specs:
        if spec.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {spec.severity!r}")
    now = clock.now()
    keyed = [(alert_key(s.kind, s.scope, s.scope_id, s.period), s, jsonable(s.payload or {})) for s in specs]
    inserted = _insert_new(conn, keyed, now)
    notices: list[Notice] = []
    reasons: list[str | None] = []
    for key, spec, payload in keyed:
        alert_id = inserted.pop(key, None)
        if alert_id is not None:
            notices.append(Notice(_new_alert(alert_id, key, spec, payload, now), "new"))
            reasons.append("new")
            continue
        notice = _raise_again(conn, key, spec, payload, now)
        if notice is not None:
            notices.append(notice)
        reasons.append(notice.reason if notice else None)
    enqueued = enqueue_alerts(conn, settings, notices, now)
    _log_raised(notices, enqueued, settings.alerts.group_after)
    return reasons


def _insert_new(conn: Connection, keyed: list[tuple[str, AlertSpec, dict[str, Any]]], now: Any) -> dict[str, int]:
    """key -> id of the alerts this call inserted (those raised for the first time)."""
    rows, seen = [], set()
    for key, s, payload in keyed:
        if key not in seen:
            seen.add(key)
            rows.append(dict(key=key, kind=s.kind, scope=s.scope, scope_id=s.scope_id, period=s.period,
                             severity=s.severity, state="open", first_seen=now, last_seen=now, times_seen=1,
                             notified_at=now, notified_severity=s.severity, payload=payload))
    inserted = insert_rows_ignore(conn, Alert, ["key"], rows, (Alert.id, Alert.key))
    return {key: alert_id for alert_id, key in inserted}


def _new_alert(alert_id: int, key: str, s: AlertSpec, payload: dict[str, Any], now: Any) -> SimpleNamespace:
    """The row just inserted, as a message is worded from it (without reading it back)."""
    return SimpleNamespace(id=alert_id, key=key, kind=s.kind, scope=s.scope, scope_id=s.scope_id, period=s.period,
                           severity=s.severity, state="open", first_seen=now, last_seen=now, times_seen=1,
                           payload=payload)


def _raise_again(conn: Connection, key: str, s: AlertSpec, payload: dict[str, Any], now: Any) -> Notice | None:
    """A condition already recorded: seen again, reopened or escalated."""
    # replicas raising the same condition take turns
    alert = conn.execute(locked(select(Alert).where(Alert.key == key), conn.dialect.name)).one()
    reason, reopened = None, False
    values: dict[str, Any] = {"last_seen": now, "times_seen": alert.times_seen + 1, "payload": payload}
    if alert.times_seen == 0:
        reason = "new"
    elif alert.state == "resolved":
        reason, reopened = "new", True  # back again in the same period: a new message
        values.update(state="open", resolved_at=None, acknowledged_at=None, severity=s.severity)
    elif _rank(s.severity) > _rank(alert.severity):
        reason = "escalated"
        values.update(severity=s.severity, state="open")  # an acknowledged alert that got worse is open again
    if reason is not None:
        values.update(notified_at=now, notified_severity=values.get("severity", s.severity))
    conn.execute(update(Alert).where(Alert.id == alert.id).values(**values))
    if reason is None:
        return None
    return Notice(conn.execute(select(Alert).where(Alert.id == alert.id)).one(), reason, reopened)


def _log_raised(notices: list[Notice], enqueued: int, group_after: int) -> None:
    """One line per alert, or one per kind in a storm."""
    kinds: dict[str, list[Notice]] = {}
    for n in notices:
        kinds.setdefault(n.alert.kind, []).append(n)
    for kind, items in kinds.items():
        if len(items) > group_after:
            logger.info("alerts raised", extra={"action": "alerts_raised", "kind": kind, "count": len(items),
                                                "messages": enqueued})
            continue
        for n in items:
            logger.info("alert raised", extra={"action": "alert_raised", "alert": n.alert.key,
                                               "severity": n.alert.severity, "reason": n.reason})


def resolve_alert(conn: Connection, settings: Settings, alert_id: int) -> bool:
    """Close an alert (the condition cleared, or an operator closed it); False if it was not open."""
    return resolve_alerts(conn, settings, [alert_id]) == 1


def resolve_alerts(conn: Connection, settings: Settings, alert_ids: list[int]) -> int:
    """Close these alerts (one run's): how many were open. Their resolved messages are enqueued
    together (grouped in a storm). Conditional on the state: of two replicas, one resolves each."""
    now = clock.now()
    resolved, notices = 0, []
    for start in range(0, len(alert_ids), ID_CHUNK):
        chunk = alert_ids[start:start + ID_CHUNK]
        changed = [r[0] for r in conn.execute(update(Alert).where(Alert.id.in_(chunk), Alert.state != "resolved")
                                              .values(state="resolved", resolved_at=now).returning(Alert.id))]
        resolved += len(changed)
        if changed and settings.alerts.send_resolved:
            notices += [Notice(a, "resolved") for a in conn.execute(
                select(Alert).where(Alert.id.in_(changed), Alert.notified_at.is_not(None)).order_by(Alert.id))]
    enqueue_alerts(conn, settings, notices, now)
    return resolved


def acknowledge_alert(conn: Connection, alert_id: int) -> bool:
    """An admin has seen it: no more reminders (an escalation still sends)."""
    return conn.execute(update(Alert).where(Alert.id == alert_id, Alert.state == "open")
                        .values(state="acknowledged", acknowledged_at=clock.now())).rowcount == 1


def send_reminders(conn: Connection, settings: Settings) -> int:
    """Enqueue a reminder for each open, unacknowledged alert not notified for ``reminder_after``
    (grouped in a storm). Each is claimed with a conditional update of ``notified_at``, in
    batches: of two replicas, one wins each reminder."""
    now = clock.now()
    due = now - settings.alerts.reminder_after
    ids = list(conn.execute(select(Alert.id).where(Alert.state == "open", Alert.notified_at <= due)
                            .order_by(Alert.id)).scalars())
    notices = []
    for start in range(0, len(ids), ID_CHUNK):
        won = [r[0] for r in conn.execute(update(Alert).where(
            Alert.id.in_(ids[start:start + ID_CHUNK]), Alert.state == "open", Alert.notified_at <= due)
            .values(notified_at=now).returning(Alert.id))]
        if won:
            notices += [Notice(a, "reminder") for a in conn.execute(
                select(Alert).where(Alert.id.in_(won)).order_by(Alert.id))]
    enqueue_alerts(conn, settings, notices, now)
    return len(notices)


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)
