"""Reading JSONL and CSV files (plain or .gz) as raw records with resumable offsets."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from worker.ingest.files import expand, fingerprint, read_csv, read_jsonl, sniff_kind

JSONL = (b'{"id": "a", "prompt_tokens": 1}\n'
         b'{"id": "b", "prompt_tokens": 2}\n'
         b'{"id": "c", "prompt_tokens": 3}\n'
         b'{"id": "d", "prompt_tokens": 4}\n'
         b'{"id": "e", "prompt_tokens": 5}\n')

CSV = (b"id,ts,prompt_tokens,error\n"
       b"1,2026-10-30T12:00:00Z,5,\n"
       b'2,2026-10-30T12:01:00Z,6,"line one\nline two"\n'
       b"3,2026-10-30T12:02:00Z,,boom\n"
       b"4,2026-10-30T12:03:00Z,8,\n")


def put(path: Path, data: bytes) -> Path:
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def records(items) -> list[dict]:
    return [item.record for item in items if item.record is not None]


def summary(items) -> list[tuple]:
    return [(i.position, i.end_offset, i.lines_after, i.raw, i.record, i.error) for i in items]


# --------------------------------------------------------------------------- JSONL

def test_jsonl_lines_are_read_as_records_with_their_line_numbers(tmp_path: Path):
    items = list(read_jsonl(put(tmp_path / "u.jsonl", JSONL)))
    assert [r["id"] for r in records(items)] == ["a", "b", "c", "d", "e"]
    assert [i.position for i in items] == [1, 2, 3, 4, 5]
    assert items[-1].end_offset == len(JSONL)


def test_blank_lines_are_not_records(tmp_path: Path):
    path = put(tmp_path / "u.jsonl", b'{"id": "a"}\n\n   \n\r\n{"id": "b"}\n')
    items = list(read_jsonl(path))
    assert records(items) == [{"id": "a"}, {"id": "b"}]
    assert all(item.error is None for item in items)
    assert items[-1].position == 5  # blank lines still count as lines


def test_an_invalid_utf8_line_comes_back_with_an_error_and_its_raw_bytes(tmp_path: Path):
    bad = b'{"id": "caf\xe9"}'
    items = list(read_jsonl(put(tmp_path / "u.jsonl", b'{"id": "a"}\n' + bad + b'\n{"id": "b"}\n')))
    assert records(items) == [{"id": "a"}, {"id": "b"}]
    (broken,) = [i for i in items if i.error]
    assert "UTF-8" in broken.error
    assert broken.raw == bad
    assert broken.record is None
    assert broken.position == 2


def test_an_invalid_json_line_comes_back_with_an_error_and_its_raw_bytes(tmp_path: Path):
    bad = b'{"id": "x", "prompt_tokens": }'
    items = list(read_jsonl(put(tmp_path / "u.jsonl", bad + b'\n{"id": "b"}\n')))
    assert items[0].error is not None and "invalid JSON" in items[0].error
    assert items[0].raw == bad
    assert items[1].record == {"id": "b"}


def test_a_json_value_that_is_not_an_object_comes_back_with_an_error(tmp_path: Path):
    items = list(read_jsonl(put(tmp_path / "u.jsonl", b'[1, 2]\n"text"\n')))
    assert [i.error for i in items] == ["not a JSON object (got an array)", "not a JSON object (got a string)"]
    assert [i.raw for i in items] == [b"[1, 2]", b'"text"']


def test_crlf_line_endings_are_not_part_of_the_record(tmp_path: Path):
    items = list(read_jsonl(put(tmp_path / "u.jsonl", b'{"id": "a"}\r\n{"id": "b"}\r\n')))
    assert records(items) == [{"id": "a"}, {"id": "b"}]
    assert items[0].raw == b'{"id": "a"}'
    assert items[-1].end_offset == 26


@pytest.mark.parametrize("k", range(5))
def test_resuming_from_an_items_end_offset_reads_exactly_the_rest(tmp_path: Path, k: int):
    path = put(tmp_path / "u.jsonl", JSONL)
    first = list(read_jsonl(path))
    rest = list(read_jsonl(path, first[k].end_offset, first[k].lines_after))
    assert summary(rest) == summary(first[k + 1:])


def test_resuming_after_a_partial_read_gets_the_rest(tmp_path: Path):
    path = put(tmp_path / "u.jsonl", JSONL)
    reader = read_jsonl(path)
    taken = [next(reader), next(reader)]
    reader.close()
    rest = list(read_jsonl(path, taken[-1].end_offset, taken[-1].lines_after))
    assert [r["id"] for r in records(taken + rest)] == ["a", "b", "c", "d", "e"]


def test_a_last_line_without_newline_is_only_returned_when_final(tmp_path: Path):
    path = put(tmp_path / "u.jsonl", b'{"id": "a"}\n{"id": "b"}')
    growing = list(read_jsonl(path))
    assert records(growing) == [{"id": "a"}]
    assert growing[-1].end_offset == 12  # the partial line is not consumed
    assert records(read_jsonl(path, final=True)) == [{"id": "a"}, {"id": "b"}]


def test_a_partial_last_line_is_read_once_the_writer_finishes_it(tmp_path: Path):
    path = put(tmp_path / "u.jsonl", b'{"id": "a"}\n{"id": "b", "prompt_')
    (item,) = list(read_jsonl(path))
    with path.open("ab") as fh:
        fh.write(b'tokens": 2}\n')
    rest = list(read_jsonl(path, item.end_offset, item.lines_after))
    assert records(rest) == [{"id": "b", "prompt_tokens": 2}]
    assert rest[0].position == 2


def test_a_gzip_file_reads_the_same_as_the_plain_file(tmp_path: Path):
    plain = list(read_jsonl(put(tmp_path / "u.jsonl", JSONL)))
    packed = list(read_jsonl(put(tmp_path / "u.jsonl.gz", JSONL)))
    assert summary(packed) == summary(plain)


def test_a_gzip_file_resumes_at_an_offset_in_its_content(tmp_path: Path):
    path = put(tmp_path / "u.jsonl.gz", JSONL)
    first = list(read_jsonl(path))
    rest = list(read_jsonl(path, first[2].end_offset, first[2].lines_after))
    assert [r["id"] for r in records(rest)] == ["d", "e"]


# --------------------------------------------------------------------------- CSV

def test_csv_rows_are_records_keyed_by_the_header(tmp_path: Path):
    items = list(read_csv(put(tmp_path / "u.csv", CSV)))
    assert records(items)[0] == {"id": "1", "ts": "2026-10-30T12:00:00Z", "prompt_tokens": "5"}
    assert items[0].position == 2  # line 1 is the header
    assert items[-1].end_offset == len(CSV)


def test_an_empty_csv_cell_is_an_absent_field(tmp_path: Path):
    rows = records(read_csv(put(tmp_path / "u.csv", CSV)))
    assert "prompt_tokens" not in rows[2]
    assert "error" not in rows[0]
    assert rows[2]["error"] == "boom"


def test_a_csv_row_of_control_characters_is_a_record_not_a_blank_line(tmp_path: Path):
    """Blank is what the JSONL reader calls blank (bytes.isspace()): a row of spaces, tabs and empty
    cells. str.strip() would also take \\x1c-\\x1f and Unicode spaces, and the row would vanish."""
    data = b"ts,id\n\x1c\n \t, \n\xc2\xa0,x\n"
    items = list(read_csv(put(tmp_path / "u.csv", data)))
    assert [(i.position, i.record) for i in items] == [(2, {"ts": "\x1c"}), (3, None), (4, {"ts": "\xa0", "id": "x"})]


def test_a_quoted_multi_line_csv_field_is_one_value(tmp_path: Path):
    items = list(read_csv(put(tmp_path / "u.csv", CSV)))
    assert items[1].record["error"] == "line one\nline two"
    assert items[1].position == 3
    assert items[1].raw == b'2,2026-10-30T12:01:00Z,6,"line one\nline two"'
    assert items[2].position == 5  # the multi-line row took lines 3 and 4
    assert items[2].record["id"] == "3"


def test_a_csv_row_with_too_many_fields_comes_back_with_an_error(tmp_path: Path):
    path = put(tmp_path / "u.csv", b"id,ts\n1,2026-10-30T12:00:00Z,surprise\n2,2026-10-30T12:00:00Z\n")
    items = list(read_csv(path))
    assert items[0].record is None
    assert items[0].error is not None and "3 fields" in items[0].error and "2" in items[0].error
    assert items[0].raw == b"1,2026-10-30T12:00:00Z,surprise"
    assert items[1].record == {"id": "2", "ts": "2026-10-30T12:00:00Z"}


def test_a_csv_row_with_too_few_fields_has_the_rest_absent(tmp_path: Path):
    (item,) = list(read_csv(put(tmp_path / "u.csv", b"id,ts,model\n1,2026-10-30T12:00:00Z\n")))
    assert item.record == {"id": "1", "ts": "2026-10-30T12:00:00Z"}


def test_an_invalid_utf8_csv_row_comes_back_with_an_error_and_its_raw_bytes(tmp_path: Path):
    items = list(read_csv(put(tmp_path / "u.csv", b"id,model\n1,caf\xe9\n2,ok\n")))
    assert items[0].error is not None and "UTF-8" in items[0].error
    assert items[0].raw == b"1,caf\xe9"
    assert items[1].record == {"id": "2", "model": "ok"}


def test_blank_csv_lines_are_not_records(tmp_path: Path):
    items = list(read_csv(put(tmp_path / "u.csv", b"id,model\n1,a\n\n,\n2,b\n")))
    assert records(items) == [{"id": "1", "model": "a"}, {"id": "2", "model": "b"}]
    assert all(item.error is None for item in items)


def test_a_byte_order_mark_is_not_part_of_the_first_header(tmp_path: Path):
    (item,) = list(read_csv(put(tmp_path / "u.csv", "\ufeffid,model\n1,a\n".encode())))
    assert item.record == {"id": "1", "model": "a"}


@pytest.mark.parametrize("k", range(4))
def test_resuming_a_csv_from_an_offset_still_uses_the_header(tmp_path: Path, k: int):
    path = put(tmp_path / "u.csv", CSV)
    first = list(read_csv(path))
    rest = list(read_csv(path, first[k].end_offset, first[k].lines_after))
    assert summary(rest) == summary(first[k + 1:])


def test_a_csv_last_line_without_newline_is_only_returned_when_final(tmp_path: Path):
    path = put(tmp_path / "u.csv", b"id,model\n1,a\n2,b")
    assert records(read_csv(path)) == [{"id": "1", "model": "a"}]
    assert records(read_csv(path, final=True)) == [{"id": "1", "model": "a"}, {"id": "2", "model": "b"}]


def test_a_csv_header_without_newline_gives_nothing_until_final(tmp_path: Path):
    path = put(tmp_path / "u.csv", b"id,model")
    assert list(read_csv(path)) == []


def test_a_quoted_field_still_open_at_the_end_of_a_growing_csv_is_not_consumed(tmp_path: Path):
    # The writer has written the first line of a multi-line field (ending in a newline)
    # but not the closing quote yet: the row is incomplete and must wait.
    path = put(tmp_path / "u.csv", b'id,error\n1,ok\n2,"line one\n')
    items = list(read_csv(path))
    assert records(items) == [{"id": "1", "error": "ok"}]
    assert items[-1].end_offset == len(b"id,error\n1,ok\n")


def test_a_gzip_csv_reads_the_same_as_the_plain_csv(tmp_path: Path):
    plain = list(read_csv(put(tmp_path / "u.csv", CSV)))
    packed = list(read_csv(put(tmp_path / "u.csv.gz", CSV)))
    assert summary(packed) == summary(plain)


# --------------------------------------------------------------------------- fingerprint

@pytest.mark.parametrize(("kind", "data"), [("jsonl", JSONL), ("csv", CSV)])
def test_a_renamed_copy_has_the_same_fingerprint(tmp_path: Path, kind: str, data: bytes):
    original = put(tmp_path / f"u.{kind}", data)
    renamed = tmp_path / f"u-2026-10-30.{kind}.1"
    shutil.copy(original, renamed)
    assert fingerprint(original, kind, final=False) is not None
    assert fingerprint(renamed, kind, final=False) == fingerprint(original, kind, final=False)


@pytest.mark.parametrize(("kind", "data"), [("jsonl", JSONL), ("csv", CSV)])
def test_a_gzipped_copy_has_the_same_fingerprint(tmp_path: Path, kind: str, data: bytes):
    original = put(tmp_path / f"u.{kind}", data)
    packed = put(tmp_path / f"u-old.{kind}.gz", data)
    assert fingerprint(packed, kind, final=True) == fingerprint(original, kind, final=False)


def test_a_growing_file_keeps_its_fingerprint(tmp_path: Path):
    path = put(tmp_path / "u.jsonl", JSONL[:32])
    before = fingerprint(path, "jsonl", final=False)
    with path.open("ab") as fh:
        fh.write(JSONL[32:])
    assert before is not None
    assert fingerprint(path, "jsonl", final=False) == before


def test_files_with_different_first_records_have_different_fingerprints(tmp_path: Path):
    one = put(tmp_path / "a.jsonl", b'{"id": "a"}\n')
    two = put(tmp_path / "b.jsonl", b'{"id": "b"}\n')
    assert fingerprint(one, "jsonl", final=False) != fingerprint(two, "jsonl", final=False)


def test_csv_files_sharing_a_header_are_told_apart_by_their_first_row(tmp_path: Path):
    one = put(tmp_path / "a.csv", b"id,model\n1,a\n")
    two = put(tmp_path / "b.csv", b"id,model\n2,b\n")
    assert fingerprint(one, "csv", final=False) != fingerprint(two, "csv", final=False)


def test_a_file_with_no_complete_first_line_has_no_fingerprint_yet(tmp_path: Path):
    path = put(tmp_path / "u.jsonl", b'{"id": "a", "prom')
    assert fingerprint(path, "jsonl", final=False) is None
    assert fingerprint(path, "jsonl", final=True) is not None


def test_a_csv_with_only_its_header_has_no_fingerprint_yet(tmp_path: Path):
    assert fingerprint(put(tmp_path / "u.csv", b"id,model\n"), "csv", final=False) is None


def test_an_empty_file_has_no_fingerprint(tmp_path: Path):
    assert fingerprint(put(tmp_path / "u.jsonl", b""), "jsonl", final=True) is None


# --------------------------------------------------------------------------- naming and listing

@pytest.mark.parametrize(("name", "kind"), [
    ("usage.jsonl", "jsonl"), ("usage.jsonl.gz", "jsonl"), ("usage.json", "json"), ("spend.JSON.gz", "json"), ("usage.log", "jsonl"),
    ("usage.csv", "csv"), ("usage.CSV", "csv"), ("usage.csv.gz", "csv"), ("usage.csv.1", "csv"),
    ("csv", "jsonl"), ("csv.jsonl", "jsonl"),
])
def test_the_kind_of_a_file_is_sniffed_from_its_name(name: str, kind: str):
    assert sniff_kind(Path("/logs") / name) == kind


def test_expand_lists_files_under_directories_in_a_stable_order_without_hidden_files(tmp_path: Path):
    logs = tmp_path / "logs"
    (logs / "b").mkdir(parents=True)
    for name in ("z.jsonl", "a.jsonl", ".hidden.jsonl", "b/m.csv"):
        (logs / name).write_text("{}\n")
    single = put(tmp_path / "single.jsonl", b"{}\n")
    assert expand([single, logs]) == [single, logs / "a.jsonl", logs / "b" / "m.csv", logs / "z.jsonl"]


def test_expand_keeps_named_files_in_the_order_given(tmp_path: Path):
    a, b = put(tmp_path / "a.jsonl", b"{}\n"), put(tmp_path / "b.jsonl", b"{}\n")
    assert expand([b, a]) == [b, a]
