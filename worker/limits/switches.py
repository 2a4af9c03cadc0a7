"""Reading the system-wide switches: is the kill switch on, and its row.

Core on ``worker.tables.system_state`` and nothing else, so ``status`` and the other readers
ask without importing the models or the dialects' insert statements; turning the switch on and
off is ``worker.limits.killswitch``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from worker.tables import system_state

KILL_SWITCH = "kill_switch"


def kill_switch(conn: Connection) -> Any | None:
    """The kill switch row (every ``system_state`` column) if it is on, else None."""
    return conn.execute(select(system_state).where(system_state.c.key == KILL_SWITCH,
                                                   system_state.c.active.is_(True))).first()


def kill_switch_state(conn: Connection) -> Any | None:
    """The kill switch row, on or off (None before it was first set)."""
    return conn.execute(select(system_state).where(system_state.c.key == KILL_SWITCH)).first()
