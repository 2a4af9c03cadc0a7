"""A webhook target without a signing secret is said at the start of every command (and so of the
daemon) and listed by `status`; named redacted, never with its token; on SQLite and PostgreSQL."""

from __future__ import annotations

import json


def write_config(tmp_path, hook: str):
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f'[channels.webhook]\ntimeout_seconds = 5\n'
                   f'[[routes]]\nkinds = ["budget.*"]\nto = ["webhook:{hook}"]\n'
                   f'[reports.tenants]\nglobex = ["webhook:{hook}"]\n', encoding="utf-8")
    return cfg


def test_an_unsigned_webhook_is_warned_about_at_start_and_in_status(cli, tmp_path) -> None:
    cfg = write_config(tmp_path, "https://hooks.example/in/HOOKTOKEN99?key=QK")
    result = cli("status", "--format", "json", config=cfg)
    assert result.exit_code == 0, result.output
    [warning] = json.loads(result.stdout)["warnings"]
    assert "https://hooks.example/…?key=*** (#" in warning and "routes[0], reports.tenants.globex" in warning
    assert "TOKENTALLY_CHANNELS_WEBHOOK_SECRET" in warning
    assert warning in result.stderr  # the log line at start
    assert "HOOKTOKEN99" not in result.output
    table = cli("status", config=cfg)
    assert table.exit_code == 0 and "unsigned" in table.stdout and "HOOKTOKEN99" not in table.output


def test_a_signed_webhook_is_not_warned_about(cli, tmp_path) -> None:
    cfg = write_config(tmp_path, "https://hooks.example/in")
    result = cli("status", "--format", "json", config=cfg, env={"TOKENTALLY_CHANNELS_WEBHOOK_SECRET": "s3cret"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["warnings"] == []
    assert "unsigned" not in result.output
