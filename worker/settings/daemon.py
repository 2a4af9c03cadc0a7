"""``[daemon]``: the daemon's database health check, heartbeat and local state file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from worker.settings.reader import Reader, SettingsError, duration

MAX_HEALTH_CHECK = timedelta(minutes=1)  # an unreachable database is noticed within a minute


@dataclass(frozen=True)
class DaemonSettings:
    """``[daemon]``."""

    # How often the daemon checks the database (a fresh connection that writes its heartbeat).
    health_check: timedelta = timedelta(seconds=30)
    # A daemon not seen for this long is gone: its running runs become interrupted and their tick is taken over.
    heartbeat_timeout: timedelta = timedelta(minutes=2)
    # Where a daemon keeps an outage (messages sent, runs to record) while the database is away, and across a restart.
    state_file: str = "var/daemon-state.json"


def parse_daemon(raw: dict[str, Any] | None, env: dict[str, str]) -> DaemonSettings:
    d = DaemonSettings()
    r = Reader(raw or {}, "daemon", env)
    check = duration(r, "health_check", d.health_check)
    timeout = duration(r, "heartbeat_timeout", d.heartbeat_timeout)
    state_file = r.take("state_file", str, d.state_file)
    r.done()
    if not timedelta(seconds=1) <= check <= MAX_HEALTH_CHECK:
        raise SettingsError("daemon.health_check: between 1s and 1m (an unreachable database is noticed within it)")
    if timeout < 2 * check:
        raise SettingsError("daemon.heartbeat_timeout: at least twice daemon.health_check (the heartbeat's period)")
    if not state_file.strip():
        raise SettingsError("daemon.state_file: a file path")
    return DaemonSettings(check, timeout, state_file)
