"""OpenAI: a chat completion or Responses object as an app logs it, and Batch API output lines.

Field names from OpenAI's API reference: the chat completion object (``id``, ``created``
epoch seconds, ``model``, ``service_tier``, ``usage.prompt_tokens`` with
``prompt_tokens_details.cached_tokens`` and ``completion_tokens_details.reasoning_tokens``),
the Responses object (``created_at``, ``status``, ``usage.input_tokens`` with
``input_tokens_details`` / ``output_tokens_details``) and the Batch API output file
(one ``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``
per line; the body is the endpoint's response, billed at the batch rate).
An app record that carries OpenAI usage flat (``prompt_tokens_details`` beside
``prompt_tokens``) or nested (``usage``) keeps its own fields.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from worker.ingest.formats.usage import OPENAI_DETAILS, app_record, fill, openai_usage, tier

NAME = "openai"
# Of a raw API object only these say something about the call; the rest is content (choices, output).
_OBJECT_FIELDS = ("id", "model", "user", "metadata", "error", "status")
_FLAT_DROP = OPENAI_DETAILS


def detects(keys: frozenset[str]) -> bool:
    if "custom_id" in keys and "response" in keys:
        return True
    if "usage" in keys and "object" in keys:
        return True
    return not OPENAI_DETAILS.isdisjoint(keys)


def _object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A chat completion / Responses object -> a canonical record."""
    out = {k: obj[k] for k in _OBJECT_FIELDS if obj.get(k) is not None}
    if obj.get("status") == "incomplete":
        out["status"] = "success"  # stopped at max_output_tokens: billed like any other call
    usage = obj.get("usage")
    out.update(openai_usage(usage if isinstance(usage, dict) else {}))
    fill(out, "occurred_at", obj.get("created") if obj.get("created") is not None else obj.get("created_at"))
    out["provider"] = "openai"
    if (service_tier := tier(obj.get("service_tier"))) is not None:
        out["service_tier"] = service_tier
    return out


def _batch_line(line: Mapping[str, Any]) -> list[dict[str, Any]]:
    response = line.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("usage"), dict):
        return []  # a request that failed (``error`` set): nothing was billed
    out = _object(body)
    if line.get("id"):
        out["event_id"] = line["id"]
    out["service_tier"] = "batch"
    out["status_code"] = response.get("status_code")
    out["metadata"] = {**(out.get("metadata") or {}), "custom_id": line.get("custom_id")}
    return [out]


def expand(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """One record -> (canonical records, records skipped)."""
    if "custom_id" in record and "response" in record:
        records = _batch_line(record)
        return records, 1 - len(records)
    if "object" in record and isinstance(record.get("usage"), dict):
        return [_object(record)], 0
    usage = record.get("usage")
    if isinstance(usage, dict):  # an app record with the SDK's usage nested
        out = app_record(record, usage, frozenset({"usage"}))
    else:  # the usage fields copied flat beside the app's
        out = app_record(record, record, _FLAT_DROP)
    fill(out, "provider", "openai")
    return [out], 0


def plan(keys: frozenset[str]) -> Callable[[Mapping[str, Any]], tuple[list[dict[str, Any]], int]]:
    """Records of any key set are expanded (see the module docstring)."""
    return expand
