"""Daily and monthly summaries, the days waiting to be recomputed, and corrections."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, Id, Json, Money, UTCDateTime


class _Totals:
    """The measures every summary row carries."""

    requests: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    timeouts: Mapped[int] = mapped_column(BigInteger)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_tokens: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal] = mapped_column(Money)  # of the priced/reported requests
    unpriced_requests: Mapped[int] = mapped_column(BigInteger)
    latency_count: Mapped[int] = mapped_column(BigInteger)
    latency_sum: Mapped[int] = mapped_column(BigInteger)
    latency_min: Mapped[int | None] = mapped_column(Integer)
    latency_max: Mapped[int | None] = mapped_column(Integer)


class _DimKey:
    """What a summary row is about. Empty tenant/service are stored as '' so the key has no NULLs."""

    tenant_id: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))  # the model that served and was priced (model_used)
    service: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class _Key(_DimKey):
    account_id: Mapped[str] = mapped_column(String(200))


class DailySummary(_Key, _Totals, Base):
    """One local day (configured time zone) x tenant x account x provider x model x service x status."""

    __tablename__ = "daily_summaries"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)

    __table_args__ = (Index(None, "day"),)


class DailyRollup(_DimKey, _Totals, Base):
    """The daily summaries without the account dimension: a few hundred rows a day, so
    totals by day, month, model, provider, service or tenant read fast over any range."""

    __tablename__ = "daily_rollups"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)

    __table_args__ = (Index(None, "day"),)


class MonthlySummary(_Key, _Totals, Base):
    """The daily rows of one local month added up (``month`` is its first day)."""

    __tablename__ = "monthly_summaries"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    month: Mapped[date] = mapped_column(Date)

    __table_args__ = (Index(None, "month"),)


class SummaryDay(Base):
    """A local day whose summary has been computed, and whether it was final then."""

    __tablename__ = "summary_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    final: Mapped[bool] = mapped_column(Boolean)


class DirtyDay(Base):
    """A local day whose summary is out of date. ``generation`` goes up each time it is
    marked, so the summaries job only clears the mark it has actually recomputed."""

    __tablename__ = "summary_dirty_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SummaryCorrection(Base):
    """Late data changed a day that was already final: what changed, before and after."""

    __tablename__ = "summary_corrections"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    before: Mapped[dict[str, Any]] = mapped_column(Json)
    after: Mapped[dict[str, Any]] = mapped_column(Json)
    changed: Mapped[dict[str, Any]] = mapped_column(Json)  # field -> difference

    __table_args__ = (Index(None, "day"),)
