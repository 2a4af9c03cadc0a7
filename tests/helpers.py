"""Helpers shared by the integration tests."""

from __future__ import annotations

import threading
from typing import Any, Callable


def run_together(targets: list[Callable[[], Any]], timeout: float = 60) -> list[Any]:
    """Start every target at the same moment on its own thread; their results, in order.
    An exception in any of them fails the test."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def go(index: int, target: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = target()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a racing thread did not finish"
    return results
