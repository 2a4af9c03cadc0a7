"""Text from the data is data in the CLI's tables and CSV: no rich markup, no terminal escapes,
no bidi tricks, no spreadsheet formulas (OWASP "CSV Injection")."""

from __future__ import annotations

import csv
import io

import pytest

from cli.output import Format, emit_rows
from worker.text import csv_safe, shown

HOSTILE = ["[/bold]x", "[red]eve[/red]", "[link=https://evil.example]click[/link]", "\x1b[31mred\x1b[0m",
           "invoice\u202etxt.exe", "a\nb"]


def _table(capsys: pytest.CaptureFixture[str], rows: list[dict]) -> str:
    emit_rows(rows, ["account", "cost"], Format.table)
    return capsys.readouterr().out


def test_markup_in_a_cell_is_printed_as_written_and_never_crashes(capsys) -> None:
    out = _table(capsys, [{"account": a, "cost": 1} for a in HOSTILE[:3]])
    for text in HOSTILE[:3]:
        assert text in out
    assert "\x1b]8;" not in out  # no live hyperlink


def test_control_and_bidi_characters_are_shown_as_escapes(capsys) -> None:
    out = _table(capsys, [{"account": a, "cost": 1} for a in HOSTILE[3:]])
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[31mred\\x1b[0m" in out and "invoice\\u202etxt.exe" in out and "a\\x0ab" in out


def test_csv_cells_that_a_spreadsheet_would_evaluate_get_a_quote(capsys) -> None:
    rows = [{"account": v, "cost": "-0.5"} for v in ("=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "ok")]
    emit_rows(rows, ["account", "cost"], Format.csv)
    parsed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert [r[0] for r in parsed[1:]] == ["'=HYPERLINK(\"http://x\")", "'+1+1", "'-2+3", "'@SUM(A1)", "ok"]
    assert all(r[1] == "-0.5" for r in parsed[1:])  # a number stays a number


def test_the_helpers_leave_ordinary_text_alone() -> None:
    assert shown("gpt-4o-mini / 東京 \\x") == "gpt-4o-mini / 東京 \\x"
    assert csv_safe("-12.5") == "-12.5" and csv_safe("1e-3") == "1e-3"

