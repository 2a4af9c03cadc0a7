"""bench gate / bench events: the HTTP API measured on loopback, the server in a process of its own.

Both run ``tokentally web`` (the app ``tokentally run`` serves) on a scratch database
(``worker.bench.scratch_database``) and a free loopback port. ``bench gate`` drives
``POST /v1/gate/check`` at a fixed rate from another process (Debian's ``wrk``, paced by
:mod:`web.wrk`, when it is installed; else the Python client :mod:`web.loadgen`; the result
names the one used) and reports the latency percentiles at that rate, with the CPU time the
server (``--workers N``: its worker processes too), the load generator and, when PostgreSQL runs
on this machine, its backends spent per request (less sensitive to other work on the machine
than the latencies: the three share the cores). ``bench events`` ingests the same generated records twice:
from a file (``Ingestor.ingest_paths``) and through ``POST /v1/events`` in NDJSON batches, and
compares the rates. Figures are printed, never asserted; the load average is printed beside them.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
from sqlalchemy.engine import make_url

from worker import db
from worker.bench import scratch_database
from worker.bench_data import generate
from worker.ingest.ingestor import Ingestor
from worker.settings import Settings
from web import wrk
from web.auth import create_token

Say = Callable[[str], None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


@contextmanager
def served(settings: Settings, url: str, say: Say, workers: int = 1) -> Iterator[tuple[str, str, int]]:
    """``tokentally web --workers N`` on ``url`` in another process: (base URL, an app token, its pid)."""
    engine = db.make_engine(url)
    try:
        _, token = create_token(engine, "bench", "app")
    finally:
        engine.dispose()
    port = _free_port()
    env = {**os.environ, "TOKENTALLY_DATABASE_URL": url, "TOKENTALLY_LOGGING_LEVEL": "WARNING"}
    if settings.config_path is not None:
        env["TOKENTALLY_CONFIG"] = str(settings.config_path)
    say(f"starting the server on 127.0.0.1:{port} ({workers} worker{'s' if workers > 1 else ''})")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "web", "--bind", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(proc, port)
        yield base, token, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_for(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server did not start: {proc.stderr.read() if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not answer /readyz within 60 s")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _cpu_of(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each of these processes that can be read, by pid."""
    return {p: seconds for p in pids if (seconds := process_cpu_seconds(p)) is not None}


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of a process and its children (the server's workers), by pid; {} without /proc."""
    return _cpu_of([pid, *(_children(pid) if Path("/proc").is_dir() else [])])


def _spent(before: dict[int, float], after: dict[int, float]) -> float | None:
    """CPU seconds spent between two readings (a process that appeared in between: all of its)."""
    return sum(v - before.get(p, 0.0) for p, v in after.items()) if after else None


def database_backends(url: str) -> list[int]:
    """The pids of the PostgreSQL backends connected to the bench's database, when PostgreSQL runs
    on this machine (a loopback host; their CPU is then readable in /proc); [] otherwise."""
    parsed = make_url(db.normalise_url(url))
    if parsed.get_backend_name() != "postgresql" or parsed.host not in ("127.0.0.1", "localhost", "::1", None):
        return []
    with psycopg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()").fetchall()
    return [r[0] for r in rows]


def _backends_cpu(url: str) -> dict[int, float]:
    return _cpu_of(database_backends(url))


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class GateBenchResult:
    dialect: str
    generator: str
    rps: int
    seconds: float
    connections: int
    requests: int
    errors: int
    achieved_rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    p99_due_ms: float | None
    workers: int
    server_cpu_ms_per_request: float | None  # tokentally web and its workers
    client_cpu_ms_per_request: float  # the load generator
    database_cpu_ms_per_request: float | None  # PostgreSQL's backends (local PostgreSQL only)
    load_average: str

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


def _generate(base: str, token: str, rps: int, seconds: float, connections: int, loadgen: str) -> tuple[str, dict]:
    url = f"{base}/v1/gate/check"
    if loadgen == "wrk" or (loadgen == "auto" and wrk.available()):
        return "wrk", wrk.run(url, token, rps, seconds, connections)
    out = subprocess.run([sys.executable, "-m", "web.loadgen", url, token, str(rps), str(seconds), str(connections)],
                         capture_output=True, text=True, check=True)
    return "python (web.loadgen)", json.loads(out.stdout)


def run_gate(settings: Settings, rps: int, seconds: float, database: str | None, connections: int | None = None,
             loadgen: str = "auto", workers: int = 1, say: Say = lambda _m: None) -> GateBenchResult:
    """``loadgen``: wrk, python (web.loadgen) or auto (wrk when installed); ``workers``: the
    server's ``--workers``."""
    if loadgen == "wrk" and not wrk.available():
        raise RuntimeError("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    connections = connections or max(4, min(64, rps // 50))
    with scratch_database(database) as url:
        dialect = make_url(db.normalise_url(url)).get_backend_name()
        with served(settings, url, say, workers) as (base, token, pid):
            say(f"POST /v1/gate/check at {rps}/s for {seconds:g} s over {connections} connections"
                f" ({loadgen} load generator)")
            server_before, client_before = tree_cpu_seconds(pid), _children_cpu_seconds()
            db_before = _backends_cpu(url)
            generator, figures = _generate(base, token, rps, seconds, connections, loadgen)
            server_after, client_after = tree_cpu_seconds(pid), _children_cpu_seconds()
            db_after = _backends_cpu(url)
    total = figures["sent"]  # the warm-up's requests too: the CPU times cover it
    server = _spent(server_before, server_after)
    database_cpu = _spent(db_before, db_after)
    return GateBenchResult(dialect, generator, rps, seconds, connections, figures["requests"], figures["errors"],
                           figures["achieved_rps"], figures["p50_ms"], figures["p99_ms"], figures["max_ms"],
                           figures["p99_due_ms"], workers, None if server is None else server / total * 1000,
                           (client_after - client_before) / total * 1000,
                           None if database_cpu is None else database_cpu / total * 1000, load_average())


@dataclass
class EventsBenchResult:
    dialect: str
    events: int
    batch: int
    file_seconds: float
    file_rate: float
    http_seconds: float
    http_rate: float
    ratio: float
    http_accepted: int
    load_average: str

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


def _post_batches(base: str, token: str, path: Path, batch: int, connections: int) -> int:
    """POST the file's lines in NDJSON batches over ``connections`` keep-alive connections; accepted."""
    lines = path.read_bytes().splitlines(keepends=True)
    bodies = [b"".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]
    accepted = [0] * connections
    host, port = base.removeprefix("http://").split(":")

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=300)
        for body in bodies[index::connections]:
            conn.request("POST", "/v1/events", body=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"})
            response = conn.getresponse()
            reply = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"POST /v1/events: {response.status} {reply}")
            accepted[index] += reply["accepted"]
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(accepted)


def run_events(settings: Settings, events: int, database: str | None, batch: int = 1000, connections: int = 2,
               say: Say = lambda _m: None) -> EventsBenchResult:
    with tempfile.TemporaryDirectory(prefix="tokentally-bench-") as tmp:
        data = Path(tmp) / "events.jsonl"
        say(f"generating {events:,} events")
        generate(data, events)
        with scratch_database(database) as url:
            engine = db.make_engine(url)
            try:
                dialect = engine.dialect.name
                say("file ingest")
                started = time.perf_counter()
                Ingestor(replace(settings, database_url=url), engine).ingest_paths([data])
                file_seconds = time.perf_counter() - started
            finally:
                engine.dispose()
        with scratch_database(database) as url:
            with served(settings, url, say) as (base, token, _pid):
                say(f"POST /v1/events in batches of {batch:,} over {connections} connections")
                started = time.perf_counter()
                accepted = _post_batches(base, token, data, batch, connections)
                http_seconds = time.perf_counter() - started
    file_rate, http_rate = events / file_seconds, events / http_seconds
    return EventsBenchResult(dialect, events, batch, file_seconds, file_rate, http_seconds, http_rate,
                             http_rate / file_rate, accepted, load_average())
