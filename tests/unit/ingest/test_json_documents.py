"""Whole .json documents and JSONL lines holding an array (worker/ingest/files.py)."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson

from worker.ingest import files
from worker.ingest.files import MAX_JSON_BYTES, fingerprint, read_json, read_jsonl, read_records


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_json_array_yields_each_element_numbered_from_one_with_offsets_up_to_its_size(tmp_path):
    path = put(tmp_path / "spend.json", orjson.dumps([{"a": 1}, {"b": 2}, {"c": 3}], option=orjson.OPT_INDENT_2))
    items = list(read_json(path))
    assert [(i.position, i.record) for i in items] == [(1, {"a": 1}), (2, {"b": 2}), (3, {"c": 3})]
    assert items[-1].end_offset == path.stat().st_size
    assert [i.end_offset for i in items] == sorted(i.end_offset for i in items)


def test_a_page_object_yields_the_elements_of_its_data_array(tmp_path):
    path = put(tmp_path / "page.json", orjson.dumps({"data": [{"id": "o-1"}, {"id": "o-2"}], "meta": {"page": 1}}))
    assert [i.record for i in read_json(path)] == [{"id": "o-1"}, {"id": "o-2"}]


def test_a_single_object_document_is_one_record_and_non_objects_are_errors(tmp_path):
    assert [i.record for i in read_json(put(tmp_path / "one.json", b'{"x": 1}'))] == [{"x": 1}]
    items = list(read_json(put(tmp_path / "mixed.json", b'[{"x": 1}, 7]')))
    assert (items[1].record, items[1].error, items[1].raw) == (None, "not a JSON object (got a number)", b"7")


def test_a_broken_document_is_one_error_and_json_lines_named_json_are_read_as_lines(tmp_path):
    (broken,) = read_json(put(tmp_path / "b.json", b'[{"x": 1},'))
    assert broken.record is None and broken.error.startswith("invalid JSON")
    lines = list(read_json(put(tmp_path / "l.json", b'{"x": 1}\n{"x": 2}\n')))
    assert [(i.position, i.record) for i in lines] == [(1, {"x": 1}), (2, {"x": 2})]


def test_a_document_above_the_limit_is_refused_with_one_reject_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_JSON_BYTES", 16)
    (item,) = read_json(put(tmp_path / "big.json", b'[{"x": 1}, {"x": 2}, {"x": 3}]'))
    assert item.record is None and "larger than" in item.error and "MAX_JSON_BYTES" in item.error
    assert MAX_JSON_BYTES == 16 << 20


def test_a_gzipped_document_is_read_through_read_records(tmp_path):
    path = put(tmp_path / "s.json.gz", gzip.compress(b'[{"x": 1}, {"x": 2}]'))
    assert [i.record for i in read_records("json", path)] == [{"x": 1}, {"x": 2}]


def test_a_json_document_has_a_fingerprint_only_once_complete(tmp_path):
    path = put(tmp_path / "s.json", b'[\n  {"x": 1}\n]\n')
    assert fingerprint(path, "json", final=False) is None
    assert fingerprint(path, "json", final=True) == fingerprint(put(tmp_path / "t.json", path.read_bytes()), "json",
                                                                 final=True)
    assert fingerprint(put(tmp_path / "e.json", b"  \n"), "json", final=True) is None


def test_a_jsonl_line_holding_an_array_of_objects_yields_its_elements_then_closes_the_line(tmp_path):
    array = b'[{"x": 1}, {"x": 2}]\n'
    path = put(tmp_path / "a.jsonl", b'{"x": 0}\n' + array + b'[{"x": 3}, "no"]\n{"x": 4}\n')
    items = list(read_jsonl(path, final=True))
    assert [(i.position, i.record) for i in items] == [
        (1, {"x": 0}), (2, {"x": 1}), (2, {"x": 2}), (2, None), (3, None), (4, {"x": 4})]
    # elements end where their line starts (a checkpoint among them re-reads the line); the closing item ends it
    assert [(i.end_offset, i.lines_after, i.error) for i in items[1:4]] == [
        (9, 1, None), (9, 1, None), (9 + len(array), 2, None)]
    assert items[4].error == "not a JSON object (got an array)"  # not all objects: the line is one error
