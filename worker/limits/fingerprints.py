"""Settings followed once per change: a fingerprint of them kept in a ``system_state`` row.

The limits job follows a change of the tier settings, or of the settings' scope budgets, in
every open window once: the first replica to see a new fingerprint wins a conditional update
of the row and does the work; the others (and later runs) see the fingerprint already there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from worker.models import SystemState
from worker.sql import insert_ignore


def changed_once(conn: Connection, key: str, fingerprint: str, now: datetime, by: str = "limits") -> bool:
    """True once per new ``fingerprint`` under ``key`` (of two replicas, one)."""
    ss = SystemState
    conn.execute(insert_ignore(conn.dialect.name, ss, ["key"]).values(
        key=key, active=True, reason=None, period=None, changed_at=now, changed_by=by, data={}))
    row = conn.execute(select(ss).where(ss.key == key)).one()
    if (row.data or {}).get("fingerprint") == fingerprint:
        return False
    return conn.execute(update(ss).where(ss.key == key, ss.changed_at == row.changed_at,
                                         ss.changed_by == row.changed_by)
                        .values(data={"fingerprint": fingerprint}, changed_at=now, changed_by=by)).rowcount == 1
