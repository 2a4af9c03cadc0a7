"""The benchmarks behind ``tokentally bench ingest|summaries|integrity|fuzz|anomalies|forecast``: figures,
never assertions.

Each ``bench <name>`` command calls ``run_<name>(settings, events, database, say)``, which returns a
result with ``as_dict()``.

``run_ingest``: ingest throughput against a plain bulk load. Generates N realistic events
(``worker.bench_data``, in any record shape) as JSONL, ingests them through the real path (read, parse,
normalise, price, write in batches) into a scratch database, then loads the very same rows with a plain bulk load into an equivalent table
(same columns, same indexes): ``COPY`` on PostgreSQL, ``executemany`` on SQLite.
The ratio of the two rates says how much the ledger's own work costs.

``run_summaries`` times a full rebuild next to the bare GROUP BY, and ``usage --by day``;
``run_integrity`` times the integrity job and every check over 30 days.

The scratch database is created and dropped by the bench (on PostgreSQL, on the
server the URL names); nothing is written to the ledger the URL points at.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
from sqlalchemy import Engine, MetaData
from sqlalchemy.engine import make_url

from worker import clock, db
from worker.anomalies import bench as anomaly_bench
from worker.bench_data import generate
from worker.fuzz import FuzzResult, campaign as fuzz_campaign
from worker.ingest.ingestor import Ingestor
from worker.integrity import run as integrity
from worker.models import UsageEvent
from worker.sql import analyze, bulk_path, local_bucket
from worker.settings import Settings
from worker.summaries import recompute as summaries, usage
from worker.summaries.aggregate import ledger_group
from worker.summaries.usage import range_bounds

@dataclass
class IngestBenchResult:
    dialect: str
    shape: str
    events: int
    ingest_seconds: float
    ingest_rate: float
    plain_seconds: float
    plain_rate: float
    ratio: float
    peak_rss_mb: float
    accepted: int
    cpu_us_per_event: float  # this process's CPU (every thread; not the database server's) per event ingested
    spans_per_line: int  # otel: calls per OTLP line

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


@contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """A fresh, migrated database: a temp SQLite file, or a new database on the named PostgreSQL server."""
    if url is None or url == "sqlite" or make_url(db.normalise_url(url)).get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tokentally-bench-") as tmp:
            scratch = f"sqlite:///{Path(tmp) / 'bench.db'}"
            db.migrate(scratch)
            yield scratch
        return
    parsed = make_url(db.normalise_url(url))
    name = f"tokentally_bench_{os.getpid()}"
    admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    scratch = parsed.set(database=name).render_as_string(hide_password=False)
    try:
        db.migrate(scratch)
        yield scratch
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _plain_table(engine: Engine) -> None:
    """bench_plain: usage_events' columns and indexes under another name."""
    meta = MetaData()
    plain = UsageEvent.__table__.to_metadata(meta, name="bench_plain")
    for index in plain.indexes:
        index.name = f"bench_plain_{index.name}"
    for constraint in plain.constraints:
        if constraint.name:
            constraint.name = f"bench_plain_{constraint.name}"
    meta.create_all(engine)


def _plain_load_pg(engine: Engine, workdir: Path) -> float:
    dump = workdir / "rows.copy"
    cols = ", ".join(f'"{c.name}"' for c in UsageEvent.__table__.columns if c.name != "id")
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur, open(dump, "wb") as fh:
            with cur.copy(f"COPY (SELECT {cols} FROM usage_events ORDER BY id) TO STDOUT") as copy:
                for chunk in copy:
                    fh.write(chunk)
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, open(dump, "rb") as fh:
            with cur.copy(f"COPY bench_plain ({cols}) FROM STDIN") as copy:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
        conn.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def _plain_load_sqlite(engine: Engine, batch: int) -> float:
    cols = [c.name for c in UsageEvent.__table__.columns if c.name != "id"]
    col_sql = ", ".join(f'"{c}"' for c in cols)
    insert = f"INSERT INTO bench_plain ({col_sql}) VALUES ({', '.join('?' for _ in cols)})"
    elapsed = 0.0
    raw = engine.raw_connection()
    try:
        read = raw.cursor()
        read.execute(f"SELECT {col_sql} FROM usage_events ORDER BY id")
        write = raw.cursor()
        while rows := read.fetchmany(batch):  # reading is not timed; only the load is
            started = time.perf_counter()
            write.executemany(insert, rows)
            raw.commit()
            elapsed += time.perf_counter() - started
    finally:
        raw.close()
    return elapsed


def run_ingest(settings: Settings, events: int, database: str | None,
               say: Callable[[str], None] = lambda _m: None, shape: str = "canonical",
               spans_per_line: int = 1) -> IngestBenchResult:
    with tempfile.TemporaryDirectory(prefix="tokentally-bench-") as tmp:
        workdir = Path(tmp)
        data = workdir / "events.jsonl"
        say(f"generating {events:,} events as {shape} records")
        generate(data, events, shape=shape, spans_per_line=spans_per_line)
        with scratch_database(database) as url:
            engine = db.make_engine(url)
            try:
                _plain_table(engine)
                bench_settings = _with_url(settings, url)
                say(f"ingesting into {engine.dialect.name}")
                started, cpu_started = time.perf_counter(), time.process_time()
                stats = Ingestor(bench_settings, engine).ingest_paths([data])
                ingest_seconds = time.perf_counter() - started
                cpu_seconds = time.process_time() - cpu_started
                say("plain bulk load of the same rows")
                with engine.begin() as conn:
                    analyze(conn, "usage_events")
                if bulk_path(engine.dialect.name) == "copy":
                    plain_seconds = _plain_load_pg(engine, workdir)
                else:
                    plain_seconds = _plain_load_sqlite(engine, settings.ingest_batch_size)
                dialect = engine.dialect.name
            finally:
                engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ingest_rate = events / ingest_seconds
    plain_rate = events / plain_seconds if plain_seconds else float("inf")
    return IngestBenchResult(dialect, shape, events, ingest_seconds, ingest_rate, plain_seconds, plain_rate,
                       ingest_rate / plain_rate, peak, stats.accepted, cpu_seconds / events * 1e6, spans_per_line)


@contextmanager
def loaded(settings: Settings, events: int, database: str | None, say: Callable[[str], None],
           start: datetime | None = None, days: int = 30,
           timings: dict[str, float] | None = None) -> Iterator[tuple[Engine, Settings]]:
    """A scratch database holding N generated events over ``days`` days (ingested, statistics gathered);
    ``timings`` receives the ingest's seconds."""
    with tempfile.TemporaryDirectory(prefix="tokentally-bench-") as tmp:
        data = Path(tmp) / "events.jsonl"
        say(f"generating {events:,} events")
        generate(data, events, start=start, days=days)
        with scratch_database(database) as url:
            engine = db.make_engine(url)
            try:
                bench_settings = _with_url(settings, url)
                say("ingesting")
                started = time.perf_counter()
                Ingestor(bench_settings, engine).ingest_paths([data])
                if timings is not None:
                    timings["ingest_seconds"] = time.perf_counter() - started
                with engine.begin() as conn:
                    analyze(conn, "usage_events")
                yield engine, bench_settings
            finally:
                engine.dispose()


def _with_url(settings: Settings, url: str) -> Settings:
    return replace(settings, database_url=url)


@dataclass
class SummariesBenchResult:
    dialect: str
    events: int
    days: int
    rebuild_seconds: float
    group_by_seconds: float
    ratio: float
    usage_by_day_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(self).items()}


def _bare_group_by(engine: Engine, settings: Settings, first, last) -> float:
    """The same aggregation as the summaries, as one plain GROUP BY (local day + keys)."""
    start, end = range_bounds(first, last, settings.tz)
    day = local_bucket(engine.dialect.name, settings.tz, start, end, "day", UsageEvent.occurred_at).label("day")
    grouped = ledger_group(start, end)
    query = grouped.add_columns(day).group_by(day)
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(query).all()  # fetch every row, as the rebuild writes every row
    return time.perf_counter() - started


def run_summaries(settings: Settings, events: int, database: str | None,
                  say: Callable[[str], None] = lambda _m: None) -> SummariesBenchResult:
    with loaded(settings, events, database, say) as (engine, bench_settings):
        first, last = summaries.ledger_day_range(engine, bench_settings.tz)
        say(f"bare GROUP BY over {first}..{last}")
        group_by_seconds = min(_bare_group_by(engine, bench_settings, first, last) for _ in range(2))
        say("rebuilding every summary")
        started = time.perf_counter()
        result = summaries.rebuild(engine, bench_settings, first, last)
        rebuild_seconds = time.perf_counter() - started
        say("usage --by day over 30 days")
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            with engine.connect() as conn:
                usage.usage(conn, bench_settings.tz, first, first + timedelta(days=29), "day")
            timings.append(time.perf_counter() - started)
        dialect = engine.dialect.name
    return SummariesBenchResult(dialect, events, result.days, rebuild_seconds, group_by_seconds,
                                rebuild_seconds / group_by_seconds, sorted(timings)[len(timings) // 2] * 1000)


@dataclass
class IntegrityBenchResult:
    dialect: str
    events: int
    job_days: int
    job_seconds: float  # run_checks + apply over the job's days (integrity.days), median of 3
    month_seconds: float  # run_checks over the whole 30 days (what `integrity check --from` can ask)
    findings: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


def run_integrity(settings: Settings, events: int, database: str | None,
                  say: Callable[[str], None] = lambda _m: None) -> IntegrityBenchResult:
    """N events over the 30 days up to now, ingested and summarised; then the integrity checks timed."""
    now = clock.now()
    with loaded(settings, events, database, say, start=now - timedelta(days=30)) as (engine, bench_settings):
        first, last = summaries.ledger_day_range(engine, bench_settings.tz)
        say("summarising")
        summaries.rebuild(engine, bench_settings, first, last)
        job_first, job_last = integrity.default_range(bench_settings, now)
        say(f"the integrity job over {job_first}..{job_last}, three times")
        timings, found = [], []
        for _ in range(3):
            started = time.perf_counter()
            with engine.begin() as conn:
                found = integrity.run_checks(conn, bench_settings, now, job_first, job_last)
                integrity.apply(conn, bench_settings, now, job_first, job_last, found)
            timings.append(time.perf_counter() - started)
        say(f"every check over {first}..{last}")
        started = time.perf_counter()
        with engine.connect() as conn:
            integrity.run_checks(conn, bench_settings, now, first, last)
        month_seconds = time.perf_counter() - started
        dialect = engine.dialect.name
    counts: dict[str, int] = {}
    for f in found:
        counts[f.check] = counts.get(f.check, 0) + f.count
    return IntegrityBenchResult(dialect, events, (job_last - job_first).days + 1, sorted(timings)[1],
                                month_seconds, counts)


def run_fuzz(settings: Settings, records: int, database: str | None,
             say: Callable[[str], None] = lambda _m: None, kind: str = "jsonl", seed: int = 1,
             seconds: float | None = None) -> FuzzResult:
    """A fuzz campaign (``worker.fuzz``) of N generated lines into a scratch database."""
    with scratch_engine(settings, database) as (engine, bench_settings):
        say(f"fuzzing {records:,} {kind} lines into {engine.dialect.name}")
        return fuzz_campaign(bench_settings, engine, records, kind, seed, say, seconds)


@contextmanager
def scratch_engine(settings: Settings, database: str | None) -> Iterator[tuple[Engine, Settings]]:
    """An engine on a fresh scratch database (:func:`scratch_database`) and the settings pointing at it."""
    with scratch_database(database) as url:
        engine = db.make_engine(url)
        try:
            yield engine, _with_url(settings, url)
        finally:
            engine.dispose()


def run_anomalies(settings: Settings, accounts: int, database: str | None,
                  say: Callable[[str], None] = lambda _m: None, seed: int = 1) -> anomaly_bench.AnomalyBenchResult:
    """The anomaly backtest (``worker.anomalies.bench``) on a month of N accounts' traffic, in a scratch database."""
    with scratch_engine(settings, database) as (engine, bench_settings):
        return anomaly_bench.run_anomalies(bench_settings, engine, seed, accounts, say)


def run_forecast(settings: Settings, accounts: int, database: str | None,
                 say: Callable[[str], None] = lambda _m: None, seed: int = 1) -> anomaly_bench.ForecastBenchResult:
    """The forecast backtest (``worker.anomalies.bench``): day-10 and day-20 forecasts against the month end."""
    with scratch_engine(settings, database) as (engine, bench_settings):
        return anomaly_bench.run_forecast(bench_settings, engine, seed, accounts, say)
