"""Running jobs: one recorded run, and the APScheduler daemon that fires them.

Every run is a ``job_runs`` row. A scheduled run is claimed by inserting the
``(job, scheduled_for)`` row; a replica that loses the race sees the unique key
and skips, so each scheduled run happens once however many daemons run.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import traceback
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from worker import clock
from worker.alerts.state import raise_alert
from worker.db import session_factory
from worker.models import JobRun
from worker.registry import JobContext, JobFailed, JobSpec, registry
from worker.settings import Settings, SettingsError, parse_duration

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MISFIRE_GRACE = timedelta(minutes=10)
CATCH_UP_WINDOW = timedelta(days=32)  # a monthly job missed while down still runs once
_EVERY = re.compile(r"^every\s+(\S+)$")


class LocalCronTrigger(CronTrigger):
    """A cron trigger in a local time zone that, like cron, runs a job with a fixed hour
    once when the clocks go back: 02:30 on the night the hour 02:00-03:00 happens twice
    fires at the first 02:30 only. Jobs with ``*`` (or a step) in the hour field run
    in both hours, which are real, distinct hours."""

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and fire.fold and self._fixed_hour() and _is_repeated(fire):
            fire = _next_after(super().get_next_fire_time, fire)
        return fire

    def _fixed_hour(self) -> bool:
        hour = next(f for f in self.fields if f.name == "hour")
        return not any(str(expr).startswith("*") for expr in hour.expressions)


def _next_after(next_fire_time: Any, fire: datetime) -> datetime | None:
    """The fire time after ``fire``, stepping in UTC: a local time + 1 s can land an hour
    earlier on the night the clocks go back, and the same time would come back again."""
    return next_fire_time(fire, fire.astimezone(UTC) + timedelta(seconds=1))


def _is_repeated(moment: datetime) -> bool:
    """True for the second occurrence of a local wall time repeated when the clocks go back."""
    first = moment.replace(fold=0)
    return first.utcoffset() != moment.utcoffset()


def schedule_for(spec: JobSpec, settings: Settings) -> str:
    return settings.schedule.get(spec.id, spec.schedule)


def make_trigger(expr: str, settings: Settings, key: str) -> BaseTrigger | None:
    """``every 1m`` (aligned to the epoch, so replicas agree on fire times), a
    5-field cron expression in the configured time zone, or ``off``."""
    expr = expr.strip()
    if expr == "off":
        return None
    if match := _EVERY.match(expr):
        interval = parse_duration(match.group(1), key)
        if interval <= timedelta(0):
            raise SettingsError(f"{key}: the interval must be positive")
        return IntervalTrigger(seconds=int(interval.total_seconds()), start_date=EPOCH, timezone=UTC)
    try:
        return LocalCronTrigger.from_crontab(expr, timezone=settings.tz)
    except ValueError as exc:
        raise SettingsError(f"{key}: expected 'every <n>s|m|h|d', a 5-field cron expression or 'off': {exc}") from None


def next_run(spec: JobSpec, settings: Settings, now: datetime) -> tuple[str, datetime | None]:
    """The job's schedule expression and its next fire time after ``now`` (None when ``off``).
    Raises SettingsError for an expression that is not one."""
    expr = schedule_for(spec, settings)
    trigger = make_trigger(expr, settings, f"schedule.{spec.id}")
    return expr, trigger.get_next_fire_time(None, now) if trigger else None


def validate_schedule(settings: Settings) -> None:
    known = {spec.id for spec in registry.all()}
    for name in settings.schedule:
        if name not in known:
            raise SettingsError(f"schedule.{name}: no such job (jobs: {', '.join(sorted(known))})")
    for spec in registry.all():
        make_trigger(schedule_for(spec, settings), settings, f"schedule.{spec.id}")


def previous_fire_time(trigger: BaseTrigger, now: datetime, lookback: timedelta) -> datetime | None:
    """The last fire time in (now - lookback, now], or None."""
    if isinstance(trigger, IntervalTrigger):
        step = trigger.interval.total_seconds()
        return EPOCH + timedelta(seconds=int((now - EPOCH).total_seconds() // step * step))
    found = None
    fire = trigger.get_next_fire_time(None, now - lookback)
    while fire is not None and fire <= now:
        found = fire
        fire = _next_after(trigger.get_next_fire_time, fire)
    return None if found is None else found.astimezone(UTC)


def latest_fire_time(trigger: BaseTrigger, now: datetime, lookback: timedelta) -> datetime:
    """The scheduled time of the run in hand: the last fire time at or before ``now``."""
    found = previous_fire_time(trigger, now, lookback)
    return found if found is not None else now.replace(second=0, microsecond=0).astimezone(UTC)


def run_job(spec: JobSpec, settings: Settings, engine: Engine, *, trigger: str = "manual",
            scheduled_for: datetime | None = None, stop: threading.Event | None = None,
            **options: Any) -> JobRun | None:
    """Run one job and record it. Returns None when another replica claimed this scheduled run."""
    sessions = session_factory(engine)
    started = clock.now()
    try:
        with sessions.begin() as session:
            run = JobRun(job=spec.id, scheduled_for=scheduled_for, trigger=trigger, started_at=started,
                         status="running")
            session.add(run)
    except IntegrityError:
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
    except Exception:  # a failing job is recorded and the daemon goes on
        status, error = "failed", traceback.format_exc()
        logger.exception("job crashed", extra={"action": "job_failed", "job": spec.id})
    finished = clock.now()
    with sessions.begin() as session:
        session.execute(update(JobRun).where(JobRun.id == run.id)
                        .values(status=status, stats=stats, error=error, finished_at=finished))
    if status == "failed":
        try:  # after the run is recorded: a failure to alert must not lose the record
            with engine.begin() as conn:
                _raise_job_failed(conn, settings, spec.id, run.id, trigger, error or "")
        except Exception:
            logger.exception("could not raise job.failed", extra={"action": "alert_failed", "job": spec.id})
    run.status, run.stats, run.error, run.finished_at = status, stats, error, finished
    logger.info("job finished", extra={"action": "job_finished", "job": spec.id, "status": status,
                                       "seconds": round((finished - started).total_seconds(), 3)})
    return run


def _raise_job_failed(conn: Any, settings: Settings, job_id: str, run_id: int, trigger: str, error: str) -> None:
    """One ``job.failed`` alert per job and local day; a later failure that day only updates it."""
    lines = error.strip().splitlines()
    raise_alert(conn, settings, kind="job.failed", scope="job", scope_id=job_id,
                period=clock.now().astimezone(settings.tz).date().isoformat(), severity="critical",
                payload={"trigger": trigger, "run_id": run_id, "error_line": lines[-1] if lines else "",
                         "error": error[-4000:]})


class _Scheduler(BlockingScheduler):
    """APScheduler's blocking loop, safe to stop from another thread: ``shutdown`` empties the job
    stores while the loop may be handling a due job (a catch-up run, say), and the loop's lookup of
    that job then fails; once stopped that is the end of the loop, not a crash."""

    def _process_jobs(self) -> float | None:
        try:
            return super()._process_jobs()
        except JobLookupError:
            if self.state == STATE_STOPPED:
                return None
            raise


class Daemon:
    """The APScheduler loop; SIGTERM/SIGINT finish the unit in hand and exit, a second SIGINT exits at once."""

    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine
        self.stop = threading.Event()
        self.scheduler = _Scheduler(timezone=UTC)
        self._triggers: dict[str, BaseTrigger] = {}
        self._stopper: threading.Thread | None = None  # scheduler.shutdown(wait=True), once a stop was asked
        # a stop asked before the loop ran (the process that started it was still starting) ends it at once
        self.scheduler.add_listener(self._started, EVENT_SCHEDULER_STARTED)

    def setup(self) -> list[str]:
        validate_schedule(self.settings)
        scheduled = []
        for spec in registry.all():
            trig = make_trigger(schedule_for(spec, self.settings), self.settings, f"schedule.{spec.id}")
            if trig is None:
                continue
            self._triggers[spec.id] = trig
            extra = {"next_run_time": clock.now()} if spec.id == "ingest" else {}  # ingest at once on start
            self.scheduler.add_job(self._fire, trig, args=[spec.id], id=spec.id, name=spec.description,
                                   coalesce=True, max_instances=1,
                                   misfire_grace_time=int(MISFIRE_GRACE.total_seconds()), **extra)
            scheduled.append(spec.id)
        return scheduled

    def catch_up(self) -> list[tuple[str, datetime]]:
        """Cron jobs whose last fire time passed while no daemon ran: (job, fire time) to run once."""
        missed = []
        now = clock.now()
        with self.engine.connect() as conn:
            for job_id, trig in self._triggers.items():
                if not isinstance(trig, CronTrigger):
                    continue  # interval jobs simply run at their next tick
                fire = previous_fire_time(trig, now, CATCH_UP_WINDOW)
                if fire is not None and not conn.execute(
                        select(JobRun.id).where(JobRun.job == job_id, JobRun.scheduled_for == fire)).first():
                    missed.append((job_id, fire))
        return missed

    def _run_missed(self, job_id: str, fire: datetime) -> None:
        run_job(registry.get(job_id), self.settings, self.engine, trigger="catch-up", scheduled_for=fire,
                stop=self.stop)

    def _fire(self, job_id: str) -> None:
        if self.stop.is_set():
            return
        spec = registry.get(job_id)
        scheduled_for = latest_fire_time(self._triggers[job_id], clock.now(), MISFIRE_GRACE)
        if run_job(spec, self.settings, self.engine, trigger="schedule", scheduled_for=scheduled_for,
                   stop=self.stop) is None:
            return  # another replica has this run, and runs what follows it
        for follower in registry.followers(job_id):
            if self.stop.is_set():
                break
            if self.schedule_of(follower.id) is None:
                continue
            # claimed like a scheduled run of the same time: once across replicas
            run_job(follower, self.settings, self.engine, trigger=f"after:{job_id}", scheduled_for=scheduled_for,
                    stop=self.stop)

    def schedule_of(self, job_id: str) -> BaseTrigger | None:
        """The job's trigger; None when its schedule is "off" (then it does not follow other jobs either)."""
        return self._triggers.get(job_id)

    def _signal(self, signum: int, _frame: Any) -> None:
        """The first SIGTERM or SIGINT asks for a stop after the work in hand. A SIGINT after that (a
        second Ctrl-C) exits at once. A repeated SIGTERM is the same request: a stop sent to the whole
        process group reaches the worker twice (``timeout`` and systemd signal the group, and make
        passes its own SIGTERM on to its children). Past the stop request, SIGKILL exits at once."""
        if self.stop.is_set():
            if signum == signal.SIGINT:
                logger.warning("second signal: exiting now", extra={"action": "daemon_abort"})
                os._exit(1)
            logger.info("already stopping after the work in hand", extra={
                "action": "daemon_stop_repeated", "signal": signal.Signals(signum).name})
            return
        logger.info("stopping after the work in hand", extra={"action": "daemon_stopping",
                                                               "signal": signal.Signals(signum).name})
        self.stop.set()
        if self.scheduler.running:
            self._shut_down()

    def install_signals(self) -> None:
        """SIGTERM and SIGINT stop the daemon from now on (also before :meth:`run` starts its loop)."""
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)

    def _started(self, _event: Any) -> None:
        if self.stop.is_set() and self._stopper is None:
            self._shut_down()

    def _shut_down(self) -> None:
        self._stopper = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True)
        self._stopper.start()

    def run(self) -> None:
        jobs = self.setup()
        for job_id, fire in self.catch_up():
            logger.info("catching up a missed run", extra={"action": "job_catch_up", "job": job_id,
                                                           "scheduled_for": fire.isoformat()})
            self.scheduler.add_job(self._run_missed, "date", run_date=clock.now(), args=[job_id, fire],
                                   id=f"catch-up:{job_id}", misfire_grace_time=None)
        self.install_signals()
        logger.info("daemon started", extra={"action": "daemon_started", "jobs": ",".join(jobs)})
        self.scheduler.start()
        if self._stopper is not None:
            # The loop ends before the jobs in hand do: wait for them here, with the handler above still
            # installed (a second Ctrl-C meanwhile exits at once, not through Python's shutdown).
            self._stopper.join()
        logger.info("daemon stopped", extra={"action": "daemon_stopped"})
