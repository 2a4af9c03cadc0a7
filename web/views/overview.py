"""The overview: today's spend against the thresholds, the month-end forecast, the kill switch,
sources, what failed to reach the books, open alerts and the last 30 days' cost.

"Failed to reach the books" (the red banner) is the sum of what the integrity checks look
for, read cheaply: call attempts marked unlogged, open rejects, events without an account
and events without a price in the last ``worker.status.UNATTRIBUTED_DAYS`` local days, and
sources an open ``source.silent`` alert names. The ledger is read only through indexes
(``(account_id, occurred_at)``, ``occurred_at``); ranges come from the summaries.

A tenant's overview holds that tenant's spend, forecast, chart and alerts only: the banner, the
sources and the system thresholds are the organisation's. The forecast
(``worker.anomalies.forecast``: the month so far and the last ``anomalies.history_weeks`` weeks'
hour-of-week pattern, with their range) is the system's and each tenant's, or the tenant's own.
It reads the ledger hour by hour (about a second on a million events) and moves slowly, so the
console (its app's ``forecasts`` cache) works it out at most once every ``FORECAST_TTL`` for each
viewer; the card says as of when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from worker import clock
from worker.anomalies import forecast as fc
from worker.anomalies.history import SYSTEM
from worker.limits import budgets, killswitch
from worker.models import UNATTRIBUTED, Alert, CallAttempt, IngestReject, SourceStatus, UsageEvent
from worker.settings import Settings
from worker.status import unattributed_since
from worker.summaries.usage import usage

from web.views.alerts import open_alerts
from web.views.chart import Chart, daily_bars

CHART_DAYS = 30
FORECAST_TTL = timedelta(minutes=5)
ForecastCache = dict[tuple[Any, ...], tuple[Any, list[fc.Forecast]]]  # key -> (when worked out, the forecasts)

@dataclass
class Books:
    """What did not reach the books (as they stand), each with the page that lists it."""

    unlogged_calls: int = 0
    open_rejects: int = 0
    unattributed_events: int = 0
    unpriced_events: int = 0
    silent_sources: list[str] = field(default_factory=list)
    since: date | None = None  # the first local day the unattributed/unpriced counts cover

    @property
    def failing(self) -> bool:
        return bool(self.unlogged_calls or self.open_rejects or self.unattributed_events or self.unpriced_events
                    or self.silent_sources)

@dataclass
class Spend:
    day: str
    cost_usd: Decimal
    thresholds: list[tuple[str, Decimal]]  # (severity, amount), rising
    reached: str | None  # the highest threshold reached

    @property
    def meter_max(self) -> Decimal:
        """The meter's end: the highest threshold, or the cost itself when none is set."""
        return self.thresholds[-1][1] if self.thresholds else max(self.cost_usd, Decimal(1))

    def level(self, severity: str) -> Decimal | None:
        return dict(self.thresholds).get(severity)

@dataclass
class Overview:
    now: Any
    spend: Spend
    kill_switch: dict[str, Any]
    books: Books | None  # None for a tenant
    sources: list[dict[str, Any]]
    alerts: list[Any]
    chart: Chart
    last_synced: Any  # the newest ingest of any source
    forecast: fc.Forecast | None = None  # this month's end: the system's, or the tenant's
    tenant_forecasts: list[fc.Forecast] = field(default_factory=list)  # each tenant's (the organisation's page)

def overview(conn: Connection, settings: Settings, tenant: str | None,
             cache: ForecastCache | None = None) -> Overview:
    now = clock.now()
    today = now.astimezone(settings.tz).date()
    first = today - timedelta(days=CHART_DAYS - 1)
    days = {date.fromisoformat(r.key): (r.cost_usd, r.unpriced_requests)
            for r in usage(conn, settings.tz, first, today, "day", tenant)}
    if tenant is None:
        day, cost = budgets.system_cost(conn, settings, now)
    else:
        day, cost = today.isoformat(), days.get(today, (Decimal(0), 0))[0]
    levels = budgets.thresholds(settings) if tenant is None else []
    reached = [severity for severity, amount in levels if cost >= amount]
    switch = killswitch.kill_switch_state(conn)
    sources = source_rows(conn, settings) if tenant is None else []
    books = _books(conn, settings, days, sources) if tenant is None else None
    synced = max((s["last_ingest_at"] for s in sources if s["last_ingest_at"]), default=None)
    ahead = _recent_forecasts(conn, settings, now, tenant, {} if cache is None else cache)
    own = next((f for f in ahead if f.scope in (SYSTEM, ("tenant", tenant))), None)
    return Overview(now=now, spend=Spend(day, cost, levels, reached[-1] if reached else None),
                    kill_switch={"active": bool(switch and switch.active), "reason": switch.reason if switch else None,
                                 "changed_at": switch.changed_at if switch else None,
                                 "changed_by": switch.changed_by if switch else None},
                    books=books, sources=sources, alerts=open_alerts(conn, settings, tenant, limit=10),
                    chart=daily_bars(days, first, today), last_synced=synced, forecast=own,
                    tenant_forecasts=[f for f in ahead if f.scope[0] == "tenant"] if tenant is None else [])

def _recent_forecasts(conn: Connection, settings: Settings, now: Any, tenant: str | None,
                      cache: ForecastCache) -> list[fc.Forecast]:
    """The system's and every tenant's forecasts (or the tenant's own), reused for ``FORECAST_TTL``."""
    weeks = settings.anomalies.history_weeks
    key = (settings.tz.key, weeks, now.astimezone(settings.tz).strftime("%Y-%m"), tenant)
    hit = cache.get(key)
    if hit is not None and timedelta(0) <= now - hit[0] < FORECAST_TTL:
        return hit[1]
    if tenant is None:
        ahead = fc.forecasts(conn, settings.tz, weeks, now, kinds=("system", "tenant"))
    else:
        ahead = fc.forecasts(conn, settings.tz, weeks, now, kinds=("tenant",), only=("tenant", tenant))
    if len(cache) > 1000:  # many tenants' viewers: stay bounded
        cache.clear()
    cache[key] = (now, ahead)
    return ahead


def source_rows(conn: Connection, settings: Settings) -> list[dict[str, Any]]:
    """Each configured source (then any other that ingested: the CLI, a retired source) with
    its freshness and whether an open alert says it is silent."""
    freshness = {r.source: r for r in conn.execute(select(SourceStatus))}
    silent = set(conn.execute(select(Alert.scope_id).where(Alert.kind == "source.silent",
                                                           Alert.state != "resolved")).scalars())
    rows = []
    for src in settings.sources:
        rows.append(_source(src.name, src.kind, src.enabled, freshness.pop(src.name, None), src.name in silent))
    for name in sorted(freshness):
        rows.append(_source(name, None, None, freshness[name], name in silent))
    return rows

def _source(name: str, kind: str | None, enabled: bool | None, row: Any, silent: bool) -> dict[str, Any]:
    return {"source": name, "kind": kind, "enabled": enabled, "silent": silent,
            "last_ingest_at": row.last_ingest_at if row else None,
            "newest_event_at": row.newest_event_at if row else None, "events": row.events if row else 0}

def _books(conn: Connection, settings: Settings, days: dict[date, tuple[Decimal, int]],
           sources: list[dict[str, Any]]) -> Books:
    since = unattributed_since(settings)
    first = since.astimezone(settings.tz).date()
    return Books(
        unlogged_calls=conn.execute(select(func.count()).select_from(CallAttempt)
                                    .where(CallAttempt.state == "unlogged")).scalar_one(),
        open_rejects=conn.execute(select(func.count()).select_from(IngestReject)
                                  .where(IngestReject.status == "open")).scalar_one(),
        # every unattributed event carries the placeholder account: the (account_id, occurred_at) index
        unattributed_events=conn.execute(select(func.count()).select_from(UsageEvent).where(
            UsageEvent.account_id == UNATTRIBUTED, UsageEvent.occurred_at >= since)).scalar_one(),
        unpriced_events=sum(unpriced for day, (_, unpriced) in days.items() if day >= first),
        silent_sources=[s["source"] for s in sources if s["silent"]],
        since=first)
