"""bench ingest / summaries / integrity / ledger / limits / fuzz / gate / events / pages / anomalies /
forecast: performance figures, printed (never asserted in tests).

Every bench takes the same options and runs the same way: N generated events in a scratch
database (``--database``), progress notes on stderr, ``worker.bench.run_<name>`` (or
``web.bench``'s, for the HTTP API) doing the work. This module is imported only when a bench
runs (cli.commands), so what the benches need (psycopg, the event generator, the web
server) is imported here at module level.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from reports.figures import build as build_report
from reports.periods import Period, period_containing
from web import bench as web_bench, bench_pages
from worker import bench, bench_gate, bench_ledger, bench_limits, bench_replicas
from cli.output import Format, ObjectFormat, TableOrJson, emit_object, emit_rows, err_console
from cli.state import state

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")

Events = Annotated[int, typer.Option("--events", min=1, help="How many events to generate and ingest")]
Database = Annotated[Optional[str], typer.Option(
    "--database", help="As for `bench ingest`: a PostgreSQL URL (scratch database) or sqlite")]

RUNNERS = {"ingest": bench.run_ingest, "summaries": bench.run_summaries, "integrity": bench.run_integrity,
           "fuzz": bench.run_fuzz, "ledger": bench_ledger.run_ledger, "gate": bench_gate.run_gate,
           "gate_http": web_bench.run_gate, "events": web_bench.run_events, "anomalies": bench.run_anomalies,
           "forecast": bench.run_forecast, "replicas": bench_replicas.run_replicas}


def daily_period(day: Any) -> Period:  # the report bench ledger times: one local day's
    return period_containing("daily", day)


def _run(ctx: typer.Context, name: str, *args: Any, **options: Any) -> Any:
    """The bench's runner, its progress notes dimmed on stderr."""
    return RUNNERS[name](state(ctx).settings(), *args, say=lambda m: err_console.print(f"[dim]{m}[/dim]"), **options)


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
    spans_per_line: Annotated[int, typer.Option(
        "--spans-per-line", min=1, max=512,
        help="otel: calls per OTLP line (one export each: 1 as a SimpleSpanProcessor writes them, up to "
             "512 as a BatchSpanProcessor does)")] = 1,
) -> None:
    """Ingest N generated events and compare with a plain COPY / executemany of the same rows."""
    chosen = formats or []
    for value in chosen:
        if value not in INGEST_FORMATS:
            raise typer.BadParameter(f"expected one of {', '.join(INGEST_FORMATS)}, got {value!r}",
                                     param_hint="--format")
    fmt = Format.json if "json" in chosen else Format.table
    shape = next((v for v in chosen if v not in ("table", "json")), "canonical")
    result = _run(ctx, "ingest", events, database, shape=shape, spans_per_line=spans_per_line)
    out = result.as_dict()
    out["ingest_rate"] = f"{result.ingest_rate:,.0f} events/s"
    out["plain_rate"] = f"{result.plain_rate:,.0f} rows/s"
    out["ratio"] = f"{result.ratio:.0%} of plain {'COPY' if result.dialect == 'postgresql' else 'executemany'}"
    out["peak_rss_mb"] = f"{result.peak_rss_mb:.0f} MB"
    out["cpu_us_per_event"] = f"{result.cpu_us_per_event:.1f} µs of this process's CPU per event"
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


@bench_app.command("ledger")
def ledger(ctx: typer.Context, events: Events = 1_000_000, database: Database = None,
           per_day: Annotated[int, typer.Option("--per-day", min=1, help="Events a day: more events, more days")] = 10_000,
           fmt: TableOrJson = ObjectFormat.table) -> None:
    """N events at a fixed rate a day: ingest and a whole rebuild (may grow linearly), and the per-day paths
    that must stay flat (the last day's report, the integrity job, usage over 30 days)."""
    result = _run(ctx, "ledger", events, database, per_day=per_day, report=build_report, period=daily_period)
    emit_object(result.as_dict(), fmt, title="bench ledger")


@bench_app.command("replicas")
def replicas(
    ctx: typer.Context,
    files: Annotated[int, typer.Option("--files", min=1, max=1000, help="Files in the source's directory")] = 20,
    per_file: Annotated[int, typer.Option("--per-file", min=1, help="Events in each file")] = 50_000,
    database: Database = None,
    fmt: TableOrJson = ObjectFormat.table,
) -> None:
    """One replica, then two, polling one directory of files (shared through the ingest leases), each on a
    fresh database: seconds, events a second, files each replica read, and the speed-up."""
    result = _run(ctx, "replicas", files, per_file, database)
    out = result.as_dict()
    if fmt == Format.json:
        emit_object(out, fmt)
        return
    rows = [{"replicas": r["replicas"], "seconds": f"{r['seconds']:.2f}", "events_per_second": f"{r['rate']:,.0f}",
             "files_per_replica": " + ".join(map(str, r["files_per_replica"])), "events": f"{r['events']:,}"}
            for r in out["runs"]]
    emit_rows(rows, ["replicas", "seconds", "events_per_second", "files_per_replica", "events"], Format.table,
              title=f"bench replicas: {result.files} files, {result.events:,} events, {result.dialect}, speed-up "
                    f"{result.speedup:.2f}x, load average {result.load_average}")


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


class LoadGen(str, Enum):
    auto = "auto"
    wrk = "wrk"
    python = "python"


@bench_app.command("gate")
def gate(
    ctx: typer.Context,
    rps: Annotated[Optional[int], typer.Option(
        "--rps", min=1, max=20_000, help="Over HTTP: POST /v1/gate/check at this many requests per second from a "
                                         "load generator in another process (without it: in-process calls)")] = None,
    seconds: Annotated[float, typer.Option("--seconds", min=1, max=600, help="--rps: how long to send")] = 10,
    connections: Annotated[Optional[int], typer.Option(
        "--connections", min=1, max=256, help="--rps: keep-alive connections (default: rps / 50, 4 to 64)")] = None,
    loadgen: Annotated[LoadGen, typer.Option(
        "--loadgen",
        help="--rps: the load generator: wrk (Debian's, paced by a Lua script), the Python client, or auto "
             "(wrk when installed)")] = LoadGen.auto,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, max=64, help="--rps: the server's worker processes (tokentally web --workers)")] = 1,
    calls: Annotated[int, typer.Option("--calls", min=1, help="In-process: rounds of check + record to time")] = 10_000,
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="In-process: accounts the calls go round")] = 1000,
    scopes: Annotated[bool, typer.Option("--scopes", help="In-process: each call also falls under four scope "
                                                          "budgets (tenant, member, service, model)")] = False,
    database: Database = None,
    fmt: TableOrJson = ObjectFormat.table,
) -> None:
    """Time the gate on a scratch database: in-process gate.check and gate.record (p50, p99, max in ms), or
    with --rps, POST /v1/gate/check against `tokentally web` at that rate (p50 / p99, load average)."""
    if rps is None:
        result = _run(ctx, "gate", calls, database, accounts=accounts, scopes=scopes)
    else:
        result = _run(ctx, "gate_http", rps, seconds, database, connections, loadgen=loadgen.value, workers=workers)
    emit_object(result.as_dict(), fmt, title="bench gate")


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


@bench_app.command("limits")
def limits(
    ctx: typer.Context,
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="How many accounts (3 events each)")] = 10_000,
    active: Annotated[int, typer.Option("--active", min=1, help="Accounts with new usage each minute")] = 1_000,
    database: Database = None,
    fmt: TableOrJson = ObjectFormat.table,
) -> None:
    """Time the limits and budgets jobs with N accounts: steady state (M active a minute), 90% of
    the accounts crossing their budget at once, and the midnight rollover."""
    result = bench_limits.run_limits(state(ctx).settings(), accounts, database, active=active,
                        say=lambda m: err_console.print(f"[dim]{m}[/dim]"))
    out = result.as_dict()
    if fmt == Format.json:
        emit_object(out, fmt)
        return
    rows = [{"phase": p["phase"], "seconds": f"{p['seconds']:.3f}",
             "work": ", ".join(f"{k} {v:,}" for k, v in p.items() if k not in ("phase", "seconds"))}
            for p in out["phases"]]
    emit_rows(rows, ["phase", "seconds", "work"], Format.table,
              title=f"bench limits: {result.accounts:,} accounts, {result.active:,} active, {result.dialect}")


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
