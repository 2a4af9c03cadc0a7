"""A loopback load generator, run in a process of its own by ``tokentally bench gate``.

    python -m web.loadgen URL TOKEN RPS SECONDS CONNECTIONS

Open loop: request k is due at ``start + k / RPS`` whatever the answers before it did, spread
over CONNECTIONS keep-alive connections (one thread each). Each request POSTs a gate check for
one of 1,000 accounts. Prints one JSON object: requests, errors, the achieved rate, and the
latencies in ms, from sending to the full reply (``p50``/``p99``/``max``) and from the moment
the request was due (``p99_due``: includes any wait when the client or server fell behind), and
``sent``, every request answered or failed, the warm-up's too.
Imports only the standard library, so it starts in milliseconds.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit

WARMUP_SECONDS = 1.0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(url: str, token: str, rps: float, seconds: float, connections: int) -> dict:
    parts = urlsplit(url)
    total = int(rps * (seconds + WARMUP_SECONDS))
    warmup = int(rps * WARMUP_SECONDS)
    served: list[float] = []
    answered = [0]
    due_lag: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        mine_served, mine_due, mine_errors = [], [], 0
        for k in range(index, total, connections):
            due = start + k / rps
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body = json.dumps({"account_id": f"acct-{k % 1000}"})
            sent = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            done = time.perf_counter()
            if k < warmup:
                continue
            if not ok:
                mine_errors += 1
            mine_served.append((done - sent) * 1000)
            mine_due.append((done - due) * 1000)
        conn.close()
        with lock:
            answered[0] += len(range(index, total, connections))
            served.extend(mine_served)
            due_lag.extend(mine_due)
            errors[0] += mine_errors

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - (start + WARMUP_SECONDS)
    return {"requests": len(served), "errors": errors[0], "achieved_rps": len(served) / elapsed if elapsed else 0,
            "p50_ms": percentile(served, 0.50), "p99_ms": percentile(served, 0.99), "max_ms": max(served, default=0),
            "p99_due_ms": percentile(due_lag, 0.99), "sent": answered[0]}


def main(argv: list[str]) -> None:
    url, token, rps, seconds, connections = argv
    print(json.dumps(run(url, token, float(rps), float(seconds), int(connections))))


if __name__ == "__main__":
    main(sys.argv[1:])
