"""bench ledger: how the per-day and whole-ledger paths grow with the ledger (1M against 10M events).

The events come at a fixed rate per day (``--per-day``), so a bigger ledger is a longer
history, as a real one grows: a day's report, the integrity job and ``usage`` over 30 days
read the same amount whatever the size (they must stay flat), while ingest and a rebuild of
every summary read all of it (they may grow linearly, not faster). The report builder is
handed in by the CLI (``reports`` sits above this floor).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from worker import clock
from worker.bench import loaded
from worker.integrity import run as integrity
from worker.settings import Settings
from worker.summaries import recompute as summaries, usage


@dataclass
class LedgerBenchResult:
    dialect: str
    events: int
    days: int
    ingest_seconds: float
    ingest_rate: float
    rebuild_seconds: float  # every summary, the whole ledger
    daily_report_ms: float  # the last day's report figures, median of 5
    integrity_job_ms: float  # the checks + apply over integrity.days, median of 3
    usage_30_days_ms: float  # usage --by day over the last 30 days, median of 5
    usage_30_days_by_account_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


def _median_ms(fn: Callable[[], Any], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return sorted(timings)[len(timings) // 2] * 1000


def run_ledger(settings: Settings, events: int, database: str | None, say: Callable[[str], None] = lambda _m: None,
               per_day: int = 10_000, report: Callable[..., Any] | None = None,
               period: Callable[[Any], Any] | None = None) -> LedgerBenchResult:
    now = clock.now()
    days = max(1, -(-events // per_day))
    timings: dict[str, float] = {}
    with loaded(settings, events, database, say, start=now - timedelta(days=days), days=days,
                timings=timings) as (engine, s):
        ingest_seconds = timings["ingest_seconds"]
        first, last = summaries.ledger_day_range(engine, s.tz)
        say(f"rebuilding every summary, {first}..{last}")
        started = time.perf_counter()
        summaries.rebuild(engine, s, first, last)
        rebuild_seconds = time.perf_counter() - started
        day = last - timedelta(days=1)

        def daily() -> None:
            if report is not None and period is not None:
                with engine.connect() as conn:
                    report(conn, s, period(day))

        say("the last day's report, the integrity job, usage over 30 days")
        report_ms = _median_ms(daily, 5) if report else 0.0
        job_first, job_last = integrity.default_range(s, now)

        def check() -> None:
            with engine.begin() as conn:
                found = integrity.run_checks(conn, s, now, job_first, job_last)
                integrity.apply(conn, s, now, job_first, job_last, found)

        integrity_ms = _median_ms(check, 3)

        def usage_by(by: str) -> Callable[[], Any]:
            def go() -> None:
                with engine.connect() as conn:
                    usage.usage(conn, s.tz, last - timedelta(days=29), last, by)
            return go

        usage_ms, by_account_ms = _median_ms(usage_by("day"), 5), _median_ms(usage_by("account"), 5)
        dialect = engine.dialect.name
    return LedgerBenchResult(dialect, events, days, ingest_seconds, events / ingest_seconds, rebuild_seconds,
                             report_ms, integrity_ms, usage_ms, by_account_ms)
