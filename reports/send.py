"""Which report goes where: a report's messages enqueued to its targets, and the report jobs' run.

:func:`send` enqueues an archived report to its routes (``report.<kind>``, severity
"info") or, for a tenant's report, to that tenant's contacts (``reports.tenants``),
one message per target with the chart inline; the outbox delivers them. The message links
to the report: a signed link to that version on the console when ``[web] public_url`` is set
(``reports.links``), else the archive served at ``[reports] base_url``.
:func:`run_report_job` is what the ``daily_report``, ``weekly_report`` and
``monthly_report`` jobs do: the period (the last complete one, or the one containing
the operator's date), the whole organisation's report and then one per tenant with
contacts, each archived and sent.

Invariants: the message key names the report version (``report-<kind>-<period>[-<tenant>]-v<N>``),
so enqueueing a version twice adds nothing. A period's report is sent once: a scheduled
or catch-up run skips a period already sent; a manual run (``jobs run``, ``report --send``)
builds and archives a new version but sends it only with ``resend`` (``--resend``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, select

from worker import clock
from worker.alerts.enqueue import enqueue
from worker.models import Notification, Report
from worker.registry import JobContext
from worker.settings import Settings
from worker.settings.routing import targets_for

from reports.archive import Archived, archive, report_url
from reports.links import report_link, signing_key
from reports.messages import make_message
from reports.periods import last_complete, period_containing


def sent_before(engine: Engine, kind: str, period: str, tenant: str | None) -> int | None:
    """The id of a report of this period and scope that was already sent, if any."""
    with engine.connect() as conn:
        return conn.execute(select(Report.id).where(Report.kind == kind, Report.period == period,
                                                    Report.tenant == (tenant or ""), Report.sent > 0)
                            .order_by(Report.id)).scalar()


def message_key(row: Any) -> str:
    """The outbox key of a report version's messages."""
    return f"report-{row.kind}-{row.period}" + (f"-{row.tenant}" if row.tenant else "") + f"-v{row.version}"


def queued(engine: Engine, row: Any) -> list[int]:
    """The outbox rows of a report version that are not sent yet (what ``--wait`` delivers)."""
    with engine.connect() as conn:
        return list(conn.execute(select(Notification.id).where(Notification.key == message_key(row),
                                                               Notification.status == "pending")
                                 .order_by(Notification.id)).scalars())


def send(engine: Engine, settings: Settings, archived: Archived) -> int:
    """Enqueue the report to its routes (``report.<kind>``) or, for a tenant's report, to the
    tenant's contacts. One message per target and report version (idempotent)."""
    row, report = archived.row, archived.report
    kind = f"report.{row.kind}"
    if row.tenant:
        targets = list(settings.reports.tenants.get(row.tenant, ()))
    else:
        targets = targets_for(settings.routes, kind, "info")
    key = message_key(row)
    # a signed link to this version on the console when [web] public_url is set, else the served archive
    url = (report_link(settings, signing_key(settings, engine), row.id, row.version)
           or report_url(settings, archived.directory))
    now = clock.now()
    added = 0
    with engine.begin() as conn:
        for channel, target in targets:
            message = make_message("report", {"report": report, "chart_cid": "chart", "report_url": url,
                                              "channel": channel, "target": target},
                                   kind=kind, key=key, data={"report": report, "report_url": url})
            message = replace(message, inline={"chart": str(archived.chart.resolve())})
            added += enqueue(conn, message, channel, target, now)
        conn.execute(Report.__table__.update().where(Report.id == row.id).values(sent=Report.sent + added))
    archived.messages = added
    return added


def run_report_job(ctx: JobContext, kind: str) -> dict[str, Any]:
    """The previous local day, week (Monday-Sunday) or month, archived and sent; then one
    report per tenant that has contacts (``reports.tenants``), with only its own data."""
    settings = ctx.settings
    if ctx.date_from is not None:  # an operator asked for the period containing this date
        period = period_containing(kind, ctx.date_from)
    else:
        period = last_complete(kind, ctx.now(), settings)
    scopes: list[str | None] = [None, *sorted(settings.reports.tenants)]
    if ctx.dry_run:
        return {"dry_run": True, "period": period.label, "reports": [s or "(all)" for s in scopes]}
    done: dict[str, Any] = {"period": period.label, "reports": []}
    for tenant in scopes:
        if ctx.should_stop():
            break
        sent = sent_before(ctx.engine, kind, period.label, tenant)  # once per period
        if sent is not None and ctx.trigger != "manual":
            done["reports"].append({"tenant": tenant, "skipped": f"already sent (report {sent})"})
            continue
        archived = archive(ctx.engine, settings, period, tenant=tenant, trigger=ctx.trigger)
        entry: dict[str, Any] = {"tenant": tenant, "report": archived.row.id, "version": archived.row.version,
                                 "path": str(archived.directory)}
        if sent is not None and not ctx.resend:
            entry.update(messages=0, not_sent=f"already sent (report {sent}); --resend sends it again")
        else:
            entry["messages"] = send(ctx.engine, settings, archived)
            if sent is not None:
                entry["resent"] = f"sent again (first sent as report {sent})"
        done["reports"].append(entry)
    return done
