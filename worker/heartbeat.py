"""Daemons and their heartbeat: which daemon runs a job run, and whether it is still there.

Each daemon has a ``daemons`` row and refreshes its ``last_seen`` at every health check
(:func:`beat`, a write through a fresh connection: the heartbeat is also the proof that the
database takes writes). A daemon is *gone* once it has not been seen for
``daemon.heartbeat_timeout``, or said it stopped (:func:`stopped`). A run that is still
``running`` under a gone daemon (and itself older than the timeout: a daemon's first
heartbeat may still be on its way) will never finish: :func:`interrupt_orphans`, called by
every daemon after its heartbeat, marks it ``interrupted`` with a conditional update (of two
daemons, one changes each row), and its scheduled tick can then be taken over
(``worker.runs``). A manual run from the CLI has no owner and is never interrupted here.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, exists, select, update

from worker.models import Daemon, JobRun
from worker.sql import insert_ignore


def new_daemon_id() -> str:
    """Unique per process start: host, pid and a random part (a pid comes back after a restart)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def beat(conn: Connection, daemon_id: str, now: datetime) -> None:
    """Refresh the daemon's heartbeat (its row is made at the first beat)."""
    if conn.execute(update(Daemon).where(Daemon.id == daemon_id).values(last_seen=now, stopped_at=None)).rowcount:
        return
    conn.execute(insert_ignore(conn.dialect.name, Daemon, ["id"]).values(  # two first beats at once: one row
        id=daemon_id, host=socket.gethostname()[:255], pid=os.getpid(), started_at=now, last_seen=now))


def stopped(conn: Connection, daemon_id: str, now: datetime) -> None:
    """A clean stop: the daemon's runs have ended, and it is gone at once (no waiting for the timeout)."""
    conn.execute(update(Daemon).where(Daemon.id == daemon_id).values(last_seen=now, stopped_at=now))


def alive(now: datetime, timeout: timedelta) -> Any:
    """A condition on ``JobRun.owner``: its daemon has been seen within ``timeout`` and did not stop."""
    return exists().where(Daemon.id == JobRun.owner, Daemon.last_seen >= now - timeout, Daemon.stopped_at.is_(None))


def owner_gone(now: datetime, timeout: timedelta) -> Any:
    """A condition on a job run: running under a daemon that is gone. A run younger than ``timeout``
    never is (its daemon may not have written its first heartbeat yet)."""
    return ((JobRun.status == "running") & JobRun.owner.is_not(None) & (JobRun.started_at < now - timeout)
            & ~alive(now, timeout))


def interrupt_orphans(conn: Connection, now: datetime, timeout: timedelta) -> list[tuple[str, datetime | None]]:
    """Mark the running runs of gone daemons ``interrupted``; returns their (job, scheduled_for)."""
    orphans = conn.execute(select(JobRun.id, JobRun.job, JobRun.scheduled_for, JobRun.owner)
                           .where(owner_gone(now, timeout))).all()
    done = []
    for run in orphans:
        last_seen = conn.execute(select(Daemon.last_seen).where(Daemon.id == run.owner)).scalar()
        why = (f"interrupted: daemon {run.owner} went away (last heartbeat "
               f"{last_seen.isoformat() if last_seen else 'never'}) while this run was in hand")
        if conn.execute(update(JobRun).where(JobRun.id == run.id, JobRun.status == "running",
                                             JobRun.owner == run.owner)
                        .values(status="interrupted", finished_at=now, error=why)).rowcount == 1:
            done.append((run.job, run.scheduled_for))
    return done
