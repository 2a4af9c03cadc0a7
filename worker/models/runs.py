"""Every job run, scheduled or manual; the daemons that own runs (their heartbeat); database outages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, Id, Json, UTCDateTime

RUN_STATES = ("running", "success", "failed", "interrupted", "skipped")


class JobRun(Base):
    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100))
    # The fire time a scheduled run belongs to; unique per job so replicas claim it once.
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual | catch-up | takeover | after:<job>
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # running | success | failed | interrupted (its daemon went away) | skipped (could not start)
    status: Mapped[str] = mapped_column(String(12))
    stats: Mapped[dict[str, Any] | None] = mapped_column(Json)
    error: Mapped[str | None] = mapped_column(Text)
    # The daemon (daemons.id) running it; None for a manual run from the CLI.
    owner: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("job", "scheduled_for"), Index(None, "job", "started_at"),
                      Index(None, "status"))


class Daemon(Base):
    """One row per daemon process: ``last_seen`` is its heartbeat, ``stopped_at`` set on a clean stop."""

    __tablename__ = "daemons"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Outage(Base):
    """A time a daemon could not reach the database, written once it could again."""

    __tablename__ = "outages"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    daemon: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the first check or claim that failed
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # system.database_unreachable sent
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the first check that got through again
    skipped_runs: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)  # the first error, password masked
    alerts: Mapped[dict[str, Any] | None] = mapped_column(Json)  # target -> how its messages went

    __table_args__ = (UniqueConstraint("daemon", "started_at"), Index(None, "ended_at"))
