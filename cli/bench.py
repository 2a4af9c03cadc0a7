"""bench ingest / summaries / integrity / fuzz / gate / events: performance figures, printed (never asserted in tests).

Every bench takes the same options and runs the same way: N generated events in a scratch
database (``--database``), progress notes on stderr, ``worker.bench.run_<name>`` doing the work.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from cli.output import Format, ObjectFormat, TableOrJson, emit_object, emit_rows, err_console
from cli.state import app, state

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")
app.add_typer(bench_app, name="bench")

Events = Annotated[int, typer.Option("--events", min=1, help="How many events to generate and ingest")]
Database = Annotated[Optional[str], typer.Option(
    "--database", help="As for `bench ingest`: a PostgreSQL URL (scratch database) or sqlite")]


def _run(ctx: typer.Context, name: str, *args: Any, **options: Any) -> Any:
    """``worker.bench.run_<name>`` (or ``web.bench``'s, for the HTTP API), its progress notes dimmed on stderr."""
    # Imported when a bench runs, not with the CLI: worker.bench pulls in psycopg and the event
    # generator (about 140 ms, 80 modules) that no other command, and not the daemon, needs.
    from worker import bench
    from web import bench as web_bench

    runner = {"ingest": bench.run_ingest, "summaries": bench.run_summaries, "integrity": bench.run_integrity,
              "fuzz": bench.run_fuzz, "gate": web_bench.run_gate, "events": web_bench.run_events}[name]
    return runner(state(ctx).settings(), *args, say=lambda m: err_console.print(f"[dim]{m}[/dim]"), **options)


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


@bench_app.command("pages")
def pages(
    ctx: typer.Context,
    events: Events = 1_000_000,
    database: Database = None,
    accounts: Annotated[int, typer.Option("--accounts", min=0, help="Accounts to import (over 20 tenants)")] = 100_000,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Timed GETs of each page")] = 20,
    fmt: TableOrJson = Format.table,
) -> None:
    """Time every console page over HTTP (admin and tenant) on N events and many accounts."""
    # Imported here like worker.bench: the web app and uvicorn are not needed by any other command.
    from web import bench_pages

    result = bench_pages.run_pages(state(ctx).settings(), events, database,
                                 say=lambda m: err_console.print(f"[dim]{m}[/dim]"), accounts=accounts, rounds=rounds)
    if fmt == Format.json:
        emit_object(result.as_dict(), fmt)
        return
    emit_rows([vars(p) for p in result.pages], ["who", "path", "status", "bytes", "p50_ms", "p95_ms", "max_ms"],
              Format.table, title=f"bench pages: {result.events:,} events, {result.accounts:,} accounts, "
                                  f"{result.dialect}, {result.rounds} rounds, load average {result.load_average}")


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


@bench_app.command("gate")
def gate(
    ctx: typer.Context,
    rps: Annotated[int, typer.Option("--rps", min=1, max=20_000, help="Requests per second to send")] = 200,
    seconds: Annotated[float, typer.Option("--seconds", min=1, max=600, help="How long to send at that rate")] = 10,
    connections: Annotated[Optional[int], typer.Option(
        "--connections", min=1, max=256, help="Keep-alive connections (default: rps / 50, 4 to 64)")] = None,
    database: Database = None,
    fmt: TableOrJson = ObjectFormat.table,
) -> None:
    """POST /v1/gate/check at a fixed rate from a loopback load generator in another process against
    `tokentally web` on a scratch database: p50 / p99 latency at that rate (and the load average)."""
    emit_object(_run(ctx, "gate", rps, seconds, database, connections).as_dict(), fmt, title="bench gate")


@bench_app.command("events")
def events(
    ctx: typer.Context,
    events: Events = 100_000,
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000, help="Records per POST")] = 1000,
    connections: Annotated[int, typer.Option("--connections", min=1, max=32, help="Clients posting at once")] = 2,
    database: Database = None,
    fmt: TableOrJson = ObjectFormat.table,
) -> None:
    """Ingest N generated events from a file, then the same records through POST /v1/events: both rates."""
    result = _run(ctx, "events", events, database, batch, connections)
    out = result.as_dict()
    if fmt != Format.json:
        out["ratio"] = f"HTTP ingest at {result.ratio:.0%} of the file rate"
    emit_object(out, fmt, title="bench events")
