"""Reading JSONL and CSV files (plain or .gz) as a stream of raw records.

Each item carries the byte offset just past it in the (decompressed) content, so
ingest can checkpoint exactly and resume a file where it stopped. A line with no
newline yet at the end of a growing file is not consumed until it is complete
(or the file is final: gzip, a one-off CLI run, or quiet for the settle period).

Files are identified by a fingerprint of their first record line(s), not their
name, so a rotated (renamed, compressed) copy is recognised as the same file.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import orjson

from worker.ingest.fields import type_name

FINGERPRINT_LINES = {"jsonl": 1, "csv": 2}  # csv: the header is shared, add the first row

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RawItem:
    """One record's bytes; ``end_offset - nbytes`` is where they start."""

    position: int  # 1-based line (jsonl) or physical line where the row starts (csv)
    end_offset: int  # bytes consumed after this item
    lines_after: int  # lines consumed after this item (the checkpoint position)
    raw: bytes | None  # None for a table row (worker.ingest.table): its record is all there is
    record: dict[str, Any] | None  # None when error is set
    error: str | None
    nbytes: int = 0  # the record's bytes in the file, line ending(s) included


def is_gzip(path: Path) -> bool:
    return path.name.endswith(".gz")


def open_binary(path: Path) -> BinaryIO:
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb", buffering=1 << 20)


def first_line(path: Path) -> bytes:
    with open_binary(path) as fh:
        return fh.readline(1 << 16).rstrip(b"\r\n")


class CorruptFile(ValueError):
    """The file cannot be read as what its name says (a broken gzip stream)."""


def fingerprint(path: Path, kind: str, final: bool) -> str | None:
    """Hash of the first complete non-blank line(s); None while the file has too few to tell."""
    want = FINGERPRINT_LINES[kind]
    digest = hashlib.sha256()
    got = 0
    try:
        with open_binary(path) as fh:
            while got < want:
                line = fh.readline(1 << 16)
                if not line:
                    break
                if not line.endswith(b"\n") and not final:
                    return None
                if not line.strip():
                    continue  # blank lines are not records: they say nothing about the file
                digest.update(line.rstrip(b"\r\n"))
                got += 1
    except EOFError:  # a gzip file still being written
        return None
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptFile(f"{path}: not a readable gzip file: {exc}") from None
    if got == 0:
        return None
    if got < want and not final:
        return None
    return digest.hexdigest()


def tail_hash(raw: bytes) -> str:
    return hashlib.sha256(raw.rstrip(b"\r\n")).hexdigest()


def tail_matches(path: Path, offset: int, length: int, expected: str) -> bool:
    """Whether the ``length`` bytes ending at ``offset`` are still the record read there."""
    if length <= 0 or length > offset:
        return length <= 0
    try:
        with open_binary(path) as fh:
            fh.seek(offset - length)
            return tail_hash(fh.read(length)) == expected
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
        return False


def _lines(fh: BinaryIO, offset: int, final: bool) -> Iterator[tuple[bytes, int]]:
    """(line, end offset) from ``offset``; a last line without newline only when final."""
    if offset:
        fh.seek(offset)
    pos = offset
    try:
        for line in fh:
            if not line.endswith(b"\n") and not final:
                return
            pos += len(line)
            yield line, pos
    except EOFError:  # a gzip file still being written, or cut short: stop at what is complete
        logger.warning("gzip stream ends before its end marker; read up to here, more is read if it grows",
                       extra={"action": "gzip_incomplete", "path": getattr(fh, "name", None), "offset": pos})
        return
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptFile(f"not a readable gzip file: {exc}") from None


def read_jsonl(path: Path, offset: int = 0, position: int = 0, final: bool = False) -> Iterator[RawItem]:
    loads = orjson.loads
    with open_binary(path) as fh:
        for line, end in _lines(fh, offset, final):
            position += 1
            raw = line.rstrip(b"\r\n")
            if not raw or raw.isspace():
                yield RawItem(position, end, position, raw, None, None, len(line))  # blank: not a record
                continue
            try:
                record = loads(raw)
            except orjson.JSONDecodeError:
                yield RawItem(position, end, position, raw, None, json_error(raw), len(line))
                continue
            if not isinstance(record, dict):
                yield RawItem(position, end, position, raw, None, f"not a JSON object (got {type_name(record)})",
                              len(line))
                continue
            yield RawItem(position, end, position, raw, record, None, len(line))


def json_error(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start}"
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON: {exc}"
    return "invalid JSON"


def read_csv(path: Path, offset: int = 0, position: int = 0, final: bool = False) -> Iterator[RawItem]:
    """Rows as dicts keyed by the header; an empty cell is an absent field.

    The header is read from the start of the file even when resuming at ``offset``.
    """
    with open_binary(path) as fh:
        header_line = fh.readline()
        if not header_line or (not header_line.endswith(b"\n") and not final):
            return
        header = next(csv.reader([header_line.decode("utf-8-sig", "replace")]), [])
        header = [h.strip() for h in header]
        if offset == 0:
            offset, position = len(header_line), 1
        consumed: list[bytes] = []
        state = {"pos": offset, "line": position, "eof": False}

        def lines() -> Iterator[str]:
            for line, end in _lines(fh, offset, final):
                consumed.append(line)
                state["pos"] = end
                state["line"] += 1
                yield line.decode("utf-8", "surrogateescape")
            state["eof"] = True

        # strict: a quoted field still open at the end of the data is an error, not a cut-off row
        reader = csv.reader(lines(), strict=True)
        while True:
            start_line = state["line"] + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if state["eof"] and not final:
                    return  # a row still being written: leave it (and the checkpoint) for next time
                raw = b"".join(consumed)
                consumed.clear()
                yield RawItem(start_line, state["pos"], state["line"], raw.rstrip(b"\r\n"), None,
                              f"invalid CSV: {exc}", len(raw))
                continue
            whole = b"".join(consumed)
            raw, n = whole.rstrip(b"\r\n"), len(whole)
            consumed.clear()
            end, after = state["pos"], state["line"]
            if not row or all(not cell.strip() for cell in row):
                yield RawItem(start_line, end, after, raw, None, None, n)
                continue
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RawItem(start_line, end, after, raw, None, f"invalid UTF-8 at byte {exc.start}", n)
                continue
            if len(row) > len(header):
                yield RawItem(start_line, end, after, raw, None,
                              f"CSV row has {len(row)} fields, the header has {len(header)}", n)
                continue
            record = {name: cell for name, cell in zip(header, row) if cell != "" and name}
            yield RawItem(start_line, end, after, raw, record, None, n)


def read_records(kind: str, path: Path, offset: int = 0, position: int = 0,
                 final: bool = False) -> Iterator[RawItem]:
    reader = read_jsonl if kind == "jsonl" else read_csv
    return reader(path, offset, position, final)


def sniff_kind(path: Path) -> str:
    """jsonl or csv from the name (for paths given on the command line)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    stem_parts = name.split(".")
    return "csv" if "csv" in stem_parts[1:] else "jsonl"


def expand(paths: list[Path]) -> list[Path]:
    """Files named, and the files under directories named, in a stable order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        else:
            out.append(path)
    return out


