"""Rate-limit and budget windows: boundaries, rollover, refresh from the ledger (live increments:
``worker.limits.live``).

Each account has a current window per kind: ``day`` and ``month`` always (local
calendar days and months in the configured time zone, 23/25 hours across DST),
``minute`` and ``hour`` when its tier limits requests per minute/hour. A window
counts requests, tokens and cost between ``window_start`` and ``reset_at``.

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

from sqlalchemy import Connection, and_, case, delete, func, or_, select, update

from worker.clock import local_day_bounds, month_start, next_month
from worker.sql import insert_ignore
from worker.models import UNATTRIBUTED, WINDOW_KINDS, Account, LimitWindow, UsageEvent
from worker.settings import Settings, TierSettings
from worker.summaries.usage import usage

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


def tier_of(conn: Connection, settings: Settings, account_id: str) -> TierSettings | None:
    stored = conn.execute(select(Account.tier).where(Account.account_id == account_id)).scalar()
    return resolve_tier(settings, account_id, stored)


def _new_window(account_id: str, b: Bounds, tier: TierSettings | None, now: datetime,
                used: tuple[int, int, Decimal] = (0, 0, ZERO)) -> dict[str, Any]:
    lim = limits_for(tier, b.kind)
    requests, tokens, cost = used
    return dict(account_id=account_id, kind=b.kind, window_start=b.start, reset_at=b.reset_at, period=b.period,
                tier=tier.name if tier else None, action=tier.action if tier else None,
                limit_requests=lim.requests, limit_tokens=lim.tokens, limit_cost_usd=lim.cost_usd,
                ledger_requests=requests, ledger_tokens=tokens, ledger_cost_usd=cost,
                live_requests=0, live_tokens=0, live_cost_usd=ZERO,
                used_requests=requests, used_tokens=tokens, used_cost_usd=cost,
                state="ok", created_at=now, updated_at=now)


def _insert_windows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert_ignore(conn.dialect.name, LimitWindow, ["account_id", "kind", "window_start"]), rows)


def in_force(at: datetime):
    """The windows whose time range contains ``at`` (matched by time, not by the closed flag)."""
    return and_(LimitWindow.window_start <= at, LimitWindow.reset_at > at)


# --------------------------------------------------------------------------- the limits job


@dataclass
class SyncStats:
    closed: int = 0  # windows that reached reset_at and were kept as history
    dropped: int = 0  # expired windows with nothing in them (nothing to keep)
    created: int = 0
    refreshed: int = 0  # windows whose usage changed from the ledger
    retiered: int = 0  # windows whose limits followed a tier change
    pruned: int = 0  # old minute/hour history deleted

    def as_dict(self) -> dict[str, Any]:
        return {"closed": self.closed, "dropped": self.dropped, "created": self.created,
                "refreshed": self.refreshed, "retiered": self.retiered, "pruned": self.pruned}


def sync(conn: Connection, settings: Settings, now: datetime) -> SyncStats:
    """Roll expired windows over, create current windows, refresh usage and limits from the ledger."""
    stats = SyncStats()
    rollover(conn, now, stats)
    tiers = None
    for kind in WINDOW_KINDS:
        b = bounds(kind, now, settings.tz)
        used = usage_per_account(conn, settings, b)
        if tiers is None or set(used) - set(tiers):
            tiers = account_tiers(conn, settings, used)
        _refresh_kind(conn, settings, b, used, tiers, now, stats)
    keep = settings.budgets.keep_rate_windows
    stats.pruned = conn.execute(delete(LimitWindow).where(
        LimitWindow.kind.in_(RATE_KINDS), LimitWindow.closed_at.is_not(None),
        LimitWindow.closed_at < now - keep)).rowcount
    return stats


def rollover(conn: Connection, now: datetime, stats: SyncStats | None = None) -> int:
    """Close every window whose reset_at has passed. A window with nothing in it is dropped
    rather than kept; the next window is created by :func:`sync` (or by the first call
    recorded in it). Conditional on ``closed_at IS NULL``: a second replica closes nothing."""
    stats = stats or SyncStats()
    lw = LimitWindow
    expired = conn.execute(select(lw.id, lw.used_requests, lw.used_tokens, lw.used_cost_usd, lw.state)
                           .where(lw.closed_at.is_(None), lw.reset_at <= now).order_by(lw.id)).all()
    for row in expired:
        empty = not (row.used_requests or row.used_tokens or row.used_cost_usd) and row.state == "ok"
        if empty:
            # nothing counts into an expired window any more (increments match by time)
            stats.dropped += conn.execute(delete(lw).where(
                lw.id == row.id, lw.closed_at.is_(None), lw.used_requests == 0, lw.used_tokens == 0,
                lw.used_cost_usd == 0)).rowcount
        else:
            stats.closed += conn.execute(update(lw).where(lw.id == row.id, lw.closed_at.is_(None))
                                         .values(closed_at=now, updated_at=now)).rowcount
    return stats.closed + stats.dropped


def usage_per_account(conn: Connection, settings: Settings, b: Bounds) -> dict[str, tuple[int, int, Decimal]]:
    """(requests, tokens, cost) per account in the window, from the ledger.

    A month is read from the daily summaries, and from the ledger for the days whose
    summaries are out of date (the same rule as ``tokentally usage``)."""
    if b.kind == "month":
        first = b.start.astimezone(settings.tz).date()
        last = (b.reset_at - timedelta(seconds=1)).astimezone(settings.tz).date()
        return {r.key: (r.requests, r.total_tokens, r.cost_usd) for r in usage(conn, settings.tz, first, last, "account")
                if r.key is not None}
    ev = UsageEvent
    rows = conn.execute(select(ev.account_id, func.count(), func.coalesce(func.sum(ev.total_tokens), 0),
                               func.coalesce(func.sum(ev.cost_usd), 0))
                        .where(ev.occurred_at >= b.start, ev.occurred_at < b.reset_at)
                        .group_by(ev.account_id))
    return {a: (int(n), int(tokens), Decimal(cost)) for a, n, tokens, cost in rows}


def _refresh_kind(conn: Connection, settings: Settings, b: Bounds, used: dict[str, tuple[int, int, Decimal]],
                  tiers: dict[str, TierSettings | None], now: datetime, stats: SyncStats) -> None:
    lw = LimitWindow
    windows = {w.account_id: w for w in conn.execute(
        select(lw).where(lw.kind == b.kind, lw.window_start == b.start, lw.closed_at.is_(None)))}
    new = []
    for account in sorted(set(used) | set(tiers)):
        if account in windows:
            continue
        tier = tiers.get(account) if account in tiers else resolve_tier(settings, account, None)
        if b.kind in RATE_KINDS and (account not in used or b.kind not in kinds_for(tier)):
            continue  # minute/hour windows only where limited and used
        new.append(_new_window(account, b, tier, now, used.get(account, (0, 0, ZERO))))
    _insert_windows(conn, new)
    stats.created += len(new)
    for account, w in sorted(windows.items()):
        requests, tokens, cost = used.get(account, (0, 0, ZERO))
        if (requests, tokens, cost) != (w.ledger_requests, w.ledger_tokens, w.ledger_cost_usd):
            conn.execute(update(lw).where(lw.id == w.id).values(
                ledger_requests=requests, ledger_tokens=tokens, ledger_cost_usd=cost,
                used_requests=_larger(lw.live_requests, requests), used_tokens=_larger(lw.live_tokens, tokens),
                used_cost_usd=_larger(lw.live_cost_usd, cost), updated_at=now))
            stats.refreshed += 1
        tier = tiers.get(account) if account in tiers else resolve_tier(settings, account, None)
        if _retier(conn, w, tier, now):
            stats.retiered += 1


def _larger(column: Any, value: Any) -> Any:
    """max(column, value) evaluated in the UPDATE, against the row's value at that moment."""
    return case((column > value, column), else_=value)


def _retier(conn: Connection, w: Any, tier: TierSettings | None, now: datetime) -> bool:
    """Follow a tier change (or changed tier settings) in a current window."""
    lim = limits_for(tier, w.kind)
    name, action = (tier.name, tier.action) if tier else (None, None)
    if (w.tier, w.action, w.limit_requests, w.limit_tokens, w.limit_cost_usd) == (
            name, action, lim.requests, lim.tokens, lim.cost_usd):
        return False
    conn.execute(update(LimitWindow).where(LimitWindow.id == w.id).values(
        tier=name, action=action, limit_requests=lim.requests, limit_tokens=lim.tokens,
        limit_cost_usd=lim.cost_usd, updated_at=now))
    return True


def apply_tier(conn: Connection, settings: Settings, account_id: str, now: datetime) -> int:
    """After ``accounts set``: the account's current windows take its tier's limits at once."""
    tier = tier_of(conn, settings, account_id)
    windows = conn.execute(select(LimitWindow).where(LimitWindow.account_id == account_id,
                                                     LimitWindow.closed_at.is_(None), in_force(now))).all()
    return sum(_retier(conn, w, tier, now) for w in windows)


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


def blocked_accounts(conn: Connection, now: datetime) -> list[str]:
    lw = LimitWindow
    rows = conn.execute(select(lw.account_id).distinct().where(
        lw.state == "blocked", in_force(now), or_(lw.blocked_until.is_(None), lw.blocked_until > now)))
    return sorted(r[0] for r in rows)


def fraction_used(w: Any) -> float | None:
    """How far along its budget a window is: the largest of tokens/limit and cost/limit."""
    parts = []
    if w.limit_tokens:
        parts.append(w.used_tokens / w.limit_tokens)
    if w.limit_cost_usd:
        parts.append(float(w.used_cost_usd / w.limit_cost_usd))
    return max(parts) if parts else None
