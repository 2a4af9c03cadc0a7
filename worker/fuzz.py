"""Fuzzing the ingest path: generated JSONL and CSV lines, from valid to hostile, through the one
ingest loop. Every line must end accepted, rejected or a duplicate (or a call attempt); anything
else (an exception out of the loop, a file that fails) is a crash.

``fuzz_line`` makes one line from a seeded ``random.Random``: a canonical record whose values under
the canonical and alias keys are arbitrary JSON (huge numbers, timestamps at the ends of time,
nesting 300 deep, lists, control characters), sometimes with its bytes mutated (not UTF-8, cut
short, flipped). ``campaign`` writes them in files and ingests them (``tokentally bench fuzz``).
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import orjson
from sqlalchemy import Engine

from worker.ingest.files import ASCII_SPACE
from worker.ingest.formats.canonical import ALIASES
from worker.ingest.ingestor import Ingestor
from worker.settings import Settings, SourceSettings

KEYS = tuple(k for canon, aliases in ALIASES.items() for k in (canon, *aliases)) + ("metadata", "event_id")
TIMESTAMPS = ("2026-10-30T12:00:00Z", "9999-12-31T23:30:00Z", "0001-01-01T00:00:00+01:00",
              "0001-01-01T00:30:00Z", "2026-02-30T00:00:00Z", "1e400", "-1", "1700000000000", "")
CHUNK = 50_000  # lines per file in a campaign


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"x": value}
    return value


def _value(rng: random.Random, depth: int = 0) -> Any:
    """An arbitrary JSON value, weighted towards the ones that broke ingest before."""
    pick = rng.randrange(16)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice((True, False))
    if pick == 2:
        return rng.randint(-2**70, 2**70)
    if pick == 3:
        return rng.choice((0, -1, 1, 2**31, 2**63, -2**63 - 1, 10**30))
    if pick == 4:
        return rng.choice((0.5, -0.0, 1e308, -1e308, 1e-308, 3.14))
    if pick == 5:
        return rng.choice(TIMESTAMPS)
    if pick == 6:
        return "".join(chr(rng.choice((0, 7, 27, 0x202E, 0xFEFF, 0x1F600, rng.randrange(32, 0x2FFF))))
                       for _ in range(rng.randrange(8)))
    if pick == 7:
        return _deep(rng.choice((10, 254, 255, 300)))
    if pick == 8 and depth < 3:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if pick == 9 and depth < 3:
        return {rng.choice(KEYS + ("x", "")): _value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if pick == 10:
        return str(rng.randint(-10**6, 10**6))
    if pick == 11:
        return "x" * rng.choice((199, 200, 201, 5000))
    return rng.choice(("gpt-4o", "u1", "acme", "success", "error", "429", "1.5", "NaN", "Infinity"))


def _record(rng: random.Random, n: int) -> dict[str, Any]:
    record: dict[str, Any] = {"id": f"r{rng.randrange(n * 2 + 1)}", "occurred_at": "2026-10-30T12:00:00Z",
                              "prompt_tokens": 10, "completion_tokens": 5}
    for _ in range(rng.randrange(5)):
        record[rng.choice(KEYS)] = _value(rng)
    if rng.random() < 0.3:
        record.pop("id", None)
    return record


def _mutate(rng: random.Random, data: bytes) -> bytes:
    """Byte-level damage: a flipped byte, a cut, bytes that are not UTF-8."""
    pick = rng.randrange(4)
    if not data:
        return b"\xff"
    i = rng.randrange(len(data))
    if pick == 0:
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
    if pick == 1:
        return data[:i] or b"{"
    if pick == 2:
        return data[:i] + b"\xc3\x28\xa0\xa1" + data[i:]
    return rng.choice((b'"just a string"', b"[]", b"null", b"{}", b"1e999", b'{"a":' * 300))


def fuzz_line(rng: random.Random, n: int, kind: str = "jsonl") -> bytes:
    """One line (no line ending): a record with arbitrary values, its bytes damaged one time in four."""
    record = _record(rng, n)
    if kind == "csv":
        data = b",".join(_cell(record.get(k)) for k in CSV_COLUMNS)
    else:
        try:
            data = orjson.dumps(record)
        except orjson.JSONEncodeError:  # too deep for orjson to write: the standard library can
            data = _stdlib_json(record)
    if rng.random() < 0.25:
        data = _mutate(rng, data)
    return _one_line(data)


CSV_COLUMNS = ("id", "occurred_at", "prompt_tokens", "completion_tokens", "model", "user_id", "metadata")


def _cell(value: Any) -> bytes:
    text = value if isinstance(value, str) else _stdlib_json(value).decode("utf-8", "replace")
    return text.replace('"', "'").encode("utf-8", "surrogatepass")


def _stdlib_json(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


def _one_line(data: bytes) -> bytes:
    """No line breaks inside a line, and never a blank line (that is not a record): for the CSV
    reader a row of empty or white cells (``,`` or ``"", ``) is blank too."""
    data = data.replace(b"\n", b" ").replace(b"\r", b" ")
    return b"?" if _blank(data) else data


def _blank(data: bytes) -> bool:
    text = data.decode("utf-8", "surrogateescape")
    if data.isspace():
        return True
    try:
        row = next(csv.reader([text], strict=True), [])
    except csv.Error:
        return False
    return all(not cell.strip(ASCII_SPACE) for cell in row)


@dataclass
class FuzzResult:
    records: int
    kind: str
    crashes: int  # files that failed, or exceptions out of the ingest loop
    accepted: int
    rejected: int
    duplicates: int
    attempts: int
    seconds: float
    errors: list[str]

    @property
    def accounted(self) -> bool:
        return self.accepted + self.rejected + self.duplicates + self.attempts == self.records

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "kind": self.kind, "crashes": self.crashes, "accepted": self.accepted,
                "rejected": self.rejected, "duplicates": self.duplicates, "attempts": self.attempts,
                "accounted": self.accounted, "seconds": round(self.seconds, 1), "errors": self.errors[:10]}


def write_lines(path: Path, lines: list[bytes], kind: str) -> None:
    header = b",".join(c.encode() for c in CSV_COLUMNS) + b"\n" if kind == "csv" else b""
    path.write_bytes(header + b"".join(line + b"\n" for line in lines))


def campaign(settings: Settings, engine: Engine, records: int, kind: str = "jsonl", seed: int = 1,
             say: Callable[[str], None] = lambda _m: None, seconds: float | None = None) -> FuzzResult:
    """Generate ``records`` lines (in files of CHUNK), ingest each file, add the counts up.
    With ``seconds``, stop after the file that passes that time (``records`` says how many were run)."""
    rng = random.Random(seed)
    source = SourceSettings(name="fuzz", kind=kind, format="canonical")
    ingestor = Ingestor(settings, engine)
    result = FuzzResult(0, kind, 0, 0, 0, 0, 0, 0.0, [])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tokentally-fuzz-") as tmp:
        for chunk_no, first in enumerate(range(0, records, CHUNK)):
            count = min(CHUNK, records - first)
            path = Path(tmp) / f"fuzz-{chunk_no}.{kind}"
            write_lines(path, [fuzz_line(rng, records, kind) for _ in range(count)], kind)
            try:
                stats = ingestor.ingest_paths([path], source)
            except Exception as exc:  # a crash: counted and shown, the campaign goes on
                result.crashes += 1
                result.errors.append(f"{type(exc).__name__}: {exc}")
            else:
                result.crashes += len(stats.errors)
                result.errors.extend(stats.errors)
                result.accepted += stats.accepted
                result.rejected += stats.rejected
                result.duplicates += stats.duplicates
                result.attempts += stats.attempts
            result.records += count
            path.unlink()
            say(f"{result.records:,} records, {result.crashes} crashes")
            if seconds is not None and time.perf_counter() - started > seconds:
                break
    result.seconds = time.perf_counter() - started
    return result
