"""The webhook channel: one signed JSON POST per message to the target URL.

Settings ``[channels.webhook]``: ``timeout_seconds`` (default 10) and ``header`` (the
signature header, default ``X-Tokentally-Signature``). The optional HMAC key comes only
from ``TOKENTALLY_CHANNELS_WEBHOOK_SECRET`` or ``TOKENTALLY_CHANNELS_WEBHOOK_SECRET_FILE``.

The request::

    POST <target>
    Content-Type: application/json
    X-Tokentally-Delivery: <message key>     same for every attempt at one message (percent-encoded)
    X-Tokentally-Timestamp: <unix seconds>   when this attempt was signed
    X-Tokentally-Signature: sha256=<hex>     only when a secret is configured

    {"kind": ..., "key": ..., "subject": ..., "text": ..., "data": {...}}

Header values are ASCII: the delivery id is the message key with every byte outside printable
ASCII, and ``%`` itself, percent-encoded as UTF-8 (RFC 3986, as RFC 8187 does for parameters),
so a tenant ``東京`` arrives as ``report-daily-2026-11-30-%E6%9D%B1%E4%BA%AC-v1`` and a key of
plain ASCII (no ``%``, no space) as it is.

To verify, a receiver takes the raw body bytes as received (before any JSON parsing)
and compares, in constant time, the header with::

    "sha256=" + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()

where ``timestamp`` is the ``X-Tokentally-Timestamp`` header; it should also reject
timestamps more than 5 minutes from its own clock (the replay window: the signature covers the
timestamp) and drop a delivery id it has already processed within that window plus the retry
span (a retry after a lost response sends the same key again, newly timestamped). README.md,
"Receiving webhooks", says the same for receivers; without a secret nothing is signed and
every start logs a warning (``worker.settings.warnings``). Decimals and other
non-JSON values in ``data`` are sent as strings, datetimes as RFC 3339.

Outcome: 2xx is delivered (``send`` returns the status as a string). 408, 429 (with its
Retry-After), 5xx, connection errors and timeouts are temporary; other statuses,
including redirects (not followed: a redirected POST would arrive as a GET), are
permanent. One attempt per send; the outbox retries.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Mapping
from urllib.parse import quote, urlsplit

import orjson
import requests

from worker import clock
from worker.http import connection_reason
from worker.settings.channels import WEBHOOK_SIGNATURE_HEADER as DEFAULT_HEADER, WebhookSettings

from reports.channels import ChannelError
from reports.messages import Message

DELIVERY_HEADER = "X-Tokentally-Delivery"
TIMESTAMP_HEADER = "X-Tokentally-Timestamp"
USER_AGENT = "tokentally-webhook/1"
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7f) if chr(c) != "%")


class WebhookChannel:
    kind = "webhook"

    def __init__(self, *, secret: str | None = None, timeout_seconds: int = 10,
                 header: str = DEFAULT_HEADER):
        self._secret = secret.encode() if secret else None
        self.timeout_seconds = timeout_seconds
        self.header = header
        self._session = requests.Session()

    @classmethod
    def from_settings(cls, s: WebhookSettings) -> WebhookChannel:
        return cls(secret=s.secret, timeout_seconds=s.timeout_seconds, header=s.header)

    def __repr__(self) -> str:
        signed = "signed" if self._secret else "unsigned"
        return f"WebhookChannel({signed}, header={self.header!r}, timeout_seconds={self.timeout_seconds})"

    def close(self) -> None:
        self._session.close()

    def send(self, target: str, message: Message) -> str:
        """POST ``message`` to the URL ``target`` once; return the HTTP status as a string."""
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ChannelError(f"webhook: target is not an http(s) URL (scheme {parts.scheme!r})",
                               permanent=True)
        # Name the endpoint by origin only: paths and queries often hold a token.
        where = f"webhook to {parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        try:
            body = encode_body(message)
        except TypeError as exc:  # orjson.JSONEncodeError: data that cannot become JSON
            raise ChannelError(f"{where}: cannot encode message data: {exc}", permanent=True) from None
        timestamp = str(int(clock.now().timestamp()))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   DELIVERY_HEADER: header_value(message.key), TIMESTAMP_HEADER: timestamp}
        if self._secret is not None:
            headers[self.header] = sign(self._secret, timestamp, body)
        try:
            response = self._session.post(target, data=body, headers=headers,
                                          timeout=self.timeout_seconds, allow_redirects=False)
        except requests.Timeout:
            raise ChannelError(f"{where}: timed out after {self.timeout_seconds}s") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader):
            raise ChannelError(f"{where}: invalid request", permanent=True) from None
        except requests.ConnectionError as exc:
            raise ChannelError(f"{where}: cannot connect ({connection_reason(exc)})") from None
        except requests.RequestException as exc:  # broken chunked responses and the like
            raise ChannelError(f"{where}: {type(exc).__name__}") from None
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return str(status)
        if status == 429:
            raise ChannelError(f"{where}: HTTP 429", retry_after=_retry_after(response.headers))
        temporary = status == 408 or status >= 500
        raise ChannelError(f"{where}: HTTP {status}", permanent=not temporary)


def encode_body(message: Message) -> bytes:
    """The JSON body; Decimals (and anything else orjson does not know) become strings."""
    return orjson.dumps({"kind": message.kind, "key": message.key, "subject": message.subject,
                         "text": message.text, "data": message.data},
                        default=str, option=orjson.OPT_NON_STR_KEYS)


def header_value(text: str) -> str:
    """``text`` as an HTTP header value: printable ASCII kept, every other byte (and ``%``) as ``%XX``."""
    return quote(text, safe=_HEADER_SAFE)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 over ``b"<timestamp>." + body``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        seconds = float(headers.get("Retry-After", ""))
    except ValueError:  # absent, or an HTTP date
        return None
    return seconds if seconds >= 0 else None
