"""A symlink in a source's directory that leads outside it is not followed (a warning in the ingest
output, the job's stats and ``status``; nothing of it read) unless the source says
``follow_symlinks = true``. Links that stay inside the directory are read as before."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from worker.ingest.ingestor import Ingestor
from worker.models import IngestReject, UsageEvent
from worker.registry import registry
from worker.scheduler import run_job
from worker.status import status

PASSWORD = "hunter2-smtp-secret"


def record(event_id: str) -> str:
    return json.dumps({"event_id": event_id, "occurred_at": "2026-11-30T10:00:00Z", "account_id": "a1",
                       "model": "gpt-4o-mini", "prompt_tokens": 10, "completion_tokens": 5}) + "\n"


def layout(tmp_path: Path) -> Path:
    """inbox/ with a real log, a link to a log kept inside it, and the SMTP password file linked in."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "smtp_password").write_text(PASSWORD + "\n")
    inbox = tmp_path / "inbox"
    (inbox / "archive").mkdir(parents=True)
    (inbox / "usage.jsonl").write_text(record("real"))
    (inbox / "archive" / "2026-11-30.log").write_text(record("archived"))
    (inbox / "current.jsonl").symlink_to(inbox / "archive" / "2026-11-30.log")
    (inbox / "password.jsonl").symlink_to(secrets / "smtp_password")
    return inbox


def source(inbox: Path, extra: str = "") -> str:
    return (f'[ingest]\nsettle_seconds = 0\n[[sources]]\nname = "inbox"\nkind = "jsonl"\n'
            f'path = "{inbox}/*.jsonl"\n{extra}')


def stored_text(engine) -> str:
    with engine.connect() as conn:
        raws = conn.execute(select(IngestReject.raw, IngestReject.reason)).all()
        events = conn.execute(select(UsageEvent)).all()
    return " ".join([*(r.raw.decode("utf-8", "replace") + r.reason for r in raws), *(repr(e) for e in events)])


def event_ids(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(UsageEvent.event_id)).scalars())


def test_a_password_file_linked_into_the_inbox_is_not_read_and_is_said_in_the_job_and_status(
        engine, make_settings, tmp_path):
    inbox = layout(tmp_path)
    settings = make_settings(source(inbox))

    run = run_job(registry.get("ingest"), settings, engine)

    assert run.status == "success"
    assert event_ids(engine) == ["archived", "real"]  # the link inside the directory is read
    assert run.stats["rejected"] == 0
    assert PASSWORD not in stored_text(engine)
    [warning] = run.stats["warnings"]
    assert warning.startswith(f"{inbox}/password.jsonl: a symlink leading outside {inbox}: not read")
    assert PASSWORD not in warning
    [row] = [s for s in status(settings, engine)["sources"] if s["source"] == "inbox"]
    assert row["warnings"] == [warning]


def test_follow_symlinks_true_reads_a_link_leading_outside(engine, make_settings, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "app.log").write_text(record("shared"))
    (inbox / "app.jsonl").symlink_to(shared / "app.log")

    skipped = run_job(registry.get("ingest"), make_settings(source(inbox)), engine)
    followed = run_job(registry.get("ingest"), make_settings(source(inbox, "follow_symlinks = true\n")), engine)

    assert skipped.stats["accepted"] == 0 and len(skipped.stats["warnings"]) == 1
    assert followed.stats["accepted"] == 1 and "warnings" not in followed.stats
    assert event_ids(engine) == ["shared"]


def test_a_file_reached_through_a_directory_linked_out_of_the_inbox_is_not_read(engine, make_settings, tmp_path):
    inbox, elsewhere = tmp_path / "inbox", tmp_path / "etc"
    (inbox / "app").mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "passwd.jsonl").write_text(PASSWORD + "\n")  # a plain file, under a linked directory
    (inbox / "sub").symlink_to(elsewhere, target_is_directory=True)
    (inbox / "app" / "ok.jsonl").write_text(record("ok"))
    settings = make_settings(f'[[sources]]\nname = "inbox"\nkind = "jsonl"\npath = "{inbox}/*/*.jsonl"\n'
                             '[ingest]\nsettle_seconds = 0\n')

    run = run_job(registry.get("ingest"), settings, engine)

    assert event_ids(engine) == ["ok"] and PASSWORD not in stored_text(engine)
    assert run.stats["warnings"] == [f"{inbox}/sub/passwd.jsonl: a symlink leading outside {inbox}: not read "
                                     "(the source's follow_symlinks = true reads it)"]


def test_a_directory_named_to_the_cli_does_not_follow_links_out_of_it(cli, engine, tmp_path):
    inbox = layout(tmp_path)

    result = cli("ingest", inbox, "--format", "json")

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{"):])
    assert out["accepted"] == 2 and out["rejected"] == 0
    assert [w.split(":")[0] for w in out["warnings"]] == [f"{inbox}/password.jsonl"]
    assert PASSWORD not in stored_text(engine) and PASSWORD not in cli("rejects", "list", "--format", "json").stdout


def test_ingestor_lists_only_what_it_will_read(engine, make_settings, tmp_path):
    inbox = layout(tmp_path)
    ingestor = Ingestor(make_settings(source(inbox)), engine)
    assert sorted(p.name for p in ingestor.source_files(ingestor.settings.sources[0])) == ["current.jsonl",
                                                                                         "usage.jsonl"]
