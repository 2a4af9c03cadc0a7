"""bench: performance figures, printed (never asserted in tests)."""

from __future__ import annotations

from typing import Optional

import typer

from cli import app, state
from cli.output import Format, emit_object, err_console

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")
app.add_typer(bench_app, name="bench")


@bench_app.command("ingest")
def ingest(
    ctx: typer.Context,
    events: int = typer.Option(100_000, "--events", min=1, help="How many events to generate and ingest"),
    database: Optional[str] = typer.Option(
        None, "--database",
        help="Server to measure on: a PostgreSQL URL (a scratch database is created there and dropped) "
             "or sqlite (a temporary file). Default: a temporary SQLite file"),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Ingest N generated events and compare with a plain COPY / executemany of the same rows."""
    from worker.bench import run

    settings = state(ctx).settings()
    result = run(settings, events, database, say=lambda m: err_console.print(f"[dim]{m}[/dim]"))
    out = result.as_dict()
    out["ingest_rate"] = f"{result.ingest_rate:,.0f} events/s"
    out["plain_rate"] = f"{result.plain_rate:,.0f} rows/s"
    out["ratio"] = f"{result.ratio:.0%} of plain {'COPY' if result.dialect == 'postgresql' else 'executemany'}"
    out["peak_rss_mb"] = f"{result.peak_rss_mb:.0f} MB"
    emit_object(result.as_dict() if fmt is Format.json else out, fmt, title="bench ingest")


@bench_app.command("summaries")
def summaries(
    ctx: typer.Context,
    events: int = typer.Option(100_000, "--events", min=1, help="How many events to generate and ingest"),
    database: Optional[str] = typer.Option(
        None, "--database", help="As for `bench ingest`: a PostgreSQL URL (scratch database) or sqlite"),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Rebuild all summaries from N events next to the bare GROUP BY; time usage --by day over 30 days."""
    from worker.bench import run_summaries

    result = run_summaries(state(ctx).settings(), events, database,
                           say=lambda m: err_console.print(f"[dim]{m}[/dim]"))
    out = result.as_dict()
    if fmt is not Format.json:
        out["ratio"] = f"rebuild takes {result.ratio:.2f}x the bare GROUP BY"
        out["usage_by_day_ms"] = f"{result.usage_by_day_ms:.1f} ms"
    emit_object(out, fmt, title="bench summaries")


@bench_app.command("integrity")
def integrity(
    ctx: typer.Context,
    events: int = typer.Option(100_000, "--events", min=1, help="How many events to generate and ingest"),
    database: Optional[str] = typer.Option(
        None, "--database", help="As for `bench ingest`: a PostgreSQL URL (scratch database) or sqlite"),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Time the integrity job (and every check over 30 days) on N events spread over the last 30 days."""
    from worker.bench import run_integrity

    result = run_integrity(state(ctx).settings(), events, database,
                           say=lambda m: err_console.print(f"[dim]{m}[/dim]"))
    emit_object(result.as_dict(), fmt, title="bench integrity")
