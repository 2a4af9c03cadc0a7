"""`[web] workers = 2`: `tokentally web` and `tokentally run` serve from two worker processes on
one port, replace a worker that dies, stop them all on SIGTERM with exit 0, and refuse a bad
value with exit 2 naming the key. On both databases where a database is used (a bad setting and a
taken port are refused before any is)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.helpers import free_port
from tests.integration.web.servers import actions, get, start, stop, wait_until_up
from web.auth import create_token


def _workers(pid: int) -> list[int]:
    """The server's worker processes: its children that multiprocessing spawned."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, what: str, seconds: float = 60):  # noqa: ANN001, ANN202 - a test helper
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _started(proc: subprocess.Popen[str]) -> str:
    """What the server logged until it listened with every worker serving (``web_started``)."""
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if '"web_started"' in line:
            return "".join(lines)
    raise AssertionError("".join(lines))


def _gate_checks(port: int, token: str, n: int) -> list[int]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return [get(f"http://127.0.0.1:{port}/v1/gate/check", headers, json.dumps({"account_id": f"u{i}"}).encode())[0]
            for i in range(n)]


pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers in /proc (Linux)")


@pytest.mark.parametrize("command", ["web", "run"])
def test_two_workers_answer_and_stop_on_sigterm_with_exit_0(tmp_path: Path, db_url: str, engine: Engine,
                                                            command: str) -> None:
    _, token = create_token(engine, "app", "app")
    port = free_port()
    proc = start(command, tmp_path, db_url, port, "workers = 2\n")
    before = ""
    try:
        before = _started(proc)
        workers = _workers(proc.pid)
        assert len(workers) == 2
        assert _gate_checks(port, token, 20) == [200] * 20  # a new connection each: both sockets
        assert get(f"http://127.0.0.1:{port}/v1/gate/check", body=b"{}")[0] == 401
    finally:
        code, err = stop(proc)
    err = before + err
    assert code == 0, err
    logged = actions(err)
    assert "web_started" in logged and logged[-1] == "web_stopped"
    assert not any(_alive(pid) for pid in workers)
    started = next(json.loads(line) for line in err.splitlines() if '"web_started"' in line)
    assert started["workers"] == 2


def test_a_worker_that_dies_is_replaced(tmp_path: Path, db_url: str, engine: Engine) -> None:
    _, token = create_token(engine, "app", "app")
    port = free_port()
    proc = start("web", tmp_path, db_url, port, "workers = 2\n")
    before = ""
    try:
        before = _started(proc)
        first = _workers(proc.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        _wait_for(lambda: first[0] not in _workers(proc.pid) and len(_workers(proc.pid)) == 2, "a new worker")
        _wait_for(lambda: _gate_checks(port, token, 10) == [200] * 10, "answers from both workers")
    finally:
        code, err = stop(proc)
    assert code == 0, before + err
    assert "web_worker_replaced" in actions(before + err)


@pytest.mark.parametrize("command", ["web", "run"])
@pytest.mark.parametrize("value", ["0", '"two"'])
def test_a_bad_workers_setting_exits_2_naming_the_key(tmp_path: Path, command: str, value: str) -> None:
    # The settings are refused before any database is opened: the URL names a file never created.
    proc = start(command, tmp_path, f"sqlite:///{tmp_path / 'never.db'}", free_port(), f"workers = {value}\n")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "web.workers" in err, err


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the port, not the database, is refused
def test_a_taken_port_is_a_clear_error_with_two_workers(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    first = start("web", tmp_path, db_url, port, "workers = 2\n")
    try:
        wait_until_up(first, port)
        (tmp_path / "second").mkdir()
        second = start("web", tmp_path / "second", db_url, port, "workers = 2\n")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in " ".join(err.split())
    finally:
        stop(first)
