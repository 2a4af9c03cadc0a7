"""Budgets: each account's day/month usage against its tier, system-wide daily cost thresholds,
and the kill switch.

Per window (an account's local day or month) and tier:

* every warning level of the tier (``warn_at``, e.g. 80% and 100%) raises a
  ``budget.account`` alert once per window, whichever measure (tokens or cost) is
  furthest along; the level is recorded in the window with a conditional update, so
  replicas and later runs never raise it again, even after it was resolved;
* at 100%: ``warn`` tiers get a warning (a soft limit: calls go on), ``alert`` tiers an
  alert for the admins (calls go on), ``block`` tiers a critical alert and the window
  is blocked until it resets (the gate refuses calls);
* ``block`` tiers also get an early ``budget.projected`` warning when the window's
  pace so far would cross the limit before it resets.

Only the windows that changed since they were last judged are read (``revision`` ahead
of ``evaluated_revision``, see ``LimitWindow``), and every write is batched: a run where
90,000 accounts cross at once is a few dozen statements and one batch of alert rows
(``worker.alerts.state.raise_alerts``), whose messages become one grouped message per
target (``alerts.group_after``). A window whose projection needs more of the window
behind it stays to be judged again.

System-wide, the current local day's cost against ``budgets.system_*_usd`` raises one
``budget.system`` alert per day that escalates warning -> critical -> emergency;
emergency turns the kill switch on (``system_state``), which stays on until an
operator clears it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, case, func, or_, select, update

from worker import money
from worker.limits import windows as limits
from worker.alerts.state import AlertSpec, raise_alert, raise_alerts
from worker.limits.killswitch import kill_switch, trip
from worker.limits.windows import fraction_used
from worker.clock import local_day_bounds
from worker.models import LimitWindow, UsageEvent
from worker.settings import Settings, TierSettings
from worker.sql import one_of, plan_each_time

logger = logging.getLogger(__name__)

# a projection needs this much of the window behind it (a quiet midnight says nothing)
PROJECTION_MIN_ELAPSED = 0.1
PROJECTION_MIN_USED = 0.1
CLAIM_CHUNK = 1000  # windows per conditional UPDATE


@dataclass
class BudgetStats:
    windows: int = 0
    warnings: int = 0  # warning levels raised
    blocked: int = 0  # windows that became blocked
    unblocked: int = 0  # windows no longer over their (changed) limits
    projected: int = 0
    system_cost_usd: Decimal = Decimal(0)
    system_severity: str | None = None
    kill_switch: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"windows": self.windows, "warnings": self.warnings, "blocked": self.blocked,
                "unblocked": self.unblocked, "projected": self.projected,
                "system_cost_usd": str(self.system_cost_usd), "system_severity": self.system_severity,
                "kill_switch": self.kill_switch}


def evaluate(conn: Connection, settings: Settings, now: datetime, account_id: str | None = None) -> BudgetStats:
    """Judge the current day/month windows that changed since they were last judged (or every
    current window of one account), in batches; then the system."""
    stats = BudgetStats()
    plan_each_time(conn)  # the writes name a thousand windows at a time
    windows = limits.windows_to_judge(conn, now, account_id)
    stats.windows = len(windows)
    pairs = [(w, settings.tiers.get(w.tier) if w.tier else None) for w in windows]
    done = judge(conn, settings, pairs, now, stats, mark=True)
    limits.mark_judged(conn, [w for w in windows if w.id not in done])
    if account_id is None:
        check_system(conn, settings, now, stats)
    return stats


@dataclass(frozen=True)
class _Change:
    """What judging decided for one window: the level to record, the state to move to."""

    level: float | None = None
    state: tuple[str, str] | None = None  # (old, new)


def judge(conn: Connection, settings: Settings, pairs: list[tuple[Any, TierSettings | None]], now: datetime,
          stats: BudgetStats, late_day: date | None = None, mark: bool = False) -> set[int]:
    """Raise the warning levels crossed (once each per window), set the windows' states, raise
    projections; every write batched, claimed with a conditional update (``RETURNING`` says
    which windows this run won).

    A window's level and state are claimed together, in one UPDATE per batch of windows that
    take the same change (``mark``: recording the revision judged in the same statement); a
    window whose conditions no longer all hold (another replica got there first) has each part
    claimed on its own. Returns the windows needing no :func:`worker.limits.windows.mark_judged`:
    those marked here and those to judge again although they did not change (a projection that
    needs more of the window behind it).

    ``late_day``: closed windows judged after the fact (``worker.limits.late``): their levels are
    raised marked as found late, with that day; their state and projection are left alone."""
    lw = LimitWindow
    changes: dict[tuple[_Change, int | None], list[tuple[Any, TierSettings, float]]] = {}
    projections: list[tuple[Any, TierSettings, float, datetime]] = []
    waiting: set[int] = set()
    for w, tier in pairs:
        fraction = fraction_used(w) if tier is not None else None
        if fraction is None:
            continue
        crossed = [level for level in tier.warn_at if fraction >= level]
        level = max(crossed) if crossed and (w.warned_level is None or max(crossed) > w.warned_level) else None
        state = None
        over = fraction >= 1
        if late_day is None:
            new = "blocked" if over and tier.action == "block" else ("warned" if crossed else "ok")
            state = (w.state, new) if new != w.state else None
            if settings.budgets.projection and tier.action == "block" and not over and w.projected_at is None:
                crossing = projected_crossing(w, fraction, now)
                if crossing is not None:
                    projections.append((w, tier, fraction, crossing))
                elif fraction >= PROJECTION_MIN_USED and _too_early(w, now):
                    waiting.add(w.id)
        if level is not None or state is not None:
            change = _Change(level, state)
            revision = w.revision if mark and w.id not in waiting else None
            changes.setdefault((change, revision), []).append((w, tier, fraction))
    levels_won: dict[int, float] = {}
    states_won: dict[tuple[str, str], set[int]] = {}
    marked: set[int] = set()
    for (change, revision), items in changes.items():
        ws = [w for w, _, _ in items]
        won = _claim(conn, ws, _conditions(change), **_values(change, now, revision))
        if revision is not None:
            marked |= won
        lost = [w for w in ws if w.id not in won]
        if change.level is not None:
            levels_won.update((i, change.level) for i in won)
            if lost:
                levels_won.update((i, change.level) for i in _claim(
                    conn, lost, _conditions(_Change(level=change.level)),
                    **_values(_Change(level=change.level), now, None)))
        if change.state is not None:
            states_won.setdefault(change.state, set()).update(won)
            if lost:
                states_won[change.state] |= _claim(conn, lost, _conditions(_Change(state=change.state)),
                                                   **_values(_Change(state=change.state), now, None))
    raised = sorted(((levels_won[w.id], i, w, tier, fraction) for i, (w, tier, fraction)
                     in enumerate(x for items in changes.values() for x in items) if w.id in levels_won),
                    key=lambda r: (r[0], r[2].account_id, r[2].kind))
    specs = [_level_spec(settings, w, tier, level, fraction, late_day) for level, _, w, tier, fraction in raised]
    stats.warnings += len(specs)
    for (old, new), won in states_won.items():
        if new == "blocked":
            stats.blocked += len(won)
            _log_blocked([w for w, _ in pairs if w.id in won], settings.alerts.group_after)
        elif old == "blocked":
            stats.unblocked += len(won)
    if projections:
        won = _claim(conn, [w for w, *_ in projections], [lw.projected_at.is_(None)], projected_at=now,
                     updated_at=now)
        projected = [_projection_spec(settings, w, tier, fraction, crossing)
                     for w, tier, fraction, crossing in projections if w.id in won]
        stats.projected += len(projected)
        specs += projected
    if specs:
        raise_alerts(conn, settings, specs)
    return waiting | marked


def _conditions(change: _Change) -> list[Any]:
    """What must still hold for this run to make the change (another replica may have made it)."""
    lw = LimitWindow
    conditions = []
    if change.level is not None:
        conditions.append(or_(lw.warned_level.is_(None), lw.warned_level < change.level))
    if change.state is not None:
        conditions.append(lw.state == change.state[0])
    return conditions


def _values(change: _Change, now: datetime, revision: int | None) -> dict[str, Any]:
    """The columns the change sets; with ``revision``, the window is recorded as judged at it
    (unless it changed again meanwhile)."""
    lw = LimitWindow
    values: dict[str, Any] = {"updated_at": now}
    if change.level is not None:
        values["warned_level"] = change.level
    if change.state is not None:
        new = change.state[1]
        values.update(state=new, blocked_until=lw.reset_at if new == "blocked" else None)
    if revision is not None:
        values["evaluated_revision"] = case((lw.revision == revision, revision), else_=lw.evaluated_revision)
    return values


def _claim(conn: Connection, windows: list[Any], conditions: list[Any], **values: Any) -> set[int]:
    """Update these windows where ``conditions`` still hold: the ids this call changed."""
    lw = LimitWindow
    won: set[int] = set()
    ids = [w.id for w in windows]
    for start in range(0, len(ids), CLAIM_CHUNK):
        chunk = one_of(lw.id, ids[start:start + CLAIM_CHUNK], conn.dialect.name)
        won.update(r[0] for r in conn.execute(update(lw).where(chunk, *conditions).values(**values)
                                              .returning(lw.id)))
    return won


def _too_early(w: Any, now: datetime) -> bool:
    elapsed = (now - w.window_start).total_seconds()
    return elapsed < (w.reset_at - w.window_start).total_seconds() * PROJECTION_MIN_ELAPSED


def _log_blocked(windows: list[Any], group_after: int) -> None:
    """One line per account blocked, or one for a storm of them."""
    if len(windows) > group_after:
        logger.warning("accounts blocked", extra={"action": "accounts_blocked", "count": len(windows),
                                                  "accounts": [w.account_id for w in windows[:100]]})
        return
    for w in windows:
        logger.warning("account blocked", extra={"action": "account_blocked", "account": w.account_id,
                                                  "window": f"{w.kind} {w.period}",
                                                  "until": w.reset_at.isoformat()})


def projected_crossing(w: Any, fraction: float, now: datetime) -> datetime | None:
    """When the window crosses 100% at its pace so far, if that is before it resets."""
    elapsed = (now - w.window_start).total_seconds()
    length = (w.reset_at - w.window_start).total_seconds()
    if fraction <= 0 or elapsed < length * PROJECTION_MIN_ELAPSED or fraction < PROJECTION_MIN_USED:
        return None
    crossing = now + timedelta(seconds=elapsed * (1 - fraction) / fraction)
    return crossing if crossing < w.reset_at else None


def _figures(w: Any, settings: Settings) -> dict[str, Any]:
    """The window's facts an alert is worded from (templates/alerts/budget.*.txt.j2)."""
    return {"account_id": w.account_id, "tier": w.tier, "action": w.action, "window": w.kind,
            "period": w.period, "window_start": w.window_start, "reset_at": w.reset_at,
            "reset_at_local": _local(w.reset_at, settings),
            "used_requests": w.used_requests, "used_tokens": w.used_tokens, "used_cost_usd": w.used_cost_usd,
            "limit_tokens": w.limit_tokens, "limit_cost_usd": w.limit_cost_usd}


def _level_spec(settings: Settings, w: Any, tier: TierSettings, level: float, fraction: float,
                late_day: date | None = None) -> AlertSpec:
    pct = round(level * 100)
    severity = ("critical" if tier.action == "block" else "warning") if level >= 1 else "warning"
    return AlertSpec(kind="budget.account", scope="account", scope_id=w.account_id,
                     period=f"{w.kind} {w.period} {pct}%", severity=severity,
                     payload={"level": level, "fraction": round(fraction, 4), **_figures(w, settings),
                              "tier_name": tier.name, "tier_action": tier.action,
                              "found_late": late_day is not None,
                              "late_day": late_day.isoformat() if late_day else None})


def _projection_spec(settings: Settings, w: Any, tier: TierSettings, fraction: float,
                     crossing: datetime) -> AlertSpec:
    return AlertSpec(kind="budget.projected", scope="account", scope_id=w.account_id,
                     period=f"{w.kind} {w.period}", severity="warning",
                     payload={"projected_at": crossing, "projected_at_local": _local(crossing, settings),
                              "fraction": round(fraction, 4), **_figures(w, settings), "tier_name": tier.name})


def _local(moment: datetime, settings: Settings) -> str:
    """A moment in the operator's time zone, as the alerts show it (a fact, not a sentence)."""
    return _local_text(moment, settings.tz)


@lru_cache(maxsize=1024)
def _local_text(moment: datetime, tz: ZoneInfo) -> str:
    # (a storm's ninety thousand alerts share a handful of reset times)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


# --------------------------------------------------------------------------- system-wide


def system_cost(conn: Connection, settings: Settings, now: datetime) -> tuple[str, Decimal]:
    """The current local day and its cost so far: the ledger, or the windows where calls
    recorded live at the gate are ahead of it."""
    day = now.astimezone(settings.tz).date()
    start, end = local_day_bounds(day, settings.tz)
    ledger = conn.execute(select(func.coalesce(func.sum(UsageEvent.cost_usd), 0))
                          .where(UsageEvent.occurred_at >= start, UsageEvent.occurred_at < end)).scalar()
    windows = conn.execute(select(func.coalesce(func.sum(LimitWindow.used_cost_usd), 0))
                           .where(LimitWindow.kind == "day", LimitWindow.window_start == start)).scalar()
    return day.isoformat(), max(Decimal(ledger or 0), Decimal(windows or 0))


def thresholds(settings: Settings) -> list[tuple[str, Decimal]]:
    b = settings.budgets
    levels = [("warning", b.system_warning_usd), ("critical", b.system_critical_usd),
              ("emergency", b.system_emergency_usd)]
    return [(severity, amount) for severity, amount in levels if amount is not None]


def check_system(conn: Connection, settings: Settings, now: datetime, stats: BudgetStats) -> None:
    day, cost = system_cost(conn, settings, now)
    stats.system_cost_usd = cost
    crossed = [(severity, amount) for severity, amount in thresholds(settings) if cost >= amount]
    if not crossed:
        stats.kill_switch = kill_switch(conn) is not None
        return
    severity, amount = crossed[-1]
    stats.system_severity = severity
    tripped = False
    if severity == "emergency" and settings.budgets.kill_switch:
        tripped = trip(conn, now, period=day, by="budgets",
                       reason=f"system cost ${money.fixed(cost, 2)} on {day} reached the emergency threshold "
                              f"${money.fixed(amount, 2)}",
                       data={"cost_usd": str(cost), "threshold_usd": str(amount)})
    stats.kill_switch = kill_switch(conn) is not None
    raise_alert(conn, settings, kind="budget.system", scope="system", scope_id="", period=day, severity=severity,
                payload={"cost_usd": cost, "threshold_usd": amount, "threshold_severity": severity, "day": day,
                         "thresholds": {s: a for s, a in thresholds(settings)}, "kill_switch": stats.kill_switch,
                         "kill_switch_tripped_now": tripped})
