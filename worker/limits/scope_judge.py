"""Scope budgets judged: each scope window's usage against its budget raises ``budget.scope`` alerts.

As for accounts (``worker.limits.budgets``): every ``warn_at`` level a window crosses raises one
``budget.scope`` alert per window (the level recorded in the window with a conditional update,
so replicas and later runs never raise it again); at 100% a ``block`` budget's alert is
critical and the window is marked blocked (the gate refuses from the used/limit it reads
itself, so a changed budget applies at once), a ``warn`` or ``alert`` budget's a warning.
A window under its (changed) limits goes back to ok. Only the windows whose ``revision`` is
ahead of ``evaluated_revision`` are read (a partial index), or every window of one scope in
force (``budgets set``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select, update

from worker.alerts.state import AlertSpec, raise_alerts
from worker.limits.scope_store import all_budgets
from worker.limits.scope_windows import local_text, window_name
from worker.limits.windows import fraction_used
from worker.models import ScopeWindow
from worker.settings import ScopeBudget, Settings
from worker.settings.scopes import parse_scope


@dataclass
class ScopeJudgeStats:
    windows: int = 0
    warnings: int = 0
    blocked: int = 0
    unblocked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def evaluate(conn: Connection, settings: Settings, now: datetime, scope: str | None = None) -> ScopeJudgeStats:
    sw = ScopeWindow
    stats = ScopeJudgeStats()
    query = select(sw).where(sw.closed_at.is_(None), sw.window_start <= now, sw.reset_at > now)
    query = query.where(sw.scope == scope) if scope is not None else query.where(sw.revision != sw.evaluated_revision)
    windows = conn.execute(query.order_by(sw.scope, sw.kind)).all()
    stats.windows = len(windows)
    budgets = all_budgets(conn, settings) if windows else {}
    specs = []
    for w in windows:
        budget = budgets.get(w.scope)
        fraction = fraction_used(w) if budget is not None else None
        if fraction is not None:
            crossed = [level for level in budget.warn_at if fraction >= level]
            if crossed and (w.warned_level is None or max(crossed) > w.warned_level):
                level = max(crossed)
                won = conn.execute(update(sw).where(sw.id == w.id, or_(sw.warned_level.is_(None),
                                                                       sw.warned_level < level))
                                   .values(warned_level=level, updated_at=now)).rowcount
                if won:
                    specs.append(_spec(settings, w, budget, level, fraction))
        over = fraction is not None and fraction >= 1
        crossed_any = fraction is not None and any(fraction >= x for x in budget.warn_at)  # type: ignore[union-attr]
        state = "blocked" if over and w.action == "block" else ("warned" if crossed_any else "ok")
        if state != w.state and conn.execute(update(sw).where(sw.id == w.id, sw.state == w.state)
                                             .values(state=state, updated_at=now)).rowcount:
            stats.blocked += state == "blocked"
            stats.unblocked += w.state == "blocked"
        conn.execute(update(sw).where(sw.id == w.id, sw.revision == w.revision)
                     .values(evaluated_revision=w.revision))
    stats.warnings = len(specs)
    if specs:
        raise_alerts(conn, settings, specs)
    return stats


def _spec(settings: Settings, w: Any, budget: ScopeBudget, level: float, fraction: float) -> AlertSpec:
    pct = round(level * 100)
    severity = "critical" if level >= 1 and budget.action == "block" else "warning"
    s = parse_scope(w.scope)
    return AlertSpec(kind="budget.scope", scope=s.kind, scope_id=s.value[:200], period=f"{w.kind} {w.period} {pct}%",
                     severity=severity,
                     payload={"scope": w.scope, "scope_label": s.label, "window": w.kind,
                              "window_name": window_name(w.kind, w.period), "period": w.period, "level": level,
                              "fraction": round(fraction, 4), "action": budget.action,
                              "window_start": w.window_start, "reset_at": w.reset_at,
                              "reset_at_local": local_text(w.reset_at, settings.tz),
                              "used_requests": w.used_requests, "used_tokens": w.used_tokens,
                              "used_cost_usd": w.used_cost_usd, "limit_tokens": w.limit_tokens,
                              "limit_cost_usd": w.limit_cost_usd})
