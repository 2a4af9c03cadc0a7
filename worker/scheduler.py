"""The APScheduler daemon that fires the jobs, each run recorded by ``worker.runs``.

Every run is a ``job_runs`` row. A scheduled run is claimed by inserting the
``(job, scheduled_for)`` row; a replica that loses the race sees the unique key
and skips, so each scheduled run happens once however many daemons run.

The daemon's health thread (``worker.health``) checks the database and writes the
daemon's heartbeat. While the database is unreachable a tick is not tried: it is kept as
a ``skipped`` record, written when the database is back. After each heartbeat the daemon
marks the runs of daemons that went away ``interrupted`` (``worker.heartbeat``) and takes
over such a tick, or a skipped one, when it is still the job's latest: a daemon killed
in the middle of the 09:00 report, or the database gone at 09:00, does not lose that
report.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_SCHEDULER_STARTED, JobSubmissionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from worker import clock
from worker.health import Alarm, HealthMonitor
from worker.heartbeat import interrupt_orphans, new_daemon_id
from worker.models import Daemon as DaemonRow, JobRun
from worker.sql import is_unreachable
from worker.registry import JobSpec, registry
from worker.runs import (TAKEABLE, UNREACHABLE, DatabaseUnreachable, RunNotRecorded, run_job, skipped,
                         write_pending)
from worker.settings import Settings, SettingsError, parse_duration

__all__ = ["Daemon", "run_job", "make_trigger", "schedule_for", "validate_schedule", "latest_fire_time",
           "previous_fire_time", "LocalCronTrigger", "MISFIRE_GRACE"]

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MISFIRE_GRACE = timedelta(minutes=10)
CATCH_UP_WINDOW = timedelta(days=32)  # a monthly job missed while down still runs once
PROBE_WAIT = 15  # seconds a stopping daemon waits for a health check in hand
BUSY = "the previous run was still in hand"  # why APScheduler skipped a tick (max_instances=1)
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

    def __init__(self, settings: Settings, engine: Engine, alarm: Alarm | None = None):
        self.settings = settings
        self.engine = engine
        self.id = new_daemon_id()
        self.stop = threading.Event()
        self.scheduler = _Scheduler(timezone=UTC)
        self.health = HealthMonitor(settings, engine, self.id, alarm, on_up=self._after_heartbeat)
        self._triggers: dict[str, BaseTrigger] = {}
        self._signals = itertools.count()  # how many stop signals came before this one
        self._stopper: threading.Thread | None = None  # scheduler.shutdown(wait=True), once a stop was asked
        # a stop asked before the loop ran (the process that started it was still starting) ends it at once
        self.scheduler.add_listener(self._started, EVENT_SCHEDULER_STARTED)
        self._first_beat = threading.Lock()  # jobs fired at once: one health check before their claims

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
        self.scheduler.add_listener(self._tick_while_busy, EVENT_JOB_MAX_INSTANCES)
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
                if fire is not None and not conn.execute(  # a tick skipped or interrupted was never done
                        select(JobRun.id).where(JobRun.job == job_id, JobRun.scheduled_for == fire,
                                                JobRun.status.not_in(TAKEABLE))).first():
                    missed.append((job_id, fire))
        return missed

    def _run_missed(self, job_id: str, fire: datetime) -> None:
        self._run(registry.get(job_id), "catch-up", fire)

    def _run(self, spec: JobSpec, trigger: str, scheduled_for: datetime | None) -> JobRun | None:
        """One run of ``spec`` owned by this daemon; None when it did not run here (claimed elsewhere,
        or the database is unreachable: then the tick is kept to be recorded as skipped)."""
        if not self.health.beaten or self.health.down:
            # the heartbeat first (so other daemons know the owner of this run); while the database is
            # away, each tick tries it once more, so its return is noticed at the next tick
            with self._first_beat:
                if not self.health.beaten or self.health.down:
                    self.health.check()
        if self.health.down:
            self.health.keep(skipped(spec.id, scheduled_for, trigger, self.id, UNREACHABLE))
            return None
        try:
            return run_job(spec, self.settings, self.engine, trigger=trigger, scheduled_for=scheduled_for,
                           stop=self.stop, owner=self.id)
        except DatabaseUnreachable as exc:
            logger.error("run could not start", extra={"action": "job_skipped", "job": spec.id, "error": str(exc)})
            self.health.keep(skipped(spec.id, scheduled_for, trigger, self.id, UNREACHABLE))
        except RunNotRecorded as exc:
            logger.error("run end not recorded yet", extra={"action": "job_end_kept", "job": spec.id,
                                                            "error": str(exc)})
            self.health.keep(exc.record)
        self.health.poke()
        return None

    def _fire(self, job_id: str) -> None:
        if self.stop.is_set():
            return
        spec = registry.get(job_id)
        scheduled_for = latest_fire_time(self._triggers[job_id], clock.now(), MISFIRE_GRACE)
        if self._run(spec, "schedule", scheduled_for) is None:
            # another replica has this run, and runs what follows it (or the database is away); a
            # shared job's work is divided (ingest's leases on files), so this replica helps with it
            if spec.shared and not self.stop.is_set() and self._held_elsewhere(spec.id, scheduled_for):
                self._run(spec, "shared", None)
            return
        for follower in registry.followers(job_id):
            if self.stop.is_set():
                break
            if self.schedule_of(follower.id) is None:
                continue
            # claimed like a scheduled run of the same time: once across replicas
            if self._run(follower, f"after:{job_id}", scheduled_for) is None and self.health.down:
                break

    def _held_elsewhere(self, job_id: str, scheduled_for: datetime) -> bool:
        """Whether another live daemon holds this tick's claim: not when the database could not be
        reached, and not when its holder's heartbeat is gone (then the tick is taken over instead)."""
        if self.health.down:
            return False
        alive_since = clock.now() - self.settings.daemon.heartbeat_timeout
        try:
            with self.engine.connect() as conn:
                holder = conn.execute(
                    select(JobRun.owner).join(DaemonRow, DaemonRow.id == JobRun.owner)
                    .where(JobRun.job == job_id, JobRun.scheduled_for == scheduled_for, JobRun.owner != self.id,
                           DaemonRow.stopped_at.is_(None), DaemonRow.last_seen >= alive_since)).first()
        except DBAPIError as exc:
            if not is_unreachable(exc):
                raise
            return False
        return holder is not None

    def _tick_while_busy(self, event: JobSubmissionEvent) -> None:
        """APScheduler skipped a tick because the job's previous run is still in hand: a skipped row,
        so every tick has one (the run in hand reads what that tick would have)."""
        trig = self._triggers.get(event.job_id)
        if trig is None or self.stop.is_set():
            return
        for when in event.scheduled_run_times:
            fire = latest_fire_time(trig, when.astimezone(UTC), MISFIRE_GRACE)
            record = skipped(event.job_id, fire, "schedule", self.id, BUSY)
            try:
                write_pending(self.engine, self.settings, record)
            except DBAPIError as exc:
                if not is_unreachable(exc):
                    raise
                self.health.keep(record)

    def _after_heartbeat(self, written: list[dict[str, Any]]) -> None:
        """After a heartbeat: the runs of daemons gone are interrupted; a tick left undone (interrupted, or
        skipped while the database was away) that is still its job's latest is run again now."""
        with self.engine.begin() as conn:
            undone = interrupt_orphans(conn, clock.now(), self.settings.daemon.heartbeat_timeout)
        for job_id, scheduled_for in undone:
            logger.warning("run interrupted: its daemon went away", extra={
                "action": "job_interrupted", "job": job_id, "scheduled_for": str(scheduled_for)})
        undone += [(r["job"], datetime.fromisoformat(r["scheduled_for"])) for r in written
                   if r["kind"] == "skipped" and r["scheduled_for"]]
        for job_id, fire in dict.fromkeys(undone):
            trig = self._triggers.get(job_id)
            if trig is None or fire is None or self.stop.is_set():
                continue
            if previous_fire_time(trig, clock.now(), CATCH_UP_WINDOW) == fire:
                self.scheduler.add_job(self._run_missed, "date", run_date=clock.now(), args=[job_id, fire],
                                       id=f"takeover:{job_id}", replace_existing=True, misfire_grace_time=None)

    def wait_for_database(self) -> bool:
        """Health checks until the database answers (announcing an outage meanwhile); False if stopped first."""
        self.install_signals()
        while not self.health.check():
            if self.stop.wait(self.settings.daemon.health_check.total_seconds()):
                return False
        return True

    def schedule_of(self, job_id: str) -> BaseTrigger | None:
        """The job's trigger; None when its schedule is "off" (then it does not follow other jobs either)."""
        return self._triggers.get(job_id)

    def _signal(self, signum: int, _frame: Any) -> None:
        """The first SIGTERM or SIGINT asks for a stop after the work in hand. A SIGINT after that (a
        second Ctrl-C) exits at once. A repeated SIGTERM is the same request: a stop sent to the whole
        process group reaches the worker twice (``timeout`` and systemd signal the group, and make
        passes its own SIGTERM on to its children). Past the stop request, SIGKILL exits at once."""
        # A second signal can arrive while this handler runs (Python runs handlers between bytecodes,
        # in this same thread): next() on the counter is one C call, so exactly one handler sees 0.
        if next(self._signals) or self.stop.is_set():
            if signum == signal.SIGINT:
                logger.warning("second signal: exiting now", extra={"action": "daemon_abort"})
                os._exit(1)
            logger.info("already stopping after the work in hand", extra={
                "action": "daemon_stop_repeated", "signal": signal.Signals(signum).name})
            return
        self.stop.set()
        logger.info("stopping after the work in hand", extra={"action": "daemon_stopping",
                                                               "signal": signal.Signals(signum).name})
        # Not running yet: still waiting for the database (wait_for_database sees the stop), or the
        # loop is about to start (_started ends it).
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
        self.health.check()  # the heartbeat before the first run, and any outage carried over recorded
        health = threading.Thread(target=self.health.run, args=(self.stop,), name="health", daemon=True)
        logger.info("daemon started", extra={"action": "daemon_started", "jobs": ",".join(jobs), "daemon": self.id})
        health.start()
        self.scheduler.start()
        if self._stopper is not None:
            # The loop ends before the jobs in hand do: wait for them here, with the handler above still
            # installed (a second Ctrl-C meanwhile exits at once, not through Python's shutdown).
            self._stopper.join()
        self.health.poke()
        health.join(timeout=PROBE_WAIT)
        self.health.close()
        logger.info("daemon stopped", extra={"action": "daemon_stopped"})
