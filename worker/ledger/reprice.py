"""Recompute the cost of ledger events after the pricing settings changed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, bindparam, select, update

from worker import clock
from worker.models import UNKNOWN, UsageEvent
from worker.ledger.event import Event
from worker.ledger.pricing import Pricer
from worker.settings import Settings
from worker.ledger.dirty_days import local_days_of_utc_hours, mark_dirty, utc_hour
from worker.limits.dirty import mark_accounts
from worker.limits.scope_marks import event_scopes, mark_scopes
from worker.summaries.usage import range_bounds

BATCH = 5000


def _event(row: Any) -> Event:
    """Every field pricing reads (provider, models, time, every token class, service tier, reported
    cost). Only a total (prompt = completion = 0) means the split was unknown."""
    return Event(
        event_id=row.event_id, occurred_at=row.occurred_at, account_id=row.account_id, tenant_id=None,
        service=None, provider=None if row.provider == UNKNOWN else row.provider, model=row.model,
        model_used=row.model_used, status="success", status_code=None, prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens, total_tokens=row.total_tokens,
        cached_tokens=row.cached_tokens, reasoning_tokens=0, latency_ms=None,
        cost_reported=row.cost_reported, error_message=None, metadata=None, unattributed=False,
        model_defaulted=False,
        token_split_known=not (row.prompt_tokens == 0 and row.completion_tokens == 0 and row.total_tokens > 0),
        cache_write_tokens=row.cache_write_tokens, cache_write_1h_tokens=row.cache_write_1h_tokens,
        service_tier=row.service_tier,
    )


def reprice(settings: Settings, engine: Engine, first: date, last: date) -> dict[str, Any]:
    start, end = range_bounds(first, last, settings.tz)
    pricer = Pricer(settings.price_overrides, settings.tz)
    ev = UsageEvent
    cols = (ev.id, ev.event_id, ev.occurred_at, ev.account_id, ev.provider, ev.model, ev.model_used,
            ev.prompt_tokens, ev.completion_tokens, ev.total_tokens, ev.cached_tokens, ev.cache_write_tokens,
            ev.cache_write_1h_tokens, ev.service_tier, ev.cost_reported,
            ev.cost_usd, ev.cost_computed, ev.cost_status, ev.price_source, ev.price_effective_from,
            ev.tenant_id, ev.service, ev.project_id, ev.api_key)  # (the scopes whose windows' cost changes)
    examined = changed = 0
    before = after = Decimal(0)
    last_id = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(select(*cols).where(ev.occurred_at >= start, ev.occurred_at < end,
                                                    ev.id > last_id).order_by(ev.id).limit(BATCH)).all()
            if not rows:
                break
            updates = []
            for row in rows:
                examined += 1
                p = pricer.price(_event(row))
                before += row.cost_usd or 0
                after += p.cost_usd or 0
                new = {"provider": p.provider, "cost_usd": p.cost_usd, "cost_computed": p.cost_computed,
                       "cost_status": p.cost_status, "price_source": p.price_source,
                       "price_effective_from": p.price_effective_from}
                old = {k: getattr(row, k) for k in new}
                if new != old:
                    updates.append({"_id": row.id, **new})
            if updates:
                conn.execute(update(ev).where(ev.id == bindparam("_id")), updates)
                changed += len(updates)
                ids = {u["_id"] for u in updates}
                touched = {utc_hour(row.occurred_at) for row in rows if row.id in ids}
                mark_dirty(conn, local_days_of_utc_hours(touched, settings.tz), clock.now())
                mark_accounts(conn, {(row.account_id, row.occurred_at.astimezone(settings.tz).date())
                                     for row in rows if row.id in ids}, clock.now())  # the windows' cost
                mark_scopes(conn, {(scope, row.occurred_at.astimezone(settings.tz).date()) for row in rows
                                   if row.id in ids for scope in event_scopes(
                                       row.tenant_id, row.service, row.model, row.project_id, row.api_key)},
                            clock.now())
            last_id = rows[-1].id
    return {"from": first.isoformat(), "to": last.isoformat(), "examined": examined, "changed": changed,
            "cost_before_usd": f"{before:.10f}", "cost_after_usd": f"{after:.10f}"}
