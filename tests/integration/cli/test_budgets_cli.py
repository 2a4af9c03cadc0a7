"""tokentally budgets set / list / unset and limits show SCOPE, on SQLite and PostgreSQL: stored
budgets win over settings.toml's, apply at once, and bad scopes are refused with exit code 2."""

from __future__ import annotations

import json

from freezegun import freeze_time

SETTINGS = """
timezone = "America/New_York"

[budgets."service:chat"]
daily_cost_usd = "1"
action = "warn"
"""


def test_budgets_set_list_and_unset(cli, tmp_path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(SETTINGS, encoding="utf-8")
    with freeze_time("2026-11-20T15:00:00Z"):
        done = cli("budgets", "set", "tenant:school-a", "--monthly-cost-usd", "500", "--daily-tokens", "20000",
                   "--action", "block", "--format", "json", config=config)
        assert done.exit_code == 0, done.output
        result = json.loads(done.output)
        assert result["created"] is True
        assert [(w["window"], w["limit_tokens"], w["limit_cost_usd"]) for w in result["windows"]] == [
            ("daily", 20000, None), ("monthly", None, "500")]
        rolling = cli("budgets", "set", "member:alice@school-a", "--every", "7d", "--start", "2026-11-16",
                      "--cost-usd", "5", "--action", "alert", config=config)
        assert rolling.exit_code == 0, rolling.output
        listed = json.loads(cli("budgets", "list", "--format", "json", config=config).output)
        assert [(b["scope"], b["source"], b["action"]) for b in listed] == [
            ("member:alice@school-a", "cli", "alert"), ("service:chat", "settings", "warn"),
            ("tenant:school-a", "cli", "block")]
        member = listed[0]["windows"][0]
        assert (member["period"], member["reset_at_local"], member["resets_in"]) == (
            "2026-11-16+7d", "2026-11-23 00:00 EST", "2d 14h")
        table = cli("budgets", "list", config=config).output
        assert "tenant:school-a" in table and "monthly" in table and "(2026-12-01 00:00 EST)" in table
        # a stored budget wins over the settings' for its scope; unset brings the settings' back
        assert cli("budgets", "set", "service:chat", "--daily-tokens", "5", "--action", "block",
                   config=config).exit_code == 0
        chat = [b for b in json.loads(cli("budgets", "list", "--format", "json", config=config).output)
                if b["scope"] == "service:chat"][0]
        assert (chat["source"], chat["action"]) == ("cli", "block")
        gone = json.loads(cli("budgets", "unset", "service:chat", "--format", "json", config=config).output)
        assert gone == {"scope": "service:chat", "removed": True, "windows_changed": 0, "in_force": "settings"}
        again = cli("budgets", "unset", "service:chat", config=config)
        assert again.exit_code == 1 and "set in the settings file" in again.output
        shown = json.loads(cli("limits", "show", "tenant:school-a", "--format", "json", config=config).output)
        assert [w["name"] for w in shown["windows"]] == ["tenant school-a daily budget",
                                                         "tenant school-a monthly budget"]


def test_bad_scopes_and_budgets_exit_2_with_what_a_good_one_looks_like(cli, tmp_path) -> None:
    for args, words in ((["team:x", "--daily-tokens", "5"], "unknown scope kind 'team'"),
                        (["member:alice", "--daily-tokens", "5"], "member:ACCOUNT@TENANT"),
                        (["tenant:a"], "no limit given"),
                        (["tenant:a", "--daily-cost-usd", "lots"], "--daily-cost-usd"),
                        (["tenant:a", "--every", "12h", "--start", "2026-11-01", "--cost-usd", "1"], "whole days"),
                        (["tenant:a", "--every", "7d", "--cost-usd", "1"], "needs every, start"),
                        (["tenant:a", "--daily-tokens", "5", "--action", "stop"], "--action")):
        done = cli("budgets", "set", *args)
        assert done.exit_code == 2, (args, done.output)
        assert words in done.output, (args, done.output)
    assert cli("budgets", "unset", "tenant").exit_code == 2
    assert cli("limits", "show", "tenant:").exit_code == 2


def test_a_bad_scope_table_in_the_settings_exits_2_naming_it(cli, tmp_path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[budgets."teams:x"]\ndaily_tokens = 5\n', encoding="utf-8")
    done = cli("budgets", "list", config=config)
    assert done.exit_code == 2
    assert 'budgets."teams:x"' in done.output and "unknown scope kind" in done.output
