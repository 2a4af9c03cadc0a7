"""Rows written as they come (cli.output.emit_stream): the same JSON and CSV as a list gives, a table
aligned under one header, data shown as data."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Iterator

import orjson
import pytest

from cli.output import Format, emit_rows, emit_stream

ROWS = [{"id": 1, "name": "a", "cost": Decimal("0.5"), "raw": "x\ny", "nested": {"k": [1, {}]}},
        {"id": 2, "name": "[red]eve[/red]", "cost": None, "raw": "", "nested": {}}]
COLUMNS = ["id", "name", "cost", "raw"]


def one_by_one(rows: list[dict], taken: list[int]) -> Iterator[dict]:
    for row in rows:
        taken.append(row["id"])
        yield row


@pytest.mark.parametrize("rows", [ROWS, ROWS[:1], []])
def test_streamed_json_is_the_text_a_list_would_give(capsys, rows) -> None:
    emit_stream(iter(rows), COLUMNS, Format.json, widths={})
    streamed = capsys.readouterr().out
    as_listed = orjson.dumps(rows, default=lambda d: f"{d:.10f}", option=orjson.OPT_INDENT_2).decode() + "\n"
    assert streamed == as_listed
    assert [row["id"] for row in json.loads(streamed)] == [row["id"] for row in rows]


def test_streamed_csv_is_the_text_a_list_would_give(capsys) -> None:
    emit_rows(ROWS, COLUMNS, Format.csv)
    listed = capsys.readouterr().out
    emit_stream(iter(ROWS), COLUMNS, Format.csv, widths={})
    streamed = capsys.readouterr().out
    assert streamed == listed
    assert list(csv.reader(io.StringIO(streamed)))[2][1] == "[red]eve[/red]"


def test_each_row_is_written_before_the_next_is_read(capsys) -> None:
    taken: list[int] = []
    seen_when_written: list[list[int]] = []

    class Watch(io.StringIO):
        def write(self, text: str) -> int:
            seen_when_written.append(list(taken))
            return super().write(text)

    with pytest.MonkeyPatch.context() as mp:
        out = Watch()
        mp.setattr("sys.stdout", out)
        emit_stream(one_by_one(ROWS, taken), COLUMNS, Format.json, widths={})
    assert [1] in seen_when_written  # the first row went out while the second was not yet read


def test_a_streamed_table_has_one_header_and_each_row_under_it(capsys) -> None:
    emit_stream(iter(ROWS), COLUMNS, Format.table, widths={"id": 4, "cost": 14}, right=("id",), title="things")
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if "name" in line)
    assert sum("name" in line and "raw" in line for line in lines) == 1
    assert lines[header].index("name") == next(line for line in lines if "[red]eve[/red]" in line).index("[red]")
    assert "things" in lines[0]
    text = "\n".join(lines)
    assert "0.5000000000" in text and "x\\x0ay" in text  # a newline in data is shown as an escape
