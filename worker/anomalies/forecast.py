"""Month-end spend forecasts per scope (system, tenant, account, service), with a range.

The forecast of a local month, as of ``now``, is the month so far plus the rest of the month at
the scope's hour-of-week pattern. The pattern is learned from each of the last
``anomalies.history_weeks`` whole weeks before ``now``: week by week, the rest of the month is
added up at that week's spend in each local hour of the week, which gives one projection per
learned week; the forecast is their mean, the range their lowest and highest. A scope with less
than a week of history is projected at its pace this month since its first usage (``basis = "pace"``, a range
of ± half the rest). Figures only: nothing is written.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from worker.anomalies import history
from worker.anomalies.history import HOUR, Scope
from worker.clock import local_day_bounds, next_month

KINDS = ("system", "tenant", "account", "service")
CENT = Decimal("0.0001")
# usage --by ... -> the scope kind whose forecast each row gets (a month's row: the system's)
USAGE_GROUPS = {"month": "system", "tenant": "tenant", "account": "account", "service": "service"}


@dataclass(frozen=True)
class Forecast:
    scope: Scope
    month: date  # its first day
    as_of: datetime
    so_far: Decimal
    forecast: Decimal
    low: Decimal
    high: Decimal
    basis: str  # pattern | pace
    rate: tuple[tuple[tuple[int, int], Decimal], ...] = ()  # the mean hour-of-week pattern (for crossings)

    def as_dict(self) -> dict[str, Any]:
        return {"scope": self.scope[0], "scope_id": self.scope[1], "month": self.month.strftime("%Y-%m"),
                "as_of": self.as_of.isoformat(), "so_far_usd": _q(self.so_far), "forecast_usd": _q(self.forecast),
                "low_usd": _q(self.low), "high_usd": _q(self.high), "basis": self.basis}


def month_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC [start, end) of ``day``'s local month."""
    return local_day_bounds(day.replace(day=1), tz)[0], local_day_bounds(next_month(day), tz)[0]


def slot(hour: datetime, tz: ZoneInfo) -> tuple[int, int]:
    local = hour.astimezone(tz)
    return local.weekday(), local.hour


def forecasts(conn: Connection, tz: ZoneInfo, weeks: int, now: datetime,
              kinds: tuple[str, ...] = KINDS, only: Scope | None = None) -> list[Forecast]:
    """The month-end forecast of every scope of ``kinds`` that spent this month or in the learned weeks."""
    start, end = month_bounds(now.astimezone(tz).date(), tz)
    dims = tuple(k for k in kinds if k != "system")
    month = history.hourly(conn, start, now, dims)
    cut = min(now.replace(minute=0, second=0, microsecond=0), end)
    learned = history.hourly(conn, cut - timedelta(days=7 * weeks), cut, dims)
    rest: Counter[tuple[int, int]] = Counter()
    hour = cut
    while hour < end:
        rest[slot(hour, tz)] += 1
        hour += HOUR
    out = []
    for scope in sorted(set(month) | set(learned)):
        if scope[0] not in kinds or (only is not None and scope != only):
            continue
        so_far = sum((c for c, _ in month.get(scope, {}).values()), Decimal(0))
        out.append(_one(scope, start.astimezone(tz).date(), now, so_far, learned.get(scope, {}), cut, weeks,
                        rest, start, tz))
    return out


def for_usage(conn: Connection, tz: ZoneInfo, weeks: int, now: datetime, by: str) -> dict[str | None, Forecast]:
    """The forecasts that ``usage --by`` ``by`` (a key of USAGE_GROUPS) rows carry, by the row's key:
    the current month's ("2026-12") for ``month``, each tenant's, account's or service's otherwise."""
    kind = USAGE_GROUPS[by]
    found = forecasts(conn, tz, weeks, now, kinds=(kind,))
    if kind == "system":
        return {f.month.strftime("%Y-%m"): f for f in found}
    return {f.scope[1]: f for f in found}


def _one(scope: Scope, month: date, now: datetime, so_far: Decimal, cells: dict[datetime, Any], cut: datetime,
         weeks: int, rest: Counter[tuple[int, int]], start: datetime, tz: ZoneInfo) -> Forecast:
    first = min(cells) if cells else cut
    whole = [w for w in range(1, weeks + 1) if cut - timedelta(days=7 * w) >= first]
    left = sum(rest.values())
    if not whole:  # less than a week of history: the pace since it began (this month)
        elapsed = (now - max(start, first)) / HOUR
        pace = so_far / Decimal(str(elapsed)) if elapsed > 0 else Decimal(0)
        more = pace * left
        return Forecast(scope, month, now, so_far, so_far + more, so_far + more / 2, so_far + more * 3 / 2, "pace")
    patterns = []
    for w in whole:
        pattern: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
        hour = cut - timedelta(days=7 * w)
        stop = hour + timedelta(days=7)
        while hour < stop:
            if hour in cells:
                pattern[slot(hour, tz)] += cells[hour][0]
            hour += HOUR
        patterns.append(pattern)
    projections = [sum((n * p.get(s, Decimal(0)) for s, n in rest.items()), Decimal(0)) for p in patterns]
    mean = {s: sum((p.get(s, Decimal(0)) for p in patterns), Decimal(0)) / len(patterns)
            for s in {s for p in patterns for s in p}}
    return Forecast(scope, month, now, so_far, so_far + sum(projections) / len(projections),
                    so_far + min(projections), so_far + max(projections), "pattern", tuple(sorted(mean.items())))


def crossing(f: Forecast, limit: Decimal, end: datetime, tz: ZoneInfo) -> datetime | None:
    """When the forecast's mean pattern takes the month past ``limit`` (None: not before ``end``)."""
    if f.so_far >= limit:
        return f.as_of
    if f.forecast <= limit:
        return None
    total = f.so_far
    hour = f.as_of.replace(minute=0, second=0, microsecond=0) + HOUR
    rate = dict(f.rate)
    per_hour = (f.forecast - f.so_far) / Decimal(max(1, int((end - hour) / HOUR)))  # the pace basis
    while hour < end:
        total += rate.get(slot(hour, tz), Decimal(0)) if f.basis == "pattern" else per_hour
        if total > limit:
            return hour
        hour += HOUR
    return None


def _q(amount: Decimal) -> str:
    return str(amount.quantize(CENT))
