"""The ledger aggregated by summary key: the one statement every summary, check and total is built from.

``ledger_group`` is what a day's summary rows are (``recompute``), what they are
compared with (``verify``), and ``ledger_measures`` what usage totals add up when
summaries are not current (``usage``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, case, func, select
from sqlalchemy.sql import ColumnElement

from worker.models import UsageEvent

KEYS = ("tenant_id", "account_id", "provider", "model", "service", "status")
MEASURES = ("requests", "errors", "timeouts", "prompt_tokens", "completion_tokens", "cached_tokens",
            "reasoning_tokens", "total_tokens", "cost_usd", "unpriced_requests", "latency_count",
            "latency_sum", "latency_min", "latency_max")
# What a correction compares (the headline figures of a day).
HEADLINE = ("requests", "errors", "timeouts", "total_tokens", "cost_usd", "unpriced_requests")


def ledger_group(start: datetime, end: datetime) -> Select:
    """The ledger grouped by summary key over [start, end): the heart of every recompute."""
    ev = UsageEvent
    keys = (func.coalesce(ev.tenant_id, "").label("tenant_id"), ev.account_id.label("account_id"),
            ev.provider.label("provider"), ev.model_used.label("model"),
            func.coalesce(ev.service, "").label("service"), ev.status.label("status"))
    measures = (*ledger_measures(), *latency_measures())
    return (select(*keys, *measures)
            .where(ev.occurred_at >= start, ev.occurred_at < end)
            .group_by(*keys[:1], ev.account_id, ev.provider, ev.model_used, keys[4], ev.status))


def ledger_measures() -> tuple[ColumnElement, ...]:
    """requests, errors, timeouts, prompt/completion/cached/reasoning/total tokens, cost, unpriced requests."""
    ev = UsageEvent
    return (
        func.count().label("requests"),
        func.sum(case((ev.status == "error", 1), else_=0)).label("errors"),
        func.sum(case((ev.status == "timeout", 1), else_=0)).label("timeouts"),
        func.sum(ev.prompt_tokens).label("prompt_tokens"),
        func.sum(ev.completion_tokens).label("completion_tokens"),
        func.sum(ev.cached_tokens).label("cached_tokens"),
        func.sum(ev.reasoning_tokens).label("reasoning_tokens"),
        func.sum(ev.total_tokens).label("total_tokens"),
        func.coalesce(func.sum(ev.cost_usd), 0).label("cost_usd"),
        func.sum(case((ev.cost_usd.is_(None), 1), else_=0)).label("unpriced_requests"),
    )


def latency_measures() -> tuple[ColumnElement, ...]:
    ev = UsageEvent
    return (
        func.count(ev.latency_ms).label("latency_count"),
        func.coalesce(func.sum(ev.latency_ms), 0).label("latency_sum"),
        func.min(ev.latency_ms).label("latency_min"),
        func.max(ev.latency_ms).label("latency_max"),
    )


ROLLUP_KEYS = tuple(k for k in KEYS if k != "account_id")
