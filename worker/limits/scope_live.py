"""What the gate reads and writes for the scopes of a call: one read, one increment, built once.

:data:`READ` is one indexed query for every scope of a call that has a budget (the
``scope_windows`` unique key, scope first): the windows in force of all of them at once.
:data:`INCREMENT` adds a call to those windows in one ``UPDATE … RETURNING`` (``live = live + n``,
``used`` = the larger of live and ledger, revision + 1 so the budgets job judges them), after
the windows missing for the budgets' current bounds are inserted (ignoring conflicts, so two
replicas create one). As in ``worker.limits.live``, windows are matched by time, so an
increment racing a reset lands in the window its time belongs to.

A stored window counts only if it has the bounds the budget gives now (a rolling window
whose ``every`` or ``start`` changed is a new, empty window: nothing carries over).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Connection, and_, bindparam, select, update

from worker.limits.scope_sync import new_scope_window
from worker.limits.scope_windows import budget_windows
from worker.limits.windows import Bounds, larger
from worker.models import ScopeWindow
from worker.models.base import Money, UTCDateTime
from worker.settings import ScopeBudget
from worker.sql import flush_not_awaited, insert_ignore

_sw = ScopeWindow.__table__
_NOW = bindparam("scope_now", type_=UTCDateTime())
COLUMNS = (_sw.c.scope, _sw.c.kind, _sw.c.period, _sw.c.window_start, _sw.c.reset_at, _sw.c.used_requests,
           _sw.c.used_tokens, _sw.c.used_cost_usd, _sw.c.state)
_IN_FORCE = and_(_sw.c.scope.in_(bindparam("scopes", expanding=True)), _sw.c.window_start <= _NOW,
                 _sw.c.reset_at > _NOW, _sw.c.closed_at.is_(None))
READ = select(*COLUMNS).where(_IN_FORCE)

_live_r = _sw.c.live_requests + bindparam("add_requests", type_=BigInteger())
_live_t = _sw.c.live_tokens + bindparam("add_tokens", type_=BigInteger())
_live_c = _sw.c.live_cost_usd + bindparam("add_cost_usd", type_=Money)
INCREMENT = (update(_sw).where(_IN_FORCE)
             .values(live_requests=_live_r, live_tokens=_live_t, live_cost_usd=_live_c,
                     used_requests=larger(_sw.c.ledger_requests, _live_r),
                     used_tokens=larger(_sw.c.ledger_tokens, _live_t),
                     used_cost_usd=larger(_sw.c.ledger_cost_usd, _live_c), updated_at=_NOW,
                     revision=_sw.c.revision + 1)
             .returning(*COLUMNS))
INCREMENT_RELAXED = flush_not_awaited(INCREMENT)  # alone on an autocommit connection, as live.INCREMENT_RELAXED

Key = tuple[str, str, datetime, datetime]  # scope, kind, start, reset_at


def _keyed(rows: Any) -> dict[Key, Any]:
    return {(w.scope, w.kind, w.window_start, w.reset_at): w for w in rows}


def read(conn: Connection, scopes: list[str], now: datetime) -> dict[Key, Any]:
    """The stored windows in force of these scopes."""
    return _keyed(conn.execute(READ, {"scopes": scopes, "scope_now": now}))


def expected(budgets: dict[str, ScopeBudget], now: datetime, tz: ZoneInfo) -> dict[Key, tuple[str, Bounds]]:
    """Every window the budgets keep at ``now``."""
    out = {}
    for scope, budget in budgets.items():
        for b in budget_windows(budget, now, tz):
            out[(scope, b.kind, b.start, b.reset_at)] = (scope, b)
    return out


def record(conn: Connection, budgets: dict[str, ScopeBudget], stored: dict[Key, Any], now: datetime,
           tz: ZoneInfo, *, requests: int, tokens: int, cost_usd: Decimal,
           relaxed: bool = False) -> dict[Key, Any]:
    """Count a call in these budgets' windows in force; ``stored`` is what :func:`read` gave.
    Returns the windows as the increment left them (``relaxed``: :data:`INCREMENT_RELAXED`)."""
    wanted = expected(budgets, now, tz)
    if missing := [new_scope_window(scope, b, budgets[scope], now) for key, (scope, b) in wanted.items()
                   if key not in stored]:
        conn.execute(insert_ignore(conn.dialect.name, ScopeWindow, ["scope", "kind", "window_start"]), missing)
    return _keyed(conn.execute(INCREMENT_RELAXED if relaxed else INCREMENT, {
        "scopes": sorted(budgets), "scope_now": now, "add_requests": requests, "add_tokens": tokens,
        "add_cost_usd": cost_usd}))
