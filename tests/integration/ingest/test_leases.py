"""Replicas share a source's files through leases (worker.ingest.leases), on both databases.

A file another live process is reading is passed over; an expired lease (its owner killed)
is taken over and the file resumes from its committed checkpoint; two ingestors racing over
twenty files book every event exactly once.
"""

from __future__ import annotations

import json
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

from freezegun import freeze_time
from sqlalchemy import func, insert, select

from tests.helpers import PRICES, record, run_together, utc
from worker import clock
from worker.ingest.ingestor import Ingestor
from worker.ingest.leases import Leases
from worker.models import IngestLease, UsageEvent


def _files(tmp_path: Path, count: int, per_file: int) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for f in range(count):
        lines = [record(utc("2026-11-20T12:00:00Z"), event_id=f"f{f}-{i}", cost="0.01") for i in range(per_file)]
        (inbox / f"part-{f:02d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return inbox


def _settings(make_settings, inbox: Path, extra: str = ""):
    return make_settings(f'[ingest]\nsettle_seconds = 0\nbatch_size = 10\n{extra}\n'
                         f'[[sources]]\nname = "inbox"\nkind = "jsonl"\npath = "{inbox}/*.jsonl"\n' + PRICES)


def _events(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one()


def test_a_file_another_live_replica_reads_is_passed_over_until_its_lease_expires(make_settings, engine, tmp_path):
    inbox = _files(tmp_path, 3, 5)
    settings = _settings(make_settings, inbox, "lease_seconds = 60")
    [source] = settings.sources
    held = str(inbox / "part-01.jsonl")
    with engine.begin() as conn:
        conn.execute(insert(IngestLease).values(source="inbox", key=held, owner="other-host:1:abc",
                                                expires_at=clock.now() + timedelta(seconds=60)))

    first = Ingestor(settings, engine).ingest_source(source)

    assert (first.accepted, first.leased_elsewhere) == (10, 1)
    with freeze_time(clock.now() + timedelta(seconds=61)):  # its owner is gone: the lease lapses
        second = Ingestor(settings, engine).ingest_source(source)
    assert (second.accepted, second.leased_elsewhere) == (5, 0)
    assert _events(engine) == 15
    with engine.connect() as conn:  # every lease this process took was given back
        assert conn.execute(select(IngestLease.owner)).scalars().all() == []


def test_two_ingestors_racing_over_twenty_files_book_every_event_once(make_settings, engine, tmp_path):
    inbox = _files(tmp_path, 20, 30)
    settings = _settings(make_settings, inbox)
    [source] = settings.sources

    a, b = run_together([lambda: Ingestor(settings, engine).ingest_source(source),
                         lambda: Ingestor(settings, engine).ingest_source(source)], timeout=120)

    assert a.accepted + b.accepted == 600 and a.duplicates + b.duplicates == 0
    assert _events(engine) == 600


def test_a_lease_is_renewed_while_held_and_not_taken_from_a_live_owner(engine):
    leases, rival = Leases(engine, "inbox", 30), Leases(engine, "inbox", 30)
    assert leases.claim("f") and leases.claim("f")  # its own lease: taken again
    with engine.begin() as conn:
        conn.execute(IngestLease.__table__.update().values(owner="other:2:def"))
    assert not rival.claim("f")
    with engine.connect() as conn:
        expires = conn.execute(select(IngestLease.expires_at)).scalar_one()
    with freeze_time(clock.now() + timedelta(seconds=31)):
        assert rival.claim("f")
        with engine.connect() as conn:
            assert conn.execute(select(IngestLease.owner)).scalar_one() == rival.owner
            assert conn.execute(select(IngestLease.expires_at)).scalar_one() > expires


def test_a_lease_left_by_a_killed_process_of_this_host_is_taken_at_once(engine):
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    holder = f"{socket.gethostname()[:120]}:{gone.pid}:deadbeef:1"
    with engine.begin() as conn:
        conn.execute(insert(IngestLease).values(source="inbox", key="f", owner=holder,
                                                expires_at=clock.now() + timedelta(seconds=600)))
        conn.execute(insert(IngestLease).values(source="inbox", key="g", owner="elsewhere:1:cafe:1",
                                                expires_at=clock.now() + timedelta(seconds=600)))
    leases = Leases(engine, "inbox", 600)
    assert leases.claim("f")  # its owner is gone: no need to wait ten minutes
    assert not leases.claim("g")  # another host's: only its expiry frees it
