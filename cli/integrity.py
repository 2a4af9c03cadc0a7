"""integrity check, reconcile, reconciliations list, attempts list: unlogged calls and gaps in the books,
and the providers' own figures against the ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Optional

import typer
from sqlalchemy import select

from reports import messages
from worker import clock
from worker.integrity import run as integrity_mod
from worker.integrity import reconcile as reconcile_mod
from worker.integrity.base import Finding
from worker.models import ATTEMPT_STATES, CallAttempt
from worker.providers import ProviderError
from worker.settings import SettingsError
from cli.options import date_range
from cli.output import Format, ObjectFormat, console, emit_object, emit_rows
from cli.state import fail, state

commands = typer.Typer()  # its top-level commands (cli.commands lists them)
integrity_app = typer.Typer(no_args_is_help=True, help="Unlogged calls and gaps in the books.")
reconciliations_app = typer.Typer(no_args_is_help=True, help="Stored comparisons with the providers' usage reports.")
attempts_app = typer.Typer(no_args_is_help=True, help="Call attempts logged by apps before calling an LLM.")


def finding_sentence(finding: Finding) -> str:
    """The finding worded by ``templates/findings/<check>.txt.j2``, as its alert words it."""
    facts = {**finding.payload(), "scope_id": finding.scope_id, "period": finding.period}
    return messages.render(f"findings/{finding.check}.txt.j2", {"finding": facts}).strip()


@integrity_app.command("check")
def check(
    ctx: typer.Context,
    date_from: Annotated[Optional[str], typer.Option("--from", help="First local date (default: integrity.days "
                                                                      "days back, TOKENTALLY_INTEGRITY_DAYS)")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="Last local date (default: today)")] = None,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Run only this check (repeatable)")] = None,
    alert: bool = typer.Option(False, "--alert", help="Also act as the integrity job does: raise and resolve "
                                                      "alerts, mark call attempts"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Run every integrity check now and print the findings; exit 1 when there are any."""
    st = state(ctx)
    settings, engine = st.settings(), st.engine()
    now = clock.now()
    first, last = date_range(date_from, date_to, integrity_mod.default_range(settings, now))
    if alert and only:
        fail("--alert runs every check (an alert of a check left out would look resolved); drop --only", code=2)
    try:
        with engine.begin() as conn:
            findings = integrity_mod.run_checks(conn, settings, now, first, last, only=only)
            applied = integrity_mod.apply(conn, settings, now, first, last, findings) if alert else None
    except ValueError as exc:
        fail(str(exc), code=2)
    try:
        sentences = [finding_sentence(f) for f in findings]
    except messages.RenderError as exc:
        fail(str(exc))
    if fmt == Format.json:
        emit_object({"from": first.isoformat(), "to": last.isoformat(), "ok": not findings,
                     "findings": [{**f.as_dict(), "message": m} for f, m in zip(findings, sentences)],
                     **({"applied": applied.as_dict()} if applied else {})}, fmt)
    elif findings:
        emit_rows([{"kind": f.kind, "scope": f"{f.scope} {f.scope_id}".strip(), "period": f.period,
                    "count": f.count, "finding": m} for f, m in zip(findings, sentences)],
                  ["kind", "scope", "period", "count", "finding"], fmt,
                  title=f"integrity findings, {first.isoformat()} to {last.isoformat()}")
    else:
        console.print(f"no integrity findings from {first.isoformat()} to {last.isoformat()}")
    if applied and fmt != Format.json:
        console.print(f"alerts: {applied.alerts_raised} raised, {applied.alerts_resolved} resolved; attempts: "
                      f"{applied.attempts_matched} matched, {applied.attempts_unlogged} flagged unlogged")
    if findings:
        raise typer.Exit(1)


RECONCILE_COLUMNS = ["day", "model", "status", "provider_requests", "ledger_requests", "provider_input_tokens",
                     "ledger_input_tokens", "provider_output_tokens", "ledger_output_tokens", "provider_cost_usd",
                     "ledger_cost_usd"]


@commands.command("reconcile")
def reconcile(
    ctx: typer.Context,
    provider: str = typer.Option(..., "--provider", help="openai, anthropic or openrouter ([reconcile.<name>])"),
    date_from: Annotated[Optional[str], typer.Option("--from", help="First UTC date (default: reconcile.days "
                                                                      "back, TOKENTALLY_RECONCILE_DAYS)")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="Last UTC date (default: yesterday)")] = None,
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Fetch a provider's own usage report, compare it with the ledger per UTC day and model, store the
    result and raise alerts; exit 1 when a difference counts."""
    st = state(ctx)
    settings, engine = st.settings(), st.engine()
    now = clock.now()
    first, last = date_range(date_from, date_to, reconcile_mod.default_range(settings, now))
    try:
        result = reconcile_mod.run(engine, settings, provider, first, last, now)
    except SettingsError as exc:
        fail(str(exc), code=2)
    except ProviderError as exc:
        fail(f"reconcile: {exc}", code=3)
    rows = [{**r, "day": r["day"].isoformat()} for r in result.rows]
    flagged = [r for r in rows if r["status"] != "ok"]
    if fmt == Format.json:
        emit_object({**result.as_dict(), "results": rows}, fmt)
    else:
        emit_rows(rows, RECONCILE_COLUMNS, fmt, title=f"{provider}: provider vs ledger, UTC days "
                                                      f"{first.isoformat()} to {last.isoformat()}")
        if result.skipped_days:
            console.print("not compared (today, or beyond the provider's history): "
                          + ", ".join(d.isoformat() for d in result.skipped_days))
        for r in flagged:
            for x in r["detail"]["differences"]:
                console.print(f"{r['day']} {r['model']}: {x['measure']} provider {x['provider']} ledger "
                              f"{x['ledger']} ({x['direction']})")
    if flagged:
        raise typer.Exit(1)


@reconciliations_app.command("list")
def list_reconciliations(
    ctx: typer.Context,
    date_from: Annotated[Optional[str], typer.Option("--from", help="First UTC date (default: 30 days back)")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="Last UTC date (default: today)")] = None,
    provider: Optional[str] = typer.Option(None, "--provider"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """Stored reconciliations: provider and ledger figures side by side, with their status."""
    st = state(ctx)
    today = clock.now().date()
    first, last = date_range(date_from, date_to, (today - timedelta(days=30), today))
    with st.engine().connect() as conn:
        found = reconcile_mod.list_reconciliations(conn, first, last, provider)
    rows = [{"provider": r.provider, "day": r.day.isoformat(), "model": r.model, "status": r.status,
             "provider_requests": r.provider_requests, "ledger_requests": r.ledger_requests,
             "provider_input_tokens": r.provider_input_tokens, "ledger_input_tokens": r.ledger_input_tokens,
             "provider_output_tokens": r.provider_output_tokens, "ledger_output_tokens": r.ledger_output_tokens,
             "provider_cost_usd": r.provider_cost_usd, "ledger_cost_usd": r.ledger_cost_usd,
             "checked_at": r.checked_at.isoformat(), "differences": r.detail.get("differences", [])}
            for r in found]
    emit_rows(rows, ["provider", *RECONCILE_COLUMNS, "checked_at"], fmt, title="reconciliations")


@attempts_app.command("list")
def list_attempts(
    ctx: typer.Context,
    status: Optional[str] = typer.Option("unlogged", "--state", help=f"{' | '.join(ATTEMPT_STATES)} | all"),
    limit: int = typer.Option(100, "--limit"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """Call attempts, newest first (by default the unlogged ones: calls with no usage event)."""
    if status not in (*ATTEMPT_STATES, "all"):
        fail(f"--state: expected one of {', '.join(ATTEMPT_STATES)} or all, got {status!r}", code=2)
    query = select(CallAttempt).order_by(CallAttempt.started_at.desc()).limit(limit)
    if status != "all":
        query = query.where(CallAttempt.state == status)
    with state(ctx).engine().connect() as conn:
        found = conn.execute(query).all()
    emit_rows([{"attempt_id": a.attempt_id, "source": a.source, "started_at": a.started_at.isoformat(),
                "account_id": a.account_id, "service": a.service, "model": a.model,
                "estimated_tokens": a.estimated_tokens, "state": a.state, "actual_tokens": a.actual_tokens}
               for a in found],
              ["attempt_id", "source", "started_at", "account_id", "service", "model", "estimated_tokens",
               "state", "actual_tokens"], fmt, title=f"call attempts ({status})")
