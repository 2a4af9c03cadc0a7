"""The limits job's work for scope budgets: windows rolled over, refreshed for the scopes that
changed, and kept to their budgets.

* **marks**: ingest marks each (scope, local day) it wrote, for the tenant, service, model,
  project and key of its events (:func:`mark_scopes`, in the ledger batch's transaction);
  the limits job takes the marks of the days up to today with one ``DELETE … RETURNING``
  (:func:`claim_scopes`), so two replicas never both take one. A member budget
  (``member:ACCOUNT@TENANT``) follows its tenant's mark;
* **refresh** reads, for each marked scope that has a budget, its usage in each of its
  windows in force from the ledger (one query per scope, conditional sums over the widest
  window) and updates or creates the windows (``used`` = the larger of ledger and live);
* **budgets**: :func:`apply_budget` brings a scope's windows in force to its budget at once:
  new limits or action (revision + 1, so the budgets job judges again), and a window the
  budget no longer has (a kind left out, a rolling window whose ``every``/``start`` changed) is
  deleted, so nothing of it carries into the window that replaces it. ``budgets set`` calls it;
  a change of the settings' tables is followed once, by their fingerprint in ``system_state``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, literal, select, update

from worker.limits.fingerprints import changed_once
from worker.limits.scope_marks import claim_scopes
from worker.limits.scope_store import all_budgets
from worker.limits.scope_windows import budget_windows, scope_limits
from worker.limits.windows import ZERO, Bounds, larger
from worker.models import ScopeWindow, UsageEvent
from worker.models.base import Money
from worker.settings import ScopeBudget, Settings
from worker.settings.scopes import parse_scope
from worker.sql import insert_ignore

FINGERPRINT_KEY = "limits_scope_budgets"  # system_state: the settings' scope budgets last applied
# scope kind -> the ledger column it counts (a member: account_id and tenant_id)
COLUMNS = {"tenant": UsageEvent.tenant_id, "service": UsageEvent.service, "model": UsageEvent.model,
           "project": UsageEvent.project_id, "key": UsageEvent.api_key}

Used = tuple[int, int, Decimal]


@dataclass
class ScopeSyncStats:
    closed: int = 0
    dropped: int = 0
    scopes: int = 0  # budgeted scopes refreshed
    created: int = 0
    refreshed: int = 0
    changed: int = 0  # windows that followed a budget change

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def followers(marked: set[str], budgets: dict[str, ScopeBudget]) -> list[str]:
    """The budgeted scopes whose usage may have changed: the marked ones, and the members of a
    marked tenant."""
    out = []
    for scope in budgets:
        s = parse_scope(scope)
        if scope in marked or (s.kind == "member" and f"tenant:{s.member[1]}" in marked):
            out.append(scope)
    return sorted(out)


# --------------------------------------------------------------------------- the job


def sync(conn: Connection, settings: Settings, now: datetime) -> ScopeSyncStats:
    stats = ScopeSyncStats()
    rollover(conn, now, stats)
    budgets = all_budgets(conn, settings)
    marked = claim_scopes(conn, now.astimezone(settings.tz).date())
    todo = set(followers(set(marked), budgets))
    if settings_changed(conn, settings, now):  # (a budget new in the settings counts what its windows hold)
        for scope in sorted(set(settings.scope_budgets) | _open_scopes(conn, now)):
            stats.changed += apply_budget(conn, settings, scope, budgets.get(scope), now)
        todo |= set(settings.scope_budgets) & set(budgets)
    stats.scopes = len(todo)
    for scope in sorted(todo):
        refresh(conn, settings, scope, budgets[scope], now, stats)
    return stats


def rollover(conn: Connection, now: datetime, stats: ScopeSyncStats) -> None:
    """Close the windows whose reset_at has passed (the empty ones are dropped): two statements."""
    sw = ScopeWindow
    expired = and_(sw.closed_at.is_(None), sw.reset_at <= now)
    stats.dropped += conn.execute(delete(sw).where(expired, sw.state == "ok", sw.used_requests == 0,
                                                   sw.used_tokens == 0, sw.used_cost_usd == 0)).rowcount
    stats.closed += conn.execute(update(sw).where(expired).values(
        closed_at=now, updated_at=now, evaluated_revision=sw.revision)).rowcount


def _open_scopes(conn: Connection, now: datetime) -> set[str]:
    sw = ScopeWindow
    return {r[0] for r in conn.execute(select(sw.scope).distinct().where(sw.closed_at.is_(None)))}


def scope_filter(scope: str) -> Any:
    """The ledger rows a scope counts."""
    s = parse_scope(scope)
    if s.kind == "member":
        account, tenant = s.member
        return and_(UsageEvent.account_id == account, UsageEvent.tenant_id == tenant)
    return COLUMNS[s.kind] == s.value


def ledger_usage(conn: Connection, scope: str, spans: list[Bounds]) -> list[Used]:
    """(requests, tokens, cost) of the scope in each of these windows, in one pass over them all."""
    if not spans:
        return []
    ev = UsageEvent
    columns = []
    for b in spans:
        inside = and_(ev.occurred_at >= b.start, ev.occurred_at < b.reset_at)
        columns += [func.count(case((inside, 1))), func.coalesce(func.sum(case((inside, ev.total_tokens))), 0),
                    func.coalesce(func.sum(case((inside, ev.cost_usd))), 0)]
    row = conn.execute(select(*columns).where(scope_filter(scope), ev.occurred_at >= min(b.start for b in spans),
                                              ev.occurred_at < max(b.reset_at for b in spans))).one()
    return [(int(row[3 * i]), int(row[3 * i + 1]), Decimal(row[3 * i + 2])) for i in range(len(spans))]


def new_scope_window(scope: str, b: Bounds, budget: ScopeBudget, now: datetime,
                     used: Used = (0, 0, ZERO)) -> dict[str, Any]:
    lim = scope_limits(budget, b.kind)
    requests, tokens, cost = used
    return dict(scope=scope, kind=b.kind, window_start=b.start, reset_at=b.reset_at, period=b.period,
                action=budget.action, limit_tokens=lim.tokens, limit_cost_usd=lim.cost_usd,
                ledger_requests=requests, ledger_tokens=tokens, ledger_cost_usd=cost,
                live_requests=0, live_tokens=0, live_cost_usd=ZERO,
                used_requests=requests, used_tokens=tokens, used_cost_usd=cost, state="ok",
                created_at=now, updated_at=now, revision=1, evaluated_revision=0)


def in_force(conn: Connection, scope: str, now: datetime) -> list[Any]:
    sw = ScopeWindow
    return conn.execute(select(sw).where(sw.scope == scope, sw.closed_at.is_(None), sw.window_start <= now,
                                         sw.reset_at > now)).all()


def refresh(conn: Connection, settings: Settings, scope: str, budget: ScopeBudget, now: datetime,
            stats: ScopeSyncStats) -> None:
    """The scope's windows in force: usage from the ledger (a window with usage is created)."""
    spans = budget_windows(budget, now, settings.tz)
    existing = {(w.kind, w.window_start, w.reset_at): w for w in in_force(conn, scope, now)}
    sw = ScopeWindow
    new = []
    for b, u in zip(spans, ledger_usage(conn, scope, spans)):
        w = existing.get((b.kind, b.start, b.reset_at))
        if w is None:
            if u[0]:
                new.append(new_scope_window(scope, b, budget, now, u))
            continue
        if u != (w.ledger_requests, w.ledger_tokens, w.ledger_cost_usd):
            requests, tokens, cost = u
            conn.execute(update(sw).where(sw.id == w.id).values(
                ledger_requests=requests, ledger_tokens=tokens, ledger_cost_usd=cost,
                used_requests=larger(sw.live_requests, requests), used_tokens=larger(sw.live_tokens, tokens),
                used_cost_usd=larger(sw.live_cost_usd, literal(cost, Money)), updated_at=now,
                revision=sw.revision + 1))
            stats.refreshed += 1
    if new:
        conn.execute(insert_ignore(conn.dialect.name, sw, ["scope", "kind", "window_start"]), new)
        stats.created += len(new)


def apply_budget(conn: Connection, settings: Settings, scope: str, budget: ScopeBudget | None,
                 now: datetime) -> int:
    """The scope's windows in force follow its budget now: limits and action copied (the budgets
    job judges them again), and the windows it no longer has deleted. Returns the windows changed."""
    sw = ScopeWindow
    wanted = {(b.kind, b.start, b.reset_at): b for b in (budget_windows(budget, now, settings.tz) if budget else [])}
    changed = 0
    for w in in_force(conn, scope, now):
        if budget is None or (w.kind, w.window_start, w.reset_at) not in wanted:
            conn.execute(delete(sw).where(sw.id == w.id))
            changed += 1
            continue
        lim = scope_limits(budget, w.kind)
        if (w.action, w.limit_tokens, w.limit_cost_usd) != (budget.action, lim.tokens, lim.cost_usd):
            conn.execute(update(sw).where(sw.id == w.id).values(
                action=budget.action, limit_tokens=lim.tokens, limit_cost_usd=lim.cost_usd, updated_at=now,
                revision=sw.revision + 1))
            changed += 1
    return changed


def fingerprint(settings: Settings) -> str:
    return hashlib.sha256(repr((settings.timezone, sorted(settings.scope_budgets.items()))).encode()).hexdigest()


def settings_changed(conn: Connection, settings: Settings, now: datetime) -> bool:
    """True once per change of the settings' scope budgets (the first replica to see it wins)."""
    return changed_once(conn, FINGERPRINT_KEY, fingerprint(settings), now)
