"""``tokentally bench pages``: how long each console page takes to answer on a big ledger.

A scratch database gets N generated events over the last 30 days (``worker.bench.loaded``),
``--accounts`` accounts over 20 tenants (so the accounts page pages through many windows),
then the jobs the daemon runs (summaries, limits, budgets, integrity), three
archived reports, and ANALYZE of the database, as autovacuum would have done by the time anyone
reads a freshly loaded month (without planner statistics for the summaries, usage by account
sorted 200k summary rows on disk: 0.7 s instead of 0.2 s). The app is served as ``tokentally web`` serves it (``web.server.WebServer``)
on a free loopback port in this process and every page is fetched ``--rounds`` times over HTTP with a bearer token,
as an admin and as a tenant. Figures, never assertions: the median, 95th percentile and
slowest answer per page, and its size.
"""

from __future__ import annotations

import logging
import os
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Callable

import httpx
from sqlalchemy import delete, insert

from reports.archive import archive
from reports.periods import period_containing
from worker import clock
from worker.bench import loaded
from worker.models import Account, BudgetPendingDay
from worker.registry import registry
from worker.scheduler import run_job
from worker.settings import Settings
from worker.sql import analyze

from web.auth import create_token
from web.server import WebServer

ADMIN_PAGES = ("/", "/usage", "/usage?by=model", "/usage?by=account", "/usage?by=month", "/accounts",
               "/accounts?state=warned", "/accounts?page=500", "/alerts", "/reports", "/reports/1", "/rejects",
               "/jobs", "/integrity", "/usage.csv?by=account")
TENANT_PAGES = ("/", "/usage", "/usage?by=account", "/accounts", "/alerts", "/reports")
TENANTS = 20
# what the pages read besides the ledger (``worker.bench.loaded`` analyzed usage_events)
PAGE_TABLES = ("daily_summaries", "daily_rollups", "monthly_summaries", "summary_dirty_days", "accounts",
               "limit_windows", "alerts", "reports", "job_runs")


@dataclass
class PageTiming:
    who: str
    path: str
    status: int
    bytes: int
    p50_ms: float
    p95_ms: float
    max_ms: float


@dataclass
class PagesBenchResult:
    dialect: str
    events: int
    accounts: int
    rounds: int
    pages: list[PageTiming] = field(default_factory=list)
    load_average: str = ""  # os.getloadavg() when the timing ended: figures on a busy machine are higher

    def as_dict(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "events": self.events, "accounts": self.accounts, "rounds": self.rounds,
                "load_average": self.load_average, "pages": [vars(p) for p in self.pages]}


def run_pages(settings: Settings, events: int, database: str | None, say: Callable[[str], None],
              accounts: int = 100_000, rounds: int = 20) -> PagesBenchResult:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the notes
    start = clock.now() - timedelta(days=30)
    with loaded(settings, events, database, say, start=start) as (engine, bench_settings):
        with tempfile.TemporaryDirectory(prefix="tokentally-bench-pages-") as tmp:
            bench_settings = replace(bench_settings, reports=replace(bench_settings.reports, archive_dir=tmp))
            _prepare(bench_settings, engine, accounts, say)
            admin = create_token(engine, "bench-admin", "admin")[1]
            tenant = create_token(engine, "bench-tenant", "tenant", "tenant-01")[1]
            result = PagesBenchResult(engine.dialect.name, events, accounts, rounds)
            bench_settings = replace(bench_settings, web=replace(bench_settings.web, bind="127.0.0.1",
                                                                  port=_free_port()))
            server = WebServer(bench_settings, engine)
            server.start()
            try:
                for who, secret, pages in (("admin", admin, ADMIN_PAGES), ("tenant", tenant, TENANT_PAGES)):
                    for path in pages:
                        say(f"{who} GET {path}")
                        result.pages.append(_time(server.url, who, secret, path, rounds))
            finally:
                server.stop()
            result.load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return result


def _prepare(settings: Settings, engine: Any, accounts: int, say: Callable[[str], None]) -> None:
    if accounts:
        say(f"adding {accounts:,} accounts")
        now = clock.now()
        rows = [{"account_id": f"user-{a:04d}", "tenant_id": f"tenant-{a % TENANTS:02d}", "tier": None, "email": None,
                 "created_at": now, "updated_at": now}  # the generated events' accounts are user-0001..user-1000
                for a in range(1, accounts + 1)]
        with engine.begin() as conn:  # one executemany: ``accounts import`` checks and writes row by row
            conn.execute(insert(Account), rows)
    with engine.begin() as conn:
        # a month of history ingested at once is not late data: nothing to judge after the fact
        conn.execute(delete(BudgetPendingDay))
    for job in ("summaries", "limits", "budgets", "integrity"):
        say(f"running the {job} job")
        run_job(registry.get(job), settings, engine, trigger="manual")
    say("archiving three reports")
    yesterday = clock.now().astimezone(settings.tz).date() - timedelta(days=1)
    for tenant in (None, "tenant-01", "tenant-02"):
        archive(engine, settings, period_containing("daily", yesterday), tenant=tenant)
    say("gathering planner statistics")
    with engine.begin() as conn:
        for table in PAGE_TABLES:
            analyze(conn, table)


def _time(url: str, who: str, secret: str, path: str, rounds: int) -> PageTiming:
    headers = {"Authorization": f"Bearer {secret}", "Accept": "text/html"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        first = client.get(path)  # warm: templates compiled, connections pooled
        seconds = []
        for _ in range(rounds):
            began = time.perf_counter()
            response = client.get(path)
            seconds.append(time.perf_counter() - began)
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return PageTiming(who, path, first.status_code, len(response.content), round(statistics.median(ms), 1),
                      round(p95, 1), round(ms[-1], 1))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
