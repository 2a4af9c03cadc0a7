"""[web]: defaults, checked values (exit 2 naming the key), the secret only from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from worker.settings import SettingsError, load


def _load(tmp_path: Path, toml: str, env: dict[str, str] | None = None):
    path = tmp_path / "s.toml"
    path.write_text(toml, encoding="utf-8")
    return load(path, env=env or {})


def test_defaults_listen_on_loopback_8765(tmp_path: Path) -> None:
    web = _load(tmp_path, "").web
    assert (web.enabled, web.bind, web.port, web.public_url) == (True, "127.0.0.1", 8765, None)
    assert web.link_ttl == timedelta(days=30) and web.loopback and not web.https
    assert web.base_url == "http://127.0.0.1:8765" and web.workers == 1


def test_public_url_and_environment_overrides(tmp_path: Path) -> None:
    web = _load(tmp_path, '[web]\npublic_url = "https://tally.example.org/"\nlink_ttl = "7d"\n',
                {"TOKENTALLY_WEB_PORT": "9000", "TOKENTALLY_WEB_BIND": "0.0.0.0", "TOKENTALLY_WEB_WORKERS": "3"}).web
    assert web.https and web.base_url == "https://tally.example.org" and web.port == 9000 and web.workers == 3
    assert not web.loopback and web.link_ttl == timedelta(days=7)


@pytest.mark.parametrize(("toml", "key"), [
    ('bind = "my host"', "web.bind"),
    ("port = 70000", "web.port"),
    ('public_url = "ftp://x"', "web.public_url"),
    ('link_ttl = "forever"', "web.link_ttl"),
    ("max_body_bytes = 0", "web.max_body_bytes"),
    ("workers = 0", "web.workers"),
    ("workers = 65", "web.workers"),
    ('workers = "2"', "web.workers"),
    ("enabled = 1", "web.enabled"),
    ("colour = 1", "web.colour"),
    ('secret = "in the file"', "web.secret"),
])
def test_bad_values_name_their_key(tmp_path: Path, toml: str, key: str) -> None:
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        _load(tmp_path, f"[web]\n{toml}\n")


def test_the_secret_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert _load(tmp_path, "", {"TOKENTALLY_WEB_SECRET": "x" * 32}).web.secret == "x" * 32
    secret_file = tmp_path / "secret"
    secret_file.write_text("y" * 40 + "\n", encoding="utf-8")
    assert _load(tmp_path, "", {"TOKENTALLY_WEB_SECRET_FILE": str(secret_file)}).web.secret == "y" * 40
    with pytest.raises(SettingsError, match="web.secret: at least 32"):
        _load(tmp_path, "", {"TOKENTALLY_WEB_SECRET": "short"})
    assert "x" * 32 not in repr(_load(tmp_path, "", {"TOKENTALLY_WEB_SECRET": "x" * 32}))
