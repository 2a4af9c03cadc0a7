"""A transient progress bar while a long command works (``ingest``, ``summaries rebuild``).

Apart from :mod:`cli.output` so that the commands which draw no bar do not import rich's
progress machinery at start."""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

from rich.progress import BarColumn, Progress, ProgressColumn, TimeRemainingColumn

from cli.output import Format, ObjectFormat, console

T = TypeVar("T")
Advance = Callable[[int], None]


def with_progress(fmt: Format | ObjectFormat, description: str, total: Callable[[], int], work: Callable[[Advance | None], T],
                  *columns: ProgressColumn) -> T:
    """``work(advance)`` under a transient bar of ``total()`` steps when stderr is a terminal and the output
    is not JSON; ``work(None)`` otherwise (``total`` is then never called)."""
    if fmt == Format.json or not sys.stderr.isatty():
        return work(None)
    with Progress("[progress.description]{task.description}", BarColumn(), *columns, TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(description, total=total())
        return work(lambda n: bar.advance(task, n))
