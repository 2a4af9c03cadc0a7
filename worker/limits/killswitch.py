"""The system-wide kill switch: one row in ``system_state`` that applications read through the gate.

The budgets job turns it on at the emergency threshold (never again on a day an
operator cleared it for); an operator turns it on or off from the CLI. Every
change is a conditional write, so of two replicas one wins. Reading it
(``kill_switch``) lives in ``worker.limits.switches``, which imports no model.
"""

from __future__ import annotations

import getpass
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, update

from worker.limits.switches import KILL_SWITCH, kill_switch, kill_switch_state
from worker.models import SystemState
from worker.settings import Settings
from worker.sql import insert_ignore

__all__ = ["KILL_SWITCH", "kill_switch", "kill_switch_state", "trip", "clear", "user_name"]

logger = logging.getLogger(__name__)


def trip(conn: Connection, now: datetime, *, period: str, by: str, reason: str,
         data: dict[str, Any] | None = None) -> bool:
    """Turn the kill switch on; True if this call turned it on.

    The budgets job does not turn it on again for a day an operator cleared it for
    (they decided to go on that day); an operator can always turn it on."""
    ss = SystemState
    conn.execute(insert_ignore(conn.dialect.name, ss, ["key"]).values(
        key=KILL_SWITCH, active=False, reason=None, period=None, changed_at=now, changed_by="init", data={}))
    query = update(ss).where(ss.key == KILL_SWITCH, ss.active.is_(False))
    if not by.startswith("operator"):
        query = query.where(or_(ss.period.is_(None), ss.period != period, ~ss.changed_by.startswith("operator")))
    won = conn.execute(query.values(active=True, reason=reason, period=period, changed_at=now, changed_by=by,
                                    data=data or {})).rowcount == 1
    if won:
        logger.critical("kill switch on", extra={"action": "kill_switch_on", "by": by, "reason": reason})
    return won


def clear(conn: Connection, settings: Settings, now: datetime, by: str | None = None) -> bool:
    """Turn the kill switch off (an operator); the budgets job leaves it off for the rest of the day."""
    by = by or f"operator:{user_name()}"
    day = now.astimezone(settings.tz).date().isoformat()
    ss = SystemState
    won = conn.execute(update(ss).where(ss.key == KILL_SWITCH, ss.active.is_(True)).values(
        active=False, period=day, changed_at=now, changed_by=by)).rowcount == 1
    if won:
        logger.warning("kill switch cleared", extra={"action": "kill_switch_cleared", "by": by})
    return won


def user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "unknown"
