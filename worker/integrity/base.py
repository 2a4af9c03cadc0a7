"""The vocabulary of the integrity checks: a :class:`Finding` and the :class:`CheckContext` a check reads.

A check is a function ``CheckContext -> list[Finding]`` that only reads. A finding
holds facts (counts, names, periods, examples, ``data``), never a sentence: its wording
is the template ``templates/findings/<check>.txt.j2``, rendered with ``finding`` = the
payload plus ``scope_id`` and ``period`` (by the alert templates through
``templates/alerts/sentence.txt.j2``, and by ``tokentally integrity check``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Callable

from sqlalchemy import Connection

from worker.settings import Settings
from worker.settings.integrity import IntegritySettings
from worker.summaries.usage import range_bounds


@dataclass
class Finding:
    """One condition found: what, where, when, how much, and a few examples."""

    check: str  # the check that found it (see CHECKS)
    kind: str  # the alert it raises: integrity.unlogged_calls, source.silent, ...
    scope: str  # source | system | provider
    scope_id: str
    period: str  # local day 'YYYY-MM-DD', or "" for a state (a silent source)
    count: int
    severity: str = "warning"
    examples: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def payload(self) -> dict[str, Any]:
        """The alert's facts: what the finding template reads (with the alert's scope_id and period)."""
        return {"check": self.check, "count": self.count,
                "examples": self.examples, **self.data}


@dataclass
class CheckContext:
    conn: Connection
    settings: Settings
    now: datetime
    first: date
    last: date

    @property
    def options(self) -> IntegritySettings:
        return self.settings.integrity

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """UTC [start, end) of the checked local days."""
        return range_bounds(self.first, self.last, self.settings.tz)

    def day_of(self, moment: datetime) -> str:
        return moment.astimezone(self.settings.tz).date().isoformat()


Check = Callable[[CheckContext], list[Finding]]
