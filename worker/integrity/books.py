"""Gaps in our own books: one request booked twice, token counts that do not add up, costs off their price.

One finding per local day, with a few examples. Nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, and_, func, literal, or_, select

from worker.integrity.base import CheckContext, Finding, day_column, in_day, in_range, money6
from worker.models import UsageEvent

ue = UsageEvent


def duplicates(ctx: CheckContext) -> list[Finding]:
    """One provider request (its id in the metadata) booked under several event ids."""
    o = ctx.options
    if not o.request_id_keys:
        return []
    rid = func.coalesce(*[ue.meta[k].as_string() for k in o.request_id_keys]) \
        if len(o.request_id_keys) > 1 else ue.meta[o.request_id_keys[0]].as_string()
    rid = rid.label("rid")
    groups = ctx.conn.execute(select(rid, func.count()).where(in_range(ctx, ue.occurred_at), rid.is_not(None))
                              .group_by(rid).having(func.count() > 1).limit(10_000)).all()
    if not groups:
        return []
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ids = [g[0] for g in groups]
    for start in range(0, len(ids), 500):
        rows = ctx.conn.execute(select(rid, ue.event_id, ue.source, ue.occurred_at, ue.cost_usd)
                                .where(in_range(ctx, ue.occurred_at), rid.in_(ids[start:start + 500]))
                                .order_by(rid, ue.occurred_at, ue.id)).all()
        booked: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            booked[row.rid].append(row)
        for request, copies in booked.items():
            extra = sum((c.cost_usd or Decimal(0) for c in copies[1:]), Decimal(0))
            by_day[ctx.day_of(copies[0].occurred_at)].append({
                "provider_request_id": request, "event_ids": [c.event_id for c in copies][:10],
                "sources": sorted({c.source for c in copies}), "copies": len(copies), "extra_cost_usd": extra})
    findings = []
    for d, found in sorted(by_day.items()):
        extra = sum((f["extra_cost_usd"] for f in found), Decimal(0))
        count = sum(f["copies"] - 1 for f in found)
        for f in found:
            f["extra_cost_usd"] = money6(f["extra_cost_usd"])
        findings.append(Finding(
            "duplicates", "integrity.duplicates", "system", "", d, count,
            examples=found[:o.examples], data={"requests": len(found), "extra_cost_usd": money6(extra)}))
    return findings


def token_mismatch(ctx: CheckContext) -> list[Finding]:
    """Token counts that do not add up: total < prompt + completion, cached > prompt, reasoning > completion."""
    o = ctx.options
    bad = or_(ue.total_tokens < ue.prompt_tokens + ue.completion_tokens, ue.cached_tokens > ue.prompt_tokens,
              ue.reasoning_tokens > ue.completion_tokens)
    where = and_(in_range(ctx, ue.occurred_at), bad)
    day = day_column(ctx, ue.occurred_at)
    findings = []
    for d, count in ctx.conn.execute(select(day, func.count()).where(where).group_by(day).order_by(day)).all():
        rows = ctx.conn.execute(select(ue.event_id, ue.source, ue.model_used, ue.prompt_tokens, ue.completion_tokens,
                                       ue.total_tokens, ue.cached_tokens, ue.reasoning_tokens)
                                .where(where, in_day(ctx, ue.occurred_at, d)).order_by(ue.occurred_at)
                                .limit(o.examples)).all()
        findings.append(Finding(
            "token_mismatch", "integrity.token_mismatch", "system", "", d, count,
            examples=[dict(r._mapping) for r in rows]))
    return findings


def cost_mismatch(ctx: CheckContext) -> list[Finding]:
    """The cost the app reported against the price computed from the tokens, per model."""
    o = ctx.options
    off = func.abs(ue.cost_reported - ue.cost_computed) > ue.cost_computed * literal(o.cost_tolerance, Float())
    where = and_(in_range(ctx, ue.occurred_at), ue.cost_reported.is_not(None), ue.cost_computed.is_not(None), off)
    day = day_column(ctx, ue.occurred_at)
    rows = ctx.conn.execute(select(day, ue.model_used, func.count(), func.sum(ue.cost_reported),
                                   func.sum(ue.cost_computed), func.min(ue.event_id))
                            .where(where).group_by(day, ue.model_used).order_by(day, func.count().desc())).all()
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d, model, count, reported, computed, example in rows:
        by_day[d].append({"model": model, "events": count,
                          "reported_usd": money6(reported), "computed_usd": money6(computed),
                          "example_event_id": example})
    findings = []
    for d, models in by_day.items():
        count = sum(m["events"] for m in models)
        reported = sum(Decimal(m["reported_usd"]) for m in models)
        computed = sum(Decimal(m["computed_usd"]) for m in models)
        findings.append(Finding(
            "cost_mismatch", "integrity.cost_mismatch", "system", "", d, count,
            examples=models[:o.examples],
            data={"reported_usd": money6(reported), "computed_usd": money6(computed), "tolerance": o.cost_tolerance}))
    return findings
