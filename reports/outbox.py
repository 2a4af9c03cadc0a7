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

An alert's row holds facts (``template``, ``context``) and is rendered here, just
before the send (times in the configured ``timezone``), with :func:`reports.messages.make_message`; the rendered subject
and bodies are stored with the outcome. A message that cannot be rendered is
failed with the render error as ``last_error`` (and raises ``delivery.failed``):
the alert it is about was committed long before. A ``delivery.failed`` message
whose own template fails is sent as :data:`PLAIN_DELIVERY_FAILED`, a built-in text
that cannot fail, so the fallback always hears of it. Report rows are enqueued
rendered and sent as they are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from string import Template
from typing import Any, Callable

from sqlalchemy import Engine, func, or_, select, update

from reports.alert_csv import group_attachments
from reports.channels import ChannelError, open_channel
from reports.messages import Message, make_message
from worker import clock, redact
from worker.alerts.enqueue import target_scope
from worker.alerts.state import raise_alert
from worker.models import Notification
from worker.sql import skip_locked
from worker.text import shown as shown_text
from worker.settings.routing import DeliverySettings

logger = logging.getLogger(__name__)

RESEND_IN_DOUBT = frozenset({"email", "webhook", "file"})  # channels whose far end knows a copy

# A delivery.failed message whose template failed: plain, and it cannot fail ($-fields missing stay as they are).
PLAIN_DELIVERY_FAILED_SUBJECT = Template("[tokentally] delivery failed: $target")
PLAIN_DELIVERY_FAILED = Template("""\
A message could not be delivered, and the template of this alert could not be rendered either.

Notification $notification_id ($notification_kind: $notification_subject) to $target could not be delivered:
$error

-- 
tokentally
""")


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
        try:
            message = render(row, settings.timezone)
        except Exception as exc:  # a broken template or context: the message fails, the alert stands
            if row.kind != "delivery.failed":
                _fail(engine, settings, row, f"could not render the message: {exc}")
                stats.failed += 1
                continue
            logger.exception("delivery.failed template failed; sending the plain text",
                             extra={"action": "render_failed", "notification": row.id})
            message = plain_delivery_failed(row)
        shown = _shown(row, message)
        try:
            external_id = open_channel(section).send(row.target, message)
        except Exception as exc:  # a ChannelError, or a bug in a channel: either way one attempt used
            if not isinstance(exc, ChannelError):
                logger.exception("channel crashed", extra={"action": "delivery_crashed", "notification": row.id,
                                                           "channel": row.channel})
                exc = ChannelError(f"{row.channel} channel crashed: {type(exc).__name__}: {exc}")
            error = redact.scrub(str(exc), row.target)
            attempts = row.attempts + 1
            if exc.permanent or attempts >= delivery.max_attempts:
                why = "permanent" if exc.permanent else f"gave up after {attempts} attempts"
                _fail(engine, settings, row, f"{error} ({why})", shown)
                stats.failed += 1
            else:
                wait = max(backoff(attempts, delivery), timedelta(seconds=exc.retry_after or 0))
                _retry_later(engine, row, error, wait, shown)
                stats.retrying += 1
            continue
        with engine.begin() as conn:
            conn.execute(update(Notification).where(Notification.id == row.id).values(
                **shown, status="sent", sent_at=clock.now(), external_id=None if external_id is None else str(external_id)[:300],
                last_error=None))
        stats.sent += 1
        logger.info("notification sent", extra={"action": "notification_sent", "notification": row.id,
                                                "channel": row.channel, "kind": row.kind})
    return stats


def render(row: Any, timezone: str) -> Message:
    """The row's message: rendered from its template and facts, or as it was enqueued (a report).
    Times in it are shown in ``timezone`` (the settings' zone at send time), with its name."""
    if row.template is None:
        return Message(kind=row.kind, key=row.key, subject=row.subject, text=row.body_text, html=row.body_html,
                       slack=row.slack, data=row.data or {}, inline=row.inline or {})
    facts = dict(row.context or {})
    message = make_message(row.template, {**_revived(facts), "channel": row.channel, "target": redact.target(row.target),
                                                 "timezone": timezone},
                           kind=row.kind, key=row.key, data=facts)
    files = group_attachments(facts)  # a grouped alert's CSV of every alert in it
    return replace(message, attachments=files) if files else message


def plain_delivery_failed(row: Any) -> Message:
    """The built-in text of a delivery.failed message (when its template cannot be rendered)."""
    alert = (row.context or {}).get("alert") or {}
    facts = {"target": alert.get("scope_id", ""), **{k: str(v) for k, v in (alert.get("payload") or {}).items()}}
    return Message(kind=row.kind, key=row.key, subject=shown_text(PLAIN_DELIVERY_FAILED_SUBJECT.safe_substitute(facts)),
                   text=PLAIN_DELIVERY_FAILED.safe_substitute(facts), data=dict(row.context or {}))


def _revived(facts: dict[str, Any]) -> dict[str, Any]:
    """The alert's times back as aware datetimes (the context column holds ISO text)."""
    alert = facts.get("alert")
    if isinstance(alert, dict):
        alert = {**alert, **{k: datetime.fromisoformat(alert[k]) for k in ("first_seen", "last_seen")
                             if isinstance(alert.get(k), str)}}
        return {**facts, "alert": alert}
    return facts


def _shown(row: Any, message: Message) -> dict[str, Any]:
    """What a rendered row stores of its message (nothing for a row enqueued rendered)."""
    if row.template is None:
        return {}
    return {"subject": message.subject[:500], "body_text": message.text, "body_html": message.html,
            "slack": message.slack}


def _release(engine: Engine, row: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(Notification).where(Notification.id == row.id).values(
            status="pending", attempts=row.attempts, claimed_at=None))


def _retry_later(engine: Engine, row: Any, error: str, wait: timedelta, shown: dict[str, Any]) -> None:
    when: datetime = clock.now() + wait
    with engine.begin() as conn:
        conn.execute(update(Notification).where(Notification.id == row.id).values(
            **shown, status="pending", next_attempt_at=when, last_error=error))
    logger.warning("notification will be retried", extra={"action": "delivery_retry", "notification": row.id,
                                                          "channel": row.channel, "error": error,
                                                          "next_attempt_at": when.isoformat()})


def _fail(engine: Engine, settings: Any, row: Any, error: str, shown: dict[str, Any] | None = None) -> None:
    shown = shown or {}
    with engine.begin() as conn:
        conn.execute(update(Notification).where(Notification.id == row.id).values(
            **shown, status="failed", last_error=error))
    logger.error("notification failed", extra={"action": "delivery_failed", "notification": row.id,
                                               "channel": row.channel, "error": error})
    if row.kind == "delivery.failed":
        return  # a failed fallback does not raise another (no loops); the log line above stays
    try:  # after the row is recorded failed: a failure to alert must not put it back in play
        with engine.begin() as conn:
            raise_alert(conn, settings, kind="delivery.failed", scope="channel",
                        scope_id=target_scope(row.channel, row.target),
                        period=clock.now().astimezone(settings.tz).date().isoformat(), severity="warning",
                        payload={"notification_id": row.id, "notification_kind": row.kind,
                                 "notification_subject": shown.get("subject", row.subject), "error": error})
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
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Notification).where(
            Notification.status == "pending", Notification.next_attempt_at <= clock.now())).scalar_one()
