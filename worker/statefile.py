"""Reading a daemon's state file: the database outage it is in and the run records it holds.

``worker.health`` writes the file (JSON, to a temporary name and renamed) while the database
is out of reach; ``status`` reads it to say so first. Apart from the health check, which
imports the models and the alarm, so that reading it imports nothing of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson


def read_state(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A daemon's state file (its outage in progress and the records it holds), or None."""
    try:
        return orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
