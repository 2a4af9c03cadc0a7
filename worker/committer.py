"""A single background thread that commits batches while the caller prepares the next.

Parsing, normalising and pricing are Python work on one core; the database's
work (COPY parsing, index maintenance, fsync) happens in the server process or
in SQLite's C code with the GIL released. Committing on a second thread lets the
two overlap. At most one batch waits in the queue, so memory stays bounded, and
batches commit strictly in order, so checkpoints only ever move forward.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable

_STOP = object()


class Committer:
    def __init__(self, name: str = "ledger-committer"):
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            if task is _STOP:
                return
            if self._error is None:  # after a failure, drain without committing anything more
                try:
                    task()
                except BaseException as exc:  # handed to the caller by submit()/close()
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, task: Callable[[], None]) -> None:
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
