"""The gate's view of a call's scopes: which budgets it falls under, their windows, what refuses.

A call falls under its account's tenant (the tenant it names and the one stored for the
account), its membership of that tenant, its service, its model, its project and its key
(``worker.limits.scope_windows.call_scopes``); only the scopes with a budget are read, in one
query (``worker.limits.scope_live.READ``). A window not stored is empty; a stored window counts
only with the bounds the budget gives now. A ``block`` budget used up refuses the call, naming
the scope, the window and when it resets in local time ("tenant school-a monthly budget, resets
2026-12-01 00:00 EST"); a ``warn``/``alert`` budget used up lets it go on, saying so.

The budgets are held by the caller (``worker.gate.Gate`` keeps them per settings and per
stored-budgets token, ``worker.limits.scope_store``): deciding reads no budget table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from worker.limits import scope_live
from worker.limits.scope_windows import call_scopes, local_text, scope_limits, window_name
from worker.limits.windows import fraction_used
from worker.settings import ScopeBudget
from worker.settings.scopes import parse_scope


@dataclass(frozen=True)
class Call:
    """What a call says about itself besides its account (each optional)."""

    tenant_id: str | None = None
    service: str | None = None
    model: str | None = None
    project_id: str | None = None
    api_key: str | None = None


NO_CALL = Call()


@dataclass(frozen=True)
class ScopeView:
    scope: str
    kind: str  # day | week | month | every
    period: str
    window_start: datetime
    reset_at: datetime
    used_requests: int
    used_tokens: int
    used_cost_usd: Decimal
    limit_tokens: int | None
    limit_cost_usd: Decimal | None
    action: str
    state: str
    stored: bool

    @property
    def name(self) -> str:
        """"tenant school-a monthly budget"."""
        return f"{parse_scope(self.scope).label} {window_name(self.kind, self.period)} budget"

    def fraction(self) -> float | None:
        return fraction_used(self)

    def as_dict(self, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
        def money(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        fraction = self.fraction()
        return {"scope": self.scope, "kind": self.kind, "period": self.period, "name": self.name,
                "window": window_name(self.kind, self.period),
                "window_start": self.window_start.isoformat(), "reset_at": self.reset_at.isoformat(),
                "reset_at_local": local_text(self.reset_at, tz), "resets_in": resets_in(self.reset_at, now),
                "used_requests": self.used_requests, "used_tokens": self.used_tokens,
                "limit_tokens": self.limit_tokens, "used_cost_usd": str(self.used_cost_usd),
                "limit_cost_usd": money(self.limit_cost_usd), "action": self.action,
                "used_pct": None if fraction is None else round(fraction * 100, 1), "state": self.state}


def resets_in(reset_at: datetime, now: datetime) -> str:
    """"3d 4h", "5h 12m", "40m": how long until a window resets."""
    minutes = max(int((reset_at - now).total_seconds() // 60), 0)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def budgeted(budgets: dict[str, ScopeBudget], account_id: str, stored_tenant: str | None,
             call: Call) -> dict[str, ScopeBudget]:
    """The budgets of the scopes this call falls under."""
    if not budgets:
        return {}
    scopes = call_scopes(account_id, stored_tenant, call.tenant_id, call.service, call.model, call.project_id,
                         call.api_key)
    return {s: budgets[s] for s in scopes if s in budgets}


def views(budgets: dict[str, ScopeBudget], stored: dict[scope_live.Key, Any], now: datetime,
          tz: ZoneInfo) -> list[ScopeView]:
    """Every window of these budgets in force now, stored or not (then empty)."""
    out = []
    for key, (scope, b) in scope_live.expected(budgets, now, tz).items():
        budget = budgets[scope]
        lim = scope_limits(budget, b.kind)
        w = stored.get(key)
        used = (w.used_requests, w.used_tokens, w.used_cost_usd) if w is not None else (0, 0, Decimal(0))
        out.append(ScopeView(scope, b.kind, b.period, b.start, b.reset_at, *used, lim.tokens, lim.cost_usd,
                             budget.action, w.state if w is not None else "ok", w is not None))
    return out


@dataclass(frozen=True)
class Verdict:
    refusals: list[tuple[ScopeView, str]]  # (window, "tenant school-a monthly budget, resets … EST")
    soft: list[tuple[ScopeView, str]]
    remaining_tokens: int | None
    remaining_cost_usd: Decimal | None


def verdict(scope_views: list[ScopeView], tz: ZoneInfo) -> Verdict:
    refusals, soft = [], []
    tokens = [max(v.limit_tokens - v.used_tokens, 0) for v in scope_views if v.limit_tokens is not None]
    cost = [max(v.limit_cost_usd - v.used_cost_usd, Decimal(0)) for v in scope_views
            if v.limit_cost_usd is not None]
    for v in sorted(scope_views, key=lambda v: v.reset_at):  # (stable: in the order of the call's scopes)
        fraction = v.fraction()
        if fraction is None or fraction < 1:
            continue
        if v.action == "block":
            refusals.append((v, f"{v.name}, resets {local_text(v.reset_at, tz)}"))
        else:
            soft.append((v, f"{v.name} used ({fraction:.0%}); action {v.action}"))
    return Verdict(refusals, soft, min(tokens) if tokens else None, min(cost) if cost else None)


def least(values: Any) -> Any:
    """The smallest of the values that are not None (None: all are)."""
    present = [v for v in values if v is not None]
    return min(present) if present else None


def merge(d: Any, v: Verdict) -> Any:
    """The account's decision (a ``worker.gate.Decision``) with its scopes': a scope's block refuses,
    naming it; a soft one used up says so; the remaining tokens and cost are the tightest."""
    tight = {"remaining_tokens": least([d.remaining_tokens, v.remaining_tokens]),
             "remaining_cost_usd": least([d.remaining_cost_usd, v.remaining_cost_usd])}
    if v.refusals:
        details = [text for _, text in v.refusals]
        until = max(w.reset_at for w, _ in v.refusals)
        reason = "budget_exhausted"
        if not d.can_call:  # both refuse: calls resume once both have lifted
            details.insert(0, d.detail)
            until = max(until, d.reset_at) if d.reset_at else until
            reason = d.reason
        return replace(d, can_call=False, reason=reason, reset_at=until, detail="; ".join(details),
                       scope=v.refusals[0][0].scope, **tight)
    if v.soft and d.reason == "ok":
        return replace(d, reason="over_soft_limit", detail="; ".join(text for _, text in v.soft),
                       scope=v.soft[0][0].scope, **tight)
    if v.soft:
        return replace(d, detail="; ".join([d.detail, *(text for _, text in v.soft)]), **tight)
    return replace(d, **tight)
