"""bench replicas: one replica against several reading one directory of files through the leases.

The files are generated once; each run gets a fresh scratch database and starts N processes at
the same moment, each polling the same source once (the ingest job's ``ingest_source``). A file is
read by the replica whose lease holds it, so N replicas share the files. The run ends when
every process has exited; the ledger must then hold every event exactly once, and the figures
say how many files each replica read.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select

from worker import db
from worker.bench import scratch_database
from worker.bench_data import generate
from worker.ingest.ingestor import Ingestor
from worker.models import UsageEvent
from worker.settings import Settings, SourceSettings


@dataclass
class ReplicaRun:
    replicas: int
    seconds: float
    rate: float  # events a second, all replicas together
    files_per_replica: list[int]
    events: int  # in the ledger afterwards


@dataclass
class ReplicasBenchResult:
    dialect: str
    files: int
    events: int
    runs: list[ReplicaRun]
    speedup: float  # the last run's rate over the first's
    load_average: str

    def as_dict(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "files": self.files, "events": self.events,
                "runs": [vars(r) for r in self.runs], "speedup": round(self.speedup, 3),
                "load_average": self.load_average}


def _replica(settings: Settings, ready: Any, results: Any) -> None:
    """One replica: connect, wait for the others, poll the source once, say how many files it read."""
    engine = db.make_engine(settings.database_url)
    try:
        with engine.connect():
            pass
        ready.wait()
        stats = Ingestor(settings, engine).ingest_source(settings.sources[0])
        results.put((os.getpid(), stats.files, stats.accepted, time.time()))
    finally:
        engine.dispose()


def _run(settings: Settings, database: str | None, replicas: int, expected: int) -> tuple[str, ReplicaRun]:
    with scratch_database(database) as url:
        run_settings = replace(settings, database_url=url)
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        ready = ctx.Barrier(replicas + 1)  # every process imported and connected before the clock starts
        procs = [ctx.Process(target=_replica, args=(run_settings, ready, results)) for _ in range(replicas)]
        for p in procs:
            p.start()
        ready.wait(timeout=300)
        start_at = time.time()
        reports = [results.get(timeout=3600) for _ in procs]
        for p in procs:
            p.join()
        failed = [p.exitcode for p in procs if p.exitcode]
        if failed:
            raise RuntimeError(f"a replica exited with {failed}")
        seconds = max(r[3] for r in reports) - start_at
        engine = db.make_engine(url)
        try:
            with engine.connect() as conn:
                booked = conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one()
            dialect = engine.dialect.name
        finally:
            engine.dispose()
    if booked != expected:
        raise RuntimeError(f"{replicas} replicas booked {booked:,} events, expected {expected:,}")
    return dialect, ReplicaRun(replicas, round(seconds, 3), round(expected / seconds, 1),
                               sorted(r[1] for r in reports), booked)


def run_replicas(settings: Settings, files: int, per_file: int, database: str | None,
                 say: Callable[[str], None] = lambda _m: None, replicas: tuple[int, ...] = (1, 2)) -> ReplicasBenchResult:
    with tempfile.TemporaryDirectory(prefix="tokentally-bench-") as tmp:
        inbox = Path(tmp)
        say(f"generating {files} files of {per_file:,} events")
        for i in range(files):
            generate(inbox / f"part-{i:03d}.jsonl", per_file, seed=1000 + i)
        source = SourceSettings(name="bench", kind="jsonl", path=str(inbox / "*.jsonl"))
        bench_settings = replace(settings, sources=(source,))
        runs, dialect = [], ""
        for n in replicas:
            say(f"{n} replica(s) on a fresh database")
            dialect, run = _run(bench_settings, database, n, files * per_file)
            runs.append(run)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return ReplicasBenchResult(dialect, files, files * per_file, runs, runs[-1].rate / runs[0].rate, load)
