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
from typing import Any

from sqlalchemy import Connection, func, or_, select, update

from worker import money
from worker.limits import windows as limits
from worker.alerts.state import raise_alert
from worker.limits.killswitch import kill_switch, trip
from worker.limits.windows import fraction_used
from worker.clock import local_day_bounds
from worker.models import LimitWindow, UsageEvent
from worker.settings import Settings, TierSettings

logger = logging.getLogger(__name__)

# a projection needs this much of the window behind it (a quiet midnight says nothing)
PROJECTION_MIN_ELAPSED = 0.1
PROJECTION_MIN_USED = 0.1


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
    """Compare every current day/month window (or one account's) with its tier; then the system."""
    stats = BudgetStats()
    for w in limits.open_windows(conn, now):
        if account_id is not None and w.account_id != account_id:
            continue
        tier = settings.tiers.get(w.tier) if w.tier else None
        stats.windows += 1
        if tier is not None:
            evaluate_window(conn, settings, w, tier, now, stats)
    if account_id is None:
        check_system(conn, settings, now, stats)
    return stats


def evaluate_window(conn: Connection, settings: Settings, w: Any, tier: TierSettings, now: datetime,
                    stats: BudgetStats, late_day: date | None = None) -> None:
    """Raise the warning levels crossed (once each per window), then set the window's state.
    ``late_day``: a closed window judged after the fact (``worker.limits.late``): its levels are
    raised marked as found late, with that day; its state and projection are left alone."""
    lw = LimitWindow
    fraction = fraction_used(w)
    if fraction is None:
        return
    crossed = [level for level in tier.warn_at if fraction >= level]
    if crossed and (w.warned_level is None or max(crossed) > w.warned_level):
        level = max(crossed)
        won = conn.execute(update(lw).where(lw.id == w.id, or_(lw.warned_level.is_(None), lw.warned_level < level))
                           .values(warned_level=level, updated_at=now)).rowcount
        if won:
            _raise_level(conn, settings, w, tier, level, fraction, late_day)
            stats.warnings += 1
    if late_day is not None:
        return
    over = fraction >= 1
    state = "blocked" if over and tier.action == "block" else ("warned" if crossed else "ok")
    if state != w.state:
        values: dict[str, Any] = {"state": state, "updated_at": now,
                                  "blocked_until": w.reset_at if state == "blocked" else None}
        if conn.execute(update(lw).where(lw.id == w.id, lw.state == w.state).values(**values)).rowcount:
            if state == "blocked":
                stats.blocked += 1
                logger.warning("account blocked", extra={"action": "account_blocked", "account": w.account_id,
                                                          "window": f"{w.kind} {w.period}",
                                                          "until": w.reset_at.isoformat()})
            elif w.state == "blocked":
                stats.unblocked += 1
    if settings.budgets.projection and tier.action == "block" and not over and w.projected_at is None:
        crossing = projected_crossing(w, fraction, now)
        if crossing is not None and conn.execute(update(lw).where(lw.id == w.id, lw.projected_at.is_(None))
                                                 .values(projected_at=now, updated_at=now)).rowcount:
            _raise_projection(conn, settings, w, tier, fraction, crossing)
            stats.projected += 1


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


def _raise_level(conn: Connection, settings: Settings, w: Any, tier: TierSettings, level: float,
                 fraction: float, late_day: date | None = None) -> None:
    pct = round(level * 100)
    severity = ("critical" if tier.action == "block" else "warning") if level >= 1 else "warning"
    raise_alert(conn, settings, kind="budget.account", scope="account", scope_id=w.account_id,
                period=f"{w.kind} {w.period} {pct}%", severity=severity,
                payload={"level": level, "fraction": round(fraction, 4), **_figures(w, settings),
                         "tier_name": tier.name, "tier_action": tier.action, "found_late": late_day is not None,
                         "late_day": late_day.isoformat() if late_day else None})


def _raise_projection(conn: Connection, settings: Settings, w: Any, tier: TierSettings, fraction: float,
                      crossing: datetime) -> None:
    raise_alert(conn, settings, kind="budget.projected", scope="account", scope_id=w.account_id,
                period=f"{w.kind} {w.period}", severity="warning",
                payload={"projected_at": crossing, "projected_at_local": _local(crossing, settings),
                         "fraction": round(fraction, 4), **_figures(w, settings),
                         "tier_name": tier.name})


def _local(moment: datetime, settings: Settings) -> str:
    """A moment in the operator's time zone, as the alerts show it (a fact, not a sentence)."""
    return moment.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M %Z")


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
