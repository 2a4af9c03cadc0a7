"""``[daemon]``: the health check's period (noticed within a minute), the heartbeat's timeout, the state file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from worker.settings import SettingsError, load


def _load(tmp_path: Path, toml: str = "", **env: str):
    path = tmp_path / "settings.toml"
    path.write_text(toml, encoding="utf-8")
    return load(path, env=env)


def test_the_defaults_check_every_30s_and_call_a_daemon_gone_after_2m(tmp_path: Path) -> None:
    daemon = _load(tmp_path).daemon
    assert (daemon.health_check, daemon.heartbeat_timeout, daemon.state_file) == (
        timedelta(seconds=30), timedelta(minutes=2), "var/daemon-state.json")


def test_the_daemon_table_and_its_variables_are_read(tmp_path: Path) -> None:
    daemon = _load(tmp_path, '[daemon]\nhealth_check = "10s"\nstate_file = "/run/tt/state.json"\n',
                   TOKENTALLY_DAEMON_HEARTBEAT_TIMEOUT="1m").daemon
    assert (daemon.health_check, daemon.heartbeat_timeout, daemon.state_file) == (
        timedelta(seconds=10), timedelta(minutes=1), "/run/tt/state.json")


@pytest.mark.parametrize("toml, message", [
    ('[daemon]\nhealth_check = "2m"\nheartbeat_timeout = "10m"\n', "daemon.health_check: between 1s and 1m"),
    ('[daemon]\nhealth_check = "0s"\n', "daemon.health_check: between 1s and 1m"),
    ('[daemon]\nhealth_check = "1m"\nheartbeat_timeout = "90s"\n', "daemon.heartbeat_timeout: at least twice"),
    ('[daemon]\nstate_file = " "\n', "daemon.state_file"),
    ('[daemon]\nheartbeat = "1m"\n', "daemon.heartbeat"),
])
def test_bad_daemon_settings_are_refused_naming_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        _load(tmp_path, toml)
