"""worker.redact: how a target and a database URL are shown, and secrets scrubbed out of text."""

from __future__ import annotations

import pytest

from worker import redact


@pytest.mark.parametrize(("target", "shown"), [
    ("admins@example.com", "admins@example.com"),
    ("#llm-costs", "#llm-costs"),
    ("C0123", "C0123"),
    ("", ""),
    ("https://hooks.example", "https://hooks.example"),
    ("https://hooks.example/", "https://hooks.example/"),
    ("https://hooks.example:8443/", "https://hooks.example:8443/"),
])
def test_a_target_with_nothing_secret_is_shown_as_it_is(target: str, shown: str) -> None:
    assert redact.target(target) == shown


def test_userinfo_path_query_values_and_fragment_are_hidden_and_a_hash_tells_targets_apart() -> None:
    target = "https://bob:PW@hooks.example:8443/in/T0K3N?token=Q1&flag#frag"
    shown = redact.target(target)
    assert shown == f"https://***@hooks.example:8443/…?token=***&***#… (#{redact.digest(target)})"
    for secret in ("bob", "PW", "T0K3N", "Q1", "flag", "frag"):
        assert secret not in shown.replace("hooks", "")


def test_a_target_that_is_not_even_a_url_shows_nothing_of_itself() -> None:
    assert redact.target("http://[::1/x?SECRET") == f"*** (#{redact.digest('http://[::1/x?SECRET')})"


def test_scrub_takes_a_targets_secrets_out_of_free_text_and_leaves_short_words() -> None:
    target = "https://user:PASSWORD9@hooks.example/hook/PATHTOKEN42?token=QUERYSECRET9"
    text = ("POST /hook/PATHTOKEN42?token=QUERYSECRET9 failed; auth PASSWORD9; "
            "PATHTOKEN42 again; the hook said no")
    scrubbed = redact.scrub(text, target)
    for secret in ("PASSWORD9", "PATHTOKEN42", "QUERYSECRET9"):
        assert secret not in scrubbed
    assert scrubbed.endswith("the hook said no")  # "hook" (a short path segment) stays a word


def test_secret_params_masks_only_secret_looking_names() -> None:
    assert redact.secret_params("postgresql://h/db?sslmode=require&password=X&api_key=Y&passfile=/p") == \
        "postgresql://h/db?sslmode=require&password=***&api_key=***&passfile=***"
    assert redact.secret_params("sqlite:///var/t.db") == "sqlite:///var/t.db"
