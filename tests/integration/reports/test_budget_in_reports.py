"""A report's budget column is about the report's period: each account's usage on the
period's days (and months) against its tier, whether or not the budgets job ran then.
On SQLite and PostgreSQL; time frozen through ``worker.clock.now()``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, select

from tests.helpers import PRICES, ingest, record, utc
from reports import figures
from reports.archive import archive
from reports.periods import period_containing
from worker.limits.accounts import set_account
from worker.models import LimitWindow
from worker.settings import Settings

TIERS = """
timezone = "Europe/Berlin"
default_tier = "student"

[tiers.student]
daily_tokens = 10000
daily_cost_usd = "5"
action = "warn"

[tiers.lesson_builder]
daily_tokens = 100000
action = "block"

[tiers.monthly]
monthly_tokens = 1000
action = "alert"
"""


@pytest.fixture
def settings(make_settings, engine, tmp_path) -> Settings:
    s = make_settings(TIERS + f'[reports]\narchive_dir = "{tmp_path / "archive"}"\n' + PRICES)
    set_account(engine, s, "lb-1", tier="lesson_builder")
    set_account(engine, s, "mo-1", tier="monthly")
    return s


def feed(settings: Settings, engine: Engine, tmp_path: Path, account: str, at: datetime, tokens: int,
         n: int = 1) -> None:
    ingest(settings, engine, tmp_path, [record(at + timedelta(seconds=i), account=account, prompt=tokens,
                                               completion=0) for i in range(n)])


def budget(settings: Settings, engine: Engine, kind: str, day: date) -> dict:
    with engine.connect() as conn:
        return figures.build(conn, settings, period_containing(kind, day))["budget"]


@freeze_time("2026-12-01T08:00:00Z")
def test_a_daily_report_shows_the_accounts_over_their_tier_that_day(settings, engine, tmp_path) -> None:
    noon = utc("2026-11-30T11:00:00Z")
    feed(settings, engine, tmp_path, "st-1", noon, 10000, n=3)  # 30,000 of 10,000 (default tier)
    feed(settings, engine, tmp_path, "st-2", noon, 40000, n=2)  # 80,000 of 10,000
    feed(settings, engine, tmp_path, "st-3", noon, 9000)  # 90%: near
    feed(settings, engine, tmp_path, "st-4", noon, 1000)  # 10%: fine
    feed(settings, engine, tmp_path, "lb-1", noon, 60000, n=2)  # 120,000 of 100,000 on a block tier
    with engine.connect() as conn:  # the budgets job never ran: no window knows about 11-30
        assert conn.execute(select(LimitWindow)).first() is None

    b = budget(settings, engine, "daily", date(2026, 11, 30))

    assert [(a["account_id"], a["tier"], a["days_over"]) for a in b["over"]] == [
        ("st-1", "student", ["2026-11-30"]), ("st-2", "student", ["2026-11-30"])]
    assert b["over"][1]["fraction"] == "8.0000"
    assert [(a["account_id"], a["window"], a["period"]) for a in b["blocked"]] == [("lb-1", "day", "2026-11-30")]
    assert [a["account_id"] for a in b["warned"]] == ["st-3"]

    archived = archive(engine, settings, period_containing("daily", date(2026, 11, 30)))
    html = (archived.directory / "report.html").read_text(encoding="utf-8")
    assert "No account is over or near its budget" not in html
    assert {a["account_id"]: a["state"] for a in archived.report["top_accounts"]} == {
        "lb-1": "blocked", "st-2": "over", "st-1": "over", "st-3": "warned", "st-4": "ok"}


@freeze_time("2026-12-02T08:00:00Z")
def test_a_weekly_report_counts_the_days_over_and_a_monthly_report_the_month_over(settings, engine,
                                                                                  tmp_path) -> None:
    feed(settings, engine, tmp_path, "st-1", utc("2026-11-25T10:00:00Z"), 12000)
    feed(settings, engine, tmp_path, "st-1", utc("2026-11-27T10:00:00Z"), 3000)
    feed(settings, engine, tmp_path, "st-1", utc("2026-11-29T10:00:00Z"), 25000)
    feed(settings, engine, tmp_path, "mo-1", utc("2026-11-10T10:00:00Z"), 600)
    feed(settings, engine, tmp_path, "mo-1", utc("2026-11-20T10:00:00Z"), 600)  # 1,200 of 1,000 a month

    week = budget(settings, engine, "weekly", date(2026, 11, 29))  # Mon 11-23 .. Sun 11-29
    assert [(a["account_id"], a["days_over"], a["period"]) for a in week["over"]] == [
        ("st-1", ["2026-11-25", "2026-11-29"], "2026-11-29")]

    month = budget(settings, engine, "monthly", date(2026, 11, 30))
    assert {a["account_id"]: (a["window"], a["days_over"], a["months_over"]) for a in month["over"]} == {
        "st-1": ("day", ["2026-11-25", "2026-11-29"], []), "mo-1": ("month", [], ["2026-11"])}
