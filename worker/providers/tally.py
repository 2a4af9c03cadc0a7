"""Summing the providers' rows into one :class:`ProviderUsage` per (UTC day, model, project).

Providers split a day's usage further than we compare it (OpenAI by page, Anthropic by
service tier or context window, OpenRouter by endpoint); the tally adds those up.
``requests`` and ``cost_usd`` stay None unless some row reported them. ``model`` is None
where the provider named no model (OpenAI's usage API may answer ``model: null``);
``project`` is None unless the provider was asked to group by project. A ``cost_gap``
given for any part of a row (e.g. Priority Tier usage, which Anthropic's cost report
leaves out) stays on the summed row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Mapping

from worker.providers import ProviderUsage

Key = tuple[date, str | None, str | None]  # (day, model, project)


@dataclass
class _Sums:
    requests: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal | None = None
    cost_gap: str | None = None


class Tally:
    def __init__(self) -> None:
        self._sums: dict[Key, _Sums] = {}

    def add(self, day: date, model: str | None, *, requests: int | None, input_tokens: int,
            output_tokens: int, cached_tokens: int, cost_usd: Decimal | None = None,
            project: str | None = None, cost_gap: str | None = None) -> None:
        sums = self._sums.setdefault((day, model, project), _Sums())
        if requests is not None:
            sums.requests = (sums.requests or 0) + requests
        sums.input_tokens += input_tokens
        sums.output_tokens += output_tokens
        sums.cached_tokens += cached_tokens
        if cost_usd is not None:
            sums.cost_usd = (sums.cost_usd or Decimal(0)) + cost_usd
        if cost_gap is not None:
            sums.cost_gap = cost_gap

    def rows(self, costs: Mapping[Key, Decimal] | None = None) -> list[ProviderUsage]:
        """One row per (day, model, project), sorted (unnamed models and projects first).
        ``costs``, when given, supplies each row's ``cost_usd`` from a separate cost report
        (None where it has no entry)."""
        out = []
        for (day, model, project), s in sorted(self._sums.items(), key=_order):
            cost = costs.get((day, model, project)) if costs is not None else s.cost_usd
            out.append(ProviderUsage(day=day, model=model, requests=s.requests,
                                     input_tokens=s.input_tokens, output_tokens=s.output_tokens,
                                     cached_tokens=s.cached_tokens, cost_usd=cost, project=project,
                                     cost_gap=s.cost_gap))
        return out


def _order(item: tuple[Key, _Sums]) -> tuple[date, str, str]:
    (day, model, project), _ = item
    return day, model or "", project or ""
