"""What an operator looks at first: database, data freshness per source, open counts, last runs, outages.

A job's last run is its latest tick (by start time): a run skipped while the database was
away, written afterwards, is the last run if no later one started, whatever its id. Each
job also shows its last successful run, so a failed, skipped or interrupted last run is
never read as "the last ingest succeeded". The last :data:`OUTAGES` outages of the
database (written by the daemons once it was back) are listed with their length and the
runs they skipped.

Each source's row counts the events without an account in the last :data:`UNATTRIBUTED_DAYS`
local days (today included), so unattributed usage is visible however small its share.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select

from worker.ingest import listing
from worker.limits import killswitch, windows as limits
from worker import clock, db
from worker.models import (Alert, CallAttempt, DirtyDay, IngestFile, IngestReject, JobRun, Notification, Outage,
                           SourceStatus, SummaryCorrection, UsageEvent)
from worker.registry import registry
from worker.settings import Settings
from worker.settings.warnings import settings_warnings


UNATTRIBUTED_DAYS = 7  # local days, today included, whose unattributed events each source's row counts
OUTAGES = 5  # the latest database outages shown


def last_runs(conn: Any, status: str | None = None) -> dict[str, JobRun]:
    """Each job's latest run by start time (``status``: its latest run in that state)."""
    newest = select(JobRun.job, func.max(JobRun.started_at).label("started_at")).group_by(JobRun.job)
    if status is not None:
        newest = newest.where(JobRun.status == status)
    newest = newest.subquery()
    rows = conn.execute(select(JobRun).join(newest, (JobRun.job == newest.c.job)
                                            & (JobRun.started_at == newest.c.started_at))
                        .where(*(() if status is None else (JobRun.status == status,)))
                        .order_by(JobRun.id)).all()
    return {r.job: r for r in rows}  # a tie of start times: the higher id


def outages(conn: Any, limit: int = OUTAGES) -> list[dict[str, Any]]:
    """The latest database outages the daemons recorded, newest first."""
    rows = conn.execute(select(Outage).order_by(Outage.started_at.desc()).limit(limit)).all()
    return [{"started_at": _iso(o.started_at), "ended_at": _iso(o.ended_at),
             "seconds": round((o.ended_at - o.started_at).total_seconds()), "alerted_at": _iso(o.alerted_at),
             "skipped_runs": o.skipped_runs, "daemon": o.daemon, "error": o.error} for o in rows]


def status(settings: Settings, engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        freshness = {r.source: r for r in conn.execute(select(SourceStatus))}
        file_warnings: dict[str, list[str]] = {}  # files read only in part, as their checkpoint says
        for row in conn.execute(select(IngestFile.source, IngestFile.path, IngestFile.warning)
                                .where(IngestFile.warning.is_not(None)).order_by(IngestFile.id)):
            file_warnings.setdefault(row.source, []).append(f"{row.path}: {row.warning}")
        for src in settings.sources:  # links the next poll will not follow, as it would say them
            if src.enabled and src.kind != "table":
                if links := listing.source_files(src.path or "", src.follow_symlinks).warnings:
                    file_warnings.setdefault(src.name, []).extend(links)
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
        runs, successes = last_runs(conn), last_runs(conn, "success")
        jobs = [_job_row(job_id, runs.get(job_id), successes.get(job_id)) for job_id in registry.ids()]
        recent_outages = outages(conn)
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
            "counts": counts, "sources": sources, "jobs": jobs, "outages": recent_outages,
            "warnings": settings_warnings(settings)}


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


def _job_row(job_id: str, run: JobRun | None, success: JobRun | None) -> dict[str, Any]:
    """The job's last run and last success; a run that did not succeed with the first line of its error
    (an unreadable directory, skipped: database unreachable, interrupted: its daemon went away...)."""
    row: dict[str, Any] = {"job": job_id, "last_status": run.status if run else None,
                           "last_started_at": _iso(run.started_at) if run else None,
                           "last_trigger": run.trigger if run else None,
                           "last_success_at": _iso(success.started_at) if success else None}
    if run is not None and run.status != "success" and run.error:
        lines = run.error.strip().splitlines()
        row["last_error"] = (lines[-1] if lines[0].startswith("Traceback") else lines[0])[:300]
    return row


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
