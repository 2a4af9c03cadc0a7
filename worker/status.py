"""What an operator looks at first: database, data freshness per source, open counts, last runs.

Each source's row counts the events without an account in the last :data:`UNATTRIBUTED_DAYS`
local days (today included), so unattributed usage is visible however small its share.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select

from worker.limits import killswitch, windows as limits
from worker import clock, db
from worker.models import (Alert, CallAttempt, DirtyDay, IngestFile, IngestReject, JobRun, Notification, SourceStatus, SummaryCorrection,
                     UsageEvent)
from worker.registry import registry
from worker.settings import Settings


UNATTRIBUTED_DAYS = 7  # local days, today included, whose unattributed events each source's row counts


def last_runs(conn: Any) -> dict[str, JobRun]:
    latest = (select(JobRun.job, func.max(JobRun.id).label("id")).group_by(JobRun.job)).subquery()
    rows = conn.execute(select(JobRun).join(latest, JobRun.id == latest.c.id)).all()
    return {r.job: r for r in rows}


def status(settings: Settings, engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        freshness = {r.source: r for r in conn.execute(select(SourceStatus))}
        file_warnings: dict[str, list[str]] = {}  # files read only in part, as their checkpoint says
        for row in conn.execute(select(IngestFile.source, IngestFile.path, IngestFile.warning)
                                .where(IngestFile.warning.is_not(None)).order_by(IngestFile.id)):
            file_warnings.setdefault(row.source, []).append(f"{row.path}: {row.warning}")
        since = unattributed_since(settings)
        unattributed = dict(conn.execute(
            select(UsageEvent.source, func.count()).where(UsageEvent.unattributed.is_(True),
                                                          UsageEvent.occurred_at >= since)
            .group_by(UsageEvent.source)).all())
        silent = set(conn.execute(select(Alert.scope_id).where(Alert.kind == "source.silent",
                                                               Alert.state != "resolved")).scalars())
        sources = []
        for src in settings.sources:
            row = freshness.pop(src.name, None)
            sources.append(_source_row(src.name, src.kind, src.enabled, row, src.name in silent,
                                       unattributed.pop(src.name, 0)))
        for name in sorted(set(freshness) | set(unattributed)):  # cli ingests, retired sources
            sources.append(_source_row(name, None, None, freshness.get(name), name in silent,
                                       unattributed.get(name, 0)))
        for row in sources:
            if row["source"] in file_warnings:
                row["warnings"] = file_warnings[row["source"]]
        runs = last_runs(conn)
        jobs = [_job_row(job_id, runs.get(job_id)) for job_id in registry.ids()]
        counts = {
            "events": conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one(),
            "open_rejects": conn.execute(select(func.count()).select_from(IngestReject)
                                         .where(IngestReject.status == "open")).scalar_one(),
            "unattributed_events": sum(s["unattributed"] for s in sources),
            "unpriced_events": conn.execute(select(func.count()).select_from(UsageEvent)
                                            .where(UsageEvent.cost_usd.is_(None))).scalar_one(),
            "days_awaiting_summary": conn.execute(select(func.count()).select_from(DirtyDay)).scalar_one(),
            "summary_corrections": conn.execute(select(func.count()).select_from(SummaryCorrection)).scalar_one(),
            "open_alerts": conn.execute(select(func.count()).select_from(Alert)
                                        .where(Alert.state == "open")).scalar_one(),
            "pending_notifications": conn.execute(select(func.count()).select_from(Notification)
                                                  .where(Notification.status.in_(("pending", "sending")))).scalar_one(),
            "failed_notifications": conn.execute(select(func.count()).select_from(Notification)
                                                 .where(Notification.status == "failed")).scalar_one(),
            "blocked_accounts": len(limits.blocked_accounts(conn, clock.now())),
            "unlogged_calls": conn.execute(select(func.count()).select_from(CallAttempt)
                                           .where(CallAttempt.state == "unlogged")).scalar_one(),
            "open_integrity_alerts": conn.execute(select(func.count()).select_from(Alert).where(
                or_(Alert.kind.like("integrity.%"), Alert.kind == "source.silent"),
                Alert.state != "resolved")).scalar_one(),
        }
        switch = killswitch.kill_switch(conn)
    return {"database": db.display_url(settings.database_url), "schema_revision": db.current_revision(engine),
            "timezone": settings.timezone, "unattributed_since": since.isoformat(),
            "kill_switch": {"active": True, "reason": switch.reason, "since": _iso(switch.changed_at),
                            "by": switch.changed_by} if switch else {"active": False},
            "counts": counts, "sources": sources, "jobs": jobs}


def unattributed_since(settings: Settings) -> datetime:
    """The start (aware) of the first local day whose unattributed events ``status`` counts."""
    today = clock.now().astimezone(settings.tz).date()
    return datetime.combine(today - timedelta(days=UNATTRIBUTED_DAYS - 1), time(), tzinfo=settings.tz)


def _source_row(name: str, kind: str | None, enabled: bool | None, row: Any, silent: bool,
                unattributed: int) -> dict[str, Any]:
    return {"source": name, "kind": kind, "enabled": enabled, "silent": silent,
            "last_ingest_at": _iso(row.last_ingest_at) if row else None,
            "newest_event_at": _iso(row.newest_event_at) if row else None,
            "events": row.events if row else 0, "unattributed": unattributed}


def _job_row(job_id: str, run: JobRun | None) -> dict[str, Any]:
    """The job's last run; a failed one with the first line of its error (an unreadable directory...)."""
    row: dict[str, Any] = {"job": job_id, "last_status": run.status if run else None,
                           "last_started_at": _iso(run.started_at) if run else None,
                           "last_trigger": run.trigger if run else None}
    if run is not None and run.status == "failed" and run.error:
        lines = run.error.strip().splitlines()
        row["last_error"] = (lines[-1] if lines[0].startswith("Traceback") else lines[0])[:300]
    return row


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
