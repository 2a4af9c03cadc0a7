"""A daemon killed (-9) in the middle of a run, then started again: the run is marked interrupted once
the killed daemon's heartbeat is gone, and its tick is taken over, so no tick is lost. Real daemons
(``python -m cli run``) in subprocesses, on both databases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from worker import db
from worker.models import JobRun, UsageEvent

LINES = 40_000


def _start(tmp_path: Path, db_url: str, log: bool = True) -> subprocess.Popen[str]:
    env = {**os.environ, "TOKENTALLY_CONFIG": str(tmp_path / "daemon.toml"), "TOKENTALLY_DATABASE_URL": db_url}
    return subprocess.Popen([sys.executable, "-m", "cli", "run"], env=env, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE if log else subprocess.DEVNULL,
                            text=True)


def _query(db_url: str, query):
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(query).all()
    finally:
        engine.dispose()


def _wait(what, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := what():
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_tick_killed_with_its_daemon_is_taken_over_by_the_restarted_daemon(tmp_path: Path, db_url: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "big.jsonl").write_text("".join(json.dumps({
        "request_id": f"r{i}", "timestamp": "2026-11-22T12:00:00Z", "model": "gpt-4o-mini", "provider": "openai",
        "account_id": f"a{i % 50}", "prompt_tokens": 100, "completion_tokens": 20}) + "\n" for i in range(LINES)))
    # hourly ingest: the killed run's tick is still the latest when the restarted daemon looks at it
    (tmp_path / "daemon.toml").write_text(f"""
[ingest]
batch_size = 500
[daemon]
health_check = "1s"
heartbeat_timeout = "3s"
state_file = "{tmp_path / 'state.json'}"
[schedule]
ingest = "every 1h"
[[sources]]
name = "inbox"
kind = "jsonl"
path = "{inbox}/*.jsonl"
""", encoding="utf-8")
    first = _start(tmp_path, db_url, log=False)
    try:
        _wait(lambda: _query(db_url, select(func.count()).select_from(UsageEvent))[0][0])
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    [(tick, killed_owner, status)] = _query(db_url, select(JobRun.scheduled_for, JobRun.owner, JobRun.status)
                                            .where(JobRun.job == "ingest"))
    assert status == "running" and 0 < _query(db_url, select(func.count()).select_from(UsageEvent))[0][0] < LINES

    second = _start(tmp_path, db_url)
    try:
        # (ingest is a shared job: while the killed daemon's heartbeat is still fresh, the restarted one
        # may ingest beside it as a run of its own; the tick itself is taken over once it is gone)
        done = _wait(lambda: _query(db_url, select(JobRun).where(JobRun.job == "ingest", JobRun.trigger != "shared",
                                                                  JobRun.status == "success")))
        _wait(lambda: _query(db_url, select(func.count()).select_from(UsageEvent))[0][0] == LINES)
        os.killpg(second.pid, signal.SIGTERM)
        _, err = second.communicate(timeout=60)
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
    [run] = done
    assert (run.scheduled_for, run.trigger) == (tick, "takeover"), err
    assert run.owner != killed_owner and run.stats["took_over"]["owner"] == killed_owner
    assert run.stats["took_over"]["status"] in ("interrupted", "running")
    assert _query(db_url, select(func.count()).select_from(UsageEvent))[0][0] == LINES  # nothing lost or doubled
    assert second.returncode == 0, err
