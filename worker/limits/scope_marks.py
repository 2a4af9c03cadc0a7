"""The scopes whose windows are out of date: ingest marks them, the limits job takes the marks.

As ``worker.limits.dirty`` for accounts: a mark is (scope, local day) for the tenant, service,
model, project and key of the events a ledger batch wrote, in that batch's transaction; the
limits job takes the marks of the days up to today with one ``DELETE … RETURNING`` (the delete
is the claim: two replicas never both take one). Member scopes are not marked: a member
budget follows its tenant's mark (``worker.limits.scope_sync``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterable

from sqlalchemy import Connection, delete

from worker.models import LimitDirtyScope
from worker.sql import insert_rows_ignore

MARKED = ("tenant", "service", "model", "project", "key")  # the scope kinds ingest marks


def event_scopes(tenant_id: Any, service: Any, model: Any, project_id: Any, api_key: Any) -> Iterable[str]:
    """The marked scopes of one event's (tenant, service, model, project, key)."""
    for kind, value in zip(MARKED, (tenant_id, service, model, project_id, api_key)):
        if value:
            yield f"{kind}:{value}"


def scopes_of(values: Iterable[tuple[Any, Any, Any, Any, Any]]) -> set[str]:
    """The marked scopes of events given as (tenant, service, model, project, key)."""
    return {scope for v in values for scope in event_scopes(*v)}


def mark_scopes(conn: Connection, marks: Iterable[tuple[str, date]], now: datetime) -> int:
    """Mark each (scope, local day); one statement for a batch's marks (as ``mark_accounts``)."""
    rows = [{"scope": s, "day": d, "marked_at": now} for s, d in sorted(set(marks))]
    insert_rows_ignore(conn, LimitDirtyScope, ["scope", "day"], rows, (LimitDirtyScope.scope,))
    return len(rows)


def claim_scopes(conn: Connection, today: date) -> dict[str, date]:
    """Take every mark of a day up to ``today``: scope -> its latest marked day."""
    taken: dict[str, date] = {}
    for scope, day in conn.execute(delete(LimitDirtyScope).where(LimitDirtyScope.day <= today)
                                   .returning(LimitDirtyScope.scope, LimitDirtyScope.day)):
        taken[scope] = max(day, taken.get(scope, day))
    return taken
