"""A report's figures: everything a daily, weekly or monthly report shows, as one dict.

:func:`build` gathers every figure of a period (optionally one tenant's) from the
summaries (and the ledger for days not yet summarised: the same rule as ``usage``),
each account's budget state for the period (``reports.budget_states``), every scope over or near
its budget (``reports.scope_states``), alerts, rejects, reconciliations, source
freshness and the month-end forecast (daily and monthly reports).
:func:`ledger_totals` derives the period's totals and row count straight from the
ledger (what ``reports.archive.verify`` compares an archived report with).

Invariants: building reads only, it never writes; money stays Decimal until it is
written into the dict as text with 10 decimal places (ratios with 4), so the JSON,
CSV and manifest of a report carry exact amounts; a tenant's report holds only that
tenant's rows and names only that tenant (no per-tenant breakdown; no organisation-wide
corrections, reconciliation, source freshness; ``None`` for the rejected-record and
integrity-alert counts, which belong to no tenant). Its accounts' budget states stay the
accounts' own (a budget is per account, whichever tenant spent it). :func:`settings_hash` lives here, not in the archive, because the
figures record it and the archive builds on the figures.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from worker import clock, money
from worker.anomalies import forecast as fc
from worker.clock import local_day_bounds
from worker.integrity import reconcile
from worker.ledger.retention import exported_totals
from worker.limits import windows as limits
from worker.limits.budgets import thresholds
from worker.limits.killswitch import kill_switch
from worker.models import (SEVERITIES, UNATTRIBUTED, Alert, IngestReject, SourceStatus,
                           SummaryCorrection, UsageEvent)
from worker.settings import Settings
from worker.summaries.recompute import is_final
from worker.summaries.usage import UsageRow, usage, usage_from_ledger

from reports.budget_states import period_states
from reports.scope_states import scope_states
from reports.periods import Period

TOTAL_FIELDS = ("requests", "errors", "timeouts", "prompt_tokens", "completion_tokens", "total_tokens",
                "cost_usd", "unpriced_requests")
CHART_DAYS = 30
# quality counts of the whole organisation: None in a tenant's report
ORGANISATION_QUALITY = ("open_rejects", "rejects_in_period", "open_integrity_alerts")


def _totals(rows: list[UsageRow]) -> dict[str, Any]:
    out: dict[str, Any] = {name: 0 for name in TOTAL_FIELDS}
    out["cost_usd"] = Decimal(0)
    for r in rows:
        for name in TOTAL_FIELDS:
            out[name] += getattr(r, name)
    return out


def _public_totals(t: dict[str, Any]) -> dict[str, Any]:
    ok = t["requests"] - t["errors"] - t["timeouts"]
    rate = None if not t["requests"] else f"{Decimal(ok) / Decimal(t['requests']):.4f}"
    return {**{k: t[k] for k in TOTAL_FIELDS if k != "cost_usd"}, "cost_usd": _money(t["cost_usd"]),
            "success_rate": rate}


def _money(value: Decimal | int) -> str:
    return money.fixed(value, 10)


def _change(now: Any, before: Any) -> str | None:
    now, before = Decimal(now), Decimal(before)
    return None if before == 0 else f"{(now - before) / before:.4f}"


def _breakdown(rows: list[UsageRow], total_cost: Decimal) -> list[dict[str, Any]]:
    out = [{"key": r.key if r.key is not None else "(none)", "requests": r.requests, "total_tokens": r.total_tokens,
            "cost_usd": _money(r.cost_usd), "unpriced_requests": r.unpriced_requests,
            "share": None if not total_cost else f"{r.cost_usd / total_cost:.4f}"} for r in rows]
    return sorted(out, key=lambda r: (-Decimal(r["cost_usd"]), -r["requests"], r["key"]))


def settings_hash(settings: Settings) -> str:
    """What the figures depend on: time zone, prices, tiers, thresholds."""
    text = repr((settings.timezone, settings.pricing_fingerprint(), sorted(settings.tiers.items()),
                 settings.default_tier, settings.budgets, settings.summaries_settle)
                + ((sorted(settings.scope_budgets.items()),) if settings.scope_budgets else ()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ledger_totals(conn: Connection, settings: Settings, period: Period, tenant: str | None) -> dict[str, Any]:
    """The period's totals and row count straight from the ledger (what verify re-derives)."""
    rows = usage_from_ledger(conn, settings.tz, period.first, period.last, "day", tenant)
    start, end = local_day_bounds(period.first, settings.tz)[0], local_day_bounds(period.last, settings.tz)[1]
    query = select(func.count()).select_from(UsageEvent).where(UsageEvent.occurred_at >= start,
                                                               UsageEvent.occurred_at < end)
    if tenant is not None:
        query = query.where(UsageEvent.tenant_id == tenant)
    exported = exported_totals(conn, start, end, tenant)  # what retention moved to the archive
    if exported.rows:
        rows.append(UsageRow(None, **exported.measures))
    return {"totals": _public_totals(_totals(rows)), "ledger_rows": conn.execute(query).scalar_one() + exported.rows,
            "altered": exported.altered}


def build(conn: Connection, settings: Settings, period: Period, *, tenant: str | None = None,
          now: datetime | None = None) -> dict[str, Any]:
    now = now or clock.now()
    tz = settings.tz
    prev = period.previous()
    first, last = period.first, period.last

    def use(by: str, a: date = first, b: date = last) -> list[UsageRow]:
        return usage(conn, tz, a, b, by, tenant)

    by_day = use("day")
    totals = _totals(by_day)
    prev_totals = _totals(use("day", prev.first, prev.last))
    by_account = use("account")
    cost = totals["cost_usd"]
    start, end = local_day_bounds(first, tz)[0], local_day_bounds(last, tz)[1]

    tiers = limits.account_tiers(conn, settings, [r.key for r in by_account if r.key])
    states = {a: b.as_dict() for a, b in period_states(conn, settings, first, last).items()}
    tenants_of = ({r.key: tenant for r in by_account if r.key} if tenant is not None
                  else _tenants_of(conn, [r.key for r in by_account if r.key], start, end))
    top = sorted((r for r in by_account if r.key != UNATTRIBUTED), key=lambda r: (-r.cost_usd, r.key or ""))
    top_accounts = [{"account_id": r.key, "tenant_id": tenants_of.get(r.key), "tier": t.name if (t := tiers.get(r.key))
                     else None, "state": states.get(r.key, {}).get("state", "ok"), "requests": r.requests,
                     "total_tokens": r.total_tokens, "cost_usd": _money(r.cost_usd)}
                    for r in top[:settings.reports.top_accounts]]
    accounts_here = {r.key for r in by_account}
    listed = {state: [w for a, w in sorted(states.items()) if w["state"] == state and a in accounts_here]
              for state in ("warned", "over", "blocked")}

    unattributed = next((r for r in by_account if r.key == UNATTRIBUTED), None)
    by_model = use("model")
    chart_first = last - timedelta(days=CHART_DAYS - 1)
    per_day = {r.key: r for r in use("day", chart_first, last)}
    days = [chart_first + timedelta(days=i) for i in range(CHART_DAYS)]
    final = all(is_final(d, tz, settings.summaries_settle, now) for d in _days(first, last))
    report = {
        "kind": period.kind,
        "title": f"{period.kind.capitalize()} LLM cost report: {period.label}" + (f" ({tenant})" if tenant else ""),
        "period": period.as_dict(settings.timezone),
        "previous": {"label": prev.label, "first": prev.first.isoformat(), "last": prev.last.isoformat()},
        "tenant": tenant,
        "generated_at": now.isoformat(),
        "cutoff": now.isoformat(),
        "status": "final" if final else "provisional",
        "totals": _public_totals(totals),
        "previous_totals": _public_totals(prev_totals),
        "change": {k: _change(totals[k], prev_totals[k]) for k in ("requests", "total_tokens", "cost_usd")},
        "by_model": _breakdown(by_model, cost),
        "by_provider": _breakdown(use("provider"), cost),
        "by_service": _breakdown(use("service"), cost),
        "by_tenant": [] if tenant else _breakdown(use("tenant"), cost),
        "top_accounts": top_accounts,
        "budget": {**listed,
                   "scopes": scope_states(conn, settings, first, last, tenant),  # scopes over or near budget
                   "system": _system_state(conn, settings, first, last, by_day, tenant)},
        "quality": {
            # rejects and integrity alerts belong to no tenant: a tenant's report has none (None)
            **(_organisation_quality(conn, start, end) if tenant is None else dict.fromkeys(ORGANISATION_QUALITY)),
            "unattributed_requests": unattributed.requests if unattributed else 0,
            "unattributed_cost_usd": _money(unattributed.cost_usd if unattributed else 0),
            "unpriced_requests": totals["unpriced_requests"],
            "unpriced_models": sorted(r.key for r in by_model if r.unpriced_requests and r.key),
            "corrections": [] if tenant else _corrections(conn, first, start, end),
        },
        # the providers' own figures for the period's days (UTC days; the whole organisation, so not per tenant)
        "reconciliation": [] if tenant else reconcile.summary(conn, first, last),
        # the sources are the organisation's: their names and times are not in a tenant's report
        "freshness": [] if tenant else [{"source": s.source, "newest_event_at": s.newest_event_at.isoformat(),
                                         "last_ingest_at": s.last_ingest_at.isoformat()}
                                        for s in conn.execute(select(SourceStatus).order_by(SourceStatus.source))],
        "forecast": _forecast(conn, settings, period, tenant, min(end, now)),
        "daily_cost": [{"day": d.isoformat(), "requests": per_day[d.isoformat()].requests if d.isoformat() in per_day
                        else 0, "cost_usd": _money(per_day[d.isoformat()].cost_usd if d.isoformat() in per_day else 0),
                        "in_period": first <= d <= last} for d in days],
        "build": {"ledger_rows": ledger_totals(conn, settings, period, tenant)["ledger_rows"],
                  "settings_hash": settings_hash(settings), "version": None},
    }
    return report


def _forecast(conn: Connection, settings: Settings, period: Period, tenant: str | None,
              as_of: datetime) -> dict[str, Any] | None:
    """The month at the period's end (a monthly report: the next month, from its pattern alone) forecast to
    its end for the system, or the report's tenant (``worker.anomalies.forecast``); None in a weekly report."""
    if period.kind == "weekly":
        return None
    scope = ("tenant", tenant) if tenant else ("system", "")
    found = fc.forecasts(conn, settings.tz, settings.anomalies.history_weeks, as_of, kinds=(scope[0],), only=scope)
    month = as_of.astimezone(settings.tz).strftime("%Y-%m")
    if not found:
        return {"month": month, "as_of": as_of.isoformat(), "so_far_usd": _money(0), "forecast_usd": _money(0),
                "low_usd": _money(0), "high_usd": _money(0), "basis": "none"}
    f = found[0]
    return {"month": month, "as_of": as_of.isoformat(), "so_far_usd": _money(f.so_far),
            "forecast_usd": _money(f.forecast), "low_usd": _money(f.low), "high_usd": _money(f.high),
            "basis": f.basis}


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _tenants_of(conn: Connection, accounts: list[str], start: datetime, end: datetime) -> dict[str, str]:
    """The organisation's report: each account's tenants in the period, every one of them
    (``acme, globex`` for an account that moved), so no tenant is hidden behind another."""
    wanted = set(accounts)
    if not wanted:
        return {}
    rows = conn.execute(select(UsageEvent.account_id, UsageEvent.tenant_id).distinct().where(
        UsageEvent.occurred_at >= start, UsageEvent.occurred_at < end, UsageEvent.tenant_id.is_not(None)))
    tenants: dict[str, set[str]] = {}
    for account, tenant in rows:
        if account in wanted:
            tenants.setdefault(account, set()).add(tenant)
    return {a: ", ".join(sorted(t)) for a, t in tenants.items()}


def _organisation_quality(conn: Connection, start: datetime, end: datetime) -> dict[str, int]:
    """The data-quality counts that belong to no tenant: rejected records, integrity alerts."""
    return {
        "open_rejects": conn.execute(select(func.count()).select_from(IngestReject)
                                     .where(IngestReject.status == "open")).scalar_one(),
        "rejects_in_period": conn.execute(select(func.count()).select_from(IngestReject).where(
            IngestReject.received_at >= start, IngestReject.received_at < end)).scalar_one(),
        "open_integrity_alerts": conn.execute(select(func.count()).select_from(Alert).where(
            Alert.kind.like("integrity.%"), Alert.state != "resolved")).scalar_one(),
    }


def _system_state(conn: Connection, settings: Settings, first: date, last: date,
                  by_day: list[UsageRow], tenant: str | None) -> dict[str, Any]:
    """The highest system threshold reached on a day of the period (thresholds are daily),
    the costliest day's cost, and whether the kill switch is on now. A tenant's report
    shows its own costliest day and the kill switch, not the system's figures."""
    peak = max((r.cost_usd for r in by_day), default=Decimal(0))
    if tenant is not None:
        return {"severity": None, "cost_usd": _money(peak), "kill_switch": kill_switch(conn) is not None,
                "thresholds": {}}
    days = {d.isoformat() for d in _days(first, last)}
    worst = None
    for a in conn.execute(select(Alert.period, Alert.severity).where(Alert.kind == "budget.system")):
        if a.period in days and (worst is None or SEVERITIES.index(a.severity) > SEVERITIES.index(worst)):
            worst = a.severity
    return {"severity": worst, "cost_usd": _money(peak), "kill_switch": kill_switch(conn) is not None,
            "thresholds": {s: str(v) for s, v in thresholds(settings)}}


def _corrections(conn: Connection, first: date, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Changes to earlier final days found during the period (late data)."""
    rows = conn.execute(select(SummaryCorrection).where(SummaryCorrection.detected_at >= start,
                                                        SummaryCorrection.detected_at < end,
                                                        SummaryCorrection.day < first)
                        .order_by(SummaryCorrection.day, SummaryCorrection.id))
    out = []
    for c in rows:
        changes = {k: [str(c.before.get(k)), str(c.after.get(k))] for k in c.changed}
        out.append({"day": c.day.isoformat(), "detected_at": c.detected_at.isoformat(), "changes": changes})
    return out
