"""Record shapes: one module per shape a usage record can come in, and recognising them.

``FORMATS`` is the registry, name -> module. Every module but ``canonical`` has
``NAME``, ``detects(keys) -> bool`` (from a record's key set alone), ``plan(keys)`` and
``expand(record) -> (canonical records, skipped)``. ``plan`` says how records with those
keys are read: a :class:`~worker.ingest.formats.reading.Reading` where each record is one
call (read straight into its event, like an alias record), or the module's ``expand``
where one raw record holds zero or more calls (an OTLP line holds many spans, a Langfuse
page many observations; what is not an LLM call is skipped, not rejected).

:func:`shape` recognises a shape from a key set (or takes the source's ``format``). The
normaliser asks once per distinct key set and keeps the answer in its plan cache, so
recognising costs nothing on the hot path; canonical records (no shape detected) take
the same path as before. ``DETECTION_ORDER`` goes from the most specific key sets to the least.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Mapping

from worker.ingest.formats import anthropic, canonical, helicone, langfuse, litellm, openai, otel
from worker.ingest.formats.reading import Reading
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


def detect(keys: tuple[str, ...] | frozenset[str]) -> Reading | Expand | None:
    """How a record with these keys is read (its shape's ``plan``); None for a canonical (or alias) record."""
    present = frozenset(keys)
    for name in DETECTION_ORDER:
        module = FORMATS[name]
        if module.detects(present):
            return module.plan(present)
    if "usage" in present:
        return nested_usage
    return None


def shape(keys: tuple[str, ...], fmt: str | None) -> Reading | Expand | None:
    """How records with these keys are read: recognised (``fmt`` None) or in the source's ``format``."""
    if fmt is None:
        return detect(keys)
    if fmt == "canonical":
        return None
    return FORMATS[fmt].plan(frozenset(keys))
