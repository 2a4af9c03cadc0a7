"""Judge the last hour of every scope against its learned baseline; raise and resolve ``spend.anomaly``.

Each run judges two hours: the last complete hour, and the hour in progress, whose spend so far
is held against the whole hour's usual high (it can only grow, so an hour in progress that is
already over it is over for sure: a 20x spike is caught minutes after it starts, and the early
look adds no false alert). A scope is anomalous when its spend (``cost``) or its request count
(``requests``: a runaway loop) is unusual by :mod:`worker.anomalies.rule`; a scope without any
history (a new model or account) when it spends above ``anomalies.min_usd``.

One alert per scope (``spend.anomaly``, scope ``system|tenant|service|model|account``, no period):
it holds the hour, the expected range, the actual figures, the top contributors and the cost of
the day at this pace. It is raised as a warning; an anomaly lasting ``anomalies.escalate_hours``
hours (counted from the first anomalous hour, ``since``) escalates to critical; the first run that
finds the scope normal again resolves it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from worker.alerts.state import raise_alert, resolve_alert
from worker.anomalies import history
from worker.anomalies.history import HOUR, Baseline, Cell, Scope
from worker.anomalies.rule import Expectation, expect, unusual
from worker.clock import local_day_bounds
from worker.models import Alert
from worker.settings import Settings

logger = logging.getLogger(__name__)

KIND = "spend.anomaly"
SCOPES = ("system", "tenant", "service", "model", "account")


@dataclass
class Anomaly:
    """One scope's unusual hour: the facts its alert is worded from."""

    scope: Scope
    hour: datetime  # UTC start of the hour judged
    partial: bool  # the hour in progress (its spend so far)
    cost: Decimal
    requests: int
    measures: list[str]  # "cost", "requests", "new" (no history at all)
    usual_cost: Expectation | None
    usual_requests: Expectation | None
    contributors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class Detected:
    hours: list[str] = field(default_factory=list)
    anomalies: int = 0
    alerts_raised: int = 0  # messages enqueued (new or escalated)
    alerts_resolved: int = 0
    escalated: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def hours_judged(now: datetime) -> tuple[datetime, datetime]:
    """(the last complete hour, the hour in progress): their UTC starts."""
    current = now.replace(minute=0, second=0, microsecond=0)
    return current - HOUR, current


def find(conn: Connection, settings: Settings, now: datetime) -> list[Anomaly]:
    """The anomalous scopes of the last complete hour and the hour in progress (nothing changed)."""
    s = settings.anomalies
    learned = history.baseline(conn, settings.tz, s.history_weeks, now)
    last, current = hours_judged(now)
    rows = history.contributions(conn, last, now)
    cells: dict[datetime, dict[Scope, list[Any]]] = {last: defaultdict(lambda: [Decimal(0), 0]),
                                                     current: defaultdict(lambda: [Decimal(0), 0])}
    for hour, keys, (cost, n) in rows:
        for scope in history.scopes_of(keys):
            cell = cells[hour][scope]
            cell[0] += cost
            cell[1] += n
    found: dict[Scope, Anomaly] = {}
    for hour in (last, current):
        for scope, (cost, n) in cells[hour].items():
            anomaly = judge(learned, scope, hour, (cost, n), settings, partial=hour == current)
            if anomaly is not None:
                found[scope] = anomaly  # the hour in progress, when both are, is the latest word
    for anomaly in found.values():
        anomaly.contributors = top_contributors(rows, anomaly.scope, anomaly.hour, s.top)
    return list(found.values())


def judge(learned: Baseline, scope: Scope, hour: datetime, cell: Cell, settings: Settings,
          partial: bool = False) -> Anomaly | None:
    """The scope's hour, if it is unusual (cost or requests), or new and above the floor."""
    s = settings.anomalies
    cost, n = cell
    samples = learned.samples(scope, hour)
    if samples is None:
        if not unusual(cost, None, s.min_usd):
            return None
        return Anomaly(scope, hour, partial, cost, n, ["new"], None, None)
    usual_cost = expect([c for c, _ in samples], s.k, s.mad_floor)
    usual_requests = expect([Decimal(r) for _, r in samples], s.k, s.mad_floor)
    measures = [name for name, actual, usual, floor in (
        ("cost", cost, usual_cost, s.min_usd), ("requests", Decimal(n), usual_requests, Decimal(s.min_requests)))
        if unusual(actual, usual, floor)]
    if not measures:
        return None
    return Anomaly(scope, hour, partial, cost, n, measures, usual_cost, usual_requests)


def top_contributors(rows: list[tuple[datetime, dict[str, str], Cell]], scope: Scope, hour: datetime,
                     top: int) -> dict[str, list[dict[str, Any]]]:
    """The scope's biggest accounts, services and models in the hour, by cost (the scope's own kind left out)."""
    totals: dict[str, dict[str, list[Any]]] = {k: defaultdict(lambda: [Decimal(0), 0])
                                               for k in ("account", "service", "model") if k != scope[0]}
    kind, value = scope
    for at, keys, (cost, n) in rows:
        if at != hour or (kind != "system" and keys.get(kind) != value):
            continue
        for k, per in totals.items():
            if k in keys:
                per[keys[k]][0] += cost
                per[keys[k]][1] += n
    return {k: [{"name": name, "cost_usd": c, "requests": r}
                for name, (c, r) in sorted(per.items(), key=lambda item: (-item[1][0], item[0]))[:top]]
            for k, per in totals.items()}


def apply(conn: Connection, settings: Settings, now: datetime, anomalies: list[Anomaly]) -> Detected:
    """Raise (or escalate) each anomaly's alert, resolve those of scopes that are normal again."""
    s = settings.anomalies
    last, current = hours_judged(now)
    result = Detected(hours=[last.isoformat(), current.isoformat()], anomalies=len(anomalies))
    open_alerts = {(a.scope, a.scope_id): a for a in conn.execute(
        select(Alert).where(Alert.kind == KIND, Alert.state != "resolved")).all()}
    for anomaly in anomalies:
        kept = open_alerts.pop(anomaly.scope, None)
        since = anomaly.hour
        if kept is not None and kept.payload.get("since"):
            since = min(since, datetime.fromisoformat(kept.payload["since"]))
        hours = int((anomaly.hour - since) / HOUR) + 1
        severity = "critical" if hours >= s.escalate_hours else "warning"
        reason = raise_alert(conn, settings, kind=KIND, scope=anomaly.scope[0], scope_id=anomaly.scope[1],
                             severity=severity, payload=facts(conn, settings, now, anomaly, since, hours))
        if reason:
            result.alerts_raised += 1
            result.escalated += reason == "escalated"
    for alert in open_alerts.values():  # a scope with no unusual hour any more
        if resolve_alert(conn, settings, alert.id):
            result.alerts_resolved += 1
    logger.info("anomalies judged", extra={"action": "anomalies_judged", **result.as_dict()})
    return result


def facts(conn: Connection, settings: Settings, now: datetime, a: Anomaly, since: datetime,
          hours: int) -> dict[str, Any]:
    """The alert's payload (templates/alerts/spend.anomaly.txt.j2 words it)."""
    tz = settings.tz
    end = now if a.partial else a.hour + HOUR
    day_start, day_end = local_day_bounds(a.hour.astimezone(tz).date(), tz)
    so_far = history.spent(conn, a.scope, day_start, end)
    covered = (end - a.hour) / HOUR
    pace = a.cost / Decimal(str(covered)) if covered > 0 else a.cost
    projected = so_far + pace * Decimal(str((day_end - end) / HOUR))
    return {
        "scope": a.scope[0], "scope_id": a.scope[1], "hour": a.hour.isoformat(),
        "hour_local": a.hour.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z"), "partial": a.partial,
        "measures": a.measures, "new": "new" in a.measures, "cost_usd": a.cost, "requests": a.requests,
        "expected_cost_usd": _cents(a.usual_cost.median) if a.usual_cost else Decimal(0),
        "expected_high_usd": _cents(a.usual_cost.high) if a.usual_cost else Decimal(0),
        "expected_requests": int(a.usual_requests.median) if a.usual_requests else 0,
        "expected_high_requests": int(a.usual_requests.high) if a.usual_requests else 0,
        "ratio": float(a.cost / a.usual_cost.median) if a.usual_cost and a.usual_cost.median else None,
        "contributors": a.contributors, "day_so_far_usd": so_far, "day_projected_usd": _cents(projected),
        "since": since.isoformat(), "hours": hours,
    }


def _cents(amount: Decimal) -> Decimal:
    """A derived amount (a median, a projection) to four places."""
    return amount.quantize(Decimal("0.0001"))


def run(conn: Connection, settings: Settings, now: datetime) -> Detected:
    """Find and apply (in ``conn``'s transaction)."""
    return apply(conn, settings, now, find(conn, settings, now))
