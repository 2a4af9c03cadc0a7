"""Reading a file's lines in bounded pieces: a line over the limit streams past, never held whole.

Each line comes back with the byte offset just past it. A line no longer than the limit
(``ingest.max_record_bytes``, its line ending not counted) is its bytes, as ``readline`` gives
them. A longer one is an :class:`Oversized`: its first :data:`HEAD_BYTES` bytes, its length,
the sha256 of all of it and its last bytes, taken as the line streams past in pieces of
:data:`CHUNK` bytes. So the memory a reader needs is about the limit, whatever the file holds:
a 200 MB line, or a 200 KB ``.gz`` that expands to one.

The hash and the length leave out the line ending, as for any rejected line (``\\r`` and ``\\n``
at its end, ``bytes.rstrip(b"\\r\\n")``). A last line without a newline is given only when the
file is ``final``; a gzip stream cut short is read as far as it goes and said in ``warnings``.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import zlib
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, Iterator

logger = logging.getLogger(__name__)

HEAD_BYTES = 1024  # what is kept of an oversized line (its first KiB), and of its end
CHUNK = 1 << 16  # an oversized line's remainder is read, hashed and counted in pieces of this size

TRUNCATED_GZIP = "gzip stream ends before its end marker: read up to byte {offset}, more is read if it grows"


class CorruptFile(ValueError):
    """The file cannot be read as what its name says (a broken gzip stream)."""


@dataclass(frozen=True, slots=True)
class Oversized:
    """What is kept of a record longer than the limit: never its bytes, only these."""

    head: bytes  # its first HEAD_BYTES bytes
    length: int  # its bytes, the line ending not counted
    sha256: str  # of those bytes
    tail: bytes  # its last bytes up to HEAD_BYTES, line ending included (a checkpoint's tail check)
    nbytes: int  # its bytes in the file, line ending included

    def reason(self, limit: int, what: str = "line") -> str:
        return (f"{what} of {self.length:,} bytes is longer than ingest.max_record_bytes ({limit:,}): "
                f"quarantined with its first {HEAD_BYTES:,} bytes; sha256 of the whole {what} {self.sha256}")


def oversized_bytes(data: bytes) -> Oversized:
    """An oversized record already in memory (an element of a .json document)."""
    body = data.rstrip(b"\r\n")
    return Oversized(body[:HEAD_BYTES], len(body), hashlib.sha256(body).hexdigest(), b"", len(data))


class _Stream:
    """Hash and count a line's bytes as they stream past, leaving out its final run of ``\\r``/``\\n``.

    A piece that ends in ``\\r`` may be the start of the line ending: those bytes are counted
    aside (never held) and hashed only once something else follows them."""

    def __init__(self, first: bytes, *, last: bool):
        self.digest = hashlib.sha256()
        self.head = first[:HEAD_BYTES]  # the line is longer than the limit, so this is all record
        self.tail = b""
        self.length = self.nbytes = self.crs = 0
        self.feed(first, last=last)

    def feed(self, piece: bytes, *, last: bool) -> None:
        self.nbytes += len(piece)
        self.tail = (self.tail + piece)[-HEAD_BYTES:]
        body = piece.rstrip(b"\r\n") if last else piece.rstrip(b"\r")
        if body:
            while self.crs:  # they were not the line ending after all
                n = min(self.crs, CHUNK)
                self.digest.update(b"\r" * n)
                self.length += n
                self.crs -= n
            self.digest.update(body)
            self.length += len(body)
        if not last:
            self.crs += len(piece) - len(body)

    def done(self) -> Oversized:
        return Oversized(self.head, self.length, self.digest.hexdigest(), self.tail, self.nbytes)


def bounded_lines(fh: BinaryIO, offset: int, final: bool, max_bytes: int,
                  warnings: list[str] | None = None) -> Iterator[tuple[bytes | Oversized, int]]:
    """(line or Oversized, end offset) from ``offset``. A last line without newline only when final
    (an oversized one still growing is streamed past again at the next read, and not consumed)."""
    if offset:
        fh.seek(offset)
    pos = offset
    limit = max_bytes + 2  # the longest line allowed, with a "\r\n" ending
    readline = fh.readline
    try:
        for line in iter(partial(readline, limit), b""):
            if len(line) <= max_bytes:  # the common case: short enough whatever its ending
                if line[-1:] != b"\n" and not final:
                    return
                pos += len(line)
                yield line, pos
                continue
            complete = line[-1:] == b"\n"
            if complete or len(line) < limit:  # all of it is here: over the limit by its ending alone?
                if not complete and not final:
                    return
                body = line.rstrip(b"\r\n")
                if len(body) <= max_bytes:
                    pos += len(line)
                    yield line, pos
                    continue
                stream = _Stream(line, last=True)
            else:
                stream = _Stream(line, last=False)
                while True:
                    piece = readline(CHUNK)
                    if not piece:
                        if not final:
                            return  # still being written: streamed past again next time
                        stream.feed(b"", last=True)
                        break
                    if piece[-1:] == b"\n":
                        stream.feed(piece, last=True)
                        break
                    stream.feed(piece, last=False)
            big = stream.done()
            pos += big.nbytes
            logger.warning("record longer than ingest.max_record_bytes: quarantined, not read whole", extra={
                "action": "record_oversized", "path": getattr(fh, "name", None), "offset": pos,
                "length": big.length, "limit": max_bytes})
            yield big, pos
    except EOFError:  # a gzip file still being written, or cut short: stop at what is complete
        logger.warning("gzip stream ends before its end marker; read up to here, more is read if it grows",
                       extra={"action": "gzip_incomplete", "path": getattr(fh, "name", None), "offset": pos})
        if warnings is not None:
            warnings.append(TRUNCATED_GZIP.format(offset=pos))
        return
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptFile(f"not a readable gzip file: {exc}") from None
