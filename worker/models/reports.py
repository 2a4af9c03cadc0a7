"""The report archive's index: one row per generated report version."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, Id, Json, UTCDateTime


class Report(Base):
    """A report as archived: files under ``path`` (report.html/.csv/.json, chart.png,
    manifest.json). Regenerating a period adds a version; nothing is overwritten."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # daily | weekly | monthly
    period: Mapped[str] = mapped_column(String(20))  # 2026-11-22, 2026-W47, 2026-11
    tenant: Mapped[str] = mapped_column(String(200))  # "" for the whole system
    version: Mapped[int] = mapped_column(Integer)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    path: Mapped[str] = mapped_column(Text)  # the version's directory
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime)  # data up to this moment
    status: Mapped[str] = mapped_column(String(12))  # provisional | final (of the period's days)
    ledger_rows: Mapped[int] = mapped_column(BigInteger)
    totals: Mapped[dict[str, Any]] = mapped_column(Json)
    settings_hash: Mapped[str] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(20))  # schedule | manual | catch-up | cli
    sent: Mapped[int] = mapped_column(Integer, default=0)  # messages enqueued

    __table_args__ = (UniqueConstraint("kind", "period", "tenant", "version"),)
