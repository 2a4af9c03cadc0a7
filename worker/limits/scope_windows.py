"""A scope budget's windows: their boundaries in local time, their limits, and the scopes of a call.

Windows are cut at local midnight in the configured time zone, so a day is 23 or 25 hours
across a DST change, a week runs Monday 00:00 to Monday 00:00 (ISO weeks), a month from its
first day to the next month's, and a rolling ``every = "7d"`` window from ``start`` in steps of
that many local days (``start + k * every``). A rolling window whose start is still to come is
not in force (the budget has not begun). Pure functions: no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from worker.clock import local_day_bounds, month_start, next_month
from worker.limits.windows import Bounds
from worker.models import SCOPE_WINDOW_KINDS, UNATTRIBUTED
from worker.settings import ScopeBudget

# kind -> the budget's (tokens, cost) fields for that window
KIND_FIELDS = {
    "day": ("daily_tokens", "daily_cost_usd"),
    "week": ("weekly_tokens", "weekly_cost_usd"),
    "month": ("monthly_tokens", "monthly_cost_usd"),
    "every": ("tokens", "cost_usd"),
}
ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly"}


def scope_bounds(kind: str, at: datetime, tz: ZoneInfo, budget: ScopeBudget | None = None) -> Bounds | None:
    """The ``kind`` window that contains ``at`` (``every``: the budget's rolling window, None before
    its start)."""
    local = at.astimezone(tz).date()
    if kind == "day":
        start, end = local_day_bounds(local, tz)
        return Bounds(kind, start, end, local.isoformat())
    if kind == "week":
        monday = local - timedelta(days=local.weekday())
        year, week, _ = monday.isocalendar()
        return Bounds(kind, local_day_bounds(monday, tz)[0], local_day_bounds(monday + timedelta(days=7), tz)[0],
                      f"{year}-W{week:02d}")
    if kind == "month":
        first = month_start(local)
        return Bounds(kind, local_day_bounds(first, tz)[0], local_day_bounds(next_month(first), tz)[0],
                      first.isoformat()[:7])
    if kind == "every":
        if budget is None or budget.every_days is None or budget.start is None or local < budget.start:
            return None
        n = budget.every_days
        first = budget.start + timedelta(days=(local - budget.start).days // n * n)
        return Bounds(kind, local_day_bounds(first, tz)[0], local_day_bounds(first + timedelta(days=n), tz)[0],
                      f"{first.isoformat()}+{n}d")
    raise ValueError(f"window kind must be one of {', '.join(SCOPE_WINDOW_KINDS)}, got {kind!r}")


@dataclass(frozen=True)
class ScopeLimits:
    tokens: int | None
    cost_usd: Decimal | None


def scope_limits(budget: ScopeBudget, kind: str) -> ScopeLimits:
    tokens, cost = KIND_FIELDS[kind]
    return ScopeLimits(getattr(budget, tokens), getattr(budget, cost))


@lru_cache(maxsize=4096)
def budget_kinds(budget: ScopeBudget) -> tuple[str, ...]:
    """The windows a budget keeps: the kinds it limits."""
    return tuple(k for k in SCOPE_WINDOW_KINDS
                 if any(v is not None for v in (scope_limits(budget, k).tokens, scope_limits(budget, k).cost_usd)))


_bounds: dict[tuple[Any, ...], Bounds] = {}


def budget_windows(budget: ScopeBudget, at: datetime, tz: ZoneInfo) -> list[Bounds]:
    """The budget's windows in force at ``at``. Each window's bounds are kept while ``at`` stays
    inside them (they take zone arithmetic, and the gate asks for them on every call); a rolling
    window's key holds its ``every`` and ``start``, so a changed budget gets its own."""
    out = []
    for kind in budget_kinds(budget):
        key = (kind, tz, budget.every_days, budget.start) if kind == "every" else (kind, tz)
        b = _bounds.get(key)
        if b is None or not b.start <= at < b.reset_at:
            b = scope_bounds(kind, at, tz, budget)
            if b is None:
                continue
            if len(_bounds) > 4096:
                _bounds.clear()
            _bounds[key] = b
        out.append(b)
    return out


def window_name(kind: str, period: str) -> str:
    """"monthly", "weekly", or "7-day" (a rolling window's label ends in +Nd)."""
    if kind == "every":
        return f"{period.rpartition('+')[2].rstrip('d')}-day"
    return ADJECTIVE[kind]


def local_text(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def call_scopes(account_id: str, stored_tenant: str | None = None, tenant_id: str | None = None,
                service: str | None = None, model: str | None = None, project_id: str | None = None,
                api_key: str | None = None) -> list[str]:
    """Every scope a call falls under: the tenant it names and the account's stored tenant (both,
    when they differ), the account's membership of each, the service, the model, the project and
    the key. Unattributed usage has no member scope."""
    scopes: list[str] = []
    for tenant in dict.fromkeys(t for t in (tenant_id, stored_tenant) if t):
        scopes.append(f"tenant:{tenant}")
        if account_id and account_id != UNATTRIBUTED:
            scopes.append(f"member:{account_id}@{tenant}")
    for kind, value in (("service", service), ("model", model), ("project", project_id), ("key", api_key)):
        if value:
            scopes.append(f"{kind}:{value}")
    return scopes


def days_of(b: Bounds, tz: ZoneInfo) -> tuple[date, date]:
    """The first and last local day of a window."""
    return b.start.astimezone(tz).date(), (b.reset_at - timedelta(seconds=1)).astimezone(tz).date()
