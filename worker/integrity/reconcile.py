"""Reconciliation: the providers' own usage reports against the ledger, per UTC day and model.

For each enabled provider (``[reconcile.<name>]``) the provider's usage API is read
(``worker.providers``) for a range of UTC days and set beside the ledger's events of
that provider, per day and model. Model names are compared without their date
suffix (``gpt-4o-mini-2024-07-18`` is ``gpt-4o-mini``; see :func:`model_key`).

A difference counts when it is larger than both the absolute minimum of its measure
(``min_requests``, ``min_tokens``, ``min_cost_usd``) and ``tolerance`` of the larger
side. The provider showing more than the ledger is ``integrity.unlogged_calls``
(calls made and never logged); the ledger showing more is ``integrity.overcount``.
One alert per provider, kind and UTC day, with the per-model breakdown; a day that
reconciles on a later run resolves it. Results are stored in ``reconciliations``
(a rerun of a day replaces its rows) and shown in the reports.

What is compared: requests (successful events; Anthropic reports none), input tokens
(the ledger's prompt tokens, which include cached ones, against the provider's
input including cache reads and writes), output tokens, and cost: per model where
the provider reports it, else the day's total as the ``(day)`` row.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, func, insert, select

from worker import providers
from worker.alerts.state import raise_alert, resolve_alert
from worker.integrity.base import days_back
from worker.money import fixed
from worker.sql import local_bucket
from worker.models import Alert, Reconciliation, UsageEvent
from worker.settings import Settings, SettingsError
from worker.settings.reconcile import ReconcileSettings

logger = logging.getLogger(__name__)

HISTORY_DAYS = {"openrouter": 30}  # how far back a provider's API reaches (days before today, UTC)
# What each provider's API reports: request counts, and costs per model (else per day only).
COUNTS_REQUESTS = {"openai": True, "anthropic": False, "openrouter": True}
COSTS_PER_MODEL = {"openai": False, "anthropic": True, "openrouter": True}
DAY_ROW = "(day)"
MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd")
UTC_ZONE = ZoneInfo("UTC")


# ---------------------------------------------------------------------------- comparing

_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$")


def model_key(model: str) -> str:
    """The name both sides are compared by: lower case, without a date or ``-latest`` suffix."""
    name = model.strip().lower()
    if name.startswith("models/"):
        name = name[len("models/"):]
    return _DATE_SUFFIX.sub("", name) or name


@dataclass
class Side:
    requests: int | None = 0
    input_tokens: int | None = 0
    output_tokens: int | None = 0
    cost_usd: Decimal | None = Decimal(0)
    names: set[str] = field(default_factory=set)

    def add(self, requests: int | None, input_tokens: int, output_tokens: int, cost: Decimal | None,
            name: str) -> None:
        self.requests = None if requests is None or self.requests is None else self.requests + requests
        self.input_tokens = (self.input_tokens or 0) + input_tokens
        self.output_tokens = (self.output_tokens or 0) + output_tokens
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost
        self.names.add(name)


def ledger_side_by_model(conn: Connection, ledger_provider: str, first: date, last: date) -> dict[tuple[date, str], Side]:
    """The ledger's events of one provider per UTC day and model key."""

    start = datetime.combine(first, datetime.min.time(), UTC_ZONE)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC_ZONE)
    e = UsageEvent
    day = local_bucket(conn.dialect.name, UTC_ZONE, start, end, "day", UsageEvent.occurred_at)
    rows = conn.execute(select(day, e.model_used, func.count().filter(e.status == "success"),
                               func.sum(e.prompt_tokens), func.sum(e.completion_tokens),
                               func.sum(func.coalesce(e.cost_usd, 0)))
                        .where(e.provider == ledger_provider, e.occurred_at >= start, e.occurred_at < end)
                        .group_by(day, e.model_used)).all()
    out: dict[tuple[date, str], Side] = {}
    for d, model, requests, prompt, completion, cost in rows:
        side = out.setdefault((date.fromisoformat(d), model_key(model)), Side())
        side.add(int(requests or 0), int(prompt or 0), int(completion or 0), Decimal(cost or 0), model)
    return out


def _difference(measure: str, provider: Any, ledger: Any, rs: ReconcileSettings) -> dict[str, Any] | None:
    """The difference of one measure when it counts (else None)."""
    if provider is None or ledger is None:
        return None
    diff = provider - ledger
    minimum = {"requests": rs.min_requests, "input_tokens": rs.min_tokens, "output_tokens": rs.min_tokens,
               "cost_usd": rs.min_cost_usd}[measure]
    larger = max(provider, ledger)
    if abs(diff) <= minimum or abs(diff) <= larger * Decimal(str(rs.tolerance)):
        return None
    relative = float(diff / larger) if larger else None
    return {"measure": measure, "provider": str(provider), "ledger": str(ledger), "difference": str(diff),
            "relative": round(relative, 4) if relative is not None else None,
            "direction": "unlogged" if diff > 0 else "overcount"}


def compare(report: Any, ledger: dict[tuple[date, str], Side], days: list[date],
            rs: ReconcileSettings) -> list[dict[str, Any]]:
    """One row per day and model key (and a ``(day)`` cost row where the provider has day costs)."""
    theirs: dict[tuple[date, str], Side] = {}
    for u in report.usage:
        side = theirs.setdefault((u.day, model_key(u.model)), Side())
        side.add(u.requests, u.input_tokens, u.output_tokens, u.cost_usd, u.model)
    counts_requests = COUNTS_REQUESTS.get(report.provider, True)
    model_costs = COSTS_PER_MODEL.get(report.provider, False)
    rows = []
    wanted = set(days)
    for key in sorted(set(theirs) | set(ledger)):
        if key[0] not in wanted:
            continue
        p = theirs.get(key) or Side()  # a model the provider does not show: zero there
        if not counts_requests:
            p.requests = None
        if not model_costs:
            p.cost_usd = None  # compared per day, below
        mine = ledger.get(key) or Side()
        diffs = [x for m in MEASURES if (x := _difference(m, getattr(p, m), getattr(mine, m), rs))]
        rows.append(_row(key[0], key[1], p, mine, diffs))
    for d, cost in sorted(report.day_costs.items()):
        if d not in wanted or model_costs:
            continue
        p, mine = Side(), Side()
        for (day, _), side in theirs.items():
            if day == d:
                p.add(side.requests, side.input_tokens or 0, side.output_tokens or 0, Decimal(0), "")
        for (day, _), side in ledger.items():
            if day == d:
                mine.add(side.requests, side.input_tokens or 0, side.output_tokens or 0, side.cost_usd, "")
        p.cost_usd = cost
        diff = _difference("cost_usd", cost, mine.cost_usd, rs)
        rows.append(_row(d, DAY_ROW, p, mine, [diff] if diff else []))
    return rows


def _row(day: date, model: str, p: Side, mine: Side, diffs: list[dict[str, Any]]) -> dict[str, Any]:
    directions = {x["direction"] for x in diffs}
    status = "ok" if not directions else directions.pop() if len(directions) == 1 else "mixed"
    return {"day": day, "model": model[:200], "provider_requests": p.requests,
            "provider_input_tokens": p.input_tokens, "provider_output_tokens": p.output_tokens,
            "provider_cost_usd": p.cost_usd, "ledger_requests": mine.requests or 0,
            "ledger_input_tokens": mine.input_tokens or 0, "ledger_output_tokens": mine.output_tokens or 0,
            "ledger_cost_usd": mine.cost_usd or Decimal(0), "status": status,
            "detail": {"differences": diffs, "provider_models": sorted(n for n in p.names if n),
                       "ledger_models": sorted(n for n in mine.names if n)}}


# ---------------------------------------------------------------------------- running


@dataclass
class Reconciled:
    provider: str
    first: date
    last: date
    rows: list[dict[str, Any]]
    skipped_days: list[date]
    requests_made: int
    alerts: dict[str, int] = field(default_factory=lambda: {"raised": 0, "resolved": 0})

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "unlogged": 0, "overcount": 0, "mixed": 0}
        for row in self.rows:
            out[row["status"]] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "from": self.first.isoformat(), "to": self.last.isoformat(),
                "rows": len(self.rows), **self.counts(), "skipped_days": [d.isoformat() for d in self.skipped_days],
                "http_requests": self.requests_made, "alerts": self.alerts}


def default_range(settings: Settings, now: datetime) -> tuple[date, date]:
    return days_back(now, UTC_ZONE, settings.reconcile.days, through_today=False)


def run(engine: Engine, settings: Settings, name: str, first: date, last: date, now: datetime,
        fetch: Callable[..., Any] | None = None) -> Reconciled:
    """Fetch one provider's usage for the UTC days first..last, compare, store, alert.

    Raises ``worker.providers.ProviderError`` when the provider cannot be read (nothing stored)."""
    rs = settings.reconcile
    if name not in rs.providers:
        configured = ", ".join(rs.providers) or "none"
        raise SettingsError(f"reconcile.{name}: not configured or not enabled (enabled providers: {configured})")
    ps = rs.providers[name]
    today = now.astimezone(UTC_ZONE).date()
    reach = HISTORY_DAYS.get(name)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    skipped = [d for d in days if d >= today or (reach is not None and d < today - timedelta(days=reach))]
    days = [d for d in days if d not in skipped]
    if not days:
        return Reconciled(name, first, last, [], skipped, 0)
    config = providers.ProviderConfig(name=name, base_url=ps.base_url, api_key=ps.api_key, timeout=rs.timeout,
                                      max_retries=rs.max_retries, backoff=rs.backoff, project_ids=ps.project_ids)
    report = (fetch or providers.fetch)(config, days[0], days[-1])  # outside any transaction: HTTP
    with engine.begin() as conn:
        rows = compare(report, ledger_side_by_model(conn, ps.ledger_provider, days[0], days[-1]), days, rs)
        conn.execute(delete(Reconciliation).where(Reconciliation.provider == name,
                                                  Reconciliation.day.in_(days)))
        if rows:
            conn.execute(insert(Reconciliation), [{**r, "provider": name, "checked_at": now} for r in rows])
        result = Reconciled(name, first, last, rows, skipped, report.requests_made)
        _alerts(conn, settings, name, days, rows, result)
    logger.info("provider reconciled", extra={"action": "provider_reconciled", **result.as_dict()})
    return result


def _alerts(conn: Connection, settings: Settings, provider: str, days: list[date], rows: list[dict[str, Any]],
            result: Reconciled) -> None:
    kinds = {"unlogged": "integrity.unlogged_calls", "overcount": "integrity.overcount"}
    raised = set()
    for direction, kind in kinds.items():
        for d in days:
            found = [(r, x) for r in rows if r["day"] == d for x in r["detail"]["differences"]
                     if x["direction"] == direction]
            if not found:
                continue
            breakdown = [{"model": r["model"], **x} for r, x in found]
            if raise_alert(conn, settings, kind=kind, scope="provider", scope_id=provider, period=d.isoformat(),
                           payload={"day": d.isoformat(), "direction": direction, "examples": breakdown[:20],
                                    "count": len(breakdown)}):
                result.alerts["raised"] += 1
            raised.add((kind, d.isoformat()))
    periods = {d.isoformat() for d in days}
    for alert in conn.execute(select(Alert).where(Alert.kind.in_(list(kinds.values())), Alert.scope == "provider",
                                                  Alert.scope_id == provider, Alert.state != "resolved")).all():
        if alert.period in periods and (alert.kind, alert.period) not in raised:
            if resolve_alert(conn, settings, alert.id):
                result.alerts["resolved"] += 1


def list_reconciliations(conn: Connection, first: date, last: date, provider: str | None = None) -> list[Any]:
    query = select(Reconciliation).where(Reconciliation.day >= first, Reconciliation.day <= last)
    if provider:
        query = query.where(Reconciliation.provider == provider)
    return conn.execute(query.order_by(Reconciliation.provider, Reconciliation.day, Reconciliation.model)).all()


def summary(conn: Connection, first: date, last: date) -> list[dict[str, Any]]:
    """Per provider, the stored reconciliations of the UTC days first..last: both sides' totals
    and the rows that did not reconcile (for the reports)."""
    out: dict[str, dict[str, Any]] = {}
    for r in list_reconciliations(conn, first, last):
        p = out.setdefault(r.provider, {"provider": r.provider, "days": set(), "provider_tokens": 0,
                                        "ledger_tokens": 0, "provider_cost_usd": None, "ledger_cost_usd": Decimal(0),
                                        "flagged": [], "checked_at": r.checked_at})
        p["days"].add(r.day)
        p["checked_at"] = max(p["checked_at"], r.checked_at)
        per_model_cost = COSTS_PER_MODEL.get(r.provider, False)
        if r.model != DAY_ROW:
            p["provider_tokens"] += (r.provider_input_tokens or 0) + (r.provider_output_tokens or 0)
            p["ledger_tokens"] += r.ledger_input_tokens + r.ledger_output_tokens
        if (r.model == DAY_ROW) != per_model_cost and r.provider_cost_usd is not None:
            p["provider_cost_usd"] = (p["provider_cost_usd"] or Decimal(0)) + r.provider_cost_usd
            p["ledger_cost_usd"] += r.ledger_cost_usd
        if r.status != "ok":
            p["flagged"].append({"day": r.day.isoformat(), "model": r.model, "status": r.status,
                                 "differences": [{k: x[k] for k in ("measure", "provider", "ledger", "direction")}
                                                 for x in r.detail.get("differences", [])]})
    return [{**p, "days": len(p["days"]), "checked_at": p["checked_at"].isoformat(),
             "provider_cost_usd": None if p["provider_cost_usd"] is None else fixed(p["provider_cost_usd"], 4),
             "ledger_cost_usd": fixed(p["ledger_cost_usd"], 4)} for _, p in sorted(out.items())]
