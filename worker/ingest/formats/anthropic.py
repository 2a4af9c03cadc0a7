"""Anthropic: a Messages API response as an app logs it, or its usage copied into an app's record.

Field names from Anthropic's Messages API reference: ``id``, ``type: "message"``, ``model``,
``content``, ``stop_reason`` and ``usage`` with ``input_tokens`` (the uncached input only),
``cache_creation_input_tokens``, ``cache_read_input_tokens``, ``output_tokens``,
``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens`` and
``service_tier``. The response carries no time: the app's own field (``timestamp``,
``created_at``, ...) gives it, else the record is rejected for having none.

Message Batches results (API reference, "Retrieve Message Batch results":
``GET /v1/messages/batches/{message_batch_id}/results``, a .jsonl of
``MessageBatchIndividualResponse``): one ``{"custom_id", "result": {"type": "succeeded",
"message": {...a Messages response...}}}`` per request, billed at the batch rate:
``service_tier = "batch"``. Results of type ``errored``, ``canceled`` or ``expired`` were
not billed: skipped and counted, not rejected. The results carry no time either: a line
needs the app's own (e.g. the batch's ``ended_at`` copied as ``created_at``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from worker.ingest.formats.reading import Reading, as_record, canonical_fields
from worker.ingest.formats.usage import ANTHROPIC_MARKS, provider_usage, tier

NAME = "anthropic"
_MESSAGE_CONTENT = frozenset({"type", "role", "content", "stop_reason", "stop_sequence", "usage", "container"})
_FLAT_USAGE = ANTHROPIC_MARKS | {"input_tokens", "output_tokens", "service_tier", "server_tool_use"}
_USAGE_FIELDS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens",
                           "cache_write_tokens", "cache_write_1h_tokens", "service_tier", "provider"})


def detects(keys: frozenset[str]) -> bool:
    if "custom_id" in keys and "result" in keys:
        return True  # a Message Batches results line
    if "usage" in keys and "type" in keys and ("stop_reason" in keys or "content" in keys):
        return True  # a Messages response
    return "input_tokens" in keys and not ANTHROPIC_MARKS.isdisjoint(keys)  # usage copied flat


def _derive(record: Mapping[str, Any], values: dict[str, Any]) -> None:
    """The usage's tokens with their provider's meaning (Anthropic's: input_tokens excludes the cache),
    over whatever the app's own fields said; the app's own non-standard tier; provider anthropic unless said."""
    usage = record.get("usage")
    values.update(provider_usage(usage if type(usage) is dict else record))
    if (service_tier := tier(record.get("service_tier"))) is not None:
        values["service_tier"] = service_tier
    if not values.get("provider"):
        values["provider"] = "anthropic"


# A Messages response, or an app's record with it nested: the app's fields as canonical records have them.
MESSAGE = Reading(canonical_fields(), _derive, _USAGE_FIELDS, drop=_MESSAGE_CONTENT)
# An app's record with the usage fields copied flat beside its own.
FLAT = Reading(canonical_fields(), _derive, _USAGE_FIELDS, drop=_FLAT_USAGE)


def _batch_result(line: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A succeeded result -> its message as a record on the batch tier; other results -> none."""
    result = line.get("result")
    message = result.get("message") if isinstance(result, dict) and result.get("type") == "succeeded" else None
    if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
        return []
    app_fields = {k: v for k, v in line.items() if k not in ("custom_id", "result")}
    out = as_record(MESSAGE, {**message, **app_fields})  # the app's own fields (its timestamp) win
    out["service_tier"] = "batch"
    out["metadata"] = {**(out.get("metadata") or {}), "custom_id": line.get("custom_id")}
    return [out]


def expand(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """One record -> (canonical records, records skipped)."""
    if "custom_id" in record and "result" in record:
        records = _batch_result(record)
        return records, 1 - len(records)
    return [as_record(MESSAGE if "usage" in record else FLAT, record)], 0


def plan(keys: frozenset[str]) -> Reading | Callable[[Mapping[str, Any]], tuple[list[dict[str, Any]], int]]:
    """A batch results line is expanded (a message, or nothing billed); any other record is one call."""
    if "custom_id" in keys and "result" in keys:
        return expand
    return MESSAGE if "usage" in keys else FLAT
