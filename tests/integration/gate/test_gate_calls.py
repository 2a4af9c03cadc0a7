"""The gate at memory speed, and still right: one statement per check, one read and one increment
per record (two round trips on PostgreSQL), a commit that does not wait for the disk only for
the gate's own increments,
nothing that decides cached between calls, settings reloaded when they change. On SQLite
and PostgreSQL."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session
from psycopg.pq import Trace

from tests.helpers import run_together, utc
from worker import clock, db, gate
from worker.gate import Gate
from worker.limits import killswitch, live
from worker.limits.accounts import set_account
from worker.models import UNATTRIBUTED
from worker.settings import Settings

TIERS = """
timezone = "Europe/Berlin"
default_tier = "metered"

[tiers.metered]
daily_tokens = 1000
requests_per_minute = 50
action = "block"

[tiers.soft]
daily_tokens = 100
action = "warn"

[tiers.roomy]
daily_tokens = 100000
action = "alert"
"""


@pytest.fixture
def settings(make_settings, engine) -> Settings:
    s = make_settings(TIERS)
    set_account(engine, s, "soft-1", tier="soft")
    return s


class Statements:
    """The SQL an engine sends, as it is sent."""

    def __init__(self, engine: Engine) -> None:
        self.sent: list[str] = []
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.sent.append(" ".join(statement.split()))

    def take(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


def _kinds(sent: list[str]) -> list[str]:
    return [s.split()[0].upper() for s in sent]


@freeze_time("2026-11-23T10:00:30Z")
def test_a_check_is_one_statement_and_a_record_one_read_and_one_increment(settings, engine) -> None:
    g = Gate(settings, engine)
    seen = Statements(engine)

    g.check("u1")
    assert _kinds(seen.take()) == ["SELECT"]
    g.record("u1", tokens=10)  # no window yet: the minute and day windows are created first
    assert _kinds(seen.take()) == ["SELECT", "INSERT", "UPDATE"]
    for _ in range(3):
        g.record("u1", tokens=10)
        assert _kinds(seen.take()) == ["SELECT", "UPDATE"]
        g.check("u1")
        assert _kinds(seen.take()) == ["SELECT"]
    assert g.check("u1").remaining_tokens == 1000 - 40


class RoundTrips:
    """PostgreSQL: the protocol messages of every pooled connection while it is checked out
    (libpq's trace), to count the round trips a call makes: one ReadyForQuery ends each."""

    def __init__(self, engine: Engine, tmp_path: Path) -> None:
        self.engine = engine
        self.path = tmp_path / "libpq.trace"

    def __enter__(self) -> "RoundTrips":
        self.file = self.path.open("w+")
        event.listen(self.engine, "checkout", self._trace)
        event.listen(self.engine, "checkin", self._untrace)
        return self

    def __exit__(self, *_exc: Any) -> None:
        event.remove(self.engine, "checkout", self._trace)
        event.remove(self.engine, "checkin", self._untrace)
        self.file.close()

    def _trace(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        dbapi_conn.pgconn.trace(self.file.fileno())
        dbapi_conn.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)

    def _untrace(self, dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.pgconn.untrace()

    def take(self) -> list[str]:
        """The queries sent since the last take (BEGIN and COMMIT among them), one per round trip."""
        self.file.flush()
        lines = [line.split("\t") for line in self.path.read_text().splitlines()]
        self.file.seek(0)
        self.file.truncate()
        sent = [m for m in lines if m[0] == "F" and m[2] in ("Query", "Sync")]  # each waits for a ReadyForQuery
        assert len(sent) == sum(m[0] == "B" and m[2] == "ReadyForQuery" for m in lines)
        return [m[3].split()[0].strip('"').upper() if m[2] == "Query" else "EXTENDED" for m in sent]


def test_a_record_commits_without_waiting_for_the_disk_and_only_its_own_statements(settings, engine,
                                                                                   tmp_path) -> None:
    g = Gate(settings, engine)
    seen = Statements(engine)
    g.record("u1", tokens=10)
    relaxed = [s for s in seen.take() if "synchronous_commit" in s]
    if engine.dialect.name == "postgresql":  # set by the record's increment, for its own transaction
        assert len(relaxed) == 1 and relaxed[0].startswith("UPDATE") and "set_config" in relaxed[0]
        with RoundTrips(engine, tmp_path) as trips:
            g.record("u1", tokens=10)
            sent = trips.take()
        assert len(sent) == 2 and "BEGIN" not in sent and "COMMIT" not in sent, sent  # the read, the increment
        with engine.connect() as conn:  # the pooled connection the record used: durable again
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"
            conn.rollback()
            with conn.begin():  # the relaxed increment relaxes the transaction it runs in, no other
                conn.execute(live.INCREMENT_RELAXED, {"gate_account": "u1", "gate_now": clock.now(),
                                                      "gate_kinds": ["day"], "add_requests": 1, "add_tokens": 0,
                                                      "add_cost_usd": 0})
                assert conn.execute(text("SHOW synchronous_commit")).scalar() == "off"
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"
    else:
        assert relaxed == []
        g.record("u1", tokens=10)
    seen.take()
    with Session(engine) as session, session.begin():
        g.record("u1", tokens=10, session=session)  # the caller's transaction keeps its own durability
    assert [s for s in seen.take() if "synchronous_commit" in s] == []
    assert g.check("u1").remaining_tokens == 1000 - 30


@freeze_time("2026-11-23T10:00:30Z")
def test_a_record_returns_the_decision_a_check_then_gives(settings, engine) -> None:
    g = Gate(settings, engine)
    calls = [("u1", 300), ("u1", 800), ("soft-1", 60), ("soft-1", 60), (UNATTRIBUTED, 10**6), (None, 5),
             ("u2", 0)]
    for account, tokens in calls:
        recorded = g.record(account, tokens=tokens, cost_usd="0.001")
        assert recorded.as_dict() == g.check(account).as_dict(), account
    assert (g.check("u1").reason, g.check("soft-1").reason) == ("budget_exhausted", "over_soft_limit")
    assert g.check(None).reason == "ok"


@freeze_time("2026-11-23T10:00:30Z")
def test_two_gates_on_two_engines_see_every_change_at_once(settings, engine, db_url) -> None:
    other_engine = db.make_engine(db_url)
    try:
        a, b = Gate(settings, engine), Gate(settings, other_engine)
        a.record("u3", tokens=900)
        assert b.check("u3").remaining_tokens == 100
        set_account(engine, settings, "u3", tier="roomy")  # another replica moves the account
        assert (b.check("u3").tier, b.check("u3").remaining_tokens) == ("roomy", 100000 - 900)
        with engine.begin() as conn:
            killswitch.trip(conn, utc("2026-11-23T10:00:30Z"), period="2026-11-23", by="operator:test",
                            reason="drill")
        assert [g.check("u3").reason for g in (a, b)] == ["kill_switch", "kill_switch"]
        assert b.record("u3").reason == "kill_switch"
    finally:
        other_engine.dispose()


@freeze_time("2026-11-23T10:00:30Z")
def test_records_racing_on_two_engines_all_count(settings, engine, db_url) -> None:
    other_engine = db.make_engine(db_url)
    try:
        gates = [Gate(settings, engine), Gate(settings, other_engine)]

        def calls(g: Gate) -> Any:
            return lambda: [g.record("u4", tokens=1) for _ in range(10)]

        run_together([calls(gates[0]), calls(gates[1]), calls(gates[0]), calls(gates[1])])
        decision = gates[0].check("u4")
        assert (decision.remaining_tokens, decision.remaining_requests) == (1000 - 40, 50 - 40)
    finally:
        other_engine.dispose()


# --------------------------------------------------------------------------- the default gate's settings


@pytest.fixture
def default_gate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[Path]:
    """The module-level gate on a settings file of the test's own, looked at on every call."""
    config = tmp_path / "app.toml"
    for key in [k for k in os.environ if k.startswith("TOKENTALLY_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TOKENTALLY_CONFIG", str(config))
    monkeypatch.setenv("TOKENTALLY_DATABASE_URL", db_url)
    monkeypatch.setattr(gate, "RECHECK_SECONDS", 0.0)
    monkeypatch.setattr(gate, "_default", None)
    monkeypatch.setattr(gate, "_source", None)
    yield config
    if gate._default is not None:
        gate._default.engine.dispose()


def _write(config: Path, body: str) -> None:
    config.write_text(body, encoding="utf-8")
    stat = config.stat()  # a new mtime even within the file system's clock resolution
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_the_default_gate_reads_changed_settings_and_keeps_the_last_good_ones(default_gate, caplog) -> None:
    _write(default_gate, 'default_tier = "t"\n[tiers.t]\nrequests_per_day = 2\naction = "block"\n')
    assert [gate.record("u5").can_call for _ in range(2)] == [True, False]
    engine = gate.default_gate().engine

    _write(default_gate, 'default_tier = "t"\n[tiers.t]\nrequests_per_day = 5\naction = "block"\n')
    # an account with no window yet gets the new limit; u5's stored day window keeps the limit
    # it was created with until the limits job follows the tier (as before the reload)
    assert (gate.check("u6").can_call, gate.check("u6").remaining_requests) == (True, 5)
    assert gate.check("u5").remaining_requests == 0
    assert gate.default_gate().engine is engine  # the same database: the same engine and pool

    _write(default_gate, 'default_tier = "t"\n[tiers.t\n')
    with caplog.at_level(logging.ERROR, logger="worker.gate"):
        assert gate.check("u6").remaining_requests == 5
    assert [r.action for r in caplog.records if hasattr(r, "action")] == ["gate_settings_error"]


def test_the_default_gate_refuses_to_start_on_bad_settings(default_gate) -> None:
    _write(default_gate, "default_tier = 3\n")
    with pytest.raises(gate.SettingsError, match="default_tier"):
        gate.check("u7")
