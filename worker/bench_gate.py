"""The benchmark behind ``tokentally bench gate``: how long an app waits on the gate, in-process.

A scratch database (``worker.bench.scratch_database``) gets N accounts on two bench tiers: a
budget tier (day and month windows) and a rate tier (minute and hour windows too), with limits far
above what the bench spends, so every call is a full decision and none stops early. One warm-up
pass records one call per account, untimed (it creates the day/month windows and lets psycopg
prepare its statements, as in any long-running app). Then C rounds, each on the next account in
turn, time one ``Gate.check`` and one ``Gate.record`` through a gate on its own engine, the way
``worker.gate.default_gate`` builds it. The figures are the p50, p99 and max latency of each in
milliseconds. Minute and hour windows still roll over while the bench runs, as they do in an app.

With ``scopes``, every call also falls under four scope budgets (limits far above the bench's
spend too): its account's tenant (one of ten, stored with the account), its membership of it,
its service and its model; the tenant budgets are stored as ``budgets set`` stores them (so the
gate reads the stored budgets' token), the others come from the settings.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Callable

from worker import clock, db
from worker.bench import scratch_database
from worker.gate import Gate
from worker.limits import scope_store
from worker.models import Account
from worker.settings import ScopeBudget, Settings, TierSettings
from worker.sql import insert_ignore

BIG = 10**12  # limits the bench never reaches
TIERS = {
    "bench_budget": TierSettings("bench_budget", action="block", daily_tokens=BIG, daily_cost_usd=Decimal(10**6),
                                 monthly_tokens=BIG, requests_per_day=BIG),
    "bench_rate": TierSettings("bench_rate", action="block", daily_tokens=BIG, requests_per_minute=BIG,
                               requests_per_hour=BIG),
}


@dataclass
class GateBenchResult:
    dialect: str
    accounts: int
    calls: int
    check_p50_ms: float
    check_p99_ms: float
    check_max_ms: float
    record_p50_ms: float
    record_p99_ms: float
    record_max_ms: float
    refused: int  # decisions that said no: 0 unless something is wrong
    scopes_per_call: int = 0  # scope budgets each call falls under

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


def _percentile(timings: list[float], p: float) -> float:
    return statistics.quantiles(timings, n=100, method="inclusive")[int(p) - 1] if len(timings) > 1 else timings[0]


def run_gate(settings: Settings, calls: int, database: str | None, say: Callable[[str], None] = lambda _m: None,
             accounts: int = 1000, scopes: bool = False) -> GateBenchResult:
    call = {"service": "bench-chat", "model": "bench-llm"} if scopes else {}
    with scratch_database(database) as url:
        budgets = {s: ScopeBudget(s, action="block", daily_tokens=BIG, monthly_cost_usd=Decimal(10**6))
                   for s in ("service:bench-chat", "model:bench-llm", *(f"member:bench-{i:06d}@bench-t{i % 10}"
                                                                         for i in range(accounts)))} if scopes else {}
        bench_settings = replace(settings, database_url=url, tiers=TIERS, default_tier="bench_budget",
                                 scope_budgets=budgets)
        names = [f"bench-{i:06d}" for i in range(accounts)]
        engine = db.make_engine(url)
        try:
            now = clock.now()
            with engine.begin() as conn:
                conn.execute(insert_ignore(conn.dialect.name, Account, ["account_id"]), [
                    {"account_id": a, "tenant_id": f"bench-t{i % 10}" if scopes else None, "email": None,
                     "created_at": now, "updated_at": now, "tier": "bench_rate" if i % 2 else "bench_budget"}
                    for i, a in enumerate(names)])
                for k in range(10 if scopes else 0):
                    scope_store.store(conn, ScopeBudget(f"tenant:bench-t{k}", action="block", daily_tokens=BIG,
                                                        source="cli"), now, "bench")
            dialect = engine.dialect.name
        finally:
            engine.dispose()
        gate = Gate(bench_settings, db.make_engine(url))
        try:
            say(f"warm-up: one call recorded for each of {accounts:,} accounts on {dialect}")
            for a in names:
                gate.record(a, tokens=10, cost_usd="0.0001", **call)
            say(f"{calls:,} rounds of check + record")
            checks, records, refused = [], [], 0
            for i in range(calls):
                account = names[i % accounts]
                started = time.perf_counter()
                decision = gate.check(account, **call)
                checks.append(time.perf_counter() - started)
                started = time.perf_counter()
                after = gate.record(account, tokens=10, cost_usd="0.0001", **call)
                records.append(time.perf_counter() - started)
                refused += (not decision.can_call) + (not after.can_call)
        finally:
            gate.engine.dispose()
    ms = 1000.0
    return GateBenchResult(dialect, accounts, calls,
                           _percentile(checks, 50) * ms, _percentile(checks, 99) * ms, max(checks) * ms,
                           _percentile(records, 50) * ms, _percentile(records, 99) * ms, max(records) * ms, refused,
                           4 if scopes else 0)
