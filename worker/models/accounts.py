"""Accounts and the tier each belongs to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, UTCDateTime


class Account(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(200))
    tier: Mapped[str | None] = mapped_column(String(100))  # None: the default tier
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
