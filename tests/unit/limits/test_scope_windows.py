"""Scope budgets' windows in local time (DST, week and month ends, rolling windows), scope strings,
the scopes of a call, and the settings' [budgets."<scope>"] tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from worker.limits.scope_windows import budget_kinds, budget_windows, call_scopes, scope_bounds, window_name
from worker.settings import ScopeBudget, SettingsError, load
from worker.settings.scopes import ScopeError, check_budget, parse_every, parse_scope

NY = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_day_window_is_25_hours_on_the_night_the_clocks_go_back() -> None:
    b = scope_bounds("day", at("2026-11-01T12:00:00-05:00"), NY)
    assert b.period == "2026-11-01"
    assert b.start == at("2026-11-01T00:00:00-04:00")
    assert b.reset_at == at("2026-11-02T00:00:00-05:00")
    assert b.reset_at - b.start == timedelta(hours=25)


def test_a_week_runs_monday_to_monday_local_across_dst() -> None:
    b = scope_bounds("week", at("2026-11-04T09:00:00-05:00"), NY)  # a Wednesday
    assert b.period == "2026-W45"
    assert b.start == at("2026-11-02T00:00:00-05:00")
    assert b.reset_at == at("2026-11-09T00:00:00-05:00")
    spring = scope_bounds("week", at("2026-03-10T09:00:00-04:00"), NY)  # the week of 2026-03-08's change
    assert spring.start == at("2026-03-09T00:00:00-04:00")
    before = scope_bounds("week", at("2026-03-08T09:00:00-04:00"), NY)  # Sunday 8 March: clocks went forward
    assert before.start == at("2026-03-02T00:00:00-05:00")
    assert before.reset_at - before.start == timedelta(days=7, hours=-1)


def test_a_month_ends_at_local_midnight_and_the_next_one_starts_there() -> None:
    last = scope_bounds("month", at("2026-11-30T23:59:00-05:00"), NY)
    first = scope_bounds("month", at("2026-12-01T00:00:00-05:00"), NY)
    assert (last.period, first.period) == ("2026-11", "2026-12")
    assert last.reset_at == first.start == at("2026-12-01T00:00:00-05:00")
    assert last.start == at("2026-11-01T00:00:00-04:00")  # October's DST still on at the start


def test_a_rolling_window_steps_from_its_start_in_local_days() -> None:
    budget = check_budget(ScopeBudget("service:chat", every_days=7, start=date(2026, 10, 29), cost_usd=Decimal(5)))
    assert scope_bounds("every", at("2026-10-28T23:00:00-04:00"), NY, budget) is None  # not begun
    one = scope_bounds("every", at("2026-11-04T23:59:00-05:00"), NY, budget)
    assert one.period == "2026-10-29+7d"
    assert one.start == at("2026-10-29T00:00:00-04:00")
    assert one.reset_at == at("2026-11-05T00:00:00-05:00")  # across the DST change: 7 days and 1 hour
    two = scope_bounds("every", at("2026-11-05T00:00:00-05:00"), NY, budget)
    assert two.start == one.reset_at and two.period == "2026-11-05+7d"
    assert window_name("every", two.period) == "7-day"


def test_a_budget_keeps_the_windows_it_limits() -> None:
    budget = check_budget(ScopeBudget("tenant:a", daily_tokens=10, monthly_cost_usd=Decimal(1)))
    assert budget_kinds(budget) == ("day", "month")
    assert [b.kind for b in budget_windows(budget, at("2026-11-15T12:00:00Z"), NY)] == ["day", "month"]


@pytest.mark.parametrize("text", ["tenant", "tenant:", "team:a", "member:alice", "member:@t", "member:a@",
                                  "service: chat", "model:" + "x" * 400, ":x"])
def test_a_bad_scope_string_is_refused_saying_what_a_scope_looks_like(text: str) -> None:
    with pytest.raises(ScopeError) as err:
        parse_scope(text)
    assert repr(text)[:30] in str(err.value) or text[:30] in str(err.value)  # it names what was given


def test_scopes_parse_with_their_parts() -> None:
    assert parse_scope("member:alice@school-a").member == ("alice", "school-a")
    assert parse_scope("member:a@b@school-a").member == ("a@b", "school-a")  # the tenant is after the last @
    assert parse_scope("model:gpt-4o").label == "model gpt-4o"
    assert parse_every("2w") == 14
    with pytest.raises(ScopeError):
        parse_every("12h")


def test_a_call_falls_under_its_tenants_membership_service_model_project_and_key() -> None:
    assert call_scopes("alice", "school-a", None, "chat", "gpt-4o", "p1", "k1") == [
        "tenant:school-a", "member:alice@school-a", "service:chat", "model:gpt-4o", "project:p1", "key:k1"]
    assert call_scopes("alice", "school-a", "school-b") == [
        "tenant:school-b", "member:alice@school-b", "tenant:school-a", "member:alice@school-a"]
    assert call_scopes("(unattributed)", None, "t") == ["tenant:t"]


@pytest.mark.parametrize("budget, words", [
    (ScopeBudget("tenant:a"), "no limit given"),
    (ScopeBudget("tenant:a", daily_cost_usd=Decimal(0)), "more than 0"),
    (ScopeBudget("tenant:a", tokens=5), "give every"),
    (ScopeBudget("tenant:a", every_days=7, cost_usd=Decimal(1)), "needs every, start"),
    (ScopeBudget("tenant:a", daily_tokens=5, action="stop"), "action"),
])
def test_a_budget_that_cannot_be_is_refused(budget: ScopeBudget, words: str) -> None:
    with pytest.raises(ScopeError, match=words):
        check_budget(budget)


def test_settings_read_scope_tables_beside_the_system_thresholds(tmp_path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[budgets]\nsystem_warning_usd = "5"\n\n[budgets."tenant:school-a"]\nmonthly_cost_usd = "500"\n'
                    'action = "block"\nwarn_at = [0.5, 1.0]\n\n[budgets."service:chat"]\nevery = "7d"\n'
                    'start = 2026-11-02\ncost_usd = "40"\n', encoding="utf-8")
    s = load(path, env={})
    assert s.budgets.system_warning_usd == Decimal(5)
    assert s.scope_budgets["tenant:school-a"].monthly_cost_usd == Decimal(500)
    assert s.scope_budgets["tenant:school-a"].warn_at == (0.5, 1.0)
    assert s.scope_budgets["service:chat"].every_days == 7
    assert s.scope_budgets["service:chat"].start == date(2026, 11, 2)


@pytest.mark.parametrize("table, words", [
    ('[budgets."team:x"]\ndaily_tokens = 5\n', "unknown scope kind 'team'"),
    ('[budgets."tenant:x"]\ndaily_tokns = 5\n', "daily_tokns"),
    ('[budgets."tenant:x"]\nevery = "7d"\ncost_usd = "1"\n', "needs every, start"),
    ('[budgets."tenant:x"]\nevery = "7d"\nstart = "soon"\ncost_usd = "1"\n', "start"),
    ('[budgets.tenant]\ndaily_tokens = 5\n', "is not a scope"),
])
def test_a_bad_scope_table_names_its_key(tmp_path, table: str, words: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(table, encoding="utf-8")
    with pytest.raises(SettingsError, match=words):
        load(path, env={})
