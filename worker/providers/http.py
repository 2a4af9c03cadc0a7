"""One GET-JSON helper for the providers' admin APIs: session, retries, error mapping.

Outcome of one GET:

* 2xx with a JSON object body: returned. Any other body is a permanent
  ``unexpected response`` error.
* 408, 429, 5xx, connection errors and timeouts: retried up to ``max_retries`` times,
  waiting the server's ``Retry-After`` (seconds or an HTTP date, capped at 300 s) or
  ``backoff * 2**n`` (capped at 60 s); when retries run out, a ProviderError that is
  *not* permanent, naming the status and the number of attempts.
* 401 / 403: permanent, "the admin key was refused", with the provider's own message.
* 3xx: permanent; redirects are not followed, so the key is never sent to another host.
* Other 4xx: permanent, with the provider's own message (``{"error": {"message": ...}}``
  for OpenAI, Anthropic and OpenRouter alike), cut to about 300 characters.

The key travels only in the session's headers. Messages name the endpoint by path,
never quote requests' own exception text (it can hold header values), and have the key
replaced by ``[redacted]`` should a provider echo it back.

Waits go through the module-level :func:`sleep`, so a test keeps them tiny with a small
``backoff`` rather than by patching time.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from datetime import UTC
from typing import Any, Iterator, Mapping, NamedTuple, Sequence
from urllib.parse import urlsplit

import orjson
import requests

from worker import clock
from worker.http import connection_reason

from worker.providers import ProviderConfig, ProviderError
from worker.providers.shape import Shape

logger = logging.getLogger(__name__)

USER_AGENT = "tokentally-reconcile/1"
MAX_PAGES = 1000  # a cursor that never ends is a provider bug; stop rather than loop forever
BACKOFF_CAP = 60.0
RETRY_AFTER_CAP = 300.0
MESSAGE_LIMIT = 300

Params = Sequence[tuple[str, str]]  # pairs, so list parameters can repeat their key


class _Temporary(NamedTuple):
    """A failed attempt worth retrying."""

    problem: str  # for the message: "HTTP 503", "cannot connect to ... (Connection refused)"
    status: int | None
    retry_after: float | None = None


def sleep(seconds: float) -> None:
    """The one place a retry waits."""
    time.sleep(seconds)


def key_variable(provider: str) -> str:
    """The environment variable that holds ``provider``'s admin key, for messages."""
    return f"TOKENTALLY_RECONCILE_{provider.upper()}_API_KEY"


class Client:
    """GETs JSON from one provider with its auth headers; counts every HTTP request made."""

    def __init__(self, config: ProviderConfig, headers: Mapping[str, str]):
        self.config = config
        self.name = config.name
        self.requests_made = 0
        self._base = config.base_url.rstrip("/")
        parts = urlsplit(self._base)
        self._origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json", **headers})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._session.close()

    def get_json(self, path: str, params: Params = ()) -> dict[str, Any]:
        """GET ``base_url + path`` with retries; the decoded JSON object, or ProviderError."""
        attempts = max(0, self.config.max_retries) + 1
        for attempt in range(1, attempts + 1):
            outcome = self._attempt(path, params)
            if not isinstance(outcome, _Temporary):
                return outcome
            if attempt == attempts:
                raise ProviderError(f"{self.name}: GET {path} failed: {outcome.problem}; gave up after "
                                    f"{attempts} attempt{'s' if attempts > 1 else ''}",
                                    permanent=False, status=outcome.status)
            wait = retry_delay(self.config, attempt - 1, outcome.retry_after)
            logger.warning("provider request retried", extra={
                "action": "provider_request_retried", "provider": self.name, "path": path,
                "problem": outcome.problem, "status": outcome.status, "attempt": attempt,
                "wait_seconds": wait})
            sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    def pages(self, path: str, params: Params = ()) -> Iterator[dict[str, Any]]:
        """Every page of a cursor-paginated endpoint (``has_more`` / ``next_page`` / ``page``),
        as OpenAI's and Anthropic's admin APIs both paginate."""
        shape = Shape(self.name, f"GET {path}")
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = self.get_json(path, [*params, ("page", cursor)] if cursor else params)
            yield page
            has_more = page.get("has_more")
            if not isinstance(has_more, bool):
                raise shape.unexpected(f"has_more is {has_more!r}, not true or false")
            if not has_more:
                return
            cursor = page.get("next_page")
            if not isinstance(cursor, str) or not cursor:
                raise shape.unexpected("has_more is true but next_page is empty")
        raise ProviderError(f"{self.name}: GET {path} still had more pages after {MAX_PAGES}; "
                            f"stopped (a provider-side pagination fault?)", permanent=True)

    def _attempt(self, path: str, params: Params) -> dict[str, Any] | _Temporary:
        """One request: the decoded body, a temporary failure, or ProviderError (permanent)."""
        self.requests_made += 1
        try:
            response = self._session.get(self._base + path, params=list(params),
                                         timeout=self.config.timeout, allow_redirects=False)
        except requests.Timeout:
            return _Temporary(f"no answer within {self.config.timeout:g} s", None)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader):
            raise ProviderError(f"{self.name}: cannot send the request ({self._origin}); check the "
                                f"base URL and that {key_variable(self.name)} is one line",
                                permanent=True) from None
        except requests.ConnectionError as exc:
            return _Temporary(f"cannot connect to {self._origin} ({connection_reason(exc)})", None)
        except requests.RequestException as exc:  # broken chunked bodies and the like
            return _Temporary(f"{type(exc).__name__} from {self._origin}", None)
        with response:
            status = response.status_code
            if 200 <= status < 300:
                return self._decode(path, response)
            if status in (408, 429) or status >= 500:
                return _Temporary(f"HTTP {status}", status,
                                  parse_retry_after(response.headers.get("Retry-After")))
            raise self._refused(path, response)

    def _decode(self, path: str, response: requests.Response) -> dict[str, Any]:
        shape = Shape(self.name, f"GET {path}")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            kind = response.headers.get("Content-Type", "no content type")
            raise shape.unexpected(f"HTTP {response.status_code} body is not JSON ({kind}): "
                                   f"{self._snippet(response.text, 120)!r}") from None
        return shape.mapping(body, "the body")

    def _refused(self, path: str, response: requests.Response) -> ProviderError:
        status = response.status_code
        if status in (401, 403):
            return ProviderError(f"{self.name}: the admin key was refused (HTTP {status}): "
                                 f"{self._message(response)}; check {key_variable(self.name)}",
                                 permanent=True, status=status)
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("Location", "")).netloc.rpartition("@")[2]
            return ProviderError(f"{self.name}: GET {path} was redirected (HTTP {status}"
                                 f"{' to ' + target if target else ''}); redirects are not followed, "
                                 f"check the base URL {self._origin}", permanent=True, status=status)
        return ProviderError(f"{self.name}: GET {path} was rejected (HTTP {status}): "
                             f"{self._message(response)}", permanent=True, status=status)

    def _message(self, response: requests.Response) -> str:
        """The provider's own error message, else the start of the body."""
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        message: Any = None
        if isinstance(body, dict):
            error = body.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            if not isinstance(message, str):
                message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            message = response.text.strip() or "no error message"
        return self._snippet(message, MESSAGE_LIMIT)

    def _snippet(self, text: str, limit: int) -> str:
        text = " ".join(text.split())
        if self.config.api_key:
            text = text.replace(self.config.api_key, "[redacted]")
        return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_delay(config: ProviderConfig, retry: int, retry_after: float | None) -> float:
    """Seconds before retry number ``retry`` (0 for the first)."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_CAP)
    return min(config.backoff * 2 ** retry, BACKOFF_CAP)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds or an HTTP date; None if absent or bad."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - clock.now()).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
