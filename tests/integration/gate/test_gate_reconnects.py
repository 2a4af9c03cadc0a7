"""A pooled connection the server dropped: worker.db pings connections that sat idle, and a gate
check on one that died while hot is retried once on a fresh connection (PostgreSQL: SQLite has
no server to drop it)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from worker import db
from worker.gate import Gate


def _kill_backend(engine, pid: int) -> None:
    other = db.make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with other.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    finally:
        other.dispose()


def _pooled_backend(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


@pytest.fixture
def pg_engine(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("a server-side disconnect needs PostgreSQL")
    return engine


def test_a_gate_check_on_a_connection_that_died_while_hot_is_retried(pg_engine, make_settings) -> None:
    gate = Gate(make_settings(), pg_engine)
    assert gate.check("u1").can_call
    _kill_backend(pg_engine, _pooled_backend(pg_engine))  # in use a moment ago: not pinged
    assert gate.check("u1").can_call


def test_a_connection_idle_in_the_pool_is_pinged_and_replaced(pg_engine, monkeypatch) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # every pooled connection counts as idle
    dead = _pooled_backend(pg_engine)
    _kill_backend(pg_engine, dead)
    assert _pooled_backend(pg_engine) != dead  # the ping found it dead; a fresh one answered
