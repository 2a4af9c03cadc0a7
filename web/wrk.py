"""The gate bench's load generator when Debian's ``wrk`` is installed (C, so it costs the 2 cores
far less than :mod:`web.loadgen`'s Python threads).

wrk 4 has no fixed-rate mode, so the Lua script paces it: each wrk thread sends its k-th
request no earlier than ``start + k * threads / rps`` (a clock through LuaJIT's FFI); a request
already late goes at once, so the pace is the requested one while the server keeps up
(``achieved_rps`` says when it did not). wrk times each request from its write to the full reply
(``p50``/``p99``/``max``); it cannot time from the moment a request was due, so ``p99_due_ms``
is None. A one-second run first warms the connections and psycopg's prepared statements. Same
JSON shape as :func:`web.loadgen.run` (``sent``: every request, the warm-up's too).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

WARMUP_SECONDS = 1

SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } tt_timespec;
int clock_gettime(int clk_id, tt_timespec *tp);
]]
local ts = ffi.new("tt_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local period, start, sent, k = 1, nil, 0, 0
function init(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
  period = 1000 * tonumber(args[3]) / tonumber(args[2])  -- ms between this thread's requests
end

function delay()
  local now = now_ms()
  if start == nil then start = now end
  local due = start + sent * period
  sent = sent + 1
  if due <= now then return 0 end
  return math.floor(due - now + 0.5)
end

function request()
  k = k + 1
  return wrk.format(nil, nil, nil, '{"account_id": "acct-' .. (k % 1000) .. '"}')
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "errors": %d, "achieved_rps": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _wrk(script: Path, url: str, token: str, rps: float, seconds: float, connections: int, threads: int) -> dict:
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s",
                          "-s", str(script), url, "--", token, str(rps), str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(url: str, token: str, rps: float, seconds: float, connections: int) -> dict:
    threads = max(1, min(2, connections // 16))  # one thread paces 1,000/s easily; never more than the cores
    with tempfile.TemporaryDirectory(prefix="tokentally-wrk-") as tmp:
        script = Path(tmp) / "gate_check.lua"
        script.write_text(SCRIPT)
        warmup = _wrk(script, url, token, rps, WARMUP_SECONDS, connections, threads)
        figures = _wrk(script, url, token, rps, seconds, connections, threads)
    return {**figures, "p99_due_ms": None, "sent": warmup["requests"] + figures["requests"]}
