"""Raw usage record -> normalised event (DESIGN.md, "The raw usage record").

This is the per-event hot path. Records from one file nearly always share one
set of keys, so the alias resolution (which key feeds which field) is worked out
once per distinct key set and cached as a :class:`_Plan`; each record then costs
a handful of dict lookups and conversions.

A record is rejected (:class:`RecordError`) only when it cannot be a usage
record; everything else is kept, flagged where something was missing.

Records in another tool's shape (``worker.ingest.formats``: LiteLLM, OpenTelemetry,
Langfuse, Helicone, OpenAI, Anthropic) are recognised in the same plan, once per key
set. A shape whose records are one call each (LiteLLM rows, Anthropic messages) gives
the plan its own :class:`~worker.ingest.formats.reading.Reading`, the alias table made
general: its keys are read straight into the event like aliases, and its ``derive``
adds what no single key holds (nested usage, sums, latency); ``normalise`` returns one
event. A shape that holds several calls (an OTLP line, a Langfuse page, a batch line)
is expanded into canonical records: ``normalise`` then returns a list of events
(possibly empty: what is not an LLM call is counted in ``skipped``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Mapping

import orjson

from worker.ingest.attempts import parse_attempt
from worker.ingest.fields import (INT4_MAX, INT4_MIN, STATUS_WORDS, RecordError, error_text, int_or_none,
                                  parse_cost, parse_latency, parse_metadata, parse_status, parse_timestamp,
                                  parse_tokens, text_or_none, type_name)
from worker.ingest.files import Loads
from worker.ingest.formats import Expand, otlp, shape
from worker.ingest.formats.reading import CANONICAL, Fields, Reading
from worker.ledger.event import WIDTHS, Attempt, Event
from worker.models.events import UNATTRIBUTED, UNKNOWN

# a value no longer than this fits any of the descriptive columns worked out in _resolve_dims
_WIDE = min(WIDTHS[k] for k in ("account_id", "tenant_id", "service", "provider", "model", "model_used"))
# Fields most records lack: read only when the key set has one of them (keeps the hot path as it was).
_OPTIONAL = frozenset({"cache_write_tokens", "cache_write_1h_tokens", "service_tier", "api_key", "project_id"})
_TIER_WIDTH, _KEY_WIDTH, _PROJECT_WIDTH = WIDTHS["service_tier"], WIDTHS["api_key"], WIDTHS["project_id"]
DIMS_CACHE_SIZE = 20_000  # distinct (account, tenant, service, provider, model, model used) remembered


class _Plan:
    """For one key set: the present keys that feed each canonical field, the extras, and (for another tool's
    shape) how the rest is derived or which expander makes canonical records of the record."""

    __slots__ = ("fields", "extras", "has_metadata", "direct", "typed", "expand", "optional", "derive")

    def __init__(self, record_keys: tuple[str, ...], reading: Reading = CANONICAL):
        self.fields = fields = Fields(record_keys, reading)  # which key feeds each field
        self.extras = fields.extras
        present = set(record_keys)
        self.has_metadata = reading.own_metadata and "metadata" in present
        self.typed = reading.own_metadata and "record_type" in present  # usage, or a call attempt (worker.attempts)
        self.derive = reading.derive  # another tool's shape: the fields no single key holds, and the metadata
        # the optional fields this key set feeds (a record's others keep the Event's defaults)
        self.optional = frozenset(c for c in fields.names if c in _OPTIONAL) | {
            c for c, _ in fields.multi if c in _OPTIONAL} | (reading.derived & _OPTIONAL)
        # Every field under its canonical name (the canonical log format): the record is read
        # as it is, null and "" being absent there too, without gathering the values first.
        self.direct = self.derive is None and not fields.multi and fields.names == fields.keys
        self.expand: Expand | None = None  # a shape holding many calls (OTLP, Langfuse pages): -> canonical records


class Normaliser:
    """``normalise(record)`` returns an :class:`Event`, or a call attempt (``worker.attempts.Attempt``)
    for a record with ``record_type = "attempt"`` or from a source of attempts."""

    def __init__(self, defaults: Mapping[str, str] | None = None, namespace: str = "",
                 record_type: str = "usage", fmt: str | None = None, latest: datetime | None = None):
        self.defaults = dict(defaults or {})
        self.namespace = namespace
        self.latest = latest  # a record dated after this is quarantined (now + ingest.max_future); None: no limit
        self.format = fmt  # None: recognise each key set's shape; a name: every record is in it
        self.skipped = 0  # records in an expanded one that are not LLM calls (OTel spans, Langfuse SPANs)
        self._canonical_plans: dict[tuple[str, ...], _Plan] = {}  # for the records a format produced
        if record_type == "attempt":
            self.normalise = self.attempt  # type: ignore[method-assign]  # every record is an attempt
        self._plans: dict[tuple[str, ...], _Plan] = {}
        # The descriptive fields of a record (account, tenant, service, provider, model, model
        # used) repeat from one record to the next: each distinct combination is worked out once.
        self._dims: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    @classmethod
    def for_source(cls, source: Any, latest: datetime | None = None) -> Normaliser:
        """The normaliser of a configured source (``SourceSettings``), or of none (the CLI); records
        dated after ``latest`` are refused."""
        if source is None:
            return cls(latest=latest)
        return cls(source.defaults, source.event_id_namespace, source.record_type, source.format, latest)

    def _plan(self, record: Mapping[str, Any]) -> _Plan:
        keys = tuple(record)
        plan = self._plans.get(keys)
        if plan is None:
            if len(self._plans) > 1000:  # unbounded key variety: keep memory bounded
                self._plans.clear()
            how = shape(keys, self.format)
            if isinstance(how, Reading):  # one call a record, read straight into its event
                plan = _Plan(keys, how)
            else:
                plan = _Plan(keys)
                plan.expand = how
            self._plans[keys] = plan
        return plan

    def _canonical_plan(self, record: Mapping[str, Any]) -> _Plan:
        keys = tuple(record)
        plan = self._canonical_plans.get(keys)
        if plan is None:
            if len(self._canonical_plans) > 1000:
                self._canonical_plans.clear()
            plan = self._canonical_plans[keys] = _Plan(keys)
        return plan

    def _expanded(self, record: Mapping[str, Any], expand: Expand) -> list[Event]:
        """A record in another tool's shape -> its events (each through the canonical path)."""
        try:
            records, skipped = expand(record)
        except RecordError:
            raise
        except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:
            raise RecordError(f"not a {expand.__module__.rpartition('.')[2]} record ({exc!r})") from None
        self.skipped += skipped
        return [self.normalise(r, self._canonical_plan(r)) for r in records]

    def _typed(self, line: otlp.OtlpLine) -> Event | list[Event]:
        """A typed OTLP line (``line_loads``): its spans' events, or the dict reading's where it alone can say."""
        try:
            records, skipped = otlp.expand(line)
        except otlp.Fallback:
            return self.normalise(line.record())
        self.skipped += skipped
        return [self.normalise(r, self._canonical_plan(r)) for r in records]

    def normalise(self, record: Any, plan: _Plan | None = None) -> Event | list[Event]:
        if plan is None:
            if type(record) is not dict:
                if record.__class__ is otlp.OtlpLine:
                    return self._typed(record)
                if not isinstance(record, dict):
                    raise RecordError(f"not a JSON object (got {type_name(record)})")
            plan = self._plan(record)
            if plan.expand is not None:
                return self._expanded(record, plan.expand)
        if plan.typed:
            kind = record["record_type"]
            if kind == "attempt":
                return self.attempt(record)  # type: ignore[return-value]
            if kind not in (None, "", "usage"):
                raise RecordError(f"unknown record_type {kind!r} (expected usage or attempt)")
        if plan.direct:  # below, every value read through get() treats "" as absent, like null
            get = record.get
        else:
            # where several keys are present the canonical, then aliases in order (null and "" absent)
            values = plan.fields.values(record)
            get = values.get
        metadata = parse_metadata(record["metadata"]) if plan.has_metadata else None
        if plan.derive is not None:  # another tool's shape: the nested and computed fields, the metadata it keeps
            kept = plan.derive(record, values)
            if kept:
                metadata = {**metadata, **kept} if metadata else kept
        if plan.extras:
            metadata = dict(metadata or {})
            for key in plan.extras:
                value = record[key]
                if value is not None and value != "":
                    metadata[key] = value

        raw_ts = get("occurred_at")
        if raw_ts is None or raw_ts == "":
            raise RecordError("no timestamp (occurred_at, timestamp, created_at, createdAt, ts or time)")
        occurred_at = parse_timestamp(raw_ts)
        if self.latest is not None and occurred_at > self.latest:
            raise RecordError(f"timestamp {occurred_at.isoformat()} is in the future (more than ingest.max_future"
                              f" ahead of now: after {self.latest.isoformat()})")

        prompt = parse_tokens(get("prompt_tokens"), "prompt_tokens")
        completion = parse_tokens(get("completion_tokens"), "completion_tokens")
        total = parse_tokens(get("total_tokens"), "total_tokens")
        cached = parse_tokens(get("cached_tokens"), "cached_tokens")
        reasoning = parse_tokens(get("reasoning_tokens"), "reasoning_tokens")
        cost = parse_cost(get("cost_usd"))
        if prompt is None and completion is None and total is None and cost is None:
            raise RecordError("no token counts and no cost")
        split_known = prompt is not None or completion is not None
        prompt = prompt or 0
        completion = completion or 0
        if total is None:
            total = prompt + completion

        raw_dims = (get("account_id"), get("tenant_id"), get("service"), get("provider"), get("model"),
                    get("model_used"))
        try:
            dims = self._dims.get(raw_dims)
        except TypeError:  # a list or an object among them
            dims = None
        if dims is None:
            dims = self._resolve_dims(raw_dims)
            # Only text is remembered: 1, 1.0 and True are equal keys but different text.
            if all(type(v) is str or v is None for v in raw_dims):
                if len(self._dims) >= DIMS_CACHE_SIZE:
                    self._dims.clear()
                self._dims[raw_dims] = dims
        account, tenant, service, provider, model, model_used, unattributed, model_defaulted, fits = dims
        if service is None:
            if metadata is not None:
                service = text_or_none(metadata.get("service"))
            service = service or self.defaults.get("service")
            if service is not None and len(service) > _WIDE:
                fits = False
        status_code = int_or_none(get("status_code"))
        status = get("status")
        if status == "":
            status = None
        status_word = (type(status) is str and STATUS_WORDS.get(status)) or parse_status(status, status_code)
        if status_code is not None and not INT4_MIN <= status_code <= INT4_MAX:
            status_code = None  # no HTTP status; the column is a 4-byte integer (the status word is kept)
        ev = Event(  # positional, in field order (the hot path)
            "",  # event_id, set below
            occurred_at,
            account,
            tenant,
            service,
            provider,
            model,
            model_used,
            status_word,
            status_code,
            prompt,
            completion,
            total,
            cached or 0,
            reasoning or 0,
            parse_latency(get("latency_ms")),
            cost,
            error_text(get("error_message")),
            metadata,
            unattributed,
            model_defaulted,
            split_known,  # token_split_known
        )
        if plan.optional:
            _optional_fields(ev, get, plan.optional)
            fits = fits and ((v := ev.service_tier) is None or len(v) <= _TIER_WIDTH) and (
                (v := ev.api_key) is None or len(v) <= _KEY_WIDTH) and (
                (v := ev.project_id) is None or len(v) <= _PROJECT_WIDTH)
        if not fits:
            _fit_widths(ev)
        raw_id = get("event_id")
        raw_id = text_or_none(raw_id) if not isinstance(raw_id, (dict, list)) else None
        if raw_id:
            ev.event_id = f"{self.namespace}:{raw_id}" if self.namespace else raw_id
        else:
            ev.event_id = content_id(ev, self._undefaulted(raw_dims, metadata))
        if len(ev.event_id) > WIDTHS["event_id"]:
            ev.event_id = "h:" + hashlib.sha256(ev.event_id.encode()).hexdigest()[:40]
        return ev

    def attempt(self, record: Any) -> Attempt:
        return parse_attempt(record, self.defaults, self.namespace)

    @staticmethod
    def _undefaulted(raw: tuple[Any, ...], metadata: dict[str, Any] | None) -> tuple[Any, ...]:
        """The record's own descriptive fields, as they resolve with no source defaults: an id-less
        record hashes the same whichever source (with whatever ``defaults``) reads it."""
        account, tenant, service, provider, model, model_used = (text_or_none(v) for v in raw)
        if service is None and metadata is not None:
            service = text_or_none(metadata.get("service"))
        model = model or UNKNOWN
        values = (account or UNATTRIBUTED, tenant, service, provider, model, model_used or model)
        names = ("account_id", "tenant_id", "service", "provider", "model", "model_used")
        return tuple(v[:WIDTHS[n]] if v is not None else None for v, n in zip(values, names))

    def _resolve_dims(self, raw: tuple[Any, ...]) -> tuple[Any, ...]:
        """account, tenant, service (None: see the metadata and defaults), provider, model, model used,
        unattributed, model defaulted, and whether they all fit their columns."""
        defaults = self.defaults
        account, tenant, service, provider, raw_model, model_used = (text_or_none(v) for v in raw)
        model = raw_model or defaults.get("model") or UNKNOWN
        values = (
            account or defaults.get("account_id") or UNATTRIBUTED,
            tenant or defaults.get("tenant_id"),
            service,
            provider or defaults.get("provider"),
            model,
            model_used or model,
        )
        fits = all(v is None or len(v) <= _WIDE for v in values)
        return (*values, account is None and "account_id" not in defaults, raw_model is None, fits)


def line_loads(source: Any) -> Loads:
    """How a source's JSON lines are read: OTLP lines typed (``worker.ingest.formats.otlp``) where its
    records may be OTLP spans (no ``format``, or ``otel``, and usage records), else ``orjson.loads``."""
    if source is None or (source.format in (None, "otel") and source.record_type == "usage"):
        return otlp.loads
    return orjson.loads


def _optional_fields(ev: Event, get: Any, present: frozenset[str]) -> None:
    """Cache writes, service tier, key and project (an absent or null one keeps the Event's default).
    Cache writes are parts of prompt_tokens: 1-hour writes <= writes <= prompt - cache reads. A record
    that says otherwise is kept and flagged in ``metadata.token_classes`` (pricing cuts the classes to
    fit the prompt)."""
    raw_write, raw_1h = get("cache_write_tokens"), get("cache_write_1h_tokens")
    if raw_write is not None or raw_1h is not None:
        write = parse_tokens(raw_write, "cache_write_tokens")
        write_1h = parse_tokens(raw_1h, "cache_write_1h_tokens")
        if write is None and write_1h is not None:
            write = write_1h  # 1-hour writes are cache writes
        ev.cache_write_tokens = write or 0
        ev.cache_write_1h_tokens = write_1h or 0
        if write_1h is not None and write_1h > ev.cache_write_tokens:
            _flag(ev, f"cache_write_1h_tokens {write_1h} > cache_write_tokens {ev.cache_write_tokens}")
        if ev.token_split_known and ev.cache_write_tokens > ev.prompt_tokens - ev.cached_tokens:
            _flag(ev, f"cache_write_tokens {ev.cache_write_tokens} > prompt_tokens {ev.prompt_tokens}"
                      f" - cached_tokens {ev.cached_tokens}")
    if "service_tier" in present and (value := get("service_tier")) is not None:
        ev.service_tier = _text(value)
    if "api_key" in present and (value := get("api_key")) is not None:
        ev.api_key = _text(value)
    if "project_id" in present and (value := get("project_id")) is not None:
        ev.project_id = _text(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return None if isinstance(value, (dict, list)) else text_or_none(value)


def _flag(ev: Event, problem: str) -> None:
    ev.metadata = dict(ev.metadata or {})
    ev.metadata["token_classes"] = f"inconsistent: {problem}"


def content_id(ev: Event, dims: tuple[Any, ...] | None = None) -> str:
    """Idempotency key for a record without an id: a hash of everything it says, in
    normalised form (so the same record as JSON or as a CSV row gets the same id).

    ``dims`` are account, tenant, service, provider, model and model used as the record
    itself gives them (``Normaliser._undefaulted``): a source's defaults are not what the
    record says, so they must not change its id (two sources, one record, one event)."""
    if dims is None:
        dims = (ev.account_id, ev.tenant_id, ev.service, ev.provider, ev.model, ev.model_used)
    parts = (ev.occurred_at.isoformat(), *dims, ev.status, ev.prompt_tokens, ev.completion_tokens,
             ev.total_tokens, ev.cached_tokens, ev.reasoning_tokens, ev.latency_ms,
             str(ev.cost_reported), ev.error_message)
    digest = hashlib.sha256(repr(parts).encode())
    extra = (ev.cache_write_tokens, ev.cache_write_1h_tokens, ev.service_tier, ev.api_key, ev.project_id)
    if extra != (0, 0, None, None, None):  # (only then: ids of records without them stay as they were)
        digest.update(repr(extra).encode())
    if ev.metadata:
        try:
            digest.update(orjson.dumps(ev.metadata, option=orjson.OPT_SORT_KEYS, default=str))
        except orjson.JSONEncodeError as exc:  # nested deeper than orjson writes (254 levels)
            raise RecordError(f"no event_id, and the content cannot be hashed for one ({exc})") from None
    return "h:" + digest.hexdigest()[:40]


def _fit_widths(ev: Event) -> None:
    for name, width in WIDTHS.items():
        value = getattr(ev, name)
        if value is not None and len(value) > width:
            ev.metadata = dict(ev.metadata or {})
            ev.metadata[f"{name}_full"] = value
            setattr(ev, name, value[:width])


