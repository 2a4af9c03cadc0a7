"""A gzip file cut short (no end marker) is read as far as it goes and said so: in the ingest
JSON (``warnings``), in the job's stats and in ``status`` (the file's checkpoint row keeps it)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from worker.registry import registry
from worker.scheduler import run_job


def truncated_gzip(path: Path, lines: int) -> None:
    data = b"".join(json.dumps({"event_id": f"e{i}", "occurred_at": "2026-11-30T10:00:00Z", "account_id": "a1",
                                "model": "gpt-4o-mini", "prompt_tokens": 10, "completion_tokens": 5}).encode() + b"\n"
                    for i in range(lines))
    path.write_bytes(gzip.compress(data, mtime=0)[:-8])  # the CRC and size trailer are gone


def test_a_truncated_gzip_is_a_warning_in_the_ingest_json_and_in_status(cli, tmp_path):
    log = tmp_path / "usage.jsonl.gz"
    truncated_gzip(log, 5)

    ingest = cli("ingest", log, "--format", "json")
    status = cli("status", "--format", "json")

    assert ingest.exit_code == 0, ingest.output
    result = json.loads(ingest.stdout[ingest.stdout.index("{"):])
    assert result["accepted"] == 5
    [warning] = result["warnings"]
    assert warning.startswith(f"{log}: gzip stream ends before its end marker: read up to byte ")
    [source] = [s for s in json.loads(status.stdout[status.stdout.index("{"):])["sources"] if s["source"] == "cli"]
    assert source["warnings"] == result["warnings"]


def test_the_ingest_job_stats_carry_a_truncated_gzip_warning(engine, make_settings, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    truncated_gzip(inbox / "usage.jsonl.gz", 3)
    settings = make_settings(f'[[sources]]\nname = "inbox"\nkind = "jsonl"\npath = "{inbox}/*.jsonl.gz"\n')

    run = run_job(registry.get("ingest"), settings, engine)

    assert run.status == "success"
    assert run.stats["accepted"] == 3
    [warning] = run.stats["warnings"]
    assert warning.startswith(f"{inbox}/usage.jsonl.gz: gzip stream ends before its end marker")
