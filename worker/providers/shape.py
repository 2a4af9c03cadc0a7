"""Reading a provider's JSON: every missing or mistyped field is a permanent
:class:`ProviderError` that names the provider, the endpoint and the field.

Money is read into Decimal through ``str()``, so a JSON float such as ``0.06`` becomes
``Decimal("0.06")`` and not its binary approximation; strings are accepted too (some
responses carry amounts as decimal strings).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator

from worker.providers import ProviderError


class Shape:
    """Checked access to one endpoint's response, for error messages that say what was wrong."""

    def __init__(self, provider: str, where: str):
        self.provider = provider
        self.where = where  # e.g. "GET /v1/organization/costs"

    def unexpected(self, detail: str) -> ProviderError:
        return ProviderError(f"{self.provider}: unexpected response from {self.where}: {detail}",
                             permanent=True)

    def mapping(self, value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.unexpected(f"{what} is {_kind(value)}, not an object")
        return value

    def array(self, container: dict[str, Any], key: str, what: str = "") -> list[Any]:
        value = container.get(key)
        if not isinstance(value, list):
            raise self.unexpected(f"{_name(what, key)} is {_kind(value)}, not a list")
        return value

    def text(self, container: dict[str, Any], key: str, what: str = "") -> str:
        value = container.get(key)
        if not isinstance(value, str) or not value:
            raise self.unexpected(f"{_name(what, key)} is {_kind(value)}, not a non-empty string")
        return value

    def text_or_none(self, container: dict[str, Any], key: str, what: str = "") -> str | None:
        """A non-empty string, or None where the field is missing or null (never an error)."""
        if container.get(key) is None:
            return None
        return self.text(container, key, what)

    def count(self, container: dict[str, Any], key: str, what: str = "", *,
              default: int | None = None) -> int:
        """A non-negative integer; ``default`` (when given) stands for a missing or null field."""
        value = container.get(key)
        if value is None and default is not None:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.unexpected(f"{_name(what, key)} is {_kind(value)}, not a token/request count")
        return value

    def decimal(self, value: Any, what: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.unexpected(f"{what} is {_kind(value)}, not an amount")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise self.unexpected(f"{what} is not a number: {str(value)[:40]!r}") from None
        if not amount.is_finite():
            raise self.unexpected(f"{what} is not a finite number: {str(value)[:40]!r}")
        return amount

    def unix_day(self, container: dict[str, Any], key: str, what: str = "") -> date:
        """The UTC date of a Unix-seconds timestamp (OpenAI's bucket ``start_time``)."""
        value = container.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.unexpected(f"{_name(what, key)} is {_kind(value)}, not Unix seconds")
        return datetime.fromtimestamp(value, UTC).date()

    def rfc3339_day(self, container: dict[str, Any], key: str, what: str = "") -> date:
        """The UTC date of an RFC 3339 timestamp (Anthropic's bucket ``starting_at``)."""
        value = self.text(container, key, what)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.unexpected(f"{_name(what, key)} is not an RFC 3339 time: {value[:40]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).date()

    def iso_day(self, container: dict[str, Any], key: str, what: str = "") -> date:
        """A ``YYYY-MM-DD`` date (OpenRouter's ``date``; a time part after it is ignored)."""
        value = self.text(container, key, what)
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise self.unexpected(f"{_name(what, key)} is not a YYYY-MM-DD date: {value[:40]!r}") from None


    def buckets(self, page: dict[str, Any], first: date, last: date,
                day_of: Callable[[dict[str, Any]], date]) -> Iterator[tuple[date, dict[str, Any]]]:
        """(UTC day, bucket) for each bucket in the page's ``data`` inside first..last."""
        for bucket in self.array(page, "data"):
            bucket = self.mapping(bucket, "data[]")
            day = day_of(bucket)
            if first <= day <= last:
                yield day, bucket

    def results(self, page: dict[str, Any], first: date, last: date,
                day_of: Callable[[dict[str, Any]], date]) -> Iterator[tuple[date, dict[str, Any]]]:
        """(UTC day, result) for each result of those buckets."""
        for day, bucket in self.buckets(page, first, last, day_of):
            for result in self.array(bucket, "results", "data[]"):
                yield day, self.mapping(result, "results[]")


def _name(what: str, key: str) -> str:
    return f"{what}.{key}" if what else key


def _kind(value: Any) -> str:
    if value is None:
        return "missing or null"
    return f"a {type(value).__name__} ({str(value)[:40]!r})" if isinstance(value, (str, int, float)) \
        else f"a {type(value).__name__}"
