"""bench ingest / summaries / integrity / fuzz / anomalies / forecast: figures, printed (never asserted in tests).

Every bench takes the same options and runs the same way: N generated events in a scratch
database (``--database``), progress notes on stderr, ``worker.bench.run_<name>`` doing the work.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from cli.output import Format, ObjectFormat, TableOrJson, emit_object, err_console
from cli.state import app, state

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")
app.add_typer(bench_app, name="bench")

Events = Annotated[int, typer.Option("--events", min=1, help="How many events to generate and ingest")]
Database = Annotated[Optional[str], typer.Option(
    "--database", help="As for `bench ingest`: a PostgreSQL URL (scratch database) or sqlite")]


def _run(ctx: typer.Context, name: str, events: int, database: str | None, **options: Any) -> Any:
    """``worker.bench.run_<name>`` on N events, its progress notes dimmed on stderr."""
    # Imported when a bench runs, not with the CLI: worker.bench pulls in psycopg and the event
    # generator (about 140 ms, 80 modules) that no other command, and not the daemon, needs.
    from worker import bench

    runner = {"ingest": bench.run_ingest, "summaries": bench.run_summaries, "integrity": bench.run_integrity,
              "fuzz": bench.run_fuzz, "anomalies": bench.run_anomalies, "forecast": bench.run_forecast}[name]
    return runner(state(ctx).settings(), events, database, say=lambda m: err_console.print(f"[dim]{m}[/dim]"),
                  **options)


# bench ingest's --format names the generated records' shape, or (table | json) the output.
INGEST_FORMATS = ("table", "json", "canonical", "litellm", "otel", "anthropic")


@bench_app.command("ingest")
def ingest(
    ctx: typer.Context,
    events: Events = 100_000,
    database: Annotated[Optional[str], typer.Option(
        "--database",
        help="Server to measure on: a PostgreSQL URL (a scratch database is created there and dropped) "
             "or sqlite (a temporary file). Default: a temporary SQLite file")] = None,
    formats: Annotated[Optional[list[str]], typer.Option(
        "--format", help="Records generated as canonical (default), litellm, otel or anthropic; "
                         "output as table (default) or json. May be given twice: --format otel --format json")] = None,
) -> None:
    """Ingest N generated events and compare with a plain COPY / executemany of the same rows."""
    chosen = formats or []
    for value in chosen:
        if value not in INGEST_FORMATS:
            raise typer.BadParameter(f"expected one of {', '.join(INGEST_FORMATS)}, got {value!r}",
                                     param_hint="--format")
    fmt = Format.json if "json" in chosen else Format.table
    shape = next((v for v in chosen if v not in ("table", "json")), "canonical")
    result = _run(ctx, "ingest", events, database, shape=shape)
    out = result.as_dict()
    out["ingest_rate"] = f"{result.ingest_rate:,.0f} events/s"
    out["plain_rate"] = f"{result.plain_rate:,.0f} rows/s"
    out["ratio"] = f"{result.ratio:.0%} of plain {'COPY' if result.dialect == 'postgresql' else 'executemany'}"
    out["peak_rss_mb"] = f"{result.peak_rss_mb:.0f} MB"
    emit_object(result.as_dict() if fmt == Format.json else out, fmt, title="bench ingest")


@bench_app.command("summaries")
def summaries(ctx: typer.Context, events: Events = 100_000, database: Database = None,
              fmt: TableOrJson = ObjectFormat.table) -> None:
    """Rebuild all summaries from N events next to the bare GROUP BY; time usage --by day over 30 days."""
    result = _run(ctx, "summaries", events, database)
    out = result.as_dict()
    if fmt != Format.json:
        out["ratio"] = f"rebuild takes {result.ratio:.2f}x the bare GROUP BY"
        out["usage_by_day_ms"] = f"{result.usage_by_day_ms:.1f} ms"
    emit_object(out, fmt, title="bench summaries")


@bench_app.command("integrity")
def integrity(ctx: typer.Context, events: Events = 100_000, database: Database = None,
              fmt: TableOrJson = ObjectFormat.table) -> None:
    """Time the integrity job (and every check over 30 days) on N events spread over the last 30 days."""
    emit_object(_run(ctx, "integrity", events, database).as_dict(), fmt, title="bench integrity")


@bench_app.command("fuzz")
def fuzz(
    ctx: typer.Context,
    records: Annotated[int, typer.Option("--records", min=1, help="How many generated lines to ingest")] = 100_000,
    database: Database = None,
    kind: Annotated[str, typer.Option("--kind", help="jsonl or csv lines")] = "jsonl",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generator: the same seed, the same lines")] = 1,
    seconds: Annotated[Optional[float], typer.Option(
        "--seconds", help="Stop after the file of lines that passes this many seconds")] = None,
    fmt: TableOrJson = Format.table,
) -> None:
    """Ingest N fuzzed lines (arbitrary values, damaged bytes): crashes, and accepted/rejected/duplicates."""
    if kind not in ("jsonl", "csv"):
        raise typer.BadParameter(f"expected jsonl or csv, got {kind!r}", param_hint="--kind")
    result = _run(ctx, "fuzz", records, database, kind=kind, seed=seed, seconds=seconds)
    emit_object(result.as_dict(), fmt, title="bench fuzz")
    if result.crashes or not result.accounted:
        raise typer.Exit(1)


Accounts = Annotated[int, typer.Option("--accounts", min=1, help="How many accounts the generated traffic has")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the traffic and the spikes: the same seed, the same month")]


@bench_app.command("anomalies")
def anomalies(ctx: typer.Context, accounts: Accounts = 30, database: Database = None, seed: Seed = 1,
              fmt: TableOrJson = Format.table) -> None:
    """Backtest spend.anomaly on a month of rhythmic traffic with 3x/5x/20x spikes: recall, false alerts, delay."""
    emit_object(_run(ctx, "anomalies", accounts, database, seed=seed).as_dict(), fmt, title="bench anomalies")


@bench_app.command("forecast")
def forecast(ctx: typer.Context, accounts: Accounts = 30, database: Database = None, seed: Seed = 1,
             fmt: TableOrJson = Format.table) -> None:
    """Backtest the month-end forecast on steady traffic: day-10 and day-20 errors against the month's end."""
    emit_object(_run(ctx, "forecast", accounts, database, seed=seed).as_dict(), fmt, title="bench forecast")
