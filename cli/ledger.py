"""ingest, usage, reprice."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from worker.summaries import usage as usage_mod
from worker.ingest.ingestor import IngestError, Ingestor
from worker.ledger.reprice import reprice as reprice_range
from worker.settings import SettingsError
from cli import app, fail, state
from cli.output import Format, console, emit_object, emit_rows


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: expected a date like 2026-10-30, got {value!r}", code=2)


@app.command()
def ingest(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files (.jsonl, .csv, optionally .gz) or directories"),
    source: Optional[str] = typer.Option(None, "--source", help="Configured source whose defaults apply"),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Ingest files once and print what happened."""
    st = state(ctx)
    settings = st.settings()
    src = None
    if source:
        try:
            src = settings.source(source)
        except SettingsError as exc:
            fail(str(exc), code=2)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or directory: {', '.join(missing)}", code=2)
    ingestor = Ingestor(settings, st.engine())
    show_bar = fmt is not Format.json and sys.stderr.isatty()
    try:
        if show_bar:
            total = sum(p.stat().st_size for p in _files(paths))
            with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                          TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=True) as bar:
                task = bar.add_task("ingesting", total=total)
                stats = ingestor.ingest_paths(paths, src, progress=lambda n: bar.advance(task, n))
        else:
            stats = ingestor.ingest_paths(paths, src)
    except IngestError as exc:
        fail(str(exc))
    result = stats.as_dict()
    if stats.errors:
        result["errors"] = stats.errors
    emit_object(result, fmt, title="ingest")
    if stats.errors:
        fail(f"{len(stats.errors)} file(s) could not be read: " + "; ".join(stats.errors))


def _files(paths: list[Path]) -> list[Path]:
    from worker.ingest.files import expand

    return expand(paths)


@app.command()
def usage(
    ctx: typer.Context,
    date_from: str = typer.Option(..., "--from", help="First local date (inclusive), e.g. 2026-10-01"),
    date_to: str = typer.Option(..., "--to", help="Last local date (inclusive)"),
    by: str = typer.Option("day", "--by", help="day, month, model, provider, service, account or tenant"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """Usage totals for a range of local dates, grouped."""
    first, last = _date(date_from, "--from"), _date(date_to, "--to")
    if last < first:
        fail("--to is before --from", code=2)
    if by not in usage_mod.GROUPS:
        fail(f"--by must be one of {', '.join(usage_mod.GROUPS)}", code=2)
    st = state(ctx)
    settings = st.settings()
    with st.engine().connect() as conn:
        rows = usage_mod.usage(conn, settings.tz, first, last, by)
    key = usage_mod.GROUPS[by]
    emit_rows([r.as_dict(key) for r in rows], [key, *usage_mod.FIELDS], fmt,
              title=f"usage {first}..{last} by {by} ({settings.timezone})")


@app.command()
def reprice(
    ctx: typer.Context,
    date_from: str = typer.Option(..., "--from", help="First local date (inclusive)"),
    date_to: str = typer.Option(..., "--to", help="Last local date (inclusive)"),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Recompute costs of the events in a range after pricing settings changed."""
    first, last = _date(date_from, "--from"), _date(date_to, "--to")
    st = state(ctx)
    result = reprice_range(st.settings(), st.engine(), first, last)
    emit_object(result, fmt, title="reprice")
