"""``[channels.<kind>]``: how each delivery channel reaches its far end.

One frozen section per channel kind; ``reports.channels`` builds the channel from it
on first use. Secrets (the SMTP password, the Slack token or webhook URL, the
webhook signing secret) come only from ``TOKENTALLY_CHANNELS_<KIND>_<KEY>`` or its
``_FILE`` variant, never from the file, and never appear in a repr.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from worker.settings.reader import Reader, SettingsError

SMTP_PORT, SMTP_SSL_PORT = 25, 465  # smtplib.SMTP_PORT / SMTP_SSL_PORT, without importing smtplib and ssl

EMAIL_SECURITY = ("none", "starttls", "ssl")
WEBHOOK_SIGNATURE_HEADER = "X-Tokentally-Signature"
# One plain address (local@domain): no display name, no spaces, no second address.
_ADDRESS = re.compile(r"[^\s@<>,;:\"()\[\]\\]+@[^\s@<>,;:\"()\[\]\\]+")


def is_address(text: str) -> bool:
    return _ADDRESS.fullmatch(text) is not None and text.isprintable()


def is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True)
class EmailSettings:
    kind: ClassVar[str] = "email"
    host: str = "localhost"
    port: int = SMTP_PORT
    security: str = "none"  # none | starttls | ssl
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "tokentally@localhost"
    timeout: float = 30


@dataclass(frozen=True)
class SlackSettings:
    kind: ClassVar[str] = "slack"
    token: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)
    base_url: str = "https://slack.com/api/"
    timeout_seconds: int = 30


@dataclass(frozen=True)
class WebhookSettings:
    kind: ClassVar[str] = "webhook"
    secret: str | None = field(default=None, repr=False)
    timeout_seconds: int = 10
    header: str = WEBHOOK_SIGNATURE_HEADER


@dataclass(frozen=True)
class FileSettings:
    kind: ClassVar[str] = "file"
    dir: str = "var/outbox"


ChannelSettings = EmailSettings | SlackSettings | WebhookSettings | FileSettings


def _email(r: Reader) -> EmailSettings:
    host = r.take("smtp_host", str, "localhost")
    security = r.take("security", str, "none")
    if security not in EMAIL_SECURITY:
        raise SettingsError(f"{r.key('security')}: expected one of {', '.join(EMAIL_SECURITY)}, got {security!r}")
    port = r.take("smtp_port", int, SMTP_SSL_PORT if security == "ssl" else SMTP_PORT)
    if not 0 < port < 65536:
        raise SettingsError(f"{r.key('smtp_port')}: expected a port number (1-65535), got {port!r}")
    username = r.take("username", str)
    password = r.secret("password")
    sender = r.take("sender", str, "tokentally@localhost")
    timeout = r.positive_int("timeout_seconds", 30)
    r.done()
    if not host.strip():
        raise SettingsError(f"{r.key('smtp_host')}: must name a host")
    if not is_address(sender):
        raise SettingsError(f"{r.key('sender')}: expected an address like tokentally@example.com, got {sender!r}")
    if username and password is None:
        raise SettingsError(f"{r.key('password')}: required when {r.key('username')} is set; "
                            f"set TOKENTALLY_CHANNELS_EMAIL_PASSWORD or TOKENTALLY_CHANNELS_EMAIL_PASSWORD_FILE")
    if password is not None and not username:
        raise SettingsError(f"{r.key('password')}: is set but {r.key('username')} is not")
    return EmailSettings(host=host, port=port, security=security, username=username or None,
                         password=password, sender=sender, timeout=timeout)


def _slack(r: Reader) -> SlackSettings:
    token = r.secret("token")
    webhook_url = r.secret("webhook_url")
    base_url = r.take("base_url", str, "https://slack.com/api/")
    timeout = r.positive_int("timeout_seconds", 30)
    r.done()
    if not token and not webhook_url:
        raise SettingsError(
            "channels.slack.token: required (or channels.slack.webhook_url); set "
            "TOKENTALLY_CHANNELS_SLACK_TOKEN or TOKENTALLY_CHANNELS_SLACK_WEBHOOK_URL "
            "(or their _FILE variants)")
    if not is_http_url(base_url):
        raise SettingsError(f"channels.slack.base_url: expected an http(s) URL, got {base_url!r}")
    if webhook_url and not is_http_url(webhook_url):
        raise SettingsError("channels.slack.webhook_url: expected an http(s) URL "
                            "(value not shown: it is a secret)")
    return SlackSettings(token=token, webhook_url=webhook_url, base_url=base_url, timeout_seconds=timeout)


def _webhook(r: Reader) -> WebhookSettings:
    secret = r.secret("secret")
    timeout = r.positive_int("timeout_seconds", 10)
    header = r.take("header", str, WEBHOOK_SIGNATURE_HEADER)
    r.done()
    if not header.strip() or any(c in header for c in ":\r\n "):
        raise SettingsError(f"channels.webhook.header: not a valid header name: {header!r}")
    return WebhookSettings(secret=secret, timeout_seconds=timeout, header=header)


def _file(r: Reader) -> FileSettings:
    directory = r.take("dir", str, "var/outbox")
    r.done()
    if not directory.strip():
        raise SettingsError("channels.file.dir: must name a directory")
    return FileSettings(directory)


PARSERS = {"email": _email, "slack": _slack, "webhook": _webhook, "file": _file}


def parse_channel(kind: str, table: Any, env: dict[str, str]) -> ChannelSettings:
    """One ``[channels.<kind>]`` table (and its environment overrides)."""
    if kind not in PARSERS:
        raise SettingsError(f"channels.{kind}: no such channel (channels: {', '.join(sorted(PARSERS))})")
    return PARSERS[kind](Reader(table, f"channels.{kind}", env))


def parse_channels(raw: dict[str, Any], env: dict[str, str]) -> dict[str, ChannelSettings]:
    """Every configured channel; the file channel always exists."""
    channels = {kind: parse_channel(kind, table, env) for kind, table in raw.items()}
    if "file" not in channels:
        channels["file"] = parse_channel("file", {}, env)
    return channels
