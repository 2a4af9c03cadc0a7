"""bench replicas: two replicas polling one directory through the ingest leases (the bench's one-replica run
is the same code with one process)."""

from __future__ import annotations

from worker.bench_replicas import run_replicas


def test_two_replicas_share_the_files_and_book_every_event_once(db_url: str, make_settings) -> None:
    settings = make_settings()
    database = "sqlite" if db_url.startswith("sqlite") else db_url
    result = run_replicas(settings, files=4, per_file=300, database=database, replicas=(2,))
    [run] = result.runs
    assert run.replicas == 2 and run.events == 1200  # run_replicas raises if the ledger holds any other count
    assert sum(run.files_per_replica) == 4 and len(run.files_per_replica) == 2  # each file read once, by one
    assert result.dialect == ("sqlite" if database == "sqlite" else "postgresql")
