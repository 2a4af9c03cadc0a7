"""The limits job's work: windows rolled over, and refreshed for the accounts that changed.

Work follows what changed, never every account:

* **rollover** is two set-based statements over every kind at once: expired windows
  with nothing in them are deleted, the others closed (``closed_at IS NULL`` in both,
  so a second replica closes nothing; a partial index finds the open windows);
* **refresh** reads the accounts ingest marked (``worker.limits.dirty``), and only
  those: one ledger query per thousand accounts gives every kind's usage at once
  (conditional sums over the month, through the ``(account_id, occurred_at)`` index),
  then the windows that changed are updated in one ``UPDATE … FROM unnest(…)`` and the missing
  ones inserted. An account with no usage in a window gets no window: the gate reads a
  missing window as empty. Every change bumps the window's ``revision``, which is what
  the budgets job judges;
* **tier settings** that changed (settings.toml edited, the daemon restarted) are
  followed in every open window once, when their fingerprint (kept in
  ``system_state``) differs; an account's own tier change is applied at once by
  ``accounts set`` and, for a CSV import, through a mark.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Connection, Numeric, and_, bindparam, case, delete, func, select, update

from worker.limits.dirty import claim_accounts
from worker.limits.fingerprints import changed_once
from worker.limits.windows import (BUDGET_KINDS, RATE_KINDS, ZERO, Bounds, bounds, insert_windows, judged_if_no_budget,
                                   kinds_for, larger, new_window, retier, tiers_of)
from worker.models import WINDOW_KINDS, LimitWindow, UsageEvent
from worker.settings import Settings
from worker.sql import one_of, plan_each_time, unnest_rows, update_from_values
from worker.summaries.usage import usage

CHUNK = 1000  # accounts per ledger query
TIERS_KEY = "limits_tiers"  # system_state row holding the fingerprint of the tier settings last applied

Used = tuple[int, int, Decimal]


@dataclass
class SyncStats:
    closed: int = 0  # windows that reached reset_at and were kept as history
    dropped: int = 0  # expired windows with nothing in them (nothing to keep)
    accounts: int = 0  # accounts refreshed (marked by ingest since the last run)
    created: int = 0
    refreshed: int = 0  # windows whose usage changed from the ledger
    retiered: int = 0  # windows whose limits followed a tier change
    pruned: int = 0  # old minute/hour history deleted

    def as_dict(self) -> dict[str, Any]:
        return {"closed": self.closed, "dropped": self.dropped, "accounts": self.accounts,
                "created": self.created, "refreshed": self.refreshed, "retiered": self.retiered,
                "pruned": self.pruned}


def sync(conn: Connection, settings: Settings, now: datetime) -> SyncStats:
    """Roll expired windows over, refresh the marked accounts' windows, follow changed tier settings."""
    stats = SyncStats()
    plan_each_time(conn)  # the reads name a thousand accounts at a time
    rollover(conn, now, stats)
    month = bounds("month", now, settings.tz)
    first = month.start.astimezone(settings.tz).date()
    # marks of days before this month: those windows have closed (worker.limits.late judges them)
    marked = [a for a, day in claim_accounts(conn, now.astimezone(settings.tz).date()).items() if day >= first]
    stats.accounts = len(marked)
    for start in range(0, len(marked), CHUNK):
        refresh(conn, settings, marked[start:start + CHUNK], now, stats)
    if tiers_changed(conn, settings, now):
        retier_open(conn, settings, now, stats)
    keep = settings.budgets.keep_rate_windows
    stats.pruned = conn.execute(delete(LimitWindow).where(
        LimitWindow.kind.in_(RATE_KINDS), LimitWindow.closed_at.is_not(None),
        LimitWindow.closed_at < now - keep)).rowcount
    return stats


def rollover(conn: Connection, now: datetime, stats: SyncStats | None = None) -> int:
    """Close every window whose reset_at has passed, in two statements for every kind at once.
    A window with nothing in it is dropped rather than kept (nothing counts into an expired
    window any more: increments match by time). The next window appears with the next usage."""
    stats = stats or SyncStats()
    lw = LimitWindow
    expired = and_(lw.closed_at.is_(None), lw.reset_at <= now)
    stats.dropped += conn.execute(delete(lw).where(
        expired, lw.state == "ok", lw.used_requests == 0, lw.used_tokens == 0, lw.used_cost_usd == 0)).rowcount
    # (a closed window is never judged again: it leaves the partial index of the windows to judge)
    stats.closed += conn.execute(update(lw).where(expired).values(
        closed_at=now, updated_at=now, evaluated_revision=lw.revision)).rowcount
    return stats.closed + stats.dropped


def window_usage(conn: Connection, settings: Settings, accounts: list[str], now: datetime
                 ) -> dict[str, dict[str, Used]]:
    """kind -> account -> (requests, tokens, cost) in the window of that kind in force at ``now``,
    for these accounts: one pass over their events of the current month."""
    ev = UsageEvent
    spans = {kind: bounds(kind, now, settings.tz) for kind in WINDOW_KINDS}
    month = spans["month"]
    columns = []
    for kind in WINDOW_KINDS:
        b = spans[kind]
        inside = and_(ev.occurred_at >= b.start, ev.occurred_at < b.reset_at)
        columns += [func.count(case((inside, 1))), func.coalesce(func.sum(case((inside, ev.total_tokens))), 0),
                    func.coalesce(func.sum(case((inside, ev.cost_usd))), 0)]
    rows = conn.execute(select(ev.account_id, *columns).where(
        one_of(ev.account_id, accounts, conn.dialect.name), ev.occurred_at >= month.start, ev.occurred_at < month.reset_at)
        .group_by(ev.account_id))
    used: dict[str, dict[str, Used]] = {kind: {} for kind in WINDOW_KINDS}
    for account, *sums in rows:
        for i, kind in enumerate(WINDOW_KINDS):
            requests, tokens, cost = sums[3 * i:3 * i + 3]
            if requests:
                used[kind][account] = (int(requests), int(tokens), Decimal(cost))
    return used


def _refresh_rows(conn: Connection, changed: list[tuple[int, int, int, Decimal]], now: datetime) -> None:
    """Ledger usage into these windows (PostgreSQL: one ``UPDATE … FROM unnest(arrays)`` per chunk;
    SQLite: executemany); ``used`` follows as the larger of live and ledger, and the revision
    goes up (the budgets job judges the window)."""
    lw = LimitWindow
    if not update_from_values(conn.dialect.name):
        if changed:
            conn.execute(update(lw).where(lw.id == bindparam("_id")).values(
                _ledger_values(bindparam("_requests"), bindparam("_tokens"), bindparam("_cost"), now)),
                [{"_id": i, "_requests": r, "_tokens": t, "_cost": c} for i, r, t, c in changed])
        return
    for start in range(0, len(changed), CHUNK):
        v = unnest_rows([("id", BigInteger()), ("requests", BigInteger()), ("tokens", BigInteger()),
                         ("cost", Numeric(20, 10))], changed[start:start + CHUNK], "ledger")
        conn.execute(update(lw).where(lw.id == v.c.id).values(
            _ledger_values(v.c.requests, v.c.tokens, v.c.cost, now)))


def _ledger_values(requests: Any, tokens: Any, cost: Any, now: datetime) -> dict[str, Any]:
    lw = LimitWindow
    return dict(ledger_requests=requests, ledger_tokens=tokens, ledger_cost_usd=cost,
                used_requests=larger(lw.live_requests, requests), used_tokens=larger(lw.live_tokens, tokens),
                used_cost_usd=larger(lw.live_cost_usd, cost), updated_at=now, revision=lw.revision + 1,
                evaluated_revision=judged_if_no_budget())


def refresh(conn: Connection, settings: Settings, accounts: list[str], now: datetime, stats: SyncStats) -> None:
    """These accounts' windows in force: usage from the ledger, limits from their tiers."""
    used = window_usage(conn, settings, accounts, now)
    tiers = tiers_of(conn, settings, accounts)
    lw = LimitWindow
    spans = {kind: bounds(kind, now, settings.tz) for kind in WINDOW_KINDS}
    wanted = (lw.id, lw.account_id, lw.kind, lw.ledger_requests, lw.ledger_tokens, lw.ledger_cost_usd, lw.tier,
              lw.action, lw.limit_requests, lw.limit_tokens, lw.limit_cost_usd)  # what refresh and retier read
    existing = {(w.account_id, w.kind): w for w in conn.execute(select(*wanted).where(
        one_of(lw.account_id, accounts, conn.dialect.name), lw.closed_at.is_(None), lw.window_start <= now, lw.reset_at > now))}
    new, changed = [], []
    for account in accounts:
        tier = tiers.get(account)
        for kind, b in spans.items():
            u = used[kind].get(account)
            w = existing.get((account, kind))
            if w is None:
                if u is not None and (kind in BUDGET_KINDS or kind in kinds_for(tier)):
                    new.append(new_window(account, b, tier, now, u))
                continue
            u = u or (0, 0, ZERO)
            if u != (w.ledger_requests, w.ledger_tokens, w.ledger_cost_usd):
                changed.append((w.id, *u))
            if retier(conn, w, tier, now):
                stats.retiered += 1
    insert_windows(conn, new)
    _refresh_rows(conn, changed, now)
    stats.created += len(new)
    stats.refreshed += len(changed)


def tiers_fingerprint(settings: Settings) -> str:
    return hashlib.sha256(repr((settings.default_tier, sorted(settings.tiers.items()))).encode()).hexdigest()


def tiers_changed(conn: Connection, settings: Settings, now: datetime) -> bool:
    """True once per change of the tier settings (the first replica to see it wins the update)."""
    return changed_once(conn, TIERS_KEY, tiers_fingerprint(settings), now)


def retier_open(conn: Connection, settings: Settings, now: datetime, stats: SyncStats) -> None:
    """Every open window takes its account's tier as configured now."""
    lw = LimitWindow
    windows = conn.execute(select(lw).where(lw.closed_at.is_(None))).all()
    tiers = tiers_of(conn, settings, {w.account_id for w in windows})
    stats.retiered += sum(retier(conn, w, tiers.get(w.account_id), now) for w in windows)


def usage_per_account(conn: Connection, settings: Settings, b: Bounds) -> dict[str, Used]:
    """(requests, tokens, cost) per account in the window, from the ledger, for every account
    (a closed day judged late: ``worker.limits.late``).

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

