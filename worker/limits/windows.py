"""Rate-limit and budget windows: boundaries, tiers and limits, rollover, refresh from the ledger,
reads (live increments: ``worker.limits.live``).

Each account has a current window per kind: ``day`` and ``month`` always (local
calendar days and months in the configured time zone, 23/25 hours across DST),
``minute`` and ``hour`` when its tier limits requests per minute/hour. A window
counts requests, tokens and cost between ``window_start`` and ``reset_at``. A window
exists only once there is usage in it (the limits job, ``worker.limits.sync``, creates
it for the accounts ingest marked; the gate's ``record`` for a call): a window that is
not there is empty, and the gate reads it so.

Everything here is safe with several workers on one database: a window is created
with an insert that ignores conflicts on (account, kind, window_start); it is
closed with a conditional update (``closed_at IS NULL``), so two replicas never
reset it twice; usage is added with ``used = used + n`` in one UPDATE that matches
the window by time, so an increment racing a reset lands in the window its time
belongs to and is never lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, or_, select, update

from worker.clock import local_day_bounds, month_start, next_month
from worker.sql import POSTGRESQL, insert_ignore, insert_rows_ignore, one_of, partial_index_scan
from worker.models import UNATTRIBUTED, WINDOW_KINDS, Account, LimitWindow
from worker.settings import Settings, TierSettings

logger = logging.getLogger(__name__)

# kind -> the tier's (requests, tokens, cost) limit for that window
KIND_LIMITS = {
    "minute": ("requests_per_minute", None, None),
    "hour": ("requests_per_hour", None, None),
    "day": ("requests_per_day", "daily_tokens", "daily_cost_usd"),
    "month": ("requests_per_month", "monthly_tokens", "monthly_cost_usd"),
}
BUDGET_KINDS = ("day", "month")  # the windows with token/cost budgets; always kept
RATE_KINDS = ("minute", "hour")  # kept only where the tier limits them
ZERO = Decimal(0)
BULK_ROWS = 10  # more windows than this are inserted as one document (insert_windows)


@dataclass(frozen=True)
class Bounds:
    kind: str
    start: datetime  # UTC
    reset_at: datetime  # UTC
    period: str  # the local label: 2026-11-23T14:05, 2026-11-23T14, 2026-11-23, 2026-11


def bounds(kind: str, at: datetime, tz: ZoneInfo) -> Bounds:
    """The window of ``kind`` that contains ``at``; day and month are cut in local time."""
    local = at.astimezone(tz)
    if kind == "minute":
        start = at.astimezone(UTC).replace(second=0, microsecond=0)
        return Bounds(kind, start, start + timedelta(minutes=1), local.strftime("%Y-%m-%dT%H:%M"))
    if kind == "hour":  # local clock hours (a +05:30 zone's hours start at :30 UTC)
        start = (at - timedelta(minutes=local.minute, seconds=local.second,
                                microseconds=local.microsecond)).astimezone(UTC)
        return Bounds(kind, start, start + timedelta(hours=1), local.strftime("%Y-%m-%dT%H"))
    if kind == "day":
        start, end = local_day_bounds(local.date(), tz)
        return Bounds(kind, start, end, local.date().isoformat())
    if kind == "month":
        first = month_start(local.date())
        start = local_day_bounds(first, tz)[0]
        end = local_day_bounds(next_month(first), tz)[0]
        return Bounds(kind, start, end, first.isoformat()[:7])
    raise ValueError(f"window kind must be one of {', '.join(WINDOW_KINDS)}, got {kind!r}")


@dataclass(frozen=True)
class Limits:
    requests: int | None = None
    tokens: int | None = None
    cost_usd: Decimal | None = None


def limits_for(tier: TierSettings | None, kind: str) -> Limits:
    if tier is None:
        return Limits()
    requests, tokens, cost = KIND_LIMITS[kind]
    return Limits(getattr(tier, requests), getattr(tier, tokens) if tokens else None,
                  getattr(tier, cost) if cost else None)


def kinds_for(tier: TierSettings | None) -> tuple[str, ...]:
    """The windows an account keeps: day and month always, minute/hour where limited."""
    rate = tuple(k for k in RATE_KINDS if limits_for(tier, k).requests is not None)
    return rate + BUDGET_KINDS


def resolve_tier(settings: Settings, account_id: str, stored: str | None) -> TierSettings | None:
    """The account's tier: its own, else default_tier. Unattributed usage has none (never limited)."""
    if account_id == UNATTRIBUTED:
        return None
    if stored and stored in settings.tiers:
        return settings.tiers[stored]
    if stored:
        logger.warning("account's tier is not configured; using default_tier",
                       extra={"action": "unknown_tier", "account": account_id, "tier": stored})
    return settings.tiers.get(settings.default_tier) if settings.default_tier else None


def account_tiers(conn: Connection, settings: Settings,
                  account_ids: Iterable[str] | None = None) -> dict[str, TierSettings | None]:
    """Tier per account: every account in the accounts table, plus ``account_ids``."""
    stored = dict(conn.execute(select(Account.account_id, Account.tier)).all())
    wanted = set(stored) | set(account_ids or ())
    return {a: resolve_tier(settings, a, stored.get(a)) for a in sorted(wanted)}


def tiers_of(conn: Connection, settings: Settings, account_ids: Iterable[str]) -> dict[str, TierSettings | None]:
    """Tier per account, for just these accounts (one query per thousand)."""
    wanted = sorted(set(account_ids))
    stored: dict[str, str | None] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start:start + 1000]
        stored.update(conn.execute(select(Account.account_id, Account.tier)
                                   .where(one_of(Account.account_id, chunk, conn.dialect.name))).all())
    return {a: resolve_tier(settings, a, stored.get(a)) for a in wanted}


def tier_of(conn: Connection, settings: Settings, account_id: str) -> TierSettings | None:
    stored = conn.execute(select(Account.tier).where(Account.account_id == account_id)).scalar()
    return resolve_tier(settings, account_id, stored)


def new_window(account_id: str, b: Bounds, tier: TierSettings | None, now: datetime,
                used: tuple[int, int, Decimal] = (0, 0, ZERO)) -> dict[str, Any]:
    lim = limits_for(tier, b.kind)
    requests, tokens, cost = used
    return dict(account_id=account_id, kind=b.kind, window_start=b.start, reset_at=b.reset_at, period=b.period,
                tier=tier.name if tier else None, action=tier.action if tier else None,
                limit_requests=lim.requests, limit_tokens=lim.tokens, limit_cost_usd=lim.cost_usd,
                ledger_requests=requests, ledger_tokens=tokens, ledger_cost_usd=cost,
                live_requests=0, live_tokens=0, live_cost_usd=ZERO,
                used_requests=requests, used_tokens=tokens, used_cost_usd=cost,
                state="ok", created_at=now, updated_at=now, revision=1,
                evaluated_revision=1 if lim.tokens is None and lim.cost_usd is None else 0)  # see judged_if_no_budget


def insert_windows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert these windows, ignoring those already there (another replica, a racing call). A
    handful (the gate's), or any number on SQLite: a plain (executemany) INSERT; a batch on
    PostgreSQL (the limits job's): one statement per 5,000 (``worker.sql.insert_rows_ignore``)."""
    keys = ["account_id", "kind", "window_start"]
    if len(rows) > BULK_ROWS and conn.dialect.name == POSTGRESQL:
        insert_rows_ignore(conn, LimitWindow, keys, rows, (LimitWindow.id,))
    elif rows:
        conn.execute(insert_ignore(conn.dialect.name, LimitWindow, keys), rows)


def in_force(at: datetime):
    """The windows whose time range contains ``at`` (matched by time, not by the closed flag)."""
    return and_(LimitWindow.window_start <= at, LimitWindow.reset_at > at)


def judged_if_no_budget() -> Any:
    """``evaluated_revision`` after a change of usage (``revision + 1``): a window with neither a
    token nor a cost limit has nothing the budgets job could judge (no level, no state, no
    projection), so it stays judged rather than entering the partial index of windows to
    judge. Limits changing (:func:`retier`) always leave a window to judge."""
    lw = LimitWindow
    nothing = and_(lw.limit_tokens.is_(None), lw.limit_cost_usd.is_(None), lw.evaluated_revision == lw.revision)
    return case((nothing, lw.revision + 1), else_=lw.evaluated_revision)


def larger(column: Any, value: Any) -> Any:
    """max(column, value) evaluated in the UPDATE, against the row's value at that moment."""
    return case((column > value, column), else_=value)


def retier(conn: Connection, w: Any, tier: TierSettings | None, now: datetime) -> bool:
    """Follow a tier change (or changed tier settings) in a current window."""
    lim = limits_for(tier, w.kind)
    name, action = (tier.name, tier.action) if tier else (None, None)
    if (w.tier, w.action, w.limit_requests, w.limit_tokens, w.limit_cost_usd) == (
            name, action, lim.requests, lim.tokens, lim.cost_usd):
        return False
    conn.execute(update(LimitWindow).where(LimitWindow.id == w.id).values(
        tier=name, action=action, limit_requests=lim.requests, limit_tokens=lim.tokens,
        limit_cost_usd=lim.cost_usd, updated_at=now, revision=LimitWindow.revision + 1))
    return True


def apply_tier(conn: Connection, settings: Settings, account_id: str, now: datetime) -> int:
    """After ``accounts set``: the account's current windows take its tier's limits at once."""
    tier = tier_of(conn, settings, account_id)
    windows = conn.execute(select(LimitWindow).where(LimitWindow.account_id == account_id,
                                                     LimitWindow.closed_at.is_(None), in_force(now))).all()
    return sum(retier(conn, w, tier, now) for w in windows)


# --------------------------------------------------------------------------- windows in force


def current_windows(conn: Connection, account_id: str, now: datetime) -> dict[str, Any]:
    """kind -> the window in force for the account (the latest if a stale one is still open)."""
    rows = conn.execute(select(LimitWindow).where(LimitWindow.account_id == account_id, in_force(now))
                        .order_by(LimitWindow.window_start)).all()
    return {w.kind: w for w in rows}


def open_windows(conn: Connection, now: datetime, kinds: Iterable[str] = BUDGET_KINDS) -> list[Any]:
    """Every current window of these kinds, in a stable order (accounts, then kind)."""
    lw = LimitWindow
    return conn.execute(select(lw).where(lw.kind.in_(list(kinds)), lw.closed_at.is_(None), in_force(now))
                        .order_by(lw.account_id, lw.kind)).all()


def windows_to_judge(conn: Connection, now: datetime, account_id: str | None = None) -> list[Any]:
    """The current day/month windows that changed since the budgets job last judged them (the
    partial index ``ix_limit_windows_unevaluated``), or every current one of ``account_id``."""
    lw = LimitWindow
    query = select(lw).where(lw.kind.in_(BUDGET_KINDS), lw.closed_at.is_(None), in_force(now))
    if account_id is not None:
        query = query.where(lw.account_id == account_id)
    else:
        query = query.where(lw.revision != lw.evaluated_revision)
        # through the partial index of the windows to judge, however few (sorted here: ORDER BY
        # account_id would have PostgreSQL walk the unique index over every window instead)
        with partial_index_scan(conn):
            rows = conn.execute(query).all()
        return sorted(rows, key=lambda w: (w.account_id, w.kind))
    return conn.execute(query.order_by(lw.kind)).all()


def mark_judged(conn: Connection, windows: list[Any]) -> int:
    """Record that these windows were judged at the revision read; a window changed meanwhile
    (another revision) stays to be judged. Batched by revision (a handful of values)."""
    lw = LimitWindow
    by_revision: dict[int, list[int]] = {}
    for w in windows:
        if w.revision != w.evaluated_revision:
            by_revision.setdefault(w.revision, []).append(w.id)
    marked = 0
    for revision, ids in by_revision.items():
        for start in range(0, len(ids), 1000):
            marked += conn.execute(update(lw).where(one_of(lw.id, ids[start:start + 1000], conn.dialect.name),
                                                    lw.revision == revision)
                                   .values(evaluated_revision=revision)).rowcount
    return marked


def fraction_used(w: Any) -> float | None:
    """How far along its budget a window is: the largest of tokens/limit and cost/limit."""
    parts = []
    if w.limit_tokens:
        parts.append(w.used_tokens / w.limit_tokens)
    if w.limit_cost_usd:
        parts.append(float(w.used_cost_usd / w.limit_cost_usd))
    return max(parts) if parts else None
