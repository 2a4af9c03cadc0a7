"""Leases on a source's files and tables, so replicas share the reading.

Before a poll reads a file (or a table source), it takes the lease on ``(source, path)``:
a row in ``ingest_leases`` with this process as owner and an expiry ``ingest.lease_seconds``
ahead. A lease held by another process and not expired means that file is being read
there: this poll goes on to the next file. The lease is renewed between batches while the
file is read (so a long read keeps it) and released when it is done; a process killed
mid-read leaves a lease that expires, and the next poll anywhere resumes from the committed
checkpoint. Two replicas polling a directory of twenty files thus read ten each, at once.

A lease is about throughput, not correctness: the checkpoints are committed with the
batches and event ids are booked once, so even two readers of one file book nothing twice.
"""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import Engine, delete, or_, select, update

from worker import clock
from worker.models import IngestLease
from worker.sql import insert_ignore

# This process: host, pid and a random part (a pid is reused after a restart). Each Leases
# object owns its leases as OWNER:<n>, so two ingestors in one process share files too.
OWNER = f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
_instances = itertools.count(1)


def owner_gone(owner: str) -> bool:
    """An owner on this host whose process no longer runs (a kill -9 and a restart need not wait
    for its lease to lapse). Another host's owner is never judged gone: its lease expires."""
    parts = owner.split(":")
    if len(parts) < 4 or ":".join(parts[:-3]) != socket.gethostname()[:120] or not parts[-3].isdigit():
        return False
    pid = int(parts[-3])
    if pid == os.getpid():
        return owner.rpartition(":")[0] != OWNER  # this pid, but an earlier process that had it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class Leases:
    """One source's leases, taken and renewed by this process."""

    def __init__(self, engine: Engine, source: str, seconds: int):
        self.engine, self.source, self.ttl = engine, source, timedelta(seconds=seconds)
        self.owner = f"{OWNER}:{next(_instances)}"
        self._renew_at: dict[str, object] = {}

    def claim(self, key: str) -> bool:
        """Take the lease on ``key``; False when another live process holds it."""
        key = key[-1000:]
        now = clock.now()
        values = {"owner": self.owner, "expires_at": now + self.ttl}
        lease = IngestLease.__table__
        with self.engine.begin() as conn:
            taken = conn.execute(update(lease).where(
                lease.c.source == self.source, lease.c.key == key,
                or_(lease.c.owner == self.owner, lease.c.expires_at < now)).values(**values)).rowcount
            if not taken:
                stmt = insert_ignore(conn.dialect.name, IngestLease, ["source", "key"])
                taken = len(conn.execute(stmt.values(source=self.source, key=key, **values)
                                         .returning(lease.c.key)).all())
            if not taken:  # held: by a process of this host that is gone (killed), it is ours now
                holder = conn.execute(select(lease.c.owner).where(lease.c.source == self.source,
                                                                  lease.c.key == key)).scalar()
                if holder is not None and owner_gone(holder):
                    taken = conn.execute(update(lease).where(
                        lease.c.source == self.source, lease.c.key == key, lease.c.owner == holder)
                        .values(**values)).rowcount
        if taken:
            self._renew_at[key] = now + self.ttl / 3
        return bool(taken)

    def renew(self, key: str) -> None:
        """Between batches: push the expiry on once a third of it has passed."""
        key = key[-1000:]
        due = self._renew_at.get(key)
        if due is not None and clock.now() >= due:  # type: ignore[operator]
            self.claim(key)

    def release(self, key: str) -> None:
        key = key[-1000:]
        self._renew_at.pop(key, None)
        lease = IngestLease.__table__
        with self.engine.begin() as conn:
            conn.execute(delete(lease).where(lease.c.source == self.source, lease.c.key == key,
                                             lease.c.owner == self.owner))
