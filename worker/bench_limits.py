"""``tokentally bench limits``: what the limits and budgets jobs cost with N accounts, M active.

In a scratch database (``worker.bench.scratch_database``): N accounts (one tier that
blocks at $1.00 a day), each with 3 events of the day ingested through the real ingest
path, and the windows made by a first limits + budgets run. Then, at virtual times of
the previous local day (so nothing is in the future for ingest):

* **steady**: M accounts get one new event each (ingested), then the limits job's work
  (``sync``) and the budgets job's (``sync`` + ``evaluate``) are timed, three rounds,
  median;
* **crossing**: 90% of the accounts get an event that takes them over their daily
  budget, then the budgets job is timed: every alert row, every window blocked, the
  grouped messages enqueued;
* **rollover**: the limits job just after the next local midnight (every day window
  closes).

Figures, never assertions; each phase also says how many accounts and windows it
touched, so that the cost can be read against the work.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import orjson
from sqlalchemy import Engine, func, insert, select

from worker import clock, db
from worker.bench import scratch_database
from worker.clock import local_day_bounds
from worker.ingest.ingestor import Ingestor
from worker.limits import budgets, sync
from worker.models import Account, Alert, Notification
from worker.settings import Settings, load
from worker.sql import analyze

SETTINGS = """
timezone = {timezone}
default_tier = "bench"

[tiers.bench]
daily_cost_usd = "1.00"
action = "block"

[budgets]
system_warning_usd = "100000000"
system_critical_usd = "200000000"
system_emergency_usd = "300000000"

[[sources]]
name = "bench"
kind = "jsonl"
path = "{inbox}/*.jsonl"

[[pricing.overrides]]
model = "bench-llm"
input_per_mtok = "1.00"
output_per_mtok = "1.00"
effective_from = "2025-01-01"

[channels.file]
dir = "{outbox}"

[[routes]]
kinds = ["budget.*"]
to = ["file:admins"]
"""


@dataclass
class Phase:
    name: str
    seconds: float
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass
class LimitsBenchResult:
    dialect: str
    accounts: int
    active: int
    phases: list[Phase]

    def as_dict(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "accounts": self.accounts, "active": self.active,
                "phases": [{"phase": p.name, "seconds": round(p.seconds, 3), **p.counts} for p in self.phases]}


def run_limits(settings: Settings, accounts: int, database: str | None,
               say: Callable[[str], None] = lambda _m: None, active: int = 1000) -> LimitsBenchResult:
    active = min(active, accounts)
    with tempfile.TemporaryDirectory(prefix="tokentally-bench-") as tmp, scratch_database(database) as url:
        work = Path(tmp)
        (work / "inbox").mkdir()
        config = work / "settings.toml"
        config.write_text(SETTINGS.format(timezone=orjson.dumps(settings.timezone).decode(), inbox=work / "inbox",
                                          outbox=work / "outbox"), encoding="utf-8")
        bench = load(config, env={"TOKENTALLY_DATABASE_URL": url})
        engine = db.make_engine(url)
        try:
            return _measure(bench, engine, work, accounts, active, say)
        finally:
            engine.dispose()


def _measure(settings: Settings, engine: Engine, work: Path, n: int, active: int,
             say: Callable[[str], None]) -> LimitsBenchResult:
    tz = settings.tz
    yesterday = clock.now().astimezone(tz).date() - timedelta(days=1)
    day_start, day_end = local_day_bounds(yesterday, tz)
    noon = day_start + timedelta(hours=12)
    names = [f"acct-{i:06d}" for i in range(n)]
    say(f"{n:,} accounts, 3 events each, into {engine.dialect.name}")
    with engine.begin() as conn:
        stamp = clock.now()
        for start in range(0, n, 5000):
            conn.execute(insert(Account), [{"account_id": a, "tenant_id": None, "tier": None, "email": None,
                                            "created_at": stamp, "updated_at": stamp}
                                           for a in names[start:start + 5000]])
    feeder = _Feeder(settings, engine, work)
    feeder.feed(((a, noon - timedelta(hours=3 - k), 10_000) for a in names for k in range(3)))
    with engine.begin() as conn:
        analyze(conn, "usage_events")
        analyze(conn, "limit_dirty_accounts")
    phases = [_timed("initial limits + budgets (windows made)", lambda: _budgets(engine, settings, noon))]
    with engine.begin() as conn:
        analyze(conn, "limit_windows")
    at = noon
    steady_limits, steady_budgets = [], []
    for round_ in range(3):
        at += timedelta(minutes=1)
        chosen = names[round_ * active % n:][:active] or names[:active]
        feeder.feed((a, at - timedelta(seconds=30), 1_000) for a in chosen)
        steady_limits.append(_timed("limits", lambda: _limits(engine, settings, at)))
        steady_budgets.append(_timed("budgets", lambda: _budgets(engine, settings, at)))
        say(f"steady round {round_ + 1}: limits {steady_limits[-1].seconds:.3f} s, "
            f"budgets {steady_budgets[-1].seconds:.3f} s")
    phases.append(_median(steady_limits, f"steady limits ({active:,} active)"))
    phases.append(_median(steady_budgets, f"steady budgets ({active:,} active)"))
    crossing = names[: n * 9 // 10]
    at += timedelta(minutes=1)
    say(f"{len(crossing):,} accounts cross their daily budget")
    feeder.feed((a, at - timedelta(seconds=30), 1_500_000) for a in crossing)  # $1.50 each
    with engine.connect() as conn:
        alerts_before = conn.execute(select(func.count()).select_from(Alert)).scalar_one()
        outbox_before = conn.execute(select(func.count()).select_from(Notification)).scalar_one()
    phase = _timed(f"budgets, {len(crossing):,} cross at once", lambda: _budgets(engine, settings, at))
    with engine.connect() as conn:
        phase.counts["alert_rows"] = conn.execute(select(func.count()).select_from(Alert)).scalar_one() - alerts_before
        phase.counts["messages"] = (conn.execute(select(func.count()).select_from(Notification)).scalar_one()
                                    - outbox_before)
    phases.append(phase)
    midnight = day_end + timedelta(minutes=1)
    phases.append(_timed("midnight rollover (limits)", lambda: _limits(engine, settings, midnight)))
    return LimitsBenchResult(engine.dialect.name, n, active, phases)


class _Feeder:
    """Usage through the real ingest path: one JSONL file per call."""

    def __init__(self, settings: Settings, engine: Engine, work: Path):
        self.ingestor, self.inbox, self.count = Ingestor(settings, engine), work / "inbox", 0

    def feed(self, usage: Any) -> None:
        self.count += 1
        path = self.inbox / f"usage-{self.count:03d}.jsonl"
        with path.open("wb") as out:
            for i, (account, at, tokens) in enumerate(usage):
                out.write(orjson.dumps({"event_id": f"{self.count}-{i}", "occurred_at": at.isoformat(),
                                        "account_id": account, "model": "bench-llm", "prompt_tokens": tokens,
                                        "completion_tokens": 0}) + b"\n")
        self.ingestor.ingest_paths([path])


def _limits(engine: Engine, settings: Settings, now: datetime) -> dict[str, Any]:
    with engine.begin() as conn:
        s = sync.sync(conn, settings, now)
    return {"accounts": s.accounts, "created": s.created, "refreshed": s.refreshed, "closed": s.closed,
            "dropped": s.dropped}


def _budgets(engine: Engine, settings: Settings, now: datetime) -> dict[str, Any]:
    with engine.begin() as conn:
        s = sync.sync(conn, settings, now)
        b = budgets.evaluate(conn, settings, now)
    return {"accounts": s.accounts, "refreshed": s.refreshed + s.created, "judged": b.windows,
            "warnings": b.warnings, "blocked": b.blocked}


def _timed(name: str, work: Callable[[], dict[str, Any]]) -> Phase:
    started = time.perf_counter()
    counts = work()
    return Phase(name, time.perf_counter() - started, counts)


def _median(phases: list[Phase], name: str) -> Phase:
    middle = sorted(phases, key=lambda p: p.seconds)[len(phases) // 2]
    return Phase(name, middle.seconds, middle.counts)
