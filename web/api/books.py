"""Reading the books: ``/v1/usage``, ``/v1/status``, ``/v1/limits/{account}``, ``/v1/alerts``, ``/v1/reports``.

Admins and auditors read everything; a tenant token reads only its tenant's usage, accounts,
alerts and reports (another tenant's account is 404, as if it did not exist); ``/v1/status`` is
about the whole installation, so a tenant gets 403. App tokens read nothing here (403).
The figures are the CLI's (``worker.summaries.usage``, ``worker.gate``, ``worker.status``).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy import or_, select

from worker import clock, gate
from worker.limits import windows as limits
from worker.models import Account, Alert, Report
from worker.status import status as status_of
from worker.summaries import usage as usage_mod
from web.api.schemas import ID_PATTERN, AlertOut, Limits, ReportOut, Status, Usage
from web.auth import Principal, report_link
from web.deps import get_engine, get_key, get_settings, require_reader, require_staff

router = APIRouter(tags=["books"])

MAX_DAYS = 3660
GroupBy = Literal[tuple(usage_mod.GROUPS)]  # the CLI's --by choices


def tenant_filter(principal: Principal) -> str | None:
    """The tenant a principal is confined to (None: it sees every tenant)."""
    return principal.tenant_id if principal.scope == "tenant" else None


@router.get("/usage", response_model=Usage, response_model_by_alias=True,
            summary="Usage totals for a range of local dates, grouped (the CLI's `usage`)")
def usage(request: Request,
          date_from: date = Query(alias="from", description="First local date (inclusive)"),
          date_to: date = Query(alias="to", description="Last local date (inclusive)"),
          by: GroupBy = Query("day"),
          principal: Principal = Depends(require_reader)) -> dict:
    if date_to < date_from:
        raise HTTPException(422, "`to` is before `from`")
    if (date_to - date_from).days > MAX_DAYS:
        raise HTTPException(422, f"at most {MAX_DAYS} days at once")
    settings, tenant = get_settings(request), tenant_filter(principal)
    with get_engine(request).connect() as conn:
        rows = usage_mod.usage(conn, settings.tz, date_from, date_to, by, tenant=tenant)
    key = usage_mod.GROUPS[by]
    return {"from": date_from, "to": date_to, "by": by, "key": key, "timezone": settings.timezone,
            "tenant": tenant, "rows": [r.as_dict(key) for r in rows]}


@router.get("/status", response_model=Status, summary="Freshness per source, open counts, last job runs")
def status(request: Request, principal: Principal = Depends(require_staff)) -> dict:
    return status_of(get_settings(request), get_engine(request))


@router.get("/limits/{account}", response_model=Limits,
            summary="An account's tier, its windows (used / limit, reset) and the gate's decision")
def account_limits(request: Request, account: str = Path(max_length=200, pattern=ID_PATTERN),
                   principal: Principal = Depends(require_reader)) -> dict:
    settings, now = get_settings(request), clock.now()
    with get_engine(request).connect() as conn:
        tenant = conn.execute(select(Account.tenant_id).where(Account.account_id == account)).scalar()
        confined = tenant_filter(principal)
        if confined is not None and tenant != confined:
            raise HTTPException(404, f"no account {account!r} in tenant {confined!r}")
        tier = limits.tier_of(conn, settings, account)
        views = gate.windows(conn, settings, account, now, tier)
        decision = gate.decide(conn, settings, account, now)
    return {"account_id": account, "tenant": tenant, "tier": tier.name if tier else None,
            "action": tier.action if tier else None, "decision": decision.as_dict(),
            "windows": [v.as_dict() for v in views]}


@router.get("/alerts", response_model=list[AlertOut], summary="Alerts, newest first")
def alerts(request: Request,
           state: Literal["open", "acknowledged", "resolved", "unresolved", "all"] = Query(
               "unresolved", description="unresolved = open or acknowledged"),
           limit: int = Query(100, ge=1, le=1000),
           principal: Principal = Depends(require_reader)) -> list:
    query = select(Alert).order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit)
    if state == "unresolved":
        query = query.where(Alert.state != "resolved")
    elif state != "all":
        query = query.where(Alert.state == state)
    if (tenant := tenant_filter(principal)) is not None:
        accounts = select(Account.account_id).where(Account.tenant_id == tenant)
        query = query.where(or_((Alert.scope == "tenant") & (Alert.scope_id == tenant),
                                (Alert.scope == "account") & Alert.scope_id.in_(accounts)))
    with get_engine(request).connect() as conn:
        return [row._asdict() for row in conn.execute(query)]


@router.get("/reports", response_model=list[ReportOut], summary="Archived report versions, newest first")
def reports(request: Request, kind: Literal["daily", "weekly", "monthly"] | None = None,
            limit: int = Query(100, ge=1, le=1000),
            principal: Principal = Depends(require_reader)) -> list:
    query = select(Report).order_by(Report.generated_at.desc(), Report.id.desc()).limit(limit)
    if kind:
        query = query.where(Report.kind == kind)
    if (tenant := tenant_filter(principal)) is not None:
        query = query.where(Report.tenant == tenant)
    settings, key = get_settings(request), get_key(request)
    with get_engine(request).connect() as conn:
        rows = conn.execute(query).all()
    return [{"id": r.id, "kind": r.kind, "period": r.period, "tenant": r.tenant or None, "version": r.version,
             "status": r.status, "first_day": r.first_day, "last_day": r.last_day, "generated_at": r.generated_at,
             "cutoff": r.cutoff, "ledger_rows": r.ledger_rows, "requests": r.totals.get("requests"),
             "cost_usd": None if r.totals.get("cost_usd") is None else str(r.totals["cost_usd"]), "sent": r.sent,
             "link": report_link(settings, key, r.id, r.version)} for r in rows]
