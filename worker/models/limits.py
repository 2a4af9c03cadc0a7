"""Rate-limit and budget windows per account, and system-wide state (the kill switch)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, Id, Json, Money, UTCDateTime

WINDOW_KINDS = ("minute", "hour", "day", "month")


class WindowUsage:
    """What a window (an account's or a scope's) has counted: the ledger's figures (``ledger_*``,
    refreshed by the limits job), the calls the gate recorded live (``live_*``) and the larger of
    the two, which counts against the limits (``used_*``)."""

    ledger_requests: Mapped[int] = mapped_column(BigInteger, default=0)
    ledger_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    ledger_cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    live_requests: Mapped[int] = mapped_column(BigInteger, default=0)
    live_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    live_cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    used_requests: Mapped[int] = mapped_column(BigInteger, default=0)
    used_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    used_cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))


class LimitWindow(WindowUsage, Base):
    """One account's usage in one window (minute, hour, local day, local month).

    ``used_*`` is what counts against the limits: the larger of what the ledger holds
    for the window (``ledger_*``, refreshed by the limits job) and what apps recorded
    at call time through ``worker.gate.record`` (``live_*``), so calls recorded live
    are not counted twice once their events are ingested. A window is current while
    ``closed_at`` is NULL; the limits job closes it at ``reset_at`` (a conditional
    update) and the next window starts at zero. Limits are copied from the account's
    tier; NULL means that measure is not limited (never 0).

    Windows exist only for accounts with usage in them (or calls recorded at the gate):
    a window that is not there is empty, and the gate reads it as such. ``revision``
    goes up with every change of its usage or limits; the budgets job judges the
    windows whose ``evaluated_revision`` is behind (a partial index finds them) and
    catches up with a conditional write, so a change made while it judged is judged
    next time.
    """

    __tablename__ = "limit_windows"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # minute | hour | day | month
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    reset_at: Mapped[datetime] = mapped_column(UTCDateTime)
    period: Mapped[str] = mapped_column(String(20))  # local label: 2026-11-23, 2026-11, 2026-11-23T14, ...
    tier: Mapped[str | None] = mapped_column(String(100))  # None: no tier, nothing limited
    action: Mapped[str | None] = mapped_column(String(10))  # the tier's warn | block | alert
    limit_requests: Mapped[int | None] = mapped_column(BigInteger)
    limit_tokens: Mapped[int | None] = mapped_column(BigInteger)
    limit_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    state: Mapped[str] = mapped_column(String(10), default="ok")  # ok | warned | blocked
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_level: Mapped[float | None] = mapped_column(Float)  # the highest warning level raised
    projected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when a projected overrun was raised
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer, default=1)  # +1 on every change of usage or limits
    evaluated_revision: Mapped[int] = mapped_column(Integer, default=0)  # the revision the budgets job judged

    __table_args__ = (UniqueConstraint("account_id", "kind", "window_start"),
                      Index(None, "kind", "closed_at"), Index(None, "reset_at"),
                      Index("ix_limit_windows_open_reset_at", "reset_at",
                            postgresql_where=text("closed_at IS NULL"), sqlite_where=text("closed_at IS NULL")),
                      Index("ix_limit_windows_unevaluated", "kind",
                            postgresql_where=text("revision <> evaluated_revision"),
                            sqlite_where=text("revision <> evaluated_revision")))


class SystemState(Base):
    """Named system-wide switches, e.g. ``kill_switch``: on until an operator clears it."""

    __tablename__ = "system_state"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    period: Mapped[str | None] = mapped_column(String(40))  # the local day it was set or cleared for
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str] = mapped_column(String(200))  # budgets | operator:<name>
    data: Mapped[dict[str, Any]] = mapped_column(Json)


class BudgetPendingDay(Base):
    """A local day whose window had closed when ingest brought usage for it: the budgets job
    evaluates that day's (and, once it has ended, its month's) windows and removes the row.
    Written in the ingest batch's transaction; kept apart from ``summary_dirty_days``,
    which the summaries job clears on its own schedule."""

    __tablename__ = "budget_pending_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LimitDirtyAccount(Base):
    """An account that got new usage on a local day, since the limits were last refreshed.

    Written by ingest in the batch's transaction (as ``summary_dirty_days``); the limits
    job takes the marks of the days up to today with one ``DELETE … RETURNING`` (a mark
    taken by one replica is not there for the other) and refreshes only those accounts'
    windows. A mark for a future day stays until that day begins."""

    __tablename__ = "limit_dirty_accounts"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "day"),)
