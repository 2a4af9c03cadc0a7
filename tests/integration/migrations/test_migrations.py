"""Alembic migrations: the only way the schema changes, and equal to the models."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, insert, select, text

from worker import db
from worker.ledger import partitions
from worker.models import Account, Base

PG_ADMIN_URL = os.environ.get("TOKENTALLY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def empty_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A brand-new, empty database of the same kind as ``db_url`` (nothing migrated)."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"tokentally_empty_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    try:
        yield db.normalise_url(f"{base}/{name}")
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_engine(empty_db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(empty_db_url)
    yield engine
    engine.dispose()


def schema_differences(engine: Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "include_name": partitions.include_name})
        return compare_metadata(context, Base.metadata)


def table_names(engine: Engine) -> set[str]:
    """The tables, the ledger's monthly partitions (PostgreSQL) counted as the one they are."""
    return {n for n in inspect(engine).get_table_names() if not partitions.is_partition(n)}


def revisions_base_to_head() -> list[str]:
    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_every_revision_applied_to_an_empty_database_gives_the_schema_of_the_models(empty_db_url, empty_engine):
    assert table_names(empty_engine) == set()

    for revision in revisions_base_to_head():
        db.migrate(empty_db_url, revision)
        assert db.current_revision(empty_engine) == revision

    assert db.current_revision(empty_engine) == db.head_revision()
    assert table_names(empty_engine) == set(Base.metadata.tables) | {"alembic_version"}
    assert schema_differences(empty_engine) == []


def test_the_test_databases_are_migrated_to_head_and_match_the_models(engine):
    assert db.current_revision(engine) == db.head_revision()
    assert schema_differences(engine) == []


def test_tokentally_migrate_twice_is_a_no_op(cli, empty_db_url, empty_engine):
    env = {"TOKENTALLY_DATABASE_URL": empty_db_url}
    first = cli("migrate", env=env)
    assert first.exit_code == 0, first.output
    assert f"at revision {db.head_revision()}" in first.output
    now = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
    with empty_engine.begin() as conn:
        conn.execute(insert(Account).values(account_id="kept", tier=None, created_at=now, updated_at=now))

    second = cli("migrate", env=env)

    assert second.exit_code == 0, second.output
    assert f"at revision {db.head_revision()}" in second.output
    assert db.current_revision(empty_engine) == db.head_revision()
    assert schema_differences(empty_engine) == []
    with empty_engine.connect() as conn:
        assert conn.execute(select(Account.account_id)).scalars().all() == ["kept"]
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


@pytest.mark.parametrize("args", [
    ("usage", "--from", "2026-10-01", "--to", "2026-10-31"),
    ("accounts", "list"),
    ("reprice", "--from", "2026-10-01", "--to", "2026-10-31"),
    ("rejects", "list"),
], ids=lambda args: " ".join(args[:2]))
def test_a_command_against_an_unmigrated_database_exits_2_asking_to_run_migrate(cli, empty_db_url, empty_engine,
                                                                                args):
    result = cli(*args, env={"TOKENTALLY_DATABASE_URL": empty_db_url})

    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "run `tokentally migrate`" in message
    assert "revision none" in message
    assert table_names(empty_engine) == set()  # nothing was created behind the user's back


def test_ingest_against_an_unmigrated_database_exits_2_and_writes_nothing(cli, tmp_path, empty_db_url,
                                                                          empty_engine):
    log = tmp_path / "usage.jsonl"
    log.write_text('{"id": "a1", "user_id": "u1", "model": "gpt-4o-mini", "prompt_tokens": 10,'
                   ' "completion_tokens": 5, "created_at": "2026-10-30T12:00:00Z"}\n', encoding="utf-8")

    result = cli("ingest", log, env={"TOKENTALLY_DATABASE_URL": empty_db_url})

    assert result.exit_code == 2, result.output
    assert "tokentally migrate" in " ".join(result.output.split())
    assert table_names(empty_engine) == set()



def test_the_partitioning_revision_keeps_every_row_and_the_ids_and_goes_back(empty_db_url, empty_engine):
    """0016 on a ledger that already holds rows: on PostgreSQL the table becomes partitioned by month
    (a partition per month held, rows before 2000 in the default one); every row, id and the id
    sequence survive, and the downgrade gives the plain table back."""
    db.migrate(empty_db_url, "0012")
    columns = ("event_id, source, occurred_at, ingested_at, account_id, provider, model, model_used, status, "
               "prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens, cost_status, "
               "unattributed, model_defaulted")
    rows = [("e1", "2026-10-05 10:00:00+00"), ("e2", "2026-11-30 23:59:59+00"), ("e3", "1999-12-31 23:00:00+00")]
    with empty_engine.begin() as conn:
        for event_id, at in rows:
            if empty_engine.dialect.name == "sqlite":
                at = at[:-3]  # stored as naive UTC text
            conn.execute(text(f"INSERT INTO usage_events ({columns}) VALUES (:e, 's', :at, :at, 'a', 'p', 'm', "
                              "'m', 'success', 1, 1, 2, 0, 0, 'unpriced', false, false)"), {"e": event_id, "at": at})
        ids_before = conn.execute(text("SELECT event_id, id FROM usage_events ORDER BY id")).all()

    db.migrate(empty_db_url)

    assert schema_differences(empty_engine) == []
    with empty_engine.begin() as conn:
        assert conn.execute(text("SELECT event_id, id FROM usage_events ORDER BY id")).all() == ids_before
        assert sorted(conn.execute(text("SELECT event_id FROM usage_event_ids")).scalars()) == ["e1", "e2", "e3"]
        if empty_engine.dialect.name == "postgresql":
            placed = dict(conn.execute(text(
                "SELECT event_id, tableoid::regclass::text FROM usage_events")).all())
            assert placed == {"e1": "usage_events_p202610", "e2": "usage_events_p202611", "e3": "usage_events_default"}
            next_id = conn.execute(text("SELECT nextval('usage_events_id_seq')")).scalar_one()
            assert next_id > max(i for _, i in ids_before)

    command.downgrade(db.alembic_config(empty_db_url), "0012")
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT event_id, id FROM usage_events ORDER BY id")).all() == ids_before
        assert "usage_event_ids" not in inspect(empty_engine).get_table_names()
