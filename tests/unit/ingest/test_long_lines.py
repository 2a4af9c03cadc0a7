"""Records longer than ingest.max_record_bytes: kept as their first KiB, length and sha256, never read whole
(worker/ingest/lines.py, worker/ingest/files.py)."""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import orjson
import pytest

from worker.ingest.files import CorruptFile, read_csv, read_json, read_jsonl
from worker.ingest.lines import CHUNK, HEAD_BYTES, bounded_lines

LIMIT = 4096
GOOD = b'{"id": "a", "prompt_tokens": 1}\n'


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


class Reads(io.BytesIO):
    """A file that remembers how much each readline asked for and returned."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.largest = 0

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        line = super().readline(size)
        self.largest = max(self.largest, len(line))
        return line


@pytest.mark.parametrize("name", ["u.jsonl", "u.jsonl.gz"])
def test_a_line_over_the_limit_is_a_reject_of_its_first_kib_with_its_length_and_sha256(tmp_path, name):
    long = b'{"id": "big", "blob": "' + b"x" * (3 * CHUNK + 123) + b'"}'
    path = put(tmp_path / name, GOOD + long + b"\n" + GOOD.replace(b'"a"', b'"b"'))

    first, big, last = read_jsonl(path, final=True, max_bytes=LIMIT)

    assert (first.record, last.record) == ({"id": "a", "prompt_tokens": 1}, {"id": "b", "prompt_tokens": 1})
    assert big.record is None and big.raw == long[:HEAD_BYTES]
    assert big.oversized.length == len(long) and big.oversized.sha256 == hashlib.sha256(long).hexdigest()
    assert big.error == (f"line of {len(long):,} bytes is longer than ingest.max_record_bytes ({LIMIT:,}): "
                         f"quarantined with its first 1,024 bytes; sha256 of the whole line {big.oversized.sha256}")
    assert (big.position, big.end_offset, big.nbytes) == (2, len(GOOD) + len(long) + 1, len(long) + 1)
    assert big.oversized.tail == (long + b"\n")[-HEAD_BYTES:]


def test_no_read_asks_for_more_than_the_limit_whatever_the_line(tmp_path):
    fh = Reads(b"y" * (40 * CHUNK) + b"\n" + GOOD)
    items = list(bounded_lines(fh, 0, True, LIMIT))
    assert [type(line).__name__ for line, _ in items] == ["Oversized", "bytes"]
    assert fh.largest <= max(LIMIT + 2, CHUNK)  # the limit, or one piece of the rest: never the 2.6 MB line


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r\r\n", b""])
def test_the_length_and_hash_leave_out_the_line_ending_as_for_any_reject(ending):
    # a run of \r across a piece boundary is part of the line; only the final run is its ending
    body = b"z" * (LIMIT + 2 - 3) + b"\r\r\r" + b"w" * (CHUNK - 1) + b"\r" + b"q" * 10
    ((big, end),) = list(bounded_lines(io.BytesIO(body + ending), 0, True, LIMIT))
    assert (big.length, big.sha256, end) == (len(body), hashlib.sha256(body).hexdigest(), len(body + ending))


def test_lines_at_the_limit_are_records_and_one_byte_more_is_not():
    at, over = b"a" * LIMIT, b"b" * (LIMIT + 1)
    (line, _), (big, _) = bounded_lines(io.BytesIO(at + b"\r\n" + over + b"\r\n"), 0, True, LIMIT)
    assert line == at + b"\r\n"
    assert big.length == LIMIT + 1 and big.head == over[:HEAD_BYTES]


def test_a_long_line_still_being_written_is_not_consumed_until_it_ends(tmp_path):
    path = put(tmp_path / "u.jsonl", GOOD + b"x" * (LIMIT * 3))
    items = list(read_jsonl(path, max_bytes=LIMIT))
    assert [i.record["id"] for i in items] == ["a"]
    with path.open("ab") as fh:
        fh.write(b"x\n")
    (big,) = read_jsonl(path, items[-1].end_offset, items[-1].lines_after, max_bytes=LIMIT)
    assert big.oversized.length == LIMIT * 3 + 1 and big.position == 2


CSV_HEADER = b"id,ts,prompt_tokens\n"


def test_a_csv_row_over_the_limit_is_a_reject_and_the_next_rows_are_read(tmp_path):
    long = b"2,2026-10-30T12:00:00Z," + b"9" * (LIMIT * 2)
    path = put(tmp_path / "u.csv.gz", CSV_HEADER + b"1,2026-10-30T12:00:00Z,5\n" + long + b"\n3,2026-10-30T12:01:00Z,6\n")

    one, big, three = read_csv(path, final=True, max_bytes=LIMIT)

    assert (one.record["id"], three.record["id"]) == ("1", "3")
    assert (big.position, big.raw, big.oversized.length) == (3, long[:HEAD_BYTES], len(long))
    assert big.oversized.sha256 == hashlib.sha256(long).hexdigest()
    assert three.position == 4 and three.lines_after == 4


def test_a_quoted_csv_field_running_into_a_long_line_is_cut_there_and_both_are_rejects(tmp_path):
    path = put(tmp_path / "u.csv", CSV_HEADER + b'1,2026-10-30T12:00:00Z,"open\n' + b"x" * (LIMIT * 2) + b'"\n'
               + b"3,2026-10-30T12:01:00Z,6\n")

    cut, big, three = read_csv(path, final=True, max_bytes=LIMIT)

    assert (cut.position, cut.raw, cut.record) == (2, b'1,2026-10-30T12:00:00Z,"open', None)
    assert "longer than ingest.max_record_bytes" in cut.error
    assert big.position == 3 and big.oversized.length == LIMIT * 2 + 1
    assert three.record == {"id": "3", "ts": "2026-10-30T12:01:00Z", "prompt_tokens": "6"}


def test_a_csv_header_over_the_limit_makes_the_file_unreadable(tmp_path):
    path = put(tmp_path / "u.csv", b"h" * (LIMIT + 10) + b"\n1\n")
    with pytest.raises(CorruptFile, match="max_record_bytes"):
        list(read_csv(path, final=True, max_bytes=LIMIT))


def test_a_document_record_over_the_limit_is_a_reject_of_its_first_kib(tmp_path):
    big_record = {"id": "big", "blob": "x" * (LIMIT * 2)}
    path = put(tmp_path / "spend.json", orjson.dumps([{"id": "a"}, big_record, {"id": "c"}]))

    a, big, c = read_json(path, max_bytes=LIMIT)

    raw = orjson.dumps(big_record)
    assert (a.record, c.record) == ({"id": "a"}, {"id": "c"})
    assert big.record is None and big.raw == raw[:HEAD_BYTES]
    assert big.error.startswith(f"record of {len(raw):,} bytes is longer than ingest.max_record_bytes")
    assert big.oversized.sha256 == hashlib.sha256(raw).hexdigest()
