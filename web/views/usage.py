"""Usage for the console: ``tokentally usage`` for a range of local dates, on a page or as CSV.

The figures are ``worker.summaries.usage.usage`` (summaries, and the ledger for days not yet
recomputed; ``project`` and ``api_key`` from the ledger), filtered to the viewer's tenant. The
page shows at most :data:`ROWS` rows, the CSV has them all; every CSV cell that a spreadsheet
would read as a formula is neutralised (``worker.text.csv_safe``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection

from worker import clock
from worker.settings import Settings
from worker.summaries import usage as usage_mod
from worker.text import csv_safe

ROWS = 500  # rows on the page; the CSV has every row
DEFAULT_DAYS = 30
MAX_DAYS = 3660  # about ten years: a range longer than this is refused


class UsageQueryError(ValueError):
    """A from/to/by the page cannot answer; the message names the field."""


@dataclass
class UsageQuery:
    first: date
    last: date
    by: str

    @property
    def key(self) -> str:
        return usage_mod.GROUPS[self.by]


def parse_query(settings: Settings, date_from: str | None, date_to: str | None, by: str | None) -> UsageQuery:
    today = clock.now().astimezone(settings.tz).date()
    last = _date(date_to, "to") if date_to else today
    first = _date(date_from, "from") if date_from else last - timedelta(days=DEFAULT_DAYS - 1)
    by = by or "day"
    if by not in usage_mod.GROUPS:
        raise UsageQueryError(f"by: one of {', '.join(usage_mod.GROUPS)}")
    if first > last:
        raise UsageQueryError("from: the first date is after the last")
    if (last - first).days >= MAX_DAYS:
        raise UsageQueryError(f"from: a range of at most {MAX_DAYS} days")
    return UsageQuery(first, last, by)


def _date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageQueryError(f"{name}: a date as YYYY-MM-DD, got {text[:40]!r}") from None


def rows(conn: Connection, settings: Settings, query: UsageQuery, tenant: str | None) -> list[dict[str, Any]]:
    found = usage_mod.usage(conn, settings.tz, query.first, query.last, query.by, tenant)
    return [r.as_dict(query.key) for r in found]


def to_csv(found: list[dict[str, Any]], query: UsageQuery) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = [query.key, *usage_mod.FIELDS]
    writer.writerow(columns)
    for row in found:
        writer.writerow([csv_safe(str(row[c])) if row[c] is not None else "" for c in columns])
    return out.getvalue()


GROUPS = tuple(usage_mod.GROUPS)
LEDGER_ONLY = usage_mod.LEDGER_ONLY
