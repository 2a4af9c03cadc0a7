"""Bench traffic with a weekly and daily rhythm, hour by hour, and the ledger rows it books.

The account/service/model mix of ``worker.bench_data`` (its models and services; each account has
a tenant, two services and mostly one model), with a rate per account that follows the working
day (quiet nights, a morning ramp, busy office hours, a lighter evening) and the week (weekends at
a third). Each hour's requests are Poisson around the rate; each request's cost comes from its
tokens and the model's price (a fixed table here: the bench books rows directly, ``reported``).
Seeded: the same seed gives the same traffic. :class:`Spike` multiplies one account's or one
service's requests by a factor for some hours (the extra requests are copies with new ids).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert

from worker.bench_data import MODELS, SERVICES
from worker.models import UsageEvent

HOUR = timedelta(hours=1)
# USD per million input / output tokens of the bench models (close to the providers' list prices)
PRICES = {"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.0), "claude-3-5-sonnet-20241022": (3.0, 15.0),
          "llama-3.1-70b-versatile": (0.59, 0.79), "gemini-1.5-flash": (0.075, 0.30), "grok-2": (2.0, 10.0)}
# of the peak rate, per local hour of the day (0..23), and per weekday (Monday 0)
DAILY = (0.08, 0.06, 0.05, 0.05, 0.06, 0.1, 0.2, 0.4, 0.7, 0.9, 1.0, 1.0,
         0.9, 0.95, 1.0, 1.0, 0.9, 0.7, 0.5, 0.45, 0.4, 0.3, 0.2, 0.12)
WEEKLY = (1.0, 1.0, 1.0, 1.0, 0.9, 0.3, 0.25)
PROMPT, COMPLETION = (2000, 60000), (100, 4000)  # tokens of a call, uniform between


@dataclass(frozen=True)
class Account:
    account_id: str
    tenant_id: str
    model: int  # index in MODELS: the usual model (80% of its calls)
    services: tuple[str, str]
    rate: float  # requests an hour at the busiest hour of a weekday


@dataclass(frozen=True)
class Spike:
    kind: str  # account | service
    name: str
    start: datetime  # UTC, on the hour
    hours: int
    factor: int

    def covers(self, hour: datetime, account: str, service: str) -> bool:
        key = account if self.kind == "account" else service
        return key == self.name and self.start <= hour < self.start + timedelta(hours=self.hours)


def make_accounts(rng: random.Random, n: int = 30, tenants: int = 5) -> list[Account]:
    weights = [w for _, _, w in MODELS]
    return [Account(f"user-{a:03d}", f"tenant-{a % tenants:02d}", rng.choices(range(len(MODELS)), weights)[0],
                    tuple(rng.sample(SERVICES, 2)), math.exp(rng.gauss(math.log(15), 0.8)))  # type: ignore[arg-type]
            for a in range(1, n + 1)]


def rate(account: Account, hour: datetime, tz: ZoneInfo, growth: float = 0.0, day: int = 0) -> float:
    local = hour.astimezone(tz)
    return account.rate * DAILY[local.hour] * WEEKLY[local.weekday()] * (1 + growth * day)


def mean_cost(model: str) -> float:
    """The mean cost in USD of one call to ``model`` (its mean tokens at PRICES)."""
    inp, out = PRICES.get(model, (1.0, 2.0))
    return (sum(PROMPT) / 2 * inp + sum(COMPLETION) / 2 * out) / 1_000_000


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def hour_rows(rng: random.Random, accounts: list[Account], hour: datetime, tz: ZoneInfo,
              spikes: Iterable[Spike] = (), prefix: str = "b") -> tuple[list[dict[str, Any]], list[tuple[Spike, dict[str, Any]]]]:
    """One hour's ledger rows, and the spikes' extra rows (spike, row) among them."""
    rows: list[dict[str, Any]] = []
    extra: list[tuple[Spike, dict[str, Any]]] = []
    weights = [w for _, _, w in MODELS]
    stamp = hour.strftime("%Y%m%d%H")
    for account in accounts:
        for i in range(poisson(rng, rate(account, hour, tz))):
            k = account.model if rng.random() < 0.8 else rng.choices(range(len(MODELS)), weights)[0]
            service = rng.choice(account.services)
            at = hour + timedelta(seconds=rng.randrange(3600))
            provider, model, _ = MODELS[k]
            prompt, completion = rng.randint(*PROMPT), rng.randint(*COMPLETION)
            base = event_row(f"{prefix}-{account.account_id}-{stamp}-{i}", at, account.account_id,
                             account.tenant_id, service, provider, model, prompt, completion)
            rows.append(base)
            for spike in spikes:
                if spike.covers(hour, account.account_id, service):
                    for copy in range(spike.factor - 1):
                        row = dict(base, event_id=f"{base['event_id']}-x{copy}",
                                   occurred_at=hour + timedelta(seconds=rng.randrange(3600)))
                        rows.append(row)
                        extra.append((spike, row))
    return rows, extra


def event_row(event_id: str, at: datetime, account: str, tenant: str | None, service: str | None, provider: str,
              model: str, prompt: int, completion: int, cost: Decimal | None = None) -> dict[str, Any]:
    """A booked usage event (every column the ledger writer gives); the cost from PRICES unless given."""
    if cost is None:
        inp, out = PRICES.get(model, (1.0, 2.0))
        cost = (Decimal(prompt) * Decimal(str(inp)) + Decimal(completion) * Decimal(str(out))) / 1_000_000
    return {"event_id": event_id, "source": "bench", "occurred_at": at, "ingested_at": at, "account_id": account,
            "tenant_id": tenant, "service": service, "provider": provider, "model": model, "model_used": model,
            "status": "success", "status_code": None, "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "cached_tokens": 0, "reasoning_tokens": 0, "latency_ms": 800,
            "cost_usd": cost, "cost_computed": None, "cost_reported": cost, "cost_status": "reported",
            "price_source": None, "price_effective_from": None, "unattributed": False, "model_defaulted": False,
            "error_message": None, "meta": None, "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
            "service_tier": None, "api_key": None, "project_id": None}


def book(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert the rows into the ledger (executemany)."""
    if rows:
        conn.execute(insert(UsageEvent), rows)
