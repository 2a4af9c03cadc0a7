"""The webhook channel against a real HTTP server on loopback (pytest-httpserver); the
receiver checks the signature the way a third party would, from the module docstring."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.helpers import free_port
from reports.channels import ChannelError, load_channel
from reports.messages import Message
from reports.channels.webhook import WebhookChannel
from worker.settings import SettingsError

SECRET = "whsec-SECRETVALUE-0123"
PATH = "/hooks/tokentally"


def message(**changes: object) -> Message:
    fields: dict[str, object] = {
        "kind": "alert.budget.account", "key": "alert:acme:2024-05:warn", "subject": "Budget warning",
        "text": "acme is at 80% of its monthly budget",
        "data": {"account": "acme", "spent_usd": Decimal("80.1234"), "budget_usd": Decimal("100"),
                 "period_start": datetime(2024, 5, 1, tzinfo=UTC), "thresholds": [0.8, 1.0]},
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


def channel(*, secret: str | None = SECRET, timeout: int = 5, **table: object) -> WebhookChannel:
    env = {"TOKENTALLY_CHANNELS_WEBHOOK_SECRET": secret} if secret else {}
    return load_channel("webhook", {"timeout_seconds": timeout, **table}, env)


def verifying_receiver(secret: str, header: str = "X-Tokentally-Signature"):
    """A receiver as a third party writes it: HMAC over b"<timestamp>." + the raw body."""

    def receive(request: Request) -> Response:
        body = request.get_data()
        timestamp = request.headers.get("X-Tokentally-Timestamp", "")
        expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get(header, "")):
            return Response("bad signature", status=401)
        if abs(time.time() - int(timestamp)) > 300:
            return Response("stale", status=401)
        return Response(status=204)

    return receive


def failure(ch: WebhookChannel, target: str, msg: Message | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as info:
        ch.send(target, msg or message())
    assert SECRET not in str(info.value)
    return info.value


@pytest.fixture(autouse=True)
def _every_request_was_expected(httpserver: HTTPServer) -> Iterator[None]:
    yield
    httpserver.check_assertions()


def test_receiver_verifies_the_signature_and_gets_the_delivery_id_and_fields(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_handler(verifying_receiver(SECRET))

    assert channel().send(httpserver.url_for(PATH), message()) == "204"

    request, response = httpserver.log[0]
    assert response.status_code == 204
    assert request.headers["X-Tokentally-Delivery"] == "alert:acme:2024-05:warn"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.get_data()) == {
        "kind": "alert.budget.account", "key": "alert:acme:2024-05:warn", "subject": "Budget warning",
        "text": "acme is at 80% of its monthly budget",
        "data": {"account": "acme", "spent_usd": "80.1234", "budget_usd": "100",
                 "period_start": "2024-05-01T00:00:00+00:00", "thresholds": [0.8, 1.0]},
    }


def test_a_different_secret_fails_verification(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_handler(verifying_receiver("another-secret"))

    err = failure(channel(), httpserver.url_for(PATH))

    assert err.permanent and "HTTP 401" in str(err)


def test_the_signature_header_name_is_a_setting(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_handler(verifying_receiver(SECRET, "X-Hub-Signature-256"))

    assert channel(header="X-Hub-Signature-256").send(httpserver.url_for(PATH), message()) == "204"
    assert "X-Tokentally-Signature" not in httpserver.log[0][0].headers


def test_without_a_secret_nothing_is_signed(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("", status=200)

    assert channel(secret=None).send(httpserver.url_for(PATH), message()) == "200"

    headers = httpserver.log[0][0].headers
    assert "X-Tokentally-Signature" not in headers and headers["X-Tokentally-Delivery"] == message().key


def test_every_attempt_at_a_message_has_the_same_delivery_id(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(PATH).respond_with_data("busy", status=503)
    httpserver.expect_ordered_request(PATH).respond_with_handler(verifying_receiver(SECRET))
    ch = channel()

    assert not failure(ch, httpserver.url_for(PATH)).permanent
    assert ch.send(httpserver.url_for(PATH), message()) == "204"
    assert {r.headers["X-Tokentally-Delivery"] for r, _ in httpserver.log} == {message().key}


def test_hostile_text_arrives_exactly_as_given(httpserver: HTTPServer) -> None:
    model = 'gpt-4o"}]<!channel> & <script>alert(1)</script> \u202eevil\u0000 \U0001f4b8'
    msg = message(subject=f"Budget: {model}", text=f"{model}\r\nX-Injected: yes",
                  data={"model": model, model: 1})
    httpserver.expect_request(PATH).respond_with_handler(verifying_receiver(SECRET))

    channel().send(httpserver.url_for(PATH), msg)

    request = httpserver.log[0][0]
    body = json.loads(request.get_data())
    assert body["subject"] == msg.subject and body["text"] == msg.text and body["data"] == {"model": model, model: 1}
    assert "X-Injected" not in request.headers


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_and_request_timeouts_are_temporary(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request(PATH).respond_with_data("oops", status=status)

    err = failure(channel(), httpserver.url_for(PATH))

    assert not err.permanent and err.retry_after is None and f"HTTP {status}" in str(err)
    assert len(httpserver.log) == 1  # one attempt, no automatic retries


def test_rate_limit_is_temporary_with_the_retry_after_seconds(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("slow down", status=429, headers={"Retry-After": "7"})

    err = failure(channel(), httpserver.url_for(PATH))

    assert not err.permanent and err.retry_after == 7


@pytest.mark.parametrize("status", [400, 404, 410, 422, 301])
def test_refusals_and_redirects_are_permanent(httpserver: HTTPServer, status: int) -> None:
    headers = {"Location": "http://elsewhere.invalid/"} if status == 301 else None
    httpserver.expect_request(PATH).respond_with_data("no", status=status, headers=headers)

    err = failure(channel(), httpserver.url_for(PATH))

    assert err.permanent and f"HTTP {status}" in str(err)
    assert len(httpserver.log) == 1


def test_errors_name_the_endpoint_without_its_path_or_query(httpserver: HTTPServer) -> None:
    path = "/hooks/PATHTOKEN123"
    httpserver.expect_request(path).respond_with_data("gone", status=404)

    err = failure(channel(), httpserver.url_for(path) + "?key=QUERYTOKEN456")

    assert f"localhost:{httpserver.port}" in str(err)
    assert "PATHTOKEN123" not in str(err) and "QUERYTOKEN456" not in str(err)


def test_connection_refused_is_temporary() -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/PATHTOKEN123"

    err = failure(channel(timeout=2), url)

    assert not err.permanent and "refused" in str(err).lower() and "PATHTOKEN123" not in str(err)


def test_a_slow_receiver_is_a_temporary_timeout(httpserver: HTTPServer) -> None:
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(5)
        return Response(status=204)

    httpserver.expect_request(PATH).respond_with_handler(slow)
    started = time.monotonic()
    try:
        err = failure(channel(timeout=1), httpserver.url_for(PATH))
    finally:
        release.set()

    assert not err.permanent and "timed out" in str(err)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("target", ["ftp://example.com/hook", "file:///etc/passwd", "example.com/hook",
                                    "", "http://", "javascript:alert(1)"])
def test_a_target_that_is_not_an_http_url_is_permanent(target: str) -> None:
    err = failure(channel(), target)

    assert err.permanent and "http(s)" in str(err)


# --------------------------------------------------------------------------- settings


def test_defaults_need_no_settings() -> None:
    ch = load_channel("webhook", {}, {})

    assert isinstance(ch, WebhookChannel)
    assert (ch.timeout_seconds, ch.header) == (10, "X-Tokentally-Signature")


def test_a_secret_in_the_settings_file_is_refused_without_echoing_it() -> None:
    with pytest.raises(SettingsError, match=r"channels\.webhook\.secret") as info:
        load_channel("webhook", {"secret": SECRET}, {})
    assert SECRET not in str(info.value)


def test_unknown_keys_are_named() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting\(s\): channels\.webhook\.url"):
        load_channel("webhook", {"url": "https://example.com/hook"}, {})


@pytest.mark.parametrize(("table", "key"), [({"timeout_seconds": 0}, "timeout_seconds"),
                                            ({"header": "X-Bad: header"}, "header"),
                                            ({"header": 5}, "header")])
def test_bad_values_are_named(table: dict[str, object], key: str) -> None:
    with pytest.raises(SettingsError, match=rf"channels\.webhook\.{key}"):
        load_channel("webhook", table, {})


def test_the_secret_can_come_from_a_file(httpserver: HTTPServer, tmp_path: Path) -> None:
    (tmp_path / "webhook-secret").write_text(SECRET + "\n", encoding="utf-8")
    httpserver.expect_request(PATH).respond_with_handler(verifying_receiver(SECRET))
    ch = load_channel("webhook", {}, {"TOKENTALLY_CHANNELS_WEBHOOK_SECRET_FILE": str(tmp_path / "webhook-secret")})

    assert ch.send(httpserver.url_for(PATH), message()) == "204"


def test_repr_hides_the_secret() -> None:
    text = repr(channel())

    assert "signed" in text and SECRET not in text
