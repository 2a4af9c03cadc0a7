"""``budget.forecast``: an account's monthly cost limit that its month-end forecast crosses.

The monthly limit is the account's tier's ``monthly_cost_usd`` (its own tier, else
``default_tier``: ``worker.limits.windows.account_tiers``); the system has daily thresholds only,
so no system forecast alert. When the forecast (``worker.anomalies.forecast``) is over the limit
and the month so far is not yet, the alert (scope ``account``, period the month ``YYYY-MM``) gives
the projected crossing: the first hour the learned pattern takes the month past the limit. It is
resolved when a run no longer projects a crossing (the limit raised, the pace down, or crossed for real:
then the budgets job's own alert speaks).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from worker.alerts.state import raise_alert, resolve_alert
from worker.anomalies import forecast as fc
from worker.limits.windows import account_tiers
from worker.models import Alert
from worker.settings import Settings

KIND = "budget.forecast"


@dataclass
class Projected:
    accounts: int = 0  # with a monthly cost limit
    projected: int = 0
    alerts_raised: int = 0
    alerts_resolved: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(conn: Connection, settings: Settings, now: datetime) -> Projected:
    """Raise budget.forecast for each account projected to cross its monthly limit; resolve the rest."""
    tz = settings.tz
    result = Projected()
    found = fc.forecasts(conn, tz, settings.anomalies.history_weeks, now, kinds=("account",))
    tiers = account_tiers(conn, settings, [f.scope[1] for f in found])
    period = now.astimezone(tz).strftime("%Y-%m")
    _, end = fc.month_bounds(now.astimezone(tz).date(), tz)
    held = set()
    for f in found:
        tier = tiers.get(f.scope[1])
        limit = tier.monthly_cost_usd if tier else None
        if limit is None:
            continue
        result.accounts += 1
        if f.so_far >= limit:
            continue  # crossed: the budgets job's alert, not a forecast
        at = fc.crossing(f, limit, end, tz)
        if at is None:
            continue
        result.projected += 1
        held.add(f.scope[1])
        payload = {**f.as_dict(), "account_id": f.scope[1], "tier": tier.name, "limit_usd": limit,
                   "crossing_at": at.isoformat(), "crossing_date": at.astimezone(tz).date().isoformat(),
                   "crossing_local": at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")}
        if raise_alert(conn, settings, kind=KIND, scope="account", scope_id=f.scope[1], period=period,
                       severity="warning", payload=payload):
            result.alerts_raised += 1
    for alert in conn.execute(select(Alert).where(Alert.kind == KIND, Alert.state != "resolved")).all():
        if alert.scope_id not in held or alert.period != period:
            if resolve_alert(conn, settings, alert.id):
                result.alerts_resolved += 1
    return result
