"""Jobs for the console: each job's schedule, next and last run, and the run history.

A run started from the console is an ordinary manual run (``worker.scheduler.run_job``,
recorded in ``job_runs``), run after the response so the page does not wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from worker import clock
from worker.models import JobRun
from worker.registry import registry
from worker.scheduler import next_run, schedule_for
from worker.settings import Settings, SettingsError
from worker.status import last_runs

from web.views.paging import Page, fetch


@dataclass
class JobRow:
    job: str
    description: str
    schedule: str
    next_run: Any
    last: Any  # the last JobRun, or None
    dated: bool  # takes --date / --from/--to


def job_rows(conn: Connection, settings: Settings) -> list[JobRow]:
    runs = last_runs(conn)
    now = clock.now()
    rows = []
    for spec in registry.all():
        try:
            expr, upcoming = next_run(spec, settings, now)
        except SettingsError:  # validated at start; shown as it is if not
            expr, upcoming = schedule_for(spec, settings), None
        rows.append(JobRow(spec.id, spec.description, expr, upcoming, runs.get(spec.id), "dates" in spec.options))
    return rows


def history(conn: Connection, job: str | None, page: int, size: int) -> Page[dict[str, Any]]:
    query = select(JobRun).order_by(JobRun.id.desc())
    if job:
        query = query.where(JobRun.job == job)
    found = fetch(conn, query, page, size)
    found.rows = [{"id": r.id, "job": r.job, "trigger": r.trigger, "scheduled_for": r.scheduled_for,
                   "started_at": r.started_at, "finished_at": r.finished_at, "status": r.status,
                   "seconds": (r.finished_at - r.started_at).total_seconds() if r.finished_at else None,
                   "stats": scalar_stats(r.stats), "error": error_line(r.error)} for r in found.rows]
    return found


def scalar_stats(stats: dict[str, Any] | None, limit: int = 8) -> list[tuple[str, Any]]:
    """A run's stats that are one value each (counts, flags), at most ``limit`` of them."""
    return [(k, v) for k, v in (stats or {}).items() if v is None or isinstance(v, (int, float, str, bool))][:limit]


def error_line(error: str | None) -> str | None:
    """A failed run's error in one line: a traceback's last line, else the first."""
    if not error or not error.strip():
        return None
    lines = error.strip().splitlines()
    return (lines[-1] if lines[0].startswith("Traceback") else lines[0])[:300]


def known_job(job_id: str) -> bool:
    return job_id in {spec.id for spec in registry.all()}
