"""The accounts whose windows are out of date: ingest marks them, the limits job takes the marks.

A mark is (account, local day): the account got new usage on that day. Ingest writes
the marks in the transaction of the ledger batch (:func:`mark_accounts`), so a batch
and its marks commit together. The limits job takes the marks of the days up to today
with one ``DELETE … RETURNING`` in its own transaction (:func:`claim_accounts`): the
delete is the claim, so two replicas never both take a mark, and a mark written while
the job runs is either taken (its batch had committed: the job reads the batch's
events) or left for the next run. Marks of days still to come (``ingest.max_future``)
stay until their day begins.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Iterable

from sqlalchemy import Connection, delete

from worker.models import LimitDirtyAccount
from worker.sql import insert_rows_ignore

def mark_accounts(conn: Connection, marks: Iterable[tuple[str, date]], now: datetime) -> int:
    """Mark each (account, local day); a mark already there stays as it is. One statement for a
    batch's marks on PostgreSQL (``worker.sql.insert_rows_ignore``: the rows as one document per 5,000)."""
    rows = [{"account_id": a, "day": d, "marked_at": now} for a, d in sorted(set(marks))]
    insert_rows_ignore(conn, LimitDirtyAccount, ["account_id", "day"], rows, (LimitDirtyAccount.account_id,))
    return len(rows)


def claim_accounts(conn: Connection, today: date) -> dict[str, date]:
    """Take every mark of a day up to ``today``: account -> its latest marked day."""
    taken: dict[str, date] = {}
    rows = conn.execute(delete(LimitDirtyAccount).where(LimitDirtyAccount.day <= today)
                        .returning(LimitDirtyAccount.account_id, LimitDirtyAccount.day))
    for account, day in rows:
        if account not in taken or day > taken[account]:
            taken[account] = day
    return taken
