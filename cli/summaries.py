"""summaries rebuild / verify."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from worker.summaries import recompute as summaries_mod, verify as summary_verify
from cli import app, fail, state
from cli.output import Format, console, emit_object, emit_rows

summaries_app = typer.Typer(no_args_is_help=True, help="Daily and monthly summaries.")
app.add_typer(summaries_app, name="summaries")


def _range(ctx: typer.Context, date_from: str | None, date_to: str | None) -> tuple[date, date] | None:
    st = state(ctx)
    try:
        first = date.fromisoformat(date_from) if date_from else None
        last = date.fromisoformat(date_to) if date_to else None
    except ValueError as exc:
        fail(f"--from/--to: {exc}", code=2)
    if first is None or last is None:
        span = summaries_mod.ledger_day_range(st.engine(), st.settings().tz)
        if span is None:
            return None
        first, last = first or span[0], last or span[1]
    if last < first:
        fail("--to is before --from", code=2)
    return first, last


FromDate = Annotated[Optional[str], typer.Option("--from", help="First local date (default: the ledger's first)")]
ToDate = Annotated[Optional[str], typer.Option("--to", help="Last local date (default: the ledger's last)")]


@summaries_app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    date_from: FromDate = None,
    date_to: ToDate = None,
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Recompute the summaries of every day in the range from the ledger."""
    span = _range(ctx, date_from, date_to)
    if span is None:
        emit_object({"days": 0, "months": 0, "corrections": 0}, fmt, title="summaries rebuild")
        return
    st = state(ctx)
    first, last = span
    if fmt is not Format.json and sys.stderr.isatty():
        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("rebuilding", total=(last - first).days + 1)
            result = summaries_mod.rebuild(st.engine(), st.settings(), first, last,
                                           progress=lambda n: bar.advance(task, n))
    else:
        result = summaries_mod.rebuild(st.engine(), st.settings(), first, last)
    emit_object({"from": first.isoformat(), "to": last.isoformat(), **result.as_dict()}, fmt,
                title="summaries rebuild")


@summaries_app.command("verify")
def verify(
    ctx: typer.Context,
    date_from: FromDate = None,
    date_to: ToDate = None,
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Recompute from the ledger and compare with the stored summaries; exit 1 when they differ."""
    span = _range(ctx, date_from, date_to)
    st = state(ctx)
    diffs = summary_verify.verify(st.engine(), st.settings(), *span) if span else []
    if fmt is Format.json:
        emit_object({"differences": diffs, "ok": not diffs}, fmt)
    elif diffs:
        emit_rows(diffs, ["day", "key", "ledger", "summary"], fmt, title="summaries differ from the ledger")
    else:
        console.print("summaries match the ledger")
    if diffs:
        raise typer.Exit(1)
