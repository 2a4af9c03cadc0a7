"""Scope budgets managed: ``budgets set / unset / list`` and the windows people read.

``set`` stores the budget (it wins over a ``[budgets."<scope>"]`` table for the same scope) and,
in the same transaction, applies it to the scope's current windows at once: their limits and
action follow, a window the budget no longer has is deleted (a rolling window whose ``every`` or
``start`` changed starts afresh: nothing of the old window carries over), the scope's usage is
read from the ledger into the windows it now has, and they are judged (a raised limit unblocks,
a lowered one blocks). ``unset`` removes the stored budget; the settings' table for the scope,
if any, is then in force again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from worker import clock, gate_scopes
from worker.limits import scope_judge, scope_live, scope_store
from worker.limits.scope_sync import ScopeSyncStats, apply_budget, refresh
from worker.limits.scope_windows import budget_kinds
from worker.models import ScopeWindow
from worker.settings import ScopeBudget, Settings
from worker.settings.scopes import ScopeError, check_budget, parse_scope


def set_budget(engine: Engine, settings: Settings, budget: ScopeBudget, by: str) -> dict[str, Any]:
    check_budget(budget)
    now = clock.now()
    with engine.begin() as conn:
        created = scope_store.store(conn, budget, now, by)
        changed = _apply(conn, settings, budget.scope, budget, now)
        judged = scope_judge.evaluate(conn, settings, now, scope=budget.scope)
        views = scope_views(conn, settings, {budget.scope: budget}, now)
    return {"scope": budget.scope, "created": created, "windows_changed": changed, "blocked": judged.blocked,
            "unblocked": judged.unblocked, "windows": [v.as_dict(now, settings.tz) for v in views]}


def unset_budget(engine: Engine, settings: Settings, scope: str, by: str) -> dict[str, Any]:
    parse_scope(scope)
    now = clock.now()
    with engine.begin() as conn:
        if not scope_store.remove(conn, scope, now, by):
            where = " (it is set in the settings file: edit that)" if scope in settings.scope_budgets else ""
            raise ScopeError(f"{scope}: no budget stored by `budgets set`{where}")
        fallback = settings.scope_budgets.get(scope)
        changed = _apply(conn, settings, scope, fallback, now)
        scope_judge.evaluate(conn, settings, now, scope=scope)
    return {"scope": scope, "removed": True, "windows_changed": changed,
            "in_force": "settings" if fallback else None}


def _apply(conn: Connection, settings: Settings, scope: str, budget: ScopeBudget | None, now: datetime) -> int:
    changed = apply_budget(conn, settings, scope, budget, now)
    if budget is not None:
        refresh(conn, settings, scope, budget, now, ScopeSyncStats())
    return changed


def scope_views(conn: Connection, settings: Settings, budgets: dict[str, ScopeBudget],
                now: datetime) -> list[gate_scopes.ScopeView]:
    """Every window in force of these budgets, as the gate sees them (one query)."""
    if not budgets:
        return []
    stored = scope_live.read(conn, sorted(budgets), now)
    return gate_scopes.views(budgets, stored, now, settings.tz)


def list_budgets(conn: Connection, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Each scope budget with its windows in force (used / limit, resets in)."""
    budgets = scope_store.all_budgets(conn, settings)
    by_scope: dict[str, list[gate_scopes.ScopeView]] = {}
    for v in scope_views(conn, settings, budgets, now):
        by_scope.setdefault(v.scope, []).append(v)
    return [{"scope": scope, "source": b.source, "action": b.action, "warn_at": list(b.warn_at),
             "kinds": list(budget_kinds(b)), "every_days": b.every_days,
             "start": b.start.isoformat() if b.start else None,
             "windows": [v.as_dict(now, settings.tz) for v in by_scope.get(scope, [])]}
            for scope, b in sorted(budgets.items())]


def windows_in(conn: Connection, start: datetime, end: datetime) -> list[Any]:
    """The scope windows that overlap [start, end) (open or closed), for reports."""
    sw = ScopeWindow
    return conn.execute(select(sw).where(sw.window_start < end, sw.reset_at > start)
                        .order_by(sw.scope, sw.kind, sw.window_start)).all()
