"""Raw usage record -> normalised event (DESIGN.md, "The raw usage record").

This is the per-event hot path. Records from one file nearly always share one
set of keys, so the alias resolution (which key feeds which field) is worked out
once per distinct key set and cached as a :class:`_Plan`; each record then costs
a handful of dict lookups and conversions.

A record is rejected (:class:`RecordError`) only when it cannot be a usage
record; everything else is kept, flagged where something was missing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

import orjson

from worker.models.events import UNATTRIBUTED, UNKNOWN

# canonical name -> aliases, in the order they win (DESIGN.md).
ALIASES: dict[str, tuple[str, ...]] = {
    "event_id": ("request_id", "id", "requestId"),
    "occurred_at": ("timestamp", "created_at", "createdAt", "ts", "time"),
    "account_id": ("user_id", "userId", "user"),
    "tenant_id": ("tenantId", "org_id", "organization_id"),
    "service": ("operation_type", "operationType", "purpose", "use_case", "useCase"),
    "provider": ("custom_llm_provider",),
    "model": ("modelId", "model_requested", "model_name"),
    "model_used": ("model_actually_used",),
    "status": (),
    "status_code": (),
    "prompt_tokens": ("input_tokens", "inputTokens", "promptTokens"),
    "completion_tokens": ("output_tokens", "outputTokens", "completionTokens"),
    "total_tokens": ("tokens_used", "tokensUsed", "totalTokens"),
    "cached_tokens": ("cache_read_tokens",),
    "reasoning_tokens": (),
    "latency_ms": ("duration_ms", "response_time_ms", "latencyMs"),
    "cost_usd": ("total_cost_usd", "cost"),
    "error_message": ("errorMessage", "error"),
}
KNOWN_KEYS = frozenset(k for canon, al in ALIASES.items() for k in (canon, *al)) | {"metadata", "record_type"}

STATUS_WORDS = {
    "success": "success", "ok": "success", "completed": "success", "succeeded": "success",
    "error": "error", "failure": "error", "failed": "error",
    "timeout": "timeout", "timed_out": "timeout", "timedout": "timeout",
}

# Column widths (models/ledger.py); longer values are cut and kept whole in metadata.
WIDTHS = {"event_id": 200, "account_id": 200, "tenant_id": 200, "service": 200,
          "provider": 100, "model": 200, "model_used": 200}

EPOCH_MS_THRESHOLD = 100_000_000_000  # larger epoch numbers are milliseconds
MAX_TOKENS = 10**15  # no call has a quadrillion tokens; beyond this a count is garbage (and overflows BIGINT)
INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1  # status_code and latency_ms columns
MAX_COST = Decimal(10**9)  # USD for one call; NUMERIC(20,10) holds < 10^10
_WIDE = min(WIDTHS.values())  # a value no longer than this fits any column
DIMS_CACHE_SIZE = 20_000  # distinct (account, tenant, service, provider, model, model used) remembered


class RecordError(ValueError):
    """The record cannot be a usage record; the message is the quarantine reason."""


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


class _Plan:
    """For one key set: the present keys that feed each canonical field, and the extras."""

    __slots__ = ("single", "multi", "extras", "has_metadata", "direct", "typed")

    def __init__(self, record_keys: tuple[str, ...]):
        present = set(record_keys)
        single, multi = [], []
        for canon, aliases in ALIASES.items():
            keys = tuple(k for k in (canon, *aliases) if k in present)
            if len(keys) == 1:
                single.append((canon, keys[0]))
            elif keys:
                multi.append((canon, keys))
        self.single = tuple(single)  # the usual case: one key feeds the field
        self.multi = tuple(multi)  # several present: the first non-empty wins
        self.extras = tuple(k for k in record_keys if k not in KNOWN_KEYS)
        self.has_metadata = "metadata" in present
        self.typed = "record_type" in present  # usage, or a call attempt (worker.attempts)
        # Every field under its canonical name (the canonical log format): the record is read
        # as it is, null and "" being absent there too, without gathering the values first.
        self.direct = not multi and all(canon == key for canon, key in single)


class Normaliser:
    """``normalise(record)`` returns an :class:`Event`, or a call attempt (``worker.attempts.Attempt``)
    for a record with ``record_type = "attempt"`` or from a source of attempts."""

    def __init__(self, defaults: Mapping[str, str] | None = None, namespace: str = "",
                 record_type: str = "usage"):
        self.defaults = dict(defaults or {})
        self.namespace = namespace
        if record_type == "attempt":
            self.normalise = self.attempt  # type: ignore[method-assign]  # every record is an attempt
        self._plans: dict[tuple[str, ...], _Plan] = {}
        # The descriptive fields of a record (account, tenant, service, provider, model, model
        # used) repeat from one record to the next: each distinct combination is worked out once.
        self._dims: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    @classmethod
    def for_source(cls, source: Any) -> Normaliser:
        """The normaliser of a configured source (``SourceSettings``), or of none (the CLI)."""
        if source is None:
            return cls()
        return cls(source.defaults, source.event_id_namespace, source.record_type)

    def _plan(self, record: Mapping[str, Any]) -> _Plan:
        keys = tuple(record)
        plan = self._plans.get(keys)
        if plan is None:
            if len(self._plans) > 1000:  # unbounded key variety: keep memory bounded
                self._plans.clear()
            plan = self._plans[keys] = _Plan(keys)
        return plan

    def normalise(self, record: Any) -> Event:
        if type(record) is not dict:
            if not isinstance(record, dict):
                raise RecordError(f"not a JSON object (got {_type_name(record)})")
        plan = self._plan(record)
        if plan.typed:
            kind = record["record_type"]
            if kind == "attempt":
                return self.attempt(record)  # type: ignore[return-value]
            if kind not in (None, "", "usage"):
                raise RecordError(f"unknown record_type {kind!r} (expected usage or attempt)")
        if plan.direct:  # below, every value read through get() treats "" as absent, like null
            get = record.get
        else:
            # null and "" are absent; where several keys are present the canonical, then aliases in order
            values = {name: v for name, key in plan.single if (v := record[key]) is not None and v != ""}
            for name, keys in plan.multi:
                for key in keys:
                    value = record[key]
                    if value is not None and value != "":
                        values[name] = value
                        break
            get = values.get

        metadata = _metadata(record["metadata"]) if plan.has_metadata else None
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

        prompt = _tokens(get("prompt_tokens"), "prompt_tokens")
        completion = _tokens(get("completion_tokens"), "completion_tokens")
        total = _tokens(get("total_tokens"), "total_tokens")
        cached = _tokens(get("cached_tokens"), "cached_tokens")
        reasoning = _tokens(get("reasoning_tokens"), "reasoning_tokens")
        cost = _cost(get("cost_usd"))
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
                service = _text(metadata.get("service"))
            service = service or self.defaults.get("service")
            if service is not None and len(service) > _WIDE:
                fits = False
        status_code = _int_or_none(get("status_code"))
        status = get("status")
        if status == "":
            status = None
        status_word = (type(status) is str and STATUS_WORDS.get(status)) or _status(status, status_code)
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
            _latency(get("latency_ms")),
            cost,
            _error(get("error_message")),
            metadata,
            unattributed,
            model_defaulted,
            split_known,  # token_split_known
        )
        if not fits:
            _fit_widths(ev)
        raw_id = get("event_id")
        raw_id = _text(raw_id) if not isinstance(raw_id, (dict, list)) else None
        if raw_id:
            ev.event_id = f"{self.namespace}:{raw_id}" if self.namespace else raw_id
        else:
            ev.event_id = content_id(ev)
        if len(ev.event_id) > WIDTHS["event_id"]:
            ev.event_id = "h:" + hashlib.sha256(ev.event_id.encode()).hexdigest()[:40]
        return ev

    def attempt(self, record: Any) -> Any:
        from worker.integrity.attempts import parse_attempt

        return parse_attempt(record, self.defaults, self.namespace)

    def _resolve_dims(self, raw: tuple[Any, ...]) -> tuple[Any, ...]:
        """account, tenant, service (None: see the metadata and defaults), provider, model, model used,
        unattributed, model defaulted, and whether they all fit their columns."""
        defaults = self.defaults
        account, tenant, service, provider, raw_model, model_used = (_text(v) for v in raw)
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


def content_id(ev: Event) -> str:
    """Idempotency key for a record without an id: a hash of everything it says, in
    normalised form (so the same record as JSON or as a CSV row gets the same id)."""
    parts = (ev.occurred_at.isoformat(), ev.account_id, ev.tenant_id, ev.service, ev.provider,
             ev.model, ev.model_used, ev.status, ev.prompt_tokens, ev.completion_tokens,
             ev.total_tokens, ev.cached_tokens, ev.reasoning_tokens, ev.latency_ms,
             str(ev.cost_reported), ev.error_message)
    digest = hashlib.sha256(repr(parts).encode())
    if ev.metadata:
        digest.update(orjson.dumps(ev.metadata, option=orjson.OPT_SORT_KEYS, default=str))
    return "h:" + digest.hexdigest()[:40]


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 (offset, Z or naive = UTC), PostgreSQL text, epoch seconds or milliseconds."""
    if isinstance(value, str):  # the common case, first
        text = value.strip()
        if len(text) >= 10 and text[4] == "-":  # ISO 8601 / PostgreSQL text
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise RecordError(f"unparseable timestamp {value!r}") from None
        elif text.isascii() and (text.isdigit() or _is_number(text)):
            moment = _from_epoch(float(text), value)
        else:
            raise RecordError(f"unparseable timestamp {value!r}")
    elif isinstance(value, datetime):
        moment = value
    elif isinstance(value, bool):
        raise RecordError(f"unparseable timestamp {value!r}")
    elif isinstance(value, (int, float, Decimal)):
        moment = _from_epoch(float(value), value)
    else:
        raise RecordError(f"unparseable timestamp {value!r}")
    tz = moment.tzinfo
    if tz is None:
        return moment.replace(tzinfo=UTC)
    return moment if tz is UTC else moment.astimezone(UTC)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _from_epoch(number: float, raw: Any) -> datetime:
    if number != number or number < 0:
        raise RecordError(f"unparseable timestamp {raw!r}")
    if number >= EPOCH_MS_THRESHOLD:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        raise RecordError(f"unparseable timestamp {raw!r}") from None


def _tokens(value: Any, name: str) -> int | None:
    if type(value) is int and 0 <= value < MAX_TOKENS:  # the common case, first
        return value
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"{name} is not a number: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.strip().isdigit():
        number = int(value)
    else:
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise RecordError(f"{name} is not a number: {value!r}") from None
        if as_float != as_float or as_float in (float("inf"), float("-inf")) or not as_float.is_integer():
            raise RecordError(f"{name} is not a whole number: {value!r}")
        number = int(as_float)
    if number < 0:
        raise RecordError(f"{name} is negative: {value!r}")
    if number >= MAX_TOKENS:
        raise RecordError(f"{name} is implausibly large: {value!r}")
    return number


def _cost(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise RecordError(f"cost_usd is not a number: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RecordError(f"cost_usd is not a number: {value!r}") from None
    if not amount.is_finite():
        raise RecordError(f"cost_usd is not a number: {value!r}")
    if amount < 0:
        raise RecordError(f"cost_usd is negative: {value!r}")
    if amount >= MAX_COST:
        raise RecordError(f"cost_usd is implausibly large: {value!r}")
    return amount


def _int_or_none(value: Any) -> int | None:
    if type(value) is int:
        return value
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def _latency(value: Any) -> int | None:
    number = _int_or_none(value)
    if number is None or number < 0 or number > 2_000_000_000:
        return None
    return number


def _status(value: Any, status_code: int | None) -> str:
    if value is not None:
        word = str(value).strip().lower()
        if word in STATUS_WORDS:
            return STATUS_WORDS[word]
        code = _int_or_none(value)
        if code is not None:  # a numeric status is an HTTP code
            status_code = code
        else:
            return "error"
    if status_code is None:
        return "success"
    if 200 <= status_code < 300:
        return "success"
    if status_code in (408, 504):
        return "timeout"
    return "error"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = (value if type(value) is str else str(value)).strip()
    if "\x00" in text:
        text = _no_nul(text)
    return text or None


def _no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL; keep the rest of the value."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _error(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list)):
        return _no_nul(orjson.dumps(value).decode())
    return _no_nul(str(value))


def _metadata(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return value
    if isinstance(value, (str, bytes)):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {"raw": value if isinstance(value, str) else value.decode("utf-8", "replace")}
        return parsed if isinstance(parsed, dict) else {"value": parsed}
    return {"value": value}


def _fit_widths(ev: Event) -> None:
    for name, width in WIDTHS.items():
        value = getattr(ev, name)
        if value is not None and len(value) > width:
            ev.metadata = dict(ev.metadata or {})
            ev.metadata[f"{name}_full"] = value
            setattr(ev, name, value[:width])


def _type_name(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)
