"""The Slack channel against a real HTTP server on loopback (pytest-httpserver): the SDK
pointed at it with base_url for chat.postMessage, and an incoming-webhook URL on it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.helpers import free_port
from reports.channels import ChannelError, load_channel
from reports.messages import Message
from reports.channels.slack import SlackChannel
from worker.settings import SettingsError

TOKEN = "xoxb-1111-2222-SECRETTOKENVALUE"
TS = "1700000000.000100"
POST = "/api/chat.postMessage"
HOOK_PATH = "/services/T000/B000/WEBHOOKSECRETPART"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Budget* at 80%"}}]


def message(**changes: object) -> Message:
    fields: dict[str, object] = {
        "kind": "alert.budget.account", "key": "alert:acme:2024-05:warn", "subject": "Budget warning",
        "text": "acme is at 80% of its monthly budget",
        "slack": {"text": "acme is at 80% of its budget", "blocks": BLOCKS},
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


def channel_for(httpserver: HTTPServer, *, token: str | None = TOKEN, webhook: bool = False,
                timeout: int = 5) -> SlackChannel:
    env = {}
    if token:
        env["TOKENTALLY_CHANNELS_SLACK_TOKEN"] = token
    if webhook:
        env["TOKENTALLY_CHANNELS_SLACK_WEBHOOK_URL"] = httpserver.url_for(HOOK_PATH)
    table = {"base_url": httpserver.url_for("/api/"), "timeout_seconds": timeout}
    return load_channel("slack", table, env)


def slack_ok() -> dict[str, object]:
    return {"ok": True, "ts": TS, "channel": "C1", "message": {"text": "..."}}


def sent_json(httpserver: HTTPServer, index: int = -1) -> dict[str, object]:
    request, _ = httpserver.log[index]
    return request.get_json()


def failure(channel: SlackChannel, target: str = "C1", msg: Message | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as info:
        channel.send(target, msg or message())
    err = info.value
    assert TOKEN not in str(err) and "WEBHOOKSECRETPART" not in str(err)
    return err


@pytest.fixture(autouse=True)
def _every_request_was_expected(httpserver: HTTPServer) -> Iterator[None]:
    yield
    httpserver.check_assertions()


# --------------------------------------------------------------------------- chat.postMessage


def test_post_message_carries_token_channel_text_and_blocks_and_returns_ts(httpserver: HTTPServer) -> None:
    httpserver.expect_request(POST, method="POST", headers={"Authorization": f"Bearer {TOKEN}"}) \
        .respond_with_json(slack_ok())

    assert channel_for(httpserver).send("C1", message()) == TS

    assert len(httpserver.log) == 1
    assert sent_json(httpserver) == {"channel": "C1", "text": "acme is at 80% of its budget", "blocks": BLOCKS}


def test_message_without_slack_payload_posts_its_plain_text(httpserver: HTTPServer) -> None:
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_ok())

    channel_for(httpserver).send("#alerts", message(slack=None))

    assert sent_json(httpserver) == {"channel": "#alerts", "text": "acme is at 80% of its monthly budget"}


def test_hostile_text_and_model_names_arrive_exactly_as_given(httpserver: HTTPServer) -> None:
    model = 'gpt-4o"}]<!channel> & <script>alert(1)</script> \u202eevil\u0000 \U0001f4b8'
    text = f"<!here> *{model}* used `$12.30` & {{{{ not a template }}}}\n> quoted"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"model: {model}"}},
              {"type": "context", "elements": [{"type": "plain_text", "text": model}]}]
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_ok())

    channel_for(httpserver).send("C1", message(slack={"text": text, "blocks": blocks}))

    assert sent_json(httpserver) == {"channel": "C1", "text": text, "blocks": blocks}


def test_rate_limit_is_temporary_with_the_retry_after_seconds(httpserver: HTTPServer) -> None:
    httpserver.expect_request(POST).respond_with_json({"ok": False, "error": "ratelimited"},
                                                      status=429, headers={"Retry-After": "7"})

    err = failure(channel_for(httpserver))

    assert not err.permanent and err.retry_after == 7
    assert len(httpserver.log) == 1  # one attempt: the SDK's retry handlers are off


def test_rate_limit_without_retry_after_is_temporary_without_a_delay(httpserver: HTTPServer) -> None:
    httpserver.expect_request(POST).respond_with_json({"ok": False, "error": "ratelimited"}, status=429)

    err = failure(channel_for(httpserver))

    assert not err.permanent and err.retry_after is None


@pytest.mark.parametrize("error", ["invalid_auth", "channel_not_found", "not_in_channel", "is_archived",
                                   "token_revoked", "missing_scope", "invalid_blocks", "msg_too_long"])
def test_api_errors_that_no_retry_can_fix_are_permanent(httpserver: HTTPServer, error: str) -> None:
    httpserver.expect_request(POST).respond_with_json({"ok": False, "error": error})

    err = failure(channel_for(httpserver))

    assert err.permanent and error in str(err)


@pytest.mark.parametrize("error", ["internal_error", "fatal_error", "service_unavailable", "request_timeout"])
def test_other_api_errors_are_temporary(httpserver: HTTPServer, error: str) -> None:
    httpserver.expect_request(POST).respond_with_json({"ok": False, "error": error})

    err = failure(channel_for(httpserver))

    assert not err.permanent and err.retry_after is None


def test_server_error_is_temporary(httpserver: HTTPServer) -> None:
    httpserver.expect_request(POST).respond_with_data("<html>upstream connect error</html>", status=500)

    err = failure(channel_for(httpserver))

    assert not err.permanent and "HTTP 500" in str(err)
    assert len(httpserver.log) == 1


def test_a_send_after_a_server_error_succeeds(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(POST).respond_with_json({"ok": False, "error": "internal_error"},
                                                              status=500)
    httpserver.expect_ordered_request(POST).respond_with_json(slack_ok())
    channel = channel_for(httpserver)

    assert not failure(channel).permanent
    assert channel.send("C1", message()) == TS
    assert len(httpserver.log) == 2


def test_connection_refused_is_temporary() -> None:
    channel = SlackChannel(token=TOKEN, base_url=f"http://127.0.0.1:{free_port()}/api/", timeout_seconds=2)

    err = failure(channel)

    assert not err.permanent and "refused" in str(err).lower()


def test_a_slow_server_is_a_temporary_timeout(httpserver: HTTPServer) -> None:
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request(POST).respond_with_handler(slow)
    try:
        err = failure(channel_for(httpserver, timeout=1))
    finally:
        release.set()

    assert not err.permanent and "timed out" in str(err)


def test_secrets_never_reach_logs_even_at_debug(httpserver: HTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_ordered_request(POST).respond_with_json(slack_ok())
    httpserver.expect_ordered_request(POST).respond_with_json({"ok": False, "error": "invalid_auth"}, status=401)
    httpserver.expect_ordered_request(HOOK_PATH).respond_with_data("ok")
    httpserver.expect_ordered_request(HOOK_PATH).respond_with_data("no_service", status=404)
    channel = channel_for(httpserver, webhook=True)

    channel.send("C1", message())
    failure(channel)
    channel.send("webhook", message())
    failure(channel, target="webhook")

    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")  # not the test server's
    assert TOKEN not in ours and "WEBHOOKSECRETPART" not in ours


# --------------------------------------------------------------------------- incoming webhook


def test_webhook_mode_posts_text_and_blocks_to_the_webhook_url(httpserver: HTTPServer) -> None:
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("ok")
    channel = channel_for(httpserver, token=None, webhook=True)

    assert channel.send("webhook", message()) == "webhook:200"

    assert sent_json(httpserver) == {"text": "acme is at 80% of its budget", "blocks": BLOCKS}
    assert "Authorization" not in httpserver.log[0][0].headers


def test_webhook_mode_refuses_channel_targets(httpserver: HTTPServer) -> None:
    channel = channel_for(httpserver, token=None, webhook=True)

    err = failure(channel, target="#alerts")

    assert err.permanent and "channels.slack.token" in str(err)
    assert httpserver.log == []


def test_with_token_and_webhook_the_webhook_target_uses_the_webhook(httpserver: HTTPServer) -> None:
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("ok")
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_ok())
    channel = channel_for(httpserver, webhook=True)

    assert channel.send("webhook", message()) == "webhook:200"
    assert channel.send("C1", message()) == TS
    assert [r.path for r, _ in httpserver.log] == [HOOK_PATH, POST]


@pytest.mark.parametrize(("status", "body"), [(404, "no_service"), (404, "channel_not_found"),
                                              (403, "invalid_token"), (410, "channel_is_archived"),
                                              (400, "invalid_payload")])
def test_webhook_refusals_are_permanent(httpserver: HTTPServer, status: int, body: str) -> None:
    httpserver.expect_request(HOOK_PATH).respond_with_data(body, status=status)

    err = failure(channel_for(httpserver, token=None, webhook=True), target="webhook")

    assert err.permanent and f"HTTP {status} {body}" in str(err)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_webhook_server_errors_are_temporary(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request(HOOK_PATH).respond_with_data("rollup_error", status=status)

    err = failure(channel_for(httpserver, token=None, webhook=True), target="webhook")

    assert not err.permanent and err.retry_after is None
    assert len(httpserver.log) == 1


def test_webhook_rate_limit_is_temporary_with_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request(HOOK_PATH).respond_with_data("rate_limited", status=429, headers={"Retry-After": "7"})

    err = failure(channel_for(httpserver, token=None, webhook=True), target="webhook")

    assert not err.permanent and err.retry_after == 7


def test_webhook_connection_refused_is_temporary_and_hides_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}{HOOK_PATH}"
    channel = SlackChannel(webhook_url=url, timeout_seconds=2)

    err = failure(channel, target="webhook")

    assert not err.permanent and url not in str(err)


# --------------------------------------------------------------------------- settings


def test_settings_need_a_token_or_a_webhook_url() -> None:
    with pytest.raises(SettingsError, match=r"channels\.slack\.token: required"):
        load_channel("slack", {}, {})


def test_a_token_in_the_settings_file_is_refused_without_echoing_it() -> None:
    with pytest.raises(SettingsError, match=r"channels\.slack\.token") as info:
        load_channel("slack", {"token": TOKEN}, {"TOKENTALLY_CHANNELS_SLACK_TOKEN": TOKEN})
    assert TOKEN not in str(info.value)


def test_a_webhook_url_in_the_settings_file_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"channels\.slack\.webhook_url"):
        load_channel("slack", {"webhook_url": "https://hooks.slack.com/services/x"},
                                   {"TOKENTALLY_CHANNELS_SLACK_TOKEN": TOKEN})


def test_unknown_keys_are_named() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting\(s\): channels\.slack\.channel"):
        load_channel("slack", {"channel": "#alerts"}, {"TOKENTALLY_CHANNELS_SLACK_TOKEN": TOKEN})


@pytest.mark.parametrize(("table", "key"), [({"timeout_seconds": 0}, "timeout_seconds"),
                                            ({"timeout_seconds": "30"}, "timeout_seconds"),
                                            ({"base_url": "ftp://slack.example/"}, "base_url")])
def test_bad_values_are_named(table: dict[str, object], key: str) -> None:
    with pytest.raises(SettingsError, match=rf"channels\.slack\.{key}"):
        load_channel("slack", table, {"TOKENTALLY_CHANNELS_SLACK_TOKEN": TOKEN})


def test_a_webhook_url_that_is_not_http_is_refused_without_echoing_it() -> None:
    with pytest.raises(SettingsError, match=r"channels\.slack\.webhook_url") as info:
        load_channel("slack", {}, {"TOKENTALLY_CHANNELS_SLACK_WEBHOOK_URL": "hooks/SECRETPART"})
    assert "SECRETPART" not in str(info.value)


def test_the_token_can_come_from_a_file(httpserver: HTTPServer, tmp_path: Path) -> None:
    (tmp_path / "slack-token").write_text(TOKEN + "\n", encoding="utf-8")
    httpserver.expect_request(POST, headers={"Authorization": f"Bearer {TOKEN}"}).respond_with_json(slack_ok())
    channel = load_channel("slack", {"base_url": httpserver.url_for("/api/")},
                           {"TOKENTALLY_CHANNELS_SLACK_TOKEN_FILE": str(tmp_path / "slack-token")})

    assert isinstance(channel, SlackChannel)
    assert channel.send("C1", message()) == TS


def test_repr_shows_the_mode_but_no_secrets(httpserver: HTTPServer) -> None:
    text = repr(channel_for(httpserver, webhook=True))

    assert "token+webhook" in text and TOKEN not in text and "WEBHOOKSECRETPART" not in text


# --------------------------------------------------------------------------- redirects


@pytest.fixture
def elsewhere() -> Iterator[HTTPServer]:
    """A second origin, recording whatever reaches it."""
    server = HTTPServer(host="127.0.0.1", port=free_port())
    server.expect_request("/api/chat.postMessage").respond_with_json(slack_ok())
    server.expect_request("/collect").respond_with_data("ok")
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_refused_and_the_token_never_reaches_another_origin(httpserver: HTTPServer,
                                                                        elsewhere: HTTPServer, status: int) -> None:
    httpserver.expect_request(POST).respond_with_response(
        Response("", status=status, headers={"Location": elsewhere.url_for("/api/chat.postMessage")}))
    error = failure(channel_for(httpserver))
    assert error.permanent and f"HTTP {status}" in str(error) and "redirect" in str(error)
    assert elsewhere.log == []  # nothing, and so no Authorization header, went to the other origin
    assert len(httpserver.log) == 1


def test_the_incoming_webhook_refuses_a_redirect_too(httpserver: HTTPServer, elsewhere: HTTPServer) -> None:
    httpserver.expect_request(HOOK_PATH).respond_with_response(
        Response("", status=302, headers={"Location": elsewhere.url_for("/collect")}))
    error = failure(channel_for(httpserver, token=None, webhook=True), target="webhook")
    assert error.permanent and "HTTP 302" in str(error) and "redirect" in str(error)
    assert elsewhere.log == []
