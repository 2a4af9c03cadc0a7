"""kind = "table": polling an application's own usage table in another database.

The ledger under test is SQLite or PostgreSQL (``db_url``); the application
table lives in a separate database of the same kind: a second SQLite file, or a
PostgreSQL database created (and dropped) here.
"""

from __future__ import annotations

import gc
import os
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from sqlalchemy import JSON, Column, DateTime, Engine, Integer, MetaData, Numeric, String, Table, Text, Uuid, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from worker import db
from worker.ingest.ingestor import IngestError, Ingestor
from worker.models import SourceCursor, UsageEvent
from worker.settings import load
from worker.ingest import table as table_source

PG_ADMIN_URL = os.environ.get("TOKENTALLY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

T0 = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
U1 = uuid.UUID("11111111-1111-4111-8111-111111111111")
U2 = uuid.UUID("22222222-2222-4222-8222-222222222222")


# --------------------------------------------------------------------------- the application database


@dataclass
class AppDb:
    url: str
    engine: Engine
    usage_logs: Table  # seed 001: llm_usage_logs, uuid id, timestamptz cursor
    usage_logs_endpoint: Table  # the same with seed 001's endpoint column
    model_usage: Table  # seed 002 style: llm_model_usage, serial id cursor

    def insert(self, table: Table, *rows: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(table.insert(), list(rows))


def _usage_logs_table(md: MetaData, name: str, pg: bool, *extra: Column) -> Table:
    """Seed 001's llm_usage_logs: uuid (text on SQLite) id, JSON(B) metadata, timestamptz cursor."""
    return Table(
        name, md,
        Column("id", Uuid() if pg else String(36), primary_key=True),
        Column("user_id", Uuid() if pg else String(36), nullable=False),
        Column("model", String(255), nullable=False),
        *extra,
        Column("status_code", Integer),
        Column("tokens_used", Integer),
        Column("prompt_tokens", Integer),
        Column("completion_tokens", Integer),
        Column("duration_ms", Integer),
        Column("error_message", Text),
        Column("metadata", JSONB() if pg else JSON()),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


def _app_tables(dialect: str) -> tuple[MetaData, Table, Table, Table]:
    pg = dialect == "postgresql"
    md = MetaData()
    usage_logs = _usage_logs_table(md, "llm_usage_logs", pg)
    # The seed's full table also has an endpoint column, which is no usage field.
    usage_logs_endpoint = _usage_logs_table(md, "llm_usage_logs_endpoint", pg, Column("endpoint", String(255)))
    model_usage = Table(
        "llm_model_usage", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("user_id", String(100), nullable=False),
        Column("operation_type", String(100)),
        Column("model_requested", String(200)),
        Column("model_used", String(200)),
        Column("prompt_tokens", Integer),
        Column("completion_tokens", Integer),
        Column("total_tokens", Integer),
        Column("total_cost_usd", Numeric(12, 6)),
        Column("response_time_ms", Integer),
        Column("status", String(20)),
        Column("error_message", Text),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    return md, usage_logs, usage_logs_endpoint, model_usage


def _dispose_cached_source_engines() -> None:
    while table_source._engines:
        _, eng = table_source._engines.popitem()
        eng.dispose()
    gc.collect()  # anything a failed poll left open is reported against this test, not the next


@pytest.fixture(scope="session")
def pg_app_database() -> Iterator[str]:
    """The PostgreSQL database the application tables live in, created once per session
    (CREATE and DROP DATABASE cost ~0.5 s a test); ``app_url`` empties it for each test."""
    name = f"tokentally_app_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_pg_database(url: str) -> None:
    """As good as a new database: no other connection, nothing in the public schema
    (tables, their sequences and types dropped)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture
def app_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty application database of the ledger's kind (plain URL, as a user writes it)."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'app.db'}"
        _dispose_cached_source_engines()
        return
    url = request.getfixturevalue("pg_app_database")
    _empty_pg_database(url)
    try:
        yield url
    finally:
        _dispose_cached_source_engines()


@pytest.fixture
def app_db(app_url: str) -> Iterator[AppDb]:
    engine = db.make_engine(app_url)
    md, usage_logs, usage_logs_endpoint, model_usage = _app_tables(engine.dialect.name)
    md.create_all(engine)
    try:
        yield AppDb(app_url, engine, usage_logs, usage_logs_endpoint, model_usage)
    finally:
        engine.dispose()


def _uuid(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


def usage_log(app: AppDb, n: int, created_at: datetime, **fields: Any) -> dict[str, Any]:
    """A seed-001 row: id n, user U1, llama on groq, 1000 + 200 tokens."""
    text_ids = app.engine.dialect.name == "sqlite"
    row = {
        "id": str(_uuid(n)) if text_ids else _uuid(n),
        "user_id": str(U1) if text_ids else U1,
        "model": "llama-3.1-70b-versatile",
        "status_code": 200,
        "tokens_used": 1200,
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "duration_ms": 850,
        "error_message": None,
        "metadata": {"service": "draft_generator", "trends_count": 3},
        "created_at": created_at,
    }
    row.update(fields)
    return row


def model_usage(n_minutes: int, **fields: Any) -> dict[str, Any]:
    """A seed-002 row (the serial id comes from the database)."""
    row = {
        "user_id": "user-7",
        "operation_type": "brain_dump",
        "model_requested": "house-fast",
        "model_used": "house-smart",
        "prompt_tokens": 2000,
        "completion_tokens": 1000,
        "total_tokens": 3000,
        "total_cost_usd": None,
        "response_time_ms": 1200,
        "status": "success",
        "error_message": None,
        "created_at": T0 + timedelta(minutes=n_minutes),
    }
    row.update(fields)
    return row


# --------------------------------------------------------------------------- settings


PRICES = """
[[pricing.overrides]]
model = "llama-3.1-70b-versatile"
input_per_mtok = "0.59"
output_per_mtok = "0.79"
effective_from = "2025-01-01"

[[pricing.overrides]]
model = "house-smart"
provider = "acme"
input_per_mtok = "1.00"
output_per_mtok = "2.00"
effective_from = "2025-01-01"
"""


def logs_source(url_line: str, overlap: str = "5m") -> str:
    return f"""
[[sources]]
name = "app-logs"
kind = "table"
{url_line}
table = "llm_usage_logs"
cursor_column = "created_at"
cursor_overlap = "{overlap}"
defaults = {{ provider = "groq" }}
""" + PRICES


def model_usage_source(url: str) -> str:
    return f"""
[[sources]]
name = "app-model-usage"
kind = "table"
url = "{url}"
table = "llm_model_usage"
cursor_column = "id"
event_id_namespace = "app2"
defaults = {{ provider = "acme" }}
""" + PRICES


def poll(settings, engine: Engine, name: str) -> dict[str, int]:
    """One poll of the source. An unexpected crash fails this test here, with its traceback, after
    releasing what the crashed poll left open (a streaming server-side cursor), so it cannot
    surface as a ResourceWarning in a later test."""
    try:
        stats = Ingestor(settings, engine).ingest_source(settings.source(name))
    except IngestError:
        raise
    except Exception:
        crash = traceback.format_exc()
    else:
        return {"accepted": stats.accepted, "duplicates": stats.duplicates, "rejected": stats.rejected}
    gc.collect()
    pytest.fail(f"polling {name} crashed:\n{crash}")


def events(engine: Engine) -> list[UsageEvent]:
    with Session(engine) as session:
        return list(session.scalars(select(UsageEvent).order_by(UsageEvent.occurred_at, UsageEvent.event_id)))


def cursor(engine: Engine, name: str) -> tuple[str, str] | None:
    with engine.connect() as conn:
        row = conn.execute(select(SourceCursor.cursor_value, SourceCursor.cursor_type)
                           .where(SourceCursor.source == name)).first()
    return None if row is None else (row.cursor_value, row.cursor_type)


# --------------------------------------------------------------------------- timestamp cursor (seed 001)


def test_usage_log_rows_land_in_the_ledger_normalised_and_priced(app_db, make_settings, engine):
    app_db.insert(
        app_db.usage_logs,
        usage_log(app_db, 1, T0),
        usage_log(app_db, 2, T0 + timedelta(minutes=10), status_code=500, error_message="upstream failed",
                  tokens_used=0, prompt_tokens=0, completion_tokens=0, duration_ms=40,
                  metadata={"service": "voice_analyzer"}),
        usage_log(app_db, 3, T0 + timedelta(minutes=20), status_code=504, duration_ms=30000,
                  metadata={"service": "trend_detector"}),
    )
    settings = make_settings(logs_source(f'url = "{app_db.url}"'))

    assert poll(settings, engine, "app-logs") == {"accepted": 3, "duplicates": 0, "rejected": 0}

    first, failed, timed_out = events(engine)
    assert first.event_id == str(_uuid(1))
    assert first.source == "app-logs"
    assert first.occurred_at == T0
    assert first.account_id == str(U1)
    assert first.unattributed is False
    assert (first.provider, first.model, first.model_used) == ("groq", "llama-3.1-70b-versatile",
                                                               "llama-3.1-70b-versatile")
    assert first.service == "draft_generator"
    assert (first.status, first.status_code) == ("success", 200)
    assert (first.prompt_tokens, first.completion_tokens, first.total_tokens) == (1000, 200, 1200)
    assert first.latency_ms == 850
    assert first.meta == {"service": "draft_generator", "trends_count": 3}
    # 1000 x 0.59/M + 200 x 0.79/M
    assert first.cost_status == "priced"
    assert first.cost_usd == Decimal("0.000748")

    assert (failed.status, failed.status_code, failed.error_message) == ("error", 500, "upstream failed")
    assert failed.service == "voice_analyzer"
    assert failed.total_tokens == 0
    assert (timed_out.status, timed_out.status_code, timed_out.latency_ms) == ("timeout", 504, 30000)


def test_a_column_that_is_no_usage_field_is_kept_in_metadata(app_db, make_settings, engine):
    # Seed 001's table has an endpoint column; DESIGN.md: "Fields that are not in the table go into metadata".
    app_db.insert(app_db.usage_logs_endpoint, usage_log(app_db, 1, T0, endpoint="/v1/chat/completions"))
    settings = make_settings(logs_source(f'url = "{app_db.url}"').replace(
        'table = "llm_usage_logs"', 'table = "llm_usage_logs_endpoint"'))

    assert poll(settings, engine, "app-logs") == {"accepted": 1, "duplicates": 0, "rejected": 0}
    (event,) = events(engine)
    assert event.meta == {"service": "draft_generator", "trends_count": 3, "endpoint": "/v1/chat/completions"}


def test_a_second_poll_reads_only_the_overlap_rows_again_as_duplicates(app_db, make_settings, engine):
    app_db.insert(app_db.usage_logs, *(usage_log(app_db, n, T0 + timedelta(minutes=m))
                                       for n, m in ((1, 0), (2, 10), (3, 20), (4, 21))))
    settings = make_settings(logs_source(f'url = "{app_db.url}"', overlap="5m"))
    assert poll(settings, engine, "app-logs")["accepted"] == 4

    # The cursor is at T0+21m; the 5 minute overlap re-reads T0+20m and T0+21m only.
    assert poll(settings, engine, "app-logs") == {"accepted": 0, "duplicates": 2, "rejected": 0}
    assert len(events(engine)) == 4


def test_rows_inserted_later_are_picked_up_and_the_timestamp_cursor_advances(app_db, make_settings, engine):
    app_db.insert(app_db.usage_logs, usage_log(app_db, 1, T0), usage_log(app_db, 2, T0 + timedelta(minutes=10)))
    settings = make_settings(logs_source(f'url = "{app_db.url}"', overlap="1m"))
    assert poll(settings, engine, "app-logs")["accepted"] == 2
    value, kind = cursor(engine, "app-logs")
    assert kind == "timestamp"
    assert datetime.fromisoformat(value) == T0 + timedelta(minutes=10)

    app_db.insert(app_db.usage_logs, usage_log(app_db, 3, T0 + timedelta(minutes=30)),
                  usage_log(app_db, 4, T0 + timedelta(minutes=31)))
    assert poll(settings, engine, "app-logs") == {"accepted": 2, "duplicates": 1, "rejected": 0}
    value, _ = cursor(engine, "app-logs")
    assert datetime.fromisoformat(value) == T0 + timedelta(minutes=31)
    assert [e.event_id for e in events(engine)] == [str(_uuid(n)) for n in (1, 2, 3, 4)]


def test_a_row_committed_late_with_an_earlier_timestamp_inside_the_overlap_is_picked_up(
        app_db, make_settings, engine):
    app_db.insert(app_db.usage_logs, usage_log(app_db, 1, T0), usage_log(app_db, 2, T0 + timedelta(minutes=30)))
    settings = make_settings(logs_source(f'url = "{app_db.url}"', overlap="5m"))
    assert poll(settings, engine, "app-logs")["accepted"] == 2

    # Commits after the poll, stamped 3 minutes before the cursor (inside the 5 minute overlap).
    app_db.insert(app_db.usage_logs, usage_log(app_db, 3, T0 + timedelta(minutes=27), user_id=(
        str(U2) if app_db.engine.dialect.name == "sqlite" else U2)))
    assert poll(settings, engine, "app-logs") == {"accepted": 1, "duplicates": 1, "rejected": 0}

    late = [e for e in events(engine) if e.event_id == str(_uuid(3))]
    assert len(late) == 1
    assert late[0].occurred_at == T0 + timedelta(minutes=27)
    assert late[0].account_id == str(U2)
    value, _ = cursor(engine, "app-logs")
    assert datetime.fromisoformat(value) == T0 + timedelta(minutes=30)  # never moves backwards


def test_the_table_url_can_come_from_the_environment_variable_named_by_url_env(
        app_db, engine, tmp_path, monkeypatch):
    app_db.insert(app_db.usage_logs, usage_log(app_db, 1, T0))
    monkeypatch.setenv("TT_TEST_APP_DATABASE_URL", app_db.url)
    config = tmp_path / "url-env.toml"
    config.write_text(logs_source('url_env = "TT_TEST_APP_DATABASE_URL"'), encoding="utf-8")
    settings = load(config)  # as the worker loads it: from the process environment
    assert settings.source("app-logs").url == app_db.url

    assert poll(settings, engine, "app-logs")["accepted"] == 1
    assert [e.event_id for e in events(engine)] == [str(_uuid(1))]


def test_a_missing_table_raises_an_ingest_error_naming_the_table(app_db, make_settings, engine):
    settings = make_settings(logs_source(f'url = "{app_db.url}"').replace(
        'table = "llm_usage_logs"', 'table = "llm_usage_logz"'))
    with pytest.raises(IngestError, match="llm_usage_logz"):
        poll(settings, engine, "app-logs")
    assert events(engine) == []
    assert cursor(engine, "app-logs") is None


def test_a_missing_cursor_column_raises_an_ingest_error_naming_the_column(app_db, make_settings, engine):
    settings = make_settings(logs_source(f'url = "{app_db.url}"').replace(
        'cursor_column = "created_at"', 'cursor_column = "inserted_at"'))
    with pytest.raises(IngestError, match="inserted_at"):
        poll(settings, engine, "app-logs")


# --------------------------------------------------------------------------- integer cursor (seed 002 style)


def test_model_usage_rows_land_with_model_used_operation_type_and_reported_cost(app_db, make_settings, engine):
    app_db.insert(
        app_db.model_usage,
        model_usage(0),
        model_usage(1, total_cost_usd=Decimal("0.012345"), operation_type="task_summary"),
        model_usage(2, status="failure", error_message="rate limited", prompt_tokens=0, completion_tokens=0,
                    total_tokens=0),
    )
    settings = make_settings(model_usage_source(app_db.url))

    assert poll(settings, engine, "app-model-usage") == {"accepted": 3, "duplicates": 0, "rejected": 0}

    computed, reported, failed = events(engine)
    assert [e.event_id for e in (computed, reported, failed)] == ["app2:1", "app2:2", "app2:3"]
    assert computed.account_id == "user-7"
    assert computed.service == "brain_dump"
    assert (computed.provider, computed.model, computed.model_used) == ("acme", "house-fast", "house-smart")
    assert computed.latency_ms == 1200
    # house-smart (the model actually used) is what is priced: 2000 x 1/M + 1000 x 2/M
    assert (computed.cost_status, computed.cost_usd, computed.cost_reported) == ("priced", Decimal("0.004"), None)

    assert reported.service == "task_summary"
    assert reported.cost_status == "reported"
    assert reported.cost_usd == reported.cost_reported == Decimal("0.012345")
    assert reported.cost_computed == Decimal("0.004")

    assert (failed.status, failed.error_message) == ("error", "rate limited")


def test_a_second_poll_of_an_integer_cursor_reads_nothing(app_db, make_settings, engine):
    app_db.insert(app_db.model_usage, model_usage(0), model_usage(1))
    settings = make_settings(model_usage_source(app_db.url))
    assert poll(settings, engine, "app-model-usage")["accepted"] == 2

    assert poll(settings, engine, "app-model-usage") == {"accepted": 0, "duplicates": 0, "rejected": 0}
    assert cursor(engine, "app-model-usage") == ("2", "int")


def test_rows_inserted_later_are_picked_up_and_the_integer_cursor_advances(app_db, make_settings, engine):
    app_db.insert(app_db.model_usage, model_usage(0), model_usage(1))
    settings = make_settings(model_usage_source(app_db.url))
    poll(settings, engine, "app-model-usage")
    assert cursor(engine, "app-model-usage") == ("2", "int")

    app_db.insert(app_db.model_usage, model_usage(2), model_usage(3), model_usage(4))
    assert poll(settings, engine, "app-model-usage") == {"accepted": 3, "duplicates": 0, "rejected": 0}
    assert cursor(engine, "app-model-usage") == ("5", "int")
    assert [e.event_id for e in events(engine)] == [f"app2:{n}" for n in range(1, 6)]


def test_polling_resumes_after_the_last_committed_batch(app_db, make_settings, engine):
    app_db.insert(app_db.model_usage, *(model_usage(m) for m in range(5)))
    settings = make_settings(model_usage_source(app_db.url).replace(
        'event_id_namespace = "app2"', 'event_id_namespace = "app2"\nbatch_size = 2'))
    assert poll(settings, engine, "app-model-usage") == {"accepted": 5, "duplicates": 0, "rejected": 0}
    assert cursor(engine, "app-model-usage") == ("5", "int")
    assert poll(settings, engine, "app-model-usage") == {"accepted": 0, "duplicates": 0, "rejected": 0}
