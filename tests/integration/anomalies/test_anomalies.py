"""spend.anomaly on both databases: spikes, bursts and new spenders caught; rhythm and pennies not."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from decimal import Decimal

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from tests.helpers import alert_sentence, utc
from tests.integration.anomalies.conftest import TZ, office
from worker.anomalies import detect
from worker.models import Alert, Notification
from worker.registry import registry
from worker.scheduler import run_job

HISTORY_START = utc("2026-10-19T04:00:00Z")  # a Monday, midnight in New York: four weeks before 11-16


@pytest.fixture
def settings(make_settings):
    return make_settings(f'timezone = "{TZ}"\n')


def run(engine, settings, at: str) -> detect.Detected:
    with freeze_time(at), engine.begin() as conn:
        return detect.run(conn, settings, utc(at))


def anomalies(engine, kind: str = "account"):
    with engine.connect() as conn:
        return {a.scope_id: a for a in conn.execute(select(Alert).where(Alert.kind == "spend.anomaly",
                                                                      Alert.scope == kind)).all()}


def spiked(factor: int, hours: range):
    """office() with the local hours ``hours`` of Wednesday 2026-11-18 multiplied by ``factor``."""
    def pattern(local: datetime):
        cost, calls = office(local)
        if local.date().isoformat() == "2026-11-18" and local.hour in hours:
            return cost * factor, calls * factor
        return cost, calls
    return pattern


def test_a_spike_is_caught_with_its_usual_range_contributors_and_the_day_at_this_pace(traffic, engine, settings):
    traffic(HISTORY_START, utc("2026-11-18T17:00:00Z"), spiked(6, range(11, 12)))  # 11:00-12:00 EST at 6x
    result = run(engine, settings, "2026-11-18T17:05:00Z")
    assert result.anomalies >= 1 and result.alerts_raised >= 1
    alert = anomalies(engine)["acme"]
    p = alert.payload
    assert alert.severity == "warning" and alert.state == "open"
    assert p["hour"] == "2026-11-18T16:00:00+00:00" and p["hour_local"] == "2026-11-18 11:00 EST"
    usual = office(utc("2026-11-18T16:00:00Z").astimezone(ZoneInfo(TZ)))[0]  # $9: the day's wobble
    assert Decimal(p["cost_usd"]) == usual * 6 == Decimal(54) and "cost" in p["measures"]
    assert Decimal("9") <= Decimal(p["expected_cost_usd"]) <= Decimal("11")
    assert Decimal(p["expected_high_usd"]) < Decimal(p["cost_usd"])
    assert p["contributors"]["service"][0]["name"] == "chat"
    assert p["contributors"]["model"][0]["name"] == "house-llm"
    assert "account" not in p["contributors"]  # the scope's own kind
    # the day so far: 9 night hours at $0.90, 9-11 at $9 and the spike; then 12 more hours at $54
    assert Decimal(p["day_so_far_usd"]) == Decimal("0.9") * 9 + 2 * 9 + 54
    assert Decimal(p["day_projected_usd"]) == Decimal(p["day_so_far_usd"]) + 12 * 54
    sentence = alert_sentence(alert)
    assert "spend anomaly: account acme spent $54.00 in the hour from 2026-11-18 11:00 EST" in sentence
    assert "Top: services chat $54.00; models house-llm $54.00." in sentence
    with engine.connect() as conn:
        assert conn.execute(select(Notification).where(Notification.alert_id == alert.id)).all()
    assert {"system", "tenant", "service", "model"} <= {a.scope for a in _all(engine)}  # acme is all of them here


def _all(engine):
    with engine.connect() as conn:
        return conn.execute(select(Alert).where(Alert.kind == "spend.anomaly")).all()


def test_a_normal_monday_morning_after_a_quiet_weekend_is_not_an_anomaly(traffic, engine, settings):
    traffic(HISTORY_START, utc("2026-11-16T16:00:00Z"))  # to Monday 11:00 EST
    for at in ("2026-11-16T14:05:00Z", "2026-11-16T15:05:00Z", "2026-11-16T16:05:00Z"):  # 9, 10, 11 EST
        result = run(engine, settings, at)
        assert result.anomalies == 0, at
    assert _all(engine) == []


def test_a_spike_is_caught_in_the_hour_in_progress_once_it_is_over_the_whole_hours_usual(traffic, engine, settings):
    traffic(HISTORY_START, utc("2026-11-18T16:20:00Z"), spiked(20, range(11, 12)))  # 11:00-11:20 EST at 20x
    run(engine, settings, "2026-11-18T16:20:00Z")
    p = anomalies(engine)["acme"].payload
    assert p["partial"] is True and p["hour_local"] == "2026-11-18 11:00 EST"
    assert "so far" in alert_sentence(anomalies(engine)["acme"])


def test_a_new_account_spending_big_is_caught_and_a_new_one_spending_pennies_is_not(traffic, engine, settings):
    traffic(HISTORY_START, utc("2026-11-18T17:00:00Z"))
    start = utc("2026-11-18T16:00:00Z")
    traffic(start, start + timedelta(hours=1), lambda local: (Decimal(30), 10), account="newbie", tenant="t2")
    traffic(start, start + timedelta(hours=1), lambda local: (Decimal("0.40"), 3), account="tiny", tenant="t3")
    run(engine, settings, "2026-11-18T17:05:00Z")
    found = anomalies(engine)
    assert set(found) == {"newbie"}
    assert found["newbie"].payload["measures"] == ["new"] and found["newbie"].payload["new"] is True
    assert alert_sentence(found["newbie"]).startswith("new spender: account newbie spent $30.00")
    assert set(anomalies(engine, "tenant")) == {"t2"}  # a new tenant too; acme's t1 is normal


def test_an_anomaly_escalates_after_three_hours_and_resolves_when_spend_is_normal(traffic, engine, settings):
    traffic(HISTORY_START, utc("2026-11-18T21:00:00Z"), spiked(5, range(11, 14)))  # 11:00-14:00 EST at 5x
    severities = []
    for at in ("2026-11-18T17:05:00Z", "2026-11-18T17:20:00Z", "2026-11-18T18:05:00Z", "2026-11-18T19:05:00Z"):
        run(engine, settings, at)
        severities.append(anomalies(engine)["acme"].severity)
    assert severities == ["warning", "warning", "warning", "critical"]
    alert = anomalies(engine)["acme"]
    assert alert.payload["hours"] == 3 and alert.payload["since"] == "2026-11-18T16:00:00+00:00"
    assert "Unusual for 3 hours now." in alert_sentence(alert)
    result = run(engine, settings, "2026-11-18T20:05:00Z")  # 14:00-15:00 EST: back to $10
    assert result.alerts_resolved >= 1
    assert anomalies(engine)["acme"].state == "resolved"
    with engine.connect() as conn:
        reasons = [n.context["reason"] for n in conn.execute(
            select(Notification).where(Notification.alert_id == alert.id).order_by(Notification.id)).all()]
    assert reasons[0] == "new" and "escalated" in reasons and reasons[-1] == "resolved"


def test_with_one_week_of_history_a_spike_at_the_hour_last_week_spiked_is_still_caught(traffic, engine, settings):
    def twice(local: datetime):  # 10:00-13:00 EST at 5x on Wednesday 11-11 and again on Wednesday 11-18
        cost, calls = office(local)
        return (cost * 5, calls * 5) if local.day in (11, 18) and local.hour in range(10, 13) else (cost, calls)

    traffic(utc("2026-11-10T05:00:00Z"), utc("2026-11-18T17:00:00Z"), twice)  # from Tuesday 11-10
    run(engine, settings, "2026-11-18T17:05:00Z")  # 11:00-12:00 EST: $45, last week's same hour $55
    p = anomalies(engine)["acme"].payload
    assert p["hour_local"] == "2026-11-18 11:00 EST" and "cost" in p["measures"]
    assert Decimal("9") <= Decimal(p["expected_cost_usd"]) <= Decimal("11")  # the other weekdays' 11:00


def test_with_one_week_of_history_a_holiday_last_week_makes_a_normal_monday_no_anomaly(traffic, engine, settings):
    def holiday(local: datetime):  # no usage on Monday 11-09
        return (Decimal(0), 0) if local.date().isoformat() == "2026-11-09" else office(local)

    traffic(utc("2026-11-06T05:00:00Z"), utc("2026-11-16T17:00:00Z"), holiday)  # from Friday 11-06
    for at in ("2026-11-16T15:05:00Z", "2026-11-16T16:05:00Z", "2026-11-16T17:05:00Z"):  # 9, 10, 11 EST
        assert run(engine, settings, at).anomalies == 0, at
    assert _all(engine) == []


def test_pennies_never_alert_however_far_above_their_usual(traffic, engine, settings):
    flat = lambda local: (Decimal("0.01"), 1)  # noqa: E731 - a flat history of a cent an hour
    traffic(HISTORY_START, utc("2026-11-18T16:00:00Z"), flat, account="penny")
    traffic(utc("2026-11-18T16:00:00Z"), utc("2026-11-18T17:00:00Z"), lambda local: (Decimal("4.50"), 30),
            account="penny")  # 450x, under anomalies.min_usd
    result = run(engine, settings, "2026-11-18T17:05:00Z")
    assert result.anomalies == 0 and _all(engine) == []


def test_a_request_burst_is_flagged_even_when_it_is_cheap(traffic, engine, make_settings):
    settings = make_settings(f'timezone = "{TZ}"\n[anomalies]\nmin_requests = 100\nmin_usd = 50\n')
    traffic(HISTORY_START, utc("2026-11-18T16:00:00Z"))
    traffic(utc("2026-11-18T16:00:00Z"), utc("2026-11-18T17:00:00Z"), lambda local: (Decimal(12), 400))
    run(engine, settings, "2026-11-18T17:05:00Z")
    p = anomalies(engine)["acme"].payload
    assert p["measures"] == ["requests"] and p["requests"] == 400
    assert "a request burst" in alert_sentence(anomalies(engine)["acme"])


def test_the_job_runs_and_a_dry_run_changes_nothing(traffic, engine, settings):
    traffic(HISTORY_START, utc("2026-11-18T17:00:00Z"), spiked(6, range(11, 12)))
    with freeze_time("2026-11-18T17:05:00Z"):
        dry = run_job(registry.get("anomalies"), settings, engine, dry_run=True)
        assert _all(engine) == []
        run_job(registry.get("anomalies"), settings, engine)
    assert any(a["scope_id"] == "acme" for a in dry.stats["anomalies"])
    assert "acme" in anomalies(engine)


def test_bad_anomalies_settings_stop_the_job_command_with_exit_2_naming_the_key(cli, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[anomalies]\nk = -1\n", encoding="utf-8")
    result = cli("jobs", "run", "anomalies", config=config)
    assert result.exit_code == 2 and "anomalies.k" in result.output


def test_a_half_hour_time_zone_learns_the_same_local_hours(traffic, engine, make_settings):
    settings = make_settings('timezone = "Asia/Kolkata"\n')  # UTC+05:30: local hours fall on UTC half hours
    traffic(HISTORY_START, utc("2026-11-18T06:00:00Z"), tz="Asia/Kolkata")
    assert run(engine, settings, "2026-11-18T06:05:00Z").anomalies == 0  # an ordinary Wednesday noon
    traffic(utc("2026-11-18T06:00:00Z"), utc("2026-11-18T07:00:00Z"),
            lambda local: (Decimal(60), 40), account="acme", service="batch", tz="Asia/Kolkata")
    run(engine, settings, "2026-11-18T07:05:00Z")
    assert "acme" in anomalies(engine)
