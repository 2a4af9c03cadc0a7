"""Where messages go: the ``[[routes]]`` and ``[alerts]`` settings, and matching.

A route sends the messages whose kind matches one of its patterns (``budget.*``,
``report.daily``, ``*``) and whose severity is at least ``min_severity`` to each of
its targets, ``channel:target`` (``email:admins@example.com``, ``slack:#llm-costs``,
``webhook:https://...``, ``file:admins``). Without any route, everything goes to the
file channel, so a new setup shows what would be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from worker.settings.reader import Reader, SettingsError, parse_duration

SEVERITIES = ("info", "warning", "critical", "emergency")  # of alerts and routes, in rising order


@dataclass(frozen=True)
class Route:
    kinds: tuple[str, ...]
    targets: tuple[tuple[str, str], ...]  # (channel, target)
    min_severity: str = "info"

    def matches(self, kind: str, severity: str) -> bool:
        return (any(fnmatchcase(kind, pattern) for pattern in self.kinds)
                and SEVERITIES.index(severity) >= SEVERITIES.index(self.min_severity))


DEFAULT_ROUTES = (Route(kinds=("*",), targets=(("file", ""),)),)


@dataclass(frozen=True)
class AlertSettings:
    reminder_after: timedelta = timedelta(hours=4)  # re-send while open and not acknowledged
    send_resolved: bool = True  # a message when the condition clears
    fallback: tuple[tuple[str, str], ...] = (("file", "delivery-failed"),)  # where delivery.failed goes
    group_after: int = 20  # more alerts of one kind than this in one run: one grouped message per target


@dataclass(frozen=True)
class DeliverySettings:
    """``[notify]``: how the outbox retries."""

    max_attempts: int = 8  # then the notification fails and delivery.failed is raised
    backoff_base: timedelta = timedelta(minutes=1)  # 1m, 2m, 4m, ... after each failure
    backoff_max: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=10)  # a row still "sending" after this is in doubt


def parse_delivery(raw: Any, env: dict[str, str]) -> DeliverySettings:
    r = Reader(raw or {}, "notify", env)
    max_attempts = r.positive_int("max_attempts", 8)
    base = parse_duration(r.take("backoff_base", str, "1m"), "notify.backoff_base")
    cap = parse_duration(r.take("backoff_max", str, "6h"), "notify.backoff_max")
    lease = parse_duration(r.take("lease", str, "10m"), "notify.lease")
    r.done()
    if base <= timedelta(0) or cap < base:
        raise SettingsError("notify.backoff_max: must be at least notify.backoff_base, both positive")
    if lease <= timedelta(0):
        raise SettingsError("notify.lease: must be positive")
    return DeliverySettings(max_attempts, base, cap, lease)


def parse_routes(raw: Any, channels: dict[str, Any]) -> tuple[Route, ...]:
    if raw is None:
        return DEFAULT_ROUTES
    if not isinstance(raw, list):
        raise SettingsError("routes: expected an array of tables ([[routes]])")
    routes = []
    for index, item in enumerate(raw):
        r = Reader(item, f"routes[{index}]", None)
        kinds = r.take("kinds", list, required=True)
        to = r.take("to", list, required=True)
        min_severity = r.take("min_severity", str, "info")
        r.done()
        if not kinds or not all(isinstance(k, str) and k for k in kinds):
            raise SettingsError(f"routes[{index}].kinds: expected a list of kind patterns like \"budget.*\"")
        if min_severity not in SEVERITIES:
            raise SettingsError(f"routes[{index}].min_severity: one of {', '.join(SEVERITIES)}, got {min_severity!r}")
        routes.append(Route(tuple(kinds), parse_targets(to, channels, f"routes[{index}].to"), min_severity))
    return tuple(routes)


def parse_targets(items: Any, channels: dict[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, list) or not items:
        raise SettingsError(f"{key}: expected a list of \"channel:target\" strings")
    targets = []
    for item in items:
        if not isinstance(item, str) or ":" not in item:
            raise SettingsError(f"{key}: expected \"channel:target\" (e.g. \"email:admins@example.com\"), got {item!r}")
        channel, _, target = item.partition(":")
        if channel not in channels:
            configured = ", ".join(sorted(channels))
            raise SettingsError(f"{key}: channel {channel!r} is not configured (configured: {configured}); "
                                f"add a [channels.{channel}] table")
        targets.append((channel, target.strip()))
    return tuple(targets)


def parse_alerts(raw: Any, channels: dict[str, Any], env: dict[str, str]) -> AlertSettings:
    r = Reader(raw or {}, "alerts", env)
    reminder = parse_duration(r.take("reminder_after", str, "4h"), "alerts.reminder_after")
    send_resolved = r.take("send_resolved", bool, True)
    fallback_raw = r.take("fallback", list, None)
    group_after = r.positive_int("group_after", AlertSettings.group_after)
    r.done()
    fallback = (parse_targets(fallback_raw, channels, "alerts.fallback") if fallback_raw is not None
                else AlertSettings.fallback)
    return AlertSettings(reminder, send_resolved, fallback, group_after)


def targets_for(routes: tuple[Route, ...], kind: str, severity: str) -> list[tuple[str, str]]:
    """Every (channel, target) a message of this kind and severity goes to, each once, in order."""
    seen: dict[tuple[str, str], None] = {}
    for route in routes:
        if route.matches(kind, severity):
            for target in route.targets:
                seen.setdefault(target, None)
    return list(seen)
