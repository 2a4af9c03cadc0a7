"""Month-end forecasts and budget.forecast on both databases; the forecast command's output."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from tests.helpers import alert_sentence, utc
from tests.integration.anomalies.conftest import TZ, office
from reports import figures
from reports.messages import render
from reports.periods import period_containing
from worker.anomalies import forecast as fc, projection
from worker.models import Alert

START = utc("2026-10-05T04:00:00Z")  # six weeks of history before November (New York midnight)
NOVEMBER = (utc("2026-11-01T04:00:00Z"), utc("2026-12-01T05:00:00Z"))  # EDT to EST on the 1st


def actual(start, end) -> Decimal:
    """What office() books in [start, end)."""
    total, hour = Decimal(0), start
    while hour < end:
        total += office(hour.astimezone(ZoneInfo(TZ)))[0]
        hour += timedelta(hours=1)
    return total


@pytest.mark.parametrize("day", [10, 20])
def test_the_forecast_of_a_steady_month_is_within_ten_percent_of_its_end(traffic, engine, day):
    traffic(START, NOVEMBER[1])
    as_of = utc(f"2026-11-{day + 1:02d}T05:00:00Z")  # the end of the day in New York
    with engine.connect() as conn:
        found = {f.scope: f for f in fc.forecasts(conn, ZoneInfo(TZ), 4, as_of)}
    assert set(found) == {("system", ""), ("tenant", "t1"), ("account", "acme"), ("service", "chat")}
    f = found[("account", "acme")]
    month_end = actual(*NOVEMBER)
    assert f.so_far == actual(NOVEMBER[0], as_of)
    assert f.basis == "pattern" and f.low <= f.forecast <= f.high
    assert abs(f.forecast - month_end) / month_end < Decimal("0.1")
    assert f.low <= month_end * Decimal("1.1") and f.high >= month_end * Decimal("0.9")
    assert found[("system", "")].forecast == f.forecast


def test_a_scope_with_less_than_a_week_of_history_is_forecast_at_its_pace(traffic, engine):
    traffic(utc("2026-11-08T05:00:00Z"), utc("2026-11-11T05:00:00Z"), lambda local: (Decimal(1), 1))
    with engine.connect() as conn:
        f = fc.forecasts(conn, ZoneInfo(TZ), 4, utc("2026-11-11T05:00:00Z"), only=("account", "acme"),
                         kinds=("account",))[0]
    assert f.basis == "pace" and f.so_far == 72
    assert f.forecast == 72 + 24 * 20  # $1 an hour for the 20 days left


def budget_settings(make_settings, limit: str):
    return make_settings(f'timezone = "{TZ}"\ndefault_tier = "pro"\n[tiers.pro]\nmonthly_cost_usd = "{limit}"\n')


def test_budget_forecast_gives_the_crossing_date_and_resolves_when_no_longer_projected(traffic, engine,
                                                                                        make_settings):
    traffic(START, utc("2026-11-11T05:00:00Z"))
    now = utc("2026-11-11T05:00:00Z")
    settings = budget_settings(make_settings, "1500")
    with freeze_time(now), engine.begin() as conn:
        result = projection.check(conn, settings, now)
    assert result.accounts == 1 and result.projected == 1 and result.alerts_raised == 1
    with engine.connect() as conn:
        alert = conn.execute(select(Alert).where(Alert.kind == "budget.forecast")).one()
    assert (alert.scope, alert.scope_id, alert.period) == ("account", "acme", "2026-11")
    # the day the booked pattern really passes $1,500, give or take a day of the learned weeks' wobble
    running, hour = Decimal(0), NOVEMBER[0]
    while running <= 1500:
        running += office(hour.astimezone(ZoneInfo(TZ)))[0]
        hour += timedelta(hours=1)
    crossed = (hour - timedelta(hours=1)).astimezone(ZoneInfo(TZ)).date()
    predicted = alert.payload["crossing_date"]
    assert abs((crossed - date.fromisoformat(predicted)).days) <= 1
    assert alert.payload["limit_usd"] == "1500" and alert.payload["tier"] == "pro"
    assert f"will pass its monthly limit of $1500.00 on {predicted}" in alert_sentence(alert)

    raised = budget_settings(make_settings, "5000")  # the limit raised: no crossing any more
    with freeze_time(now + timedelta(hours=1)), engine.begin() as conn:
        result = projection.check(conn, raised, now + timedelta(hours=1))
    assert result.projected == 0 and result.alerts_resolved == 1
    with engine.connect() as conn:
        assert conn.execute(select(Alert.state).where(Alert.kind == "budget.forecast")).scalar() == "resolved"


def test_the_forecast_command_prints_a_table_and_json(traffic, cli):
    traffic(START, utc("2026-11-11T05:00:00Z"), tz="UTC")
    with freeze_time("2026-11-11T05:00:00Z"):
        out = cli("forecast", "--format", "json")
        assert out.exit_code == 0, out.output
        rows = json.loads(out.output)
        table = cli("forecast", "--scope", "account:acme")
        bad = cli("forecast", "--scope", "team:x")
        each = {scope: json.loads(cli("forecast", "--scope", scope, "--format", "json").output)
                for scope in ("system", "tenant:t1", "account:acme", "service:chat", "service:nope")}
    assert {(r["scope"], r["scope_id"]) for r in rows} == {("system", ""), ("tenant", "t1"), ("account", "acme"),
                                                          ("service", "chat")}
    acme = next(r for r in rows if r["scope"] == "account")
    assert Decimal(acme["low_usd"]) <= Decimal(acme["forecast_usd"]) <= Decimal(acme["high_usd"])
    assert acme["month"] == "2026-11" and acme["basis"] == "pattern"
    assert table.exit_code == 0 and "acme" in table.output and acme["forecast_usd"] in table.output
    assert "system" not in table.output.split("\n", 2)[-1]
    assert bad.exit_code == 2 and "--scope" in bad.output
    for scope, kind_id in (("system", ("system", "")), ("tenant:t1", ("tenant", "t1")),
                           ("account:acme", ("account", "acme")), ("service:chat", ("service", "chat"))):
        assert [(r["scope"], r["scope_id"]) for r in each[scope]] == [kind_id], scope
        assert each[scope][0] == next(r for r in rows if (r["scope"], r["scope_id"]) == kind_id)
    assert each["service:nope"] == []


def test_the_daily_report_carries_the_months_forecast_and_the_text_shows_it(traffic, engine, make_settings):
    settings = make_settings(f'timezone = "{TZ}"\n')
    traffic(START, utc("2026-11-11T05:00:00Z"))
    with engine.connect() as conn:
        daily = figures.build(conn, settings, period_containing("daily", date(2026, 11, 10)),
                              now=utc("2026-11-12T14:00:00Z"))
        weekly = figures.build(conn, settings, period_containing("weekly", date(2026, 11, 10)),
                               now=utc("2026-11-12T14:00:00Z"))
        monthly = figures.build(conn, settings, period_containing("monthly", date(2026, 10, 20)),
                                now=utc("2026-11-12T14:00:00Z"))
    fc_block = daily["forecast"]
    assert fc_block["month"] == "2026-11" and fc_block["basis"] == "pattern"
    assert Decimal(fc_block["so_far_usd"]) == actual(NOVEMBER[0], utc("2026-11-11T05:00:00Z"))
    assert abs(Decimal(fc_block["forecast_usd"]) - actual(*NOVEMBER)) / actual(*NOVEMBER) < Decimal("0.1")
    assert weekly["forecast"] is None
    ahead = monthly["forecast"]  # October's report: November from October's weeks alone
    assert ahead["month"] == "2026-11" and ahead["basis"] == "pattern" and Decimal(ahead["so_far_usd"]) == 0
    assert abs(Decimal(ahead["forecast_usd"]) - actual(*NOVEMBER)) / actual(*NOVEMBER) < Decimal("0.1")
    text = render("email/report.txt.j2", {"report": daily, "report_url": None})
    assert f"Forecast:    2026-11 ends at about ${Decimal(fc_block['forecast_usd']):,.2f}" in text
    html = render("report/report.html.j2", {"report": daily, "report_url": None, "chart_cid": "chart",
                                            "chart_data_uri": "data:image/png;base64,"})
    assert "Forecast: 2026-11 ends at about" in html


def test_usage_with_forecast_gives_each_row_its_scopes_month_end_and_the_months_row_the_systems(traffic, cli):
    traffic(START, utc("2026-11-11T05:00:00Z"), tz="UTC")
    traffic(START, utc("2026-11-11T05:00:00Z"), lambda local: (Decimal(1), 2), account="bea", tenant="t2",
            service="search", tz="UTC")
    with freeze_time("2026-11-11T05:00:00Z"):
        assert cli("summaries", "rebuild", "--from", "2026-10-01", "--to", "2026-11-30").exit_code == 0
        wanted = {(r["scope"], r["scope_id"]): r for r in json.loads(cli("forecast", "--format", "json").output)}
        by_tenant = json.loads(cli("usage", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "tenant",
                                   "--forecast", "--format", "json").output)
        by_month = json.loads(cli("usage", "--from", "2026-10-01", "--to", "2026-11-30", "--by", "month",
                                  "--forecast", "--format", "json").output)
        table = cli("usage", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "account", "--forecast")
        plain = json.loads(cli("usage", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "tenant",
                               "--format", "json").output)
        by_day = cli("usage", "--from", "2026-11-01", "--to", "2026-11-30", "--forecast")
        past = cli("usage", "--from", "2026-10-01", "--to", "2026-10-31", "--by", "tenant", "--forecast")
    assert {r["tenant_id"]: r["forecast_usd"] for r in by_tenant} == {
        "t1": wanted[("tenant", "t1")]["forecast_usd"], "t2": wanted[("tenant", "t2")]["forecast_usd"]}
    t2 = next(r for r in by_tenant if r["tenant_id"] == "t2")
    assert t2["forecast_month"] == "2026-11" and Decimal(t2["cost_usd"]) == 245 and Decimal(t2["forecast_usd"]) == 30 * 24  # $1 an hour
    assert (t2["forecast_low_usd"], t2["forecast_high_usd"]) == (wanted[("tenant", "t2")]["low_usd"],
                                                                 wanted[("tenant", "t2")]["high_usd"])
    months = {r["month"]: r for r in by_month}
    assert months["2026-10"]["forecast_usd"] is None
    assert months["2026-11"]["forecast_usd"] == wanted[("system", "")]["forecast_usd"]
    assert table.exit_code == 0 and wanted[("account", "acme")]["forecast_usd"] in table.output
    assert "forecast_usd" not in plain[0]
    assert by_day.exit_code == 2 and "--forecast needs --by month" in by_day.output
    assert past.exit_code == 2 and "does not overlap the current month (2026-11)" in past.output
