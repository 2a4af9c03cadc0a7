"""The daemon's database health check: an outage noticed, announced, and recorded once it is over.

Every ``daemon.health_check`` (at most a minute) the daemon writes its heartbeat through a
fresh connection (``worker.heartbeat.beat``; no pool, so a connection still open to a
SQLite file that was moved away hides nothing). When that fails because the database is
out of reach (``worker.sql.is_unreachable``) an *outage* begins:

- the alarm (``reports.direct``: ``system.database_unreachable`` straight through the
  routes' channels, not the outbox, which lives in the database) is called at each check
  until every target has its message, each target once per outage;
- the runs that could not start and the ends of runs that could not be written are kept
  as records (``worker.runs``) in memory;
- the outage and the records are also kept in ``daemon.state_file`` (JSON, written to a
  temporary name and renamed), so a daemon restarted before the database is back neither
  announces the same outage twice nor forgets what it has to record.

At the first check that gets through again the records are written (skipped ticks as
``skipped: database unreachable``, failed runs with their ``job.failed``), the outage gets
its ``outages`` row, the alarm sends ``resolved`` to each target that heard of it, and the
state file is removed once nothing is left to do. A failed claim or run end pokes the
check (:meth:`HealthMonitor.poke`), so a busy daemon notices at once.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Protocol

import orjson
from sqlalchemy import Engine

from worker import clock
from worker.db import probe_engine
from worker.heartbeat import beat, stopped
from worker.models import Outage
from worker.runs import first_line, write_pending
from worker.settings import Settings
from worker.sql import insert_ignore, is_unreachable
from worker.statefile import read_state

logger = logging.getLogger(__name__)


class Alarm(Protocol):
    def __call__(self, outage: dict[str, Any], reason: str) -> bool:
        """Send what is due about ``outage`` (reason ``unreachable`` or ``resolved``), recording each
        target's outcome in ``outage["alerts"]``; True once nothing is left to send for ``reason``."""
        ...


class HealthMonitor:
    def __init__(self, settings: Settings, engine: Engine, daemon_id: str, alarm: Alarm | None = None,
                 on_up: Callable[[list[dict[str, Any]]], None] | None = None):
        self.settings = settings
        self.engine = engine
        self.daemon_id = daemon_id
        self.alarm = alarm
        self.on_up = on_up
        self.probe = probe_engine(settings.database_url)
        self.path = Path(settings.daemon.state_file)
        self.outage: dict[str, Any] | None = None
        self.pending: list[dict[str, Any]] = []
        self.beaten = False  # a heartbeat was written: this daemon's runs are known to be its own
        self._first_failure: datetime | None = None
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._load()

    @property
    def down(self) -> bool:
        return self.outage is not None and self.outage["ended_at"] is None

    def keep(self, record: dict[str, Any]) -> None:
        """A run record that could not be written now: written at the first check that gets through."""
        with self._lock:
            self.pending.append(record)
            self._first_failure = self._first_failure or clock.now()
            if self.outage is not None and record["kind"] == "skipped":
                self.outage["skipped"] += 1
            self._save()

    def poke(self) -> None:
        """Check now rather than at the next interval."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """The check loop (the daemon's health thread) until ``stop``."""
        while not stop.is_set():
            try:
                self.check()
            except Exception:  # a bug in a check must not end the checks
                logger.exception("health check crashed", extra={"action": "health_check_crashed"})
            self._wake.wait(self.settings.daemon.health_check.total_seconds())
            self._wake.clear()

    def check(self) -> bool:
        """One health check; True when the database took the heartbeat."""
        now = clock.now()
        try:
            with self.probe.begin() as conn:
                beat(conn, self.daemon_id, now)
        except Exception as exc:
            if not is_unreachable(exc):
                logger.exception("health check failed", extra={"action": "health_check_failed"})
                return True  # the database answered (with an error): not an outage
            self._unreachable(now, exc)
            return False
        self.beaten = True
        self._reachable(now)
        return True

    def close(self) -> None:
        """A clean stop: say so in the daemon's row (its runs are not orphans), keep what is left."""
        try:
            with self.probe.begin() as conn:
                stopped(conn, self.daemon_id, clock.now())
        except Exception as exc:
            logger.warning("could not record the stop", extra={"action": "daemon_stop_unrecorded",
                                                               "error": first_line(exc, self.settings.database_url)})
        with self._lock:
            self._save()
        self.probe.dispose()

    # ------------------------------------------------------------------ the two outcomes

    def _unreachable(self, now: datetime, exc: BaseException) -> None:
        with self._lock:
            if self.outage is None:
                started = min(self._first_failure or now, now)
                self.outage = {"daemon": self.daemon_id, "started_at": started.isoformat(),
                               "detected_at": now.isoformat(), "alerted_at": None, "ended_at": None,
                               "error": first_line(exc, self.settings.database_url), "alerts": {},
                               "skipped": sum(r["kind"] == "skipped" for r in self.pending)}
                logger.error("database unreachable", extra={"action": "database_unreachable",
                                                            "error": self.outage["error"]})
            elif self.outage["ended_at"] is not None:  # gone again before its end was announced: the same outage
                self.outage["ended_at"] = None
            if self._call_alarm("unreachable") and self.outage["alerted_at"] is None:
                self.outage["alerted_at"] = now.isoformat()
            self._save()

    def _reachable(self, now: datetime) -> None:
        with self._lock:
            self._first_failure = None
            outage = self.outage
            if outage is not None and outage["ended_at"] is None:
                outage["ended_at"] = now.isoformat()
                logger.info("database reachable again", extra={"action": "database_reachable",
                                                               "since": outage["started_at"]})
            written = self._write_pending()
            if written is None:
                return  # gone again meanwhile: the next check tries again
            if outage is not None and self._call_alarm("resolved"):
                if self._record(outage):
                    self.outage = None
            self._save()
        if self.on_up is not None:
            try:
                self.on_up(written)
            except Exception:  # the database went again, or a bug: the next check tries again
                logger.exception("after the heartbeat", extra={"action": "after_heartbeat_failed"})

    def _write_pending(self) -> list[dict[str, Any]] | None:
        written = []
        while self.pending:
            record = self.pending[0]
            try:
                write_pending(self.engine, self.settings, record)
            except Exception as exc:
                if is_unreachable(exc):
                    return None
                logger.exception("could not write a run record; dropped", extra={"action": "run_record_failed",
                                                                                "record": str(record)[:300]})
            self.pending.pop(0)
            written.append(record)
        return written

    def _record(self, outage: dict[str, Any]) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert_ignore(conn.dialect.name, Outage, ["daemon", "started_at"]).values(
                    daemon=outage["daemon"], started_at=datetime.fromisoformat(outage["started_at"]),
                    alerted_at=datetime.fromisoformat(outage["alerted_at"]) if outage["alerted_at"] else None,
                    ended_at=datetime.fromisoformat(outage["ended_at"]), skipped_runs=outage["skipped"],
                    error=outage["error"][:2000], alerts=outage["alerts"]))
        except Exception:
            logger.exception("could not record the outage", extra={"action": "outage_unrecorded"})
            return False
        return True

    def _call_alarm(self, reason: str) -> bool:
        if self.alarm is None or self.outage is None:
            return True
        try:
            return self.alarm(self.outage, reason)
        except Exception:  # a bug in sending must not stop the checks; tried again at the next one
            logger.exception("could not send the outage alert", extra={"action": "outage_alert_crashed"})
            return False

    # ------------------------------------------------------------------ the state file

    def _save(self) -> None:
        try:
            if self.outage is None and not self.pending:
                self.path.unlink(missing_ok=True)
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_bytes(orjson.dumps({"outage": self.outage, "pending": self.pending}, default=str))
            os.replace(tmp, self.path)
        except OSError as exc:  # memory still holds it all
            logger.error("could not write the daemon state file", extra={"action": "state_file_failed",
                                                                          "path": str(self.path), "error": str(exc)})

    def _load(self) -> None:
        if not self.path.exists():
            return
        state = read_state(self.path)
        if state is None:
            logger.error("daemon state file unreadable; ignored", extra={"action": "state_file_unreadable",
                                                                          "path": str(self.path)})
            return
        self.outage, self.pending = state.get("outage"), list(state.get("pending") or [])
        logger.info("an outage carried over from the last run", extra={
            "action": "state_file_loaded", "outage_since": (self.outage or {}).get("started_at"),
            "records": len(self.pending)})
