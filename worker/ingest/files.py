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
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import orjson

from worker.ingest.fields import type_name

FINGERPRINT_LINES = {"jsonl": 1, "csv": 2}  # csv: the header is shared, add the first row
FINGERPRINT_BYTES = 1 << 16  # json: the document's first 64 KiB (it may be a single line)
# A .json document is parsed whole, in memory (orjson: about 3-5x its size at peak). Above this it is
# refused with a reject naming the limit; JSON lines have no such limit (read line by line).
MAX_JSON_BYTES = 64 << 20

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


TRUNCATED_GZIP = "gzip stream ends before its end marker: read up to byte {offset}, more is read if it grows"


def _lines(fh: BinaryIO, offset: int, final: bool,
           warnings: list[str] | None = None) -> Iterator[tuple[bytes, int]]:
    """(line, end offset) from ``offset``; a last line without newline only when final. A gzip stream
    cut short is read as far as it goes, and said in ``warnings`` (for the ingest output and status)."""
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
        if warnings is not None:
            warnings.append(TRUNCATED_GZIP.format(offset=pos))
        return
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptFile(f"not a readable gzip file: {exc}") from None


def read_jsonl(path: Path, offset: int = 0, position: int = 0, final: bool = False,
               warnings: list[str] | None = None) -> Iterator[RawItem]:
    with open_binary(path) as fh:
        yield from jsonl_items(fh, offset, position, final, warnings)


def jsonl_items(fh: BinaryIO, offset: int = 0, position: int = 0, final: bool = False,
                warnings: list[str] | None = None) -> Iterator[RawItem]:
    """JSON lines from an open binary stream (a file, or a request body)."""
    loads = orjson.loads
    for line, end in _lines(fh, offset, final, warnings):
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
        if type(record) is list:
            yield from array_line(record, position, end - len(line), end, raw, len(line))
            continue
        if not isinstance(record, dict):
            yield RawItem(position, end, position, raw, None, f"not a JSON object (got {type_name(record)})",
                          len(line))
            continue
        yield RawItem(position, end, position, raw, record, None, len(line))


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
             warnings: list[str] | None = None) -> Iterator[RawItem]:
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
            for line, end in _lines(fh, offset, final, warnings):
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


def read_json(path: Path) -> Iterator[RawItem]:
    """A whole .json document: each element of an array, or of a page's ``data`` array, with its
    1-based number as position; any other object is one record. A file of JSON lines named .json is
    read as JSONL. Above MAX_JSON_BYTES it is refused with one reject, never read whole.

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
    yield from document_items(data)


def document_items(data: bytes) -> Iterator[RawItem]:
    """The records of one JSON document, or of JSON lines when it is not one document (a .json
    file's bytes, or a ``POST /v1/events`` body); positions number the records from 1."""
    size = len(data)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        if data.strip().count(b"\n"):  # JSON lines (in a file named .json, or a body)
            yield from jsonl_items(io.BytesIO(data), final=True)
        else:
            yield RawItem(1, size, 1, data, None, json_error(data), size)
        return
    if type(document) is dict and type(document.get("data")) is list:
        document = document["data"]  # a page: Langfuse's {"data": [...], "meta": {...}}
    elements = document if type(document) is list else [document]
    dumps, count = orjson.dumps, len(elements)
    for index, element in enumerate(elements, 1):
        end = size * index // count
        if isinstance(element, dict):
            yield RawItem(index, end, index, dumps(element), element, None, 0)
        else:
            yield RawItem(index, end, index, dumps(element), None,
                          f"not a JSON object (got {type_name(element)})", 0)


def read_records(kind: str, path: Path, offset: int = 0, position: int = 0,
                 final: bool = False, warnings: list[str] | None = None) -> Iterator[RawItem]:
    if kind == "json":
        return read_json(path)
    reader = read_jsonl if kind == "jsonl" else read_csv
    return reader(path, offset, position, final, warnings)


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


