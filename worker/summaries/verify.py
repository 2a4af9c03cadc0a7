"""Summaries checked against the ledger: every day recomputed in memory and compared, row by row,
with what is stored (``tokentally summaries verify`` and the integrity check ``summaries``)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import Connection, Engine, select

from worker.clock import local_day_bounds
from worker.models import DailyRollup, DailySummary
from worker.settings import Settings
from worker.summaries.aggregate import KEYS, MEASURES, ROLLUP_KEYS, ledger_group

def verify(engine: Engine, settings: Settings, first: date, last: date) -> list[dict[str, Any]]:
    """Recompute every day in range from the ledger and compare with the stored rows."""
    with engine.connect() as conn:
        return verify_conn(conn, settings, first, last)


def verify_conn(conn: Connection, settings: Settings, first: date, last: date) -> list[dict[str, Any]]:
    differences: list[dict[str, Any]] = []
    tz = settings.tz
    day = first
    while day <= last:
        start, end = local_day_bounds(day, tz)
        expected = {tuple(r[:len(KEYS)]): _measures(r[len(KEYS):]) for r in conn.execute(ledger_group(start, end))}
        ds = DailySummary
        stored = {tuple(r[:len(KEYS)]): _measures(r[len(KEYS):]) for r in conn.execute(
            select(*[getattr(ds, k) for k in KEYS], *[getattr(ds, m) for m in MEASURES]).where(ds.day == day))}
        for key in sorted(set(expected) | set(stored), key=str):
            if expected.get(key) != stored.get(key):
                differences.append({"day": day.isoformat(), "key": dict(zip(KEYS, key)),
                                    "ledger": expected.get(key), "summary": stored.get(key)})
        differences.extend(_verify_rollup(conn, day, expected))
        day += timedelta(days=1)
    return differences


def _verify_rollup(conn: Connection, day: date, expected: dict[tuple, dict[str, Any]]) -> list[dict[str, Any]]:
    """The rollup must equal the ledger's rows added up without the account."""
    want: dict[tuple, dict[str, Any]] = {}
    account = KEYS.index("account_id")
    for key, measures in expected.items():
        short = key[:account] + key[account + 1:]
        have = want.setdefault(short, {m: None for m in MEASURES})
        for m, v in measures.items():
            if v is None:
                continue
            if have[m] is None:
                have[m] = v
            elif m == "latency_min":
                have[m] = min(have[m], v)
            elif m == "latency_max":
                have[m] = max(have[m], v)
            elif m == "cost_usd":
                have[m] = f"{Decimal(have[m]) + Decimal(v):.10f}"
            else:
                have[m] += v
    dr = DailyRollup
    stored = {tuple(r[:len(ROLLUP_KEYS)]): _measures(r[len(ROLLUP_KEYS):]) for r in conn.execute(
        select(*[getattr(dr, k) for k in ROLLUP_KEYS], *[getattr(dr, m) for m in MEASURES]).where(dr.day == day))}
    return [{"day": day.isoformat(), "key": dict(zip(ROLLUP_KEYS, key)), "ledger": want.get(key),
             "rollup": stored.get(key)}
            for key in sorted(set(want) | set(stored), key=str) if want.get(key) != stored.get(key)]


def _measures(values: Iterable[Any]) -> dict[str, Any]:
    out = {}
    for name, value in zip(MEASURES, values):
        if name == "cost_usd":
            out[name] = f"{Decimal(value or 0):.10f}"
        else:
            out[name] = None if value is None else int(value)
    return out

