"""A single background thread that commits batches while the caller prepares the next.

Parsing, normalising and pricing are Python work on one core; the database's
work (COPY parsing, index maintenance, fsync) happens in the server process or
in SQLite's C code with the GIL released. Committing on a second thread lets the
two overlap. At most one batch waits in the queue, so memory stays bounded, and
batches commit strictly in order, so checkpoints only ever move forward.

Each commit is a dozen round trips to the database (BEGIN, SAVEPOINT, COPY, the
bookkeeping statements, COMMIT), and after each one the commit thread needs the
GIL back from the busy parsing thread, which by default hands it over only every
5 ms (``sys.getswitchinterval()``): the commit thread would spend more time waiting
for the GIL than for the database. While a committer runs, the interval is
lowered to ``SWITCH_INTERVAL`` (and put back when the last committer closes).
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import Any, Callable

_STOP = object()
SWITCH_INTERVAL = 0.0005  # seconds

_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


def _lower_switch_interval() -> None:
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            if _switch_saved > SWITCH_INTERVAL:
                sys.setswitchinterval(SWITCH_INTERVAL)
        _switch_users += 1


def _restore_switch_interval() -> None:
    global _switch_users
    with _switch_lock:
        _switch_users -= 1
        if _switch_users == 0 and sys.getswitchinterval() == SWITCH_INTERVAL < _switch_saved:
            sys.setswitchinterval(_switch_saved)


class Committer:
    """Runs submitted tasks in order on its own thread.

    With ``resource`` (a context manager factory, e.g. ``engine.connect``), the thread
    opens it once and passes what it yields to every task, and closes it at the end."""

    def __init__(self, name: str = "ledger-committer", resource: Callable[[], Any] | None = None):
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None  # to raise in the caller (once)
        self._failed = False  # for good: once a commit failed, no later one may run
        self._resource = resource
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        _lower_switch_interval()
        self._thread.start()

    def _run(self) -> None:
        try:
            if self._resource is None:
                self._loop(None)
                return
            try:
                with self._resource() as res:
                    self._loop(res)
            except BaseException as exc:  # opening or closing the resource failed
                if not self._failed:
                    self._failed = True
                    self._error = exc
                if not self._stopped:
                    self._loop(None)  # drain: nothing more is committed after an error
        finally:
            _restore_switch_interval()

    def _loop(self, res: Any) -> None:
        while True:
            task = self._queue.get()
            if task is _STOP:
                self._stopped = True
                return
            if not self._failed:  # after a failure, drain without committing anything more
                try:
                    task() if self._resource is None else task(res)
                except BaseException as exc:  # handed to the caller by submit()/close()
                    self._failed = True
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, task: Callable[..., None]) -> None:
        """Queue a commit; raises the error of an earlier commit, if one failed."""
        self._raise()
        self._queue.put(task)

    def close(self) -> None:
        """Wait for every queued commit; raise the first failure."""
        self._queue.put(_STOP)
        self._thread.join()
        self._raise()

    def __enter__(self) -> Committer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # the caller failed: let queued commits finish, keep the caller's error
            self._queue.put(_STOP)
            self._thread.join()
