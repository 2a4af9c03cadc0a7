"""Usage totals from the ledger, grouped by local day/month or by a dimension.

Local days are cut in the configured time zone. PostgreSQL knows time zones
(``timezone(tz, occurred_at)``); SQLite does not, so there the local date is
``date(occurred_at, '+N seconds')`` with N the UTC offset in force, switched at
each DST transition inside the range (a CASE over a handful of segments).

``--by project`` and ``--by api_key`` always read the ledger: the summaries do not keep
the project or the key (their grain is day x account x tenant x service x provider x model),
so these totals cost a scan of the range's events (the ``occurred_at`` index).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, String, func, literal, select

from worker.clock import local_day_bounds
from worker.ledger.dirty_days import dirty_days
from worker.sql import local_bucket
from worker.models import DailyRollup, DailySummary, UsageEvent
from worker.summaries.aggregate import ledger_measures

GROUPS = {
    "day": "day",
    "month": "month",
    "model": "model",
    "provider": "provider",
    "service": "service",
    "account": "account_id",
    "tenant": "tenant_id",
    "project": "project_id",
    "api_key": "api_key",
}
LEDGER_ONLY = frozenset({"project", "api_key"})  # not in the summaries: read from the ledger
DIMENSION_COLUMNS = {"model": UsageEvent.model_used, "provider": UsageEvent.provider,
                     "service": UsageEvent.service, "account": UsageEvent.account_id,
                     "tenant": UsageEvent.tenant_id, "project": UsageEvent.project_id,
                     "api_key": UsageEvent.api_key}
FIELDS = ("requests", "errors", "timeouts", "prompt_tokens", "completion_tokens", "total_tokens",
          "cost_usd", "unpriced_requests")


@dataclass
class UsageRow:
    key: str | None
    requests: int
    errors: int
    timeouts: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: Decimal
    unpriced_requests: int

    def as_dict(self, key_name: str) -> dict[str, Any]:
        return {key_name: self.key, "requests": self.requests, "errors": self.errors,
                "timeouts": self.timeouts, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "total_tokens": self.total_tokens,
                "cost_usd": f"{self.cost_usd:.10f}", "unpriced_requests": self.unpriced_requests}


def range_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return local_day_bounds(first, tz)[0], local_day_bounds(last, tz)[1]


def usage(conn: Connection, tz: ZoneInfo, first: date, last: date, by: str,
          tenant: str | None = None) -> list[UsageRow]:
    """Totals from the summaries, and from the ledger for the days whose summaries are
    out of date (marked dirty), so the figures always equal the ledger's.
    ``tenant``: only that tenant's usage."""
    if by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}")

    if by in LEDGER_ONLY:
        rows = usage_from_ledger(conn, tz, first, last, by, tenant)
        return sorted(rows, key=lambda r: (r.key is None, r.key or ""))

    dirty = sorted(dirty_days(conn, first, last))
    totals: dict[str | None, UsageRow] = {}
    for row in _from_summaries(conn, first, last, by, dirty, tenant):
        _merge(totals, row)
    for run_first, run_last in _runs(dirty):
        for row in usage_from_ledger(conn, tz, run_first, run_last, by, tenant):
            _merge(totals, row)
    return [totals[k] for k in sorted(totals, key=lambda k: (k is None, k or ""))]


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days folded into (first, last) ranges."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _merge(totals: dict[str | None, UsageRow], row: UsageRow) -> None:
    have = totals.get(row.key)
    if have is None:
        totals[row.key] = row
        return
    for name in FIELDS:
        setattr(have, name, getattr(have, name) + getattr(row, name))


def _from_summaries(conn: Connection, first: date, last: date, by: str, skip: list[date],
                    tenant: str | None = None) -> list[UsageRow]:
    # Totals that do not need the account read the much smaller rollup.
    ds = DailySummary if by == "account" else DailyRollup
    if by in ("day", "month"):
        key_col = ds.day
    else:
        key_col = getattr(ds, {"account": "account_id", "tenant": "tenant_id"}.get(by, by))
    query = (select(key_col, *(func.sum(getattr(ds, name)) for name in FIELDS))
             .where(ds.day >= first, ds.day <= last)
             .group_by(key_col))
    if skip:
        query = query.where(ds.day.not_in(skip))
    if tenant is not None:
        query = query.where(ds.tenant_id == tenant)
    rows = []
    for k, *values in conn.execute(query):
        if by == "day":
            k = k.isoformat()
        elif by == "month":
            k = k.isoformat()[:7]
        elif by in ("tenant", "service") and k == "":
            k = None
        rows.append(_row(k, values))
    return rows


def _row(key: str | None, values: list[Any]) -> UsageRow:
    requests, errors, timeouts, prompt, completion, total, cost, unpriced = values
    return UsageRow(key, int(requests or 0), int(errors or 0), int(timeouts or 0), int(prompt or 0),
                    int(completion or 0), int(total or 0), Decimal(cost or 0), int(unpriced or 0))


def usage_from_ledger(conn: Connection, tz: ZoneInfo, first: date, last: date, by: str,
                      tenant: str | None = None) -> list[UsageRow]:
    """The same totals straight from the ledger (for days whose summaries are not current)."""
    start, end = range_bounds(first, last, tz)
    ev = UsageEvent
    if by in ("day", "month"):
        key = local_bucket(conn.dialect.name, tz, start, end, by, UsageEvent.occurred_at)
    else:
        key = func.coalesce(DIMENSION_COLUMNS[by], literal(None, String))
    key = key.label("key")
    measures = {c.name: c for c in ledger_measures()}
    query = (
        select(key, *(measures[name] for name in FIELDS))
        .where(ev.occurred_at >= start, ev.occurred_at < end)
        .group_by(key)
        .order_by(key)
    )
    if tenant is not None:
        query = query.where(ev.tenant_id == tenant)
    return [_row(k, values) for k, *values in conn.execute(query)]
