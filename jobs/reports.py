"""The report jobs: the previous local day, week (Monday-Sunday) and month, archived and sent;
then one report per tenant that has contacts (``reports.tenants``), with only its own data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from reports import figures as report
from worker.models import Report
from worker.registry import JobContext, job


def _run(ctx: JobContext, kind: str) -> dict[str, Any]:
    settings = ctx.settings
    if ctx.date_from is not None:  # an operator asked for the period containing this date
        period = report.period_containing(kind, ctx.date_from)
    else:
        period = report.last_complete(kind, ctx.now(), settings)
    scopes: list[str | None] = [None, *sorted(settings.reports.tenants)]
    if ctx.dry_run:
        return {"dry_run": True, "period": period.label, "reports": [s or "(all)" for s in scopes]}
    done: dict[str, Any] = {"period": period.label, "reports": []}
    for tenant in scopes:
        if ctx.should_stop():
            break
        with ctx.engine.connect() as conn:  # once per period: a scheduled/catch-up run does not repeat a sent one
            sent = conn.execute(select(Report.id).where(Report.kind == kind, Report.period == period.label,
                                                        Report.tenant == (tenant or ""), Report.sent > 0)).first()
        if sent is not None and ctx.trigger != "manual":
            done["reports"].append({"tenant": tenant, "skipped": f"already sent (report {sent[0]})"})
            continue
        archived = report.archive(ctx.engine, settings, period, tenant=tenant, trigger=ctx.trigger)
        messages = report.send(ctx.engine, settings, archived)
        done["reports"].append({"tenant": tenant, "report": archived.row.id, "version": archived.row.version,
                                "path": str(archived.directory), "messages": messages})
    return done


@job("daily_report", schedule="0 9 * * *", description="Archive and send the previous local day's cost report")
def daily_report(ctx: JobContext) -> dict[str, Any]:
    return _run(ctx, "daily")


@job("weekly_report", schedule="0 9 * * 1", description="Archive and send last week's (Monday-Sunday) cost report")
def weekly_report(ctx: JobContext) -> dict[str, Any]:
    return _run(ctx, "weekly")


@job("monthly_report", schedule="0 9 1 * *", description="Archive and send last month's cost report")
def monthly_report(ctx: JobContext) -> dict[str, Any]:
    return _run(ctx, "monthly")
