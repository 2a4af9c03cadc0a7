"""Late data for a closed window: usage that arrives for a local day after its window closed.

Ingest marks such days (:func:`mark_pending`, in the batch's transaction, for every
local day before the current one that got new events: a backfill, a re-read log, a
daemon that was down). The budgets job claims the marks (:func:`claim_pending`: a
delete per day whose row count says who won, so two replicas never both take a day)
and evaluates those days' windows (:func:`evaluate_days`), as ``jobs run budgets
--date D`` does for the days an operator names: the day window, and the month window
once the month has ended (a month still running is the regular evaluation's).

A closed window that never existed (nobody ran the budgets job that day, or it was
dropped empty) is created as history (``closed_at`` set); its usage is refreshed from
the ledger; then the tier's warning levels are judged as for a current window, so each
level is raised once per window (``warned_level``), with ``found_late`` and the day in
the payload. Nothing is blocked after the fact: the window has reset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import Connection, delete, select, update

from worker.clock import local_day_bounds
from worker.limits import windows as limits
from worker.limits.budgets import BudgetStats, judge
from worker.limits.sync import usage_per_account
from worker.models import UNATTRIBUTED, BudgetPendingDay, LimitWindow
from worker.settings import Settings
from worker.sql import insert_ignore


@dataclass
class LateStats:
    days: list[str] = field(default_factory=list)  # the closed days evaluated
    skipped: list[str] = field(default_factory=list)  # asked for, but the day has not ended yet
    windows: int = 0
    warnings: int = 0  # levels raised, found late

    def as_dict(self) -> dict[str, Any]:
        return {"days": self.days, "skipped_open_days": self.skipped, "windows": self.windows,
                "warnings": self.warnings}


def mark_pending(conn: Connection, days: Iterable[date], now: datetime, settings_tz: Any) -> int:
    """Mark the local days before today (their day window has closed) for the budgets job."""
    today = now.astimezone(settings_tz).date()
    rows = [{"day": d, "marked_at": now} for d in sorted(set(days)) if d < today]
    if rows:
        conn.execute(insert_ignore(conn.dialect.name, BudgetPendingDay, ["day"]), rows)
    return len(rows)


def pending_days(conn: Connection) -> list[date]:
    return list(conn.execute(select(BudgetPendingDay.day).order_by(BudgetPendingDay.day)).scalars())


def claim_pending(conn: Connection) -> list[date]:
    """Take every pending day; a day another replica took first is left to it."""
    claimed = []
    for day in pending_days(conn):
        if conn.execute(delete(BudgetPendingDay).where(BudgetPendingDay.day == day)).rowcount == 1:
            claimed.append(day)
    return claimed


def evaluate_days(conn: Connection, settings: Settings, days: Iterable[date], now: datetime) -> LateStats:
    """Judge each closed day's window and, where its month has ended, the month's."""
    stats = LateStats()
    months: set[date] = set()
    for day in sorted(set(days)):
        start = local_day_bounds(day, settings.tz)[0]
        day_bounds = limits.bounds("day", start, settings.tz)
        if day_bounds.reset_at > now:
            stats.skipped.append(day.isoformat())
            continue
        stats.days.append(day.isoformat())
        _evaluate(conn, settings, day_bounds, day, now, stats)
        month_bounds = limits.bounds("month", start, settings.tz)
        if month_bounds.reset_at <= now and month_bounds.start not in months:
            months.add(month_bounds.start)
            _evaluate(conn, settings, month_bounds, day, now, stats)
    return stats


def _evaluate(conn: Connection, settings: Settings, b: limits.Bounds, day: date, now: datetime,
              stats: LateStats) -> None:
    used = {a: u for a, u in usage_per_account(conn, settings, b).items() if a != UNATTRIBUTED}
    tiers = limits.account_tiers(conn, settings, used)
    lw = LimitWindow
    pairs = []
    for account in sorted(used):
        tier = tiers.get(account)
        if tier is None:
            continue
        requests, tokens, cost = used[account]
        new = limits.new_window(account, b, tier, now, used[account])
        conn.execute(insert_ignore(conn.dialect.name, lw, ["account_id", "kind", "window_start"]),
                     [{**new, "closed_at": now, "evaluated_revision": 1}])  # judged here, never again
        match = (lw.account_id == account, lw.kind == b.kind, lw.window_start == b.start)
        conn.execute(update(lw).where(*match).values(
            ledger_requests=requests, ledger_tokens=tokens, ledger_cost_usd=cost,
            used_requests=limits.larger(lw.live_requests, requests),
            used_tokens=limits.larger(lw.live_tokens, tokens),
            used_cost_usd=limits.larger(lw.live_cost_usd, cost), updated_at=now))
        pairs.append((conn.execute(select(lw).where(*match)).one(), tier))
    budget = BudgetStats()
    judge(conn, settings, pairs, now, budget, late_day=day)  # the levels' alerts raised together
    stats.windows += len(pairs)
    stats.warnings += budget.warnings


def days_asked(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
