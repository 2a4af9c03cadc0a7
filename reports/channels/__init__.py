"""Delivery channels: one module per kind, one class with ``send(target, message)``.

The registry maps a kind to a dotted path and imports the class on first use
(healthchecks' transport registry). A channel makes exactly one delivery attempt
and raises :class:`ChannelError` when it fails; retrying, backoff and recording the
outcome are the outbox's work (``reports.outbox``), not the channel's.

Channel settings live in ``[channels.<kind>]`` of settings.toml and are parsed by
``worker.settings.channels`` into one frozen section per kind; a channel is built
from its section (``from_settings``) the first time a message needs it
(:func:`open_channel`), so a process that never sends never builds one. What a channel
sends is a ``reports.messages.Message``; MIME building (email and the file channel's
.eml) is in ``reports.channels.mime``.
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping, Protocol

from worker.settings.channels import ChannelSettings, parse_channel

from reports.messages import Message

CHANNELS: dict[str, str] = {
    "email": "reports.channels.email.EmailChannel",
    "slack": "reports.channels.slack.SlackChannel",
    "webhook": "reports.channels.webhook.WebhookChannel",
    "file": "reports.channels.file.FileChannel",
}


class ChannelError(Exception):
    """A delivery failed. ``permanent``: retrying cannot help (bad address, invalid token,
    channel not found). ``retry_after``: seconds the far end asked us to wait (429)."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Channel(Protocol):
    kind: str

    def send(self, target: str, message: Message) -> str | None:
        """Deliver ``message`` to ``target`` once; return the far end's id for it
        (Message-ID, Slack ``ts``, file path, HTTP status), or raise ChannelError."""
        ...


def channel_class(kind: str) -> type:
    try:
        dotted = CHANNELS[kind]
    except KeyError:
        raise KeyError(f"no channel kind {kind!r} (kinds: {', '.join(sorted(CHANNELS))})") from None
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


_open: dict[int, tuple[Any, Channel]] = {}


def open_channel(section: ChannelSettings) -> Channel:
    """The channel built from ``section`` (one of ``Settings.channels``), built once per section."""
    hit = _open.get(id(section))
    if hit is None or hit[0] is not section:
        hit = _open[id(section)] = (section, channel_class(section.kind).from_settings(section))
    return hit[1]


def load_channel(kind: str, table: Mapping[str, Any], env: Mapping[str, str]) -> Channel:
    """The channel of ``kind`` configured from a ``[channels.<kind>]`` table and the environment."""
    return channel_class(kind).from_settings(parse_channel(kind, dict(table), dict(env)))
