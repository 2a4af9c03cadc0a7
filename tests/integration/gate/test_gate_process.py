"""An application that asks the gate needs only the database and the tiers.

The worker's settings file configures Slack, email with a login, a signed webhook and
a provider to reconcile with; their secrets live only in the worker's environment.
An application process started with nothing but the database URL and that settings
file must still get decisions from ``from worker import gate; gate.check(...)``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from worker import clock
from worker.limits import windows as limits
from worker.settings import SettingsError, load, load_gate

WORKER_SETTINGS = """
timezone = "Europe/Berlin"
default_tier = "student"

[tiers.student]
daily_tokens = 1000
requests_per_day = 2
action = "block"

[channels.slack]
base_url = "http://127.0.0.1:9/api/"

[channels.email]
smtp_host = "127.0.0.1"
username = "bot"

[channels.webhook]
timeout_seconds = 5

[[routes]]
kinds = ["*"]
to = ["slack:#llm-costs", "email:admins@example.com"]

[reconcile.openai]
enabled = true
"""

APP = """
import json, sys
from worker import gate
decisions = [gate.record("u1").as_dict() for _ in range(3)]
print(json.dumps([{k: d[k] for k in ("can_call", "reason", "tier")} for d in decisions]))
loaded = sorted(m for m in sys.modules if m.startswith(("reports", "slack_sdk", "worker.providers", "jinja2")))
print(json.dumps(loaded))
"""


def _app_env(db_url: str, config: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("TOKENTALLY_")}
    return {**keep, "TOKENTALLY_DATABASE_URL": db_url, "TOKENTALLY_CONFIG": str(config)}


def test_the_worker_refuses_to_start_without_the_secrets_it_configures(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(WORKER_SETTINGS, encoding="utf-8")
    with pytest.raises(SettingsError, match="channels.slack.token|channels.email.password|reconcile.openai.api_key"):
        load(config, env={"TOKENTALLY_DATABASE_URL": db_url})


def test_the_gate_loads_only_database_time_zone_tiers_and_budgets(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(WORKER_SETTINGS, encoding="utf-8")
    settings = load_gate(config, env={})
    assert settings.timezone == "Europe/Berlin"
    assert settings.tiers["student"].requests_per_day == 2
    assert set(settings.channels) == {"file"}  # nothing of the worker's channels was read
    assert settings.reconcile.providers == {}


def test_an_app_process_without_the_workers_secrets_gets_gate_decisions(
        tmp_path: Path, db_url: str, engine: Engine) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(WORKER_SETTINGS, encoding="utf-8")
    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", APP], cwd=repo, env=_app_env(db_url, config),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    decisions_line, modules_line = done.stdout.strip().splitlines()
    decisions = json.loads(decisions_line)
    # requests_per_day = 2: two calls, then refused until the day resets
    assert [d["can_call"] for d in decisions] == [True, False, False]
    assert decisions[-1]["reason"] == "rate_limited" and decisions[-1]["tier"] == "student"
    assert json.loads(modules_line) == []  # no channel, template or provider code was imported
    with engine.connect() as conn:
        windows = limits.current_windows(conn, "u1", clock.now())
    assert windows["day"].used_requests == 3
