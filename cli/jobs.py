"""jobs list / run / history: the jobs the daemon runs, run by hand and looked back on."""

from __future__ import annotations

from typing import Optional

import typer
from sqlalchemy import select

from worker import clock
from worker.models import JobRun
from worker.registry import registry
from worker.runs import run_job
from worker.scheduler import next_run
from worker.settings import SettingsError
from worker.status import last_runs
from cli.options import in_order, parse_date
from cli.output import Format, ObjectFormat, emit_object, emit_rows
from cli.state import fail, state

jobs_app = typer.Typer(no_args_is_help=True, help="The jobs the daemon runs; run any by hand.")


@jobs_app.command("list")
def list_(ctx: typer.Context, fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json")) -> None:
    """Every job: its schedule, next run, and how its last run went."""
    st = state(ctx)
    settings = st.settings()
    with st.engine().connect() as conn:
        runs = last_runs(conn)
    now = clock.now()
    rows = []
    for spec in registry.all():
        try:
            expr, nxt = next_run(spec, settings, now)
        except SettingsError as exc:
            fail(f"settings: {exc}", code=2)
        last = runs.get(spec.id)
        rows.append({"job": spec.id, "schedule": expr, "next_run": nxt.isoformat() if nxt else None,
                     "last_status": last.status if last else None,
                     "last_started_at": last.started_at.isoformat() if last else None,
                     "description": spec.description})
    emit_rows(rows, ["job", "schedule", "next_run", "last_status", "last_started_at", "description"], fmt,
              title="jobs")


@jobs_app.command("run")
def run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Job id (see `jobs list`)"),
    on_date: Optional[str] = typer.Option(None, "--date", help="Run for this local date"),
    date_from: Optional[str] = typer.Option(None, "--from", help="First local date"),
    date_to: Optional[str] = typer.Option(None, "--to", help="Last local date"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be done, change nothing"),
    resend: bool = typer.Option(False, "--resend",
                                help="Report jobs: send the period's report again though it was already sent"),
    chain: bool = typer.Option(True, "--chain/--no-chain",
                               help="Also run the jobs the daemon runs right after this one (budgets after ingest)"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Run a job now (recorded as a manual run) and print its stats; then, as the daemon does, the
    jobs that follow it (unless --no-chain). An option the job does not take is refused."""
    st = state(ctx)
    try:
        spec = registry.get(name)
    except KeyError as exc:
        fail(str(exc.args[0]), code=2)
    asked = [opt for opt, given in (("--date", on_date), ("--from", date_from), ("--to", date_to)) if given]
    if asked and "dates" not in spec.options:
        fail(f"job {spec.id} does not take {'/'.join(asked)}: it always works on what is current", code=2)
    if dry_run and "dry_run" not in spec.options:
        fail(f"job {spec.id} does not take --dry-run", code=2)
    if resend and "resend" not in spec.options:
        fail(f"job {spec.id} does not take --resend", code=2)
    if on_date and (date_from or date_to):
        fail("--date and --from/--to exclude each other", code=2)
    first = parse_date(on_date or date_from, "--date" if on_date else "--from")
    last = parse_date(on_date or date_to, "--date" if on_date else "--to") or first
    if date_to and not date_from:
        fail("--to needs --from", code=2)
    if first and last:
        in_order(first, last)
    result = run_job(spec, st.settings(), st.engine(), trigger="manual", date_from=first, date_to=last,
                     dry_run=dry_run, resend=resend)
    chained = []
    if chain and not dry_run and result.status == "success":
        for follower in registry.followers(spec.id):
            run = run_job(follower, st.settings(), st.engine(), trigger=f"after:{spec.id}")
            chained.append({"job": follower.id, "run_id": run.id, "status": run.status})
    emit_object({"job": spec.id, "run_id": result.id, "status": result.status, **(result.stats or {}),
                 **({"error": result.error} if result.error else {}), **({"chained": chained} if chained else {})},
                fmt, title=f"job {spec.id}")
    if result.status != "success" or any(c["status"] != "success" for c in chained):
        raise typer.Exit(1)


@jobs_app.command("history")
def history(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, help="Only this job"),
    limit: int = typer.Option(20, "--limit", min=1, help="How many runs, newest first"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """Past runs: when, why (schedule/manual/catch-up), how they ended, their stats."""
    query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if name:
        query = query.where(JobRun.job == name)
    with state(ctx).engine().connect() as conn:
        runs = conn.execute(query).all()
    rows = [{"id": r.id, "job": r.job, "trigger": r.trigger,
             "scheduled_for": r.scheduled_for.isoformat() if r.scheduled_for else None,
             "started_at": r.started_at.isoformat(),
             "finished_at": r.finished_at.isoformat() if r.finished_at else None, "status": r.status,
             "stats": r.stats, "error": (r.error or "").strip().splitlines()[-1] if r.error else None}
            for r in runs]
    emit_rows(rows, ["id", "job", "trigger", "scheduled_for", "started_at", "status", "stats", "error"], fmt,
              title="job history")
