"""Calls made and never logged: attempts without their event, estimates far off, gaps in numbered sequences.

An app announces a call (a call attempt) or numbers its records per process (``seq``
with ``process_id``); each check here finds the calls whose usage event is missing or
does not match, one finding per source and local day. Nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, func, literal, select

from worker.integrity.base import CheckContext, Finding, day_column, in_day, in_range, iso
from worker.models import CallAttempt, UsageEvent

ue, ca = UsageEvent, CallAttempt


def _no_event() -> Any:
    return ~select(ue.id).where(ue.event_id == ca.attempt_id).exists()


def unlogged_calls(ctx: CheckContext) -> list[Finding]:
    """Attempts whose usage event has not arrived ``attempt_grace`` after the call started."""
    o = ctx.options
    cutoff = ctx.now - o.attempt_grace
    day = day_column(ctx, ca.started_at)
    where = and_(in_range(ctx, ca.started_at), ca.started_at < cutoff, _no_event())
    findings = []
    for source, d, count, estimated in ctx.conn.execute(
            select(ca.source, day, func.count(), func.sum(ca.estimated_tokens)).where(where)
            .group_by(ca.source, day).order_by(day, ca.source)).all():
        rows = ctx.conn.execute(
            select(ca.attempt_id, ca.started_at, ca.account_id, ca.service, ca.model, ca.estimated_tokens)
            .where(where, ca.source == source, in_day(ctx, ca.started_at, d))
            .order_by(ca.started_at).limit(o.examples)).all()
        grace = int(o.attempt_grace.total_seconds() // 60)
        findings.append(Finding(
            "unlogged_calls", "integrity.unlogged_calls", "source", source, d, count,
            examples=[{"attempt_id": r.attempt_id, "started_at": iso(r.started_at), "account_id": r.account_id,
                       "service": r.service, "model": r.model, "estimated_tokens": r.estimated_tokens}
                      for r in rows],
            data={"estimated_tokens": int(estimated or 0), "grace_minutes": grace}))
    return findings


def estimate_mismatch(ctx: CheckContext) -> list[Finding]:
    """Attempts whose event used far more or fewer tokens than the app estimated."""
    o = ctx.options
    tol = literal(o.estimate_tolerance, Float())
    day = day_column(ctx, ca.started_at)
    off = func.abs(ue.total_tokens - ca.estimated_tokens) > ca.estimated_tokens * tol
    where = and_(in_range(ctx, ca.started_at), ca.estimated_tokens > 0, off)
    joined = select(ca.source, day, func.count(), func.sum(ca.estimated_tokens), func.sum(ue.total_tokens)) \
        .join(ue, ue.event_id == ca.attempt_id).where(where).group_by(ca.source, day).order_by(day, ca.source)
    findings = []
    for source, d, count, estimated, actual in ctx.conn.execute(joined).all():
        rows = ctx.conn.execute(
            select(ca.attempt_id, ca.account_id, ca.service, ca.model, ca.estimated_tokens, ue.total_tokens)
            .join(ue, ue.event_id == ca.attempt_id)
            .where(where, ca.source == source, in_day(ctx, ca.started_at, d))
            .order_by(ca.started_at).limit(o.examples)).all()
        findings.append(Finding(
            "estimate_mismatch", "integrity.estimate_mismatch", "source", source, d, count,
            examples=[{"attempt_id": r.attempt_id, "account_id": r.account_id, "service": r.service,
                       "model": r.model, "estimated_tokens": r.estimated_tokens, "actual_tokens": r.total_tokens}
                      for r in rows],
            data={"estimated_tokens": int(estimated), "actual_tokens": int(actual),
                  "tolerance": o.estimate_tolerance}))
    return findings


def sequence_gaps(ctx: CheckContext) -> list[Finding]:
    """Records numbered per process (``seq`` with ``process_id``): a missing number is a call
    that was made and never logged. Only gaps with a later record older than the grace count."""
    o = ctx.options
    seq, pid = ue.meta["seq"].as_string(), ue.meta["process_id"].as_string()
    rows = ctx.conn.execute(select(ue.source, pid, seq, ue.occurred_at)
                            .where(in_range(ctx, ue.occurred_at), seq.is_not(None), pid.is_not(None))).all()
    numbered: dict[tuple[str, str], list[tuple[int, datetime]]] = defaultdict(list)
    for source, process, number, occurred in rows:
        try:
            numbered[(source, process)].append((int(number), occurred))
        except (TypeError, ValueError):
            continue  # not a number: not a sequence
    cutoff = ctx.now - o.attempt_grace
    gaps: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (source, process), items in numbered.items():
        items.sort()
        for (before, _), (after, at) in zip(items, items[1:]):
            if after - before > 1 and at < cutoff:
                gaps[(source, ctx.day_of(at))].append({"process_id": process, "after_seq": before,
                                                       "next_seq": after, "missing": after - before - 1})
    findings = []
    for (source, d), found in sorted(gaps.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        missing = sum(g["missing"] for g in found)
        processes = len({g["process_id"] for g in found})
        findings.append(Finding(
            "sequence_gap", "integrity.sequence_gap", "source", source, d, missing,
            examples=found[:o.examples], data={"gaps": len(found), "processes": processes}))
    return findings
