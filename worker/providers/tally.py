"""Summing the providers' rows into one :class:`ProviderUsage` per (UTC day, model).

Providers split a day's usage further than we compare it (OpenAI by page, Anthropic by
service tier or context window, OpenRouter by endpoint); the tally adds those up.
``requests`` and ``cost_usd`` stay None unless some row reported them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Mapping

from worker.providers import ProviderUsage


@dataclass
class _Sums:
    requests: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal | None = None


class Tally:
    def __init__(self) -> None:
        self._sums: dict[tuple[date, str], _Sums] = {}

    def add(self, day: date, model: str, *, requests: int | None, input_tokens: int,
            output_tokens: int, cached_tokens: int, cost_usd: Decimal | None = None) -> None:
        sums = self._sums.setdefault((day, model), _Sums())
        if requests is not None:
            sums.requests = (sums.requests or 0) + requests
        sums.input_tokens += input_tokens
        sums.output_tokens += output_tokens
        sums.cached_tokens += cached_tokens
        if cost_usd is not None:
            sums.cost_usd = (sums.cost_usd or Decimal(0)) + cost_usd

    def rows(self, costs: Mapping[tuple[date, str], Decimal] | None = None) -> list[ProviderUsage]:
        """One row per (day, model), sorted. ``costs``, when given, supplies each row's
        ``cost_usd`` from a separate cost report (None where it has no entry)."""
        out = []
        for (day, model), s in sorted(self._sums.items()):
            cost = costs.get((day, model)) if costs is not None else s.cost_usd
            out.append(ProviderUsage(day=day, model=model, requests=s.requests,
                                     input_tokens=s.input_tokens, output_tokens=s.output_tokens,
                                     cached_tokens=s.cached_tokens, cost_usd=cost))
        return out
