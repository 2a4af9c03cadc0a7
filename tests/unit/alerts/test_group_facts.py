"""A storm's facts and its CSV: every alert one row, the top ten by cost, formulas neutralised."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from reports.alert_csv import group_attachments, group_csv
from worker.alerts.facts import TOP, group_facts, jsonable

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def alert(i: int, cost: str | None, **payload) -> SimpleNamespace:
    body = {"account_id": f"u{i}", **({"used_cost_usd": cost} if cost is not None else {}), **payload}
    return SimpleNamespace(id=i, key=f"budget.account|account|u{i}|day", kind="budget.account", scope="account",
                           scope_id=f"u{i}", period="day 2026-11-23 100%", severity="warning", state="open",
                           first_seen=NOW, last_seen=NOW, times_seen=1, payload=body)


def test_the_group_lists_every_alert_and_the_top_ten_by_cost() -> None:
    alerts = [alert(i, str(i)) for i in range(1, 31)] + [alert(31, None)]
    group = group_facts("budget.account", "new", alerts, NOW)
    assert group["count"] == 31 and len(group["rows"]) == 31
    assert [a["scope_id"] for a in group["top"]] == [f"u{i}" for i in range(30, 30 - TOP, -1)]
    assert group["total_cost_usd"] == Decimal(sum(range(1, 31)))
    assert group["columns"][:8] == ["alert_id", "kind", "scope", "scope_id", "period", "severity", "state",
                                    "first_seen"]
    assert group["columns"][8:] == ["account_id", "used_cost_usd"]


def test_the_csv_neutralises_formulas_and_keeps_numbers() -> None:
    alerts = [alert(1, "-5", note="=cmd|' /C calc'!A0"), alert(2, "3", note="@SUM(A1)", tags=["a", "b"])]
    group = jsonable(group_facts("budget.account", "new", alerts, NOW))
    rows = list(csv.DictReader(io.StringIO(group_csv(group).decode())))
    assert [r["note"] for r in rows] == ["'@SUM(A1)", "'=cmd|' /C calc'!A0"]  # by cost: $3 first
    assert [r["used_cost_usd"] for r in rows] == ["3", "-5"]  # a number stays a number
    assert rows[0]["tags"] == '["a","b"]' and rows[1]["tags"] == ""
    assert list(group_attachments({"group": group})) == ["budget.account-new-2.csv"]
    assert group_attachments({"alert": {}}) == {}
