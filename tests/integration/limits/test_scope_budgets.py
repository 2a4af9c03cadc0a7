"""Budgets on scopes, on SQLite and PostgreSQL: the gate refuses a call under a used-up scope and
names it, windows reset at local midnight across DST and month ends with nothing carried over, a
budget changed applies at once (in another process's gate too), ingest's scope marks drive the
limits job, and the budgets job raises budget.scope alerts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from freezegun import freeze_time
from sqlalchemy import Engine, select

from tests.helpers import PRICES, alert_sentence, ingest, record, utc
from worker.gate import Gate
from worker.limits import scopes
from worker.limits.accounts import set_account
from worker.models import Alert, LimitDirtyScope, ScopeWindow
from worker.registry import registry
from worker.scheduler import run_job
from worker.settings import ScopeBudget, Settings

SETTINGS = """
timezone = "America/New_York"

[[routes]]
kinds = ["budget.*"]
to = ["file:admins"]
""" + PRICES

# house-llm: 1000 prompt + 500 completion tokens cost $0.002


def run(settings: Settings, engine: Engine, job: str) -> dict[str, Any]:
    result = run_job(registry.get(job), settings, engine)
    assert result is not None and result.status == "success", result.error if result else None
    return result.stats


def spend(settings: Settings, engine: Engine, tmp_path, at: datetime, n: int = 1, **fields: Any) -> None:
    ingest(settings, engine, tmp_path, [record(at, **fields) for _ in range(n)])


def set_budget(settings: Settings, engine: Engine, scope: str, **limits: Any) -> dict[str, Any]:
    return scopes.set_budget(engine, settings, ScopeBudget(scope, source="cli", **limits), "test")


def windows(engine: Engine, scope: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(ScopeWindow).where(ScopeWindow.scope == scope)
                                 .order_by(ScopeWindow.kind, ScopeWindow.window_start)))


def test_the_gate_refuses_a_call_under_a_used_up_tenant_budget_and_names_it(make_settings, engine, tmp_path) -> None:
    settings = make_settings(SETTINGS)
    with freeze_time("2026-11-20T15:00:00Z"):
        set_budget(settings, engine, "tenant:school-a", monthly_cost_usd=Decimal("0.005"), action="block")
        spend(settings, engine, tmp_path, utc("2026-11-20T14:00:00Z"), n=3, account="alice", tenant="school-a")
        run(settings, engine, "limits")
        gate = Gate(settings, engine)
        refused = gate.check("alice", tenant_id="school-a")
        assert not refused.can_call and refused.reason == "budget_exhausted"
        assert refused.scope == "tenant:school-a"
        assert refused.detail == "tenant school-a monthly budget, resets 2026-12-01 00:00 EST"
        assert refused.reset_at == utc("2026-12-01T05:00:00Z")
        assert refused.remaining_cost_usd == 0
        # another tenant, or no tenant at all, is not under it
        assert gate.check("alice", tenant_id="school-b").can_call
        assert gate.check("alice").can_call
        # the account's stored tenant counts when the call names none
        set_account(engine, settings, "bob", tenant_id="school-a")
        assert gate.check("bob").scope == "tenant:school-a"
        assert not gate.check("bob").can_call


def test_each_scope_kind_counts_its_own_calls_at_the_gate(make_settings, engine) -> None:
    settings = make_settings(SETTINGS)
    with freeze_time("2026-11-20T15:00:00Z"):
        for scope in ("member:alice@school-a", "service:essays", "model:house-llm", "project:p1", "key:k1"):
            set_budget(settings, engine, scope, daily_tokens=1000, action="block")
        gate = Gate(settings, engine)
        d = gate.record("alice", tokens=1000, tenant_id="school-a", service="essays", model="house-llm",
                        project_id="p1", api_key="k1")
        assert not d.can_call and d.scope == "member:alice@school-a"
        assert d.detail.split("; ") == [
            f"{name} daily budget, resets 2026-11-21 00:00 EST" for name in
            ("member alice@school-a", "service essays", "model house-llm", "project p1", "key k1")]
        # each scope alone refuses the calls that fall under it, and only those
        assert not gate.check("carol", service="essays").can_call
        assert gate.check("carol", service="chat").can_call
        assert gate.check("alice", tenant_id="school-b").can_call  # another membership
        assert not gate.check("carol", model="house-llm").can_call
        assert not gate.check("carol", project_id="p1").can_call
        assert not gate.check("carol", api_key="k1").can_call
        assert gate.check("carol", api_key="k2").can_call


def test_a_warn_budget_used_up_lets_calls_go_on_saying_so(make_settings, engine) -> None:
    settings = make_settings(SETTINGS + '\n[budgets."service:chat"]\ndaily_tokens = 10\naction = "warn"\n')
    with freeze_time("2026-11-20T15:00:00Z"):
        d = Gate(settings, engine).record("u1", tokens=50, service="chat")
    assert d.can_call and d.reason == "over_soft_limit" and d.scope == "service:chat"
    assert "service chat daily budget used (500%)" in d.detail


def test_windows_reset_at_local_midnight_across_dst_with_nothing_carried_over(make_settings, engine, tmp_path) -> None:
    settings = make_settings(SETTINGS)
    # 2026-11-01 is 25 hours long in New York: the day ends at 05:00 UTC on the 2nd
    with freeze_time("2026-11-01T12:00:00Z"):
        set_budget(settings, engine, "service:essays", daily_cost_usd=Decimal("0.003"), action="block")
        spend(settings, engine, tmp_path, utc("2026-11-01T11:00:00Z"), n=2, service="essays")
        run(settings, engine, "limits")
        assert not Gate(settings, engine).check("u1", service="essays").can_call
    with freeze_time("2026-11-02T04:59:00Z"):  # 23:59 EST, still the 1st
        d = Gate(settings, engine).check("u1", service="essays")
        assert not d.can_call and d.detail == "service essays daily budget, resets 2026-11-02 00:00 EST"
    with freeze_time("2026-11-02T05:00:00Z"):  # midnight: a fresh, empty day
        gate = Gate(settings, engine)
        assert gate.check("u1", service="essays").can_call
        run(settings, engine, "limits")  # rollover closes the old day, the ledger puts nothing in the new one
        listed = scopes.list_budgets(engine.connect(), settings, utc("2026-11-02T05:00:00Z"))
        day = listed[0]["windows"][0]
        assert (day["period"], day["used_cost_usd"], day["resets_in"]) == ("2026-11-02", "0", "1d 0h")
        spend(settings, engine, tmp_path, utc("2026-11-02T06:00:00Z"), n=1, service="essays")
        run(settings, engine, "limits")
        assert gate.check("u1", service="essays").remaining_cost_usd == Decimal("0.001")
    closed, current = windows(engine, "service:essays")
    assert closed.period == "2026-11-01" and closed.closed_at is not None and closed.used_cost_usd == Decimal("0.004")
    assert current.period == "2026-11-02" and current.used_cost_usd == Decimal("0.002")


def test_a_month_ends_at_local_midnight_and_the_new_month_starts_empty(make_settings, engine, tmp_path) -> None:
    settings = make_settings(SETTINGS)
    with freeze_time("2026-12-01T04:30:00Z"):  # 23:30 EST on 30 November
        set_budget(settings, engine, "tenant:school-a", monthly_tokens=3000, weekly_tokens=10**6, action="block")
        spend(settings, engine, tmp_path, utc("2026-12-01T04:00:00Z"), n=2, tenant="school-a")
        run(settings, engine, "limits")
        d = Gate(settings, engine).check("a1", tenant_id="school-a")
        assert not d.can_call and d.detail == "tenant school-a monthly budget, resets 2026-12-01 00:00 EST"
    with freeze_time("2026-12-01T05:00:00Z"):
        gate = Gate(settings, engine)
        assert gate.check("a1", tenant_id="school-a").can_call
        spend(settings, engine, tmp_path, utc("2026-12-01T05:10:00Z"), n=1, tenant="school-a")
        run(settings, engine, "limits")
        assert gate.check("a1", tenant_id="school-a").remaining_tokens == 1500  # December's only
    months = [w for w in windows(engine, "tenant:school-a") if w.kind == "month"]
    assert [(w.period, w.used_tokens) for w in months] == [("2026-11", 3000), ("2026-12", 1500)]
    # the week (30 Nov - 7 Dec) spans the month end and keeps counting
    weeks = [w for w in windows(engine, "tenant:school-a") if w.kind == "week"]
    assert [(w.period, w.used_tokens) for w in weeks] == [("2026-W49", 4500)]


def test_a_changed_budget_applies_at_once_in_a_gate_that_cached_the_old_one(make_settings, engine, tmp_path) -> None:
    settings = make_settings(SETTINGS)
    with freeze_time("2026-11-20T15:00:00Z"):
        set_budget(settings, engine, "tenant:school-a", daily_tokens=10_000, action="block")
        spend(settings, engine, tmp_path, utc("2026-11-20T14:00:00Z"), n=2, tenant="school-a")
        run(settings, engine, "limits")
        gate = Gate(settings, engine)  # an app's gate: it keeps the budgets it read
        assert gate.check("a1", tenant_id="school-a").remaining_tokens == 7000
        lowered = set_budget(settings, engine, "tenant:school-a", daily_tokens=2000, action="block")
        assert lowered["blocked"] == 1 and lowered["windows_changed"] == 1
        d = gate.check("a1", tenant_id="school-a")
        assert not d.can_call and d.scope == "tenant:school-a"
        raised = set_budget(settings, engine, "tenant:school-a", daily_tokens=5000, action="block")
        assert raised["unblocked"] == 1
        assert gate.check("a1", tenant_id="school-a").remaining_tokens == 2000
        set_budget(settings, engine, "tenant:school-a", daily_tokens=2000, action="alert")
        assert gate.check("a1", tenant_id="school-a").reason == "over_soft_limit"
        scopes.unset_budget(engine, settings, "tenant:school-a", "test")
        d = gate.check("a1", tenant_id="school-a")
        assert d.can_call and d.reason == "ok" and d.remaining_tokens is None
        assert windows(engine, "tenant:school-a") == []  # no budget, no window


def test_a_new_rolling_window_never_carries_the_old_spend(make_settings, engine, tmp_path) -> None:
    settings = make_settings(SETTINGS)
    with freeze_time("2026-11-20T15:00:00Z"):
        set_budget(settings, engine, "service:essays", every_days=7, start=datetime(2026, 11, 16).date(),
                   tokens=4000, action="block")
        spend(settings, engine, tmp_path, utc("2026-11-18T15:00:00Z"), n=2, service="essays")  # in the window
        gate = Gate(settings, engine)
        assert gate.record("u1", tokens=1000, service="essays").can_call  # live: 1000; ledger: 3000
        run(settings, engine, "limits")
        assert gate.check("u1", service="essays").remaining_tokens == 1000  # the larger of ledger and live
        # the window restarts on the 20th: the spend of the 18th stays in the old one
        changed = set_budget(settings, engine, "service:essays", every_days=7, start=datetime(2026, 11, 20).date(),
                             tokens=4000, action="block")
        assert changed["windows"][0]["period"] == "2026-11-20+7d"
        assert changed["windows"][0]["used_tokens"] == 0
        assert gate.check("u1", service="essays").remaining_tokens == 4000
        run(settings, engine, "limits")
        assert [(w.period, w.used_tokens) for w in windows(engine, "service:essays")] == []
        # and the day's own spend does count in it
        spend(settings, engine, tmp_path, utc("2026-11-20T14:00:00Z"), n=1, service="essays")
        run(settings, engine, "limits")
        assert [(w.period, w.used_tokens) for w in windows(engine, "service:essays")] == [("2026-11-20+7d", 1500)]


def test_ingest_marks_the_scopes_and_the_limits_job_refreshes_only_budgeted_ones(make_settings, engine,
                                                                                  tmp_path) -> None:
    settings = make_settings(SETTINGS + '\n[budgets."member:alice@school-a"]\ndaily_tokens = 100000\n')
    with freeze_time("2026-11-20T15:00:00Z"):
        spend(settings, engine, tmp_path, utc("2026-11-20T14:00:00Z"), account="alice", tenant="school-a",
              service="essays")
        with engine.connect() as conn:
            marks = sorted(r.scope for r in conn.execute(select(LimitDirtyScope)))
        assert marks == ["model:house-llm", "service:essays", "tenant:school-a"]
        stats = run(settings, engine, "limits")["scopes"]
        assert stats["scopes"] == 1 and stats["created"] == 1  # the member follows its tenant's mark
        with engine.connect() as conn:
            assert conn.execute(select(LimitDirtyScope)).all() == []
        assert [(w.period, w.used_tokens) for w in windows(engine, "member:alice@school-a")] == [("2026-11-20", 1500)]
        assert run(settings, engine, "limits")["scopes"]["scopes"] == 0  # nothing new: nothing read


def test_the_budgets_job_raises_a_budget_scope_alert_per_level_once(make_settings, engine, tmp_path) -> None:
    settings = make_settings(SETTINGS + '\n[budgets."tenant:school-a"]\nmonthly_cost_usd = "0.005"\n'
                                        'action = "block"\nwarn_at = [0.5, 1.0]\n')
    with freeze_time("2026-11-20T15:00:00Z"):
        spend(settings, engine, tmp_path, utc("2026-11-20T14:00:00Z"), n=2, tenant="school-a")
        first = run(settings, engine, "budgets")["scopes"]
        assert first["warnings"] == 1
        spend(settings, engine, tmp_path, utc("2026-11-20T14:30:00Z"), n=1, tenant="school-a")
        second = run(settings, engine, "budgets")["scopes"]
        assert (second["warnings"], second["blocked"]) == (1, 1)
        assert run(settings, engine, "budgets")["scopes"]["warnings"] == 0
    with engine.connect() as conn:
        alerts = conn.execute(select(Alert).where(Alert.kind == "budget.scope").order_by(Alert.id)).all()
    assert [(a.scope, a.scope_id, a.severity) for a in alerts] == [("tenant", "school-a", "warning"),
                                                                   ("tenant", "school-a", "critical")]
    assert alert_sentence(alerts[0]).startswith("tenant school-a has used 80% of its monthly budget for 2026-11")
    assert alert_sentence(alerts[1]) == (
        "tenant school-a is over its monthly budget for 2026-11: $0.0060 of $0.0050; calls under it are "
        "refused until the window resets at 2026-12-01 00:00 EST")


def test_a_budget_changed_in_the_settings_is_followed_once_by_the_limits_job(make_settings, engine, tmp_path) -> None:
    roomy = make_settings(SETTINGS + '\n[budgets."service:essays"]\ndaily_tokens = 10000\naction = "block"\n')
    tight = make_settings(SETTINGS + '\n[budgets."service:essays"]\ndaily_tokens = 2000\naction = "block"\n')
    with freeze_time("2026-11-20T15:00:00Z"):
        spend(roomy, engine, tmp_path, utc("2026-11-20T14:00:00Z"), n=2, service="essays")
        run(roomy, engine, "limits")
        assert [(w.limit_tokens, w.used_tokens) for w in windows(engine, "service:essays")] == [(10000, 3000)]
        assert Gate(tight, engine).check("u1", service="essays").reason == "budget_exhausted"  # the new settings' gate
        assert run(tight, engine, "limits")["scopes"]["changed"] == 1
        assert run(tight, engine, "limits")["scopes"]["changed"] == 0  # once
        assert [w.limit_tokens for w in windows(engine, "service:essays")] == [2000]
        assert run(tight, engine, "budgets")["scopes"]["blocked"] == 1
