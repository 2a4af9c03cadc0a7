"""What the ledger holds but cannot account for: events with no account, quarantined records, no price.

One finding per local day (per source for the rejects), with a few examples. Nothing here writes.
"""

from __future__ import annotations

from sqlalchemy import and_, func, select

from worker.integrity.base import CheckContext, Finding, day_column, in_day, in_range, iso, money6
from worker.models import IngestReject, UsageEvent

ue = UsageEvent


def unattributed(ctx: CheckContext) -> list[Finding]:
    """Days where more than ``unattributed_share`` of the events have no account."""
    o = ctx.options
    day = day_column(ctx, ue.occurred_at)
    totals = ctx.conn.execute(
        select(day, func.count(), func.count().filter(ue.unattributed.is_(True)),
               func.sum(ue.cost_usd).filter(ue.unattributed.is_(True)))
        .where(in_range(ctx, ue.occurred_at)).group_by(day).order_by(day)).all()
    findings = []
    for d, events, missing, cost in totals:
        missing = int(missing or 0)
        if not missing or missing <= events * o.unattributed_share:
            continue
        rows = ctx.conn.execute(select(ue.event_id, ue.source, ue.service, ue.model_used, ue.occurred_at)
                                .where(in_day(ctx, ue.occurred_at, d), ue.unattributed.is_(True))
                                .order_by(ue.occurred_at).limit(o.examples)).all()
        findings.append(Finding(
            "unattributed", "integrity.unattributed", "system", "", d, missing,
            examples=[{"event_id": r.event_id, "source": r.source, "service": r.service, "model": r.model_used,
                       "occurred_at": iso(r.occurred_at)} for r in rows],
            data={"events": events, "share": round(missing / events, 4), "cost_usd": money6(cost)}))
    return findings


def rejects(ctx: CheckContext) -> list[Finding]:
    """Records quarantined (still open) that arrived on the checked days."""
    o = ctx.options
    day = day_column(ctx, IngestReject.received_at)
    where = and_(in_range(ctx, IngestReject.received_at), IngestReject.status == "open")
    findings = []
    for source, d, count in ctx.conn.execute(select(IngestReject.source, day, func.count()).where(where)
                                             .group_by(IngestReject.source, day).order_by(day)).all():
        of_day = and_(where, IngestReject.source == source, in_day(ctx, IngestReject.received_at, d))
        reasons = ctx.conn.execute(select(IngestReject.reason, func.count()).where(of_day)
                                   .group_by(IngestReject.reason).order_by(func.count().desc())
                                   .limit(o.examples)).all()
        rows = ctx.conn.execute(select(IngestReject.location, IngestReject.position, IngestReject.reason)
                                .where(of_day).order_by(IngestReject.id).limit(o.examples)).all()
        findings.append(Finding(
            "rejects", "integrity.rejects", "source", source, d, count,
            examples=[{"location": r.location, "position": r.position, "reason": r.reason} for r in rows],
            data={"reasons": {reason: n for reason, n in reasons}}))
    return findings


def unpriced(ctx: CheckContext) -> list[Finding]:
    """Events with no price (a model neither genai-prices nor the overrides know)."""
    o = ctx.options
    day = day_column(ctx, ue.occurred_at)
    where = and_(in_range(ctx, ue.occurred_at), ue.cost_status == "unpriced")
    findings = []
    for d, count, tokens in ctx.conn.execute(select(day, func.count(), func.sum(ue.total_tokens)).where(where)
                                             .group_by(day).order_by(day)).all():
        models = ctx.conn.execute(select(ue.provider, ue.model_used, func.count(), func.sum(ue.total_tokens))
                                  .where(where, in_day(ctx, ue.occurred_at, d))
                                  .group_by(ue.provider, ue.model_used).order_by(func.count().desc())).all()
        findings.append(Finding(
            "unpriced", "integrity.unpriced", "system", "", d, count,
            examples=[{"provider": p, "model": m, "events": n, "tokens": int(t or 0)}
                      for p, m, n, t in models[:o.examples]],
            data={"models": len(models), "tokens": int(tokens or 0)}))
    return findings
