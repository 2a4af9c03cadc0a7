"""The limits and budgets jobs touch only what changed, on SQLite and PostgreSQL: the accounts
ingest marked, the windows whose usage moved, the windows that reset (set-based, across DST);
an idle account has no window and the gate reads it as empty; replicas racing stay correct."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from freezegun import freeze_time
from sqlalchemy import Engine, event, func, select

from tests.helpers import PRICES, ingest, record, run_together, utc
from worker.gate import Gate
from worker.limits import budgets, sync
from worker.limits.windows import windows_to_judge
from worker.limits.accounts import set_account
from worker.models import Alert, LimitDirtyAccount, LimitWindow, Notification
from worker.registry import registry
from worker.scheduler import run_job
from worker.settings import Settings

TIERS = """
timezone = "Europe/Berlin"
default_tier = "student"

[tiers.student]
daily_tokens = 10000
action = "warn"

[tiers.lesson_builder]
daily_tokens = 100000
action = "block"

[[routes]]
kinds = ["budget.*"]
to = ["file:admins"]
""" + PRICES


def feed(settings: Settings, engine: Engine, tmp_path, accounts: list[str], at: datetime, tokens: int = 1000) -> None:
    ingest(settings, engine, tmp_path, [record(at, account=a, prompt=tokens, completion=0) for a in accounts])


def run(settings: Settings, engine: Engine, job: str) -> dict[str, Any]:
    result = run_job(registry.get(job), settings, engine)
    assert result is not None and result.status == "success", result.error if result else None
    return result.stats


def windows(engine: Engine, account: str | None = None) -> list[Any]:
    query = select(LimitWindow).order_by(LimitWindow.account_id, LimitWindow.kind, LimitWindow.window_start)
    if account is not None:
        query = query.where(LimitWindow.account_id == account)
    with engine.connect() as conn:
        return list(conn.execute(query))


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


class Statements:
    """Counts the statements sent to the database while active."""

    def __init__(self, engine: Engine):
        self.engine, self.sql = engine, []

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, params, context, executemany) -> None:
        self.sql.append(statement)


def test_only_the_accounts_with_new_usage_are_touched(make_settings, engine, tmp_path) -> None:
    settings = make_settings(TIERS)
    accounts = [f"u{i}" for i in range(6)]
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, accounts, utc("2026-11-23T09:59:00Z"))
        assert count(engine, LimitDirtyAccount) == 6  # ingest marked them, with the batch
        first = run(settings, engine, "limits")
        assert (first["accounts"], first["created"]) == (6, 12)  # a day and a month window each
        assert count(engine, LimitDirtyAccount) == 0  # the job took the marks
        # all new: the day windows judged; the month windows have no budget in these tiers (nothing to judge)
        assert run(settings, engine, "budgets")["windows"] == 6
    with freeze_time("2026-11-23T10:01:00Z"):
        feed(settings, engine, tmp_path, ["u3"], utc("2026-11-23T10:00:30Z"))
        second = run(settings, engine, "limits")
        assert (second["accounts"], second["created"], second["refreshed"]) == (1, 0, 2)
        touched = {w.account_id for w in windows(engine) if w.updated_at == utc("2026-11-23T10:01:00Z")}
        assert touched == {"u3"}  # no other account's window was written
        judged = run(settings, engine, "budgets")
        assert judged["windows"] == 1 and judged["sync"]["accounts"] == 0  # u3's day only
    with freeze_time("2026-11-23T10:02:00Z"):
        assert run(settings, engine, "limits")["accounts"] == 0  # nothing new: nothing read
        assert run(settings, engine, "budgets")["windows"] == 0
    [day] = [w for w in windows(engine, "u3") if w.kind == "day"]
    assert (day.used_tokens, day.revision, day.evaluated_revision) == (2000, 2, 2)
    [month] = [w for w in windows(engine, "u3") if w.kind == "month"]
    assert (month.used_tokens, month.revision, month.evaluated_revision) == (2000, 2, 2)  # never waited to be judged


def test_a_run_reads_the_ledger_only_for_the_marked_accounts(make_settings, engine, tmp_path) -> None:
    settings = make_settings(TIERS)
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, [f"u{i}" for i in range(30)], utc("2026-11-23T09:59:00Z"))
        run(settings, engine, "limits")
    with freeze_time("2026-11-23T10:01:00Z"):
        feed(settings, engine, tmp_path, ["u7"], utc("2026-11-23T10:00:30Z"))
        with Statements(engine) as seen, engine.begin() as conn:
            stats = sync.sync(conn, settings, utc("2026-11-23T10:01:00Z"))
    assert stats.accounts == 1
    reads = [s for s in seen.sql if "FROM usage_events" in s]
    assert len(reads) == 1  # one ledger query, for the marked account
    assert sum(1 for s in seen.sql if s.lstrip().upper().startswith(("UPDATE LIMIT_WINDOWS", "INSERT INTO LIMIT_WINDOWS"))
               ) <= 3  # rollover's close, one batched refresh (no statement per account)


def test_an_idle_account_has_no_window_and_the_gate_reads_it_as_empty(make_settings, engine, tmp_path) -> None:
    settings = make_settings(TIERS)
    set_account(engine, settings, "idle", tier="lesson_builder")
    set_account(engine, settings, "busy", tier="lesson_builder")
    gate = Gate(settings, engine)
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, ["busy"], utc("2026-11-23T09:00:00Z"), tokens=150000)
        run(settings, engine, "budgets")
        assert windows(engine, "idle") == []  # never materialised
        idle = gate.check("idle")
        assert (idle.can_call, idle.reason, idle.remaining_tokens) == (True, "ok", 100000)
        busy = gate.check("busy")
        assert (busy.can_call, busy.reason) == (False, "blocked")
        gate.record("idle", tokens=99999)  # a call recorded at the gate makes the window
        assert gate.check("idle").remaining_tokens == 1
        gate.record("idle", tokens=5)
        run(settings, engine, "budgets")  # judged: its revision moved
        assert (gate.check("idle").can_call, gate.check("idle").reason) == (False, "blocked")
    with freeze_time("2026-11-23T23:00:05Z"):  # Berlin midnight: the days reset
        run(settings, engine, "limits")
        assert [w.kind for w in windows(engine, "busy") if w.closed_at is None] == ["month"]
        assert gate.check("busy").can_call and gate.check("idle").can_call


def test_rollover_is_two_statements_for_any_number_of_accounts_across_dst(make_settings, engine, tmp_path) -> None:
    settings = make_settings(TIERS)
    accounts = [f"u{i}" for i in range(25)]
    # 25 October 2026 in Berlin has 25 hours: 2026-10-24T22:00Z .. 2026-10-25T23:00Z
    with freeze_time("2026-10-25T12:00:00Z"):
        feed(settings, engine, tmp_path, accounts, utc("2026-10-25T11:00:00Z"))
        run(settings, engine, "limits")
        gate = Gate(settings, engine)
        gate.record("u0")  # one account has a live-only window too: still closed, not dropped
    days = [w for w in windows(engine) if w.kind == "day"]
    assert {(w.window_start, w.reset_at) for w in days} == {(utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"))}
    with engine.begin() as conn:  # an hour before the local midnight (a 24-hour cut would close now)
        assert sync.rollover(conn, utc("2026-10-25T22:00:05Z")) == 0
    with Statements(engine) as seen, engine.begin() as conn:
        stats = sync.SyncStats()
        sync.rollover(conn, utc("2026-10-25T23:00:05Z"), stats)
    assert len(seen.sql) == 2  # one DELETE of the empty expired windows, one UPDATE closing the rest
    assert (stats.closed, stats.dropped) == (25, 0)
    assert all(w.closed_at is not None for w in windows(engine) if w.kind == "day")
    assert all(w.closed_at is None for w in windows(engine) if w.kind == "month")
    with engine.begin() as conn:  # a second replica closes nothing
        assert sync.rollover(conn, utc("2026-10-25T23:00:06Z")) == 0


def test_two_replicas_racing_raise_each_alert_once(make_settings, engine, tmp_path) -> None:
    settings = make_settings(TIERS)
    accounts = [f"u{i:02d}" for i in range(25)]
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, accounts, utc("2026-11-23T09:00:00Z"), tokens=20000)  # 200% each

        def budgets_run() -> Any:
            with engine.begin() as conn:
                synced = sync.sync(conn, settings, utc("2026-11-23T10:00:00Z"))
                return synced, budgets.evaluate(conn, settings, utc("2026-11-23T10:00:00Z"))

        results = run_together([budgets_run, budgets_run])
    assert sum(s.accounts for s, _ in results) == 25  # each mark taken by one replica
    with engine.connect() as conn:
        raised = conn.execute(select(Alert.key)).scalars().all()
        messages = conn.execute(select(Notification)).all()
    assert len(raised) == len(set(raised)) == 25  # the highest level crossed, per account, once
    assert sum(b.warnings for _, b in results) == 25
    # 25 alerts of one kind (> group_after): grouped; the messages cover each alert once
    covered = sum(m.context["group"]["count"] if m.template == "alert_group" else 1 for m in messages)
    assert covered == 25 and len(messages) <= 2
    assert all(w.state == "warned" for w in windows(engine) if w.kind == "day")


def test_a_level_another_replica_recorded_first_is_not_raised_again(make_settings, engine, tmp_path) -> None:
    """A window's level and state are claimed in one UPDATE; where another replica recorded the
    level meanwhile, that claim loses and the state is claimed alone: no second alert."""
    settings = make_settings(TIERS)
    now = utc("2026-11-23T10:00:00Z")
    with freeze_time(now):
        feed(settings, engine, tmp_path, ["u1", "u2"], utc("2026-11-23T09:59:00Z"), tokens=12_000)  # 120% of 10,000
        run(settings, engine, "limits")
        with engine.connect() as conn:
            stale = windows_to_judge(conn, now)  # as this replica read them
        assert [(w.account_id, w.kind, w.warned_level, w.state) for w in stale] == [
            ("u1", "day", None, "ok"), ("u2", "day", None, "ok")]
        with engine.begin() as conn:  # the other replica recorded u1's level (and raised its alert)
            conn.execute(LimitWindow.__table__.update().where(LimitWindow.id == stale[0].id).values(warned_level=1.0))
        stats = budgets.BudgetStats()
        with engine.begin() as conn:
            done = budgets.judge(conn, settings, [(w, settings.tiers["student"]) for w in stale], now, stats,
                                 mark=True)
        assert (stats.warnings, done) == (1, {stale[1].id})  # u2's level (and its judged revision) only
        assert {w.account_id: w.state for w in windows(engine) if w.kind == "day"} == {"u1": "warned", "u2": "warned"}
        with engine.connect() as conn:
            raised = conn.execute(select(Alert.scope_id, Alert.period)).all()
        assert raised == [("u2", "day 2026-11-23 100%")]
        assert run(settings, engine, "budgets")["windows"] == 1  # u1's day, still to judge: nothing left to do
        assert run(settings, engine, "budgets")["windows"] == 0
        assert count(engine, Alert) == 1
