"""Tiered budgets, windows that reset, system thresholds, the kill switch and the gate,
on SQLite and PostgreSQL. Usage goes into the ledger through the real ingest path;
time is frozen through ``worker.clock.now()``; jobs run through ``run_job``."""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import orjson
import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, event, func, select, text

from tests.helpers import PRICES, alert_sentence, ingest, record, run_together, utc
from reports import messages, outbox
from worker.alerts import state as alerts
from worker.limits.accounts import set_account
from worker.limits.killswitch import kill_switch
from worker.limits import budgets, killswitch, sync
from worker import clock
from worker import gate as gate_mod
from worker.gate import REASONS, Gate, windows as gate_windows
from worker.models import UNATTRIBUTED, Alert, JobRun, LimitWindow, Notification
from worker.registry import registry
from worker.scheduler import Daemon, run_job
from worker.settings import Settings, SettingsError

TIERS = """
timezone = "Europe/Berlin"
default_tier = "student"

[tiers.student]
daily_tokens = 10000
daily_cost_usd = "0.05"
action = "warn"

[tiers.lesson_builder]
daily_tokens = 100000
daily_cost_usd = "0.50"
action = "block"

[tiers.admin]
daily_tokens = 500000
daily_cost_usd = "2.50"
action = "alert"

[tiers.super_admin]
daily_cost_usd = "50"
action = "alert"
warn_at = [1.0]

[tiers.api]
requests_per_minute = 3
requests_per_hour = 5
action = "block"

[tiers.monthly]
monthly_tokens = 1000
action = "block"
""" + PRICES

ACCOUNTS = {"st-1": "student", "lb-1": "lesson_builder", "ad-1": "admin", "sa-1": "super_admin",
            "api-1": "api", "mo-1": "monthly"}


@pytest.fixture
def settings(make_settings, engine) -> Settings:
    s = make_settings(TIERS)
    from worker.limits.accounts import set_account

    for account, tier in ACCOUNTS.items():
        set_account(engine, s, account, tier=tier)
    return s


def feed(settings: Settings, engine: Engine, tmp_path: Path, account: str | None, at: datetime, *,
         tokens: int = 1000, cost: str = "0.001", n: int = 1) -> None:
    """n calls of ``tokens`` tokens and ``cost`` USD each, ingested through the real path."""
    ingest(settings, engine, tmp_path, [record(at - timedelta(seconds=i), account=account, prompt=tokens,
                                               completion=0, cost=cost) for i in range(n)])


def run(settings: Settings, engine: Engine, job: str) -> dict[str, Any]:
    result = run_job(registry.get(job), settings, engine)
    assert result is not None and result.status == "success", result.error if result else None
    return result.stats


def gate(settings: Settings, engine: Engine, account: str | None):
    return Gate(settings, engine).check(account)


def account_alerts(engine: Engine, kind: str = "budget.account") -> dict[tuple[str, str], Any]:
    with engine.connect() as conn:
        return {(a.scope_id, a.period): a for a in conn.execute(select(Alert).where(Alert.kind == kind))}


def windows(engine: Engine, account: str, kind: str | None = None) -> list[Any]:
    query = select(LimitWindow).where(LimitWindow.account_id == account).order_by(LimitWindow.window_start)
    if kind:
        query = query.where(LimitWindow.kind == kind)
    with engine.connect() as conn:
        return list(conn.execute(query))


# --------------------------------------------------------------------------- each tier's action


@freeze_time("2026-11-23T10:00:00Z")
def test_each_tier_acts_on_its_daily_budget(settings, engine, tmp_path) -> None:
    now = utc("2026-11-23T10:00:00Z")
    feed(settings, engine, tmp_path, "st-1", now, tokens=6000, n=2)  # 12,000 of 10,000: soft limit
    feed(settings, engine, tmp_path, "lb-1", now, tokens=60000, n=2)  # 120,000 of 100,000: hard limit
    feed(settings, engine, tmp_path, "ad-1", now, tokens=300000, n=2)  # 600,000 of 500,000: alert only
    feed(settings, engine, tmp_path, "sa-1", now, tokens=1000, cost="30", n=2)  # $60 of $50; tokens unlimited
    stats = run(settings, engine, "budgets")
    assert stats["blocked"] == 1

    found = account_alerts(engine)
    over = {acc: found[(acc, "day 2026-11-23 100%")] for acc in ("st-1", "lb-1", "ad-1", "sa-1")}
    assert {acc: a.severity for acc, a in over.items()} == {
        "st-1": "warning", "lb-1": "critical", "ad-1": "warning", "sa-1": "warning"}
    assert "soft limit" in alert_sentence(over["st-1"])
    assert "blocked" in alert_sentence(over["lb-1"])
    assert "alert only" in alert_sentence(over["ad-1"])
    assert "$60.0000 of $50.0000" in alert_sentence(over["sa-1"])
    assert ("sa-1", "day 2026-11-23 80%") not in found  # super_admin warns only at 100% (warn_at = [1.0])

    decisions = {acc: gate(settings, engine, acc) for acc in ("st-1", "lb-1", "ad-1", "sa-1")}
    assert {acc: (d.can_call, d.reason) for acc, d in decisions.items()} == {
        "st-1": (True, "over_soft_limit"), "lb-1": (False, "blocked"), "ad-1": (True, "over_soft_limit"),
        "sa-1": (True, "over_soft_limit")}
    berlin_midnight = utc("2026-11-23T23:00:00Z")
    assert decisions["lb-1"].reset_at == berlin_midnight
    assert decisions["lb-1"].remaining_tokens == 0
    assert decisions["sa-1"].remaining_tokens is None  # unlimited is None, never 0

    [lb_day] = windows(engine, "lb-1", "day")
    assert (lb_day.state, lb_day.blocked_until, lb_day.used_tokens) == ("blocked", berlin_midnight, 120000)
    assert {w.state for w in windows(engine, "st-1", "day")} == {"warned"}
    # $60 of the day also crossed the system's warning ($10) and critical ($50) thresholds
    [system] = account_alerts(engine, "budget.system").values()
    assert (system.severity, system.period, system.payload["cost_usd"]) == ("critical", "2026-11-23", "60.0060000000")


@freeze_time("2026-11-23T10:00:00Z")
def test_a_hard_limit_refuses_calls_before_the_budgets_job_runs(settings, engine) -> None:
    g = Gate(settings, engine)
    assert g.check("lb-1").reason == "ok"
    decision = g.record("lb-1", tokens=99_999, cost_usd="0.10")
    assert (decision.can_call, decision.remaining_tokens) == (True, 1)
    decision = g.record("lb-1", tokens=1)
    assert (decision.can_call, decision.reason, decision.remaining_tokens) == (False, "budget_exhausted", 0)
    assert decision.reset_at == utc("2026-11-23T23:00:00Z")


# --------------------------------------------------------------------------- warning levels


def test_warning_levels_fire_once_each_per_window(settings, engine, tmp_path) -> None:
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, "lb-1", utc("2026-11-23T09:00:00Z"), tokens=85000)
        for _ in range(3):
            run(settings, engine, "budgets")
        assert set(account_alerts(engine)) == {("lb-1", "day 2026-11-23 80%")}
        first = account_alerts(engine)[("lb-1", "day 2026-11-23 80%")]
        with engine.begin() as conn:
            assert alerts.resolve_alert(conn, settings, first.id)  # an operator closes it
        run(settings, engine, "budgets")
        assert account_alerts(engine)[("lb-1", "day 2026-11-23 80%")].state == "resolved"  # not raised again

        feed(settings, engine, tmp_path, "lb-1", utc("2026-11-23T09:30:00Z"), tokens=20000)
        run(settings, engine, "budgets")
        run(settings, engine, "budgets")
        assert set(account_alerts(engine)) == {("lb-1", "day 2026-11-23 80%"), ("lb-1", "day 2026-11-23 100%")}
    with freeze_time("2026-11-24T10:00:00Z"):  # a new window: its levels fire again
        feed(settings, engine, tmp_path, "lb-1", utc("2026-11-24T09:00:00Z"), tokens=90000)
        run(settings, engine, "budgets")
        run(settings, engine, "budgets")
        assert ("lb-1", "day 2026-11-24 80%") in account_alerts(engine)
        assert len(account_alerts(engine)) == 3
    with engine.connect() as conn:  # one message per level, none for the repeats (the resolve sent one)
        keys = conn.execute(select(Notification.key).where(Notification.kind == "budget.account")).scalars().all()
    assert len([k for k in keys if "resolved" not in k]) == 3


def test_a_jump_past_several_levels_raises_the_highest_only(settings, engine, tmp_path) -> None:
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, "lb-1", utc("2026-11-23T09:00:00Z"), tokens=150000)
        run(settings, engine, "budgets")
    assert set(account_alerts(engine)) == {("lb-1", "day 2026-11-23 100%")}


@freeze_time("2026-11-23T09:00:00Z")  # 10:00 in Berlin: 10 of 24 hours gone
def test_a_pace_that_would_cross_a_hard_limit_warns_early(settings, engine, tmp_path) -> None:
    from worker.limits.accounts import set_account

    set_account(engine, settings, "lb-2", tier="lesson_builder")
    feed(settings, engine, tmp_path, "lb-1", utc("2026-11-23T08:00:00Z"), tokens=50000)  # 50%: 100% by ~20:00
    feed(settings, engine, tmp_path, "lb-2", utc("2026-11-23T08:00:00Z"), tokens=20000)  # 20%: ~50% at midnight
    feed(settings, engine, tmp_path, "st-1", utc("2026-11-23T08:00:00Z"), tokens=5000)  # soft limits are not projected
    run(settings, engine, "budgets")
    run(settings, engine, "budgets")
    projected = account_alerts(engine, "budget.projected")
    assert set(projected) == {("lb-1", "day 2026-11-23")}
    message = alert_sentence(projected[("lb-1", "day 2026-11-23")])
    assert message.startswith("projected overrun") and "2026-11-23 20:00 CET" in message, message


# --------------------------------------------------------------------------- resets


@pytest.mark.parametrize("day_start, reset, hours", [
    ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 25),  # clocks go back: a 25-hour day
    ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 23),  # clocks go forward: 23 hours
])
def test_a_blocked_day_resets_at_local_midnight_across_a_dst_change(settings, engine, tmp_path, day_start,
                                                                     reset, hours) -> None:
    start, reset_at = utc(day_start), utc(reset)
    assert reset_at - start == timedelta(hours=hours)
    with freeze_time(start + timedelta(hours=12)) as frozen:
        feed(settings, engine, tmp_path, "lb-1", start + timedelta(hours=11), tokens=150000)
        run(settings, engine, "budgets")
        [day] = windows(engine, "lb-1", "day")
        assert (day.window_start, day.reset_at, day.state) == (start, reset_at, "blocked")

        frozen.move_to(reset_at - timedelta(seconds=1))
        run(settings, engine, "limits")
        assert gate(settings, engine, "lb-1").reason == "blocked"

        frozen.move_to(reset_at + timedelta(seconds=5))
        # the gate never waits for the job: an expired window counts as reset
        assert gate(settings, engine, "lb-1").reason == "ok"
        stats = run(settings, engine, "limits")
        assert stats["closed"] >= 1
        [old] = windows(engine, "lb-1", "day")  # the new day has no usage: no window is made for it
        assert (old.window_start, old.state, old.used_tokens, old.closed_at is not None) == (
            start, "blocked", 150000, True)  # kept as history
        with engine.connect() as conn:  # the gate reads the missing window as the new, empty day
            [new] = [v for v in gate_windows(conn, settings, "lb-1", clock.now()) if v.kind == "day"]
        assert (new.window_start, new.state, new.used_tokens, new.stored) == (reset_at, "ok", 0, False)
        assert new.reset_at - new.window_start == timedelta(hours=24)
        run(settings, engine, "budgets")
        assert gate(settings, engine, "lb-1").can_call


def test_a_monthly_budget_resets_at_local_month_end(settings, engine, tmp_path) -> None:
    with freeze_time("2026-11-30T22:59:00Z") as frozen:  # 23:59 on 30 November in Berlin
        feed(settings, engine, tmp_path, "mo-1", utc("2026-11-02T12:00:00Z"), tokens=600)
        feed(settings, engine, tmp_path, "mo-1", utc("2026-11-30T22:00:00Z"), tokens=600)
        run(settings, engine, "summaries")  # most of the month is read from the summaries
        run(settings, engine, "budgets")
        decision = gate(settings, engine, "mo-1")
        assert (decision.can_call, decision.reason, decision.reset_at) == (
            False, "blocked", utc("2026-11-30T23:00:00Z"))
        [month] = windows(engine, "mo-1", "month")
        assert (month.period, month.used_tokens) == ("2026-11", 1200)

        frozen.move_to("2026-11-30T23:00:30Z")  # 00:00:30 on 1 December in Berlin
        run(settings, engine, "budgets")
        assert gate(settings, engine, "mo-1").reason == "ok"
        [old] = windows(engine, "mo-1", "month")  # December has no usage yet: no window for it
        with engine.connect() as conn:
            [new] = [v for v in gate_windows(conn, settings, "mo-1", clock.now()) if v.kind == "month"]
        assert (old.period, old.state, new.period, new.state, new.used_tokens, new.stored) == (
            "2026-11", "blocked", "2026-12", "ok", 0, False)
        assert new.reset_at == utc("2026-12-31T23:00:00Z")


@freeze_time("2026-11-23T10:00:10Z")
def test_request_limits_per_minute_and_hour(settings, engine) -> None:
    g = Gate(settings, engine)
    for _ in range(3):
        assert g.check("api-1").can_call
        g.record("api-1")
    decision = g.check("api-1")
    assert (decision.can_call, decision.reason, decision.reset_at) == (
        False, "rate_limited", utc("2026-11-23T10:01:00Z"))
    with freeze_time("2026-11-23T10:01:05Z"):
        decision = g.check("api-1")
        assert (decision.can_call, decision.remaining_requests) == (True, 2)  # min(3 a minute, 5 - 3 this hour)
        g.record("api-1", requests=2)
        decision = g.check("api-1")
        assert (decision.reason, decision.reset_at) == ("rate_limited", utc("2026-11-23T11:00:00Z"))


def test_a_reset_racing_increments_loses_nothing(settings, engine) -> None:
    g = Gate(settings, engine)
    with freeze_time("2026-11-23T10:00:30Z") as frozen:
        for _ in range(20):
            g.record("st-1")
        g.record("api-1")  # a second account, with minute and hour windows too
        run(settings, engine, "limits")
        frozen.move_to("2026-11-24T00:00:10Z")  # past Berlin midnight: the day windows expired

        def roll() -> Any:
            with engine.begin() as conn:
                return sync.sync(conn, settings, utc("2026-11-24T00:00:10Z"))

        def calls() -> None:
            for _ in range(25):
                g.record("st-1")

        results = run_together([roll, roll, calls, calls, calls, calls])
    days = windows(engine, "st-1", "day")
    assert [(w.period, w.used_requests) for w in days] == [("2026-11-23", 20), ("2026-11-24", 100)]
    assert days[0].closed_at is not None and days[1].closed_at is None
    # st-1's day, api-1's day, minute and hour: each closed exactly once between the two syncs
    assert sum(r.closed for r in results[:2]) == 4
    with engine.connect() as conn:
        per_start = conn.execute(select(LimitWindow.account_id, LimitWindow.kind, LimitWindow.window_start,
                                        func.count()).group_by(LimitWindow.account_id, LimitWindow.kind,
                                                               LimitWindow.window_start)).all()
    assert all(n == 1 for *_, n in per_start)


@freeze_time("2026-11-23T23:00:05Z")
def test_two_replicas_roll_the_same_windows_over_once(settings, engine, tmp_path) -> None:
    with freeze_time("2026-11-23T12:00:00Z"):
        feed(settings, engine, tmp_path, "lb-1", utc("2026-11-23T11:00:00Z"), tokens=150000)
        run(settings, engine, "budgets")

    def roll() -> Any:
        with engine.begin() as conn:
            return sync.sync(conn, settings, utc("2026-11-23T23:00:05Z"))

    first, second = run_together([roll, roll])
    assert first.closed + second.closed == 1  # lb-1's blocked day; the empty ones are dropped, once
    assert [w.state for w in windows(engine, "lb-1", "day")] == ["blocked"]  # no window for an idle day
    assert gate(settings, engine, "lb-1").can_call


# --------------------------------------------------------------------------- system thresholds and the kill switch


def test_system_thresholds_escalate_and_the_kill_switch_holds_until_cleared(settings, engine, tmp_path, cli) -> None:
    config = tmp_path / "cli.toml"
    config.write_text(TIERS, encoding="utf-8")
    with freeze_time("2026-11-23T10:00:00Z"):
        at = utc("2026-11-23T09:00:00Z")
        seen = []
        for cost in ("12", "48", "190"):  # the day's total: $12, $60, $250
            feed(settings, engine, tmp_path, None, at, cost=cost)
            stats = run(settings, engine, "budgets")
            seen.append((stats["system_severity"], stats["kill_switch"]))
        assert seen == [("warning", False), ("critical", False), ("emergency", True)]
        [system] = account_alerts(engine, "budget.system").values()
        assert system.severity == "emergency" and "kill switch is on" in alert_sentence(system)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Notification)
                                .where(Notification.alert_id == system.id)).scalar() == 3  # new, escalated twice

        for account in ("st-1", "sa-1", UNATTRIBUTED, None):
            decision = gate(settings, engine, account)
            assert (decision.can_call, decision.reason) == (False, "kill_switch")
        status = orjson.loads(cli("killswitch", "status", "--format", "json", config=config).stdout)
        assert status["active"] and status["changed_by"] == "budgets" and status["system_cost_usd"] == "250.0000000000"
        overall = orjson.loads(cli("status", "--format", "json", config=config).stdout)
        assert overall["kill_switch"]["active"] is True and "emergency threshold" in overall["kill_switch"]["reason"]

        result = cli("killswitch", "clear", config=config)
        assert result.exit_code == 0 and "not set again automatically for 2026-11-23" in result.stdout
        run(settings, engine, "budgets")  # the same day: stays off, the operator decided
        assert gate(settings, engine, "st-1").can_call
        assert cli("killswitch", "clear", config=config).exit_code == 1  # not on

        assert cli("killswitch", "on", "--reason", "provider incident", config=config).exit_code == 0
        decision = gate(settings, engine, "st-1")
        assert (decision.reason, "provider incident" in decision.detail) == ("kill_switch", True)
        assert cli("killswitch", "clear", config=config).exit_code == 0
    with freeze_time("2026-11-24T10:00:00Z"):  # a new day over the emergency threshold trips it again
        feed(settings, engine, tmp_path, None, utc("2026-11-24T09:00:00Z"), cost="201")
        assert run(settings, engine, "budgets")["kill_switch"] is True
        assert gate(settings, engine, "st-1").reason == "kill_switch"


def test_unattributed_usage_is_reported_and_never_blocked(make_settings, engine, tmp_path) -> None:
    settings = make_settings(TIERS.replace('default_tier = "student"', 'default_tier = "lesson_builder"'))
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, None, utc("2026-11-23T09:00:00Z"), tokens=400000, n=3)
        feed(settings, engine, tmp_path, "new-user", utc("2026-11-23T09:00:00Z"), tokens=400000)
        run(settings, engine, "budgets")
        for account in (UNATTRIBUTED, None):
            decision = gate(settings, engine, account)
            assert (decision.can_call, decision.reason, decision.remaining_tokens) == (True, "ok", None)
        [day] = windows(engine, UNATTRIBUTED, "day")
        assert (day.used_requests, day.used_tokens, day.tier, day.state) == (3, 1200000, None, "ok")
        # an account new to tokentally gets windows from default_tier (a real limit, never 0 or missing)
        [new_day] = windows(engine, "new-user", "day")
        assert (new_day.tier, new_day.limit_tokens, new_day.state) == ("lesson_builder", 100000, "blocked")
    assert {scope for scope, _ in account_alerts(engine)} == {"new-user"}


# --------------------------------------------------------------------------- the gate


def test_the_gate_gives_every_reason(settings, engine, tmp_path) -> None:
    g = Gate(settings, engine)
    seen = {}
    with freeze_time("2026-11-23T10:00:00Z"):
        seen["ok"] = g.check("ad-1")
        seen["over_soft_limit"] = g.record("st-1", tokens=10_000)
        seen["budget_exhausted"] = g.record("lb-1", tokens=100_000)
        run(settings, engine, "budgets")
        seen["blocked"] = g.check("lb-1")
        for _ in range(3):
            g.record("api-1")
        seen["rate_limited"] = g.check("api-1")
        with engine.begin() as conn:
            killswitch.trip(conn, utc("2026-11-23T10:00:00Z"), period="2026-11-23", by="operator:test", reason="drill")
        seen["kill_switch"] = g.check("ad-1")
    assert set(seen) == set(REASONS)
    for reason, decision in seen.items():
        assert decision.reason == reason
        assert decision.can_call is (reason in ("ok", "over_soft_limit")), reason
    assert seen["ok"].remaining_tokens == 500000 and seen["ok"].remaining_cost_usd == Decimal("2.50")
    assert seen["over_soft_limit"].remaining_tokens == 0
    assert seen["blocked"].reset_at == utc("2026-11-23T23:00:00Z")


@freeze_time("2026-11-23T10:00:00Z")
def test_record_inside_the_callers_transaction_counts_only_if_it_commits(settings, engine) -> None:
    from sqlalchemy.orm import Session

    g = Gate(settings, engine)
    with Session(engine) as session:
        assert g.record("st-1", tokens=400, session=session).remaining_tokens == 9600  # seen inside
        session.rollback()
    assert g.check("st-1").remaining_tokens == 10000
    with Session(engine) as session, session.begin():
        g.record("st-1", tokens=400, session=session)
    assert g.check("st-1").remaining_tokens == 9600


def test_a_tier_change_applies_to_the_current_windows_at_once(settings, engine, tmp_path, cli) -> None:
    config = tmp_path / "cli.toml"
    config.write_text(TIERS, encoding="utf-8")
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, "lb-1", utc("2026-11-23T09:00:00Z"), tokens=150000)
        run(settings, engine, "budgets")
        assert gate(settings, engine, "lb-1").reason == "blocked"
        result = cli("accounts", "set", "lb-1", "--tier", "admin", "--format", "json", config=config)
        assert result.exit_code == 0, result.output
        assert orjson.loads(result.stdout)["unblocked"] == 1
        decision = gate(settings, engine, "lb-1")
        assert (decision.can_call, decision.tier, decision.remaining_tokens) == (True, "admin", 350000)
        [day] = windows(engine, "lb-1", "day")
        assert (day.tier, day.action, day.limit_tokens, day.state) == ("admin", "alert", 500000, "ok")  # 30%: under every level

        assert cli("accounts", "set", "lb-1", "--tier", "platinum", config=config).exit_code == 1

        shown = orjson.loads(cli("limits", "show", "lb-1", "--format", "json", config=config).stdout)
        assert shown["tier"] == "admin" and shown["decision"]["can_call"] is True
        assert [(w["kind"], w["used_tokens"], w["limit_tokens"]) for w in shown["windows"]] == [
            ("day", 150000, 500000), ("month", 150000, None)]
        table = cli("limits", "show", "lb-1", config=config).stdout
        assert "150,000 / 500,000" in table and "gate: can call" in table

        feed(settings, engine, tmp_path, "st-1", utc("2026-11-23T09:00:00Z"), tokens=9000)
        run(settings, engine, "budgets")
        listed = orjson.loads(cli("limits", "list", "--warned", "--format", "json", config=config).stdout)
        assert [(r["account_id"], r["used_pct"], r["state"]) for r in listed] == [("st-1", 90.0, "warned")]
        assert cli("limits", "list", "--kind", "week", config=config).exit_code == 1


def test_the_account_limits_view_for_apps_in_other_languages(settings, engine) -> None:
    """The view reads the database's own clock, so this test runs in real time."""
    g = Gate(settings, engine)
    g.record("lb-1", tokens=100_000, cost_usd="0.1234567891")
    g.record("st-1", tokens=10)
    query = text("SELECT account_id, kind, used_tokens, remaining_tokens, used_cost_usd, remaining_cost_usd, "
                 "can_call, kill_switch FROM account_limits ORDER BY account_id, kind")
    with engine.connect() as conn:
        rows = {(r.account_id, r.kind): r for r in conn.execute(query)}
    lb = rows[("lb-1", "day")]
    assert (lb.used_tokens, lb.remaining_tokens, bool(lb.can_call), bool(lb.kill_switch)) == (100000, 0, False, False)
    assert Decimal(str(lb.used_cost_usd)) == Decimal("0.1234567891")  # exact on both databases
    assert Decimal(str(lb.remaining_cost_usd)) == Decimal("0.3765432109")
    st = rows[("st-1", "day")]
    assert (st.remaining_tokens, bool(st.can_call)) == (9990, True)
    assert rows[("lb-1", "month")].remaining_tokens is None  # not limited
    with engine.begin() as conn:
        from worker import clock

        killswitch.trip(conn, clock.now(), period="x", by="operator:test", reason="drill")
    with engine.connect() as conn:
        assert {bool(r.can_call) for r in conn.execute(query)} == {False}


# --------------------------------------------------------------------------- the daemon and settings


def test_the_daemon_runs_budgets_right_after_each_ingest(settings, engine) -> None:
    daemon = Daemon(settings, engine)
    daemon.setup()
    daemon._fire("ingest")
    with engine.connect() as conn:
        runs = conn.execute(select(JobRun.job, JobRun.trigger, JobRun.status).order_by(JobRun.id)).all()
    assert [tuple(r) for r in runs] == [("ingest", "schedule", "success"), ("budgets", "after:ingest", "success")]
    daemon._fire("ingest")  # the same tick again (another replica's fire): claimed, nothing runs twice
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(JobRun)).scalar() == 2


@pytest.mark.parametrize("toml, key", [
    ('[tiers.free]\ndaily_cost_usd = "0"', "tiers.free.daily_cost_usd"),
    ('[tiers.free]\ndaily_tokens = 0', "tiers.free.daily_tokens"),
    ('[budgets]\nsystem_warning_usd = "100"', "budgets.system_warning_usd"),
    ('[budgets]\nsystem_critical_usd = "-1"', "budgets.system_critical_usd"),
    ('[budgets]\nkeep_rate_windows = "forever"', "budgets.keep_rate_windows"),
])
def test_bad_budget_settings_name_the_key(make_settings, toml, key) -> None:
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        make_settings(toml)


def test_a_threshold_can_be_turned_off(make_settings) -> None:
    settings = make_settings('[budgets]\nsystem_emergency_usd = "off"\nsystem_warning_usd = 5')
    assert budgets.thresholds(settings) == [("warning", Decimal(5)), ("critical", Decimal(50))]


# --------------------------------------------------------------------------- a broken template decides nothing


@pytest.fixture
def broken_alert_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The templates, copied, with email/alert.txt.j2 broken; the Jinja environment reads the copy."""
    copy = tmp_path / "templates"
    shutil.copytree(messages.TEMPLATES, copy)
    (copy / "email" / "alert.txt.j2").write_text("{% if alert %}never closed\n", encoding="utf-8")
    monkeypatch.setattr(messages.ENV, "loader", jinja2.FileSystemLoader(copy))
    messages.ENV.cache.clear()
    yield copy
    messages.ENV.cache.clear()


@freeze_time("2026-11-23T10:00:00Z")
def test_a_broken_alert_template_rolls_back_no_block_and_the_fallback_hears_in_plain_text(
        make_settings, engine, tmp_path, broken_alert_template) -> None:
    settings = make_settings(TIERS + f'\n[channels.file]\ndir = "{tmp_path / "out"}"\n'
                             '[[routes]]\nkinds = ["budget.*"]\nto = ["file:ops"]\n')
    set_account(engine, settings, "lb-1", tier="lesson_builder")
    feed(settings, engine, tmp_path, "lb-1", utc("2026-11-23T09:00:00Z"), tokens=150000, cost="250")
    stats = run(settings, engine, "budgets")
    assert stats["blocked"] == 1 and stats["system_severity"] == "emergency" and stats["kill_switch"]
    assert [w.state for w in windows(engine, "lb-1", "day")] == ["blocked"]
    with engine.connect() as conn:
        assert kill_switch(conn) is not None
    kinds = {a.kind for a in account_alerts(engine, "budget.account").values()} | \
        {a.kind for a in account_alerts(engine, "budget.system").values()}
    assert kinds == {"budget.account", "budget.system"}

    first = outbox.deliver_pending(engine, settings)
    assert first.sent == 0 and first.failed >= 2
    with engine.connect() as conn:
        budget_rows = conn.execute(select(Notification).where(Notification.kind.like("budget.%"))).all()
    assert budget_rows and all(r.status == "failed" for r in budget_rows)
    assert all("could not render" in r.last_error and "email/alert.txt.j2" in r.last_error for r in budget_rows)

    # one delivery.failed alert for the target file:ops that day (the second failure only updates it)
    second = outbox.deliver_pending(engine, settings)
    assert second.sent == 1 and second.failed == 0
    [written] = (tmp_path / "out" / "delivery-failed").iterdir()
    mail = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert mail["Subject"] == "[tokentally] delivery failed: file:ops"
    text = mail.get_body(("plain",)).get_content()
    assert "the template of this alert could not be rendered either" in text
    assert "could not be delivered" in text and "could not render the message" in text
    assert "email/alert.txt.j2" in text


@freeze_time("2026-11-23T10:00:00Z")
def test_deciding_for_many_accounts_at_once_says_what_deciding_for_each_says(settings, engine, tmp_path) -> None:
    now = utc("2026-11-23T10:00:00Z")
    feed(settings, engine, tmp_path, "st-1", now, tokens=6000, n=2)  # soft limit
    feed(settings, engine, tmp_path, "lb-1", now, tokens=60000, n=2)  # blocked
    feed(settings, engine, tmp_path, None, now, tokens=500)  # unattributed: never limited
    run(settings, engine, "budgets")
    g = Gate(settings, engine)
    for _ in range(3):
        g.record("api-1")  # the minute's 3 requests used up
    accounts = ["st-1", "lb-1", "api-1", "mo-1", UNATTRIBUTED, "never-seen"]
    sent: list[str] = []
    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", lambda *args: sent.append(args[2]))
        many = gate_mod.decide_many(conn, settings, accounts, now)
        asked = len(sent)
        one_by_one = {a: gate_mod.decide(conn, settings, a, now) for a in accounts}
    assert asked <= 4  # the stored budgets, the accounts, their windows, the switch: not one query each
    assert many == one_by_one  # read_many's states decide as each account's own read does
    assert {a: d.reason for a, d in many.items()} == {
        "st-1": "over_soft_limit", "lb-1": "blocked", "api-1": "rate_limited", "mo-1": "ok",
        UNATTRIBUTED: "ok", "never-seen": "ok"}
    with engine.begin() as conn:
        killswitch.trip(conn, now, period="2026-11-23", by="operator:test", reason="stop")
    with engine.connect() as conn:
        assert {d.reason for d in gate_mod.decide_many(conn, settings, accounts, now).values()} == {"kill_switch"}
        assert gate_mod.decide_many(conn, settings, [], now) == {}
