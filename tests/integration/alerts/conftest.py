"""Settings for the delivery tests: every channel pointed at the loopback servers."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from worker.settings import Settings, load

SLACK_TOKEN = "xoxb-test-token"
WEBHOOK_SECRET = "s3cret"


@pytest.fixture
def channel_settings(db_url: str, tmp_path: Path, mailbox, httpserver) -> Callable[..., Settings]:
    """``make(routes, extra="", webhook_secret=False)``: settings with email (the loopback SMTP),
    Slack (the loopback HTTP server), webhook and file channels, ``extra`` before them, then ``routes``."""
    _, port = mailbox

    def make(routes: str, extra: str = "", webhook_secret: bool = False) -> Settings:
        path = tmp_path / "channels.toml"
        path.write_text(f"""
{extra}
[channels.email]
smtp_host = "127.0.0.1"
smtp_port = {port}
sender = "tokentally@example.com"
timeout_seconds = 5
[channels.slack]
base_url = "{httpserver.url_for('/api/')}"
timeout_seconds = 5
[channels.webhook]
timeout_seconds = 5
[channels.file]
dir = "{tmp_path / 'outbox'}"
{routes}
""", encoding="utf-8")
        env = {"TOKENTALLY_DATABASE_URL": db_url, "TOKENTALLY_CHANNELS_SLACK_TOKEN": SLACK_TOKEN}
        if webhook_secret:
            env["TOKENTALLY_CHANNELS_WEBHOOK_SECRET"] = WEBHOOK_SECRET
        return load(path, env=env)

    return make
