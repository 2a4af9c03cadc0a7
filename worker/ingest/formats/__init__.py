"""Record shapes: one module per shape a usage record can come in, and recognising them.

``FORMATS`` is the registry, name -> module. Every module but ``canonical`` has
``NAME``, ``detects(keys) -> bool`` (from a record's key set alone) and
``expand(record) -> (canonical records, skipped)``: one raw record becomes zero or
more records under the canonical names (an OTLP line holds many spans, a Langfuse
page many observations; what is not an LLM call is skipped, not rejected).

:func:`detect` recognises a shape from a key set. The normaliser asks once per
distinct key set and keeps the answer in its plan cache, so recognising costs
nothing on the hot path; canonical records (no shape detected) take the same path
as before. ``DETECTION_ORDER`` goes from the most specific key sets to the least.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Mapping

from worker.ingest.formats import anthropic, canonical, helicone, langfuse, litellm, openai, otel
from worker.ingest.formats.usage import app_record, fill, is_anthropic

Expand = Callable[[Mapping[str, Any]], tuple[list[dict[str, Any]], int]]

FORMATS: dict[str, ModuleType] = {
    "canonical": canonical, "litellm": litellm, "otel": otel, "langfuse": langfuse,
    "helicone": helicone, "openai": openai, "anthropic": anthropic,
}
DETECTION_ORDER = ("otel", "langfuse", "litellm", "helicone", "openai", "anthropic")


def nested_usage(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """An app's own record with a provider SDK's ``usage`` object nested under its fields; the
    provider is told by the usage's keys (Anthropic's cache fields), else OpenAI's meaning."""
    usage = record["usage"]
    if not isinstance(usage, dict):
        return [dict(record)], 0  # not a usage object: the record as it is (usage kept in metadata)
    out = app_record(record, usage, frozenset({"usage"}))
    if is_anthropic(usage):
        fill(out, "provider", "anthropic")
    return [out], 0


def detect(keys: tuple[str, ...] | frozenset[str]) -> Expand | None:
    """The expander for a record with these keys; None for a canonical (or alias) record."""
    present = frozenset(keys)
    for name in DETECTION_ORDER:
        module = FORMATS[name]
        if module.detects(present):
            return module.expand
    if "usage" in present:
        return nested_usage
    return None


def expander(name: str | None) -> Expand | None:
    """A source's ``format``: the named module's expander for every record (None: canonical)."""
    if name is None or name == "canonical":
        return None
    return FORMATS[name].expand
