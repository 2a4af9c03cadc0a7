"""Messages: the :class:`Message` every channel sends, rendered from templates by :func:`make_message`.

This module imports nothing of ``reports.channels`` and of ``worker/`` only the
ground-floor ``worker.money`` and ``worker.text`` (pure formatting: no settings, no database): the channels
import it (a Message is what they send), alerts and reports render with it.

One Jinja2 environment over the repository's ``templates/`` directory:

- ``email/<name>.subject.j2``: one line (whitespace, newlines included, collapsed);
- ``email/<name>.txt.j2``: the plain text, also the file channel's and Slack's fallback;
- ``email/<name>.html.j2``: the HTML part, the only templates with autoescaping on;
- ``slack/<name>.json.j2`` (optional): a Block Kit payload ``{"text": ..., "blocks": [...]}``.
  Write every value into it as ``{{ value | mrkdwn | tojson }}`` (or capture a mrkdwn
  text with ``{% set %}...{% endset %}`` and ``tojson`` that), so the JSON stays valid
  whatever the value holds.

Undefined variables are errors (StrictUndefined). Filters available in every template:

- ``usd``: a Decimal as dollars with 4 decimal places, rounded half-even, no
  thousands separator: ``Decimal("12.34")`` -> ``$12.3400``, ``Decimal("-0.5")`` ->
  ``-$0.5000``; ``usd(2)`` for cents.
- ``utc``: an aware datetime as ``2025-06-01 14:05:09 UTC``.
- ``local(zone)``: an aware datetime (or its ISO text, as archived reports hold it) in the
  time zone ``zone`` with its name: ``2026-11-23 11:00 CET (Europe/Berlin)``;
  ``local(zone, seconds=true)`` to the second, ``named=false`` without ``(Europe/Berlin)``;
  a zone whose abbreviation is its name is named once (``2026-11-23 10:00 UTC``). The
  alert and test templates take the zone from the render context's ``timezone`` (the
  settings' ``timezone``), the report templates from ``report.period.timezone``.
- ``mrkdwn``: ``&``, ``<`` and ``>`` escaped as Slack requires (``&amp;`` ``&lt;`` ``&gt;``), and
  control and bidi characters (U+202E...) shown as escapes (``\\u202e``), newlines too
  unless ``mrkdwn(lines=true)`` (a paragraph).

Every subject is one line: whitespace (CR and LF included) collapsed, control and bidi
characters shown as escapes (``worker.text.one_line``), so no data can add a header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from worker import money
from worker.text import one_line, shown

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class Message:
    """One rendered message, ready for any channel.

    ``key`` is stable for the logical message (an alert in its period at a severity,
    a report for its period): email uses it for the Message-ID, webhooks send it as
    the delivery id, so a message sent twice can be recognised as the same one.
    """

    kind: str  # what it is about: "test", "alert.budget.account", "report.daily", ...
    key: str
    subject: str
    text: str  # plain text (email text part, file channel, Slack fallback text)
    html: str | None = None  # email HTML part
    slack: dict[str, Any] | None = None  # Block Kit payload: {"text": ..., "blocks": [...]}
    data: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable facts, for webhooks
    # Images shown inside the HTML part: content-id -> path of the image file. The HTML
    # refers to each as ``<img src="cid:<content-id>">``; email (and the file channel's
    # .eml) attach them inline, read from disk when the mail is built. Other channels
    # ignore them.
    inline: dict[str, str] = field(default_factory=dict)
    # Files that go with the message: file name -> content (a grouped alert's CSV). Email
    # attaches them, the file channel writes them beside the message; Slack and webhooks
    # do not (the webhook's ``data`` carries the same facts).
    attachments: dict[str, bytes] = field(default_factory=dict)


class RenderError(Exception):
    """A template is missing, broken, uses an undefined variable, got a value a filter
    refuses or produced invalid JSON; the message names the template."""


def usd(value: Decimal | int | str, places: int = 4) -> str:
    """``$12.3400``: explicit precision, half-even rounding (``worker.money.usd``); floats are
    refused (money is Decimal)."""
    try:
        return money.usd(value, places)
    except (TypeError, ValueError) as exc:  # the filter's name in front, as render() reports it
        raise type(exc)(f"usd: {exc}") from None


def utc(value: datetime) -> str:
    """An aware datetime in UTC, to the second; naive datetimes are refused."""
    if value.tzinfo is None:
        raise ValueError(f"utc: naive datetime {value!r} (the clock gives aware UTC datetimes)")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def local(value: datetime | str, zone: str, seconds: bool = False, named: bool = True) -> str:
    """An aware datetime (or ISO text with an offset) in ``zone``, with the zone's abbreviation
    and, when ``named``, its name: ``2026-11-23 11:00 CET (Europe/Berlin)``.

    Text (an archived report's field) that is not an aware ISO time, or comes with a zone that
    does not exist, is shown as it is; a datetime that is naive or a zone that does not exist
    for one is refused (ValueError), as they are bugs."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            tz = ZoneInfo(str(zone))
        except (ValueError, OSError, ZoneInfoNotFoundError):
            return value
        if when.tzinfo is None:
            return value
    else:
        when = value
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise ValueError(f"local: expected an aware datetime, got {value!r} (naive or not a datetime)")
        try:
            tz = ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"local: unknown time zone {zone!r}") from None
    shown = when.astimezone(tz)
    text = shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    abbreviation = shown.tzname() or str(zone)
    if abbreviation == str(zone) or not named:
        return f"{text} {abbreviation}"
    return f"{text} {abbreviation} ({zone})"


def mrkdwn(value: Any, lines: bool = False) -> str:
    """Text from the data as Slack shows it: control and bidi characters as escapes
    (``worker.text.shown``; ``lines=true`` keeps newlines), then ``&`` ``<`` ``>`` escaped as
    Slack's formatting docs require, so no value can become ``<!channel>``, a mention or a link."""
    text = shown(str(value), lines=lines)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _environment(directory: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), disabled_extensions=(),
                                            default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(usd=usd, utc=utc, local=local, mrkdwn=mrkdwn)
    return env


ENV = _environment(TEMPLATES)


def render(template: str, context: dict[str, Any]) -> str:
    """One template (path under ``templates/``) rendered; jinja errors become RenderError."""
    try:
        return ENV.get_template(template).render(context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"templates/{template}: template not found ({exc.name})") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"templates/{exc.name or template}, line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise RenderError(f"templates/{template}: {exc}") from exc
    except (TypeError, ValueError) as exc:  # a filter refused a value (a float amount, a naive datetime)
        raise RenderError(f"templates/{template}: {type(exc).__name__}: {exc}") from exc


def render_slack(name: str, context: dict[str, Any]) -> dict[str, Any] | None:
    """``slack/<name>.json.j2`` parsed, or None when there is no such template."""
    template = f"slack/{name}.json.j2"
    try:
        ENV.get_template(template)
    except jinja2.TemplateNotFound:
        return None
    except jinja2.TemplateError:
        pass  # broken: render() reports it with the template named
    text = render(template, context)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RenderError(f"templates/{template} produced invalid JSON: {exc.msg} "
                          f"at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        raise RenderError(f"templates/{template}: expected a JSON object with a \"text\" string")
    return payload


def make_message(name: str, context: dict[str, Any], *, kind: str, key: str,
                 data: dict[str, Any] | None = None) -> Message:
    """The message ``name`` rendered from its templates with ``context``.

    ``kind`` and ``key`` are passed through to the Message (see there); ``data`` is the
    JSON-serialisable facts for webhooks.
    """
    subject = one_line(render(f"email/{name}.subject.j2", context))
    if not subject:
        raise RenderError(f"templates/email/{name}.subject.j2: rendered an empty subject")
    return Message(
        kind=kind,
        key=key,
        subject=subject,
        text=render(f"email/{name}.txt.j2", context),
        html=render(f"email/{name}.html.j2", context),
        slack=render_slack(name, context),
        data=dict(data or {}),
    )
