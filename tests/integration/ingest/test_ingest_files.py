"""Ingesting files into the ledger, end to end, on SQLite and PostgreSQL.

The records are small copies of what the seed systems really write (001 snake_case
JSONL, 002 CSV export, 003 camelCase Prisma rows, 004 emergency fallback lines).
Every test goes through the real database behind the ``engine``/``db_url``
fixtures, so each one runs on both dialects.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.engine import make_url

from worker import clock, db
from worker.ingest.ingestor import Ingestor, IngestStats
from worker.ledger.writer import LedgerWriter
from worker.models import IngestFile, IngestReject, JobRun, UsageEvent
from worker.ingest.normalise import Normaliser
from worker.ledger.pricing import Pricer
from worker.registry import registry
from worker.scheduler import run_job
from worker.settings import Settings, load

EVENTS = UsageEvent.__table__
REJECTS = IngestReject.__table__

# --------------------------------------------------------------------------- helpers


def jsonl(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def ledger(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {r.event_id: dict(r._mapping) for r in conn.execute(select(EVENTS))}


def event_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(EVENTS)).scalar_one()


def rejects(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(REJECTS).order_by(REJECTS.c.location,
                                                                                REJECTS.c.position))]


def subset(row: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in expected}


def source_toml(name: str, kind: str, glob: str, extra: str = "") -> str:
    return f'[[sources]]\nname = "{name}"\nkind = "{kind}"\npath = "{glob}"\n{extra}'


def poll(settings: Settings, engine: Engine, name: str = "inbox") -> IngestStats:
    return Ingestor(settings, engine).ingest_source(settings.source(name))


def make_quiet(path: Path, seconds: int = 3600) -> None:
    """Backdate the file's mtime: it has been quiet for longer than the settle period."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def call(i: int, *, minute: int = 0) -> dict[str, Any]:
    """A plain seed-001 style record with a stable id."""
    return {"id": f"evt-{i:05d}", "user_id": "u-1", "model": "gpt-4o-mini", "prompt_tokens": 100 + i,
            "completion_tokens": 20, "created_at": f"2025-10-18T12:{minute:02d}:{i % 60:02d}Z"}


# --------------------------------------------------------------------------- seed records

SEED_001 = [
    {"id": "5f0c3c1e-8a47-4a55-9a3e-2d1f0c6b7a10", "user_id": "8d1e6a52-3c1b-4f0e-bb0a-0f3d2e9c4a11",
     "model": "llama-3.1-70b-versatile", "endpoint": "/v1/chat/completions", "status_code": 200,
     "tokens_used": 1500, "prompt_tokens": 1000, "completion_tokens": 500, "duration_ms": 842,
     "error_message": None, "metadata": {"service": "draft_generator", "trends_count": 3},
     "created_at": "2025-10-18T12:00:00.250000+00:00"},
    {"id": "7a2b9d40-1f6e-4c3a-8e5d-6b0c2a1f9e22", "user_id": "8d1e6a52-3c1b-4f0e-bb0a-0f3d2e9c4a11",
     "model": "llama-3.1-70b-versatile", "endpoint": "/v1/chat/completions", "status_code": 429,
     "tokens_used": 0, "prompt_tokens": 0, "completion_tokens": 0, "duration_ms": 95,
     "error_message": "Rate limit reached for model llama-3.1-70b-versatile",
     "metadata": {"service": "trend_detector", "content_count": 12}, "created_at": "2025-10-18T12:01:00Z"},
    {"id": "c91e07f3-55d2-4b8e-a0c4-3e7f1d2b6c33", "user_id": "2b7c9e14-6d3a-4f81-9c2e-5a0b8d1f7e44",
     "model": "llama-3.1-70b-versatile", "endpoint": "/v1/chat/completions", "status_code": 504,
     "tokens_used": 600, "prompt_tokens": 600, "completion_tokens": 0, "duration_ms": 30000,
     "error_message": "Gateway Timeout", "metadata": {"service": "voice_analyzer", "samples_count": 4},
     "created_at": "2025-10-18T12:02:00+02:00"},
]

SEED_003 = [
    {"requestId": "req_01JAB3K9Z7Q4", "userId": "user123", "sessionId": "sess_9f2", "modelId": "llama-3.1-8b-instant",
     "modelName": "Llama 3.1 8B Instant", "provider": "groq", "inputTokens": 1200, "outputTokens": 300,
     "totalTokens": 1500, "latencyMs": 412, "cost": 0.00009, "purpose": "chat", "channel": "web",
     "status": "success", "errorMessage": None, "metadata": {"temperature": 0.7}, "createdAt": 1760788800123},
    {"requestId": "req_01JAB3KA0T1X", "userId": "user123", "sessionId": "sess_9f2", "modelId": "gpt-4o-mini",
     "modelName": "GPT-4o mini", "provider": "openai", "inputTokens": 50, "outputTokens": 0,
     "totalTokens": 50, "latencyMs": 30001, "cost": None, "purpose": "code", "channel": "api",
     "status": "timeout", "errorMessage": "upstream timed out", "metadata": None, "createdAt": 1760788860000},
]

SEED_002_HEADER = ("id,user_id,operation_type,model_requested,model_used,prompt_tokens,completion_tokens,"
                   "total_tokens,total_cost_usd,response_time_ms,status,created_at")
SEED_002_ROWS = [
    "0b6c1f2e-4d3a-4e5b-8c7d-9a0b1c2d3e01,3f9a2c1b-7e6d-4a5b-9c8d-1e2f3a4b5c61,brain_dump,"
    "anthropic/claude-3.5-sonnet,anthropic/claude-3.5-sonnet,2000,700,2700,0.0175,5234,success,"
    "2025-10-18 12:00:00.5+00",
    "0b6c1f2e-4d3a-4e5b-8c7d-9a0b1c2d3e02,3f9a2c1b-7e6d-4a5b-9c8d-1e2f3a4b5c61,daily_brief,"
    "openai/gpt-4o,openai/gpt-4o-mini,1500,,,,,failure,2025-10-18 12:05:00.123456+00",
]

SEED_004 = [
    {"timestamp": "2025-10-18T12:00:00.123Z", "tokensUsed": 1988, "useCase": "auto_populate", "userId": "u-77",
     "tenantId": "t-3", "error": 'null value in column "tenant_id" violates not-null constraint'},
    {"timestamp": "2025-10-18T12:05:00.000Z", "tokensUsed": 911, "useCase": "auto_populate", "tenantId": "t-3",
     "error": 'null value in column "user_id" violates not-null constraint'},
    {"timestamp": "2025-10-18T12:06:30.500Z", "tokensUsed": 402, "useCase": "auto_populate", "userId": None,
     "tenantId": None, "error": 'null value in column "user_id" violates not-null constraint'},
]


def seed_002_csv() -> bytes:
    return ("\n".join([SEED_002_HEADER, *SEED_002_ROWS]) + "\n").encode()


# --------------------------------------------------------------------------- each seed as it is


def test_seed_001_snake_case_records_are_stored_field_by_field(engine, make_settings, tmp_path):
    log = tmp_path / "llm_usage_logs.jsonl"
    log.write_bytes(jsonl(*SEED_001))

    stats = Ingestor(make_settings(), engine).ingest_paths([log])

    assert stats.as_dict() == {"files": 1, "accepted": 3, "duplicates": 0, "rejected": 0,
                               "unattributed": 0, "unpriced": 0}
    rows = ledger(engine)
    ok = rows["5f0c3c1e-8a47-4a55-9a3e-2d1f0c6b7a10"]
    expected = {
        "source": "cli", "occurred_at": datetime(2025, 10, 18, 12, 0, 0, 250000, tzinfo=UTC),
        "account_id": "8d1e6a52-3c1b-4f0e-bb0a-0f3d2e9c4a11", "tenant_id": None, "service": "draft_generator",
        "provider": "groq", "model": "llama-3.1-70b-versatile", "model_used": "llama-3.1-70b-versatile",
        "status": "success", "status_code": 200, "prompt_tokens": 1000, "completion_tokens": 500,
        "total_tokens": 1500, "cached_tokens": 0, "reasoning_tokens": 0, "latency_ms": 842,
        # groq llama-3.1-70b-versatile: $0.59 in / $0.79 out per million tokens
        "cost_usd": Decimal("0.000985"), "cost_computed": Decimal("0.000985"), "cost_reported": None,
        "cost_status": "priced", "unattributed": False, "model_defaulted": False, "error_message": None,
        "metadata": {"service": "draft_generator", "trends_count": 3, "endpoint": "/v1/chat/completions"},
    }
    assert subset(ok, expected) == expected
    assert ok["price_source"].startswith("genai-prices") and "llama-3.1-70b-versatile" in ok["price_source"]

    limited = rows["7a2b9d40-1f6e-4c3a-8e5d-6b0c2a1f9e22"]
    expected = {"status": "error", "status_code": 429, "total_tokens": 0, "service": "trend_detector",
                "error_message": "Rate limit reached for model llama-3.1-70b-versatile",
                "cost_usd": Decimal(0), "cost_status": "priced"}
    assert subset(limited, expected) == expected
    timed_out = rows["c91e07f3-55d2-4b8e-a0c4-3e7f1d2b6c33"]
    assert timed_out["status"] == "timeout"
    assert timed_out["occurred_at"] == datetime(2025, 10, 18, 10, 2, tzinfo=UTC)  # +02:00 stored as UTC
    assert timed_out["latency_ms"] == 30000


def test_seed_003_camel_case_rows_use_model_id_and_keep_the_reported_cost(engine, make_settings, tmp_path):
    log = tmp_path / "llm_model_usage.jsonl"
    log.write_bytes(jsonl(*SEED_003))

    stats = Ingestor(make_settings(), engine).ingest_paths([log])

    assert (stats.accepted, stats.rejected, stats.unpriced) == (2, 0, 0)
    rows = ledger(engine)
    chat = rows["req_01JAB3K9Z7Q4"]
    expected = {
        "occurred_at": datetime(2025, 10, 18, 12, 0, 0, 123000, tzinfo=UTC),  # epoch milliseconds
        "account_id": "user123", "service": "chat", "provider": "groq",
        "model": "llama-3.1-8b-instant", "model_used": "llama-3.1-8b-instant",  # modelId wins over modelName
        "status": "success", "status_code": None, "prompt_tokens": 1200, "completion_tokens": 300,
        "total_tokens": 1500, "latency_ms": 412,
        "cost_usd": Decimal("0.00009"), "cost_reported": Decimal("0.00009"),
        # groq llama-3.1-8b-instant: $0.05 in / $0.08 out per million tokens
        "cost_computed": Decimal("0.000084"), "cost_status": "reported",
        "unattributed": False, "model_defaulted": False, "error_message": None,
        "metadata": {"temperature": 0.7, "sessionId": "sess_9f2", "modelName": "Llama 3.1 8B Instant",
                     "channel": "web"},
    }
    assert subset(chat, expected) == expected

    timeout = rows["req_01JAB3KA0T1X"]
    expected = {"status": "timeout", "error_message": "upstream timed out", "provider": "openai",
                "cost_reported": None, "cost_status": "priced", "cost_usd": Decimal("0.0000075"),
                "occurred_at": datetime(2025, 10, 18, 12, 1, tzinfo=UTC),
                "metadata": {"sessionId": "sess_9f2", "modelName": "GPT-4o mini", "channel": "api"}}
    assert subset(timeout, expected) == expected


def test_seed_002_csv_export_with_postgres_timestamps_and_empty_cells(engine, make_settings, tmp_path):
    export = tmp_path / "llm_usage_logs.csv"
    export.write_bytes(seed_002_csv())

    stats = Ingestor(make_settings(), engine).ingest_paths([export])

    assert stats.as_dict() == {"files": 1, "accepted": 2, "duplicates": 0, "rejected": 0,
                               "unattributed": 0, "unpriced": 0}
    rows = ledger(engine)
    first = rows["0b6c1f2e-4d3a-4e5b-8c7d-9a0b1c2d3e01"]
    expected = {
        "occurred_at": datetime(2025, 10, 18, 12, 0, 0, 500000, tzinfo=UTC),
        "account_id": "3f9a2c1b-7e6d-4a5b-9c8d-1e2f3a4b5c61", "service": "brain_dump", "provider": "anthropic",
        "model": "anthropic/claude-3.5-sonnet", "model_used": "anthropic/claude-3.5-sonnet",
        "status": "success", "prompt_tokens": 2000, "completion_tokens": 700, "total_tokens": 2700,
        "latency_ms": 5234, "cost_usd": Decimal("0.0175"), "cost_reported": Decimal("0.0175"),
        "cost_computed": Decimal("0.0165"), "cost_status": "reported", "unattributed": False, "metadata": None,
    }
    assert subset(first, expected) == expected

    fallback = rows["0b6c1f2e-4d3a-4e5b-8c7d-9a0b1c2d3e02"]
    expected = {
        "occurred_at": datetime(2025, 10, 18, 12, 5, 0, 123456, tzinfo=UTC),
        "service": "daily_brief", "model": "openai/gpt-4o", "model_used": "openai/gpt-4o-mini",
        "provider": "openai", "status": "error",  # "failure"
        "prompt_tokens": 1500, "completion_tokens": 0, "total_tokens": 1500,  # empty cells: absent, derived
        "latency_ms": None, "cost_reported": None,
        # the model actually used is what is priced: gpt-4o-mini at $0.15 per million input tokens
        "cost_usd": Decimal("0.000225"), "cost_status": "priced",
    }
    assert subset(fallback, expected) == expected


def test_seed_004_emergency_lines_without_model_or_user_are_kept_and_flagged(engine, make_settings, tmp_path):
    log = tmp_path / "emergency-token-usage.log"
    log.write_bytes(jsonl(*SEED_004))

    stats = Ingestor(make_settings(), engine).ingest_paths([log])

    assert stats.as_dict() == {"files": 1, "accepted": 3, "duplicates": 0, "rejected": 0,
                               "unattributed": 2, "unpriced": 3}
    by_time = {r["occurred_at"]: r for r in ledger(engine).values()}
    attributed = by_time[datetime(2025, 10, 18, 12, 0, 0, 123000, tzinfo=UTC)]
    expected = {
        "account_id": "u-77", "tenant_id": "t-3", "service": "auto_populate", "model": "(unknown)",
        "model_used": "(unknown)", "provider": "(unknown)", "status": "success", "total_tokens": 1988,
        "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None, "cost_computed": None,
        "cost_status": "unpriced", "unattributed": False, "model_defaulted": True,
        "error_message": 'null value in column "tenant_id" violates not-null constraint', "metadata": None,
    }
    assert subset(attributed, expected) == expected
    assert attributed["event_id"].startswith("h:")  # no id in the record: a content hash
    missing_user = by_time[datetime(2025, 10, 18, 12, 5, tzinfo=UTC)]
    null_user = by_time[datetime(2025, 10, 18, 12, 6, 30, 500000, tzinfo=UTC)]
    assert (missing_user["account_id"], missing_user["unattributed"]) == ("(unattributed)", True)
    assert (null_user["account_id"], null_user["unattributed"], null_user["tenant_id"]) == (
        "(unattributed)", True, None)


# --------------------------------------------------------------------------- idempotency


def test_reingesting_a_file_adds_nothing_and_counts_every_event_as_a_duplicate(engine, make_settings, tmp_path):
    log = tmp_path / "usage.jsonl"
    log.write_bytes(jsonl(*SEED_001, *SEED_003))
    ingestor = Ingestor(make_settings(), engine)
    ingestor.ingest_paths([log])
    before = ledger(engine)

    again = ingestor.ingest_paths([log])

    assert (again.accepted, again.duplicates) == (0, 5)
    assert ledger(engine) == before


def test_a_jsonl_file_and_its_rotated_gzip_copy_are_stored_once(engine, make_settings, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = jsonl(*SEED_001)
    (inbox / "usage.jsonl").write_bytes(data)
    (inbox / "usage.jsonl.1.gz").write_bytes(gzip_bytes(data))

    stats = Ingestor(make_settings(), engine).ingest_paths([inbox])

    assert (stats.files, stats.accepted, stats.duplicates) == (2, 3, 3)
    assert event_count(engine) == 3


def test_the_same_event_arriving_in_two_different_files_is_stored_once(engine, make_settings, tmp_path):
    (tmp_path / "app-a.jsonl").write_bytes(jsonl(call(1), call(2)))
    (tmp_path / "app-b.jsonl").write_bytes(jsonl(call(2), call(3), call(4)))  # new events and one seen before

    stats = Ingestor(make_settings(), engine).ingest_paths([tmp_path / "app-a.jsonl", tmp_path / "app-b.jsonl"])

    assert (stats.accepted, stats.duplicates) == (4, 1)
    rows = ledger(engine)
    assert sorted(rows) == ["evt-00001", "evt-00002", "evt-00003", "evt-00004"]
    assert rows["evt-00002"]["prompt_tokens"] == 102


def test_records_without_ids_are_deduplicated_by_content(engine, make_settings, tmp_path):
    same = SEED_004[0]
    reordered = dict(reversed(list(same.items())))  # same content, other key order and spacing
    different = {**same, "tokensUsed": 1989}
    (tmp_path / "a.log").write_bytes(jsonl(same, same))
    (tmp_path / "b.log").write_bytes(json.dumps(reordered, indent=None, separators=(" ,", " : ")).encode()
                                     + b"\n" + jsonl(different))

    stats = Ingestor(make_settings(), engine).ingest_paths([tmp_path / "a.log", tmp_path / "b.log"])

    assert (stats.accepted, stats.duplicates) == (2, 2)
    assert sorted(r["total_tokens"] for r in ledger(engine).values()) == [1988, 1989]


# --------------------------------------------------------------------------- configured source polling


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


@pytest.fixture
def inbox_settings(make_settings, inbox: Path) -> Settings:
    return make_settings(source_toml("inbox", "jsonl", f"{inbox}/*.jsonl*"))


def test_a_growing_file_is_followed_and_only_new_lines_are_read(engine, inbox, inbox_settings):
    log = inbox / "usage.jsonl"
    log.write_bytes(jsonl(call(1), call(2)))
    first = poll(inbox_settings, engine)

    with log.open("ab") as fh:
        fh.write(jsonl(call(3)) + b'["not", "an", "object"]\n')
    second = poll(inbox_settings, engine)

    assert (first.accepted, first.duplicates) == (2, 0)
    assert (second.files, second.accepted, second.duplicates, second.rejected) == (1, 1, 0, 1)
    assert [(r["position"], r["reason"]) for r in rejects(engine)] == [(4, "not a JSON object (got an array)")]
    assert sorted(ledger(engine)) == ["evt-00001", "evt-00002", "evt-00003"]


def test_a_last_line_without_newline_waits_until_it_is_completed(engine, inbox, inbox_settings):
    log = inbox / "usage.jsonl"
    line = json.dumps(call(2)).encode()
    log.write_bytes(jsonl(call(1)) + line[:25])  # the writer is in the middle of line 2

    partial = poll(inbox_settings, engine)
    with log.open("ab") as fh:
        fh.write(line[25:] + b"\n")
    completed = poll(inbox_settings, engine)

    assert (partial.accepted, partial.rejected, partial.skipped_files) == (1, 0, 0)
    assert (completed.accepted, completed.duplicates, completed.rejected) == (1, 0, 0)
    assert sorted(ledger(engine)) == ["evt-00001", "evt-00002"]


def test_a_last_line_without_newline_is_taken_once_the_file_is_final(engine, inbox, inbox_settings):
    log = inbox / "usage.jsonl"
    log.write_bytes(jsonl(call(1)) + json.dumps(call(2)).encode())  # the writer never ended the line

    growing = poll(inbox_settings, engine)
    make_quiet(log)
    final = poll(inbox_settings, engine)
    after = poll(inbox_settings, engine)

    assert (growing.accepted, final.accepted, final.duplicates) == (1, 1, 0)
    assert (after.files, after.skipped_files, after.accepted) == (0, 1, 0)
    assert sorted(ledger(engine)) == ["evt-00001", "evt-00002"]


def test_an_unchanged_file_is_skipped_on_the_next_poll(engine, inbox, inbox_settings):
    (inbox / "usage.jsonl").write_bytes(jsonl(call(1), call(2)))

    first = poll(inbox_settings, engine)
    second = poll(inbox_settings, engine)

    assert (first.files, first.skipped_files, first.accepted) == (1, 0, 2)
    assert (second.files, second.skipped_files, second.accepted, second.duplicates) == (0, 1, 0, 0)


def test_a_rotated_file_and_its_gzip_are_not_read_twice(engine, inbox, inbox_settings):
    log = inbox / "usage.jsonl"
    log.write_bytes(jsonl(call(1), call(2), call(3)))
    first = poll(inbox_settings, engine)

    # logrotate: rename; the application still holds the old file and writes one more line
    rotated = inbox / "usage.jsonl.1"
    log.rename(rotated)
    with rotated.open("ab") as fh:
        fh.write(jsonl(call(4)))
    log.write_bytes(jsonl(call(10, minute=1), call(11, minute=1)))
    after_rotation = poll(inbox_settings, engine)

    # later: the rotated file is compressed and the plain one removed
    (inbox / "usage.jsonl.1.gz").write_bytes(gzip_bytes(rotated.read_bytes()))
    rotated.unlink()
    after_compression = poll(inbox_settings, engine)

    assert (first.accepted, first.duplicates) == (3, 0)
    assert (after_rotation.files, after_rotation.accepted, after_rotation.duplicates) == (2, 3, 0)
    assert (after_compression.accepted, after_compression.duplicates, after_compression.rejected) == (0, 0, 0)
    assert sorted(ledger(engine)) == ["evt-00001", "evt-00002", "evt-00003", "evt-00004", "evt-00010",
                                      "evt-00011"]


def test_a_gzip_of_a_partly_read_file_continues_where_the_plain_file_stopped(engine, inbox, inbox_settings):
    log = inbox / "usage.jsonl"
    log.write_bytes(jsonl(call(1), call(2)))
    poll(inbox_settings, engine)
    with log.open("ab") as fh:  # written after the last poll, then rotated and compressed at once
        fh.write(jsonl(call(3)))
    (inbox / "usage.jsonl.1.gz").write_bytes(gzip_bytes(log.read_bytes()))
    log.unlink()

    stats = poll(inbox_settings, engine)

    assert (stats.files, stats.accepted, stats.duplicates) == (1, 1, 0)
    assert sorted(ledger(engine)) == ["evt-00001", "evt-00002", "evt-00003"]


def test_a_gzip_file_still_being_written_is_read_to_its_last_complete_line_then_continued(
        engine, inbox, inbox_settings):
    data = jsonl(*(call(i, minute=i // 60) for i in range(1, 201)))
    whole = gzip.compress(data, compresslevel=1, mtime=0)
    gz = inbox / "usage.jsonl.1.gz"
    gz.write_bytes(whole[: len(whole) // 2])  # logrotate's compress is half way through

    partial = poll(inbox_settings, engine)
    gz.write_bytes(whole)
    rest = poll(inbox_settings, engine)

    assert 0 < partial.accepted < 200
    assert (partial.rejected, rest.rejected, rest.duplicates) == (0, 0, 0)
    assert partial.accepted + rest.accepted == 200
    assert event_count(engine) == 200


def test_a_growing_csv_file_is_followed_with_its_header(engine, make_settings, tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    settings = make_settings(source_toml("exports", "csv", f"{exports}/*.csv"))
    export = exports / "llm_usage_logs.csv"
    export.write_bytes((SEED_002_HEADER + "\n" + SEED_002_ROWS[0] + "\n").encode())
    first = poll(settings, engine, "exports")

    with export.open("ab") as fh:
        fh.write((SEED_002_ROWS[1] + "\n" + "only,three,cells,too,many,,,,,,,,,,\n").encode())
    second = poll(settings, engine, "exports")

    assert (first.accepted, second.accepted, second.duplicates, second.rejected) == (1, 1, 0, 1)
    assert ledger(engine)["0b6c1f2e-4d3a-4e5b-8c7d-9a0b1c2d3e02"]["service"] == "daily_brief"
    [reject] = rejects(engine)
    assert (reject["position"], reject["format"], reject["header"]) == (4, "csv", SEED_002_HEADER.encode())


def test_files_that_both_start_with_a_blank_line_are_both_read_in_full(engine, inbox, inbox_settings):
    # A blank line is not a record, so it cannot be what identifies a file.
    (inbox / "a.jsonl").write_bytes(b"\n" + jsonl(call(1)))
    (inbox / "b.jsonl").write_bytes(b"\n" + jsonl(call(2), call(3), call(4)))

    stats = poll(inbox_settings, engine)

    assert (stats.accepted, stats.rejected) == (4, 0)
    assert sorted(ledger(engine)) == ["evt-00001", "evt-00002", "evt-00003", "evt-00004"]


def test_a_new_file_under_a_rotated_name_is_read_even_with_the_old_size_and_mtime(engine, make_settings, inbox):
    # Rotated copies leave the glob (usage.jsonl -> usage.jsonl.1). The new usage.jsonl happens to
    # have the old file's size and, written within the same clock tick, its mtime.
    settings = make_settings(source_toml("inbox", "jsonl", f"{inbox}/*.jsonl"))
    log = inbox / "usage.jsonl"
    log.write_bytes(jsonl(call(1), call(2)))
    poll(settings, engine)
    old = log.stat()
    log.rename(inbox / "usage.jsonl.1")

    log.write_bytes(jsonl(call(3), call(4)))
    assert log.stat().st_size == old.st_size
    os.utime(log, ns=(old.st_atime_ns, old.st_mtime_ns))
    stats = poll(settings, engine)

    assert (stats.accepted, stats.skipped_files) == (2, 0)
    assert sorted(ledger(engine)) == ["evt-00001", "evt-00002", "evt-00003", "evt-00004"]


def test_a_different_file_that_starts_with_the_same_record_is_read_in_full(engine, inbox, inbox_settings):
    (inbox / "daily.jsonl").write_bytes(jsonl(call(1), call(2)))
    (inbox / "weekly.jsonl").write_bytes(jsonl(call(1), call(3), call(4)))

    stats = poll(inbox_settings, engine)

    assert sorted(ledger(engine)) == ["evt-00001", "evt-00002", "evt-00003", "evt-00004"]
    assert stats.duplicates == 1


# --------------------------------------------------------------------------- one transaction per batch


def test_a_batch_whose_transaction_is_rolled_back_leaves_no_events_behind(engine):
    """LedgerWriter.flush writes "in the caller's transaction": the checkpoint commits with it or not at all."""
    ev = Normaliser().normalise(call(1))
    writer = LedgerWriter(source="inbox", ingested_at=clock.now(), dialect=engine.dialect.name,
                          tz=ZoneInfo("UTC"))
    writer.add(ev, Pricer().price(ev))

    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            writer.flush(conn)
            raise RuntimeError("the checkpoint write failed")

    assert event_count(engine) == 0


def test_a_file_under_a_path_longer_than_1000_characters_is_ingested(engine, make_settings, tmp_path):
    deep = tmp_path
    for _ in range(5):
        deep = deep / ("d" * 230)
    deep.mkdir(parents=True)
    log = deep / "usage.jsonl"
    log.write_bytes(jsonl(call(1)))
    assert len(str(log)) > 1000

    stats = Ingestor(make_settings(), engine).ingest_paths([log])

    assert stats.accepted == 1
    assert sorted(ledger(engine)) == ["evt-00001"]


# --------------------------------------------------------------------------- crash and resume

CRASH_RUN = """
import sys, time
from worker import db
from worker.ingest.ingestor import Ingestor
from worker.settings import load

settings = load(sys.argv[1], env={})
engine = db.make_engine(settings.database_url)
# a little time after each batch, so the test can kill the run in the middle
Ingestor(settings, engine).ingest_source(settings.source("inbox"), progress=lambda _n: time.sleep(0.03))
engine.dispose()
"""


def crash_corpus(n: int) -> tuple[bytes, int]:
    """n lines of mixed records (ids and no ids, priced and unpriced, duplicates, rejects, blanks)."""
    models = [("gpt-4o-mini", None), ("llama-3.1-70b-versatile", "groq"), ("in-house-7b", None)]
    start = datetime(2025, 10, 18, 0, 0, tzinfo=UTC)
    lines: list[bytes] = []
    valid_ids: set[str] = set()
    for i in range(n):
        if i % 997 == 500:
            lines.append(b'{"id": "bad-%d", "created_at": "not a date", "prompt_tokens": 1}\n' % i)
            continue
        if i % 613 == 100:
            lines.append(b"\n")
            continue
        if i % 250 == 7:
            lines.append(lines[-1])  # the same event logged twice
            continue
        model, provider = models[i % 3]
        rec: dict[str, Any] = {"created_at": (start + timedelta(seconds=7 * i)).isoformat(), "model": model,
                               "prompt_tokens": 50 + i % 400, "completion_tokens": 10 + i % 90,
                               "duration_ms": 300 + i}
        if i % 10 != 3:
            rec["id"] = f"crash-{i:06d}"
            valid_ids.add(rec["id"])
        if i % 7 != 0:
            rec["user_id"] = f"user-{i % 23}"
        if provider:
            rec["custom_llm_provider"] = provider
        lines.append(json.dumps(rec).encode() + b"\n")
    with_ids = len(valid_ids)
    without_ids = sum(1 for i in range(n) if i % 10 == 3 and i % 997 != 500 and i % 613 != 100 and i % 250 != 7)
    return b"".join(lines), with_ids + without_ids


@pytest.fixture
def clean_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second migrated database of the same kind, for a clean run to compare against."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'clean.db'}"
        db.migrate(url)
        yield url
        return
    from tests.conftest import PG_ADMIN_URL

    name = f"tokentally_clean_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(db_url).set(database=name).render_as_string(hide_password=False)
    try:
        db.migrate(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ledger_snapshot(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        events = conn.execute(select(EVENTS.c.event_id, EVENTS.c.cost_usd, EVENTS.c.total_tokens,
                                     EVENTS.c.account_id, EVENTS.c.model, EVENTS.c.cost_status,
                                     EVENTS.c.occurred_at).order_by(EVENTS.c.event_id)).all()
        rejected = conn.execute(select(REJECTS.c.position, REJECTS.c.reason, REJECTS.c.raw)
                                .order_by(REJECTS.c.position)).all()
        files = conn.execute(select(IngestFile.offset, IngestFile.position, IngestFile.size)).all()
    return {"events": [tuple(r) for r in events], "rejects": [tuple(r) for r in rejected],
            "files": [tuple(r) for r in files]}


def test_an_ingest_killed_mid_run_and_restarted_ends_with_the_ledger_of_one_clean_run(
        db_url, engine, clean_db_url, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data, expected_events = crash_corpus(3000)
    (inbox / "usage.jsonl").write_bytes(data)
    sources = source_toml("inbox", "jsonl", f"{inbox}/*.jsonl")

    def config(url: str, name: str) -> Path:
        path = tmp_path / name
        path.write_text(f'[database]\nurl = "{url}"\n[ingest]\nbatch_size = 100\n{sources}', encoding="utf-8")
        return path

    crash_cfg = config(db_url, "crash.toml")
    with open(tmp_path / "crash.stderr", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", CRASH_RUN, str(crash_cfg)], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while True:
                stored = event_count(engine)
                if 0 < stored < expected_events:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                assert proc.poll() is None, (
                    f"the run ended (rc {proc.returncode}, {stored} events) before it could be killed: "
                    + (tmp_path / "crash.stderr").read_text())
                assert time.monotonic() < deadline, "the run stored nothing in time"
                time.sleep(0.005)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert event_count(engine) < expected_events

    settings = load(crash_cfg, env={})
    resumed = Ingestor(settings, engine).ingest_source(settings.source("inbox"))

    clean_settings = load(config(clean_db_url, "clean.toml"), env={})
    clean_engine = db.make_engine(clean_db_url)
    try:
        clean = Ingestor(clean_settings, clean_engine).ingest_source(clean_settings.source("inbox"))
        expected = ledger_snapshot(clean_engine)
    finally:
        clean_engine.dispose()

    assert clean.accepted == expected_events
    assert resumed.accepted > 0
    got = ledger_snapshot(engine)
    assert len(got["events"]) == expected_events
    assert got == expected


# --------------------------------------------------------------------------- quarantine

TS = "2025-10-18T12:00:00Z"
BAD_JSONL = [
    (1, json.dumps({"id": "ok-1", "user_id": "u1", "model": "gpt-4o-mini", "prompt_tokens": 10,
                    "completion_tokens": 5, "created_at": TS}).encode(), None),
    (2, b'[{"id": "in-an-array"}, 7]', "not a JSON object (got an array)"),  # not all objects: one reject
    (3, b'{"id": "latin1", "user_id": "J\xf6rg", "model": "gpt-4o-mini", "prompt_tokens": 3, "created_at": "'
        + TS.encode() + b'"}', "invalid UTF-8 at byte 30"),
    (4, b'{"id": "no-ts", "user_id": "u1", "model": "gpt-4o-mini", "prompt_tokens": 10}', "no timestamp"),
    (5, b'{"id": "bad-ts", "created_at": "last tuesday", "prompt_tokens": 10}',
     "unparseable timestamp 'last tuesday'"),
    (6, b'{"id": "neg", "created_at": "' + TS.encode() + b'", "prompt_tokens": -5, "completion_tokens": 3}',
     "prompt_tokens is negative: -5"),
    (7, b'{"id": "nan", "created_at": "' + TS.encode() + b'", "prompt_tokens": 10, "completion_tokens": "lots"}',
     "completion_tokens is not a number: 'lots'"),
    (8, b'{"id": "empty", "created_at": "' + TS.encode() + b'", "model": "gpt-4o-mini", "user_id": "u1"}',
     "no token counts and no cost"),
    (9, b"", None),  # blank: not a record
    (10, b"this is not json", "invalid JSON"),
]
BAD_CSV = [
    (2, SEED_002_ROWS[0].encode(), None),
    (3, SEED_002_ROWS[1].encode() + b",extra,cells", "CSV row has 14 fields, the header has 12"),
    (4, b"0b6c-03,3f9a,brain_dump,gpt-4o-mini,gpt-4o-mini,10,5,15,,120,success,2025-10-18 13:00:00\xa0+00",
     "invalid UTF-8 at byte"),
    (5, b"0b6c-04,3f9a,brain_dump,gpt-4o-mini,gpt-4o-mini,10,5,15,,120,success,", "no timestamp"),
]


@pytest.fixture
def quarantined(tmp_path: Path) -> tuple[Path, Path]:
    bad_jsonl = tmp_path / "mixed.jsonl"
    bad_jsonl.write_bytes(b"".join(raw + b"\n" for _, raw, _ in BAD_JSONL))
    bad_csv = tmp_path / "mixed.csv"
    bad_csv.write_bytes(SEED_002_HEADER.encode() + b"\r\n" + b"".join(raw + b"\r\n" for _, raw, _ in BAD_CSV))
    return bad_jsonl, bad_csv


def test_every_reject_reason_is_quarantined_with_source_position_exact_bytes_and_reason(
        engine, cli, quarantined):
    bad_jsonl, bad_csv = quarantined

    result = cli("ingest", bad_jsonl, bad_csv, "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"files": 2, "accepted": 2, "duplicates": 0, "rejected": 11,
                                         "unattributed": 0, "unpriced": 0}
    stored = {(r["location"], r["position"]): r for r in rejects(engine)}
    expected = [(bad_jsonl, pos, raw, reason, "jsonl") for pos, raw, reason in BAD_JSONL if reason] + [
        (bad_csv, pos, raw, reason, "csv") for pos, raw, reason in BAD_CSV if reason]
    assert sorted(stored) == sorted((str(path), pos) for path, pos, *_ in expected)
    for path, pos, raw, reason, fmt in expected:
        row = stored[(str(path), pos)]
        assert row["source"] == "cli"
        assert row["raw"] == raw, (pos, row["raw"])
        assert row["raw_sha256"] == hashlib.sha256(raw).hexdigest()
        assert row["reason"].startswith(reason), (pos, row["reason"])
        assert (row["format"], row["status"], row["event_id"]) == (fmt, "open", None)
        assert row["header"] == (SEED_002_HEADER.encode() if fmt == "csv" else None)


def test_reingesting_does_not_duplicate_rejects(engine, make_settings, quarantined):
    ingestor = Ingestor(make_settings(), engine)
    ingestor.ingest_paths(list(quarantined))
    before = rejects(engine)

    ingestor.ingest_paths(list(quarantined))

    assert rejects(engine) == before
    assert len(before) == 11


def test_rejects_list_shows_the_quarantined_records_as_json(engine, cli, quarantined):
    bad_jsonl, _ = quarantined
    cli("ingest", bad_jsonl)

    result = cli("rejects", "list", "--format", "json")

    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(r["position"], r["status"], r["source"], r["location"]) for r in listed] == [
        (pos, "open", "cli", str(bad_jsonl)) for pos, _, reason in BAD_JSONL if reason]
    by_position = {r["position"]: r for r in listed}
    latin1 = BAD_JSONL[2][1]
    assert (by_position[3]["raw_base64"], base64.b64decode(by_position[3]["raw"])) == (True, latin1)  # not UTF-8
    assert by_position[6]["raw_base64"] is False
    assert by_position[6]["reason"] == "prompt_tokens is negative: -5"


def test_rejects_retry_leaves_unfixable_records_open_and_counts_them(engine, cli, quarantined):
    cli("ingest", *quarantined)
    before = rejects(engine)

    result = cli("rejects", "retry", "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"retried": 11, "accepted": 0, "duplicates": 0, "still_rejected": 11, "errors": 0}
    after = rejects(engine)
    assert [(r["id"], r["status"], r["resolved_at"], r["event_id"]) for r in after] == [
        (r["id"], "open", None, None) for r in before]
    assert event_count(engine) == 2


def test_rejects_retry_keeps_the_reason_of_a_record_that_is_still_rejected_for_it(engine, cli, quarantined):
    cli("ingest", *quarantined)
    before = {r["id"]: r["reason"] for r in rejects(engine)}

    cli("rejects", "retry")

    assert {r["id"]: r["reason"] for r in rejects(engine)} == before


def test_rejects_retry_accepts_records_that_are_valid_now_once(engine, cli, quarantined):
    cli("ingest", *quarantined)
    # Quarantined by an older version that did not know these aliases: valid records today.
    old_jsonl = jsonl(SEED_003[0]).rstrip(b"\n")
    old_csv = SEED_002_ROWS[0].replace("0b6c1f2e-4d3a-4e5b-8c7d-9a0b1c2d3e01", "csv-from-old-version").encode()
    already_in_ledger = BAD_JSONL[0][1]
    received = datetime(2025, 10, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(insert(IngestReject), [
            {"source": "cli", "location": "/var/inbox/old.jsonl", "position": 7, "reason": "unknown field createdAt",
             "raw": old_jsonl, "raw_sha256": hashlib.sha256(old_jsonl).hexdigest(), "format": "jsonl",
             "header": None, "received_at": received, "status": "open"},
            {"source": "cli", "location": "/var/inbox/old.csv", "position": 2, "reason": "unknown column",
             "raw": old_csv, "raw_sha256": hashlib.sha256(old_csv).hexdigest(), "format": "csv",
             "header": SEED_002_HEADER.encode(), "received_at": received, "status": "open"},
            {"source": "cli", "location": "/var/inbox/old2.jsonl", "position": 1, "reason": "old rule",
             "raw": already_in_ledger, "raw_sha256": hashlib.sha256(b"old:" + already_in_ledger).hexdigest(),
             "format": "jsonl", "header": None, "received_at": received, "status": "open"},
        ])

    first = cli("rejects", "retry", "--format", "json")
    second = cli("rejects", "retry", "--format", "json")

    assert json.loads(first.stdout) == {"retried": 14, "accepted": 2, "duplicates": 1, "still_rejected": 11, "errors": 0}
    assert json.loads(second.stdout) == {"retried": 11, "accepted": 0, "duplicates": 0, "still_rejected": 11, "errors": 0}
    resolved = {r["location"]: r for r in rejects(engine) if r["status"] == "accepted"}
    assert {loc: r["event_id"] for loc, r in resolved.items()} == {
        "/var/inbox/old.jsonl": "req_01JAB3K9Z7Q4", "/var/inbox/old.csv": "csv-from-old-version",
        "/var/inbox/old2.jsonl": "ok-1"}
    assert all(r["resolved_at"] is not None for r in resolved.values())
    rows = ledger(engine)
    assert len(rows) == 4
    expected = {"source": "cli", "model": "llama-3.1-8b-instant", "cost_usd": Decimal("0.00009")}
    assert subset(rows["req_01JAB3K9Z7Q4"], expected) == expected
    assert rows["csv-from-old-version"]["service"] == "brain_dump"
    listed = json.loads(cli("rejects", "list", "--all", "--format", "json").stdout)
    assert sum(1 for r in listed if r["status"] == "accepted") == 3


# --------------------------------------------------------------------------- CLI


def test_cli_ingest_of_a_directory_prints_one_json_object_with_the_counts(cli, engine, tmp_path):
    drop = tmp_path / "drop"
    (drop / "nested").mkdir(parents=True)
    (drop / "a.jsonl").write_bytes(jsonl(*SEED_001) + b"not json\n"
                                   + jsonl({"id": "x-1", "model": "in-house-7b", "prompt_tokens": 5,
                                            "completion_tokens": 1, "created_at": TS}))
    (drop / "nested" / "b.csv").write_bytes(seed_002_csv())
    (drop / "nested" / "c.jsonl.gz").write_bytes(gzip_bytes(jsonl(SEED_001[0], *SEED_003)))

    result = cli("ingest", drop, "--format", "json")

    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout) == {"files": 3, "accepted": 8, "duplicates": 1, "rejected": 1,
                                         "unattributed": 1, "unpriced": 1}
    assert event_count(engine) == 8


def test_cli_ingest_of_a_missing_path_exits_2_and_names_it(cli, tmp_path):
    missing = tmp_path / "nowhere" / "exports-of-the-application-database-for-october" / "usage.jsonl"

    result = cli("ingest", missing, "--format", "json")

    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr
    assert str(missing) in result.stderr  # the whole path, on one line
    assert result.stdout == ""


def test_cli_error_messages_name_paths_with_brackets_as_they_are(cli, tmp_path):
    missing = tmp_path / "usage[old].jsonl"

    result = cli("ingest", missing)

    assert result.exit_code == 2
    assert "usage[old].jsonl" in result.stderr


def test_cli_ingest_with_source_applies_that_sources_defaults(cli, engine, tmp_path):
    cfg = tmp_path / "emergency.toml"
    cfg.write_text(source_toml("emergency", "jsonl", "logs/emergency-*.log",
                               'defaults = { model = "llama-3.1-70b-versatile", provider = "groq", '
                               'service = "auto_populate" }\n'), encoding="utf-8")
    log = tmp_path / "emergency-token-usage.log"
    log.write_bytes(jsonl(*SEED_004, {**SEED_004[0], "timestamp": "2025-10-18T13:00:00Z", "useCase": "summarise",
                                      "promptTokens": 1500, "completionTokens": 488}))

    result = cli("ingest", log, "--source", "emergency", "--format", "json", config=cfg)

    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert {k: counts[k] for k in ("files", "accepted", "duplicates", "rejected", "unattributed")} == {
        "files": 1, "accepted": 4, "duplicates": 0, "rejected": 0, "unattributed": 2}
    rows = sorted(ledger(engine).values(), key=lambda r: r["occurred_at"])
    assert {(r["source"], r["model"], r["model_used"], r["provider"], r["model_defaulted"]) for r in rows} == {
        ("emergency", "llama-3.1-70b-versatile", "llama-3.1-70b-versatile", "groq", True)}
    assert [r["service"] for r in rows] == ["auto_populate"] * 3 + ["summarise"]  # a record's own value wins
    split = rows[-1]
    # 1500 in x $0.59 + 488 out x $0.79 per million tokens
    assert (split["cost_status"], split["cost_usd"]) == ("priced", Decimal("0.00127052"))


def test_seed_004_lines_are_priced_by_a_default_model_with_a_flat_rate(cli, engine, tmp_path):
    cfg = tmp_path / "emergency.toml"
    cfg.write_text(source_toml("emergency", "jsonl", "logs/*.log",
                               'defaults = { model = "grok-2", provider = "x-ai" }\n')
                   + '[[pricing.overrides]]\nmodel = "grok-2"\nprovider = "x-ai"\ninput_per_mtok = "5.00"\n'
                     'output_per_mtok = "5.00"\neffective_from = "2025-01-01"\n', encoding="utf-8")
    log = tmp_path / "emergency-token-usage.log"
    log.write_bytes(jsonl(SEED_004[0]))

    result = cli("ingest", log, "--source", "emergency", "--format", "json", config=cfg)

    assert json.loads(result.stdout)["unpriced"] == 0
    [row] = ledger(engine).values()
    assert (row["cost_status"], row["cost_usd"]) == ("priced", Decimal("0.00994"))  # 1988 x $5 per million


# --------------------------------------------------------------------------- the ingest job


@pytest.fixture
def table_engines() -> Iterator[None]:
    """Table sources keep one engine per URL for the process; drop the test's ones afterwards."""
    from worker.ingest import table

    before = set(table._engines)
    yield
    for url in set(table._engines) - before:
        table._engines.pop(url).dispose()


def job_runs(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(JobRun.__table__)).all()


def test_the_ingest_job_records_a_successful_run_with_its_stats(engine, inbox, inbox_settings):
    (inbox / "usage.jsonl").write_bytes(jsonl(*SEED_001) + b"[]\n")

    run = run_job(registry.get("ingest"), inbox_settings, engine)

    counts = {"files": 1, "accepted": 3, "duplicates": 0, "rejected": 1, "unattributed": 0, "unpriced": 0}
    [row] = job_runs(engine)
    assert (row.id, row.job, row.trigger, row.status, row.error) == (run.id, "ingest", "manual", "success", None)
    assert row.finished_at is not None and row.finished_at >= row.started_at
    assert row.stats == {**counts, "sources": {"inbox": counts}}
    assert event_count(engine) == 3


def test_an_unreachable_table_source_fails_the_run_but_other_sources_are_ingested(
        engine, make_settings, inbox, table_engines):
    settings = make_settings(
        '[[sources]]\nname = "app-db"\nkind = "table"\nurl = "postgresql://postgres@127.0.0.1:1/app"\n'
        'table = "llm_usage_logs"\ncursor_column = "created_at"\n'
        + source_toml("inbox", "jsonl", f"{inbox}/*.jsonl"))
    (inbox / "usage.jsonl").write_bytes(jsonl(*SEED_001))

    run_job(registry.get("ingest"), settings, engine)

    [row] = job_runs(engine)
    assert row.status == "failed"
    assert "app-db" in row.error
    assert set(row.stats["failed_sources"]) == {"app-db"}
    assert row.stats["sources"]["inbox"]["accepted"] == 3
    assert event_count(engine) == 3


def test_a_corrupt_gzip_file_fails_the_run_but_other_sources_are_ingested(engine, make_settings, tmp_path, inbox):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "usage.jsonl.1.gz").write_bytes(b"this was never gzip\n")
    settings = make_settings(source_toml("archive", "jsonl", f"{archive}/*.gz")
                             + source_toml("inbox", "jsonl", f"{inbox}/*.jsonl"))
    (inbox / "usage.jsonl").write_bytes(jsonl(*SEED_001))

    run_job(registry.get("ingest"), settings, engine)

    [row] = job_runs(engine)
    assert event_count(engine) == 3
    assert row.status == "failed"
    assert "usage.jsonl.1.gz" in row.error
