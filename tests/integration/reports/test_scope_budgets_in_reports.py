"""Reports list every scope over or near its budget in their period, from that period's usage (the
limits job need not have run), cut in local time; a tenant's report only its own. On SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import date

from freezegun import freeze_time

from tests.helpers import PRICES, ingest, record, utc
from reports import figures
from reports.archive import archive
from reports.periods import period_containing

SETTINGS = """
timezone = "America/New_York"

[budgets."tenant:school-a"]
daily_tokens = 3000
action = "block"

[budgets."service:essays"]
monthly_cost_usd = "0.01"
action = "warn"

[budgets."model:house-llm"]
daily_tokens = 1000000
action = "alert"

[budgets."member:alice@school-b"]
every = "7d"
start = 2026-11-23
tokens = 2000
action = "alert"
"""


@freeze_time("2026-12-01T14:00:00Z")
def test_reports_list_the_scopes_over_or_near_their_budget_in_the_period(make_settings, engine, tmp_path) -> None:
    settings = make_settings(SETTINGS + PRICES + f'[reports]\narchive_dir = "{tmp_path / "archive"}"\n')
    ingest(settings, engine, tmp_path, [
        # 30 November (EST): school-a 4,500 tokens of 3,000 a day; essays $0.008 of $0.01 a month
        *[record(utc("2026-11-30T15:00:00Z"), tenant="school-a", service="essays") for _ in range(3)],
        record(utc("2026-11-30T16:00:00Z"), tenant="school-b", account="alice", service="essays"),
        record(utc("2026-11-30T16:30:00Z"), tenant="school-b", account="alice", service=None),  # 3,000 of 2,000
        # 1 December 00:30 EST is 05:30 UTC: not the 30th's (nor November's)
        *[record(utc("2026-12-01T05:30:00Z"), tenant="school-a", service="essays") for _ in range(3)],
    ])
    with engine.connect() as conn:
        day = figures.build(conn, settings, period_containing("daily", date(2026, 11, 30)))["budget"]["scopes"]
    assert [(s["scope"], s["window"], s["period"], s["state"], s["fraction"]) for s in day] == [
        ("member:alice@school-b", "7-day", "2026-11-30+7d", "over", "1.5000"),  # its second week
        ("service:essays", "monthly", "2026-11", "warned", "0.8000"),
        ("tenant:school-a", "daily", "2026-11-30", "blocked", "1.5000")]
    with engine.connect() as conn:
        week = figures.build(conn, settings, period_containing("weekly", date(2026, 11, 29)))["budget"]["scopes"]
    # Mon 23 - Sun 29 November: alice's rolling week (from the 23rd) saw nothing yet, nor anyone else
    assert week == []
    with engine.connect() as conn:
        tenant_b = figures.build(conn, settings, period_containing("daily", date(2026, 11, 30)),
                                 tenant="school-b")["budget"]["scopes"]
    assert [(s["scope"], s["window"], s["state"]) for s in tenant_b] == [("member:alice@school-b", "7-day", "over")]
    archived = archive(engine, settings, period_containing("daily", date(2026, 11, 30)))
    html = (archived.directory / "report.html").read_text(encoding="utf-8")
    assert "Scope over or near budget" in html and "tenant school-a" in html and "4,500 of 3,000 tokens" in html
