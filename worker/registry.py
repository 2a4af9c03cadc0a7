"""The job registry: one decorator, one unique id per job.

A job is one function in ``jobs/<name>.py``::

    @job("ingest", schedule="every 1m", description="Ingest new records from every source")
    def ingest(ctx: JobContext) -> dict: ...

Registering an id twice raises at import (procrastinate's PeriodicRegistry). A job in the
``jobs`` package has the id of its module (``jobs/<id>.py``), so :meth:`Registry.ids` lists
every job from the package scan without importing any job (``status`` needs only the ids,
not the areas the jobs import); everything else imports them all on first use.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import Engine

from worker import clock
from worker.settings import Settings

if TYPE_CHECKING:  # only named in JobContext's annotations: the ORM stays unimported for `status`
    from sqlalchemy.orm import Session, sessionmaker

JobFunc = Callable[["JobContext"], dict[str, Any]]


JOB_OPTIONS = frozenset({"dates", "dry_run", "resend"})
JOBS_PACKAGE = "jobs"


class DuplicateJobError(Exception):
    pass


class JobFailed(Exception):
    """Raised by a job that did part of its work: the run is failed, its stats are kept."""

    def __init__(self, message: str, stats: dict[str, Any]):
        super().__init__(message)
        self.stats = stats


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: JobFunc
    schedule: str  # default; settings [schedule] overrides
    description: str
    after: tuple[str, ...] = ()  # the daemon also runs this job right after each run of these
    options: frozenset[str] = frozenset({"dry_run"})  # what a manual run may ask: "dates", "dry_run", "resend"
    # A shared job's work is divided among replicas by its area (ingest: leases on files): a
    # replica that loses a tick's claim runs it too, as a run of its own (trigger "shared").
    shared: bool = False


@dataclass
class JobContext:
    """What a job receives: settings, database, the clock, a logger, and what to do."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    logger: logging.Logger
    trigger: str = "manual"  # schedule | manual | catch-up
    scheduled_for: datetime | None = None
    date_from: date | None = None
    date_to: date | None = None
    dry_run: bool = False
    resend: bool = False  # a report job: send a period's report again though it was sent
    stop: threading.Event = field(default_factory=threading.Event)

    def now(self) -> datetime:
        return clock.now()

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def days(self) -> tuple[date, date] | None:
        """The dates an operator asked for (--date, or --from/--to), else None."""
        if self.date_from is None:
            return None
        return self.date_from, self.date_to or self.date_from


class Registry:
    def __init__(self) -> None:
        self._jobs: dict[str, JobSpec] = {}

    def register(self, job_id: str, *, schedule: str, description: str, after: tuple[str, ...] = (),
                 options: tuple[str, ...] = ("dry_run",), shared: bool = False) -> Callable[[JobFunc], JobFunc]:
        """``options``: what the job does with a manual run's choices: ``"dates"`` (--date or
        --from/--to), ``"dry_run"`` and ``"resend"`` (the report jobs); the CLI refuses the others rather than ignore them."""
        if unknown := set(options) - JOB_OPTIONS:
            raise ValueError(f"job {job_id!r}: unknown options {sorted(unknown)} (known: {sorted(JOB_OPTIONS)})")

        def decorator(func: JobFunc) -> JobFunc:
            module = func.__module__
            if module.startswith(f"{JOBS_PACKAGE}.") and module != f"{JOBS_PACKAGE}.{job_id}":
                raise ValueError(f"job {job_id!r} is registered in {module}: a job lives in "
                                 f"{JOBS_PACKAGE}/{job_id}.py (its id is its module's name)")
            if job_id in self._jobs:
                raise DuplicateJobError(
                    f"job id {job_id!r} registered twice ({self._jobs[job_id].func.__module__} "
                    f"and {func.__module__})")
            self._jobs[job_id] = JobSpec(job_id, func, schedule, description, tuple(after), frozenset(options),
                                         shared)
            return func

        return decorator

    def get(self, job_id: str) -> JobSpec:
        load_jobs()
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"no job named {job_id!r} (jobs: {', '.join(sorted(self._jobs))})") from None

    def followers(self, job_id: str) -> list[JobSpec]:
        """The jobs that run right after ``job_id`` (``after=``)."""
        return [spec for spec in self.all() if job_id in spec.after]

    def all(self) -> list[JobSpec]:
        load_jobs()
        return [self._jobs[k] for k in sorted(self._jobs)]

    def ids(self) -> list[str]:
        """Every job id, sorted, without importing the jobs (their modules' names)."""
        return sorted(set(self._jobs) | set(job_modules()))


registry = Registry()
job = registry.register

_loaded = False


def job_modules() -> list[str]:
    """The modules of the ``jobs`` package by name, found by package scan and not imported."""
    import jobs  # the named upward import (ARCHITECTURE.md): the registry discovers jobs/

    return [info.name for info in pkgutil.iter_modules(jobs.__path__)]


def load_jobs() -> None:
    """Import every module in the ``jobs`` package so their decorators run."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in job_modules():
        importlib.import_module(f"{JOBS_PACKAGE}.{name}")
