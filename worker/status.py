"""What an operator looks at first: database, data freshness per source, open counts, last runs, outages.

A job's last run is its latest tick (by start time): a run skipped while the database was
away, written afterwards, is the last run if no later one started, whatever its id. Each
job also shows its last successful run, so a failed, skipped or interrupted last run is
never read as "the last ingest succeeded". The last :data:`OUTAGES` outages of the
database (written by the daemons once it was back) are listed with their length and the
runs they skipped.

Each source's row counts the events without an account in the last :data:`UNATTRIBUTED_DAYS`
local days (today included), so unattributed usage is visible however small its share.

The statements are built on ``worker.tables`` (SQLAlchemy Core), not on the models: ``status``
is the command an operator runs first and often, and the ORM and its registry of every model
were most of its start.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, or_, select

from worker.ingest import listing
from worker.limits.switches import kill_switch
from worker import clock, db
from worker.registry import registry
from worker.settings import Settings
from worker.settings.warnings import settings_warnings
from worker.tables import (alerts, call_attempts, ingest_files, ingest_rejects, job_runs, limit_windows,
                           notifications, outages as outage_rows, source_status, summary_corrections,
                           summary_dirty_days, usage_events)


UNATTRIBUTED_DAYS = 7  # local days, today included, whose unattributed events each source's row counts
OUTAGES = 5  # the latest database outages shown


def last_runs(conn: Any, status: str | None = None) -> dict[str, Any]:
    """Each job's latest run by start time (``status``: its latest run in that state), as a row of
    every ``job_runs`` column."""
    run = job_runs.c
    newest = select(run.job, func.max(run.started_at).label("started_at")).group_by(run.job)
    if status is not None:
        newest = newest.where(run.status == status)
    newest = newest.subquery()
    rows = conn.execute(select(job_runs).join(newest, (run.job == newest.c.job)
                                              & (run.started_at == newest.c.started_at))
                        .where(*(() if status is None else (run.status == status,)))
                        .order_by(run.id)).all()
    return {r.job: r for r in rows}  # a tie of start times: the higher id


def outages(conn: Any, limit: int = OUTAGES) -> list[dict[str, Any]]:
    """The latest database outages the daemons recorded, newest first."""
    rows = conn.execute(select(outage_rows).order_by(outage_rows.c.started_at.desc()).limit(limit)).all()
    return [{"started_at": _iso(o.started_at), "ended_at": _iso(o.ended_at),
             "seconds": round((o.ended_at - o.started_at).total_seconds()), "alerted_at": _iso(o.alerted_at),
             "skipped_runs": o.skipped_runs, "daemon": o.daemon, "error": o.error} for o in rows]


def status(settings: Settings, engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        freshness = {r.source: r for r in conn.execute(select(source_status))}
        file_warnings: dict[str, list[str]] = {}  # files read only in part, as their checkpoint says
        files = ingest_files.c
        for row in conn.execute(select(files.source, files.path, files.warning)
                                .where(files.warning.is_not(None)).order_by(files.id)):
            file_warnings.setdefault(row.source, []).append(f"{row.path}: {row.warning}")
        for src in settings.sources:  # links the next poll will not follow, as it would say them
            if src.enabled and src.kind != "table":
                if links := listing.source_files(src.path or "", src.follow_symlinks).warnings:
                    file_warnings.setdefault(src.name, []).extend(links)
        since = unattributed_since(settings)
        events, alert = usage_events.c, alerts.c
        unattributed = dict(conn.execute(
            select(events.source, func.count()).where(events.unattributed.is_(True), events.occurred_at >= since)
            .group_by(events.source)).all())
        silent = set(conn.execute(select(alert.scope_id).where(alert.kind == "source.silent",
                                                               alert.state != "resolved")).scalars())
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

        def count(rows: Any, *where: Any) -> int:
            return conn.execute(select(func.count()).select_from(rows).where(*where)).scalar_one()

        counts = {
            "events": count(usage_events),
            "open_rejects": count(ingest_rejects, ingest_rejects.c.status == "open"),
            "unattributed_events": sum(s["unattributed"] for s in sources),
            "unpriced_events": count(usage_events, events.cost_usd.is_(None)),
            "days_awaiting_summary": count(summary_dirty_days),
            "summary_corrections": count(summary_corrections),
            "open_alerts": count(alerts, alert.state == "open"),
            "pending_notifications": count(notifications, notifications.c.status.in_(("pending", "sending"))),
            "failed_notifications": count(notifications, notifications.c.status == "failed"),
            "blocked_accounts": len(blocked_accounts(conn, clock.now())),
            "unlogged_calls": count(call_attempts, call_attempts.c.state == "unlogged"),
            "open_integrity_alerts": count(alerts, or_(alert.kind.like("integrity.%"), alert.kind == "source.silent"),
                                           alert.state != "resolved"),
        }
        switch = kill_switch(conn)
    return {"database": db.display_url(settings.database_url), "schema_revision": db.current_revision(engine),
            "timezone": settings.timezone, "unattributed_since": since.isoformat(),
            "kill_switch": {"active": True, "reason": switch.reason, "since": _iso(switch.changed_at),
                            "by": switch.changed_by} if switch else {"active": False},
            "counts": counts, "sources": sources, "jobs": jobs, "outages": recent_outages,
            "warnings": settings_warnings(settings)}


def blocked_accounts(conn: Connection, now: datetime) -> list[str]:
    """The accounts with a window in force that blocks them now."""
    window = limit_windows.c
    rows = conn.execute(select(window.account_id).distinct().where(
        window.state == "blocked", window.window_start <= now, window.reset_at > now,  # in force at ``now``
        or_(window.blocked_until.is_(None), window.blocked_until > now)))
    return sorted(r[0] for r in rows)


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


def _job_row(job_id: str, run: Any, success: Any) -> dict[str, Any]:
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
