"""Printing results as a rich table, CSV or JSON."""

from __future__ import annotations

import csv
import sys
from decimal import Decimal
from enum import Enum
from typing import Any, Iterable

import orjson
from rich.console import Console
from rich.table import Table

# Piped output gets a wide console rather than rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.10f}"
    return str(value)


def emit_rows(rows: list[dict[str, Any]], columns: Iterable[str], fmt: Format, title: str | None = None) -> None:
    columns = list(columns)
    if fmt is Format.json:
        sys.stdout.write(orjson.dumps(rows, default=_cell, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    else:
        table = Table(title=title)
        for col in columns:
            table.add_column(col, justify="right" if _numeric(rows, col) else "left")
        for row in rows:
            table.add_row(*[_cell(row.get(c)) for c in columns])
        console.print(table)


def emit_object(obj: dict[str, Any], fmt: Format, title: str | None = None) -> None:
    if fmt is Format.json:
        sys.stdout.write(orjson.dumps(obj, default=_cell).decode() + "\n")
    else:
        emit_rows([{"key": k, "value": v} for k, v in obj.items()], ["key", "value"], Format.table, title)


def _numeric(rows: list[dict[str, Any]], col: str) -> bool:
    return bool(rows) and all(isinstance(r.get(col), (int, float, Decimal)) or
                              (isinstance(r.get(col), str) and r[col].replace(".", "", 1).isdigit())
                              for r in rows if r.get(col) is not None)
