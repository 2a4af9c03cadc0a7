"""The email channel against a real SMTP server on loopback (aiosmtpd in a thread)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session, SMTP

from tests.helpers import Mailbox, free_port, start_server
from reports.channels import ChannelError, load_channel
from reports.messages import Message
from reports.chart import daily_cost_png
from reports.channels.email import EmailChannel
from reports.messages import make_message
from worker.settings import SettingsError

HOSTILE_MODEL = "<script>alert(1)</script>"


def channel_for(port: int, **table: Any) -> EmailChannel:
    return load_channel("email", {"smtp_host": "127.0.0.1", "smtp_port": port,
                                       "sender": "tokentally@example.com", "timeout_seconds": 5, **table}, {})


def alert_message(key: str = "alert:budget:acme:2025-06:critical") -> Message:
    alert = {"kind": "budget", "scope": "account", "scope_id": "acme", "period": "2025-06",
             "severity": "critical", "state": "open",
             "first_seen": datetime(2025, 6, 1, tzinfo=UTC), "last_seen": datetime(2025, 6, 2, tzinfo=UTC),
             "payload": {"model": HOSTILE_MODEL, "account_id": "acme"}}
    return make_message("alert", {"alert": alert, "reason": "new", "timezone": "UTC"}, kind="alert.budget", key=key)


def test_a_message_arrives_once_with_text_and_html_parts_and_its_headers(mailbox):
    box, port = mailbox
    message = alert_message()
    message_id = channel_for(port).send("admin@example.com", message)

    assert len(box.envelopes) == 1
    envelope = box.envelopes[0]
    assert envelope.mail_from == "tokentally@example.com"
    assert envelope.rcpt_tos == ["admin@example.com"]
    mail = box.mails()[0]
    assert mail["Subject"] == message.subject
    assert mail["From"] == "tokentally@example.com"
    assert mail["To"] == "admin@example.com"
    assert mail["Message-ID"] == message_id
    assert mail["X-Tokentally-Kind"] == "alert.budget"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n") == message.text  # SMTP lines end in CRLF
    assert html.get_content().replace("\r\n", "\n") == message.html


def test_an_untrusted_model_name_is_escaped_in_html_and_literal_in_text(mailbox):
    box, port = mailbox
    channel_for(port).send("admin@example.com", alert_message())
    mail = box.mails()[0]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert HOSTILE_MODEL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE_MODEL in text


def test_message_id_is_the_same_for_the_same_key_and_differs_for_another(mailbox):
    box, port = mailbox
    channel = channel_for(port)
    first = channel.send("admin@example.com", alert_message("alert:1"))
    again = channel.send("admin@example.com", alert_message("alert:1"))
    other = channel.send("admin@example.com", alert_message("alert:2"))
    assert first == again != other
    assert first.endswith("@example.com>")
    assert [m["Message-ID"] for m in box.mails()] == [first, again, other]  # one copy per send


def test_a_refused_recipient_is_a_permanent_error(mailbox):
    box, port = mailbox
    box.refuse["nobody@example.com"] = "550 5.1.1 <nobody@example.com>: no such user"
    with pytest.raises(ChannelError, match="recipient nobody@example.com refused: 550") as info:
        channel_for(port).send("nobody@example.com", alert_message())
    assert info.value.permanent
    assert box.envelopes == []


def test_a_recipient_deferred_with_4xx_is_a_temporary_error(mailbox):
    box, port = mailbox
    box.refuse["later@example.com"] = "451 4.7.1 greylisted, try again later"
    with pytest.raises(ChannelError, match="451") as info:
        channel_for(port).send("later@example.com", alert_message())
    assert not info.value.permanent


def test_nothing_listening_is_a_temporary_error():
    with pytest.raises(ChannelError, match=r"SMTP 127\.0\.0\.1:\d+: ConnectionRefusedError") as info:
        channel_for(free_port()).send("admin@example.com", alert_message())
    assert not info.value.permanent


@pytest.mark.parametrize("target", ["", "admin", "Admin <admin@example.com>", "a@example.com, b@example.com",
                                    "admin@example.com\r\nBcc: x@example.com"])
def test_a_target_that_is_not_an_address_is_a_permanent_error(target: str):
    # No server needed: the address is checked before connecting.
    with pytest.raises(ChannelError, match="not an email address") as info:
        channel_for(free_port()).send(target, alert_message())
    assert info.value.permanent


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"bot", b"s3cret")
    return AuthResult(success=ok, handled=False)  # handled=False: the server sends the 235/535 reply


@pytest.fixture
def auth_mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    # Plain-text AUTH is fine on loopback in a test; auth_required stays False (aiosmtpd
    # warns when AUTH is required without TLS).
    controller = start_server(box, authenticator=authenticator, auth_require_tls=False)
    yield box, controller.port
    controller.stop()


def test_login_with_the_password_from_the_environment(auth_mailbox):
    box, port = auth_mailbox
    channel = load_channel("email", {"smtp_host": "127.0.0.1", "smtp_port": port, "username": "bot"},
                                         {"TOKENTALLY_CHANNELS_EMAIL_PASSWORD": "s3cret"})
    assert "s3cret" not in repr(channel)
    channel.send("admin@example.com", alert_message())
    assert len(box.envelopes) == 1


def test_a_rejected_login_is_a_permanent_error_that_does_not_show_the_password(auth_mailbox, tmp_path: Path):
    box, port = auth_mailbox
    secret = tmp_path / "password"
    secret.write_text("wrong-password\n")
    channel = load_channel("email", {"smtp_host": "127.0.0.1", "smtp_port": port, "username": "bot"},
                                         {"TOKENTALLY_CHANNELS_EMAIL_PASSWORD_FILE": str(secret)})
    with pytest.raises(ChannelError, match="SMTPAuthenticationError: 535") as info:
        channel.send("admin@example.com", alert_message())
    assert info.value.permanent
    assert "wrong-password" not in str(info.value) and "wrong-password" not in repr(channel)
    assert box.envelopes == []


def test_settings_defaults():
    channel = load_channel("email", {}, {})
    assert (channel.host, channel.port, channel.security, channel.username, channel.sender, channel.timeout) == \
        ("localhost", 25, "none", None, "tokentally@localhost", 30)
    assert load_channel("email", {"security": "ssl"}, {}).port == 465


def test_settings_come_from_the_environment_too():
    channel = load_channel("email", {}, {"TOKENTALLY_CHANNELS_EMAIL_SMTP_HOST": "mail.internal",
                                              "TOKENTALLY_CHANNELS_EMAIL_SMTP_PORT": "587",
                                              "TOKENTALLY_CHANNELS_EMAIL_SECURITY": "starttls"})
    assert (channel.host, channel.port, channel.security) == ("mail.internal", 587, "starttls")


@pytest.mark.parametrize(("table", "env", "error"), [
    ({"security": "tls"}, {}, r"channels\.email\.security: expected one of none, starttls, ssl, got 'tls'"),
    ({"smtp_server": "x"}, {}, r"unknown setting\(s\): channels\.email\.smtp_server"),
    ({"password": "hunter2"}, {}, r"channels\.email\.password: secrets are not read from the settings file; "
                                  r"set TOKENTALLY_CHANNELS_EMAIL_PASSWORD or TOKENTALLY_CHANNELS_EMAIL_PASSWORD_FILE"),
    ({"username": "bot"}, {}, r"channels\.email\.password: required when channels\.email\.username is set"),
    ({}, {"TOKENTALLY_CHANNELS_EMAIL_PASSWORD": "x"}, r"channels\.email\.password: is set but channels\.email\.username"),
    ({"smtp_port": "25"}, {}, r"channels\.email\.smtp_port: expected an integer"),
    ({"smtp_port": 70000}, {}, r"channels\.email\.smtp_port: expected a port number"),
    ({"timeout_seconds": 0}, {}, r"channels\.email\.timeout_seconds: must be a positive integer"),
    ({"sender": "tokentally"}, {}, r"channels\.email\.sender: expected an address"),
    ({"smtp_host": " "}, {}, r"channels\.email\.smtp_host: must name a host"),
])
def test_bad_settings_fail_naming_the_key(table: dict[str, Any], env: dict[str, str], error: str):
    with pytest.raises(SettingsError, match=error) as info:
        load_channel("email", table, env)
    assert "hunter2" not in str(info.value)


def chart_file(tmp_path: Path) -> Path:
    path = tmp_path / "chart.png"
    path.write_bytes(daily_cost_png([(date(2026, 11, 21), Decimal("1.5")), (date(2026, 11, 22), Decimal("2.25"))],
                                    title="Daily cost, USD", highlight={date(2026, 11, 22)}))
    return path


def test_an_inline_image_arrives_in_a_related_part_with_its_content_id_and_bytes(mailbox, tmp_path: Path):
    box, port = mailbox
    chart = chart_file(tmp_path)
    message = Message(kind="report.daily", key="report:daily:2026-11-22", subject="Daily report",
                      text="Total cost: $3.75\n", html='<p>Total cost</p><img src="cid:chart" alt="chart">',
                      inline={"chart": str(chart)})
    message_id = channel_for(port).send("admin@example.com", message)

    mail = box.mails()[0]
    assert mail["Message-ID"] == message_id == "<report.daily.2026-11-22@example.com>"
    assert mail.get_content_type() == "multipart/alternative"
    text, related = mail.get_payload()  # type: ignore[misc]
    assert text.get_content().replace("\r\n", "\n") == message.text
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert 'src="cid:chart"' in html.get_content()
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == "<chart>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == chart.read_bytes()
    assert mail.get_body(("html",)) is not None and mail.get_body(("plain",)) is not None


def test_a_report_email_carries_its_chart_inline(mailbox, tmp_path: Path):
    from tests.unit.reports.test_report_render import report_context, sample_report
    box, port = mailbox
    chart = chart_file(tmp_path)
    message = make_message("report", report_context(sample_report()), kind="report.daily", key="report:daily:1")
    message = dataclasses.replace(message, inline={"chart": str(chart)})
    channel_for(port).send("admin@example.com", message)
    mail = box.mails()[0]
    images = [part for part in mail.walk() if part.get_content_maintype() == "image"]
    assert [(i["Content-ID"], i.get_content()) for i in images] == [("<chart>", chart.read_bytes())]
    assert 'src="cid:chart"' in mail.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_a_missing_inline_image_is_a_permanent_error_naming_the_path(mailbox, tmp_path: Path):
    box, port = mailbox
    missing = tmp_path / "gone.png"
    message = Message(kind="report.daily", key="r", subject="s", text="t", html='<img src="cid:chart">',
                      inline={"chart": str(missing)})
    with pytest.raises(ChannelError, match=f"cannot read {missing}") as info:
        channel_for(port).send("admin@example.com", message)
    assert info.value.permanent
    assert box.envelopes == []
