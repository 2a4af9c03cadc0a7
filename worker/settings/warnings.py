"""Settings that load and work but deserve a word at start: said in the log when a command
or the daemon starts (``cli.state``) and listed by ``status`` under ``warnings``.

Today one kind: a ``webhook:`` target (in ``[[routes]]``, ``alerts.fallback`` or
``reports.tenants``) while the webhook channel has no signing secret
(``TOKENTALLY_CHANNELS_WEBHOOK_SECRET``): its receivers cannot tell tokentally's deliveries
from anyone else's, nor reject a replay. Targets are named as ``worker.redact.target`` shows
them, so a warning never holds a webhook's token.
"""

from __future__ import annotations

from worker import redact
from worker.settings import Settings


def settings_warnings(settings: Settings) -> list[str]:
    """What is worth saying about ``settings``, one line each."""
    webhook = settings.channels.get("webhook")
    if webhook is None or getattr(webhook, "secret", None):  # a WebhookSettings, or no webhook channel
        return []
    places: dict[str, list[str]] = {}
    for index, route in enumerate(settings.routes):
        for channel, target in route.targets:
            if channel == "webhook":
                places.setdefault(target, []).append(f"routes[{index}]")
    for channel, target in settings.alerts.fallback:
        if channel == "webhook":
            places.setdefault(target, []).append("alerts.fallback")
    for tenant, contacts in settings.reports.tenants.items():
        for channel, target in contacts:
            if channel == "webhook":
                places.setdefault(target, []).append(f"reports.tenants.{tenant}")
    return [f"webhook target {redact.target(target)} ({', '.join(where)}) is unsigned: set "
            "TOKENTALLY_CHANNELS_WEBHOOK_SECRET (or _FILE) so its receiver can verify each delivery "
            "and refuse replays" for target, where in places.items()]
