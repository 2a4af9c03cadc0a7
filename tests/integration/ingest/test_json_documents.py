"""Whole .json documents and JSONL array lines, ingested on SQLite and PostgreSQL.

LiteLLM's ``GET /spend/logs`` answers one JSON array of LiteLLM_SpendLogs rows (its proxy
docs, "Spend Tracking"); Langfuse's ``GET /api/public/observations`` a page
``{"data": [...], "meta": {...}}``. A ``kind = "json"`` source reads such a file whole once it
has settled, skips it while it is unchanged and reads it again (dedup keeping it exact) when
it changes; a document above MAX_JSON_BYTES is refused with one reject.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
from sqlalchemy import Engine, func, select

from worker.ingest import files
from worker.ingest.ingestor import Ingestor
from worker.models import IngestReject, UsageEvent
from tests.unit.ingest.formats import fixtures as fx


def spend_log(i: int) -> dict:
    return dict(fx.LITELLM_ROW, request_id=f"chatcmpl-{i}", startTime=f"2026-10-01T12:00:{i:02d}.000Z")


def quiet(path: Path) -> None:
    then = time.time() - 3600
    os.utime(path, (then, then))


def event_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(UsageEvent.event_id)).scalars())


def rejects(engine: Engine) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        return [(r.position, r.format, r.reason) for r in conn.execute(select(IngestReject).order_by(IngestReject.id))]


def test_a_spend_logs_json_array_named_on_the_command_line_books_each_row(make_settings, engine, tmp_path):
    path = tmp_path / "spend.json"
    path.write_bytes(orjson.dumps([spend_log(1), spend_log(2), {"not": "usage"}], option=orjson.OPT_INDENT_2))
    stats = Ingestor(make_settings(), engine).ingest_paths([path])
    assert (stats.accepted, stats.rejected) == (2, 1)
    assert event_ids(engine) == {"chatcmpl-1", "chatcmpl-2"}
    assert [(p, f) for p, f, _ in rejects(engine)] == [(3, "json")]


def test_a_langfuse_page_saved_as_json_books_its_generations(make_settings, engine, tmp_path):
    path = tmp_path / "observations.json"
    path.write_bytes(orjson.dumps(fx.LANGFUSE_PAGE))
    stats = Ingestor(make_settings(), engine).ingest_paths([path])
    assert (stats.accepted, stats.skipped, stats.rejected) == (1, 1, 0)
    assert event_ids(engine) == {"obs-1"}


def test_a_json_source_reads_a_document_once_settled_skips_it_unchanged_and_rereads_it_changed(
        make_settings, engine, tmp_path):
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "spend.json"
    settings = make_settings(f'[[sources]]\nname = "proxy"\nkind = "json"\npath = "{tmp_path}/in/*.json"\n')
    path.write_bytes(orjson.dumps([spend_log(1), spend_log(2)]))
    poll = lambda: Ingestor(settings, engine).ingest_source(settings.source("proxy"))  # noqa: E731
    fresh = poll()
    assert (fresh.accepted, fresh.skipped_files) == (0, 1)  # still being written, maybe
    quiet(path)
    first, unchanged = poll(), poll()
    assert (first.accepted, unchanged.accepted, unchanged.skipped_files) == (2, 0, 1)
    path.write_bytes(orjson.dumps([spend_log(1), spend_log(2), spend_log(3)]))
    quiet(path)
    changed = poll()
    assert (changed.accepted, changed.duplicates) == (1, 2)
    assert event_ids(engine) == {"chatcmpl-1", "chatcmpl-2", "chatcmpl-3"}


def test_a_json_document_above_the_limit_is_one_reject_and_not_read_again(make_settings, engine, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(files, "MAX_JSON_BYTES", 1024)
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "big.json"
    path.write_bytes(orjson.dumps([spend_log(i) for i in range(5)]))
    quiet(path)
    settings = make_settings(f'[[sources]]\nname = "proxy"\nkind = "json"\npath = "{tmp_path}/in/*.json"\n')
    first = Ingestor(settings, engine).ingest_source(settings.source("proxy"))
    again = Ingestor(settings, engine).ingest_source(settings.source("proxy"))
    assert (first.accepted, first.rejected, again.rejected, again.skipped_files) == (0, 1, 0, 1)
    ((position, fmt, reason),) = rejects(engine)
    assert (position, fmt) == (1, "json") and "larger than 0 MiB (MAX_JSON_BYTES)" in reason
    assert event_ids(engine) == set()


def test_a_jsonl_line_holding_an_array_of_spend_logs_books_each_and_resumes_after_the_line(
        make_settings, engine, tmp_path):
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "spend.jsonl"
    path.write_bytes(orjson.dumps([spend_log(1), spend_log(2)]) + b"\n")
    settings = make_settings(f'[[sources]]\nname = "proxy"\nkind = "jsonl"\npath = "{tmp_path}/in/*.jsonl"\n')
    first = Ingestor(settings, engine).ingest_source(settings.source("proxy"))
    with path.open("ab") as fh:
        fh.write(orjson.dumps(spend_log(3)) + b"\n")
    second = Ingestor(settings, engine).ingest_source(settings.source("proxy"))
    assert (first.accepted, second.accepted, second.duplicates) == (2, 1, 0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(UsageEvent)).scalar() == 3
