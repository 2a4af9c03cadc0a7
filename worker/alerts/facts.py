"""The facts an alert message is worded from: one alert's, or a storm's (a group of one kind).

Nothing here is text for a person: the templates word the facts (``templates/email/alert*``,
``templates/slack/alert*``), the CSV of a group is written by ``reports.alert_csv``.

A group (:func:`group_facts`) holds the count, the severities, the ten alerts with the
highest cost (their full facts, so the templates word each as for one alert) and every
alert as one row of ``columns`` (the alert's own fields, then its payload's, in the
order they first appear; a value that is not a scalar as JSON text): the webhook carries
them all, the email and the file channel attach them as CSV.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from worker.models import SEVERITIES

TOP = 10  # the alerts a grouped message names, by cost
ALERT_COLUMNS = ("alert_id", "kind", "scope", "scope_id", "period", "severity", "state", "first_seen")
COST_FIELDS = ("used_cost_usd", "cost_usd", "amount_usd")  # where a payload keeps the cost it is about


def alert_facts(alert: Any) -> dict[str, Any]:
    """What a message about ``alert`` is worded from."""
    return {"id": alert.id, "key": alert.key, "kind": alert.kind, "scope": alert.scope, "scope_id": alert.scope_id,
            "period": alert.period, "severity": alert.severity, "state": alert.state,
            "first_seen": alert.first_seen, "last_seen": alert.last_seen, "times_seen": alert.times_seen,
            "payload": dict(alert.payload or {})}


def jsonable(value: Any) -> Any:
    """Decimals as strings and datetimes as ISO text, for a JSON column."""
    return orjson.loads(orjson.dumps(value, default=str))


def cost_of(alert: Any) -> Decimal:
    """The cost an alert is about (0 when its payload names none)."""
    payload = alert.payload or {}
    for name in COST_FIELDS:
        value = payload.get(name)
        if value is not None:
            try:
                return Decimal(str(value))
            except InvalidOperation:
                continue
    return Decimal(0)


def group_facts(kind: str, reason: str, alerts: list[Any], now: datetime) -> dict[str, Any]:
    """The facts of one grouped message about ``alerts`` (all of ``kind``). One pass per alert:
    a storm is ninety thousand of them."""
    severities: dict[str, int] = {}
    costs: dict[int, Decimal] = {}
    extra: dict[str, None] = {}
    for a in alerts:
        severities[a.severity] = severities.get(a.severity, 0) + 1
        costs[a.id] = cost_of(a)
        for name in (a.payload or {}):
            if name not in extra and name not in ALERT_COLUMNS:
                extra[name] = None
    by_cost = sorted(alerts, key=lambda a: (-costs[a.id], a.id))
    columns = [*ALERT_COLUMNS, *extra]
    names = list(extra)
    rows = []
    for a in by_cost:
        payload = a.payload or {}
        rows.append([a.id, a.kind, a.scope, a.scope_id, a.period, a.severity, a.state, a.first_seen,
                     *[_cell(payload.get(name)) for name in names]])
    return {"kind": kind, "reason": reason, "count": len(alerts), "at": now,
            "severity": max(severities, key=SEVERITIES.index), "severities": severities,
            "scopes": sorted({a.scope for a in alerts}),
            "total_cost_usd": sum(costs.values(), Decimal(0)),
            "top": [{**alert_facts(a), "cost_usd": costs[a.id]} for a in by_cost[:TOP]],
            "columns": columns, "rows": rows}


_SCALARS = (str, int, float, bool)


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, _SCALARS):
        return value
    return orjson.dumps(value, default=str).decode()
