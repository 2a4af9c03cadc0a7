"""Each scope's hourly spend and requests, read from the ledger, and the learned baseline.

A scope is ``(kind, id)``: ``("system", "")``, ``("tenant", T)``, ``("service", S)``,
``("model", M)`` (the model that served, ``model_used``) or ``("account", A)``; events without a
tenant or service count for the system, their model and account only.

:func:`baseline` learns the last ``history_weeks`` weeks before the local day of ``now`` (one
GROUP BY per dimension over those weeks, the system added up from the model rows) and keeps the
result in memory, per engine, for that day: a run of the anomalies job then reads the last hour
and counts the learned weeks' events (the occurred_at index, no grouping) to check the kept
baseline, so late usage in the learned weeks is learned again rather than missed.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select

from worker.clock import local_day_bounds
from worker.models import UsageEvent
from worker.sql import hour_value, utc_hour_bucket

HOUR = timedelta(hours=1)
Scope = tuple[str, str]
Cell = tuple[Decimal, int]  # (cost, requests) of one scope in one hour
SYSTEM: Scope = ("system", "")
# scope kind -> the ledger column it is keyed by
DIMENSIONS: dict[str, Any] = {"tenant": UsageEvent.tenant_id, "service": UsageEvent.service,
                              "model": UsageEvent.model_used, "account": UsageEvent.account_id}
CACHE_DAYS = 4  # baselines kept in memory per engine (one per time zone, weeks and day)
WEEKLY_FROM = 3  # weeks of a scope's history before it is learned per hour of the week (9 samples and more)


def hourly(conn: Connection, start: datetime, end: datetime,
           kinds: tuple[str, ...] = tuple(DIMENSIONS)) -> dict[Scope, dict[datetime, Cell]]:
    """{scope: {UTC hour: (cost, requests)}} of the events with occurred_at in [start, end), per
    scope kind in ``kinds`` and the system."""
    col = UsageEvent.occurred_at
    bucket = utc_hour_bucket(conn.dialect.name, col)
    cost = func.coalesce(func.sum(UsageEvent.cost_usd), 0)
    series: dict[Scope, dict[datetime, Cell]] = defaultdict(dict)
    system: dict[datetime, list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    for kind in dict.fromkeys((*kinds, "model")):  # the system is added up from the model rows
        dim = DIMENSIONS[kind]
        rows = conn.execute(select(bucket, dim, cost, func.count()).where(col >= start, col < end, dim.is_not(None))
                            .group_by(bucket, dim)).all()
        for hour, value, spent, n in rows:
            at, spent = hour_value(hour), Decimal(spent)
            if kind in kinds:
                series[(kind, value)][at] = (spent, n)
            if kind == "model":
                system[at][0] += spent
                system[at][1] += n
    series[SYSTEM] = {at: (c, n) for at, (c, n) in system.items()}
    return dict(series)


def contributions(conn: Connection, start: datetime, end: datetime) -> list[tuple[datetime, dict[str, str], Cell]]:
    """The events in [start, end) per UTC hour, tenant, service, model and account (a short range:
    the hour judged), for the hour's scopes and their top contributors."""
    col = UsageEvent.occurred_at
    bucket = utc_hour_bucket(conn.dialect.name, col)
    dims = list(DIMENSIONS.values())
    rows = conn.execute(select(bucket, *dims, func.coalesce(func.sum(UsageEvent.cost_usd), 0), func.count())
                        .where(col >= start, col < end).group_by(bucket, *dims)).all()
    out = []
    for hour, *values, spent, n in rows:
        keys = {kind: value for kind, value in zip(DIMENSIONS, values) if value is not None}
        out.append((hour_value(hour), keys, (Decimal(spent), n)))
    return out


def scopes_of(keys: dict[str, str]) -> list[Scope]:
    """The scopes one group of events counts for."""
    return [SYSTEM, *((kind, value) for kind, value in keys.items())]


def scope_filter(scope: Scope) -> list[Any]:
    """The WHERE clauses of one scope's events."""
    kind, value = scope
    return [] if kind == "system" else [DIMENSIONS[kind] == value]


def spent(conn: Connection, scope: Scope, start: datetime, end: datetime) -> Decimal:
    """One scope's cost in [start, end)."""
    col = UsageEvent.occurred_at
    total = conn.execute(select(func.coalesce(func.sum(UsageEvent.cost_usd), 0))
                         .where(col >= start, col < end, *scope_filter(scope))).scalar()
    return Decimal(total or 0)


@dataclass
class Baseline:
    """Hourly history of every scope in [start, end) (``end``: the start of a local day)."""

    start: datetime
    end: datetime
    tz: ZoneInfo
    weeks: int
    events: int  # the window's event count when it was learned
    series: dict[Scope, dict[datetime, Cell]]
    first: dict[Scope, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.first = {scope: min(cells) for scope, cells in self.series.items() if cells}

    def samples(self, scope: Scope, hour: datetime) -> list[Cell] | None:
        """The scope's cells at ``hour``'s local hour of the week (± 1 hour) in each learned week;
        with less than WEEKLY_FROM weeks of history (a week is three samples: one holiday or one
        spike there is the median), at ``hour``'s local hour of the day (± 1 hour) on each day of
        its history of the same kind (weekdays, or weekend days; every day while it has none of
        that kind). None when the scope has no history."""
        first = self.first.get(scope)
        if first is None:
            return None
        cells = self.series[scope]
        if self.weeks >= WEEKLY_FROM and self.end - first >= timedelta(days=7 * WEEKLY_FROM):
            steps = [timedelta(days=7 * w) for w in range(1, self.weeks + 1)]
        else:
            steps = [timedelta(days=d) for d in range(1, min(7 * WEEKLY_FROM, 7 * self.weeks + 1))
                     if hour - timedelta(days=d) + HOUR >= first]
            weekend = hour.astimezone(self.tz).weekday() >= 5
            alike = [d for d in steps if ((hour - d).astimezone(self.tz).weekday() >= 5) == weekend]
            steps = alike or steps
        offset = hour.astimezone(self.tz).utcoffset()
        out: list[Cell] = []
        for step in steps:
            for shift in (-HOUR, timedelta(0), HOUR):
                at = hour - step + shift  # a UTC hour; moved by a DST change in between, to the same local hour
                moved = offset - at.astimezone(self.tz).utcoffset()  # type: ignore[operator]
                at = at + moved if moved % HOUR == timedelta(0) else at
                if first <= at < self.end:
                    out.append(cells.get(at, (Decimal(0), 0)))
        return out or None


# engine (one per daemon; gone with it) -> (time zone, weeks, local day) -> its baseline
_cache: WeakKeyDictionary[Engine, OrderedDict[tuple[Any, ...], Baseline]] = WeakKeyDictionary()


def baseline(conn: Connection, tz: ZoneInfo, weeks: int, now: datetime) -> Baseline:
    """The learned weeks before ``now``'s local day, from memory when nothing changed in them."""
    today = now.astimezone(tz).date()
    end = local_day_bounds(today, tz)[0]
    start = local_day_bounds(today - timedelta(days=7 * weeks), tz)[0]
    col = UsageEvent.occurred_at
    events = conn.execute(select(func.count()).where(col >= start, col < end)).scalar() or 0
    kept = _cache.setdefault(conn.engine, OrderedDict())
    key = (str(tz), weeks, today)
    learned = kept.get(key)
    if learned is not None and learned.events == events:
        kept.move_to_end(key)
        return learned
    learned = Baseline(start, end, tz, weeks, events, hourly(conn, start, end))
    kept[key] = learned
    while len(kept) > CACHE_DAYS:
        kept.popitem(last=False)
    return learned
