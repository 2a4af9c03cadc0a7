"""``--format`` offers only what each command prints: table or JSON for one object, CSV too for rows."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

OBJECT_COMMANDS = [
    ("status",),
    ("ingest", "{log}"),
    ("jobs", "run", "summaries"),
    ("reports", "show", "1"),
    ("killswitch", "status"),
    ("reprice", "--from", "2026-11-01", "--to", "2026-11-02"),
    ("integrity", "check"),
]


@pytest.mark.parametrize("command", OBJECT_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_commands_that_print_one_object_refuse_csv_and_name_the_choices(cli, tmp_path: Path, command) -> None:
    log = tmp_path / "empty.jsonl"
    log.write_text("", encoding="utf-8")
    args = [a.format(log=log) for a in command]
    result = cli(*args, "--format", "csv")
    assert result.exit_code == 2, result.output
    assert "'csv' is not one of 'table', 'json'" in result.output


def test_commands_that_print_one_object_still_print_json(cli) -> None:
    out = json.loads(cli("killswitch", "status", "--format", "json").stdout)
    assert out["active"] is False


@pytest.mark.parametrize("command", [("jobs", "list"), ("jobs", "history"), ("alerts", "list"),
                                     ("reports", "list"), ("notifications", "list"), ("rejects", "list"),
                                     ("accounts", "list"), ("usage", "--from", "2026-11-01", "--to", "2026-11-02")],
                         ids=lambda c: " ".join(c[:2]))
def test_commands_that_print_rows_do_table_csv_and_json(cli, command) -> None:
    as_csv = cli(*command, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    header = next(csv.reader(io.StringIO(as_csv.stdout)))
    assert header and "┃" not in as_csv.stdout
    as_json = cli(*command, "--format", "json")
    assert as_json.exit_code == 0 and isinstance(json.loads(as_json.stdout), list)
    assert cli(*command).exit_code == 0
