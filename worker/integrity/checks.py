"""The integrity checks: each reads one kind of gap over the checked local days.

Each takes a :class:`worker.integrity.CheckContext` and returns findings, one per
scope and local day, with the count and a few examples. Nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, and_, func, literal, or_, select

from worker.summaries import verify as summary_tables
from worker.clock import local_day_bounds
from worker.integrity.base import CheckContext, Finding
from worker.models import CallAttempt, DirtyDay, IngestReject, SummaryDay, UsageEvent
from worker.money import fixed
from worker.sql import local_bucket

ue, ca = UsageEvent, CallAttempt


def _ts(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _day(ctx: CheckContext, col: Any) -> Any:
    start, end = ctx.bounds
    return local_bucket(ctx.conn.dialect.name, ctx.settings.tz, start, end, "day", col).label("day")


def _in_day(ctx: CheckContext, col: Any, day: str) -> Any:
    start, end = local_day_bounds(date.fromisoformat(day), ctx.settings.tz)
    return and_(col >= start, col < end)


def _in_range(ctx: CheckContext, col: Any) -> Any:
    start, end = ctx.bounds
    return and_(col >= start, col < end)


def _money(value: Any) -> str:
    return fixed(Decimal(value or 0), 6)


# ---------------------------------------------------------------------------- unlogged calls

def _no_event() -> Any:
    return ~select(ue.id).where(ue.event_id == ca.attempt_id).exists()


def unlogged_calls(ctx: CheckContext) -> list[Finding]:
    """Attempts whose usage event has not arrived ``attempt_grace`` after the call started."""
    o = ctx.options
    cutoff = ctx.now - o.attempt_grace
    day = _day(ctx, ca.started_at)
    where = and_(_in_range(ctx, ca.started_at), ca.started_at < cutoff, _no_event())
    findings = []
    for source, d, count, estimated in ctx.conn.execute(
            select(ca.source, day, func.count(), func.sum(ca.estimated_tokens)).where(where)
            .group_by(ca.source, day).order_by(day, ca.source)).all():
        rows = ctx.conn.execute(
            select(ca.attempt_id, ca.started_at, ca.account_id, ca.service, ca.model, ca.estimated_tokens)
            .where(where, ca.source == source, _in_day(ctx, ca.started_at, d))
            .order_by(ca.started_at).limit(o.examples)).all()
        grace = int(o.attempt_grace.total_seconds() // 60)
        findings.append(Finding(
            "unlogged_calls", "integrity.unlogged_calls", "source", source, d, count,
            examples=[{"attempt_id": r.attempt_id, "started_at": _ts(r.started_at), "account_id": r.account_id,
                       "service": r.service, "model": r.model, "estimated_tokens": r.estimated_tokens}
                      for r in rows],
            data={"estimated_tokens": int(estimated or 0), "grace_minutes": grace}))
    return findings


def estimate_mismatch(ctx: CheckContext) -> list[Finding]:
    """Attempts whose event used far more or fewer tokens than the app estimated."""
    o = ctx.options
    tol = literal(o.estimate_tolerance, Float())
    day = _day(ctx, ca.started_at)
    off = func.abs(ue.total_tokens - ca.estimated_tokens) > ca.estimated_tokens * tol
    where = and_(_in_range(ctx, ca.started_at), ca.estimated_tokens > 0, off)
    joined = select(ca.source, day, func.count(), func.sum(ca.estimated_tokens), func.sum(ue.total_tokens)) \
        .join(ue, ue.event_id == ca.attempt_id).where(where).group_by(ca.source, day).order_by(day, ca.source)
    findings = []
    for source, d, count, estimated, actual in ctx.conn.execute(joined).all():
        rows = ctx.conn.execute(
            select(ca.attempt_id, ca.account_id, ca.service, ca.model, ca.estimated_tokens, ue.total_tokens)
            .join(ue, ue.event_id == ca.attempt_id)
            .where(where, ca.source == source, _in_day(ctx, ca.started_at, d))
            .order_by(ca.started_at).limit(o.examples)).all()
        findings.append(Finding(
            "estimate_mismatch", "integrity.estimate_mismatch", "source", source, d, count,
            examples=[{"attempt_id": r.attempt_id, "account_id": r.account_id, "service": r.service,
                       "model": r.model, "estimated_tokens": r.estimated_tokens, "actual_tokens": r.total_tokens}
                      for r in rows],
            data={"estimated_tokens": int(estimated), "actual_tokens": int(actual),
                  "tolerance": o.estimate_tolerance}))
    return findings


# ---------------------------------------------------------------------------- sequence gaps

def sequence_gaps(ctx: CheckContext) -> list[Finding]:
    """Records numbered per process (``seq`` with ``process_id``): a missing number is a call
    that was made and never logged. Only gaps with a later record older than the grace count."""
    o = ctx.options
    seq, pid = ue.meta["seq"].as_string(), ue.meta["process_id"].as_string()
    rows = ctx.conn.execute(select(ue.source, pid, seq, ue.occurred_at)
                            .where(_in_range(ctx, ue.occurred_at), seq.is_not(None), pid.is_not(None))).all()
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


# ---------------------------------------------------------------------------- what the ledger holds

def unattributed(ctx: CheckContext) -> list[Finding]:
    """Days where more than ``unattributed_share`` of the events have no account."""
    o = ctx.options
    day = _day(ctx, ue.occurred_at)
    totals = ctx.conn.execute(
        select(day, func.count(), func.count().filter(ue.unattributed.is_(True)),
               func.sum(ue.cost_usd).filter(ue.unattributed.is_(True)))
        .where(_in_range(ctx, ue.occurred_at)).group_by(day).order_by(day)).all()
    findings = []
    for d, events, missing, cost in totals:
        missing = int(missing or 0)
        if not missing or missing <= events * o.unattributed_share:
            continue
        rows = ctx.conn.execute(select(ue.event_id, ue.source, ue.service, ue.model_used, ue.occurred_at)
                                .where(_in_day(ctx, ue.occurred_at, d), ue.unattributed.is_(True))
                                .order_by(ue.occurred_at).limit(o.examples)).all()
        findings.append(Finding(
            "unattributed", "integrity.unattributed", "system", "", d, missing,
            examples=[{"event_id": r.event_id, "source": r.source, "service": r.service, "model": r.model_used,
                       "occurred_at": _ts(r.occurred_at)} for r in rows],
            data={"events": events, "share": round(missing / events, 4), "cost_usd": _money(cost)}))
    return findings


def rejects(ctx: CheckContext) -> list[Finding]:
    """Records quarantined (still open) that arrived on the checked days."""
    o = ctx.options
    day = _day(ctx, IngestReject.received_at)
    where = and_(_in_range(ctx, IngestReject.received_at), IngestReject.status == "open")
    findings = []
    for source, d, count in ctx.conn.execute(select(IngestReject.source, day, func.count()).where(where)
                                             .group_by(IngestReject.source, day).order_by(day)).all():
        in_day = and_(where, IngestReject.source == source, _in_day(ctx, IngestReject.received_at, d))
        reasons = ctx.conn.execute(select(IngestReject.reason, func.count()).where(in_day)
                                   .group_by(IngestReject.reason).order_by(func.count().desc())
                                   .limit(o.examples)).all()
        rows = ctx.conn.execute(select(IngestReject.location, IngestReject.position, IngestReject.reason)
                                .where(in_day).order_by(IngestReject.id).limit(o.examples)).all()
        findings.append(Finding(
            "rejects", "integrity.rejects", "source", source, d, count,
            examples=[{"location": r.location, "position": r.position, "reason": r.reason} for r in rows],
            data={"reasons": {reason: n for reason, n in reasons}}))
    return findings


def unpriced(ctx: CheckContext) -> list[Finding]:
    """Events with no price (a model neither genai-prices nor the overrides know)."""
    o = ctx.options
    day = _day(ctx, ue.occurred_at)
    where = and_(_in_range(ctx, ue.occurred_at), ue.cost_status == "unpriced")
    findings = []
    for d, count, tokens in ctx.conn.execute(select(day, func.count(), func.sum(ue.total_tokens)).where(where)
                                             .group_by(day).order_by(day)).all():
        models = ctx.conn.execute(select(ue.provider, ue.model_used, func.count(), func.sum(ue.total_tokens))
                                  .where(where, _in_day(ctx, ue.occurred_at, d))
                                  .group_by(ue.provider, ue.model_used).order_by(func.count().desc())).all()
        findings.append(Finding(
            "unpriced", "integrity.unpriced", "system", "", d, count,
            examples=[{"provider": p, "model": m, "events": n, "tokens": int(t or 0)}
                      for p, m, n, t in models[:o.examples]],
            data={"models": len(models), "tokens": int(tokens or 0)}))
    return findings


# ---------------------------------------------------------------------------- gaps in our own books

def duplicates(ctx: CheckContext) -> list[Finding]:
    """One provider request (its id in the metadata) booked under several event ids."""
    o = ctx.options
    if not o.request_id_keys:
        return []
    rid = func.coalesce(*[ue.meta[k].as_string() for k in o.request_id_keys]) \
        if len(o.request_id_keys) > 1 else ue.meta[o.request_id_keys[0]].as_string()
    rid = rid.label("rid")
    groups = ctx.conn.execute(select(rid, func.count()).where(_in_range(ctx, ue.occurred_at), rid.is_not(None))
                              .group_by(rid).having(func.count() > 1).limit(10_000)).all()
    if not groups:
        return []
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ids = [g[0] for g in groups]
    for start in range(0, len(ids), 500):
        rows = ctx.conn.execute(select(rid, ue.event_id, ue.source, ue.occurred_at, ue.cost_usd)
                                .where(_in_range(ctx, ue.occurred_at), rid.in_(ids[start:start + 500]))
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
            f["extra_cost_usd"] = _money(f["extra_cost_usd"])
        findings.append(Finding(
            "duplicates", "integrity.duplicates", "system", "", d, count,
            examples=found[:o.examples], data={"requests": len(found), "extra_cost_usd": _money(extra)}))
    return findings


def token_mismatch(ctx: CheckContext) -> list[Finding]:
    """Token counts that do not add up: total < prompt + completion, cached > prompt, reasoning > completion."""
    o = ctx.options
    bad = or_(ue.total_tokens < ue.prompt_tokens + ue.completion_tokens, ue.cached_tokens > ue.prompt_tokens,
              ue.reasoning_tokens > ue.completion_tokens)
    where = and_(_in_range(ctx, ue.occurred_at), bad)
    day = _day(ctx, ue.occurred_at)
    findings = []
    for d, count in ctx.conn.execute(select(day, func.count()).where(where).group_by(day).order_by(day)).all():
        rows = ctx.conn.execute(select(ue.event_id, ue.source, ue.model_used, ue.prompt_tokens, ue.completion_tokens,
                                       ue.total_tokens, ue.cached_tokens, ue.reasoning_tokens)
                                .where(where, _in_day(ctx, ue.occurred_at, d)).order_by(ue.occurred_at)
                                .limit(o.examples)).all()
        findings.append(Finding(
            "token_mismatch", "integrity.token_mismatch", "system", "", d, count,
            examples=[dict(r._mapping) for r in rows]))
    return findings


def cost_mismatch(ctx: CheckContext) -> list[Finding]:
    """The cost the app reported against the price computed from the tokens, per model."""
    o = ctx.options
    off = func.abs(ue.cost_reported - ue.cost_computed) > ue.cost_computed * literal(o.cost_tolerance, Float())
    where = and_(_in_range(ctx, ue.occurred_at), ue.cost_reported.is_not(None), ue.cost_computed.is_not(None), off)
    day = _day(ctx, ue.occurred_at)
    rows = ctx.conn.execute(select(day, ue.model_used, func.count(), func.sum(ue.cost_reported),
                                   func.sum(ue.cost_computed), func.min(ue.event_id))
                            .where(where).group_by(day, ue.model_used).order_by(day, func.count().desc())).all()
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d, model, count, reported, computed, example in rows:
        by_day[d].append({"model": model, "events": count,
                          "reported_usd": _money(reported), "computed_usd": _money(computed),
                          "example_event_id": example})
    findings = []
    for d, models in by_day.items():
        count = sum(m["events"] for m in models)
        reported = sum(Decimal(m["reported_usd"]) for m in models)
        computed = sum(Decimal(m["computed_usd"]) for m in models)
        findings.append(Finding(
            "cost_mismatch", "integrity.cost_mismatch", "system", "", d, count,
            examples=models[:o.examples],
            data={"reported_usd": _money(reported), "computed_usd": _money(computed), "tolerance": o.cost_tolerance}))
    return findings


def summaries(ctx: CheckContext) -> list[Finding]:
    """Summaries that differ from the ledger, and days with events that were never summarised.
    Days waiting to be recomputed (marked dirty) are skipped: they will be."""
    o = ctx.options
    differences = summary_tables.verify_conn(ctx.conn, ctx.settings, ctx.first, ctx.last)
    summarised = {d.isoformat() for (d,) in ctx.conn.execute(
        select(SummaryDay.day).where(SummaryDay.day >= ctx.first, SummaryDay.day <= ctx.last)).all()}
    dirty = {d.isoformat() for (d,) in ctx.conn.execute(
        select(DirtyDay.day).where(DirtyDay.day >= ctx.first, DirtyDay.day <= ctx.last)).all()}
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for diff in differences:
        by_day[diff["day"]].append(diff)
    findings = []
    for d in sorted(set(by_day) - dirty):  # (a day with events and no summary differs in every row)
        if d not in summarised:
            findings.append(Finding(
                "summaries", "integrity.summaries", "system", "", d, 1,
                data={"missing": True}))
            continue
        found = by_day[d]
        findings.append(Finding(
            "summaries", "integrity.summaries", "system", "", d, len(found),
            examples=found[:o.examples]))
    return findings
