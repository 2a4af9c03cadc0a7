"""The Slack channel: a bot token posting with ``chat.postMessage``, or an incoming webhook.

Settings ``[channels.slack]``: ``base_url`` (default ``https://slack.com/api/``; tests
point it at a local server) and ``timeout_seconds`` (default 30). The secrets come only
from the environment: ``TOKENTALLY_CHANNELS_SLACK_TOKEN`` (a bot token with
``chat:write``) and/or ``TOKENTALLY_CHANNELS_SLACK_WEBHOOK_URL`` (an incoming-webhook
URL is a credential too), or their ``*_FILE`` variants. At least one is required.

Targets: with a token, the target is a channel id or name (``C0123``, ``#alerts``) and
``send`` returns the message ``ts``; the target ``"webhook"`` goes to the incoming
webhook when one is configured. Without a token only ``"webhook"`` (or ``""``) is a
valid target, because an incoming webhook posts to the one channel it was made for;
``send`` then returns ``"webhook:<status>"``.

No redirect is followed: a 3xx from the Web API or the webhook would re-send the bot token
(or the payload) to another origin, so both clients open their requests with
``worker.http.NO_REDIRECTS`` and a 3xx is a permanent error (the webhook and provider clients
refuse redirects the same way).

One attempt per send: the SDK's retry handlers are switched off (its default retries
connection errors) and the outbox decides when to try again. Errors never carry the
token or the webhook URL. The SDK gets its own logger (``reports.channels.slack.sdk``)
held at INFO: at DEBUG the webhook client logs its URL (the Web API client does redact
the Authorization header). It still logs an ERROR line for each connection failure.
"""

from __future__ import annotations

import http.client
import logging
import re
from typing import Any, Mapping

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from slack_sdk.webhook import WebhookClient, WebhookResponse

from worker.http import NO_REDIRECTS

from worker.settings.channels import SlackSettings

from reports.channels import ChannelError
from reports.messages import Message

# Web API errors that no retry can fix: the token, the channel or the payload is wrong.
PERMANENT_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "channel_not_found",
    "is_archived", "not_in_channel", "no_permission", "missing_scope", "invalid_blocks",
    "msg_too_long",
})
WEBHOOK_TARGET = "webhook"
# Only short, code-like words from the far end go into error messages.
_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

_sdk_logger = logging.getLogger("reports.channels.slack.sdk")
_sdk_logger.setLevel(logging.INFO)  # never DEBUG: WebhookClient would log its URL


class _WebClient(WebClient):
    """The SDK's Web API client, its one urllib call made through :data:`NO_REDIRECTS`
    (the SDK gives no other way in: it calls ``urlopen`` itself). No proxy support, as before."""

    def _perform_urllib_http_request_internal(self, url: str, req: Any) -> dict[str, Any]:
        if not url.lower().startswith("http"):
            raise SlackRequestError("slack: not an http(s) URL")
        with NO_REDIRECTS.open(req, timeout=self.timeout) as resp:
            body = resp.read().decode(resp.headers.get_content_charset() or "utf-8")
            return {"status": resp.code, "headers": resp.headers, "body": body}


class _WebhookClient(WebhookClient):
    """The SDK's incoming-webhook client, through :data:`NO_REDIRECTS` too."""

    def _perform_http_request_internal(self, url: str, req: Any) -> WebhookResponse:
        if not url.lower().startswith("http"):
            raise SlackRequestError("slack: not an http(s) URL")
        with NO_REDIRECTS.open(req, timeout=self.timeout) as resp:
            body = resp.read().decode(resp.headers.get_content_charset() or "utf-8")
            return WebhookResponse(url=url, status_code=resp.status, body=body, headers=resp.headers)


class SlackChannel:
    kind = "slack"

    def __init__(self, *, token: str | None = None, webhook_url: str | None = None,
                 base_url: str = "https://slack.com/api/", timeout_seconds: int = 30):
        if not token and not webhook_url:
            raise ValueError("SlackChannel needs a token or a webhook_url")
        self.base_url = base_url
        self.timeout_seconds = timeout_seconds
        self._client = _WebClient(token=token, base_url=base_url, timeout=timeout_seconds,
                                 logger=_sdk_logger, retry_handlers=[]) if token else None
        self._webhook = _WebhookClient(webhook_url, timeout=timeout_seconds, logger=_sdk_logger,
                                      retry_handlers=[]) if webhook_url else None

    @classmethod
    def from_settings(cls, s: SlackSettings) -> SlackChannel:
        return cls(token=s.token, webhook_url=s.webhook_url, base_url=s.base_url, timeout_seconds=s.timeout_seconds)

    def __repr__(self) -> str:
        modes = [m for m, on in (("token", self._client), ("webhook", self._webhook)) if on]
        return f"SlackChannel({'+'.join(modes)}, base_url={self.base_url!r})"

    def send(self, target: str, message: Message) -> str:
        """Post ``message`` once; return its ``ts`` (Web API) or ``"webhook:<status>"``."""
        payload = message.slack or {}
        # The SDK warns when text is empty; the text is the notification and screen-reader fallback.
        text = payload.get("text") or message.text or message.subject
        blocks = payload.get("blocks")
        if target in (WEBHOOK_TARGET, "") and self._webhook is not None:
            return self._send_webhook(text, blocks)
        if self._client is None:
            raise ChannelError(f"slack: target {target!r} needs channels.slack.token; "
                               f"only the target {WEBHOOK_TARGET!r} can use the incoming webhook",
                               permanent=True)
        if not target:
            raise ChannelError("slack: no channel given", permanent=True)
        return self._post_message(target, text, blocks)

    def _post_message(self, target: str, text: str, blocks: list[dict[str, Any]] | None) -> str:
        what = f"slack chat.postMessage to {target!r}"
        assert self._client is not None
        try:
            response = self._client.chat_postMessage(channel=target, text=text, blocks=blocks)
        except SlackApiError as exc:
            raise _api_error(what, exc) from None
        except SlackClientError as exc:  # e.g. SlackRequestError: an invalid base_url
            raise ChannelError(f"{what}: {type(exc).__name__}", permanent=True) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
            raise ChannelError(f"{what}: {_network_error(exc)}") from None
        return str(response.get("ts") or "")

    def _send_webhook(self, text: str, blocks: list[dict[str, Any]] | None) -> str:
        what = "slack incoming webhook"
        assert self._webhook is not None
        try:
            response = self._webhook.send(text=text, blocks=blocks)
        except SlackClientError as exc:
            raise ChannelError(f"{what}: {type(exc).__name__}", permanent=True) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ChannelError(f"{what}: {_network_error(exc)}") from None
        status = response.status_code
        if 200 <= status < 300:
            return f"webhook:{status}"
        body = (response.body or "").strip()
        detail = f"HTTP {status}" + (f" {body}" if _CODE.match(body) else "")
        if status == 429:
            raise ChannelError(f"{what}: {detail}", retry_after=_retry_after(response.headers))
        if _redirect(status):
            raise ChannelError(f"{what}: {detail} (redirect not followed)", permanent=True)
        raise ChannelError(f"{what}: {detail}", permanent=_permanent_status(status))


def _api_error(what: str, exc: SlackApiError) -> ChannelError:
    response = exc.response
    status = getattr(response, "status_code", None)
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    error = str(data.get("error") or "")
    detail = f"HTTP {status}"
    if _CODE.match(error):
        detail += f" {error}"
    needed = str(data.get("needed") or "")
    if error == "missing_scope" and _CODE.match(needed.replace(",", "_")):
        detail += f" (needs {needed})"
    if status == 429:
        return ChannelError(f"{what}: {detail}", retry_after=_retry_after(response.headers))
    if _redirect(status):
        return ChannelError(f"{what}: {detail} (redirect not followed)", permanent=True)
    return ChannelError(f"{what}: {detail}", permanent=error in PERMANENT_ERRORS)


def _redirect(status: int | None) -> bool:
    """A 3xx: refused (``worker.http.NO_REDIRECTS``), and asking again gets the same answer."""
    return status is not None and 300 <= status < 400


def _permanent_status(status: int) -> bool:
    """Webhook statuses: 408, 429 and 5xx may pass; other 4xx (400 invalid_payload,
    403 invalid_token, 404 no_service / channel_not_found, 410 channel_is_archived) will not."""
    return 400 <= status < 500 and status not in (408, 429)


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds from a Retry-After header; None when absent or given as an HTTP date."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                return None
            return seconds if seconds >= 0 else None
    return None


def _network_error(exc: BaseException) -> str:
    """A short description without URLs (urllib's errors carry only the reason)."""
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return type(reason).__name__
