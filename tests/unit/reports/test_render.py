"""Rendering messages from templates: one-line subjects, escaped HTML, valid Slack JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reports import messages as render
from reports.messages import RenderError, make_message, mrkdwn, usd, utc

SENT_AT = datetime(2025, 6, 1, 14, 5, 9, tzinfo=UTC)
HOSTILE = [
    '"quoted" and \'single\'',
    "two\nlines\r\nand a tab\t",
    "<script>alert(1)</script> & <@U123> <!channel>",
    "back\\slash \\n \\u0000 \\\"",
    "}]} {\"text\": \"injected\"}",
    "&amp; already escaped &lt;",
    "unicode ünïcødé \u2028 line separator",
]


def ping_context(**overrides: Any) -> dict[str, Any]:
    return {"sent_at": SENT_AT, "target": "admins@example.com", "channel": "email",
            "hostname": "worker-1", "timezone": "UTC", **overrides}


def alert_context(reason: str = "new", timezone: str = "UTC", **payload: Any) -> dict[str, Any]:
    return {"reason": reason, "timezone": timezone, "alert": {
        "kind": "budget", "scope": "account", "scope_id": "acme", "period": "2025-06",
        "severity": "critical", "state": "open",
        "first_seen": SENT_AT, "last_seen": SENT_AT + timedelta(hours=2),
        "payload": {"message": "Account acme is over its monthly budget.",
                    "amount_usd": Decimal("12.34"), "threshold_usd": Decimal("10"),
                    "account_id": "acme", "model": "gpt-4o", **payload},
    }}


def slack_texts(node: Any) -> list[str]:
    """Every "text" string in a Block Kit payload (the fallback and all mrkdwn texts)."""
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        return found + [t for value in node.values() for t in slack_texts(value)]
    if isinstance(node, list):
        return [t for value in node for t in slack_texts(value)]
    return []


def test_test_message_has_every_part_and_passes_kind_key_and_data_through():
    message = make_message("test", ping_context(), kind="test", key="test:1", data={"n": 1})
    assert (message.kind, message.key, message.data) == ("test", "test:1", {"n": 1})
    assert message.subject == "[tokentally] Test message via email to admins@example.com"
    assert "2025-06-01 14:05:09 UTC" in message.text
    assert message.html is not None and "worker-1" in message.html
    assert message.slack is not None and message.slack["blocks"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_subject_is_one_stripped_line_whatever_the_values(hostile: str):
    message = make_message("test", ping_context(target=f"  \n{hostile}\n "), kind="test", key="k")
    assert message.subject == message.subject.strip()
    assert len(message.subject.splitlines()) == 1
    assert "  " not in message.subject


@pytest.mark.parametrize("reason", ["new", "escalated", "reminder", "resolved"])
def test_alert_subject_names_severity_scope_and_reason(reason: str):
    subject = make_message("alert", alert_context(reason), kind="alert.budget", key="k").subject
    assert "budget" in subject and "account acme" in subject and "2025-06" in subject
    if reason == "resolved":
        assert subject.startswith("[tokentally] Resolved:")
    else:
        assert "CRITICAL" in subject
    if reason in ("escalated", "reminder"):
        assert f"({reason})" in subject


def test_an_unknown_alert_reason_is_an_error():
    with pytest.raises(RenderError, match=r"templates/email/alert\.subject\.j2"):
        make_message("alert", alert_context("snoozed"), kind="alert.budget", key="k")


def test_alert_without_optional_payload_renders_without_those_lines():
    context = alert_context()
    context["alert"].update(scope="global", scope_id=None, payload={})
    message = make_message("alert", context, kind="alert.budget", key="k")
    assert "Amount" not in message.text and "Model" not in message.text
    assert "global" in message.subject


def test_untrusted_model_name_is_escaped_in_html_and_literal_in_text():
    model = "<script>alert(1)</script>"
    message = make_message("alert", alert_context(model=model, message="a & b <b>"), kind="a", key="k")
    assert message.html is not None
    assert model not in message.html and "<b>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
    assert "a &amp; b &lt;b&gt;" in message.html
    assert model in message.text and "a & b <b>" in message.text


def test_amounts_are_rendered_with_four_places():
    message = make_message("alert", alert_context(), kind="alert.budget", key="k")
    assert "$12.3400 (threshold $10.0000)" in message.text
    assert "$12.3400" in (message.html or "")


@pytest.mark.parametrize("hostile", HOSTILE)
def test_slack_payload_is_valid_json_with_values_mrkdwn_escaped(hostile: str):
    message = make_message("alert", alert_context(model=hostile, message=hostile, account_id=hostile),
                           kind="alert.budget", key="k")
    texts = slack_texts(message.slack)
    assert texts, "no text in the Slack payload"
    assert any(mrkdwn(hostile) in t for t in texts)  # the value arrives whole, escaped once
    for text in texts:
        assert "<" not in text and ">" not in text  # no Slack links or mentions smuggled in
        assert text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0


@pytest.mark.parametrize("hostile", HOSTILE)
def test_slack_test_message_survives_hostile_values(hostile: str):
    message = make_message("test", ping_context(target=hostile, hostname=hostile, channel=hostile),
                           kind="test", key="k")
    assert message.slack is not None
    assert isinstance(message.slack["text"], str)
    assert any(mrkdwn(hostile) in t for t in slack_texts(message.slack))


def test_missing_variable_is_an_error_naming_the_template_and_variable():
    context = ping_context()
    del context["hostname"]
    with pytest.raises(RenderError, match=r"templates/email/test\..*'hostname' is undefined"):
        make_message("test", context, kind="test", key="k")


def test_missing_template_is_an_error():
    with pytest.raises(RenderError, match=r"templates/email/nope\.subject\.j2: template not found"):
        make_message("nope", {}, kind="x", key="k")


@pytest.fixture
def template_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A templates directory of our own: email/x.* given, slack/x.json.j2 up to the test."""
    (tmp_path / "email").mkdir()
    (tmp_path / "slack").mkdir()
    (tmp_path / "email" / "x.subject.j2").write_text("Hello {{ who }}\n")
    (tmp_path / "email" / "x.txt.j2").write_text("Hello {{ who }}\n")
    (tmp_path / "email" / "x.html.j2").write_text("<p>Hello {{ who }}</p>\n")
    monkeypatch.setattr(render, "ENV", render._environment(tmp_path))
    return tmp_path


def test_without_a_slack_template_the_message_has_no_slack_payload(template_dir: Path):
    message = make_message("x", {"who": "<you>"}, kind="x", key="k")
    assert message.slack is None
    assert (message.subject, message.text, message.html) == ("Hello <you>", "Hello <you>\n",
                                                             "<p>Hello &lt;you&gt;</p>\n")


def test_slack_template_producing_invalid_json_is_an_error_naming_it(template_dir: Path):
    (template_dir / "slack" / "x.json.j2").write_text('{"text": "{{ who }}"}')  # no tojson
    with pytest.raises(RenderError, match=r"templates/slack/x\.json\.j2 produced invalid JSON"):
        make_message("x", {"who": 'a "quoted" name'}, kind="x", key="k")


def test_slack_template_must_give_an_object_with_fallback_text(template_dir: Path):
    (template_dir / "slack" / "x.json.j2").write_text('[{{ who | mrkdwn | tojson }}]')
    with pytest.raises(RenderError, match=r"templates/slack/x\.json\.j2: expected a JSON object"):
        make_message("x", {"who": "you"}, kind="x", key="k")


def test_template_syntax_error_names_template_and_line(template_dir: Path):
    (template_dir / "email" / "x.txt.j2").write_text("Hello\n{{ who \n")
    with pytest.raises(RenderError, match=r"templates/email/x\.txt\.j2, line 2"):
        make_message("x", {"who": "you"}, kind="x", key="k")


def test_mrkdwn_escapes_ampersand_and_angle_brackets_and_nothing_else_printable():
    assert mrkdwn("<a href='x'>&amp;</a> *bold*") == "&lt;a href='x'&gt;&amp;amp;&lt;/a&gt; *bold*"
    assert mrkdwn("<!channel> <@U123> <https://evil.example|click>") == \
        "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt;"
    assert mrkdwn(Decimal("1.5")) == "1.5"
    assert json.loads(str(render.ENV.from_string("{{ v | mrkdwn(lines=true) | tojson }}").render(v='"\\\n<'))) == \
        '"\\\n&lt;'


def test_mrkdwn_shows_control_and_bidi_characters_as_escapes():
    assert mrkdwn("eve\u202egnp.exe\x1b[31m") == "eve\\u202egnp.exe\\x1b[31m"
    assert mrkdwn("two\nlines") == "two\\x0alines"  # one value: no line of its own
    assert mrkdwn("two\nlines\u2066", lines=True) == "two\nlines\\u2066"  # a paragraph keeps its lines


@pytest.mark.parametrize(("value", "places", "expected"), [
    (Decimal("12.34"), 4, "$12.3400"),
    (Decimal("0"), 4, "$0.0000"),
    (Decimal("1234567.891"), 4, "$1234567.8910"),
    (Decimal("0.00005"), 4, "$0.0000"),  # half-even
    (Decimal("0.00015"), 4, "$0.0002"),
    (Decimal("-3.5"), 4, "-$3.5000"),
    (Decimal("-0.00001"), 4, "$0.0000"),  # no "-$0.0000"
    (Decimal("12.345"), 2, "$12.34"),
    (Decimal("0.0042"), 2, "$0.0042"),  # below a cent: never "$0.00"
    (Decimal("0.000042"), 2, "$0.000042"),
    (Decimal("-0.0042"), 2, "-$0.0042"),
    (Decimal("0.015"), 2, "$0.02"),  # a cent or more: cents
    (Decimal("0"), 2, "$0.00"),
    (7, 4, "$7.0000"),
    ("0.1", 4, "$0.1000"),
])
def test_usd_renders_an_explicit_precision(value: Any, places: int, expected: str):
    assert usd(value, places) == expected


def test_usd_refuses_floats_and_non_amounts():
    with pytest.raises(TypeError):
        usd(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        usd("twelve")
    with pytest.raises(ValueError):
        usd(Decimal("NaN"))


def test_alert_times_are_shown_in_the_configured_time_zone_with_its_name():
    message = make_message("alert", alert_context(timezone="Europe/Berlin"), kind="alert.budget", key="k")
    assert "First seen: 2025-06-01 16:05 CEST (Europe/Berlin)" in message.text
    assert "Last seen:  2025-06-01 18:05 CEST (Europe/Berlin)" in message.text
    assert "2025-06-01 16:05 CEST (Europe/Berlin)" in (message.html or "")
    assert "First seen 2025-06-01 16:05 CEST (Europe/Berlin)" in json.dumps(message.slack)
    assert "UTC" not in message.text


def test_local_filter_names_the_zone_once_when_it_is_its_own_abbreviation():
    assert render.local(SENT_AT, "UTC") == "2025-06-01 14:05 UTC"
    assert render.local("2026-11-23T10:00:00+00:00", "Europe/Berlin", seconds=True) == \
        "2026-11-23 11:00:00 CET (Europe/Berlin)"
    assert render.local("not a time", "Europe/Berlin") == "not a time"  # an archived field shown as it is
    with pytest.raises(ValueError, match="naive"):
        render.local(datetime(2025, 6, 1), "UTC")
    with pytest.raises(ValueError, match="unknown time zone"):
        render.local(SENT_AT, "Mars/Olympus")


def test_utc_filter_converts_aware_datetimes_and_refuses_naive_ones():
    assert utc(datetime(2025, 6, 1, 16, 5, 9, tzinfo=timezone(timedelta(hours=2)))) == "2025-06-01 14:05:09 UTC"
    with pytest.raises(ValueError, match="naive"):
        utc(datetime(2025, 6, 1))


def test_amounts_stored_as_json_strings_render_the_same():
    message = make_message("alert", alert_context(amount_usd="0.0612", threshold_usd="0.05"), kind="a", key="k")
    assert "$0.0612 (threshold $0.0500)" in message.text


def test_a_value_a_filter_refuses_is_an_error_naming_the_template():
    with pytest.raises(RenderError, match=r"templates/email/alert\.txt\.j2: TypeError: usd: expected a Decimal, got float"):
        make_message("alert", alert_context(amount_usd=12.34), kind="a", key="k")
