"""Stopping a real daemon the way ``timeout 60 make run`` and systemd do: SIGTERM to the process group.

``timeout`` and systemd (KillMode=control-group) signal every process of the group, and GNU make
passes the SIGTERM it gets on to its children, so the worker receives SIGTERM twice within
milliseconds: that is one stop request. A second Ctrl-C (SIGINT) still exits at once.
"""

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

LINES = 60_000


def _config(tmp_path: Path, db_url: str, lines: int, batch: int) -> dict[str, str]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "big.jsonl").write_text("".join(json.dumps({
        "request_id": f"r{i}", "timestamp": "2026-11-22T12:00:00Z", "model": "gpt-4o-mini", "provider": "openai",
        "account_id": f"a{i % 50}", "prompt_tokens": 100, "completion_tokens": 20}) + "\n" for i in range(lines)))
    cfg = tmp_path / "daemon.toml"
    cfg.write_text(f'[ingest]\nbatch_size = {batch}\n[logging]\nformat = "json"\n'
                   f'[[sources]]\nname = "inbox"\nkind = "jsonl"\npath = "{inbox}/*.jsonl"\n', encoding="utf-8")
    return {**os.environ, "TOKENTALLY_CONFIG": str(cfg), "TOKENTALLY_DATABASE_URL": db_url}


def _count(db_url: str, query) -> int:
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(query).scalar_one()
    finally:
        engine.dispose()


def _wait_for_a_batch(proc: subprocess.Popen[str], db_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if _count(db_url, select(func.count()).select_from(UsageEvent)):
            return
        time.sleep(0.05)
    raise AssertionError("the daemon ingested nothing")


def _actions(err: str) -> list[str]:
    return [json.loads(line).get("action") for line in err.splitlines() if line.startswith("{")]


def _stop(argv: list[str], tmp_path: Path, db_url: str, *signals: signal.Signals, gap: float,
          lines: int = LINES, batch: int = 1000) -> tuple[int, str]:
    """Start ``argv`` in a process group of its own, send the signals to the whole group once a batch
    is committed, ``gap`` seconds apart: (exit code, the worker's log)."""
    proc = subprocess.Popen(argv, env=_config(tmp_path, db_url, lines, batch), cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_a_batch(proc, db_url)
        for sig in signals:
            os.killpg(proc.pid, sig)
            time.sleep(gap)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, err


def test_sigterm_to_the_process_group_twice_is_one_stop_and_the_worker_exits_0(tmp_path: Path, db_url: str):
    code, err = _stop([sys.executable, "-m", "cli", "run"], tmp_path, db_url, signal.SIGTERM, signal.SIGTERM,
                      gap=0.01)

    assert code == 0, err
    actions = _actions(err)
    assert actions.count("daemon_stopping") == 1 and "daemon_abort" not in actions, err
    assert actions[-1] == "daemon_stopped"
    assert 0 < _count(db_url, select(func.count()).select_from(UsageEvent)) < LINES  # stopped after a batch
    assert _count(db_url, select(func.count()).select_from(JobRun).where(JobRun.status == "success")) >= 1


def test_sigterm_to_a_make_parent_and_its_worker_stops_the_worker_cleanly(tmp_path: Path, db_url: str):
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"run:\n\texec {sys.executable} -m cli run\n", encoding="utf-8")

    code, err = _stop(["make", "-s", "-f", str(makefile), "run"], tmp_path, db_url, signal.SIGTERM, gap=0.01)

    # GNU make waits for its child, then dies of the SIGTERM it got itself (-15): the worker's own clean
    # stop is in its log, one stop request although it was signalled by the group and by make
    assert code == -signal.SIGTERM, err
    actions = _actions(err)
    assert actions.count("daemon_stopping") == 1 and "daemon_abort" not in actions, err
    assert actions[-1] == "daemon_stopped"


def test_a_second_sigint_half_a_second_later_still_exits_at_once(tmp_path: Path, db_url: str):
    # batches of 100,000 events: the second Ctrl-C comes while the batch in hand is still being written
    # (half a second, not a full one: here a whole batch is written within a second and the worker gone)
    code, err = _stop([sys.executable, "-m", "cli", "run"], tmp_path, db_url, signal.SIGINT, signal.SIGINT, gap=0.5,
                      lines=400_000, batch=100_000)

    assert code == 1, err
    assert "daemon_abort" in _actions(err)
    assert _count(db_url, select(func.count()).select_from(UsageEvent)) < 400_000
