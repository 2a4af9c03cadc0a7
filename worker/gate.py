"""The gate apps check before calling an LLM.

    from worker import gate

    decision = gate.check("user-42")
    if not decision.can_call:
        raise QuotaExceeded(decision.reason, decision.reset_at)
    ... call the LLM ...
    gate.record("user-42", tokens=usage.total_tokens)   # optional: live rate limiting

    gate.check("user-42", tenant_id="school-a", service="essay-feedback", model="gpt-4o")

``check`` and ``record`` also take what the call says about itself (``tenant_id``, ``service``,
``model``, ``project_id``, ``api_key``): every scope it falls under that has a budget is checked
too (``worker.gate_scopes``: the account's tenant, its membership of it, the service, the model,
the project and the key), and a refusal names the scope ("tenant school-a monthly budget,
resets 2026-12-01 00:00 EST"; ``Decision.scope`` is ``tenant:school-a``).

``check`` is false when the kill switch is on, one of the account's windows is
blocked (a ``block`` tier over its budget), or a request limit for the current
minute/hour/day/month is used up. It never relies on the limits job having run on
time: a window whose ``reset_at`` has passed counts as reset, and a window that is not
there (windows exist only for accounts with usage in them) counts as empty, with the
tier's limits. Unattributed usage
is never limited. The module-level functions use the settings from
``TOKENTALLY_CONFIG`` (or ./settings.toml) and their own engine; pass ``session=``
(a SQLAlchemy session on the tokentally database) to run inside your transaction,
or build a :class:`Gate` with explicit settings and engine.

At memory speed: a decision is one indexed query (``worker.limits.live.READ``: the
account's tier, the kill switch and its windows in force, left-joined), built once and
prepared by psycopg; a window that is not stored counts as empty. The settings and
tiers are held in the process (the default gate reloads them when the file or the
environment changes). A record is that read and one UPDATE … RETURNING over the windows
(after creating missing ones), whose commit does not wait for the disk. On PostgreSQL
they run on an autocommit connection, so no BEGIN and COMMIT round trips: each increment
is atomic on its own (``used = used + n`` in the row) and commits with
``synchronous_commit = off``, set by the statement itself
(``worker.limits.live.INCREMENT_RELAXED``); on SQLite they are one transaction, in WAL
with ``synchronous=NORMAL``. That is safe because the gate's live counters are not the
books: the ledger is the truth, and the limits job refreshes every window's ``used_*``
from it (the larger of ledger and live), so a crash that loses the last few hundred
milliseconds of increments (or the scopes' increment of a call whose account's
increment committed) loses nothing once those calls' events are ingested. Commits stay
in order; only their durability is relaxed. With ``session=`` the record is part of the
caller's transaction, which keeps its own durability.

Correct across replicas and resets: nothing that decides is cached between calls
(the account's tier, the switch and the windows are read each time), windows are
matched by time, and the increment is ``used = used + n`` in the row.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from worker import clock, db, gate_scopes
from worker.gate_scopes import NO_CALL, Call
from worker.limits import live, scope_live, scope_store, windows as limits
from worker.limits.windows import fraction_used
from worker.models import UNATTRIBUTED
from worker.settings import ENV_PREFIX, ScopeBudget, Settings, SettingsError, TierSettings, config_path, load_gate
from worker.sql import POSTGRESQL, single_statements

logger = logging.getLogger(__name__)

REASONS = {
    "ok": "within every limit",
    "over_soft_limit": "over a budget whose tier only warns or alerts: calls go on",
    "budget_exhausted": "a hard (block) budget is used up until the window resets",
    "blocked": "the window is blocked until it resets",
    "rate_limited": "the request limit of a window is used up until it resets",
    "kill_switch": "the system-wide kill switch is on (an operator must clear it)",
}


@dataclass(frozen=True)
class Decision:
    can_call: bool
    reason: str  # one of REASONS
    remaining_requests: int | None  # None: not limited
    remaining_tokens: int | None
    remaining_cost_usd: Decimal | None
    reset_at: datetime | None  # when can_call turns true again, or when the tightest window resets
    account_id: str = ""
    tier: str | None = None
    detail: str = ""
    scope: str | None = None  # the scope whose budget refused (or is used up), e.g. "tenant:school-a"

    def as_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "tier": self.tier, "scope": self.scope, "can_call": self.can_call,
                "reason": self.reason, "detail": self.detail, "remaining_requests": self.remaining_requests,
                "remaining_tokens": self.remaining_tokens,
                "remaining_cost_usd": None if self.remaining_cost_usd is None else str(self.remaining_cost_usd),
                "reset_at": self.reset_at.isoformat() if self.reset_at else None}


@dataclass(frozen=True)
class WindowView:
    """One window as the gate sees it: the stored row, or a fresh one if none is in force."""

    kind: str
    period: str
    window_start: datetime
    reset_at: datetime
    used_requests: int
    used_tokens: int
    used_cost_usd: Decimal
    limit_requests: int | None
    limit_tokens: int | None
    limit_cost_usd: Decimal | None
    action: str | None
    state: str
    blocked_until: datetime | None
    stored: bool

    def remaining(self, used: Any, limit: Any) -> Any:
        return None if limit is None else max(limit - used, 0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: used, limit and remaining of each measure (money as decimal strings)."""
        def money(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {"kind": self.kind, "period": self.period, "window_start": self.window_start.isoformat(),
                "reset_at": self.reset_at.isoformat(), "used_requests": self.used_requests,
                "limit_requests": self.limit_requests,
                "remaining_requests": self.remaining(self.used_requests, self.limit_requests),
                "used_tokens": self.used_tokens, "limit_tokens": self.limit_tokens,
                "remaining_tokens": self.remaining(self.used_tokens, self.limit_tokens),
                "used_cost_usd": str(self.used_cost_usd), "limit_cost_usd": money(self.limit_cost_usd),
                "remaining_cost_usd": money(self.remaining(self.used_cost_usd, self.limit_cost_usd)),
                "state": self.state, "blocked_until": self.blocked_until.isoformat() if self.blocked_until else None}


_LOOK_UP = object()


def windows(conn: Connection, settings: Settings, account_id: str, now: datetime,
            tier: Any = _LOOK_UP, stored: dict[str, Any] | None = None) -> list[WindowView]:
    """The account's windows in force now, every kind its tier keeps (``tier``: already looked up;
    None is "no tier")."""
    state = live.read(conn, account_id, now)
    if tier is _LOOK_UP:
        tier = limits.resolve_tier(settings, account_id, state.stored_tier)
    return _views(settings, state, tier, now)


def _views(settings: Settings, state: live.LiveState, tier: TierSettings | None, now: datetime) -> list[WindowView]:
    views = []
    for kind in limits.KIND_LIMITS:
        w = state.windows.get(kind)
        if w is not None:
            views.append(WindowView(kind, w.period, w.window_start, w.reset_at, w.used_requests, w.used_tokens,
                                    w.used_cost_usd, w.limit_requests, w.limit_tokens, w.limit_cost_usd,
                                    w.action, w.state, w.blocked_until, True))
        elif kind in limits.kinds_for(tier):  # not stored: empty
            b = live.current_bounds(kind, now, settings.tz)
            lim = limits.limits_for(tier, kind)
            views.append(WindowView(kind, b.period, b.start, b.reset_at, 0, 0, Decimal(0), lim.requests,
                                    lim.tokens, lim.cost_usd, tier.action if tier else None, "ok", None, False))
    return views


def decide(conn: Connection, settings: Settings, account_id: str | None, now: datetime | None = None,
           call: Call = NO_CALL, budgets: dict[str, ScopeBudget] | None = None) -> Decision:
    """The decision for the account (and the call's scopes) now: one query
    (:data:`worker.limits.live.READ`), and one more for the call's scopes that have a budget
    (``budgets``: the scope budgets in force, read from the database when not given)."""
    now = now or clock.now()
    account_id = account_id or UNATTRIBUTED
    state = live.read(conn, account_id, now)
    if budgets is None:
        budgets = scope_store.all_budgets(conn, settings)
    return _with_scopes(conn, settings, account_id, state, budgets, call, now)


def _with_scopes(conn: Connection, settings: Settings, account_id: str, state: live.LiveState,
                 budgets: dict[str, ScopeBudget], call: Call, now: datetime,
                 counted: dict[scope_live.Key, Any] | None = None) -> Decision:
    decision = _decision(settings, account_id, state, limits.resolve_tier(settings, account_id, state.stored_tier),
                         now)
    mine = gate_scopes.budgeted(budgets, account_id, state.stored_tenant, call)
    if not mine or decision.reason == "kill_switch":
        return decision
    stored = counted if counted is not None else scope_live.read(conn, sorted(mine), now)
    return gate_scopes.merge(decision, gate_scopes.verdict(gate_scopes.views(mine, stored, now, settings.tz),
                                                           settings.tz))


def decide_many(conn: Connection, settings: Settings, account_ids: list[str],
                now: datetime | None = None) -> dict[str, Decision]:
    """:func:`decide` for a page of accounts (the console lists many), at one instant: their states in
    three queries (:func:`worker.limits.live.read_many`), and one more for each account whose tenant or
    membership has a budget."""
    now = now or clock.now()
    budgets = scope_store.all_budgets(conn, settings)
    states = live.read_many(conn, account_ids, now)
    return {a: _with_scopes(conn, settings, a, states[a], budgets, NO_CALL, now) for a in account_ids}


def _decision(settings: Settings, account_id: str, state: live.LiveState, tier: TierSettings | None,
              now: datetime) -> Decision:
    tier_name = tier.name if tier else None
    switch = state.kill_switch
    if switch is not None:
        return Decision(False, "kill_switch", 0, 0, Decimal(0), None, account_id, tier_name,
                        f"kill switch on since {switch.changed_at.isoformat()} ({switch.changed_by}): {switch.reason}")
    views = _views(settings, state, tier, now)
    remaining_requests = gate_scopes.least(v.remaining(v.used_requests, v.limit_requests) for v in views)
    remaining_tokens = gate_scopes.least(v.remaining(v.used_tokens, v.limit_tokens) for v in views)
    remaining_cost = gate_scopes.least(v.remaining(v.used_cost_usd, v.limit_cost_usd) for v in views)
    refusals: list[tuple[str, datetime, str]] = []  # (reason, until, detail)
    soft: list[str] = []
    for v in views:
        if v.state == "blocked" and (v.blocked_until is None or v.blocked_until > now):
            refusals.append(("blocked", v.blocked_until or v.reset_at, f"{v.kind} {v.period} blocked"))
        if v.limit_requests is not None and v.used_requests >= v.limit_requests:
            refusals.append(("rate_limited", v.reset_at,
                             f"{v.used_requests} of {v.limit_requests} requests this {v.kind}"))
        fraction = fraction_used(v)
        if fraction is not None and fraction >= 1:
            detail = f"{v.kind} {v.period} budget used ({fraction:.0%})"
            if v.action == "block":
                refusals.append(("budget_exhausted", v.reset_at, detail))
            else:
                soft.append(f"{detail}; tier action {v.action}")
    common = (remaining_requests, remaining_tokens, remaining_cost)
    if refusals:
        order = ["blocked", "budget_exhausted", "rate_limited"]
        reason = min((r for r, _, _ in refusals), key=order.index)
        until = max(u for _, u, _ in refusals)  # every refusal must have lifted
        return Decision(False, reason, *common, until, account_id, tier_name, "; ".join(d for _, _, d in refusals))
    limited = [v.reset_at for v in views if v.limit_requests or v.limit_tokens or v.limit_cost_usd]
    if soft:
        return Decision(True, "over_soft_limit", *common, min(limited) if limited else None, account_id,
                        tier_name, "; ".join(soft))
    detail = "unattributed usage is never limited" if account_id == UNATTRIBUTED else (
        "no limits" if tier is None else REASONS["ok"])
    return Decision(True, "ok", *common, min(limited) if limited else None, account_id, tier_name, detail)


class Gate:
    """check/record against one tokentally database.

    A check runs :func:`decide` on a pooled connection, outside a transaction (one
    statement: no BEGIN/ROLLBACK round trips, :func:`worker.sql.single_statements`), and
    again once on a fresh connection when the pooled one turns out dead. A record is the read
    and the increment (creating missing windows first), on PostgreSQL on that autocommit
    connection with relaxed increments (two round trips), on SQLite in one transaction; the
    decision comes from the windows the increment returned, so nothing is read twice. A record
    is never retried: its increment may have counted."""

    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine
        self._single = single_statements(engine)
        # the scope budgets in force, with the stored budgets' token they were read at
        self._budgets: tuple[str | None, dict[str, ScopeBudget]] | None = None

    def budgets(self, conn: Connection, token: str | None) -> dict[str, ScopeBudget]:
        """The scope budgets, read again only when the stored ones changed (another token; none:
        nothing was ever stored, so the settings' are all there is)."""
        cached = self._budgets
        if cached is None or cached[0] != token:
            budgets = scope_store.all_budgets(conn, self.settings) if token else dict(self.settings.scope_budgets)
            cached = self._budgets = (token, budgets)
        return cached[1]

    def check(self, account_id: str | None, *, session: Any = None, tenant_id: str | None = None,
              service: str | None = None, model: str | None = None, project_id: str | None = None,
              api_key: str | None = None) -> Decision:
        call = Call(tenant_id, service, model, project_id, api_key)
        if session is not None:
            return self._check(session.connection(), account_id, call)
        try:
            with self._single.connect() as conn:
                return self._check(conn, account_id, call)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        # the pooled connection had died (a database restart since it was last used: worker.db
        # pings only connections idle for a while); a read, so once more on a fresh one
        with self._single.connect() as conn:
            return self._check(conn, account_id, call)

    def _check(self, conn: Connection, account_id: str | None, call: Call) -> Decision:
        now = clock.now()
        account_id = account_id or UNATTRIBUTED
        state = live.read(conn, account_id, now)
        return _with_scopes(conn, self.settings, account_id, state, self.budgets(conn, state.budgets_revision),
                            call, now)

    def record(self, account_id: str | None, *, requests: int = 1, tokens: int = 0,
               cost_usd: Decimal | int | str = 0, session: Any = None, tenant_id: str | None = None,
               service: str | None = None, model: str | None = None, project_id: str | None = None,
               api_key: str | None = None) -> Decision:
        """Count a call now (atomic ``used = used + n`` in every window in force, the account's and
        its budgeted scopes'); returns the new decision. With ``session=`` it is part of the
        caller's transaction and counts once that commits."""
        account_id = account_id or UNATTRIBUTED
        now = clock.now()
        call = Call(tenant_id, service, model, project_id, api_key)
        if session is not None:
            return self._record(session.connection(), account_id, now, requests, tokens, Decimal(cost_usd), call)
        if self.engine.dialect.name == POSTGRESQL:  # each statement commits itself, the increments relaxed
            with self._single.connect() as conn:
                return self._record(conn, account_id, now, requests, tokens, Decimal(cost_usd), call, relaxed=True)
        with self.engine.begin() as conn:
            return self._record(conn, account_id, now, requests, tokens, Decimal(cost_usd), call)

    def _record(self, conn: Connection, account_id: str, now: datetime, requests: int, tokens: int,
                cost_usd: Decimal, call: Call, relaxed: bool = False) -> Decision:
        state = live.read(conn, account_id, now)
        tier = limits.resolve_tier(self.settings, account_id, state.stored_tier)
        state = live.record(conn, self.settings.tz, account_id, tier, state, now, requests=requests, tokens=tokens,
                            cost_usd=cost_usd, relaxed=relaxed)
        budgets = self.budgets(conn, state.budgets_revision)
        mine = gate_scopes.budgeted(budgets, account_id, state.stored_tenant, call)
        counted = None
        if mine:
            counted = scope_live.record(conn, mine, scope_live.read(conn, sorted(mine), now), now, self.settings.tz,
                                        requests=requests, tokens=tokens, cost_usd=cost_usd, relaxed=relaxed)
        return _with_scopes(conn, self.settings, account_id, state, budgets, call, now, counted)


RECHECK_SECONDS = 1.0  # how often the default gate looks whether its settings changed

_default: Gate | None = None
_source: tuple[Any, ...] | None = None  # what _default's settings were read from
_checked = 0.0  # time.monotonic() of the last look
_lock = threading.Lock()


def _settings_source() -> tuple[Any, ...]:
    """The settings file (path, mtime, size) and the TOKENTALLY_* environment: a change reloads."""
    path = config_path()
    try:
        stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path else None
    except OSError:
        stamp = None
    return str(path), stamp, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX)))


def default_gate() -> Gate:
    """A gate on the configured database (TOKENTALLY_CONFIG / ./settings.toml and TOKENTALLY_* env).

    Only the database, the time zone, the tiers and the budgets are read: no channel or
    provider secret is needed in the application's environment. The settings are kept in
    the process and read again when the file or the environment changes (looked at no more
    than once a second); settings that no longer load leave the last good ones in force,
    with an error logged. The engine is kept unless the database URL changed."""
    global _default, _source, _checked
    gate = _default
    if gate is not None and time.monotonic() - _checked < RECHECK_SECONDS:
        return gate
    with _lock:
        _checked = time.monotonic()
        source = _settings_source()
        if _default is not None and source == _source:
            return _default
        try:
            settings = load_gate()
        except SettingsError as exc:
            if _default is None:
                raise
            logger.error("gate settings no longer load; the last good ones stay in force",
                         extra={"action": "gate_settings_error", "error": str(exc)})
            _source = source
            return _default
        old = _default
        if old is not None and old.settings.database_url == settings.database_url:
            engine = old.engine
        else:
            engine = db.make_engine(settings.database_url)
            if old is not None:
                old.engine.dispose()
        _default, _source = Gate(settings, engine), source
        return _default


def check(account_id: str | None, *, session: Any = None, **call: str | None) -> Decision:
    """``call``: tenant_id, service, model, project_id, api_key (each optional)."""
    return default_gate().check(account_id, session=session, **call)


def record(account_id: str | None, *, requests: int = 1, tokens: int = 0, cost_usd: Decimal | int | str = 0,
           session: Any = None, **call: str | None) -> Decision:
    return default_gate().record(account_id, requests=requests, tokens=tokens, cost_usd=cost_usd, session=session,
                                 **call)
