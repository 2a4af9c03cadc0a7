"""What the gate reads and writes on every call: one read, one increment, both built once.

:data:`READ` is the one indexed query behind a decision: the account's stored tier and tenant
(``accounts`` primary key), the kill switch and the scope budgets' change token
(``system_state`` primary key) and the
account's windows in force (``limit_windows`` unique key, account first), left-joined
onto one row so an account with no windows, or none in the accounts table, still
gives its tier and the switch. A window that is not stored counts as empty
(used = 0): the gate never needs the limits job to have materialised it.

:data:`INCREMENT` adds a call to the account's windows in force of the kinds its tier
keeps, in one UPDATE (``live = live + n``, ``used`` = the larger of live and ledger, as
the limits job keeps it) that matches windows by time and returns them, so an increment
racing a reset lands in the window its time belongs to and is never lost. A kind with
no window yet gets one first (insert ignoring conflicts, so two replicas create it once).

Both are SQLAlchemy Core statements with bound parameters, built at import: each call
skips statement construction and hits the compiled cache, and psycopg 3 prepares the
SQL server-side once a connection has run it a few times. They select only the
columns a decision uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Connection, String, and_, bindparam, literal_column, select, update

from worker.limits.killswitch import KILL_SWITCH
from worker.limits.scope_store import REVISION_KEY, token_of
from worker.limits.windows import Bounds, bounds, insert_windows, judged_if_no_budget, kinds_for, larger, new_window
from worker.models import Account, LimitWindow, SystemState
from worker.models.base import Money, UTCDateTime
from worker.settings import TierSettings
from worker.sql import flush_not_awaited

_lw, _acc, _ss = LimitWindow.__table__, Account.__table__, SystemState.__table__
_rev = SystemState.__table__.alias("budgets_revision")  # scope budgets' change token (worker.limits.scope_store)
_ACCOUNT = bindparam("gate_account", type_=String())
_NOW = bindparam("gate_now", type_=UTCDateTime())

# what a decision needs of a window (not the ledger/live split, warnings or history)
WINDOW_COLUMNS = (_lw.c.id, _lw.c.kind, _lw.c.period, _lw.c.window_start, _lw.c.reset_at, _lw.c.used_requests,
                  _lw.c.used_tokens, _lw.c.used_cost_usd, _lw.c.limit_requests, _lw.c.limit_tokens,
                  _lw.c.limit_cost_usd, _lw.c.action, _lw.c.state, _lw.c.blocked_until)
_IN_FORCE = and_(_lw.c.account_id == _ACCOUNT, _lw.c.window_start <= _NOW, _lw.c.reset_at > _NOW)


# the kill switch and the scope budgets' change token, onto a one-row subquery (READ's and read_many's)
_SYSTEM_COLUMNS = (_rev.c.data.label("budgets_revision"), _ss.c.key.label("switch_key"),
                   _ss.c.reason.label("switch_reason"), _ss.c.changed_at.label("switch_changed_at"),
                   _ss.c.changed_by.label("switch_changed_by"))


def _system(one: Any) -> Any:
    return (one.outerjoin(_ss, and_(_ss.c.key == KILL_SWITCH, _ss.c.active.is_(True)))
            .outerjoin(_rev, _rev.c.key == REVISION_KEY))


def _read(one: Any) -> Any:
    return (select(_acc.c.tier.label("stored_tier"), _acc.c.tenant_id.label("stored_tenant"), *_SYSTEM_COLUMNS,
                   *WINDOW_COLUMNS)
            .select_from(_system(one).outerjoin(_acc, _acc.c.account_id == _ACCOUNT).outerjoin(_lw, _IN_FORCE))
            .order_by(_lw.c.window_start))


_ONE = select(literal_column("1").label("one")).subquery("one")
READ = _read(_ONE)
_SYSTEM = select(*_SYSTEM_COLUMNS).select_from(_system(_ONE))  # read_many's: the switch and the token alone

_live_r = _lw.c.live_requests + bindparam("add_requests", type_=BigInteger())
_live_t = _lw.c.live_tokens + bindparam("add_tokens", type_=BigInteger())
_live_c = _lw.c.live_cost_usd + bindparam("add_cost_usd", type_=Money)
INCREMENT = (update(_lw).where(_IN_FORCE, _lw.c.kind.in_(bindparam("gate_kinds", expanding=True)))
             .values(live_requests=_live_r, live_tokens=_live_t, live_cost_usd=_live_c,
                     used_requests=larger(_lw.c.ledger_requests, _live_r),
                     used_tokens=larger(_lw.c.ledger_tokens, _live_t),
                     used_cost_usd=larger(_lw.c.ledger_cost_usd, _live_c), updated_at=_NOW,
                     revision=_lw.c.revision + 1,  # the budgets job judges a window again once it changed,
                     evaluated_revision=judged_if_no_budget())  # if there is a budget to judge it by
             .returning(*WINDOW_COLUMNS))
# The increment a record makes on PostgreSQL, alone on an autocommit connection: its commit does not
# wait for the WAL flush (worker.sql.flush_not_awaited; worker.gate says why that is safe).
INCREMENT_RELAXED = flush_not_awaited(INCREMENT)


@dataclass(frozen=True)
class KillSwitchOn:
    reason: str | None
    changed_at: datetime
    changed_by: str


@dataclass(frozen=True)
class LiveState:
    """One account as the gate sees it at one instant."""

    stored_tier: str | None  # the accounts table's tier (None: no row, or the default tier)
    kill_switch: KillSwitchOn | None  # None: off
    windows: dict[str, Any]  # kind -> the stored window in force (the latest if a stale one is still open)
    stored_tenant: str | None = None  # the accounts table's tenant
    budgets_revision: str | None = None  # the stored scope budgets' change token (None: never changed)


def read(conn: Connection, account_id: str, now: datetime) -> LiveState:
    """The account's state."""
    rows = conn.execute(READ, {"gate_account": account_id, "gate_now": now}).all()
    first = rows[0]
    switch = None if first.switch_key is None else KillSwitchOn(first.switch_reason, first.switch_changed_at,
                                                                first.switch_changed_by)
    return LiveState(first.stored_tier, switch, {w.kind: w for w in rows if w.id is not None}, first.stored_tenant,
                     token_of(first.budgets_revision))


def read_many(conn: Connection, account_ids: list[str], now: datetime) -> dict[str, LiveState]:
    """:func:`read` for a page of accounts at one instant, in three indexed queries (their accounts
    rows, their windows in force, the switch and the budgets' token), not one each."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    stored = {r.account_id: r for r in conn.execute(
        select(_acc.c.account_id, _acc.c.tier, _acc.c.tenant_id).where(_acc.c.account_id.in_(ids)))}
    windows: dict[str, dict[str, Any]] = {a: {} for a in ids}
    for w in conn.execute(select(_lw.c.account_id, *WINDOW_COLUMNS)
                          .where(_lw.c.account_id.in_(ids), _lw.c.window_start <= now, _lw.c.reset_at > now)
                          .order_by(_lw.c.window_start)):
        windows[w.account_id][w.kind] = w  # the latest of a kind wins, as in read
    system = conn.execute(_SYSTEM).one()
    switch = None if system.switch_key is None else KillSwitchOn(system.switch_reason, system.switch_changed_at,
                                                                 system.switch_changed_by)
    revision = token_of(system.budgets_revision)
    return {a: LiveState(stored[a].tier if a in stored else None, switch, windows[a],
                         stored[a].tenant_id if a in stored else None, revision) for a in ids}


def record(conn: Connection, tz: ZoneInfo, account_id: str, tier: TierSettings | None, state: LiveState,
           now: datetime, *, requests: int = 1, tokens: int = 0, cost_usd: Decimal = Decimal(0),
           relaxed: bool = False) -> LiveState:
    """Add a call to every window in force of the kinds the tier keeps; ``state`` is what :func:`read`
    gave. Returns the state with the windows as the increment left them. ``relaxed`` (PostgreSQL,
    an autocommit connection): :data:`INCREMENT_RELAXED`."""
    if requests < 0 or tokens < 0 or cost_usd < 0:
        raise ValueError("requests, tokens and cost_usd must not be negative")
    kinds = kinds_for(tier)
    if missing := [k for k in kinds if k not in state.windows]:
        insert_windows(conn, [new_window(account_id, current_bounds(k, now, tz), tier, now) for k in missing])
    counted = conn.execute(INCREMENT_RELAXED if relaxed else INCREMENT, {
        "gate_account": account_id, "gate_now": now, "gate_kinds": list(kinds), "add_requests": requests,
        "add_tokens": tokens, "add_cost_usd": cost_usd}).all()
    windows = dict(state.windows)
    windows.update({w.kind: w for w in sorted(counted, key=lambda w: w.window_start)})
    if lost := [k for k in kinds if k not in {w.kind for w in counted}]:
        raise RuntimeError(f"no {', '.join(lost)} window in force for {account_id} at {now.isoformat()}")
    return LiveState(state.stored_tier, state.kill_switch, windows, state.stored_tenant, state.budgets_revision)


_bounds: dict[tuple[str, ZoneInfo], Bounds] = {}


def current_bounds(kind: str, now: datetime, tz: ZoneInfo) -> Bounds:
    """``windows.bounds``, kept per kind and zone while ``now`` is inside it (a day's bounds take
    zone arithmetic; the gate asks for them on every call of an account with no stored window)."""
    key = (kind, tz)
    b = _bounds.get(key)
    if b is None or not b.start <= now < b.reset_at:
        b = _bounds[key] = bounds(kind, now, tz)
    return b
