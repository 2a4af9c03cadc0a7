"""Memory stays bounded whatever the input: a record over ingest.max_record_bytes is quarantined with its
first KiB, length and sha256 (plain and .gz), the run goes on and the checkpoint passes it; batches are
also cut by bytes; `rejects list` streams; `rejects retry` leaves a truncated reject as it is."""

from __future__ import annotations

import csv
import gzip
import hashlib
import inspect
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from worker.ingest.ingestor import Ingestor
from worker.ingest.rejects import list_rejects
from worker.models import IngestFile, IngestReject, UsageEvent
from worker.registry import registry
from worker.scheduler import run_job


def record(event_id: str, blob: int = 0) -> bytes:
    fields = {"event_id": event_id, "occurred_at": "2026-11-30T10:00:00Z", "account_id": "a1",
              "model": "gpt-4o-mini", "prompt_tokens": 10, "completion_tokens": 5}
    if blob:
        fields["metadata"] = {"blob": "x" * blob}
    return json.dumps(fields).encode()


BIG = record("big", blob=3 << 20)  # 3 MiB: over the default 1 MiB limit


def source_settings(make_settings, inbox: Path, extra: str = "") -> object:
    return make_settings(f'[ingest]\nsettle_seconds = 0\n{extra}\n'
                         f'[[sources]]\nname = "inbox"\nkind = "jsonl"\npath = "{inbox}/*.jsonl*"\n')


def rejects(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(IngestReject).order_by(IngestReject.id)).all()


def event_ids(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(UsageEvent.event_id)).scalars())


@pytest.mark.parametrize("name", ["usage.jsonl", "usage.jsonl.gz"])
def test_an_oversized_line_is_quarantined_with_its_first_kib_length_and_sha256_and_the_run_goes_on(
        engine, make_settings, tmp_path, name):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = record("e1") + b"\n" + BIG + b"\n" + record("e2") + b"\n"
    (inbox / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    settings = source_settings(make_settings, inbox)

    first = run_job(registry.get("ingest"), settings, engine)
    second = run_job(registry.get("ingest"), settings, engine)

    assert first.status == "success" and (first.stats["accepted"], first.stats["rejected"]) == (2, 1)
    assert event_ids(engine) == ["e1", "e2"]
    (reject,) = rejects(engine)
    assert (reject.position, reject.raw, reject.status) == (2, BIG[:1024], "open")
    assert reject.raw_sha256 == hashlib.sha256(BIG).hexdigest()
    assert f"line of {len(BIG):,} bytes is longer than ingest.max_record_bytes (1,048,576)" in reject.reason
    assert reject.raw_sha256 in reject.reason
    assert (second.stats["files"], second.stats["rejected"]) == (0, 0)  # read to its end: not read again
    with engine.connect() as conn:
        (checkpoint,) = conn.execute(select(IngestFile)).all()
    assert checkpoint.offset == len(data)


def test_a_growing_file_resumes_after_an_oversized_line_without_reading_it_again(engine, make_settings, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    log = inbox / "usage.jsonl"
    log.write_bytes(record("e1") + b"\n" + BIG + b"\n")
    settings = source_settings(make_settings, inbox)
    run_job(registry.get("ingest"), settings, engine)
    with log.open("ab") as fh:
        fh.write(record("e2") + b"\n")

    later = run_job(registry.get("ingest"), settings, engine)

    assert (later.stats["accepted"], later.stats["rejected"], later.stats["duplicates"]) == (1, 0, 0)
    assert len(rejects(engine)) == 1 and event_ids(engine) == ["e1", "e2"]


def test_a_gz_that_expands_to_one_long_line_is_quarantined_from_its_stream(engine, make_settings, tmp_path):
    log = tmp_path / "bomb.jsonl.gz"
    with gzip.open(log, "wb") as fh:
        fh.write(b'{"event_id": "bomb", "metadata": "')
        for _ in range(24):
            fh.write(b"y" * (1 << 20))
        fh.write(b'"}\n' + record("after") + b"\n")
    assert log.stat().st_size < 200_000
    settings = make_settings('[ingest]\nmax_record_bytes = 65536\n')

    stats = Ingestor(settings, engine).ingest_paths([log])

    assert (stats.accepted, stats.rejected) == (1, 1)
    (reject,) = rejects(engine)
    assert len(reject.raw) == 1024 and reject.raw.startswith(b'{"event_id": "bomb"')
    assert "longer than ingest.max_record_bytes (65,536)" in reject.reason
    assert f"{34 + (24 << 20) + 2:,} bytes" in reject.reason


def test_batches_are_cut_by_bytes_as_well_as_by_count(engine, make_settings, tmp_path):
    log = tmp_path / "wide.jsonl"
    lines = [record(f"w{i:02d}", blob=100_000) + b"\n" for i in range(20)]
    log.write_bytes(b"".join(lines))
    by_count = make_settings('[ingest]\nbatch_size = 5000\n')
    by_bytes = make_settings('[ingest]\nbatch_size = 5000\nbatch_bytes = 300000\n')

    # should_stop is asked after each committed batch: what the first batch held is what was written
    first_batch = Ingestor(by_bytes, engine, should_stop=lambda: True).ingest_paths([log])

    assert first_batch.accepted == 3  # 3 x 100 kB reach 300 kB: the batch commits there, well before 5,000
    with engine.connect() as conn:
        (checkpoint,) = conn.execute(select(IngestFile)).all()
    assert checkpoint.offset == sum(len(line) for line in lines[:3])
    rest = Ingestor(by_count, engine, should_stop=lambda: True).ingest_paths([log])
    assert rest.accepted + rest.duplicates == 20  # by count alone: the whole file in one batch


def test_rejects_list_streams_every_format_with_raws_whole_or_truncated(cli, engine, tmp_path):
    near = [b"not json " + bytes([65 + i]) * 900_000 for i in range(3)]  # under the limit: kept whole
    log = tmp_path / "bad.jsonl"
    log.write_bytes(b"\n".join(near) + b"\n" + BIG + b"\n")
    assert cli("ingest", log, "--format", "json").exit_code == 0
    assert inspect.isgenerator(list_rejects(engine))

    as_json = json.loads(cli("rejects", "list", "--format", "json").stdout)
    written = cli("rejects", "list", "--format", "csv").stdout
    limit = csv.field_size_limit(1 << 21)  # (the module's limit is process-wide: put it back)
    try:
        as_csv = list(csv.DictReader(io.StringIO(written)))
    finally:
        csv.field_size_limit(limit)

    assert [r["raw"].encode() for r in as_json] == [*near, BIG[:1024]]
    assert [r["position"] for r in as_json] == [1, 2, 3, 4]
    assert [r["raw"].encode() for r in as_csv] == [*near, BIG[:1024]]
    assert "longer than ingest.max_record_bytes" in as_csv[3]["reason"]


def test_rejects_list_as_a_table_writes_each_row_under_one_header(cli, tmp_path):
    log = tmp_path / "bad.jsonl"
    log.write_bytes(b"first bad line\n" + BIG + b"\n" + b"[red]third[/red]\n" + b"w" * 5000 + b"\n")
    cli("ingest", log)

    out = cli("rejects", "list").stdout

    assert sum(line.split()[:2] == ["id", "source"] for line in out.splitlines()) == 1
    rows = [line.split() for line in out.splitlines() if line.split()[:2] in (["1", "cli"], ["2", "cli"],
                                                                             ["3", "cli"])]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert "first bad line" in out and "[red]third[/red]" in out
    assert f"{len(BIG):,}" in out  # the long line's length, in its reason
    assert "".join(out.split()).count("w") < 1100  # a long raw: its first KiB in the table, and its length
    assert "(5,000 bytes; --format json or csv shows all)" in " ".join(out.split())


def test_a_retry_leaves_a_reject_kept_as_its_first_kib_as_it_is(cli, engine, tmp_path):
    log = tmp_path / "u.jsonl"
    log.write_bytes(BIG + b"\n")
    cli("ingest", log)
    (before,) = rejects(engine)

    retried = json.loads(cli("rejects", "retry", "--format", "json").stdout)

    (after,) = rejects(engine)
    assert retried["still_rejected"] == 1 and retried["errors"] == 0
    assert (after.status, after.reason, after.raw) == ("open", before.reason, before.raw)
