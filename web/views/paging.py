"""Bounded lists: a page of rows and whether there is more, read with one extra row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Select

T = TypeVar("T")

PAGE = 50  # rows on one page unless a view says otherwise
MAX_PAGE = 500


@dataclass
class Page(Generic[T]):
    rows: list[T]
    page: int  # 1-based
    size: int
    more: bool  # a next page exists

    @property
    def previous(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.more else None


def clamp(page: Any, size: Any = PAGE) -> tuple[int, int]:
    """A page number and size from a query string: at least 1, the size at most MAX_PAGE."""
    try:
        number = max(int(page), 1)
    except (TypeError, ValueError):
        number = 1
    try:
        rows = min(max(int(size), 1), MAX_PAGE)
    except (TypeError, ValueError):
        rows = PAGE
    return number, rows


def fetch(conn: Connection, query: Select, page: int, size: int) -> Page[Any]:
    """One page of ``query`` (already ordered): OFFSET/LIMIT, one row more to know if there is a next."""
    rows = conn.execute(query.offset((page - 1) * size).limit(size + 1)).all()
    return Page(rows[:size], page, size, len(rows) > size)
