"""The commit thread: order, errors, its resource and the GIL switch interval."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from worker.ingest import committer as committer_module
from worker.ingest.committer import Committer


def test_tasks_run_in_order_on_one_other_thread():
    seen: list[tuple[int, str]] = []
    with Committer() as c:
        for i in range(5):
            c.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
    assert [i for i, _ in seen] == list(range(5))
    assert {name for _, name in seen} == {"ledger-committer"}


def test_a_failed_task_stops_the_rest_and_is_raised_to_the_caller():
    """Even a task queued before the failure was seen never runs: its checkpoint would skip the failed batch."""
    ran: list[int] = []
    release = threading.Event()

    def boom() -> None:
        release.wait(10)
        raise RuntimeError("commit failed")

    with pytest.raises(RuntimeError, match="commit failed"):
        with Committer() as c:
            c.submit(boom)
            c.submit(lambda: ran.append(0))  # queued while boom still runs
            release.set()
            for i in range(1, 50):
                c.submit(lambda i=i: ran.append(i))  # raises once boom has failed
                time.sleep(0.01)
    assert ran == []


def test_every_task_gets_the_resource_opened_once_on_the_thread_and_closed_at_the_end():
    events: list[str] = []

    @contextmanager
    def resource() -> Iterator[str]:
        events.append(f"open on {threading.current_thread().name}")
        yield "conn"
        events.append("close")

    with Committer(resource=resource) as c:
        for i in range(3):
            c.submit(lambda conn, i=i: events.append(f"{conn} {i}"))
    assert events == ["open on ledger-committer", "conn 0", "conn 1", "conn 2", "close"]


def test_a_resource_that_cannot_be_opened_fails_the_commits_without_hanging():
    def resource():
        raise ConnectionError("database unreachable")

    with pytest.raises(ConnectionError):
        with Committer(resource=resource) as c:
            for _ in range(5):  # the queue holds one: this would block if nothing drained it
                c.submit(lambda conn: None)


def test_the_switch_interval_is_lowered_while_committers_run_and_restored_after():
    before = sys.getswitchinterval()
    first, second = Committer(), Committer()
    assert sys.getswitchinterval() == min(before, committer_module.SWITCH_INTERVAL)
    first.close()
    assert sys.getswitchinterval() == min(before, committer_module.SWITCH_INTERVAL)  # the other still runs
    second.close()
    assert sys.getswitchinterval() == before
