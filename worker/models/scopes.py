"""Budgets on scopes (tenant, member, service, model, project, key): the budgets the CLI stores,
the scopes' windows, and the scopes ingest marked as having new usage."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, Float, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, Id, Json, Money, UTCDateTime
from worker.models.limits import WindowUsage

SCOPE_WINDOW_KINDS = ("day", "week", "month", "every")


class StoredScopeBudget(Base):
    """A budget set by ``tokentally budgets set``: it wins over a ``[budgets."<scope>"]`` table for
    the same scope. Every change also changes the ``scope_budgets`` row of ``system_state`` (a new
    revision token), which is how a gate in another process learns to reload its budgets."""

    __tablename__ = "scope_budgets"

    scope: Mapped[str] = mapped_column(String(400), primary_key=True)
    action: Mapped[str] = mapped_column(String(10))  # warn | block | alert
    daily_tokens: Mapped[int | None] = mapped_column(BigInteger)
    daily_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    weekly_tokens: Mapped[int | None] = mapped_column(BigInteger)
    weekly_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    monthly_tokens: Mapped[int | None] = mapped_column(BigInteger)
    monthly_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    every_days: Mapped[int | None] = mapped_column(Integer)
    start: Mapped[date | None] = mapped_column(Date)
    tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    warn_at: Mapped[list[Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(200))


class ScopeWindow(WindowUsage, Base):
    """One scope's usage in one window: a local day, ISO week, month, or its rolling ``every`` window.

    As ``LimitWindow``: ``used_*`` is the larger of the ledger's count (refreshed by the limits
    job for the scopes ingest marked) and the calls recorded live at the gate; a window is
    matched by time and by its start (a budget whose ``every``/``start`` changed has a new
    window: nothing of the old one carries over); limits are copied from the budget and
    follow a change at once; ``revision`` ahead of ``evaluated_revision`` is what the budgets
    job judges. A window that is not stored is empty."""

    __tablename__ = "scope_windows"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(400))
    kind: Mapped[str] = mapped_column(String(10))  # day | week | month | every
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    reset_at: Mapped[datetime] = mapped_column(UTCDateTime)
    period: Mapped[str] = mapped_column(String(40))  # 2026-11-23 | 2026-W48 | 2026-11 | 2026-11-02+7d
    action: Mapped[str | None] = mapped_column(String(10))
    limit_tokens: Mapped[int | None] = mapped_column(BigInteger)
    limit_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    state: Mapped[str] = mapped_column(String(10), default="ok")  # ok | warned | blocked
    warned_level: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    evaluated_revision: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("scope", "kind", "window_start"), Index(None, "reset_at"),
                      Index("ix_scope_windows_unevaluated", "kind",
                            postgresql_where=text("revision <> evaluated_revision"),
                            sqlite_where=text("revision <> evaluated_revision")))


class LimitDirtyScope(Base):
    """A scope (``tenant:…``, ``service:…``, ``model:…``, ``project:…``, ``key:…``) that got new usage
    on a local day: written by ingest in the batch's transaction, taken by the limits job with
    one ``DELETE … RETURNING`` (as ``LimitDirtyAccount``). Member budgets follow their tenant's mark."""

    __tablename__ = "limit_dirty_scopes"

    scope: Mapped[str] = mapped_column(String(400), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "day"),)
