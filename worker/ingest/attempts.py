"""Reading call attempts: an app logs its intent before calling an LLM; the usage event should follow.

An attempt arrives through any source, as a record with ``record_type = "attempt"``
or from a source whose ``record_type`` setting is ``"attempt"``::

    {"record_type": "attempt", "attempt_id": "r-123", "started_at": "2026-11-23T10:00:00Z",
     "user_id": "u1", "service": "chat", "model": "gpt-4o-mini", "estimated_tokens": 1500}

Its id is the id the usage event will carry (``event_id``/``request_id``/``id``), with
the source's ``event_id_namespace`` applied the same way. The integrity job matches
attempts to events; an attempt still without its event ``integrity.attempt_grace``
after it started is an unlogged call. A late event still matches it afterwards.
"""

from __future__ import annotations

from typing import Any

from worker.ingest.fields import RecordError, parse_metadata, parse_timestamp, parse_tokens, text_or_none
from worker.ledger.event import Attempt
from worker.models import UNATTRIBUTED

# canonical name -> the keys that feed it, in the order they win
ATTEMPT_FIELDS: dict[str, tuple[str, ...]] = {
    "attempt_id": ("attempt_id", "attemptId", "event_id", "request_id", "id", "requestId"),
    "started_at": ("started_at", "startedAt", "occurred_at", "timestamp", "created_at", "createdAt", "ts", "time"),
    "account_id": ("account_id", "user_id", "userId", "user"),
    "tenant_id": ("tenant_id", "tenantId", "org_id", "organization_id"),
    "service": ("service", "operation_type", "operationType", "purpose", "use_case", "useCase"),
    "provider": ("provider", "custom_llm_provider"),
    "model": ("model", "modelId", "model_requested", "model_name"),
    "estimated_tokens": ("estimated_tokens", "estimated_total_tokens", "estimatedTokens", "tokens_estimate"),
    "estimated_prompt_tokens": ("estimated_prompt_tokens", "estimated_input_tokens"),
    "estimated_completion_tokens": ("estimated_completion_tokens", "estimated_output_tokens"),
}
_KNOWN = frozenset(k for keys in ATTEMPT_FIELDS.values() for k in keys) | {"record_type", "metadata"}
_WIDTHS = {"attempt_id": 200, "account_id": 200, "tenant_id": 200, "service": 200, "provider": 100, "model": 200}


def parse_attempt(record: Any, defaults: dict[str, str], namespace: str) -> Attempt:
    """A raw record -> an attempt; RecordError (quarantine) when it cannot be one."""
    if not isinstance(record, dict):
        raise RecordError("an attempt must be a JSON object")

    def first(name: str) -> Any:
        for key in ATTEMPT_FIELDS[name]:
            value = record.get(key)
            if value is not None and value != "":
                return value
        return None

    raw_id = first("attempt_id")
    attempt_id = text_or_none(raw_id) if not isinstance(raw_id, (dict, list)) else None
    if not attempt_id:
        raise RecordError("attempt without an id (attempt_id, event_id, request_id or id): "
                          "nothing could ever match it")
    raw_ts = first("started_at")
    if raw_ts is None:
        raise RecordError("attempt without a timestamp (started_at, occurred_at, timestamp or created_at)")
    started_at = parse_timestamp(raw_ts)
    estimated = parse_tokens(first("estimated_tokens"), "estimated_tokens")
    if estimated is None:
        parts = [parse_tokens(first(n), n) for n in ("estimated_prompt_tokens", "estimated_completion_tokens")]
        if any(p is not None for p in parts):
            estimated = sum(p or 0 for p in parts)
    metadata = parse_metadata(record.get("metadata")) if "metadata" in record else None
    extras = {k: v for k, v in record.items() if k not in _KNOWN and v is not None and v != ""}
    if extras:
        metadata = {**(metadata or {}), **extras}
    values = {name: text_or_none(first(name)) or defaults.get(name) for name in
              ("account_id", "tenant_id", "service", "provider", "model")}
    attempt = Attempt(f"{namespace}:{attempt_id}" if namespace else attempt_id, started_at,
                      values["account_id"] or UNATTRIBUTED, values["tenant_id"], values["service"],
                      values["provider"], values["model"], estimated, metadata)
    for name, width in _WIDTHS.items():
        value = getattr(attempt, name)
        if value is not None and len(value) > width:
            attempt.metadata = {**(attempt.metadata or {}), f"{name}_full": value}
            setattr(attempt, name, value[:width])
    return attempt
