"""Every scope over or near its budget in the period a report covers, from that period's usage.

As for accounts (``reports.budget_states``), a report is about its period, not about the windows
in force when it is built: each scope budget's windows that overlap the period (its days, ISO
weeks, months or rolling windows, cut at local midnight) are measured from the ledger up to the
period's end, against the budget's limits, so the figures hold whether or not the limits job
ran. Per scope and window kind the worst window is kept: ``blocked`` (100% or more on a
``block`` budget), ``over`` (100% or more on a ``warn``/``alert`` budget: calls went on) or
``warned`` (past the budget's lowest warning level). A tenant's report lists only its tenant's
and its members' budgets.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from worker import money
from worker.clock import local_day_bounds
from worker.limits.scope_store import all_budgets
from worker.limits.scope_sync import ledger_usage
from worker.limits.scope_windows import budget_kinds, scope_bounds, scope_limits, window_name
from worker.limits.windows import Bounds
from worker.settings import ScopeBudget, Settings
from worker.settings.scopes import parse_scope

RANK = {"ok": 0, "warned": 1, "over": 2, "blocked": 3}


def _windows(budget: ScopeBudget, kind: str, start: datetime, end: datetime, settings: Settings) -> list[Bounds]:
    """The budget's ``kind`` windows that overlap [start, end), each cut at ``end``."""
    at = start
    if kind == "every" and budget.start is not None:
        at = max(start, local_day_bounds(budget.start, settings.tz)[0])
    out = []
    while at < end:
        b = scope_bounds(kind, at, settings.tz, budget)
        if b is None:
            break
        out.append(Bounds(kind, b.start, min(b.reset_at, end), b.period))
        at = b.reset_at
    return out


def _fraction(used: tuple[int, int, Decimal], budget: ScopeBudget, kind: str) -> float:
    lim = scope_limits(budget, kind)
    parts = [used[1] / lim.tokens] if lim.tokens else []
    if lim.cost_usd:
        parts.append(float(used[2] / lim.cost_usd))
    return max(parts) if parts else 0.0


def _state(fraction: float, budget: ScopeBudget) -> str:
    if fraction >= 1:
        return "blocked" if budget.action == "block" else "over"
    return "warned" if fraction >= min(budget.warn_at) else "ok"


def _visible(scope: str, tenant: str | None) -> bool:
    if tenant is None:
        return True
    s = parse_scope(scope)
    return (s.kind == "tenant" and s.value == tenant) or (s.kind == "member" and s.member[1] == tenant)


def scope_states(conn: Connection, settings: Settings, first: date, last: date,
                 tenant: str | None = None) -> list[dict[str, Any]]:
    start, end = local_day_bounds(first, settings.tz)[0], local_day_bounds(last, settings.tz)[1]
    out = []
    for scope, budget in sorted(all_budgets(conn, settings).items()):
        if not _visible(scope, tenant):
            continue
        spans = [b for kind in budget_kinds(budget) for b in _windows(budget, kind, start, end, settings)]
        judged: dict[str, list[tuple[int, float, Bounds, tuple[int, int, Decimal]]]] = {}
        for b, used in zip(spans, ledger_usage(conn, scope, spans)):
            fraction = _fraction(used, budget, b.kind)
            state = _state(fraction, budget)
            if state != "ok":
                judged.setdefault(b.kind, []).append((RANK[state], fraction, b, used))
        worst = {}
        for kind, windows in judged.items():
            rank, fraction, b, used = max(windows, key=lambda w: (w[0], w[1]))
            lim = scope_limits(budget, kind)
            worst[kind] = {
                "scope": scope, "label": parse_scope(scope).label, "action": budget.action,
                "state": _state(fraction, budget), "window": window_name(kind, b.period), "period": b.period,
                "fraction": f"{fraction:.4f}", "used_tokens": used[1], "limit_tokens": lim.tokens,
                "used_cost_usd": money.fixed(used[2], 10),
                "limit_cost_usd": None if lim.cost_usd is None else money.fixed(lim.cost_usd, 10),
                "windows_over": sum(1 for w in windows if w[1] >= 1)}
        out += [worst[k] for k in budget_kinds(budget) if k in worst]
    return out
