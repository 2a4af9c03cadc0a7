"""report daily|weekly|monthly, and reports list / show / verify / serve."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import orjson
import typer
from sqlalchemy import Engine, select

from worker import clock
from reports import archive as report_archive, outbox, periods as report_periods, send as report_send
from worker.models import Report
from worker.registry import registry
from worker.scheduler import make_trigger, schedule_for
from worker.settings import Settings
from cli.options import parse_date
from cli.output import Format, ObjectFormat, console, emit_object, emit_rows
from cli.state import fail, state

commands = typer.Typer()  # its top-level commands (cli.commands lists them)
reports_app = typer.Typer(no_args_is_help=True, help="The report archive: list, show, verify, serve.")


@commands.command("report")
def report(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="daily, weekly or monthly"),
    day: str = typer.Option(None, "--date", help="A local date in the period (default: the last complete period)"),
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant's data (sent to its contacts)"),
    send: bool = typer.Option(False, "--send/--no-send", help="Also send it (routes report.<kind>, or the tenant's "
                              "contacts): queued for the notify job; a period already sent is not sent again"),
    resend: bool = typer.Option(False, "--resend", help="With --send: send it though this period was already sent"),
    wait: bool = typer.Option(False, "--wait", help="With --send: deliver the messages now, not on the notify job's run"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Build a report now, archive it as a new version and print where it is."""
    if kind not in report_periods.KINDS:
        fail(f"KIND must be one of {', '.join(report_periods.KINDS)}", code=2)
    if (resend or wait) and not send:
        fail("--resend and --wait go with --send", code=2)
    st = state(ctx)
    settings = st.settings()
    when = parse_date(day, "--date")
    period = (report_periods.period_containing(kind, when) if when
              else report_periods.last_complete(kind, clock.now(), settings))
    engine = st.engine()
    sent = report_send.sent_before(engine, kind, period.label, tenant) if send else None
    delivery, messages = "not sent (--send sends it)", 0
    try:
        archived = report_archive.archive(engine, settings, period, tenant=tenant, trigger="cli")
        if send and sent is not None and not resend:
            delivery = f"not sent: this period was already sent (report {sent}); --resend sends it again"
        elif send:
            messages = report_send.send(engine, settings, archived)
            delivery = _deliver(engine, settings, archived.row) if wait else _queued_until(settings)
            if sent is not None:
                delivery += f" (sent again: first sent as report {sent})"
    except report_periods.ReportError as exc:
        fail(str(exc))
    t = archived.report["totals"]
    emit_object({"report": archived.row.id, "kind": kind, "period": period.label, "tenant": tenant,
                 "version": archived.row.version, "status": archived.report["status"], "path": str(archived.directory),
                 "requests": t["requests"], "total_tokens": t["total_tokens"], "cost_usd": t["cost_usd"],
                 "messages": messages, "delivery": delivery}, fmt, title="report archived")


def _queued_until(settings: Settings) -> str:
    """When the notify job (the daemon's) will send what was queued."""
    spec = registry.get("notify")
    trigger = make_trigger(schedule_for(spec, settings), settings, "schedule.notify")
    if trigger is None:
        return "queued; the notify job is off (schedule.notify): --wait sends it now"
    at = trigger.get_next_fire_time(None, clock.now()).astimezone(settings.tz)
    return f"queued; the notify job sends it at {at:%Y-%m-%d %H:%M %Z} if the daemon runs (--wait sends it now)"


def _deliver(engine: Engine, settings: Settings, row: Report) -> str:
    """--wait: deliver this report version's queued messages now."""
    ids = report_send.queued(engine, row)
    sent = sum(outbox.deliver_pending(engine, settings, only=notification).sent for notification in ids)
    return f"sent now: {sent} of {len(ids)}" + (f", {len(ids) - sent} not sent (see `tokentally notifications list`)"
                                               if sent < len(ids) else "")


def _row_dict(r: Report) -> dict:
    return {"id": r.id, "kind": r.kind, "period": r.period, "tenant": r.tenant or None, "version": r.version,
            "status": r.status, "generated_at": r.generated_at.isoformat(), "ledger_rows": r.ledger_rows,
            "cost_usd": r.totals.get("cost_usd"), "requests": r.totals.get("requests"), "sent": r.sent,
            "path": r.path}


@reports_app.command("list")
def list_(
    ctx: typer.Context,
    kind: str = typer.Option(None, "--kind", help="daily, weekly or monthly"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """Every archived report version, newest first."""
    query = select(Report).order_by(Report.generated_at.desc(), Report.id.desc())
    if kind:
        query = query.where(Report.kind == kind)
    with state(ctx).engine().connect() as conn:
        rows = [_row_dict(r) for r in conn.execute(query)]
    emit_rows(rows, ["id", "kind", "period", "tenant", "version", "status", "generated_at", "requests", "cost_usd",
                     "sent", "path"], fmt, title="reports")


def _get(ctx: typer.Context, report_id: int) -> Report:
    with state(ctx).engine().connect() as conn:
        row = conn.execute(select(Report).where(Report.id == report_id)).first()
    if row is None:
        fail(f"no report {report_id} (see `tokentally reports list`)")
    return row


@reports_app.command("show")
def show(ctx: typer.Context, report_id: int = typer.Argument(..., help="Report id (see `reports list`)"),
         fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json")) -> None:
    """A report's manifest and headline figures."""
    row = _get(ctx, report_id)
    try:
        figures = orjson.loads((Path(row.path) / "report.json").read_bytes())
    except OSError as exc:
        fail(f"report {report_id}: cannot read {row.path}/report.json: {exc.strerror}")
    if fmt == Format.json:
        sys.stdout.write(orjson.dumps({**_row_dict(row), "report": figures}).decode() + "\n")
        return
    emit_object(_row_dict(row), Format.table, title=figures.get("title"))
    emit_rows(figures["by_model"], ["key", "requests", "total_tokens", "cost_usd", "share"], Format.table,
              title="cost by model")


@reports_app.command("verify")
def verify(
    ctx: typer.Context,
    report_id: int = typer.Argument(None, help="Report id (see `reports list`)"),
    all_: bool = typer.Option(False, "--all", help="Every archived report"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Recompute every file's sha256 and re-derive the totals from the ledger.
    Exit 2: files were altered; exit 1: the data changed since; 0: both as archived."""
    if (report_id is None) == (not all_):
        fail("give a report id or --all", code=2)
    st = state(ctx)
    if all_:
        with st.engine().connect() as conn:
            rows = list(conn.execute(select(Report).order_by(Report.id)))
    else:
        rows = [_get(ctx, report_id)]
    results = [report_archive.verify(st.engine(), st.settings(), row) for row in rows]
    if fmt == Format.json:
        sys.stdout.write(orjson.dumps([r.as_dict() for r in results]).decode() + "\n")
    else:
        for r in results:
            line = f"report {r.report_id}: {r.as_dict()['verdict']}"
            if r.altered:
                line += f" ({', '.join(r.altered)})"
            if r.changed:
                line += " (" + "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in r.changed.items()) + ")"
            console.print(line, markup=False, highlight=False)
    code = max((r.code for r in results), default=0)
    if code:
        raise typer.Exit(code)


@reports_app.command("serve")
def serve(ctx: typer.Context,
          port: Optional[int] = typer.Option(None, "--port", min=1, max=65535,
                                             help="Port, overrides [web] port (8765)"),
          bind: Optional[str] = typer.Option(None, "--bind", help="Address to listen on, overrides [web] bind")) -> None:
    """The archive in a browser, through the console's authenticated report pages (`tokentally web`
    at /reports): a token is needed, and a tenant token sees only its tenant's reports."""
    # The web stack (FastAPI, pydantic, uvicorn) is imported here, when the console is served: the
    # report commands beside it need none of it (CLI start, issue 18).
    from cli.console import serve_console  # noqa: PLC0415
    serve_console(ctx, bind, port, page="/reports")
