"""A provider's usage object -> canonical token fields, with that provider's meaning.

OpenAI (Chat Completions and Responses) counts cached reads inside ``prompt_tokens`` /
``input_tokens`` and reasoning inside ``completion_tokens`` / ``output_tokens``: the
canonical meaning, so the numbers are taken as they are. Anthropic's ``input_tokens``
excludes the cache: prompt = input + cache writes + cache reads. Shared by the openai,
anthropic and litellm modules, and by app records that carry a provider's usage.
"""

from __future__ import annotations

from typing import Any, Mapping

from worker.ingest.fields import parse_tokens
from worker.ingest.formats.canonical import ALIASES

STANDARD_TIERS = frozenset({"default", "auto", "standard", "standard_only"})  # None: the standard rate
ANTHROPIC_MARKS = frozenset({"cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation"})
OPENAI_DETAILS = frozenset({"prompt_tokens_details", "completion_tokens_details", "input_tokens_details",
                            "output_tokens_details"})


def tier(value: Any) -> str | None:
    """The service tier as the provider names it; None for the standard one."""
    if not isinstance(value, str) or not value.strip() or value.strip().lower() in STANDARD_TIERS:
        return None
    return value.strip().lower()


def _details(usage: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = usage.get(key)
    return value if isinstance(value, dict) else {}


def openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Chat Completions ``usage`` (prompt_tokens, prompt_tokens_details.cached_tokens,
    completion_tokens_details.reasoning_tokens) or Responses ``usage`` (input_tokens,
    input_tokens_details.cached_tokens, output_tokens_details.reasoning_tokens)."""
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        cached = _details(usage, "prompt_tokens_details").get("cached_tokens")
        reasoning = _details(usage, "completion_tokens_details").get("reasoning_tokens")
    else:
        prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
        cached = _details(usage, "input_tokens_details").get("cached_tokens")
        reasoning = _details(usage, "output_tokens_details").get("reasoning_tokens")
    out = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": usage.get("total_tokens"),
           "cached_tokens": cached, "reasoning_tokens": reasoning}
    return {k: v for k, v in out.items() if v is not None}


def anthropic_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Messages ``usage``: prompt = input_tokens + cache_creation_input_tokens + cache_read_input_tokens;
    the cache writes split by TTL in cache_creation.ephemeral_5m/1h_input_tokens; service_tier."""
    uncached = parse_tokens(usage.get("input_tokens"), "input_tokens") or 0
    read = parse_tokens(usage.get("cache_read_input_tokens"), "cache_read_input_tokens") or 0
    written = parse_tokens(usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
    split = _details(usage, "cache_creation")
    five = parse_tokens(split.get("ephemeral_5m_input_tokens"), "ephemeral_5m_input_tokens") or 0
    hour = parse_tokens(split.get("ephemeral_1h_input_tokens"), "ephemeral_1h_input_tokens") or 0
    if written is None:
        written = five + hour
    out: dict[str, Any] = {"prompt_tokens": uncached + written + read, "cached_tokens": read,
                           "cache_write_tokens": written, "cache_write_1h_tokens": hour}
    if usage.get("output_tokens") is not None:
        out["completion_tokens"] = usage["output_tokens"]
    if (service_tier := tier(usage.get("service_tier"))) is not None:
        out["service_tier"] = service_tier
    return out


def is_anthropic(usage: Mapping[str, Any]) -> bool:
    """Anthropic's cache fields beside input_tokens mean Anthropic's input_tokens (cache excluded)."""
    return not ANTHROPIC_MARKS.isdisjoint(usage)


def provider_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Any provider's usage object, read by its own keys."""
    return anthropic_usage(usage) if is_anthropic(usage) else openai_usage(usage)


def fill(out: dict[str, Any], canon: str, value: Any) -> None:
    """Set ``canon`` unless the record already says it (under its canonical name or an alias)."""
    if value is None or value == "":
        return
    if out.get(canon) not in (None, ""):
        return
    if any(out.get(alias) not in (None, "") for alias in ALIASES.get(canon, ())):
        return
    out[canon] = value


def app_record(record: Mapping[str, Any], usage: Mapping[str, Any], drop: frozenset[str]) -> dict[str, Any]:
    """An app's own record carrying a provider's usage (nested under ``usage`` or copied flat):
    the app's fields as they are (canonical names and aliases), the tokens with the provider's meaning."""
    out = {k: v for k, v in record.items() if k not in drop}
    out.update(provider_usage(usage))
    if (service_tier := tier(record.get("service_tier"))) is not None:
        out["service_tier"] = service_tier
    return out
