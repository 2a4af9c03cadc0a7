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

The ``(day)`` row also takes what cannot be put on a model: a day with usage the
provider names no model for (OpenAI may answer ``model: null``) is compared as a whole
there, tokens included; costs no model carries (Anthropic's web search and code
execution) make Anthropic's day total compared there, listed in ``detail.other_costs``.
Anthropic's cost report leaves Priority Tier costs out, so a model-day with priority
traffic (in the usage report's ``service_tier``, or the ledger events' tier) has its
cost not compared, and says so in ``detail.cost_not_compared``; so does its day.

With ``project_ids`` configured and a ledger whose events carry ``project_id``, rows are
per model and project (``"gpt-4o [proj_abc]"``); without that column, per model.
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
    gap: str | None = None  # why this side's cost leaves part of the usage out (not compared)

    def add(self, requests: int | None, input_tokens: int, output_tokens: int, cost: Decimal | None,
            name: str) -> None:
        self.requests = None if requests is None or self.requests is None else self.requests + requests
        self.input_tokens = (self.input_tokens or 0) + input_tokens
        self.output_tokens = (self.output_tokens or 0) + output_tokens
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost
        self.names.add(name)


def _label(model: str, project: str | None) -> str:
    """The row's comparison key: the model key, and the project where compared per project."""
    return model if project is None else f"{model} [{project}]"


def ledger_side_by_model(conn: Connection, ledger_provider: str, first: date, last: date,
                         projects: tuple[str, ...] = ()) -> dict[tuple[date, str], Side]:
    """The ledger's events of one provider per UTC day and model key; per project as well
    (only those projects) when ``projects`` are given."""

    start = datetime.combine(first, datetime.min.time(), UTC_ZONE)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC_ZONE)
    e = UsageEvent
    day = local_bucket(conn.dialect.name, UTC_ZONE, start, end, "day", UsageEvent.occurred_at)
    project = e.project_id if projects else None
    keys = [day, e.model_used, *([project] if project is not None else [])]
    query = (select(*keys, func.count().filter(e.status == "success"), func.sum(e.prompt_tokens),
                    func.sum(e.completion_tokens), func.sum(func.coalesce(e.cost_usd, 0)))
             .where(e.provider == ledger_provider, e.occurred_at >= start, e.occurred_at < end)
             .group_by(*keys))
    if project is not None:
        query = query.where(project.in_(projects))
    out: dict[tuple[date, str], Side] = {}
    for row in conn.execute(query).all():
        d, model, *rest = row
        proj = rest.pop(0) if project is not None else None
        requests, prompt, completion, cost = rest
        side = out.setdefault((date.fromisoformat(d), _label(model_key(model), proj)), Side())
        side.add(int(requests or 0), int(prompt or 0), int(completion or 0), Decimal(cost or 0), model)
    return out


def ledger_priority(conn: Connection, ledger_provider: str, first: date, last: date) -> set[tuple[date, str]]:
    """(UTC day, model key) of the ledger's events made on a priority tier (``service_tier``)."""
    start = datetime.combine(first, datetime.min.time(), UTC_ZONE)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC_ZONE)
    e = UsageEvent
    tier = e.service_tier
    day = local_bucket(conn.dialect.name, UTC_ZONE, start, end, "day", UsageEvent.occurred_at)
    rows = conn.execute(select(day, e.model_used).distinct()
                        .where(e.provider == ledger_provider, e.occurred_at >= start, e.occurred_at < end,
                               tier.like("priority%"))).all()
    return {(date.fromisoformat(d), model_key(model)) for d, model in rows}


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


PRIORITY_LEDGER = "priority tier calls in the ledger: Anthropic's cost report leaves Priority Tier costs out"
UNNAMED = "the provider named no model for some of this day's usage, so the day is compared as a whole"


def compare(report: Any, ledger: dict[tuple[date, str], Side], days: list[date], rs: ReconcileSettings,
            priority: set[tuple[date, str]] | None = None, by_project: bool = False) -> list[dict[str, Any]]:
    """One row per day and model key (per project too with ``by_project``), and a ``(day)`` row
    where the provider has day costs only, costs no model carries, or usage without a model.

    A day with usage the provider names no model for (OpenAI's ``model: null``) is compared
    as a whole in its ``(day)`` row: tokens and requests too, and no per-model rows.
    Cost is not compared where part of it is missing from the provider's report (Priority
    Tier at Anthropic, on either side: ``priority`` holds the ledger's priority model-days);
    the row says why in ``detail.cost_not_compared``."""
    priority = priority or set()
    theirs: dict[tuple[date, str], Side] = {}
    per_day = {u.day for u in report.usage if u.model is None}
    gaps: dict[date, str] = {}
    for u in report.usage:
        if u.model is None:
            continue
        key = (u.day, _label(model_key(u.model), u.project if by_project else None))
        side = theirs.setdefault(key, Side())
        side.add(u.requests, u.input_tokens, u.output_tokens, u.cost_usd, u.model)
        if u.cost_gap:
            side.gap = u.cost_gap
    counts_requests = COUNTS_REQUESTS.get(report.provider, True)
    model_costs = COSTS_PER_MODEL.get(report.provider, False)
    rows = []
    wanted = set(days)
    for key in sorted(set(theirs) | set(ledger)):
        if key[0] not in wanted or key[0] in per_day:
            continue
        p = theirs.get(key) or Side()  # a model the provider does not show: zero there
        mine = ledger.get(key) or Side()
        if not counts_requests:
            p.requests = None
        if (key[0], key[1].split(" [")[0]) in priority and model_costs:
            p.gap = p.gap or PRIORITY_LEDGER
        if p.gap:
            gaps[key[0]] = p.gap
        if not model_costs or p.gap:
            p.cost_usd = None  # compared per day, below, or not at all
        diffs = [x for m in MEASURES if (x := _difference(m, getattr(p, m), getattr(mine, m), rs))]
        rows.append(_row(key[0], key[1], p, mine, diffs))
    for d in sorted(wanted & (set(report.day_costs) | per_day | set(report.other_costs))):
        if model_costs and d not in per_day and d not in report.other_costs:
            continue
        rows.append(_day_row(report, d, theirs, ledger, per_day, gaps, counts_requests, rs))
    return rows


def _day_row(report: Any, d: date, theirs: dict[tuple[date, str], Side], ledger: dict[tuple[date, str], Side],
             per_day: set[date], gaps: dict[date, str], counts_requests: bool, rs: ReconcileSettings) -> dict[str, Any]:
    """The day as a whole: its total cost, and its tokens and requests where ``per_day``."""
    p, mine = Side(), Side()
    for u in report.usage:
        if u.day == d:
            p.add(u.requests, u.input_tokens, u.output_tokens, Decimal(0), u.model or "")
    for (day, _), side in ledger.items():
        if day == d:
            mine.add(side.requests, side.input_tokens or 0, side.output_tokens or 0, side.cost_usd, "")
            mine.names |= side.names
    if not counts_requests:
        p.requests = None
    p.cost_usd = report.day_costs.get(d)
    p.gap = gaps.get(d) or next((u.cost_gap for u in report.usage if u.day == d and u.cost_gap), None)
    measures = MEASURES if d in per_day else ("cost_usd",)
    diffs = [x for m in measures if not (m == "cost_usd" and p.gap)
             and (x := _difference(m, getattr(p, m), getattr(mine, m), rs))]
    row = _row(d, DAY_ROW, p, mine, diffs)
    if d in per_day:
        row["detail"]["compared_per_day"] = UNNAMED
    if report.other_costs.get(d):
        row["detail"]["other_costs"] = {k: str(v) for k, v in sorted(report.other_costs[d].items())}
    return row


def _row(day: date, model: str, p: Side, mine: Side, diffs: list[dict[str, Any]]) -> dict[str, Any]:
    directions = {x["direction"] for x in diffs}
    status = "ok" if not directions else directions.pop() if len(directions) == 1 else "mixed"
    return {"day": day, "model": model[:200], "provider_requests": p.requests,
            "provider_input_tokens": p.input_tokens, "provider_output_tokens": p.output_tokens,
            "provider_cost_usd": p.cost_usd, "ledger_requests": mine.requests or 0,
            "ledger_input_tokens": mine.input_tokens or 0, "ledger_output_tokens": mine.output_tokens or 0,
            "ledger_cost_usd": mine.cost_usd or Decimal(0), "status": status,
            "detail": {"differences": diffs, "provider_models": sorted(n for n in p.names if n),
                       "ledger_models": sorted(n for n in mine.names if n),
                       **({"cost_not_compared": p.gap} if p.gap else {})}}


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
        by_project = bool(ps.project_ids)
        mine = ledger_side_by_model(conn, ps.ledger_provider, days[0], days[-1],
                                    ps.project_ids if by_project else ())
        priority = ledger_priority(conn, ps.ledger_provider, days[0], days[-1])
        rows = compare(report, mine, days, rs, priority, by_project)
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
        detail = r.detail or {}
        if r.model != DAY_ROW or "compared_per_day" in detail:
            p["provider_tokens"] += (r.provider_input_tokens or 0) + (r.provider_output_tokens or 0)
            p["ledger_tokens"] += r.ledger_input_tokens + r.ledger_output_tokens
        if "cost_not_compared" in detail:
            pass  # the provider's figure leaves part of the cost out: summing it would mislead
        elif (r.model == DAY_ROW) != per_model_cost and r.provider_cost_usd is not None:
            p["provider_cost_usd"] = (p["provider_cost_usd"] or Decimal(0)) + r.provider_cost_usd
            p["ledger_cost_usd"] += r.ledger_cost_usd
        elif r.model == DAY_ROW and detail.get("other_costs"):  # costs no model carries (web search, ...)
            other = sum((Decimal(v) for v in detail["other_costs"].values()), Decimal(0))
            p["provider_cost_usd"] = (p["provider_cost_usd"] or Decimal(0)) + other
        if r.status != "ok":
            p["flagged"].append({"day": r.day.isoformat(), "model": r.model, "status": r.status,
                                 "differences": [{k: x[k] for k in ("measure", "provider", "ledger", "direction")}
                                                 for x in r.detail.get("differences", [])]})
    return [{**p, "days": len(p["days"]), "checked_at": p["checked_at"].isoformat(),
             "provider_cost_usd": None if p["provider_cost_usd"] is None else fixed(p["provider_cost_usd"], 4),
             "ledger_cost_usd": fixed(p["ledger_cost_usd"], 4)} for _, p in sorted(out.items())]
