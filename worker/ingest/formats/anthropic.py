"""Anthropic: a Messages API response as an app logs it, or its usage copied into an app's record.

Field names from Anthropic's Messages API reference: ``id``, ``type: "message"``, ``model``,
``content``, ``stop_reason`` and ``usage`` with ``input_tokens`` (the uncached input only),
``cache_creation_input_tokens``, ``cache_read_input_tokens``, ``output_tokens``,
``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens`` and
``service_tier``. The response carries no time: the app's own field (``timestamp``,
``created_at``, ...) gives it, else the record is rejected for having none.
"""

from __future__ import annotations

from typing import Any, Mapping

from worker.ingest.formats.usage import ANTHROPIC_MARKS, app_record, fill

NAME = "anthropic"
_MESSAGE_CONTENT = frozenset({"type", "role", "content", "stop_reason", "stop_sequence", "usage", "container"})
_FLAT_USAGE = ANTHROPIC_MARKS | {"input_tokens", "output_tokens", "service_tier", "server_tool_use"}


def detects(keys: frozenset[str]) -> bool:
    if "usage" in keys and "type" in keys and ("stop_reason" in keys or "content" in keys):
        return True  # a Messages response
    return "input_tokens" in keys and not ANTHROPIC_MARKS.isdisjoint(keys)  # usage copied flat


def expand(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """One record -> (canonical records, records skipped)."""
    usage = record.get("usage")
    if isinstance(usage, dict):  # a Messages response, or an app record with it nested
        out = app_record(record, usage, _MESSAGE_CONTENT)
    else:
        out = app_record(record, record, _FLAT_USAGE)
    fill(out, "provider", "anthropic")
    return [out], 0
