"""Integrity for the console: the findings the integrity job holds open, unlogged calls and
the reconciliations with the providers.

The findings shown are the open ``integrity.*`` and ``source.silent`` alerts (what the last
runs of the ``integrity`` and ``reconcile`` jobs found, worded as their messages are): running
every check on each page view would read the ledger for days. An admin runs the job now from
the jobs page.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, or_, select

from worker import clock
from worker.integrity.reconcile import list_reconciliations
from worker.models import Alert, CallAttempt
from worker.settings import Settings

from web.views.alerts import worded

RECONCILE_DAYS = 30
LIMIT = 200  # rows of each list


def findings(conn: Connection, settings: Settings) -> list[dict[str, Any]]:
    query = (select(Alert).where(or_(Alert.kind.like("integrity.%"), Alert.kind == "source.silent"),
                                 Alert.state != "resolved")
             .order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(LIMIT))
    return [worded(a, settings) for a in conn.execute(query).all()]


def unlogged_calls(conn: Connection) -> list[Any]:
    return conn.execute(select(CallAttempt).where(CallAttempt.state == "unlogged")
                        .order_by(CallAttempt.started_at.desc()).limit(LIMIT)).all()


def reconciliations(conn: Connection) -> list[Any]:
    today = clock.now().date()
    rows = list_reconciliations(conn, today - timedelta(days=RECONCILE_DAYS), today)
    return sorted(rows, key=lambda r: (r.day, r.provider, r.model), reverse=True)[:LIMIT]
