"""Poison records: a record that breaks somewhere between parse and commit is quarantined with the
error as its reason, and the run (and every later run) goes on past it. Both databases."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from worker.ingest.ingestor import Ingestor
from worker.models import Alert, IngestReject, JobRun, UsageEvent
from worker.registry import registry
from worker.scheduler import run_job

TS = "2026-10-30T12:00:00Z"


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"x": value}
    return value


def line(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode() + b"\n"


GOOD = {"id": "good-1", "occurred_at": TS, "prompt_tokens": 10, "completion_tokens": 5}
AFTER = {"id": "good-2", "occurred_at": TS, "prompt_tokens": 1, "completion_tokens": 1}
POISON = {
    "the_last_local_day_in_tokyo": ("Asia/Tokyo", {"id": "p", "occurred_at": "9999-12-31T23:30:00Z",
                                                   "prompt_tokens": 1}, "in the future"),  # refused before its local day overflows
    "the_first_local_day_in_new_york": ("America/New_York", {"id": "p", "occurred_at": "0001-01-01T00:30:00Z",
                                                             "prompt_tokens": 1}, "OverflowError"),
    "metadata_300_levels_deep": ("UTC", {"id": "p", "occurred_at": TS, "prompt_tokens": 1,
                                         "metadata": deep(300)}, "TypeError"),
    "an_id_less_record_with_deep_metadata": ("UTC", {"occurred_at": TS, "prompt_tokens": 1,
                                                     "metadata": deep(300)}, "content cannot be hashed"),
    "an_unknown_key_300_levels_deep": ("UTC", {"occurred_at": TS, "prompt_tokens": 1,
                                               "extra": deep(300)}, "content cannot be hashed"),
}


def events(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(UsageEvent.event_id)).scalars())


def rejects(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(IngestReject).order_by(IngestReject.position)).all()


@pytest.mark.parametrize("zone,record,error", POISON.values(), ids=POISON.keys())
def test_a_poison_record_is_quarantined_with_its_error_and_the_records_around_it_are_kept(
        engine, make_settings, tmp_path: Path, zone: str, record: dict[str, Any], error: str):
    path = tmp_path / "usage.jsonl"
    path.write_bytes(line(GOOD) + line(record) + line(AFTER))
    ingestor = Ingestor(make_settings(f'timezone = "{zone}"\n'), engine)

    stats = ingestor.ingest_paths([path])

    assert (stats.accepted, stats.rejected, stats.errors) == (2, 1, [])
    assert events(engine) == ["good-1", "good-2"]
    [reject] = rejects(engine)
    assert (reject.position, reject.raw) == (2, line(record).rstrip(b"\n"))
    assert error in reject.reason and "\n" not in reject.reason


def test_a_source_polled_again_goes_on_past_a_poison_record_instead_of_failing_on_it_forever(
        engine, make_settings, tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "usage.jsonl"
    path.write_bytes(line(GOOD) + line(POISON["metadata_300_levels_deep"][1]))
    settings = make_settings(f'[[sources]]\nname = "inbox"\nkind = "jsonl"\npath = "{inbox}/*.jsonl"\n',
                             ingest_settle_seconds=0)
    first = Ingestor(settings, engine).ingest_source(settings.source("inbox"))
    with path.open("ab") as f:
        f.write(line(AFTER))

    second = Ingestor(settings, engine).ingest_source(settings.source("inbox"))

    assert (first.accepted, first.rejected, second.accepted, second.rejected) == (1, 1, 1, 0)
    assert events(engine) == ["good-1", "good-2"]
    assert len(rejects(engine)) == 1


def _broken_app_table(path: Path) -> str:
    """A SQLite application table whose DATETIME cursor column holds text no driver can decode."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE llm_usage_logs (id TEXT PRIMARY KEY, user_id TEXT, model TEXT, "
                     "prompt_tokens INTEGER, completion_tokens INTEGER, created_at DATETIME)")
        conn.execute("INSERT INTO llm_usage_logs VALUES ('r1', 'u1', 'gpt-4o', 1, 1, 'not a time at all')")
    return f"sqlite:///{path}"


def test_a_source_whose_reader_raises_fails_alone_and_the_job_fails_with_job_failed(
        engine, make_settings, tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "usage.jsonl").write_bytes(line(GOOD) + line(AFTER))
    app_url = _broken_app_table(tmp_path / "app.db")
    settings = make_settings(
        f'[[sources]]\nname = "app-db"\nkind = "table"\nurl = "{app_url}"\n'
        'table = "llm_usage_logs"\ncursor_column = "created_at"\n'
        f'[[sources]]\nname = "inbox"\nkind = "jsonl"\npath = "{inbox}/*.jsonl"\n', ingest_settle_seconds=0)

    run_job(registry.get("ingest"), settings, engine)

    with engine.connect() as conn:
        [run] = conn.execute(select(JobRun)).all()
        alerts = conn.execute(select(Alert.kind)).scalars().all()
    assert run.status == "failed"
    assert run.error.startswith("app-db: ValueError: ")
    assert set(run.stats["failed_sources"]) == {"app-db"}
    assert run.stats["sources"]["inbox"]["accepted"] == 2
    assert events(engine) == ["good-1", "good-2"]
    assert "job.failed" in alerts
