"""The CSV of a grouped alert message: every alert of the storm, one row each.

Built at send time from the group's facts (``worker.alerts.facts.group_facts``: its
``columns`` and ``rows``). Cells are the data as stored, made safe for a spreadsheet:
a text a spreadsheet would read as a formula gets a leading ``'`` (``worker.text.csv_safe``);
None is an empty cell.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from worker.text import csv_safe


def group_csv(group: dict[str, Any]) -> bytes:
    """The group's alerts as CSV (UTF-8, a header row, then one row per alert)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_safe(str(c)) for c in group["columns"]])
    for row in group["rows"]:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def group_attachments(facts: dict[str, Any]) -> dict[str, bytes]:
    """file name -> content for a grouped alert message's facts; nothing for any other message."""
    group = facts.get("group")
    if not isinstance(group, dict) or "rows" not in group:
        return {}
    return {f"{group['kind']}-{group['reason']}-{group['count']}.csv": group_csv(group)}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return csv_safe(str(value))
