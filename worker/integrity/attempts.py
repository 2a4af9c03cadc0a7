"""Call attempts in the ledger, matched to their events: the integrity job's half of call attempts.

An app logs its intent before calling an LLM (``worker.ingest.attempts`` reads those
records); the usage event should follow. :func:`match` marks the attempts whose event
arrived; :func:`flag_unlogged` the ones still without it after the grace.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, or_, select, update

from worker.models import CallAttempt, UsageEvent


def match(conn: Connection, now: datetime, since: datetime) -> int:
    """Open attempts, and those flagged unlogged that started since ``since``, whose event is
    in the ledger now become matched, with the event's tokens. Returns how many matched."""
    ca, ue = CallAttempt, UsageEvent
    tokens = select(ue.total_tokens).where(ue.event_id == ca.attempt_id).scalar_subquery()
    # One statement, and conditional on the state: of two replicas, one moves each attempt.
    return conn.execute(update(ca).where(or_(ca.state == "open", and_(ca.state == "unlogged", ca.started_at >= since)),
                                         select(ue.id).where(ue.event_id == ca.attempt_id).exists())
                        .values(state="matched", matched_at=now, actual_tokens=tokens)).rowcount


def flag_unlogged(conn: Connection, now: datetime, cutoff: datetime) -> int:
    """Open attempts started before ``cutoff`` with no event in the ledger become unlogged."""
    ca, ue = CallAttempt, UsageEvent
    has_event = select(ue.id).where(ue.event_id == ca.attempt_id).exists()
    return conn.execute(update(ca).where(ca.state == "open", ca.started_at < cutoff,
                                         ~has_event).values(state="unlogged", flagged_at=now)).rowcount
