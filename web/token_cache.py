"""Bearer tokens verified at most once a second per process: what the API pays per request.

``verify_token`` (:mod:`web.auth`) is the authoritative check: a lookup by hash (and, once a
minute, a ``last_used_at`` write). At 1,000 gate checks a second that lookup was a third of
each request's round trips, so :func:`cached_principal` keeps a verified token's principal for
:data:`TTL` seconds:

- only tokens that verified are kept (an unknown or bad one is looked up every time);
- an entry is never used past the token's ``expires_at`` (checked against ``clock.now()`` on
  every hit), nor past :data:`TTL` (``time.monotonic``);
- ``revoke_token`` in this process drops the token's entries at once (:func:`forget`); a
  revocation by another process (``tokentally tokens revoke``, another replica) is seen by
  this one within :data:`TTL`;
- entries are per database URL, so one process serving two databases (the tests) never
  lets one's token into the other; the cache is bounded (:data:`MAX_ENTRIES`, then cleared).

Sessions (the console's cookie) are not cached: the console is not on a hot path.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from worker import clock

TTL = 1.0  # seconds a verified token is trusted without a look at its row
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Entry:
    principal: Any  # a web.auth.Principal
    token_id: int
    expires_at: datetime | None
    checked: float  # time.monotonic() of the lookup


_entries: dict[tuple[str, str], Entry] = {}
_lock = threading.Lock()


def _key(engine: Engine, digest: str) -> tuple[str, str]:
    return str(engine.url), digest


def get(engine: Engine, digest: str) -> Any:
    """The principal of a token verified less than TTL ago and not expired, else None."""
    entry = _entries.get(_key(engine, digest))
    if entry is None:
        return None
    if time.monotonic() - entry.checked >= TTL or (entry.expires_at is not None and entry.expires_at <= clock.now()):
        _entries.pop(_key(engine, digest), None)
        return None
    return entry.principal


def put(engine: Engine, digest: str, principal: Any, token_id: int, expires_at: datetime | None) -> None:
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[_key(engine, digest)] = Entry(principal, token_id, expires_at, time.monotonic())


def forget(token_id: int) -> None:
    """Drop every entry of the token (it was revoked in this process)."""
    with _lock:
        for key in [k for k, e in _entries.items() if e.token_id == token_id]:
            del _entries[key]
