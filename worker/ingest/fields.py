"""The raw-value parsers every record shape uses, and :class:`RecordError`.

Each parser takes one value as a record gives it (JSON, a CSV cell, a database
column) and returns it typed, or raises :class:`RecordError` whose message is the
quarantine reason. Absent (None or "") is None; a value that cannot be what it
claims is an error, never a guess.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

STATUS_WORDS = {
    "success": "success", "ok": "success", "completed": "success", "succeeded": "success",
    "error": "error", "failure": "error", "failed": "error",
    "timeout": "timeout", "timed_out": "timeout", "timedout": "timeout",
}

EPOCH_MS_THRESHOLD = 100_000_000_000  # larger epoch numbers are milliseconds
MAX_TOKENS = 10**15  # no call has a quadrillion tokens; beyond this a count is garbage (and overflows BIGINT)
INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1  # status_code and latency_ms columns
MAX_COST = Decimal(10**9)  # USD for one call; NUMERIC(20,10) holds < 10^10
_MAX_COST_FLOAT = float(MAX_COST)

class IngestError(Exception):
    """A source cannot be read at all (missing file, unreachable table)."""


class RecordError(ValueError):
    """The record cannot be a usage record; the message is the quarantine reason."""


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
    if tz is UTC:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable UTC moment
        raise RecordError(f"timestamp out of range: {value!r}") from None


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


def parse_tokens(value: Any, name: str) -> int | None:
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


def parse_cost(value: Any) -> Decimal | None:
    if type(value) is float and 0 <= value < _MAX_COST_FLOAT:  # a JSON number (LiteLLM's spend), first
        return Decimal(repr(value))  # the number as JSON wrote it (repr: the shortest text that reads back)
    if type(value) is int and 0 <= value < MAX_COST:
        return Decimal(value)
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


def int_or_none(value: Any) -> int | None:
    if type(value) is int:
        return value
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def parse_latency(value: Any) -> int | None:
    number = int_or_none(value)
    if number is None or number < 0 or number > 2_000_000_000:
        return None
    return number


def parse_status(value: Any, status_code: int | None) -> str:
    if value is not None:
        word = str(value).strip().lower()
        if word in STATUS_WORDS:
            return STATUS_WORDS[word]
        code = int_or_none(value)
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


def text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = (value if type(value) is str else str(value)).strip()
    if "\x00" in text:
        text = no_nul(text)
    return text or None


def no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL; keep the rest of the value."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def error_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list)):
        try:
            return no_nul(orjson.dumps(value).decode())
        except orjson.JSONEncodeError as exc:  # nested deeper than orjson writes
            raise RecordError(f"error_message cannot be written as JSON ({exc})") from None
    return no_nul(str(value))


def parse_metadata(value: Any) -> dict[str, Any] | None:
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


def type_name(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def error_reason(exc: BaseException) -> str:
    """An unexpected exception as a one-line reason for quarantine: its type and message."""
    text = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:500]
