"""Sending without the outbox: ``system.database_unreachable`` while the database is away.

The outbox lives in the database, so a message about the database being unreachable
goes straight through the channels: :class:`DirectAlarm` is the daemon's alarm
(``worker.health``). It sends to every target the ``[[routes]]`` give the kind
``system.database_unreachable`` at severity critical and, when none of them is a file
target, to ``alerts.fallback`` too: the file channel needs nothing but a local disk, so
one target always hears of it.

Each target gets the message once per outage (the message key names the daemon and the
outage's start, so an email's Message-ID and the file channel's file name stay the same if
it is ever sent again). What happened per target is kept in the outage itself
(``outage["alerts"]``), which the daemon holds in memory and in its state file: a
temporary failure is tried again at a later health check after the outbox's backoff
(``notify.backoff_base``...), up to ``notify.max_attempts``; a permanent one is not. Once
the database is back, ``resolved`` goes to each target that got the first message (when
``alerts.send_resolved``). The text is the alert templates' (``templates/email/alert.*``,
``templates/slack/alert.json.j2``, the sentence in
``templates/alerts/system.database_unreachable.txt.j2``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from reports.channels import ChannelError, open_channel
from reports.messages import make_message
from reports.outbox import backoff
from worker import clock
from worker.db import display_url
from worker.settings import Settings
from worker.settings.routing import targets_for

logger = logging.getLogger(__name__)

KIND = "system.database_unreachable"
SEVERITY = "critical"
DONE = ("sent", "failed")


class DirectAlarm:
    def __init__(self, settings: Settings):
        self.settings = settings

    def targets(self) -> list[tuple[str, str]]:
        routed = targets_for(self.settings.routes, KIND, SEVERITY)
        if not any(channel == "file" for channel, _ in routed):
            routed += [t for t in self.settings.alerts.fallback if t not in routed]
        return routed

    def __call__(self, outage: dict[str, Any], reason: str) -> bool:
        """Send what is due for ``reason`` (``unreachable`` or ``resolved``); True once every target is done."""
        if reason == "resolved" and not self.settings.alerts.send_resolved:
            return True
        now = clock.now()
        done = True
        for channel, target in self.targets():
            state = outage["alerts"].setdefault(f"{channel}:{target}", {})
            if reason == "resolved" and state.get("unreachable", {}).get("status") != "sent":
                continue  # it never heard of the outage
            step = state.setdefault(reason, {"status": "pending", "attempts": 0})
            if step["status"] in DONE:
                continue
            if step.get("next_at") and datetime.fromisoformat(step["next_at"]) > now:
                done = False
                continue
            self._send(outage, reason, channel, target, step, now)
            done = done and step["status"] in DONE
        return done

    def _send(self, outage: dict[str, Any], reason: str, channel: str, target: str, step: dict[str, Any],
              now: datetime) -> None:
        step["attempts"] += 1
        section = self.settings.channels.get(channel)
        try:
            if section is None:
                raise ChannelError(f"channel {channel!r} is not configured", permanent=True)
            external = open_channel(section).send(target, self.message(outage, reason, channel, target, now))
        except ChannelError as exc:
            if exc.permanent or step["attempts"] >= self.settings.delivery.max_attempts:
                step.update(status="failed", error=str(exc))
            else:
                wait = max(backoff(step["attempts"], self.settings.delivery).total_seconds(), exc.retry_after or 0)
                step.update(error=str(exc), next_at=datetime.fromtimestamp(now.timestamp() + wait, now.tzinfo)
                            .isoformat())
            logger.warning("outage alert not delivered", extra={"action": "outage_alert_failed", "channel": channel,
                                                                "reason": reason, "error": str(exc),
                                                                "attempts": step["attempts"]})
            return
        except Exception as exc:  # a bug in a channel: counted as an attempt, as the outbox counts it
            logger.exception("channel crashed", extra={"action": "outage_alert_crashed", "channel": channel})
            failed = step["attempts"] >= self.settings.delivery.max_attempts
            step.update(status="failed" if failed else "pending", error=f"{type(exc).__name__}: {exc}")
            return
        step.update(status="sent", sent_at=now.isoformat(), external_id=None if external is None else str(external))
        logger.info("outage alert sent", extra={"action": "outage_alert_sent", "channel": channel, "reason": reason})

    def message(self, outage: dict[str, Any], reason: str, channel: str, target: str, now: datetime) -> Any:
        started = datetime.fromisoformat(outage["started_at"])
        ended = datetime.fromisoformat(outage["ended_at"]) if outage.get("ended_at") else None
        payload = {"database": display_url(self.settings.database_url), "daemon": outage["daemon"],
                   "error": outage["error"], "started_at": outage["started_at"], "ended_at": outage.get("ended_at"),
                   "seconds": round(((ended or now) - started).total_seconds()), "skipped": outage["skipped"]}
        alert = {"id": None, "key": f"{KIND}|system|database|{started.date().isoformat()}", "kind": KIND,
                 "scope": "system", "scope_id": "database", "period": started.astimezone(self.settings.tz).date()
                 .isoformat(), "severity": SEVERITY, "state": "resolved" if reason == "resolved" else "open",
                 "first_seen": started, "last_seen": ended or now, "times_seen": 1, "payload": payload}
        key = f"database-unreachable-{outage['daemon']}-{started:%Y%m%dT%H%M%S}" + ("-resolved" if reason == "resolved"
                                                                                   else "")
        context = {"alert": alert, "reason": "resolved" if reason == "resolved" else "new", "channel": channel,
                   "target": target, "timezone": self.settings.timezone}
        return make_message("alert", context, kind=KIND, key=key,
                            data={"alert": {**alert, "first_seen": started.isoformat(),
                                            "last_seen": (ended or now).isoformat()}, "reason": reason})
