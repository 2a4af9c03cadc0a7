"""At ``--log-level DEBUG`` the third-party loggers stay at WARNING unless ``logging.libraries``
asks for them: urllib3's request lines (a webhook's path token and query) do not reach the log."""

from __future__ import annotations

TOKEN = "PATHTOKEN0042"
QUERY = "QUERYTOKEN0042"




def test_at_debug_a_webhook_token_does_not_reach_the_log(cli, tmp_path, httpserver, quiet_receiver) -> None:
    cfg = tmp_path / "cli.toml"
    cfg.write_text('[channels.webhook]\ntimeout_seconds = 5\n', encoding="utf-8")
    httpserver.expect_request(f"/hook/{TOKEN}").respond_with_data("ok")
    target = httpserver.url_for(f"/hook/{TOKEN}") + f"?token={QUERY}"

    quiet = cli("--log-level", "DEBUG", "notify", "test", "webhook", target, config=cfg)
    assert quiet.exit_code == 0, quiet.output
    assert len(httpserver.log) == 1  # it was sent, to the full URL
    assert TOKEN not in quiet.output and QUERY not in quiet.output

    asked = cli("--log-level", "DEBUG", "notify", "test", "webhook", target, config=cfg,
                env={"TOKENTALLY_LOGGING_LIBRARIES": "DEBUG"})
    assert asked.exit_code == 0, asked.output
    assert TOKEN in asked.output  # urllib3's request line: what logging.libraries = "DEBUG" lets through


def test_a_bad_libraries_level_names_the_key(cli, tmp_path) -> None:
    cfg = tmp_path / "cli.toml"
    cfg.write_text('[logging]\nlibraries = "LOUD"\n', encoding="utf-8")
    result = cli("status", config=cfg)
    assert result.exit_code == 2 and "logging.libraries" in result.output
