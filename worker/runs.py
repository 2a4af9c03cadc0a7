"""One recorded run: claimed, run, its end written; and the records written after an outage.

Every run is a ``job_runs`` row. A scheduled run is claimed by inserting the
``(job, scheduled_for)`` row; a replica that loses the race sees the unique key and
skips, so each scheduled run happens once however many daemons run. A daemon's run
names it as ``owner``. The row of a tick that never got its work done can be taken
over with a conditional update (checked by row count, so one claimant wins): a run
``interrupted`` or ``skipped``, or one still ``running`` under a daemon whose
heartbeat is gone (``worker.heartbeat``). Its trigger then says ``takeover`` and its stats
keep what the row said before (``took_over``: status, error, owner, start).

When the database cannot be reached the run cannot be recorded as it happens:

- a claim that cannot be written raises :class:`DatabaseUnreachable` (the daemon keeps
  a ``skipped`` record of the tick in memory);
- a run whose end cannot be written raises :class:`RunNotRecorded` carrying that end
  (``failed`` when the job died with its connection).

:func:`write_pending` writes such a record once the database is back, and a failed run's
``job.failed`` alert with it. Records are plain JSON (the daemon keeps them in its state
file across a restart).
"""

from __future__ import annotations

import logging
import threading
import traceback
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from worker import clock
from worker.alerts.enqueue import jsonable
from worker.alerts.state import raise_alert
from worker.db import display_url
from worker.heartbeat import owner_gone
from worker.models import JobRun
from worker.registry import JobContext, JobFailed, JobSpec
from worker.sessions import session_factory
from worker.settings import Settings
from worker.sql import insert_ignore, is_unreachable

logger = logging.getLogger(__name__)

TAKEABLE = ("interrupted", "skipped")  # a tick in one of these states never had its work done
UNREACHABLE = "database unreachable"


class DatabaseUnreachable(Exception):
    """The run could not be claimed: the database is out of reach. Nothing ran."""


class RunNotRecorded(Exception):
    """The run ended but its end could not be written; ``record`` is that end, for later."""

    def __init__(self, message: str, record: dict[str, Any]):
        super().__init__(message)
        self.record = record


def first_line(exc: BaseException, url: str | None = None) -> str:
    """The driver's first line about ``exc``, with the database URL (if it names it) masked."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line.replace(url, display_url(url)) if url else line


def claim(engine: Engine, job_id: str, scheduled_for: datetime | None, trigger: str, started: datetime,
          owner: str | None, timeout: timedelta) -> int | None:
    """The new run's id, or None when the tick is someone else's (done, or in hand under a live daemon)."""
    try:
        with engine.begin() as conn:
            return conn.execute(insert(JobRun).values(job=job_id, scheduled_for=scheduled_for, trigger=trigger,
                                                      started_at=started, status="running", owner=owner)
                                .returning(JobRun.id)).scalar_one()
    except IntegrityError:
        if owner is None or scheduled_for is None:
            return None
    with engine.begin() as conn:
        return take_over(conn, job_id, scheduled_for, started, owner, timeout)


def took_over(engine: Engine, run_id: int) -> dict[str, Any] | None:
    """What a taken-over tick's row said before (kept in the run's stats as ``took_over``)."""
    with engine.connect() as conn:
        stats = conn.execute(select(JobRun.stats).where(JobRun.id == run_id)).scalar()
    return (stats or {}).get("took_over")


def take_over(conn: Connection, job_id: str, scheduled_for: datetime, started: datetime, owner: str,
              timeout: timedelta) -> int | None:
    """Claim a tick whose row is there but whose work was never done; its id, or None."""
    row = conn.execute(select(JobRun).where(JobRun.job == job_id, JobRun.scheduled_for == scheduled_for)).first()
    if row is None:
        return None
    same = (JobRun.id == row.id) & (JobRun.status == row.status) & (JobRun.started_at == row.started_at)
    takeable = JobRun.status.in_(TAKEABLE) | owner_gone(started, timeout)
    before = {"status": row.status, "error": (row.error or "").strip()[:500] or None, "owner": row.owner,
              "started_at": row.started_at.isoformat()}
    if conn.execute(update(JobRun).where(same, takeable).values(
            trigger="takeover", started_at=started, status="running", owner=owner, finished_at=None,
            stats={"took_over": before}, error=None)).rowcount != 1:
        return None
    logger.info("took over a tick", extra={"action": "job_takeover", "job": job_id, "run": row.id,
                                           "was": row.status, "scheduled_for": str(scheduled_for)})
    return row.id


def run_job(spec: JobSpec, settings: Settings, engine: Engine, *, trigger: str = "manual",
            scheduled_for: datetime | None = None, stop: threading.Event | None = None,
            owner: str | None = None, **options: Any) -> JobRun | None:
    """Run one job and record it. Returns None when another replica claimed this scheduled run.

    Raises :class:`DatabaseUnreachable` when the claim could not be written, :class:`RunNotRecorded`
    when the end could not be."""
    sessions = session_factory(engine)
    started = clock.now()
    try:
        run_id = claim(engine, spec.id, scheduled_for, trigger, started, owner, settings.daemon.heartbeat_timeout)
    except DBAPIError as exc:
        if is_unreachable(exc):
            raise DatabaseUnreachable(f"{UNREACHABLE}: {first_line(exc, settings.database_url)}") from exc
        raise
    if run_id is None:
        logger.info("run already claimed", extra={"action": "job_claimed_elsewhere", "job": spec.id,
                                                  "scheduled_for": str(scheduled_for)})
        return None
    ctx = JobContext(settings=settings, engine=engine, sessions=sessions,
                     logger=logging.getLogger(f"jobs.{spec.id}"), trigger=trigger,
                     scheduled_for=scheduled_for, stop=stop or threading.Event(), **options)
    status, stats, error = "success", None, None
    try:
        stats = spec.func(ctx)
    except JobFailed as exc:
        status, stats, error = "failed", exc.stats, str(exc)
        logger.error("job failed", extra={"action": "job_failed", "job": spec.id, "error": error})
    except Exception as exc:  # a failing job is recorded and the daemon goes on
        status, error = "failed", traceback.format_exc()
        if is_unreachable(exc):  # the job died with its connection: say so first
            error = f"{UNREACHABLE} during the run: {first_line(exc, settings.database_url)}\n{error}"
        logger.exception("job crashed", extra={"action": "job_failed", "job": spec.id})
    finished = clock.now()
    end = {"kind": "ended", "run_id": run_id, "job": spec.id, "trigger": trigger, "status": status,
           "stats": jsonable(stats), "error": error, "finished_at": finished.isoformat()}
    try:
        if previous := took_over(engine, run_id):  # the tick's earlier state stays readable
            end["stats"] = {**(end["stats"] or {}), "took_over": previous}
        write_pending(engine, settings, end)
    except DBAPIError as exc:
        if is_unreachable(exc):
            if status == "failed" and not (error or "").startswith(UNREACHABLE):
                end["error"] = f"{UNREACHABLE} when the run ended (its end was written later)\n{error}"
            raise RunNotRecorded(f"run {run_id} of {spec.id} ended {status}; {UNREACHABLE}", end) from exc
        raise
    run = JobRun(id=run_id, job=spec.id, scheduled_for=scheduled_for, trigger=trigger, started_at=started,
                 status=status, stats=stats, error=error, finished_at=finished, owner=owner)
    logger.info("job finished", extra={"action": "job_finished", "job": spec.id, "status": status,
                                       "seconds": round((finished - started).total_seconds(), 3)})
    return run


def skipped(job_id: str, scheduled_for: datetime | None, trigger: str, owner: str, why: str) -> dict[str, Any]:
    """The record of a tick that could not start (written by :func:`write_pending` later)."""
    return {"kind": "skipped", "job": job_id, "scheduled_for": scheduled_for.isoformat() if scheduled_for else None,
            "trigger": trigger, "owner": owner, "at": clock.now().isoformat(), "error": f"skipped: {why}"}


def write_pending(engine: Engine, settings: Settings, record: dict[str, Any]) -> None:
    """Write a run's end, or a skipped tick (kept if a replica recorded that tick itself)."""
    with engine.begin() as conn:
        if record["kind"] == "skipped":
            at = datetime.fromisoformat(record["at"])
            scheduled_for = datetime.fromisoformat(record["scheduled_for"]) if record["scheduled_for"] else None
            conn.execute(insert_ignore(conn.dialect.name, JobRun, ["job", "scheduled_for"]).values(
                job=record["job"], scheduled_for=scheduled_for, trigger=record["trigger"], started_at=at,
                finished_at=at, status="skipped", error=record["error"], owner=record["owner"]))
            return
        # an end written late replaces an "interrupted" another daemon wrote meanwhile: it knows better
        conn.execute(update(JobRun).where(JobRun.id == record["run_id"],
                                          JobRun.status.in_(("running", "interrupted"))).values(
            status=record["status"], stats=record["stats"], error=record["error"],
            finished_at=datetime.fromisoformat(record["finished_at"])))
    if record["status"] == "failed":
        try:  # after the run is recorded: a failure to alert must not lose the record
            with engine.begin() as conn:
                _raise_job_failed(conn, settings, record["job"], record["run_id"], record["trigger"],
                                  record["error"] or "")
        except Exception:
            logger.exception("could not raise job.failed", extra={"action": "alert_failed", "job": record["job"]})


def _raise_job_failed(conn: Any, settings: Settings, job_id: str, run_id: int, trigger: str, error: str) -> None:
    """One ``job.failed`` alert per job and local day; a later failure that day only updates it."""
    lines = error.strip().splitlines()
    raise_alert(conn, settings, kind="job.failed", scope="job", scope_id=job_id,
                period=clock.now().astimezone(settings.tz).date().isoformat(), severity="critical",
                payload={"trigger": trigger, "run_id": run_id, "error_line": lines[-1] if lines else "",
                         "error": error[-4000:]})
