"""Sending the outbox: claim due notifications, send each once, record the outcome.

A notification is claimed with a conditional update (``status`` from pending to
sending, checked by row count) after a ``FOR UPDATE SKIP LOCKED`` read on
PostgreSQL, so two notify workers never send the same row. The claim commits
before the send; the outcome commits right after it:

- sent: ``sent_at`` and the far end's id (Message-ID, Slack ``ts``, path, HTTP status);
- a temporary error: back to pending, ``next_attempt_at`` after an exponential
  backoff (or the far end's Retry-After, if longer);
- a permanent error, or ``notify.max_attempts`` used up: failed, and a
  ``delivery.failed`` alert goes to the fallback targets (``alerts.fallback``).

A worker that dies between sending and recording leaves the row ``sending``. After
``notify.lease`` it is *in doubt*. Email (same Message-ID), webhooks (same delivery
id) and files (same name) are sent again: the far end can recognise the copy. A
Slack post cannot be recognised, so an in-doubt Slack row is failed rather than
posted twice, and its ``delivery.failed`` alert asks an operator to check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import Engine, or_, select, update

from worker import clock
from worker.models import Notification
from worker.sql import skip_locked
from worker.settings.routing import DeliverySettings

logger = logging.getLogger(__name__)

RESEND_IN_DOUBT = frozenset({"email", "webhook", "file"})  # channels whose far end knows a copy


@dataclass
class DeliveryStats:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    in_doubt: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "retrying": self.retrying, "failed": self.failed, "in_doubt": self.in_doubt}


def backoff(attempts: int, settings: DeliverySettings) -> timedelta:
    """base, 2 base, 4 base, ... capped: the wait after the ``attempts``-th failure."""
    return min(settings.backoff_base * (2 ** max(attempts - 1, 0)), settings.backoff_max)


def claim(engine: Engine, settings: DeliverySettings, limit: int, only: int | None = None) -> list[tuple[Any, bool]]:
    """Due rows, each claimed by this worker: [(row, in_doubt)]. Committed before any send."""
    now = clock.now()
    due = or_(
        (Notification.status == "pending") & (Notification.next_attempt_at <= now),
        (Notification.status == "sending") & (Notification.claimed_at <= now - settings.lease),
    )
    query = select(Notification).where(due).order_by(Notification.id).limit(limit)
    if only is not None:
        query = query.where(Notification.id == only)
    claimed = []
    with engine.begin() as conn:
        for row in conn.execute(skip_locked(query, conn.dialect.name)).all():
            won = conn.execute(update(Notification).where(
                Notification.id == row.id, Notification.status == row.status,
                Notification.attempts == row.attempts).values(
                status="sending", claimed_at=now, attempts=row.attempts + 1)).rowcount == 1
            if won:
                claimed.append((row, row.status == "sending"))
    return claimed


def deliver_pending(engine: Engine, settings: Any, *, limit: int = 100,
                    should_stop: Callable[[], bool] = lambda: False, only: int | None = None) -> DeliveryStats:
    """Send what is due (at most ``limit``); returns what happened."""
    from reports.channels import ChannelError, open_channel
    from reports.messages import Message

    delivery: DeliverySettings = settings.delivery
    stats = DeliveryStats()
    for row, in_doubt in claim(engine, delivery, limit, only):
        if should_stop():
            _release(engine, row)  # not sent: someone may take it at once
            continue
        if in_doubt:
            stats.in_doubt += 1
            if row.channel not in RESEND_IN_DOUBT:
                _fail(engine, settings, row, "in doubt: the worker stopped while sending and this channel "
                      "cannot recognise a copy; check whether it arrived, then `tokentally notifications retry "
                      f"{row.id}` if it did not")
                stats.failed += 1
                continue
        section = settings.channels.get(row.channel)
        if section is None:
            _fail(engine, settings, row, f"channel {row.channel!r} is not configured any more")
            stats.failed += 1
            continue
        message = Message(kind=row.kind, key=row.key, subject=row.subject, text=row.body_text, html=row.body_html,
                          slack=row.slack, data=row.data or {}, inline=row.inline or {})
        try:
            external_id = open_channel(section).send(row.target, message)
        except ChannelError as exc:
            attempts = row.attempts + 1
            if exc.permanent or attempts >= delivery.max_attempts:
                why = "permanent" if exc.permanent else f"gave up after {attempts} attempts"
                _fail(engine, settings, row, f"{exc} ({why})")
                stats.failed += 1
            else:
                wait = max(backoff(attempts, delivery), timedelta(seconds=exc.retry_after or 0))
                _retry_later(engine, row, str(exc), wait)
                stats.retrying += 1
            continue
        except Exception as exc:  # a bug in a channel: keep the row, say so, go on with the others
            logger.exception("channel crashed", extra={"action": "delivery_crashed", "notification": row.id})
            _retry_later(engine, row, f"{type(exc).__name__}: {exc}", backoff(row.attempts + 1, delivery))
            stats.retrying += 1
            continue
        with engine.begin() as conn:
            conn.execute(update(Notification).where(Notification.id == row.id).values(
                status="sent", sent_at=clock.now(), external_id=None if external_id is None else str(external_id)[:300],
                last_error=None))
        stats.sent += 1
        logger.info("notification sent", extra={"action": "notification_sent", "notification": row.id,
                                                "channel": row.channel, "kind": row.kind})
    return stats


def _release(engine: Engine, row: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(Notification).where(Notification.id == row.id).values(
            status="pending", attempts=row.attempts, claimed_at=None))


def _retry_later(engine: Engine, row: Any, error: str, wait: timedelta) -> None:
    when: datetime = clock.now() + wait
    with engine.begin() as conn:
        conn.execute(update(Notification).where(Notification.id == row.id).values(
            status="pending", next_attempt_at=when, last_error=error))
    logger.warning("notification will be retried", extra={"action": "delivery_retry", "notification": row.id,
                                                          "channel": row.channel, "error": error,
                                                          "next_attempt_at": when.isoformat()})


def _fail(engine: Engine, settings: Any, row: Any, error: str) -> None:
    from worker.alerts.state import raise_alert

    with engine.begin() as conn:
        conn.execute(update(Notification).where(Notification.id == row.id).values(
            status="failed", last_error=error))
    logger.error("notification failed", extra={"action": "delivery_failed", "notification": row.id,
                                               "channel": row.channel, "error": error})
    if row.kind == "delivery.failed":
        return  # a failed fallback does not raise another (no loops); the log line above stays
    try:  # after the row is recorded failed: a failure to alert must not put it back in play
        with engine.begin() as conn:
            raise_alert(conn, settings, kind="delivery.failed", scope="channel",
                        scope_id=f"{row.channel}:{row.target}",
                        period=clock.now().astimezone(settings.tz).date().isoformat(), severity="warning",
                        payload={"message": f"notification {row.id} ({row.kind}: {row.subject}) could not be "
                                            f"delivered: {error}", "notification_id": row.id})
    except Exception:
        logger.exception("could not raise delivery.failed", extra={"action": "alert_failed",
                                                                   "notification": row.id})


def retry(engine: Engine, notification_id: int) -> bool:
    """Put a failed (or pending) notification back in the queue, due now."""
    with engine.begin() as conn:
        return conn.execute(update(Notification).where(
            Notification.id == notification_id, Notification.status.in_(("failed", "pending"))).values(
            status="pending", next_attempt_at=clock.now(), attempts=0, claimed_at=None)).rowcount == 1


def due_count(engine: Engine) -> int:
    from sqlalchemy import func

    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Notification).where(
            Notification.status == "pending", Notification.next_attempt_at <= clock.now())).scalar_one()
