"""The figure "a database outage under load": a real daemon, records arriving all along, its database cut.

    .venv/bin/python -m tests.outage_figure [--outage 60] [--rate 500] [--ingest-every 10s]

A scratch database is created on the PostgreSQL server (TOKENTALLY_TEST_PG's, default
127.0.0.1:5432) and migrated; the daemon (``python -m cli run``, a subprocess) reaches it
only through a loopback TCP proxy (``tests.tcp_proxy``) that this script cuts for
``--outage`` seconds: the daemon's connections are closed and new ones refused, as by a
stopped server, while the server itself (shared) is never touched. A writer thread appends
``--rate`` JSONL records a second to the daemon's inbox the whole time. Printed: records
written, in the ledger, lost and doubled; seconds from the cut to the unreachable alert
(the file channel's message), from the restore to caught up (every record written before
the restore in the ledger) and to the resolved message; by default the cut comes while an ingest
run is in hand (``--anytime``: right after the warm-up); the job_runs rows of the outage;
the outages row. The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.tcp_proxy import TcpProxy
from worker import db
from worker.models import JobRun, Outage, UsageEvent

ADMIN = os.environ.get("TOKENTALLY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


class Writer(threading.Thread):
    """Appends ``rate`` records a second to a new inbox file every 10,000 records."""

    def __init__(self, inbox: Path, rate: int):
        super().__init__(daemon=True)
        self.inbox, self.rate, self.written, self.stop = inbox, rate, 0, threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - start) * self.rate) - self.written
            if due > 0:
                lines = []
                for i in range(self.written, self.written + due):
                    lines.append(json.dumps({"request_id": f"out-{i}", "timestamp": datetime.now(UTC).isoformat(),
                                             "model": "gpt-4o-mini", "provider": "openai", "user_id": f"u{i % 97}",
                                             "prompt_tokens": 100 + i % 50, "completion_tokens": 20}) + "\n")
                path = self.inbox / f"usage-{self.written // 10_000:04d}.jsonl"
                with path.open("a", encoding="utf-8") as out:
                    out.write("".join(lines))
                with self.lock:
                    self.written += due
            time.sleep(0.05)


def ledger(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one()
        distinct = conn.execute(select(func.count(UsageEvent.event_id.distinct()))).scalar_one()
    return rows, distinct


def first_file(folder: Path, pattern: str, deadline: float) -> float | None:
    while time.monotonic() < deadline:
        if found := sorted(folder.glob(pattern)):
            return found[0].stat().st_mtime
        time.sleep(0.2)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=60, help="seconds the database is away")
    parser.add_argument("--rate", type=int, default=500, help="records written a second")
    parser.add_argument("--warmup", type=float, default=20, help="seconds before the cut")
    parser.add_argument("--ingest-every", default="10s", help="the ingest schedule's interval")
    parser.add_argument("--health-check", default="30s", help="daemon.health_check")
    parser.add_argument("--anytime", action="store_true", help="cut at once after the warm-up, not during an ingest run")
    args = parser.parse_args()

    name = f"tokentally_outage_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_url(ADMIN)
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    direct_url = db.normalise_url(admin.set(database=name).render_as_string(hide_password=False))
    proxy = TcpProxy((admin.host or "127.0.0.1", admin.port or 5432))
    daemon_url = make_url(direct_url).set(port=proxy.port).render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix="tokentally-outage-"))
    inbox, outbox = work / "inbox", work / "outbox"
    inbox.mkdir()
    (work / "settings.toml").write_text(f"""
[logging]
format = "json"
[daemon]
health_check = "{args.health_check}"
state_file = "{work / 'daemon-state.json'}"
[channels.file]
dir = "{outbox}"
[schedule]
ingest = "every {args.ingest_every}"
[[sources]]
name = "inbox"
kind = "jsonl"
path = "{inbox}/*.jsonl"
""", encoding="utf-8")
    db.migrate(direct_url)
    engine = db.make_engine(direct_url)
    env = {**os.environ, "TOKENTALLY_CONFIG": str(work / "settings.toml"), "TOKENTALLY_DATABASE_URL": daemon_url}
    log = (work / "daemon.log").open("w")
    daemon = subprocess.Popen([sys.executable, "-m", "cli", "run"], env=env, cwd=work, stdout=log, stderr=log,
                              start_new_session=True)
    writer = Writer(inbox, args.rate)
    try:
        writer.start()
        time.sleep(args.warmup)
        if not args.anytime:  # cut while an ingest run is in hand: its connection dies under it
            deadline = time.monotonic() + 120
            with engine.connect() as conn:
                while time.monotonic() < deadline and not conn.execute(select(JobRun.id).where(
                        JobRun.job == "ingest", JobRun.status == "running")).first():
                    conn.rollback()
                    time.sleep(0.01)
        cut_wall, cut = time.time(), time.monotonic()
        proxy.cut()
        alert_at = first_file(outbox, "database-unreachable-*[0-9].eml", cut + args.outage)
        time.sleep(max(0.0, cut + args.outage - time.monotonic()))
        with writer.lock:
            before_restore = writer.written
        restore_wall, restored = time.time(), time.monotonic()
        proxy.restore()
        caught_up = None
        while time.monotonic() < restored + 300:
            if ledger(engine)[1] >= before_restore:
                caught_up = time.monotonic() - restored
                break
            time.sleep(0.25)
        resolved_at = first_file(outbox, "database-unreachable-*-resolved.eml", restored + 120)
        time.sleep(5)
        writer.stop.set()
        writer.join()
        final = writer.written
        deadline = time.monotonic() + 120
        while ledger(engine)[1] < final and time.monotonic() < deadline:
            time.sleep(0.5)
        rows, distinct = ledger(engine)
        cut_at = datetime.fromtimestamp(cut_wall, UTC)
        with engine.connect() as conn:
            runs = conn.execute(select(JobRun).where((JobRun.started_at >= cut_at) | (JobRun.finished_at >= cut_at)
                                                     | (JobRun.status != "success")).order_by(JobRun.id)).all()
            outages = conn.execute(select(Outage)).all()
            reported_dupes = sum((stats or {}).get("duplicates", 0) or 0 for stats in conn.execute(
                select(JobRun.stats).where(JobRun.job == "ingest")).scalars())
    finally:
        writer.stop.set()
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
        proxy.close()
        engine.dispose()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(f"outage {args.outage:.0f} s, {args.rate} records/s, ingest every {args.ingest_every}, "
          f"health check every {args.health_check}; load average {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"records written {final}, in the ledger {distinct} (rows {rows}): lost {final - distinct}, "
          f"doubled {rows - distinct}; lines ingest counted as duplicates (re-read, not doubled) {reported_dupes}")
    print(f"cut -> unreachable alert: {alert_at - cut_wall:.1f} s" if alert_at else "unreachable alert: NONE")
    print(f"restore -> caught up: {caught_up:.1f} s" if caught_up is not None else "caught up: NOT within 300 s")
    print(f"restore -> resolved alert: {resolved_at - restore_wall:.1f} s" if resolved_at else "resolved alert: NONE")
    print("job_runs started or finished from the cut on:", dict(Counter((r.job, r.status, r.trigger) for r in runs)))
    for r in runs:
        if r.status != "success" or r.trigger == "takeover":
            before = (r.stats or {}).get("took_over") or {}
            said = r.error or (f"was {before['status']}: {before.get('error')}" if before else "")
            print(f"  {r.job} {r.scheduled_for:%H:%M:%S} {r.status} {r.trigger}: "
                  f"{(said.strip().splitlines() or [''])[0][:110]}")
    for o in outages:
        print(f"outages row: {o.started_at:%H:%M:%S} -> {o.ended_at:%H:%M:%S} "
              f"({(o.ended_at - o.started_at).total_seconds():.0f} s), alerted {o.alerted_at and f'{o.alerted_at:%H:%M:%S}'}, "
              f"skipped runs {o.skipped_runs}")
    print(f"daemon log: {work / 'daemon.log'}")
    return 0 if final == distinct and rows == distinct else 1


if __name__ == "__main__":
    sys.exit(main())
