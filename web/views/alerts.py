"""Alerts for the console: newest first, filtered by state, a tenant seeing only its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from reports.messages import RenderError, render
from worker.models import Alert
from worker.settings import Settings

from web.views.paging import Page, fetch
from web.views.tenancy import alerts_of

STATES = ("open", "acknowledged", "resolved")
OPEN_STATES = ("open", "acknowledged")


def _query(settings: Settings, tenant: str | None, states: tuple[str, ...]):
    query = select(Alert).order_by(Alert.last_seen.desc(), Alert.id.desc())
    if states:
        query = query.where(Alert.state.in_(states))
    if tenant is not None:
        query = query.where(alerts_of(settings, tenant))
    return query


def open_alerts(conn: Connection, settings: Settings, tenant: str | None, limit: int = 10) -> list[Any]:
    """The newest open or acknowledged alerts, worded."""
    return [worded(a, settings) for a in conn.execute(_query(settings, tenant, OPEN_STATES).limit(limit)).all()]


def list_alerts(conn: Connection, settings: Settings, tenant: str | None, state: str | None,
                page: int, size: int) -> Page[Any]:
    states = (state,) if state in STATES else OPEN_STATES if state == "active" else ()
    found = fetch(conn, _query(settings, tenant, states), page, size)
    found.rows = [worded(a, settings) for a in found.rows]
    return found


def get_alert(conn: Connection, settings: Settings, tenant: str | None, alert_id: int) -> Any | None:
    query = _query(settings, tenant, ()).where(Alert.id == alert_id)
    row = conn.execute(query).first()
    return worded(row, settings) if row else None


def worded(alert: Any, settings: Settings) -> dict[str, Any]:
    """The alert row with its sentence as its messages word it (``templates/alerts/sentence.txt.j2``);
    a template that cannot render gives None (the page shows the facts)."""
    facts = {"alert": {"kind": alert.kind, "scope": alert.scope, "scope_id": alert.scope_id,
                       "period": alert.period, "severity": alert.severity, "payload": dict(alert.payload or {})},
             "timezone": settings.timezone}
    try:
        sentence = " ".join(render("alerts/sentence.txt.j2", facts).split()) or None
    except RenderError:
        sentence = None
    return {"id": alert.id, "kind": alert.kind, "scope": alert.scope, "scope_id": alert.scope_id,
            "period": alert.period, "severity": alert.severity, "state": alert.state,
            "first_seen": alert.first_seen, "last_seen": alert.last_seen, "times_seen": alert.times_seen,
            "acknowledged_at": alert.acknowledged_at, "resolved_at": alert.resolved_at, "sentence": sentence}
