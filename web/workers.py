"""``[web] workers`` above 1: uvicorn worker processes on one listening address.

:func:`bind` makes their sockets (one each, ``SO_REUSEPORT``) in the process that asks
(``tokentally web``, or ``tokentally run``, whose daemon and scheduler stay in that process,
once), and :class:`Workers` starts that many worker processes with uvicorn's own
:class:`~uvicorn.supervisors.multiprocess.Process` (spawned: a new interpreter that imports the
app, never a fork of the daemon). Each worker builds its own engine and app from the pickled
settings (:class:`AppFactory`), so it has its own pool and its own token cache. The supervisor
runs in a thread, not as uvicorn's ``Multiprocess``, whose signal handlers would take the main
thread's: the caller's handlers decide when to stop.

- Start: every worker answers its supervisor's ping as serving (:data:`READY_TIMEOUT`), or the
  start fails with the worker's exit code.
- A worker that dies or stops answering (:data:`HEALTH_TIMEOUT`) is replaced; one that exits
  before it served (uvicorn's startup-failure code) stops them all, since its replacement would
  fail alike.
- Stop: SIGTERM to each worker (uvicorn lets the requests in hand finish), then SIGKILL to any
  still there ``stop_timeout + 5`` seconds later.
- A worker gets SIGTERM when the thread that started it dies, as it does when its process is
  killed (Linux ``PR_SET_PDEATHSIG``): a killed parent leaves no worker holding the port.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import signal
import socket
import sys
import threading
import time

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Process

from worker import db, logs
from worker.settings import Settings
from web.app import create_app

logger = logging.getLogger(__name__)

READY_TIMEOUT = 60.0  # seconds a worker gets to import the app and serve (a spawned interpreter)
HEALTH_TIMEOUT = 5.0  # a worker that does not answer its supervisor's ping this long is replaced
PR_SET_PDEATHSIG = 1


class AppFactory:
    """What a worker calls to build its app (uvicorn's ``factory=True``); pickled to the worker
    with the settings only, so the engine and its pool are made there."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def __call__(self):  # noqa: ANN204 - the FastAPI app
        _die_with_parent()
        s = self.settings
        logs.setup(s.log_level, s.log_format, s.log_libraries)
        engine = db.make_engine(s.database_url)
        atexit.register(engine.dispose)
        return create_app(s, engine)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def bind(host: str, port: int, count: int) -> list[socket.socket]:
    """One listening socket per worker on the address (OSError when it is taken).

    Linux balances new connections over sockets bound with ``SO_REUSEPORT`` (by a hash of each
    connection's addresses). One socket shared by every worker is not balanced: the worker that
    wakes first accepts a burst of connections, and keep-alive clients stay where they landed
    (wrk's 20 connections all went to one of two workers). A plain bind first checks that
    nobody holds the port, not even another ``SO_REUSEPORT`` holder, which the kernel would let
    share it. Without ``SO_REUSEPORT``: one socket, shared."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    finally:
        probe.close()
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if reuse_port is not None else 1):
            sock = socket.socket(family)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port is not None:
                sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)
            sock.bind((host, port))
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Workers:
    def __init__(self, config: uvicorn.Config, count: int, stop_timeout: float):
        self.config = config
        self.count = count
        self.stop_timeout = stop_timeout
        self.sockets: list[socket.socket] = []  # bind()'s: worker i listens on sockets[i % len]
        self.processes: list[Process] = []
        self.should_exit = threading.Event()
        self.ready = threading.Event()
        self.failure: str | None = None

    def _start_one(self, index: int) -> Process:
        """Worker ``index`` (a replacement listens on the socket of the one it replaces, whose
        backlog kept the connections that came meanwhile)."""
        process = Process(self.config, [self.sockets[index % len(self.sockets)]])
        process.start()
        return process

    def run(self) -> None:
        """The supervisor's thread: start, keep the workers alive, stop them."""
        try:
            self.processes = [self._start_one(i) for i in range(self.count)]
            for process in self.processes:
                if not process.wait_until_ready(READY_TIMEOUT, self.should_exit):
                    if not self.should_exit.is_set():
                        self.failure = f"a web worker stopped before it served (exit code {process.exitcode})"
                    self.should_exit.set()
                    break
            else:
                self.ready.set()
            while not self.should_exit.wait(0.5):
                self._replace_dead()
        finally:
            self._stop_all()

    def _replace_dead(self) -> None:
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set() or process.is_alive(timeout=HEALTH_TIMEOUT):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                self.failure = f"a web worker failed to start again (exit code {process.exitcode}): stopping"
                logger.error(self.failure, extra={"action": "web_worker_failed", "pid": process.pid})
                self.should_exit.set()
                return
            logger.warning("a web worker died: starting another", extra={
                "action": "web_worker_replaced", "pid": process.pid, "exit_code": process.exitcode})
            self.processes[index] = self._start_one(index)

    def _stop_all(self) -> None:
        for process in self.processes:
            process.terminate()
        deadline = time.monotonic() + self.stop_timeout + 5
        for process in self.processes:
            process.process.join(max(0.0, deadline - time.monotonic()))
            if process.process.exitcode is None:
                process.kill()
                process.process.join()
        for sock in self.sockets:
            sock.close()
