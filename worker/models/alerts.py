"""Alerts (one row per condition and period) and the notification outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, Id, Json, UTCDateTime
from worker.settings.routing import SEVERITIES  # noqa: F401 (an alert's severity is one of them)


class Alert(Base):
    """One condition in one period: raising it again updates it, it never duplicates.

    ``key`` is ``kind|scope|scope_id|period``, e.g. ``budget.account|account|u42|2026-11-23``.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(60))  # budget.account, job.failed, delivery.failed, ...
    scope: Mapped[str] = mapped_column(String(20))  # account | tenant | source | job | system
    scope_id: Mapped[str] = mapped_column(String(200))  # "" for the system scope
    period: Mapped[str] = mapped_column(String(40))  # the window it belongs to: 2026-11-23, 2026-11, ""
    severity: Mapped[str] = mapped_column(String(12))  # the highest raised in the period
    state: Mapped[str] = mapped_column(String(12))  # open | acknowledged | resolved
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    times_seen: Mapped[int] = mapped_column(Integer)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last message enqueued
    notified_severity: Mapped[str | None] = mapped_column(String(12))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(Json)

    __table_args__ = (Index(None, "state", "kind"),)


class Notification(Base):
    """The outbox: one message to one channel target, enqueued in the transaction that
    produced it and sent by the notify job. ``key`` makes enqueueing idempotent.

    A row with a ``template`` is rendered at send time (``subject`` and the bodies are
    filled in then); until then ``subject`` is the alert's key."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400))  # the message's idempotency key
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    kind: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(20))  # email | slack | webhook | file
    target: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    slack: Mapped[dict[str, Any] | None] = mapped_column(Json)
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    inline: Mapped[dict[str, Any] | None] = mapped_column(Json)  # content-id -> file (email images)
    status: Mapped[str] = mapped_column(String(12))  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    external_id: Mapped[str | None] = mapped_column(String(300))  # Message-ID, Slack ts, path, HTTP status
    last_error: Mapped[str | None] = mapped_column(Text)
    # An alert's message is stored as facts and rendered when it is sent: the template
    # (``alert``: templates/email/alert.*, templates/slack/alert.json.j2) and its context.
    # Both are null for a message enqueued already rendered (a report).
    template: Mapped[str | None] = mapped_column(String(100))
    context: Mapped[dict[str, Any] | None] = mapped_column(Json)

    __table_args__ = (UniqueConstraint("channel", "target", "key"), Index(None, "status", "next_attempt_at"))
