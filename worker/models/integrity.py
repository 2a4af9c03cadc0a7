"""Integrity: call attempts (what apps meant to call) and reconciliations with the providers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, Id, Json, Money, UTCDateTime

ATTEMPT_STATES = ("open", "matched", "unlogged")


class CallAttempt(Base):
    """An app said it was about to call an LLM. Its usage event (``event_id = attempt_id``)
    should follow; one that does not within ``integrity.attempt_grace`` is an unlogged call."""

    __tablename__ = "call_attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(String(200), unique=True)  # = the usage event's event_id
    source: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    account_id: Mapped[str] = mapped_column(String(200))
    tenant_id: Mapped[str | None] = mapped_column(String(200))
    service: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(200))
    estimated_tokens: Mapped[int | None] = mapped_column(BigInteger)  # total, as the app estimated it
    state: Mapped[str] = mapped_column(String(12))  # open | matched | unlogged
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # declared unlogged
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # its usage event was found
    actual_tokens: Mapped[int | None] = mapped_column(BigInteger)  # the event's total_tokens
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", Json)

    __table_args__ = (Index(None, "state", "started_at"),)


class Reconciliation(Base):
    """One provider, UTC day and model: the provider's own figures beside the ledger's.

    ``model`` is the comparison key (date suffixes dropped, see ``worker.reconcile.model_key``);
    ``"(day)"`` holds the day's total cost where the provider reports costs per day only.
    Re-running a day replaces its rows."""

    __tablename__ = "reconciliations"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date)
    model: Mapped[str] = mapped_column(String(200))
    provider_requests: Mapped[int | None] = mapped_column(BigInteger)
    provider_input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    provider_output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    provider_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    ledger_requests: Mapped[int] = mapped_column(BigInteger)
    ledger_input_tokens: Mapped[int] = mapped_column(BigInteger)
    ledger_output_tokens: Mapped[int] = mapped_column(BigInteger)
    ledger_cost_usd: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(12))  # ok | unlogged | overcount | mixed
    detail: Mapped[dict[str, Any]] = mapped_column(Json)  # differences per measure, model names on each side
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("provider", "day", "model"), Index(None, "day"))
