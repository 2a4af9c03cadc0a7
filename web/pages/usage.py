"""The usage page (a range of local dates grouped by one dimension) and its CSV download."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from worker.settings import Settings
from worker.summaries.usage import FIELDS
from web.auth import Principal
from web.deps import get_engine, get_settings, require_reader
from web.pages.viewer import show, tenant_of
from web.views import usage as usage_view

router = APIRouter()


def _form(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in ("from", "to", "by")}


def _parse(settings: Settings, form: dict[str, str]) -> usage_view.UsageQuery:
    return usage_view.parse_query(settings, form["from"] or None, form["to"] or None, form["by"] or None)


@router.get("/usage", response_class=HTMLResponse)
def usage_page(request: Request, principal: Principal = Depends(require_reader),
               engine: Engine = Depends(get_engine), settings: Settings = Depends(get_settings)) -> HTMLResponse:
    form = _form(request)
    try:
        q = _parse(settings, form)
    except usage_view.UsageQueryError as exc:
        return show(request, principal, "usage.html", status_code=422, form=form, groups=usage_view.GROUPS,
                    error=str(exc), q=None, rows=[], totals=None, more=0, ledger_only=usage_view.LEDGER_ONLY)
    form = {"from": q.first.isoformat(), "to": q.last.isoformat(), "by": q.by}
    with engine.connect() as conn:
        rows = usage_view.rows(conn, settings, q, tenant_of(principal))
    totals = {name: sum((r[name] if name != "cost_usd" else Decimal(r[name]) for r in rows),
                        Decimal(0) if name == "cost_usd" else 0) for name in FIELDS}
    return show(request, principal, "usage.html", form=form, groups=usage_view.GROUPS, error=None, q=q,
                rows=rows[:usage_view.ROWS], totals=totals, more=max(len(rows) - usage_view.ROWS, 0),
                ledger_only=usage_view.LEDGER_ONLY)


@router.get("/usage.csv")
def usage_csv(request: Request, principal: Principal = Depends(require_reader),
              engine: Engine = Depends(get_engine), settings: Settings = Depends(get_settings)) -> Response:
    form = _form(request)
    try:
        q = _parse(settings, form)
    except usage_view.UsageQueryError as exc:
        raise HTTPException(422, str(exc)) from None
    with engine.connect() as conn:
        rows = usage_view.rows(conn, settings, q, tenant_of(principal))
    name = f"usage-{q.first.isoformat()}-{q.last.isoformat()}-by-{q.by}.csv"
    return Response(usage_view.to_csv(rows, q), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
