"""What the ledger books: a normalised usage :class:`Event` and a call :class:`Attempt`.

Every record shape is turned into one of these (``worker.ingest``); the ledger
writer, pricing and repricing work on them and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

# Column widths (models/ledger.py); longer values are cut and kept whole in metadata.
WIDTHS = {"event_id": 200, "account_id": 200, "tenant_id": 200, "service": 200,
          "provider": 100, "model": 200, "model_used": 200, "service_tier": 40, "api_key": 200,
          "project_id": 200}


@dataclass(slots=True)
class Event:
    event_id: str
    occurred_at: datetime
    account_id: str
    tenant_id: str | None
    service: str | None
    provider: str | None  # None: infer from the model when pricing
    model: str
    model_used: str
    status: str
    status_code: int | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    latency_ms: int | None
    cost_reported: Decimal | None
    error_message: str | None
    metadata: dict[str, Any] | None
    unattributed: bool
    model_defaulted: bool
    token_split_known: bool
    # Token classes beyond cached reads (each a part of prompt_tokens), the tier the call was
    # made on, and the key and project it was made under. Canonical record names are the same.
    cache_write_tokens: int = 0  # written to the prompt cache (5-minute and 1-hour TTL together)
    cache_write_1h_tokens: int = 0  # of cache_write_tokens, those with a 1-hour TTL
    service_tier: str | None = None  # batch | flex | priority | ...; None: the standard rate
    api_key: str | None = None  # the key (or its hash/alias) the call was made with
    project_id: str | None = None  # OpenAI project, Anthropic workspace, LiteLLM key's project


@dataclass(slots=True)
class Attempt:
    attempt_id: str
    started_at: datetime
    account_id: str
    tenant_id: str | None
    service: str | None
    provider: str | None
    model: str | None
    estimated_tokens: int | None
    metadata: dict[str, Any] | None


def attempt_row(attempt: Attempt, source: str, received_at: datetime) -> dict[str, Any]:
    return {"attempt_id": attempt.attempt_id, "source": source, "started_at": attempt.started_at,
            "received_at": received_at, "account_id": attempt.account_id, "tenant_id": attempt.tenant_id,
            "service": attempt.service, "provider": attempt.provider, "model": attempt.model,
            "estimated_tokens": attempt.estimated_tokens, "state": "open", "meta": attempt.metadata}
