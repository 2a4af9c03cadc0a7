"""Reading JSONL, CSV and JSON files (plain or .gz) as a stream of raw records.

Each item carries the byte offset just past it in the (decompressed) content, so
ingest can checkpoint exactly and resume a file where it stopped. A line with no
newline yet at the end of a growing file is not consumed until it is complete
(or the file is final: gzip, a one-off CLI run, or quiet for the settle period).

Files are identified by a fingerprint of their first record line(s), not their
name, so a rotated (renamed, compressed) copy is recognised as the same file.

A JSONL line that is a top-level array of objects (LiteLLM's ``/spend/logs`` answer
appended as one line) is expanded into its elements, all at that line's position. A
``.json`` file is one document (an array of records, a page ``{"data": [...]}`` or one
record), read whole once it is complete (settled) and skipped while unchanged, up to
``MAX_JSON_BYTES``.

A record longer than ``ingest.max_record_bytes`` (a JSONL line, a CSV line, an element of a
document) is an item with an error and ``oversized`` set: its raw is the first KiB, and the
line itself is never held whole (``worker.ingest.lines`` streams it past, hashing and counting).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import orjson

from worker.settings import MAX_RECORD_BYTES as DEFAULT_MAX_RECORD_BYTES
from worker.ingest.fields import type_name
# CorruptFile is raised from here too: callers catch it as files.CorruptFile
from worker.ingest.lines import CorruptFile, Oversized, bounded_lines, oversized_bytes

# A blank line or cell holds only these (the bytes.isspace() set, as the JSONL reader judges):
# str.strip() would also strip \x1c-\x1f, \x85 and other Unicode spaces, content to be rejected.
ASCII_SPACE = " \t\n\r\x0b\x0c"

FINGERPRINT_LINES = {"jsonl": 1, "csv": 2}  # csv: the header is shared, add the first row
FINGERPRINT_BYTES = 1 << 16  # json: the document's first 64 KiB (it may be a single line)
# A .json document is parsed whole, in memory (orjson and the records: about 5x its size at peak, a 59 MB
# document took 414 MB of RSS). Above this it is refused with a reject naming the limit, so a worker stays
# under 256 MB; JSON lines are read line by line, each up to ingest.max_record_bytes.
MAX_JSON_BYTES = 16 << 20

Loads = Callable[[bytes], Any]  # a JSON line -> what it holds (orjson.loads)


class Decoded:
    """A record a shape's own decoder read from a JSON line (``worker.ingest.formats.otlp``), in place of the dict."""

    __slots__ = ()


@dataclass(slots=True)
class RawItem:
    """One record's bytes; ``end_offset - nbytes`` is where they start."""

    position: int  # 1-based line (jsonl) or physical line where the row starts (csv)
    end_offset: int  # bytes consumed after this item
    lines_after: int  # lines consumed after this item (the checkpoint position)
    raw: bytes | None  # None for a table row (worker.ingest.table): its record is all there is
    record: dict[str, Any] | Decoded | None  # None when error is set
    error: str | None
    nbytes: int = 0  # the record's bytes in the file, line ending(s) included
    oversized: Oversized | None = None  # longer than ingest.max_record_bytes: raw is its first KiB


def is_gzip(path: Path) -> bool:
    return path.name.endswith(".gz")


def open_binary(path: Path) -> BinaryIO:
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb", buffering=1 << 20)


def first_line(path: Path) -> bytes:
    with open_binary(path) as fh:
        return fh.readline(1 << 16).rstrip(b"\r\n")


def fingerprint(path: Path, kind: str, final: bool) -> str | None:
    """Hash of the first complete non-blank line(s); None while the file has too few to tell.
    A .json document: of its first bytes, once it is complete (``final``)."""
    if kind == "json":
        return _document_fingerprint(path) if final else None
    want = FINGERPRINT_LINES[kind]
    digest = hashlib.sha256()
    got = 0
    try:
        with open_binary(path) as fh:
            while got < want:
                line = fh.readline(FINGERPRINT_BYTES)
                if not line:
                    break
                if not line.endswith(b"\n") and not final and len(line) < FINGERPRINT_BYTES:
                    return None  # (a line's first 64 KiB are all a fingerprint takes: they stay as they are)
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


def _document_fingerprint(path: Path) -> str | None:
    try:
        with open_binary(path) as fh:
            head = fh.read(FINGERPRINT_BYTES)
    except EOFError:  # a gzip file still being written
        return None
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptFile(f"{path}: not a readable gzip file: {exc}") from None
    return hashlib.sha256(head).hexdigest() if head.strip() else None


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


def read_jsonl(path: Path, offset: int = 0, position: int = 0, final: bool = False,
               warnings: list[str] | None = None, max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
               loads: Loads = orjson.loads) -> Iterator[RawItem]:
    with open_binary(path) as fh:
        yield from jsonl_items(fh, offset, position, final, warnings, max_bytes, loads)


def jsonl_items(fh: BinaryIO, offset: int = 0, position: int = 0, final: bool = False,
                warnings: list[str] | None = None, max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
                loads: Loads = orjson.loads) -> Iterator[RawItem]:
    """JSON lines from an open binary stream (a file, or a request body); a line longer than
    ``max_bytes`` is a reject of its first KiB, never read whole. ``loads`` reads a line: orjson's, or
    one that also gives a shape's :class:`Decoded` records (it raises ``orjson.JSONDecodeError`` as orjson's)."""
    for line, end in bounded_lines(fh, offset, final, max_bytes, warnings):
        position += 1
        if line.__class__ is Oversized:
            yield _oversized_item(line, position, end, position, max_bytes)  # type: ignore[arg-type]
            continue
        raw = line.rstrip(b"\r\n")  # type: ignore[union-attr]
        if not raw or raw.isspace():
            yield RawItem(position, end, position, raw, None, None, len(line))  # blank: not a record
            continue
        try:
            record = loads(raw)
        except orjson.JSONDecodeError:
            yield RawItem(position, end, position, raw, None, json_error(raw), len(line))
            continue
        if type(record) is list:
            yield from array_line(record, position, end - len(line), end, raw, len(line))
            continue
        if not isinstance(record, (dict, Decoded)):
            yield RawItem(position, end, position, raw, None, f"not a JSON object (got {type_name(record)})",
                          len(line))
            continue
        yield RawItem(position, end, position, raw, record, None, len(line))


def _oversized_item(big: Oversized, position: int, end: int, lines_after: int, limit: int,
                    what: str = "line") -> RawItem:
    """A record over the limit: a reject of its first KiB, with its length and sha256."""
    return RawItem(position, end, lines_after, big.head, None, big.reason(limit, what), big.nbytes, big)


def array_line(elements: list[Any], position: int, start: int, end: int, raw: bytes,
               nbytes: int) -> Iterator[RawItem]:
    """A JSONL line holding an array of objects: one item per element, at the line's position (an
    empty array, or one with anything but objects, is one error for the line as before). The
    elements end where the line starts, so a checkpoint among them resumes at the line (dedup keeps
    the elements read twice exact); a closing item without a record ends the line."""
    if not elements or not all(type(e) is dict for e in elements):
        yield RawItem(position, end, position, raw, None, f"not a JSON object (got {type_name(elements)})", nbytes)
        return
    dumps = orjson.dumps
    for element in elements:
        yield RawItem(position, start, position - 1, dumps(element), element, None, 0)
    yield RawItem(position, end, position, raw, None, None, nbytes)


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


def read_csv(path: Path, offset: int = 0, position: int = 0, final: bool = False,
             warnings: list[str] | None = None,
             max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[RawItem]:
    """Rows as dicts keyed by the header; an empty cell is an absent field.

    The header is read from the start of the file even when resuming at ``offset``. A physical
    line over ``max_bytes`` is a reject of its own (a quoted field it would have continued is one
    too: the rows after it are read afresh)."""
    with open_binary(path) as fh:
        header_line = fh.readline(max_bytes + 2)
        if not header_line or (not header_line.endswith(b"\n") and not final):
            return
        if len(header_line.rstrip(b"\r\n")) > max_bytes:
            raise CorruptFile(f"CSV header longer than ingest.max_record_bytes ({max_bytes:,}): the file is not read")
        header = next(csv.reader([header_line.decode("utf-8-sig", "replace")]), [])
        header = [h.strip() for h in header]
        if offset == 0:
            offset, position = len(header_line), 1
        consumed: list[bytes] = []
        state: dict[str, Any] = {"pos": offset, "line": position, "eof": False, "big": None}
        source = bounded_lines(fh, offset, final, max_bytes, warnings)

        def lines() -> Iterator[str]:
            for line, end in source:
                state["pos"] = end
                state["line"] += 1
                if line.__class__ is Oversized:
                    state["big"] = line
                    return  # this reader ends here; the next one goes on after the line
                consumed.append(line)  # type: ignore[arg-type]
                yield line.decode("utf-8", "surrogateescape")  # type: ignore[union-attr]
            state["eof"] = True

        while True:
            yield from _csv_rows(csv.reader(lines(), strict=True), header, consumed, state, final)
            big = state["big"]
            if big is None:
                return
            state["big"] = None
            if consumed:  # a row that would have gone on into the long line: cut there
                first, raw = state["line"] - len(consumed), b"".join(consumed)
                consumed.clear()
                yield RawItem(first, state["pos"] - big.nbytes, state["line"] - 1,
                              raw.rstrip(b"\r\n"), None, "invalid CSV: the row goes on into the next line, which is "
                              "longer than ingest.max_record_bytes", len(raw))
            yield _oversized_item(big, state["line"], state["pos"], state["line"], max_bytes)


def _csv_rows(reader: Any, header: list[str], consumed: list[bytes], state: dict[str, Any],
              final: bool) -> Iterator[RawItem]:
    """The rows one csv reader gives, until its lines end (at the end of the data or a long line)."""
    # strict: a quoted field still open at the end of the data is an error, not a cut-off row
    while True:
        start_line = state["line"] + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if state["big"] is not None:
                return  # the row ran into a long line: read_csv says so
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
        if not row or all(not cell.strip(ASCII_SPACE) for cell in row):  # as JSONL: bytes.isspace()
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


def read_json(path: Path, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[RawItem]:
    """A whole .json document: each element of an array, or of a page's ``data`` array, with its
    1-based number as position; any other object is one record. A file of JSON lines named .json is
    read as JSONL. Above MAX_JSON_BYTES it is refused with one reject, never read whole. A record
    longer than ``max_bytes`` (as JSON) is a reject of its first KiB, its length and sha256.

    Always read from the start (an offset inside a document means nothing): a file that changed is
    read again and dedup keeps it exact. End offsets grow with the elements up to the document's size."""
    try:
        with open_binary(path) as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except EOFError:  # a gzip file still being written: read once it is whole
        return
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptFile(f"not a readable gzip file: {exc}") from None
    size = len(data)
    if size > MAX_JSON_BYTES:
        whole = max(size, path.stat().st_size)  # the end, so the checkpoint skips it while unchanged
        yield RawItem(1, whole, 1, b"", None, f"JSON document larger than {MAX_JSON_BYTES >> 20} MiB"
                      " (MAX_JSON_BYTES): not read; write it as JSON lines (.jsonl), or split it", 0)
        return
    yield from document_items(data, max_bytes)


def document_items(data: bytes, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[RawItem]:
    """The records of one JSON document, or of JSON lines when it is not one document (a .json
    file's bytes, or a ``POST /v1/events`` body); positions number the records from 1."""
    size = len(data)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        if data.strip().count(b"\n"):  # JSON lines (in a file named .json, or a body)
            yield from jsonl_items(io.BytesIO(data), final=True, max_bytes=max_bytes)
        else:
            yield RawItem(1, size, 1, data, None, json_error(data), size)
        return
    if type(document) is dict and type(document.get("data")) is list:
        document = document["data"]  # a page: Langfuse's {"data": [...], "meta": {...}}
    elements = document if type(document) is list else [document]
    dumps, count = orjson.dumps, len(elements)
    for index, element in enumerate(elements, 1):
        end = size * index // count
        raw = dumps(element)
        if len(raw) > max_bytes:
            yield _oversized_item(oversized_bytes(raw), index, end, index, max_bytes, "record")
        elif isinstance(element, dict):
            yield RawItem(index, end, index, raw, element, None, 0)
        else:
            yield RawItem(index, end, index, raw, None,
                          f"not a JSON object (got {type_name(element)})", 0)


def read_records(kind: str, path: Path, offset: int = 0, position: int = 0,
                 final: bool = False, warnings: list[str] | None = None,
                 max_bytes: int = DEFAULT_MAX_RECORD_BYTES, loads: Loads = orjson.loads) -> Iterator[RawItem]:
    """A file's records of ``kind`` from ``offset``; one longer than ``max_bytes`` is never read whole.
    JSON lines are read by ``loads`` (see :func:`jsonl_items`)."""
    if kind == "json":
        return read_json(path, max_bytes)
    if kind == "jsonl":
        return read_jsonl(path, offset, position, final, warnings, max_bytes, loads)
    return read_csv(path, offset, position, final, warnings, max_bytes)


def sniff_kind(path: Path) -> str:
    """jsonl, csv or json from the name (for paths given on the command line): ``.json`` (or
    ``.json.gz``) is one JSON document; a name with ``csv`` among its suffixes is CSV."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    stem_parts = name.split(".")
    if len(stem_parts) > 1 and stem_parts[-1] == "json":
        return "json"
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


