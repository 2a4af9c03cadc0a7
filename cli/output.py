"""Printing results as a rich table, CSV or JSON (the progress bar of a long command: :mod:`cli.progress`).

Results go to stdout (a table, CSV or JSON as ``--format`` says); messages and the progress bar
never mix into JSON or piped output. :func:`emit_stream` writes rows one by one as they come
(the table with fixed column widths), so a listing holds one row at a time however long it is.
"""

from __future__ import annotations

import csv
import sys
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Iterable

import orjson
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from worker.text import csv_safe, shown

# Piped output gets a wide console rather than rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)


def print_error(message: str) -> None:
    """``error: <message>`` on stderr, the message as it is (no markup, no wrapping inside paths)."""
    err_console.print(Text("error: ", style="red") + Text(message), highlight=False, soft_wrap=True)


class Format(str, Enum):
    """``--format`` of a command that prints rows: a table, CSV or JSON."""

    table = "table"
    json = "json"
    csv = "csv"


class ObjectFormat(str, Enum):
    """``--format`` of a command that prints one object (or several tables): a table or JSON.
    Typer offers only these two, so ``--format csv`` is refused (exit 2) rather than printing a
    table. Its members equal Format's of the same name (``ObjectFormat.json == Format.json``):
    compare formats with ``==``."""

    table = "table"
    json = "json"


# ``--format`` for commands that print one object (a table or JSON).
TableOrJson = Annotated[ObjectFormat, typer.Option("--format", help="table or json")]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.10f}"
    return str(value)


def _csv_cell(value: Any) -> str:
    return csv_safe(value) if isinstance(value, str) else _cell(value)


def _write_json(rows: Iterable[dict[str, Any]]) -> None:
    """A JSON array written element by element: the same text as ``orjson.dumps(list(rows))`` indented."""
    out, opening = sys.stdout, "[\n  "
    for row in rows:
        out.write(opening)
        # (a JSON string holds no raw newline: each one here is the layout's, indented one level more)
        out.write(orjson.dumps(row, default=_cell, option=orjson.OPT_INDENT_2).decode().replace("\n", "\n  "))
        opening = ",\n  "
    out.write("[]\n" if opening == "[\n  " else "\n]\n")


def _write_csv(rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])


def emit_rows(rows: list[dict[str, Any]], columns: Iterable[str], fmt: Format | ObjectFormat, title: str | None = None) -> None:
    columns = list(columns)
    if fmt == Format.json:
        _write_json(rows)
    elif fmt == Format.csv:
        _write_csv(rows, columns)
    else:
        # Every cell is a Text, never markup: "[red]eve[/red]" or "[link=...]" from the data is shown as
        # written, and control or bidi characters as escapes.
        table = Table(title=Text(title) if title else None)
        for col in columns:
            table.add_column(Text(col), justify="right" if _numeric(rows, col) else "left")
        for row in rows:
            table.add_row(*[Text(shown(_cell(row.get(c)))) for c in columns])
        console.print(table)


def emit_stream(rows: Iterable[dict[str, Any]], columns: Iterable[str], fmt: Format, *, widths: dict[str, int],
                right: Iterable[str] = (), title: str | None = None) -> None:
    """Rows written as they come, none kept: JSON and CSV as :func:`emit_rows` writes them; the table
    with ``widths`` (characters) for those columns, the others sharing the rest, each cell folded."""
    columns = list(columns)
    if fmt == Format.json:
        _write_json(rows)
        return
    if fmt == Format.csv:
        _write_csv(rows, columns)
        return
    right = set(right)

    def table(header: bool) -> Table:
        part = Table(title=Text(title) if title and header else None, show_header=header, box=box.SIMPLE_HEAD,
                     show_edge=False, pad_edge=False, expand=True)
        for col in columns:
            part.add_column(Text(col), width=widths.get(col), ratio=None if col in widths else 1, overflow="fold",
                            justify="right" if col in right else "left")
        return part

    console.print(table(True))  # the header; then each row, aligned under it
    for row in rows:
        part = table(False)
        part.add_row(*[Text(shown(_cell(row.get(c)))) for c in columns])
        console.print(part)


def emit_object(obj: dict[str, Any], fmt: Format | ObjectFormat, title: str | None = None) -> None:
    if fmt == Format.json:
        sys.stdout.write(orjson.dumps(obj, default=_cell).decode() + "\n")
    else:
        emit_rows([{"key": k, "value": v} for k, v in obj.items()], ["key", "value"], Format.table, title)


def _numeric(rows: list[dict[str, Any]], col: str) -> bool:
    return bool(rows) and all(isinstance(r.get(col), (int, float, Decimal)) or
                              (isinstance(r.get(col), str) and r[col].replace(".", "", 1).isdigit())
                              for r in rows if r.get(col) is not None)
