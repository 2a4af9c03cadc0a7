"""Text from the data stays data in what the outbox sends, and no channel can keep a row
pending forever: on SQLite and PostgreSQL, against aiosmtpd and pytest-httpserver on loopback.

- Slack: control characters and bidi overrides (U+202E) arrive as visible escapes, and ``&``,
  ``<``, ``>`` escaped, so an account named ``<!channel>`` mentions nobody;
- email: the subject is one line with the same escapes, so no CR/LF adds a header;
- a channel that raises something other than ChannelError uses an attempt like any failure:
  failed at ``notify.max_attempts`` with a ``delivery.failed`` alert.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from werkzeug import Request, Response

from reports import outbox
from reports.channels.file import FileChannel
from worker.alerts import state as alerts
from worker.models import Alert, Notification

HOSTILE_ACCOUNT = "eve\u202egnp.exe <!channel> <https://evil.example|login> &amp;"
HOSTILE_SCOPE = "u42\r\nBcc: victim@example.com\x1b[31m\u2066"


@pytest.fixture
def settings_for(channel_settings):
    return channel_settings


def raise_hostile(engine, settings) -> None:
    with engine.begin() as conn:
        alerts.raise_alert(conn, settings, kind="budget.account", scope="account", scope_id=HOSTILE_SCOPE,
                           period="2026-11-23", payload={"message": f"{HOSTILE_ACCOUNT} spent $0.0612 today",
                                                         "account_id": HOSTILE_ACCOUNT, "model": "m\x07odel"})


def slack_ok(request: Request) -> Response:
    return Response(json.dumps({"ok": True, "channel": "C1", "ts": "1763900000.000100"}),
                    content_type="application/json")


def all_strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


@freeze_time("2026-11-23T10:00:00Z")
def test_slack_gets_control_and_bidi_characters_as_escapes_and_no_mention(engine, settings_for,
                                                                          httpserver) -> None:
    settings = settings_for('[[routes]]\nkinds = ["budget.*"]\nto = ["slack:#llm-costs"]\n')
    httpserver.expect_request("/api/chat.postMessage").respond_with_handler(slack_ok)
    raise_hostile(engine, settings)
    assert outbox.deliver_pending(engine, settings).sent == 1
    [(request, _)] = [entry for entry in httpserver.log if entry[0].path.endswith("chat.postMessage")]
    posted = json.loads(request.get_data())
    texts = all_strings({"text": posted["text"], "blocks": posted["blocks"]})
    joined = "\n".join(texts)
    for raw in ("\u202e", "\u2066", "\x1b", "\x07", "\r"):
        assert raw not in joined, repr(raw)
    assert "\\u202e" in joined and "\\x1b" in joined and "\\x07" in joined
    assert "<!channel>" not in joined and "<https://evil.example" not in joined
    assert "&lt;!channel&gt;" in joined and "&amp;amp;" in joined
    for text in texts:  # one value never makes a line of its own (no fake "Bcc:" line)
        assert "\nBcc:" not in text


@freeze_time("2026-11-23T10:00:00Z")
def test_an_email_subject_is_one_line_with_visible_escapes(engine, settings_for, mailbox) -> None:
    box, _ = mailbox
    settings = settings_for('[[routes]]\nkinds = ["budget.*"]\nto = ["email:admins@example.com"]\n')
    raise_hostile(engine, settings)
    assert outbox.deliver_pending(engine, settings).sent == 1
    [mail] = box.mails()
    subject = str(mail["Subject"])
    assert "\u202e" not in subject and "\u2066" not in subject and "\x1b" not in subject
    assert "\\u2066" in subject and "\\x1b" in subject
    assert "\r" not in subject and "\n" not in subject
    assert mail["Bcc"] is None and [e.rcpt_tos for e in box.envelopes] == [["admins@example.com"]]
    with engine.connect() as conn:
        [row] = conn.execute(select(Notification)).all()
    assert "\u202e" not in row.subject and "\u2066" not in row.subject


def test_a_channel_that_crashes_uses_its_attempts_and_then_fails_with_delivery_failed(
        engine, settings_for, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for('[[routes]]\nkinds = ["budget.*"]\nto = ["file:crash"]\n',
                            extra='[notify]\nmax_attempts = 3\nbackoff_base = "1m"\n')
    real_send = FileChannel.send

    def send(self, target, message):
        if target == "crash":
            raise UnicodeEncodeError("latin-1", "東", 0, 1, "a bug in a channel")
        return real_send(self, target, message)

    monkeypatch.setattr(FileChannel, "send", send)
    with freeze_time("2026-11-23T10:00:00Z") as frozen:
        with engine.begin() as conn:
            alerts.raise_alert(conn, settings, kind="budget.account", scope="account", scope_id="u42",
                               period="2026-11-23", payload={"message": "u42 spent", "account_id": "u42"})
        outcomes = []
        for _ in range(5):
            stats = outbox.deliver_pending(engine, settings)
            outcomes.append((stats.retrying, stats.failed, stats.sent))
            frozen.tick(timedelta(minutes=10))
    with engine.connect() as conn:
        rows = conn.execute(select(Notification).order_by(Notification.id)).all()
        failed_alerts = conn.execute(select(Alert).where(Alert.kind == "delivery.failed")).all()
    crashed = rows[0]
    assert (crashed.status, crashed.attempts) == ("failed", 3)
    assert "UnicodeEncodeError" in crashed.last_error and "gave up after 3 attempts" in crashed.last_error
    assert outcomes[:3] == [(1, 0, 0), (1, 0, 0), (0, 1, 0)]
    assert [a.scope_id for a in failed_alerts] == ["file:crash"]
    fallback = rows[1]
    assert (fallback.kind, fallback.target, fallback.status) == ("delivery.failed", "delivery-failed", "sent")
