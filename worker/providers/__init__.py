"""The providers' own view of usage and cost, for reconciliation with the ledger.

One module per provider (``openai``, ``anthropic``, ``openrouter``), each with
``fetch(config, first, last) -> ProviderReport`` for the inclusive range of UTC days
``first``..``last``. The registry maps a provider name to its module's dotted path and
imports it on first use (like ``reports.channels``). HTTP, retries and error mapping
live in one place, ``worker.providers.http``.

Every failure is one exception type, :class:`ProviderError`: ``permanent`` when
retrying cannot help (refused key, rejected request, a response we cannot read), not
permanent when retries for 429 / 5xx / connection errors ran out. The admin key is
never logged and never appears in an error message (nor in ``repr(config)``).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

logger = logging.getLogger(__name__)

PROVIDERS: dict[str, str] = {
    "openai": "worker.providers.openai",
    "anthropic": "worker.providers.anthropic",
    "openrouter": "worker.providers.openrouter",
}


@dataclass(frozen=True)
class ProviderConfig:
    name: str  # "openai" | "anthropic" | "openrouter"
    base_url: str  # https://api.openai.com, https://api.anthropic.com, https://openrouter.ai
    api_key: str = field(repr=False)  # admin / management key: never logged, never in a message
    timeout: float = 30.0  # seconds per HTTP request
    max_retries: int = 4  # retries after the first attempt, for 429 / 5xx / connection errors
    backoff: float = 1.0  # wait backoff * 2**n (capped at 60 s), or Retry-After (capped at 300 s)
    project_ids: tuple[str, ...] = ()  # OpenAI project ids / Anthropic workspace ids; () = whole org


@dataclass(frozen=True)
class ProviderUsage:
    """One UTC day, model (and project, where asked for), as the provider reports it."""

    day: date
    model: str | None  # the provider's model name, as returned; None where it names none (OpenAI may)
    requests: int | None  # None where the provider does not report requests (Anthropic)
    # All input tokens, cached ones included. OpenAI's ``input_tokens`` already includes its
    # ``input_cached_tokens`` (a subset, never added to it); Anthropic's is the sum of
    # uncached input, cache reads and cache writes.
    input_tokens: int
    output_tokens: int
    cached_tokens: int  # cache reads (a subset of input_tokens)
    cost_usd: Decimal | None  # the provider's cost for this row where it reports one, else None
    project: str | None = None  # OpenAI project_id / Anthropic workspace_id when grouped by it
    cost_gap: str | None = None  # why cost_usd leaves part of this usage out (e.g. Priority Tier)


@dataclass(frozen=True)
class ProviderReport:
    provider: str
    first: date
    last: date
    usage: list[ProviderUsage]  # summed per (day, model, project): one row each, sorted
    day_costs: dict[date, Decimal]  # the provider's total cost per UTC day ({} if it has none)
    requests_made: int  # HTTP requests made (pages + retries), for the stats
    # Costs the provider attributes to no model, per day and kind (Anthropic's web_search,
    # code_execution); a part of day_costs.
    other_costs: dict[date, dict[str, Decimal]] = field(default_factory=dict)


class ProviderError(Exception):
    """Fetching from a provider failed. The message names the provider and what to do.

    ``permanent``: retrying cannot help (refused key, rejected request, unreadable
    response). ``status``: the last HTTP status, None for connection errors."""

    def __init__(self, message: str, *, permanent: bool = False, status: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.status = status


def fetch(config: ProviderConfig, first: date, last: date) -> ProviderReport:
    """The provider's usage and costs for the UTC days ``first``..``last`` (inclusive)."""
    try:
        dotted = PROVIDERS[config.name]
    except KeyError:
        raise ProviderError(f"no provider {config.name!r} (providers: {', '.join(sorted(PROVIDERS))})",
                            permanent=True) from None
    if last < first:
        raise ProviderError(f"{config.name}: the range ends ({last}) before it starts ({first})",
                            permanent=True)
    try:
        report: ProviderReport = importlib.import_module(dotted).fetch(config, first, last)
    except ProviderError as exc:
        # The modules never put the key in a message; this makes sure of it, whatever a
        # provider echoed into a field we quoted.
        if config.api_key and config.api_key in str(exc):
            raise ProviderError(str(exc).replace(config.api_key, "[redacted]"),
                                permanent=exc.permanent, status=exc.status) from None
        raise
    logger.info("provider usage fetched", extra={
        "action": "provider_usage_fetched", "provider": config.name, "first": first.isoformat(),
        "last": last.isoformat(), "rows": len(report.usage), "days_with_cost": len(report.day_costs),
        "requests_made": report.requests_made})
    return report
