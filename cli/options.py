"""Dates given on the command line: parsed in one place, refused with exit 2 naming the option.

parse_date() reads one ``--date``/``--from``/``--to`` value (None stays None); date_range()
reads a ``--from``/``--to`` pair with a default span (``--from`` alone means that one day);
in_order() refuses a span that ends before it starts.
"""

from __future__ import annotations

from datetime import date
from typing import overload

from cli.state import fail


@overload
def parse_date(value: str, option: str) -> date: ...
@overload
def parse_date(value: str | None, option: str) -> date | None: ...


def parse_date(value: str | None, option: str) -> date | None:
    """The date ``value`` (an ISO date) given as ``option``; exit 2 naming the option when it is not one."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: expected a date like 2026-10-30, got {value!r}", code=2)


def in_order(first: date, last: date) -> None:
    if last < first:
        fail("--to is before --from", code=2)


def date_range(date_from: str | None, date_to: str | None, default: tuple[date, date]) -> tuple[date, date]:
    """``--from``/``--to`` with a default span: nothing given is the default; ``--from`` alone is one day;
    ``--to`` alone ends the default span there."""
    first = parse_date(date_from or None, "--from") or default[0]
    last = parse_date(date_to or None, "--to") or (first if date_from else default[1])
    in_order(first, last)
    return first, last
